"""Helpers for tests about local helper processes: is a pid still running, wait for a file."""

from __future__ import annotations

import time
from pathlib import Path


def running(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone(*pids: int, within: float = 3.0) -> bool:
    """Whether every pid stops running within a few seconds (init reaps orphans asynchronously)."""
    deadline = time.monotonic() + within
    while any(running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for(path: Path, within: float = 10.0) -> str:
    """The text of a file another process writes, once it is there and complete (ends with a newline)."""
    deadline = time.monotonic() + within
    while True:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {within}s")
        time.sleep(0.02)
