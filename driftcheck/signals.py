"""SIGTERM and SIGINT over a drift run's life: what a signal does depends on where the run is. pytest-free.

    phase      from                                   a signal
    noting     the plugin's registration (start-up),  is noted; pytest_configure turns a signal noted
               the rest of pytest_configure           at start-up into INTERRUPTED, and the run
                                                      stops before it collects
    raising    loading the modules and the inventory, raises KeyboardInterrupt: loading stops, or
               collection, the checks                 pytest ends the session as interrupted
                                                      (INTERRUPTED, exit 2, the plan written)
    shielded   from the end of the session until the  is noted: the plan and its artifacts are
               plan is written (milliseconds)         finished first
    done       after the plan is written: the         ends the process at once (SystemExit) with
               summary, pytest's own reports          the exit code the plan decided

A signal noted while shielded ends the process as soon as the write is done. The handlers are
installed only in the main thread of a drift run's controller, and the previous handlers are
put back when the run ends (or at once, for a run that is no drift run).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from enum import Enum
from typing import Any

NAMES: dict[int, str] = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


class Phase(Enum):
    NOTING = "noting"
    RAISING = "raising"
    SHIELDED = "shielded"
    DONE = "done"


class RunSignals:
    """The run's SIGTERM and SIGINT handler; see the module docstring for what it does when."""

    def __init__(self) -> None:
        self.phase = Phase.NOTING
        #: the last signal received, by name ("SIGTERM"), and its number
        self.received: str | None = None
        self.received_number: int | None = None
        #: a signal noted (not acted on) while noting or shielded, until someone acts on it
        self.pending: str | None = None
        #: the exit code the plan decided (phase done)
        self.exit_code = 2
        #: the signal that ended the process after the plan was written, by name
        self.stopped: str | None = None
        self.previous: dict[int, Any] = {}

    def install(self) -> bool:
        """Take SIGTERM and SIGINT (main thread only; elsewhere signal.signal raises); False if not installed."""
        if self.previous or threading.current_thread() is not threading.main_thread():
            return bool(self.previous)
        for signum in NAMES:
            self.previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self, redeliver: bool = False) -> None:
        """Put the previous handlers back; with redeliver, a pending signal is then raised again under them."""
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous.clear()
        number, self.received_number = self.received_number, None
        if redeliver and self.pending is not None and number is not None:
            self.pending = None
            signal.raise_signal(number)

    def take_pending(self) -> str | None:
        """The signal noted so far, now acted on by the caller."""
        pending, self.pending = self.pending, None
        return pending

    def noting(self) -> None:
        self.phase = Phase.NOTING

    def raising(self) -> None:
        """While loading, collecting and checking: a signal stops the run where it is."""
        self.phase = Phase.RAISING

    def shield(self) -> None:
        """From the end of the session until the plan is written."""
        self.phase = Phase.SHIELDED

    def done(self, exit_code: int) -> None:
        """The plan is written with this exit code; a signal noted meanwhile ends the process now."""
        self.exit_code = exit_code
        self.phase = Phase.DONE
        pending = self.take_pending()
        if pending is not None:
            self._stop(pending)

    def _handle(self, signum: int, frame: Any) -> None:
        name = NAMES.get(signum, f"signal {signum}")
        self.received, self.received_number = name, signum
        if self.phase is Phase.RAISING:
            raise KeyboardInterrupt(name)
        if self.phase is Phase.DONE:
            self._stop(name)
        self.pending = name

    def _stop(self, name: str) -> None:
        """End the process with the decided exit code: unwind (pytest_unconfigure still runs), then leave
        without tearing down the heap (a run of thousands of checks spends seconds freeing it)."""
        self.stopped = name
        atexit.register(_exit_now, self.exit_code)
        raise SystemExit(self.exit_code)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)
