"""Scale on the lab: hosts observed concurrently; pytest-xdist gives the same plan as one process."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.lab import (
    DRIFT_MODULES,
    add_module,
    lab_connection,
    labctl,
    logged_commands,
    run_suite,
    sshd_log_count,
    write_inventory,
)

#: what may differ between two runs with the same result
VOLATILE = ("run_id", "started_at", "finished_at")


#: a container restarting in a loop: its state and restart count move between two runs
MOVING = "restart-loop"


def comparable(plan: dict) -> dict:
    plan = {k: v for k, v in plan.items() if k not in VOLATILE}
    plan["hosts"] = [{**h, "seconds": None} for h in plan["hosts"]]
    # its changes come and go (NOT_RUNNING while it restarts, the count in RESTART_LOOP): only its
    # status is compared
    plan["changes"] = [c for c in plan["changes"] if c["module"] != MOVING]
    plan["modules"] = [{**m, "changes": None} if m["module"] == MOVING else m for m in plan["modules"]]
    return plan


def test_xdist_loadgroup_gives_the_same_plan(drift_lab_run, command_log, tmp_path):
    one = drift_lab_run
    assert one.rc == 1, one.output
    command_log.write_text("")
    logins = sshd_log_count("Accepted publickey for driftlab")
    two = run_suite(tmp_path / "two", "-n", "2", "--dist", "loadgroup", modules=DRIFT_MODULES)
    assert two.rc == 1, two.output
    assert comparable(two.plan) == comparable(one.plan)
    assert "2 workers" in two.output
    # The host's tests ran on one worker: observed once, over one connection.
    assert len(logged_commands()) == 3
    assert sshd_log_count("Accepted publickey for driftlab") - logins == 1
    # One report.json and one junit.xml, written by the controller, with the plan merged in.
    report = json.loads((two.run_dir / "report.json").read_text())
    assert report["exitcode"] == 1 and comparable(report["plan"]) == comparable(one.plan)
    assert {t["nodeid"].rsplit("@", 1)[1] for t in report["tests"]} == {"rs2000"}
    assert sorted(p.name for p in two.run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json", "report.json"]
    assert sorted(p.name for p in (tmp_path / "two" / "reports").iterdir()) == sorted(
        [two.run_dir.name, "latest", "index.html", "history.json"])  # the run folder, latest and the history


def test_xdist_with_nothing_selected_is_an_error(lab, tmp_path):
    plan_out = tmp_path / "plan.json"
    run = run_suite(tmp_path, "-n", "2", "--dist", "loadgroup", "-k", "no-such-module", f"--plan-out={plan_out}")
    assert run.rc == 2, run.output
    assert run.plan is None and not (tmp_path / "reports").exists(), "a run that checked nothing wrote a run folder"
    assert [e["code"] for e in json.loads(plan_out.read_text())["errors"]] == ["NO_MODULES_SELECTED"]


def test_hosts_are_observed_concurrently(lab, tmp_path, mute_server):
    """Three hosts that each take their whole 2 s timeout: the run waits about 2 s, not 6."""
    modules = tmp_path / "modules"
    modules.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yaml", timeout=2)
    data = yaml.safe_load(inventory.read_text())
    for name in ("edge-a", "edge-b", "edge-c"):
        add_module(modules, f"{name}-app", name)
        data["hosts"][name] = {**data["hosts"]["rs2000"],
                               "connection": lab_connection(mute_server(None))}
    inventory.write_text(yaml.safe_dump(data))
    run = run_suite(tmp_path, inventory=inventory, modules=modules)
    assert run.rc == 2, run.output
    assert [h["error"]["code"] for h in run.plan["hosts"]] == ["HOST_UNREACHABLE"] * 3
    assert all(h["seconds"] >= 2 - 0.1 for h in run.plan["hosts"])
    # Sequential observation would need 6 s on top of start-up.
    assert run.seconds < 2 + 2.5, run.seconds


def established(port: int) -> set[str]:
    """Connections to port that their client holds open, as the kernel sees them: client sockets
    ESTABLISHED (shutdown or close turns one to FIN_WAIT at once, in the closing call itself)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    # by the client's address: /proc/net/tcp is read in pages, and sockets that come and go between
    # two reads can show one row twice
    return {row[1] for row in rows if int(row[2].rsplit(":", 1)[1], 16) == port and row[3] == "01"}


@contextmanager
def counting_proxy(target: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """A loopback TCP proxy to target that counts the connections open at once, just after each accept."""
    gauge: dict[str, Any] = {"peak": 0, "accepted": 0}
    lock = threading.Lock()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    port = int(server.getsockname()[1])
    stop = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", target))
        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def sample() -> None:
        with lock:
            now = established(port)
            if len(now) > gauge["peak"]:
                gauge["peak"], gauge["at_peak"] = len(now), sorted(now)  # the clients' addresses, for a failure

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                continue
            gauge["accepted"] += 1
            sample()
            threading.Timer(0.05, sample).start()  # and once more, with whatever opened meanwhile
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, gauge
    finally:
        stop.set()
        thread.join()
        time.sleep(0.1)  # the last samples
        server.close()


def fleet(tmp_path, port: int, hosts: int):
    """`hosts` inventory hosts, all the lab's sshd behind the proxy on port, one module each."""
    modules = tmp_path / "modules"
    modules.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yaml")
    data = yaml.safe_load(inventory.read_text())
    key_type, key = (labctl.SSH / "host_ed25519.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    for i in range(hosts):
        add_module(modules, f"fleet-{i}", f"fleet{i}")
        data["hosts"][f"fleet{i}"] = {**data["hosts"]["rs2000"], "connection": lab_connection(port),
                                      "known_hosts": str(known)}
    inventory.write_text(yaml.safe_dump(data))
    return inventory, modules


@pytest.mark.parametrize("limit", [2, 8])
def test_max_connections_bounds_the_connections_open_at_once(lab, tmp_path, limit):
    """Eight hosts behind a proxy that counts open TCP connections: never more than --max-connections
    at once, and each closed once its host has answered (with 8 allowed, more than two overlap)."""
    sshd_port = int((labctl.RUN / "sshd.port").read_text())
    with counting_proxy(sshd_port) as (port, gauge):
        inventory, modules = fleet(tmp_path, port, hosts=8)
        run = run_suite(tmp_path, f"--max-connections={limit}", inventory=inventory, modules=modules)
    assert run.rc == 1, run.output  # every module's container is missing: drift, not an error
    assert [h["error"] for h in run.plan["hosts"]] == [None] * 8
    statuses = {m["module"]: m["status"] for m in run.plan["modules"]}
    assert {f"fleet-{i}" for i in range(8)} <= set(statuses), statuses
    assert set(statuses.values()) == {"drift"}, statuses  # (the lab's own containers are orphans here)
    assert gauge["accepted"] == 8, gauge
    if limit < 8:
        assert gauge["peak"] == limit, gauge
    else:  # the gauge sees more than two at once when more are allowed (so the bound above is the option's doing)
        assert gauge["peak"] > 2, gauge
