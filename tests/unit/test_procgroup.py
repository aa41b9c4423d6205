"""procgroup: local helpers in their own process group, fed and read by a deadline, never left running."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from driftcheck import procgroup
from tests.support.processes import gone, running


def test_stdin_larger_than_a_pipe_buffer_goes_through_and_output_comes_back():
    data = b"x" * (1024 * 1024) + b"\n"
    proc = procgroup.start(["cat"], stdin=subprocess.PIPE)
    rc, out, err = procgroup.communicate(proc, time.monotonic() + 10, data)
    assert (rc, out, err) == (0, data, b"")
    assert proc.pid not in procgroup._LIVE


def test_the_exit_status_is_the_helpers_own():
    proc = procgroup.start(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert procgroup.communicate(proc, time.monotonic() + 10) == (7, b"out\n", b"err\n")


def test_what_a_helper_leaves_in_its_group_is_killed_when_it_exits():
    """A child that closed its output and outlives its parent (a daemonised ProxyCommand) goes too."""
    proc = procgroup.start(["sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"])
    rc, out, _ = procgroup.communicate(proc, time.monotonic() + 10)
    assert rc == 0 and gone(int(out))


def test_at_the_deadline_the_whole_group_is_killed():
    proc = procgroup.start(["sh", "-c", "sleep 600 & echo $!; wait"])
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    started = time.monotonic()
    with pytest.raises(procgroup.Deadline):
        procgroup.communicate(proc, time.monotonic() + 0.5)
    assert time.monotonic() - started < 2
    assert proc.returncode is not None and gone(child)


def test_output_beyond_the_cap_kills_the_group():
    proc = procgroup.start([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"])
    with pytest.raises(procgroup.TooMuchOutput):
        procgroup.communicate(proc, time.monotonic() + 10, cap=1024 * 1024)
    assert not running(proc.pid)


def test_a_helper_runs_in_a_process_group_of_its_own():
    proc = procgroup.start(["sleep", "600"])
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert not procgroup.exited(proc)
    finally:
        procgroup.kill_group(proc)
    assert procgroup.exited(proc) and proc.pid not in procgroup._LIVE
