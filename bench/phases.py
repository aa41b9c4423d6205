"""pytest plugin for the benchmark: when each phase of a suite run ended (`-p phases`).

Writes {"sessionstart", "collected", "end", "commands": [[start, end], ...]} (epoch seconds) to
$BENCH_PHASES. Observation is timed around driftcheck's Transport.run, the only door to a host.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from driftcheck import transport
from driftcheck.records import Output

TIMES: dict[str, Any] = {"commands": []}
_real_run = transport.Transport.run


def _timed_run(self: transport.Transport, argv: Any) -> Output:
    started = time.time()
    try:
        return _real_run(self, argv)
    finally:
        TIMES["commands"].append([started, time.time()])


transport.Transport.run = _timed_run  # type: ignore[method-assign]


def pytest_sessionstart(session: Any) -> None:
    TIMES["sessionstart"] = time.time()


def pytest_collection_finish(session: Any) -> None:
    TIMES["collected"] = time.time()


def pytest_unconfigure(config: Any) -> None:
    TIMES["end"] = time.time()
    path = os.environ.get("BENCH_PHASES")
    if path:
        with open(path, "w") as handle:
            json.dump(TIMES, handle)
