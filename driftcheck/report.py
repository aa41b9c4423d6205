"""The end of a run: the plan decided once, the artifacts written, the terminal told. pytest only."""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from driftcheck import codes
from driftcheck.artifacts import (
    LatestNotALink,
    PlanOutNotWritten,
    Saved,
    artifact_names,
    discard_run,
    latest_blocker,
    partial_dir,
    plan_out_file,
    prepare_run,
    to_json,
    write_plan_out,
    write_run,
)
from driftcheck.history import archive_upkeep
from driftcheck.plan import Plan, RunError, build_plan, iso, observed
from driftcheck.printable import printable
from driftcheck.session import RunState
from driftcheck.signals import NAMES
from driftcheck.summary import arrow_for, plural, summary_lines

WORKER_OUTPUT = "driftcheck_hosts"
#: the artifacts a plugin writes, and why a run folder can lack them: the plugin was disabled
DISABLED = {"report.json": "pytest-json-report is disabled (-p no:pytest_jsonreport)",
            "junit.xml": "pytest's junitxml plugin is disabled (-p no:junitxml)"}


def _artifacts_error(state: RunState, exc: OSError, plan_out: bool = False) -> RunError:
    """ARTIFACTS_NOT_WRITTEN: what could not be written, why, and what to do about it."""
    options, show = state.options, state.options.show
    latest = options.reports_dir / "latest"
    if isinstance(exc, LatestNotALink):
        return RunError(codes.ARTIFACTS_NOT_WRITTEN, f"{show(latest)} is {exc.strerror}, not the symlink driftcheck "
                        f"keeps there: the run folder {show(options.reports_dir / state.run_id)}/ is written, but "
                        f"latest does not point at it; move {show(latest)} away or remove it (driftcheck never "
                        "removes what it did not write)")
    where = plan_out_file(options.plan_out).parent if plan_out and options.plan_out else options.reports_dir
    failed = Path(exc.filename) if exc.filename else where
    flag = "--plan-out=PATH" if plan_out else "--reports-dir=DIR"
    fix = f"free space on {show(where)}" if exc.errno == errno.ENOSPC else f"make {show(where)} writable"
    what = "--plan-out copy" if plan_out else "artifacts"
    return RunError(codes.ARTIFACTS_NOT_WRITTEN, f"could not write the run's {what} ({show(failed)}: "
                    f"{exc.strerror or exc}); the results above are complete; {fix}, or pass another {flag}")


def _junit(config: pytest.Config, state: RunState) -> tuple[str | None, bool]:
    """junit.xml's path (None when junitxml is disabled or not asked), and whether it is the run's own."""
    xmlpath: str | None = getattr(config.option, "xmlpath", None)  # -p no:junitxml: no such option
    return xmlpath, xmlpath == str(partial_dir(state.options.reports_dir, state.run_id) / "junit.xml")


def _stopped_by(session: pytest.Session) -> str | None:
    """The option that ended the run before every selected check ran (-x, --maxfail=N, --sw), if one did."""
    if not (session.shouldfail or session.shouldstop):
        return None
    option = session.config.option
    if getattr(option, "stepwise", False) or getattr(option, "stepwise_skip", False):
        return "--sw"
    maxfail = int(getattr(option, "maxfail", 0) or 0)
    return None if maxfail <= 0 else "-x" if maxfail == 1 else f"--maxfail={maxfail}"


def _nothing_checked(errors: list[RunError], pytest_status: int) -> str | None:
    """Why a run checked nothing and so gets no run folder: a usage error, or an empty selection."""
    if pytest_status == pytest.ExitCode.USAGE_ERROR:
        return "a usage error"
    if any(e.code == codes.NO_MODULES_SELECTED for e in errors):
        return str(codes.NO_MODULES_SELECTED)
    return None


def _name_junit(config: pytest.Config, where: str | None, write_to: str | None = None) -> None:
    """What junitxml's "generated xml file" line names: the file in the run folder, or (None) no line,
    for a file that is gone or never kept (write_to: where junitxml writes it instead, os.devnull).
    junitxml's plugin is found through the plugin manager (its `logfile` is what it writes and the line
    names); the line itself is dropped by JunitLine."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "LogXML" and hasattr(plugin, "logfile"):
            if where is None:
                config.stash[JUNIT_GONE] = True
                if write_to is not None:
                    plugin.logfile = write_to
            else:
                plugin.logfile = where


#: set when the run's junit.xml did not make it into a run folder
JUNIT_GONE = pytest.StashKey[bool]()


class JunitLine:
    """Drops junitxml's "generated xml file" terminal line when that file is gone (JUNIT_GONE)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter,
                                config: pytest.Config) -> Generator[None, object, object]:
        if not config.stash.get(JUNIT_GONE, False):
            return (yield)
        original = terminalreporter.write_sep

        def write_sep(sep: str, title: str | None = None, fullwidth: int | None = None, **markup: bool) -> None:
            if not (title or "").startswith("generated xml file:"):
                original(sep, title, fullwidth, **markup)

        terminalreporter.write_sep = write_sep  # type: ignore[method-assign,assignment]
        try:
            return (yield)
        finally:
            del terminalreporter.write_sep  # the class's own again


