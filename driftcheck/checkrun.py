"""How one drift check runs: its fixtures observe what the registry says it needs (a failure is
a setup error), judge with the registry's pure function and the run's policy, and record the
outcome for the plan (user_properties, so it reaches xdist's controller too). pytest only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import replace
from types import TracebackType
from typing import Any

import pytest

from driftcheck.compare import ProjectOnHost
from driftcheck.errors import ObservationError
from driftcheck.manifest import Module
from driftcheck.plan import Problem
from driftcheck.policy import active_waiver, apply_policy
from driftcheck.printable import printable
from driftcheck.registry import BY_NAME
from driftcheck.session import Observations, RunState
from driftcheck.verdict import Verdict

STATE = pytest.StashKey[RunState]()
#: the user_properties key of what a check recorded
PROPERTY = "driftcheck"


def check_name(item: pytest.Item) -> str:
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    return name.removeprefix("test_")


def _record(node: pytest.Item, kind: str, value: dict[str, Any]) -> None:
    # JSON text: junit.xml shows a property's value as it is, so it must not be a Python repr.
    node.user_properties.append((PROPERTY, json.dumps({"kind": kind, **value})))


def observations(state: RunState) -> Observations:
    """The run's observations of its hosts, made by the first check (a plain function, not a session
    fixture: one fixture less to look up per check); the session's end closes every connection."""
    if state.observations is None:
        state.observations = Observations(state.hosts, ((o.check, state.subjects[n])
                                                        for n, o in state.outcomes.items()),
                                          state.worker, state.options.max_connections)
    return state.observations


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.observations is not None:
        state.observations.close()


def _failure(error: ObservationError, of_host: bool) -> str:
    """A check's setup error: one host down fails every check of its modules, so each says only the
    code; the driftcheck summary's line for the host has the message, once."""
    if of_host:
        return f"{error.code}: host {error.host} could not be observed; see the host's error in the driftcheck summary"
    return f"{error.code}: {error.message}"


@pytest.fixture
def drift_check(request: pytest.FixtureRequest, drift_subject: Module | ProjectOnHost) -> Callable[[], None]:
    """Set-up observes what the check needs; calling it judges, records the verdict and fails on drift."""
    state = request.config.stash[STATE]
    node = request.node
    check = BY_NAME[check_name(node)]
    failure: str | None = None
    try:
        observed = observations(state).observed_for(check, drift_subject)
    except ObservationError as exc:
        _record(node, "error", {"code": exc.code, "message": exc.message})
        failure = _failure(exc, observations(state).is_host_error(exc))
    if failure is not None:  # outside the except: pytest would print the ObservationError too
        pytest.fail(printable(failure), pytrace=False)
    module = drift_subject if isinstance(drift_subject, Module) else None

    def judge() -> None:
        __tracebackhide__ = True
        verdict = apply_policy(check, module, check.run(drift_subject, observed),
                               strict_images=state.options.strict_images, today=state.started.date())
        _record(node, "verdict", verdict.to_json())
        if verdict.changes:
            pytest.fail(verdict.failure(), pytrace=False)

    return judge


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """A drift check's failure (its verdict, or its host's error) is reported from the frame that raised
    it on: pytest would walk, and stat the file of, each of the two dozen frames of its own machinery
    above it, for every failing check, to cut them off again (Function._traceback_filter). The report
    is the same: the same frames, the same one line."""
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, pytest.fail.Exception) and not excinfo.value.pytrace \
            and "drift_check" in getattr(item, "fixturenames", ()) and isinstance(item, pytest.Function):
        tb: TracebackType | None = excinfo.tb
        if call.when == "call":
            while tb is not None and tb.tb_frame.f_code is not item.function.__code__:
                tb = tb.tb_next
        else:
            while tb is not None and tb.tb_frame.f_code.co_filename != __file__:
                tb = tb.tb_next
        if tb is not None:
            call.excinfo = pytest.ExceptionInfo.from_exc_info((excinfo.type, excinfo.value, tb))
    return (yield)


class Recorder:
    """Turns each selected check's reports into its outcome for the plan."""

    def __init__(self, state: RunState):
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        if report.when != "call" and report.passed:
            return  # a passing set-up or teardown changes nothing: no JSON to read back, per check
        outcome = state.outcomes.get(report.nodeid)
        if outcome is None:
            return
        props = [json.loads(value) for key, value in report.user_properties
                 if key == PROPERTY and isinstance(value, str)]
        errors = [p for p in props if p["kind"] == "error"]
        verdicts = [p for p in props if p["kind"] == "verdict"]
        if errors:
            outcome = replace(outcome, error=Problem(errors[-1]["code"], errors[-1]["message"]))
        if verdicts:
            outcome = replace(outcome, verdict=Verdict.from_json(verdicts[-1]))
        if report.when == "setup" and report.failed:
            outcome = replace(outcome, outcome="error")
        elif report.when == "setup" and report.skipped:
            subject = state.subjects[report.nodeid]
            waiver = active_waiver(subject, outcome.check, state.started.date()) \
                if isinstance(subject, Module) else None
            outcome = replace(outcome, outcome="skipped", ignored=waiver)
        elif report.when == "call":
            drift = report.failed and bool(outcome.verdict.changes) and bool(verdicts)
            outcome = replace(outcome, outcome="passed" if report.passed else "failed" if drift else "error")
        elif report.when == "teardown" and report.failed:
            outcome = replace(outcome, outcome="error")
        state.outcomes[report.nodeid] = outcome
