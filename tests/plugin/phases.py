"""A pytest plugin for the inner runs of the lifecycle tests (`-p tests.plugin.phases`): it holds the run
at one phase, so a test can send it a real signal there, or crashes it there.

STALL_AT=<phase> creates the file STALL_MARKER when the run gets there, then sleeps STALL_SECONDS;
CRASH_AT=<phase> raises RuntimeError there. Phases, in the order a run meets them:

    startup   this plugin's import, while pytest is still parsing its command line
    load      driftcheck reading the modules and the inventory (pytest_configure)
    collect   collecting a check file
    write     writing plan.json into the run folder
    summary   the terminal summary, after the plan is written
    finish    pytest_sessionfinish (crash only)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

STALL_AT = os.environ.get("STALL_AT", "")
CRASH_AT = os.environ.get("CRASH_AT", "")


def reached(phase: str) -> None:
    if phase == CRASH_AT:
        raise RuntimeError(f"crashed at {phase} on purpose (tests/plugin/phases.py)")
    if phase != STALL_AT:
        return
    Path(os.environ["STALL_MARKER"]).write_text(phase)
    time.sleep(float(os.environ.get("STALL_SECONDS", "30")))


reached("startup")

if "load" in (STALL_AT, CRASH_AT):
    import driftcheck.session

    _discover = driftcheck.session.discover

    def _stalling_discover(*args: Any, **kwargs: Any) -> Any:
        reached("load")
        return _discover(*args, **kwargs)

    driftcheck.session.discover = _stalling_discover

if "write" in (STALL_AT, CRASH_AT):
    import driftcheck.artifacts

    _write_atomic = driftcheck.artifacts.write_atomic

    def _stalling_write_atomic(path: Path, data: bytes) -> None:
        if path.name == "plan.json" and path.parent.name.endswith(".partial"):
            reached("write")
        _write_atomic(path, data)

    driftcheck.artifacts.write_atomic = _stalling_write_atomic


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module):
        reached("collect")


def pytest_sessionfinish(session: pytest.Session) -> None:
    reached("finish")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    reached("summary")