def _with_plan(report: dict[str, Any] | None, plan: Plan) -> dict[str, Any] | None:
    return None if report is None else {**report, "exitcode": plan.exit_code, "plan": plan.to_json()}


def _save(config: pytest.Config, state: RunState, plan: Plan, writable: bool, move_latest: bool) -> Saved:
    """Write the run folder (and --plan-out); when one of the two cannot be written, the plan still goes to
    the other, saying so. Returns what was written; state.plan becomes the plan as written."""
    options = state.options
    xmlpath, ours = _junit(config, state)
    report = _with_plan(state.json_report, plan) if state.json_report is not None else None
    saved = Saved(None, (), None)
    junit: Path | None = None
    if writable:
        try:
            junit = Path(xmlpath) if xmlpath and Path(xmlpath).is_file() else None
            run_dir = write_run(options.reports_dir, plan.to_json(), report, junit, options.plan_out, move_latest)
            saved = Saved(run_dir, artifact_names(report is not None, junit is not None), None)
        except PlanOutNotWritten as exc:
            plan = plan.with_error(_artifacts_error(state, exc, plan_out=True))
            try:  # the run folder, without the copy that failed, saying so; latest stays where it was
                run_dir = write_run(options.reports_dir, plan.to_json(), _with_plan(report, plan), junit, None,
                                    move_latest=False)
                saved = Saved(run_dir, artifact_names(report is not None, junit is not None), None)
            except OSError as again:
                plan = plan.with_error(_artifacts_error(state, again))
        except LatestNotALink as exc:  # it became one after the run began: the run folder is in place
            plan = plan.with_error(_artifacts_error(state, exc))
            saved = Saved(options.reports_dir / state.run_id, artifact_names(report is not None, junit is not None),
                          None)
        except OSError as exc:
            plan = plan.with_error(_artifacts_error(state, exc))
            writable = False
    if not writable and options.plan_out is not None:
        try:
            write_plan_out(options.plan_out, to_json(plan.to_json()))
            saved = Saved(None, (), plan_out_file(options.plan_out))
        except OSError as exc:
            plan = plan.with_error(_artifacts_error(state, exc, plan_out=True))
    discard_run(options.reports_dir, state.run_id)  # whatever did not make it into place
    if ours and saved.run_dir is not None:
        # junitxml's "generated xml file" line names the file it wrote, which is now in the run folder.
        _name_junit(config, str(saved.run_dir / "junit.xml"))
    elif ours:
        _name_junit(config, None)
    state.plan = plan
    return saved


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
        folder = show(state.options.modules_dir)
        what = f"invalid: {plural(problems, 'problem')}" if problems else "no module to validate" if state.modules \
            else f"no module in {folder} yet (`make import HOST=<name>` adopts what a host runs)"
        terminalreporter.write_line(f"{what}; no host was contacted, no plan written; exit 2", red=True)
    else:
        warned = f" ({plural(len(state.load_warnings), 'warning')} above)" if state.load_warnings else ""
        terminalreporter.write_line(f"valid{warned}: {plural(passed, 'module')} in {show(state.options.modules_dir)}, "
                                    f"the inventory {show(state.options.inventory)}; no host was contacted, "
                                    "no plan written",
                                    green=True)


