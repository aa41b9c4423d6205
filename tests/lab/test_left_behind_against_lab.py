"""Nothing of a run is left running on the host: after a TIMEOUT, a SIGTERM of the run, a dropped connection.

What runs on the host is read on the host's side: every process the lab's sshd started for a
session, wherever it was re-parented (tests/support/lab.py host_processes). The hang fault is the
lab `docker` wrapper exec'ing `sleep 120`: a command that never writes, so only a signal ends it.

paramiko:// ends a command it gives up on with the SSH "signal" request (TERM, then KILL). The
OpenSSH client cannot send that request (OpenSSH's mux.c: "If we ever support the signal channel
request"), and a pty, whose hangup would end the command, mixes stderr into stdout: under ssh://
a command cut short runs on until it ends by itself or next writes. Those cases are xfail(strict),
so the day they pass, the fault matrix of docs/operations.md is out of date.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import (
    EXAMPLE_MODULES,
    REPO,
    fault,
    host_processes,
    labctl,
    logged_commands,
    run_suite,
    settled_host_processes,
    ssh_connection,
    write_inventory,
)

#: Each test picks its transport (both, by parameter): they run in the paramiko pass of tests/lab only, where
#: no earlier ssh:// test has left a hung command on the host (the limit these tests document).
pytestmark = pytest.mark.pins_transport

class LeftRunning(AssertionError):
    """Processes of the run still run on the host."""


def assert_nothing_left_running() -> None:
    left = settled_host_processes()
    if left:
        raise LeftRunning(f"still running on the host: {left}")


OPENSSH_CANNOT_SIGNAL = pytest.mark.xfail(
    strict=True, raises=LeftRunning,
    reason="the OpenSSH client cannot send the signal request; a pty would mix stderr into stdout")


@pytest.fixture
def nothing_running_before(lab, command_log) -> Iterator[None]:
    """The host runs nothing of a session before the test, and nothing the test left behind after it."""
    assert settled_host_processes() == [], "a session's process was running before the test"
    yield
    for pid, _ in host_processes():  # left by an xfail case: stopped by pid, so the next test starts clean
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def session_of(pid: int) -> int:
    """The sshd process of the session that runs pid (its nearest ancestor named sshd)."""
    while pid > 1:
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
        pid = int(status["PPid"])
        if Path(f"/proc/{pid}/comm").read_text().startswith("sshd"):
            return pid
    raise AssertionError("no sshd session above the hung command")


def connection(scheme: str) -> str:
    port = int((labctl.RUN / "sshd.port").read_text())
    return ssh_connection() if scheme == "ssh" else f"paramiko://{labctl.LAB_USER}@127.0.0.1:{port}"


SCHEMES = [pytest.param("paramiko"), pytest.param("ssh", marks=OPENSSH_CANNOT_SIGNAL)]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_timeout_leaves_nothing_running_on_the_host(nothing_running_before, tmp_path, scheme):
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=connection(scheme), timeout=2)
    with fault("inspect", "hang"):
        run = run_suite(tmp_path, inventory=inventory)
        assert run.rc == 2, run.output
        assert {m["error"]["code"] for m in run.plan["modules"]} == {"TIMEOUT"}
        assert [c[0] for c in logged_commands()] == ["ps", "inspect"]
        assert_nothing_left_running()


def start_run_until_it_hangs(tmp_path: Path, inventory: Path) -> subprocess.Popen[str]:
    """The suite in a subprocess, once the host runs its hung inspect (the hang fault's sleep), or 30 s."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--reports-dir={tmp_path / 'reports'}",
                             f"--inventory={inventory}", f"--modules-dir={EXAMPLE_MODULES}"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("sleep" in args for _, args in host_processes()):
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_sigterm_of_the_run_leaves_nothing_running_on_the_host(nothing_running_before, tmp_path, scheme):
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=connection(scheme), timeout=60)
    with fault("inspect", "hang"):
        proc = start_run_until_it_hangs(tmp_path, inventory)
        assert any("sleep" in args for _, args in host_processes()), "the run never reached the hung inspect"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 2, output
        assert_nothing_left_running()


@pytest.mark.parametrize("scheme", ["paramiko", "ssh"])
@pytest.mark.parametrize("mode", ["drop", "drop-once"])
def test_a_dropped_connection_leaves_nothing_running_on_the_host(nothing_running_before, tmp_path, scheme, mode):
    """The lab's drop fault: the host's sshd session is killed during `docker inspect`."""
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=connection(scheme))
    with fault("inspect", mode):
        run = run_suite(tmp_path, inventory=inventory)
    assert run.rc == (2 if mode == "drop" else 0), run.output
    assert [c[0] for c in logged_commands()][:3] == ["ps", "inspect", "inspect"]  # the drop fired, and a retry
    assert_nothing_left_running()


@pytest.mark.parametrize("scheme", ["paramiko", "ssh"])
@pytest.mark.xfail(strict=True, raises=LeftRunning,
                   reason="a lost connection cannot carry a signal, and sshd hangs up only a session with a pty")
def test_a_connection_lost_during_a_hung_command_leaves_that_command(nothing_running_before, tmp_path, scheme):
    """The limit: the host's side of the connection dies while docker hangs; what it ran lives on until it
    ends by itself (or writes, into a closed pipe). The retry on the new connection is ended by the timeout."""
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=connection(scheme), timeout=4)
    with fault("inspect", "hang"):
        proc = start_run_until_it_hangs(tmp_path, inventory)
        [hung] = [pid for pid, args in host_processes() if args.startswith("sleep")]
        os.kill(session_of(hung), signal.SIGKILL)  # as the drop fault does, but while docker hangs
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 2, output
        assert_nothing_left_running()
