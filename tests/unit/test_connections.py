"""--max-connections: at most N hosts observed, connections open, at once (issue 16, goal 4)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from driftcheck import allowlist, session
from driftcheck.inventory import HostConfig
from driftcheck.options import MAX_CONNECTIONS, RunOptions
from driftcheck.records import Output
from driftcheck.registry import BY_NAME
from driftcheck.session import Observations
from driftcheck.transport import Transport
from driftcheck.transport.canned import CannedRunner
from tests.support.unit import make_module

PS = b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n"


class Gauge:
    """Connections open right now, and the most ever open at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.opened = 0

    def change(self, delta: int) -> None:
        with self.lock:
            self.open += delta
            self.opened += max(delta, 0)
            self.peak = max(self.peak, self.open)


class SlowHost(CannedRunner):
    """A host whose every answer takes 50 ms; its connection counted from connect to close."""

    def __init__(self, gauge: Gauge, host: str):
        super().__init__([(allowlist.PS_ARGV, self.slow)], host=host)
        self.gauge = gauge

    def slow(self, argv: tuple[str, ...]) -> Output:
        time.sleep(0.05)
        return Output(0, PS, b"")

    def connect(self) -> None:
        if not self.connected:
            self.gauge.change(+1)
        super().connect()

    def close(self) -> None:
        if self.connected:
            self.gauge.change(-1)
        super().close()


def observe_fleet(monkeypatch: pytest.MonkeyPatch, hosts: int, limit: int) -> tuple[Gauge, Observations]:
    gauge = Gauge()

    def transport(config: HostConfig) -> Transport:
        return Transport(config, SlowHost(gauge, config.name))

    monkeypatch.setattr(session, "Transport", transport)
    configs = {f"h{i}": HostConfig(f"h{i}", "local", None, None, None, None, None, None, "strict", 5.0)
               for i in range(hosts)}
    subjects = [("exists", make_module(name=f"m{i}", host=f"h{i}")) for i in range(hosts)]
    observations = Observations(configs, subjects, worker=False, max_connections=limit)
    observations.observed_for(BY_NAME["exists"], subjects[0][1])  # the first check observes every host
    return gauge, observations


def test_at_most_max_connections_hosts_are_connected_at_once(monkeypatch):
    gauge, observations = observe_fleet(monkeypatch, hosts=12, limit=3)
    assert gauge.opened == 12, "every host observed"
    assert gauge.peak == 3
    assert gauge.open == 0, "each connection is closed once its host has answered, not at the end of the run"
    assert all(len(r.commands) == 1 and r.error is None for r in observations.host_records())


def test_without_a_tighter_bound_the_hosts_are_observed_at_once(monkeypatch):
    # The gauge above can see more than three: with the bound above the fleet, every host at once.
    gauge, _ = observe_fleet(monkeypatch, hosts=12, limit=MAX_CONNECTIONS)
    assert gauge.peak == 12


def build(given: dict[str, Any], env: dict[str, str]) -> RunOptions:
    return RunOptions.build(Path("/srv"), Path("/srv"), given, env)


def test_max_connections_option_env_and_default():
    assert build({}, {}).max_connections == MAX_CONNECTIONS == 64
    assert build({}, {"DRIFT_MAX_CONNECTIONS": "8"}).max_connections == 8
    assert build({"max_connections": "2"}, {"DRIFT_MAX_CONNECTIONS": "8"}).max_connections == 2  # the CLI wins


@pytest.mark.parametrize("value", ["0", "-3", "lots", "2.5", ""])
def test_a_bad_max_connections_names_the_option_and_what_it_expects(value):
    given = {"max_connections": value} if value else {}
    env = {"DRIFT_MAX_CONNECTIONS": " "} if not value else {}
    with pytest.raises(ValueError, match=r"--max-connections / DRIFT_MAX_CONNECTIONS=.*expected a whole number "
                                         r"of hosts observed at once, 1 or more"):
        build(given, env)
