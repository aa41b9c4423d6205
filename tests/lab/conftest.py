"""Fixtures of the lab tests (their helpers are in tests/support/lab.py, which puts lab/ on sys.path)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driftcheck.compare import RESTART_LOOP_THRESHOLD
from tests.support.lab import (
    DRIFT_COMPOSE,
    DRIFT_MODULES,
    INVENTORY,
    TRANSPORT,
    TRANSPORTS,
    SuiteRun,
    labctl,
    logged_commands,
    run_suite,
    write_transport_inventory,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pins_transport: the test chooses its own transport (it runs in the "
                                       "paramiko pass of tests/lab only)")
    if TRANSPORT not in TRANSPORTS:
        raise pytest.UsageError(f"LAB_TRANSPORT={TRANSPORT}: expected one of {', '.join(TRANSPORTS)}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the ssh pass, the tests that pin their transport already ran in the paramiko pass."""
    if TRANSPORT == "paramiko":
        return
    pinned = [item for item in items if item.get_closest_marker("pins_transport")]
    if pinned:
        config.hook.pytest_deselected(items=pinned)
        items[:] = [item for item in items if not item.get_closest_marker("pins_transport")]


@pytest.fixture(scope="session")
def lab() -> Path:
    """The lab must be up (make lab-up); a missing lab fails the tests, it never skips them."""
    assert labctl.INVENTORY.exists(), "the lab is not up: run `make lab-up`"
    assert labctl.status() == 0, "a lab daemon is down: run `make lab-up`"
    write_transport_inventory()
    labctl.converge()  # undo a demo's drift: the baseline is what the example modules describe
    return INVENTORY


@pytest.fixture
def command_log() -> Iterator[Path]:
    """The lab host's own record of every docker command it was asked to run (emptied first)."""
    labctl.COMMAND_LOG.write_text("")
    yield labctl.COMMAND_LOG


@pytest.fixture(scope="session")
def drift_lab(lab: Path) -> Iterator[None]:
    """Deploy compose project drift-lab with real drift: stopped, wrong tag, relabelled, ..."""
    labctl.docker("tag", "lab/app:1", "lab/stale:1")
    labctl.compose("up", "--detach", "--force-recreate", project="drift-lab", file=DRIFT_COMPOSE)
    labctl.compose("stop", "stopped", "stopped-ok", project="drift-lab", file=DRIFT_COMPOSE)
    labctl.docker("tag", "lab/app:2", "lab/stale:1")  # pulled and never recreated: stale
    labctl.wait_for_health("drift-lab-runtime-ok-1", "healthy")
    labctl.wait_for_health("drift-lab-unhealthy-1", "unhealthy")
    labctl.wait_for(lambda: int(labctl.docker("inspect", "--format", "{{.RestartCount}}",
                                              "drift-lab-restart-loop-1").stdout) > RESTART_LOOP_THRESHOLD,
                    "drift-lab-restart-loop-1 restarting in a loop", 60)
    yield
    labctl.compose("down", "--volumes", "--timeout", "1", project="drift-lab", file=DRIFT_COMPOSE)
    labctl.docker("rmi", "lab/stale:1")


@pytest.fixture(scope="session")
def drift_lab_run(drift_lab: None, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """The plain run of the suite against the drift lab (`--modules-dir` of it, nothing else), once a session.

    For the tests that only read its result; a test that needs other options, env or a terminal runs
    its own. Its `commands` are the docker commands the lab host ran during it.
    """
    labctl.COMMAND_LOG.write_text("")
    run = run_suite(tmp_path_factory.mktemp("drift-lab-run"), modules=DRIFT_MODULES)
    run.commands = logged_commands()
    return run


@pytest.fixture
def mute_server() -> Iterator[Callable[[bytes | None], int]]:
    """A loopback port that accepts TCP and then says nothing, or only an SSH banner."""
    servers: list[socket.socket] = []
    stop = threading.Event()

    def start(banner: bytes | None) -> int:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers.append(server)
        if banner is not None:
            def serve() -> None:
                server.settimeout(0.2)
                held = []
                while not stop.is_set():
                    try:
                        conn, _ = server.accept()
                    except OSError:
                        continue
                    conn.sendall(banner)
                    held.append(conn)  # then silence: no key exchange ever comes
                for conn in held:
                    conn.close()
            threading.Thread(target=serve, daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    stop.set()
    time.sleep(0.3)
    for server in servers:
        server.close()
