"""RunSignals (driftcheck/signals.py): what SIGTERM does in each phase, with real signals to this process."""

from __future__ import annotations

import atexit
import signal

import pytest

from driftcheck import signals as signals_module
from driftcheck.signals import RunSignals


@pytest.fixture
def signals():
    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or procgroup's own once a helper ran in this process
    handler = RunSignals()
    assert handler.install()
    yield handler
    handler.restore()
    # a stop leaves the process at exit with os._exit: not this one
    atexit.unregister(signals_module._exit_now)
    assert signal.getsignal(signal.SIGTERM) is before


def test_noting_then_raising(signals):
    signal.raise_signal(signal.SIGTERM)  # noting: start-up
    assert signals.take_pending() == "SIGTERM" and signals.take_pending() is None
    signals.raising()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        signal.raise_signal(signal.SIGTERM)


def test_shielded_then_done_ends_with_the_decided_exit_code(signals):
    signals.shield()
    signal.raise_signal(signal.SIGINT)  # during the plan write: noted, nothing raised
    with pytest.raises(SystemExit) as info:
        signals.done(1)
    assert info.value.code == 1 and signals.stopped == "Ctrl-C (SIGINT)"


def test_after_done_a_signal_ends_at_once(signals):
    signals.shield()
    signals.done(0)  # nothing pending: goes on
    with pytest.raises(SystemExit) as info:
        signal.raise_signal(signal.SIGTERM)
    assert info.value.code == 0 and signals.stopped == "SIGTERM"


def test_a_run_that_is_no_drift_run_gets_a_noted_signal_back_the_default_way():
    handler = RunSignals()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert handler.install()
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            handler.restore(redeliver=True)  # under pytest's own handler again, SIGINT is a KeyboardInterrupt
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