class Reporter:
    """The hooks that end a drift run, for one session's state."""

    def __init__(self, state: RunState):
        self.state = state
        #: why the run checked nothing (it then writes no run folder), or None
        self.nothing_checked: str | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.state.plan_stdout is not None:
            sys.stdout = self.state.plan_stdout  # the terminal writer exists now, on stderr

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest raises Session.Interrupted (a KeyboardInterrupt) for collection errors and -x too.
        state = self.state
        if not isinstance(excinfo.value, pytest.Session.Interrupted):
            state.interrupted = state.interrupted or state.signals.received or NAMES[signal.SIGINT]
            state.signals.shield()  # a second signal must not stop the plan of the first

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        """The plan and the exit status are decided before json-report and junitxml read them; the
        artifacts are written after those two have built theirs."""
        config, state = session.config, self.state
        if not state.drift:
            if state.offline and int(session.exitstatus) in (1, 5):
                session.exitstatus = pytest.ExitCode.INTERRUPTED  # an invalid manifest, or none: exit 2 (SPEC §7b)
            return (yield)
        state.signals.shield()
        if state.worker:
            # The controller builds the plan; a worker only tells it what it sent to its hosts.
            workeroutput: dict[str, Any] = cast(Any, config).workeroutput
            workeroutput[WORKER_OUTPUT] = [h.to_json() for h in state.host_records()]
            return (yield)
        if config.option.collectonly:
            result = yield
            state.signals.done(int(session.exitstatus))
            return result
        options = state.options
        errors = state.run_errors()
        writable = True
        self.nothing_checked = _nothing_checked(errors, int(session.exitstatus))
        if self.nothing_checked:
            # a run that checked nothing leaves no run folder, not even its junit.xml (--plan-out still gets the plan)
            writable = False
            if _junit(config, state)[1]:
                _name_junit(config, None, write_to=os.devnull)
        else:
            try:
                prepare_run(options.reports_dir, state.run_id)
            except OSError as exc:
                errors.append(_artifacts_error(state, exc))
                writable = False
        # latest moves only with a run that looked at its hosts (SPEC §7b): not with an invalid manifest or
        # inventory, an empty selection or an interruption
        move_latest = not state.interrupted and not state.load_errors and bool(state.outcomes)
        blocker = latest_blocker(options.reports_dir) if writable and move_latest else None
        if blocker is not None:
            errors.append(_artifacts_error(state, LatestNotALink(0, blocker, str(options.reports_dir / "latest"))))
            move_latest = False
        plan = build_plan(run_id=state.run_id, started_at=iso(state.started), finished_at=iso(datetime.now(UTC)),
                          # after a usage error (-k's syntax), what was collected was never selected
                          outcomes=() if int(session.exitstatus) == pytest.ExitCode.USAGE_ERROR else
                          state.outcomes.values(), hosts=state.host_records(), errors=errors,
                          pytest_status=int(session.exitstatus), previous=state.previous,
                          stopped_by=_stopped_by(session),
                          source=None if state.source is None else
                          state.source.result(wait=not state.interrupted))
        # ... and at least one host answered
        move_latest = move_latest and observed(plan.to_json())
        state.latest_moved = move_latest
        state.plan = plan
        session.exitstatus = plan.exit_code
        try:
            result = yield
        except OSError as exc:  # junitxml could not write its file (a full or read-only reports folder)
            result = None
            if writable:  # else the folder's own error already says it
                plan = plan.with_error(_artifacts_error(state, exc))
            writable = False
            if state.observations is not None:
                state.observations.close()  # the session teardown that follows junitxml's hook did not run
        except BaseException:
            discard_run(options.reports_dir, state.run_id)  # a crash leaves no partial folder behind
            raise
        state.saved = _save(config, state, plan, writable, move_latest)
        if state.saved.run_dir is not None:  # --keep-runs, then reports/index.html (the history)
            state.archive_notes += archive_upkeep(options.reports_dir, state.options.keep_runs, state.plan.to_json(),
                                                  options.show)
        session.exitstatus = state.plan.exit_code
        if state.plan_stdout is not None:
            # --drift-format json: the plan alone on the real stdout, as soon as it is final.
            state.plan_stdout.buffer.write(to_json(state.plan.to_json()))
            state.plan_stdout.flush()
        state.signals.done(state.plan.exit_code)  # from here a signal ends the process with this exit code
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
        # the stream pytest's terminal writes to: stdout, or stderr under --drift-format=json
        stream = sys.__stderr__ if state.plan_stdout is not None else sys.__stdout__
        for line in summary_lines(plan, arrow_for(getattr(stream, "encoding", None))):
            terminalreporter.ensure_newline()
            for text, colour in line:
                terminalreporter.write(text, **({colour: True} if colour else {}))
            terminalreporter.write("\n")
        saved, show = state.saved, state.options.show
        if self.nothing_checked:
            plan_out = f"; the plan is in {show(saved.plan_only)}" if saved is not None and saved.plan_only else ""
            terminalreporter.write_line(f"no run folder written: nothing was checked ({self.nothing_checked})"
                                        f"{plan_out}")
        elif saved is not None and saved.run_dir is not None:
            if not state.latest_moved:
                why = ("the run was interrupted" if state.interrupted else "a manifest or the inventory is invalid"
                       if state.load_errors else "this run observed no host")
                terminalreporter.write_line(f"{show(state.options.reports_dir)}/latest not moved: {why} (it stays "
                                            "on the last run that observed its hosts)")
            listed = "; ".join([", ".join(saved.names),
                                *(f"no {name}: {why}" for name, why in DISABLED.items() if name not in saved.names)])
            terminalreporter.write_line(f"artifacts: {show(saved.run_dir)}/ ({listed})")
            for note in state.archive_notes:
                terminalreporter.write_line(printable(note))
        elif saved is not None and saved.plan_only is not None:
            terminalreporter.write_line(f"plan: {show(saved.plan_only)} (only the plan: the run folder could not be "
                                        "written)")


    def pytest_unconfigure(self, config: pytest.Config) -> None:
        state = self.state
        state.signals.restore()
        if state.signals.stopped and state.plan is not None:
            sys.stderr.write(f"driftcheck: {state.signals.stopped} after the plan was written: stopped at once, "
                             f"exit {state.plan.exit_code} as the plan says\n")
            sys.stderr.flush()
        if state.plan_stdout is not None:
            state.plan_stdout.flush()
