"""SIGTERM and SIGINT at every phase of a run (issue 15), each a real signal to a real subprocess.

The inner run loads tests/plugin/phases.py, which holds it at one phase (a marker file says it got
there); the test then signals it. Before start-up ends the signal is noted and the run ends before
it collects; while loading or collecting it stops the run at once; after the plan is written it
ends the process at once with the exit code the plan decided (it used to be ignored for the whole
summary: 2000 failing modules took 231 s to end).
"""

from __future__ import annotations

import re
import signal
import time

import pytest

#: how long a phase is held: a run that ignores the signal ends only after this
HELD = 60
#: how soon after the signal the run must have ended
PROMPT = 10


def start_at(lab, phase: str, *args: str, held: float = HELD):
    marker = lab.root / f"reached-{phase}"
    started = lab.start("-p", "tests.plugin.phases", *args,
                        env={"STALL_AT": phase, "STALL_MARKER": str(marker), "STALL_SECONDS": str(held)})
    started.wait_for(marker)
    return started


def signal_and_finish(started, signum: int):
    started.proc.send_signal(signum)
    sent = time.monotonic()
    run = started.finish(timeout=HELD + 30)
    return run, time.monotonic() - sent


def drift_setup(lab) -> None:
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")


SIGNALS = pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
NAME = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


def assert_interrupted_alone(lab, run, signum: int) -> None:
    """Exit 2 with INTERRUPTED and nothing else, a plan in a run folder, latest not moved, no host contacted."""
    assert run.rc == 2, run.output
    assert run.plan is not None, "no plan was written\n" + run.output
    assert [e["code"] for e in run.plan["errors"]] == ["INTERRUPTED"], run.plan["errors"]
    assert NAME[signum] in run.plan["errors"][0]["message"]
    assert run.plan["exit_code"] == 2 and run.plan["modules"] == []
    assert not (lab.reports / "latest").exists(), "an interrupted run moved latest"
    assert run.commands == []
    assert "INTERNALERROR" not in run.output and "Traceback" not in run.output


@SIGNALS
def test_a_signal_at_start_up_is_interrupted_not_killed(lab, signum):
    drift_setup(lab)
    # held 2 s: a signal at start-up is noted (nothing of the run can stop yet) and acted on once it can
    started = start_at(lab, "startup", held=2)
    run, took = signal_and_finish(started, signum)
    assert run.rc != -signum, f"killed by the signal (exit {128 + signum} in a shell)\n{run.output}"
    assert_interrupted_alone(lab, run, signum)
    assert took < PROMPT


@SIGNALS
def test_a_signal_while_loading_stops_loading_at_once(lab, signum):
    drift_setup(lab)
    run, took = signal_and_finish(start_at(lab, "load"), signum)
    assert_interrupted_alone(lab, run, signum)
    assert took < PROMPT, f"the run went on for {took:.1f} s after the signal"


def test_a_signal_while_collecting_is_interrupted_alone_not_no_modules_selected(lab):
    drift_setup(lab)
    run, took = signal_and_finish(start_at(lab, "collect"), signal.SIGTERM)
    assert_interrupted_alone(lab, run, signal.SIGTERM)
    assert took < PROMPT


@SIGNALS
def test_a_signal_during_the_summary_ends_the_run_at_once_with_its_exit_code(lab, signum):
    drift_setup(lab)
    run, took = signal_and_finish(start_at(lab, "summary"), signum)
    assert took < PROMPT, f"the signal was ignored: the run went on for {took:.1f} s"
    assert run.rc == 1, run.output  # drift, as decided before the signal
    assert run.plan is not None and run.plan["exit_code"] == 1
    assert [e["code"] for e in run.plan["errors"]] == []
    assert (lab.reports / "latest").resolve() == run.run_dir
    assert f"driftcheck: {NAME[signum]} after the plan was written: stopped at once, exit 1 as the plan says" \
        in run.stderr, run.output


def test_a_signal_during_the_plan_write_lets_it_finish_then_ends_the_run(lab):
    drift_setup(lab)
    # the write is held 3 s: the signal is noted, the write goes on, and the run ends right after it
    run, took = signal_and_finish(start_at(lab, "write", held=3), signal.SIGTERM)
    assert run.rc == 1, run.output
    assert run.run_dir is not None and sorted(p.name for p in run.run_dir.iterdir()) == [
        "index.html", "junit.xml", "plan.json", "report.json"]
    assert run.plan is not None and run.plan["exit_code"] == 1
    assert (lab.reports / "latest").resolve() == run.run_dir
    assert not re.search(r"^\d+ modules: ", run.stdout, re.MULTILINE), "the summary was printed after all"
    assert "SIGTERM after the plan was written" in run.stderr
    assert took < PROMPT


def test_json_format_still_prints_the_plan_when_stopped_after_the_write(lab):
    drift_setup(lab)
    run, _ = signal_and_finish(start_at(lab, "summary", "--drift-format=json"), signal.SIGTERM)
    assert run.rc == 1, run.output
    assert run.plan_text is not None and run.stdout == run.plan_text.rstrip("\n")
