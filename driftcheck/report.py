"""The end of a run: the plan decided once, the artifacts written, the terminal told. pytest only."""

from __future__ import annotations

import signal
import sys
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from driftcheck import codes
from driftcheck.artifacts import discard_run, partial_dir, prepare_run, to_json, write_run
from driftcheck.plan import Plan, RunError, build_plan, iso
from driftcheck.printable import printable
from driftcheck.session import SIGNAL_NAMES, RunState
from driftcheck.summary import summary_lines

WORKER_OUTPUT = "driftcheck_hosts"


def _artifacts_error(state: RunState, exc: OSError) -> RunError:
    options = state.options
    failed = Path(exc.filename) if exc.filename else options.reports_dir
    plan_out = options.plan_out is not None and options.reports_dir.resolve() not in failed.resolve().parents
    folder = options.show(options.plan_out if plan_out and options.plan_out else options.reports_dir)
    flag = "--plan-out=PATH" if plan_out else "--reports-dir=DIR"
    return RunError(codes.ARTIFACTS_NOT_WRITTEN, f"could not write the run's artifacts ({options.show(failed)}: "
                    f"{exc.strerror or exc}); the results above are complete; free space or make {folder} "
                    f"writable, or pass another {flag}")


def _failed(state: RunState, plan: Plan, exc: OSError) -> Plan:
    discard_run(state.options.reports_dir, state.run_id)  # nothing half-written stays behind
    if any(e.code == codes.ARTIFACTS_NOT_WRITTEN for e in plan.errors):
        return plan
    return plan.with_error(_artifacts_error(state, exc))


def _write(config: pytest.Config, state: RunState, plan: Plan) -> None:
    if any(e.code == codes.ARTIFACTS_NOT_WRITTEN for e in plan.errors):
        return
    report = state.json_report
    xmlpath = config.option.xmlpath
    ours = xmlpath == str(partial_dir(state.options.reports_dir, state.run_id) / "junit.xml")
    try:
        junit = Path(xmlpath).read_bytes() if xmlpath and Path(xmlpath).is_file() else None
        data = plan.to_json()
        run_dir = write_run(state.options.reports_dir, data, report, junit, state.options.plan_out,
                            move_latest=not state.interrupted)
    except OSError as exc:
        state.plan = _failed(state, plan, exc)
        return
    if ours:
        # junitxml's "generated xml file" line names the file it wrote, which is now in the run folder.
        for plugin in config.pluginmanager.get_plugins():
            if getattr(plugin, "logfile", None) == xmlpath:
                plugin.logfile = str(run_dir / "junit.xml")


def _manifest_summary(terminalreporter: pytest.TerminalReporter, state: RunState) -> None:
    terminalreporter.ensure_newline()  # after the progress dots, before the section's rule
    terminalreporter.section("driftcheck validate")
    for error in state.load_errors:
        terminalreporter.write_line(printable(f"INVALID  {error.code}: {error}"), red=True)
    for warning in state.load_warnings:
        terminalreporter.write_line(printable(f"WARNING  {warning}; a run from this machine stops there "
                                              f"({warning.code})"), yellow=True)
    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    passed = len(terminalreporter.stats.get("passed", []))
    problems = len(state.load_errors) or failed
    show = state.options.show
    if problems or not passed:
        what = f"invalid: {problems} problem(s)" if problems else "no module to validate"
        terminalreporter.write_line(f"{what}; no host was contacted, no plan written; exit 2", red=True)
    else:
        warned = f" ({len(state.load_warnings)} warning(s) above)" if state.load_warnings else ""
        terminalreporter.write_line(f"valid{warned}: {passed} module(s) in {show(state.options.modules_dir)}, "
                                    f"the inventory {show(state.options.inventory)}; no host was contacted, "
                                    "no plan written",
                                    green=True)


class Reporter:
    """The hooks that end a drift run, for one session's state."""

    def __init__(self, state: RunState):
        self.state = state

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.state.plan_stdout is not None:
            sys.stdout = self.state.plan_stdout  # the terminal writer exists now, on stderr

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest raises Session.Interrupted (a KeyboardInterrupt) for collection errors and -x too.
        if not isinstance(excinfo.value, pytest.Session.Interrupted):
            self.state.interrupted = self.state.signal_received or SIGNAL_NAMES[signal.SIGINT]

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        """The plan and the exit status are decided before json-report and junitxml read them; the
        artifacts are written after those two have built theirs."""
        config, state = session.config, self.state
        if not state.drift:
            if state.offline and int(session.exitstatus) in (1, 5):
                session.exitstatus = pytest.ExitCode.INTERRUPTED  # an invalid manifest, or none: exit 2 (SPEC §7b)
            return (yield)
        state.finishing = True
        if state.worker:
            # The controller builds the plan; a worker only tells it what it sent to its hosts.
            workeroutput: dict[str, Any] = cast(Any, config).workeroutput
            workeroutput[WORKER_OUTPUT] = [h.to_json() for h in state.host_records()]
            return (yield)
        if config.option.collectonly:
            return (yield)
        errors = state.run_errors()
        try:
            prepare_run(state.options.reports_dir, state.run_id)
        except OSError as exc:
            errors.append(_artifacts_error(state, exc))
        state.plan = build_plan(run_id=state.run_id, started_at=iso(state.started), finished_at=iso(datetime.now(UTC)),
                                outcomes=state.outcomes.values(), hosts=state.host_records(), errors=errors,
                                pytest_status=int(session.exitstatus), previous=state.previous)
        session.exitstatus = state.plan.exit_code
        try:
            result = yield
        except OSError as exc:  # junitxml could not write its file
            result = None
            state.plan = _failed(state, state.plan, exc)
        else:
            _write(config, state, state.plan)
        session.exitstatus = state.plan.exit_code
        return result



    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        if self.state.plan is not None:
            json_report["plan"] = self.state.plan.to_json()
            self.state.json_report = json_report  # written with the run's other artifacts

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        state = self.state
        if state.offline and not state.worker:
            _manifest_summary(terminalreporter, state)
            return
        if state.plan is None:
            return
        terminalreporter.section("driftcheck")
        plan = state.plan.to_json()
        for line in summary_lines(plan):
            terminalreporter.ensure_newline()
            for text, colour in line:
                terminalreporter.write(text, **({colour: True} if colour else {}))
            terminalreporter.write("\n")
        failed = [e for e in state.plan.errors if e.code == codes.ARTIFACTS_NOT_WRITTEN]
        if not failed:
            run_dir = state.options.show(state.options.reports_dir / state.run_id)
            terminalreporter.write_line(f"artifacts: {run_dir}/ (plan.json, report.json, junit.xml, index.html)")


    def pytest_unconfigure(self, config: pytest.Config) -> None:
        state = self.state
        for signum, previous in state.previous_handlers.items():
            signal.signal(signum, previous)
        if state.plan_stdout is not None:
            # --drift-format json: the plan alone on the real stdout.
            if state.plan is not None:
                state.plan_stdout.buffer.write(to_json(state.plan.to_json()))
            state.plan_stdout.flush()
