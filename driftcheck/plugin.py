"""The pytest plugin: options, the kind of run, collection and parametrization. pytest only.

Its parts, each registered here: checkrun.py (fixtures: observe, judge and record each check),
report.py (the plan, the artifacts, the terminal) and xdistpart.py (xdist's controller, only
under xdist).
"""

from __future__ import annotations

import gc
import logging
import os
import shlex
import sys
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftcheck import checkrun
from driftcheck.artifacts import load_previous, partial_dir
from driftcheck.checkrun import STATE, Recorder, check_name
from driftcheck.compare import ProjectOnHost
from driftcheck.composehash import start_budget
from driftcheck.manifest import Module
from driftcheck.options import FORMATS, OPTIONS, RunOptions
from driftcheck.plan import new_run_id
from driftcheck.printable import printable
from driftcheck.provenance import SourceProbe
from driftcheck.registry import BY_NAME
from driftcheck.report import JunitLine, Reporter
from driftcheck.selection import MANIFEST_FILE, requires_manifest
from driftcheck.session import RunState, Subject, subject_id
from driftcheck.signals import RunSignals

MARKERS = (
    "drift: a drift check generated from a module.yaml",
    "xdist_group(name): tests of one host run on one xdist worker",
    "manifest: offline validation of the manifests and the inventory (pytest -m manifest, make validate); "
    "contacts no host, writes no plan",
)


#: SIGTERM and SIGINT from this plugin's registration (start-up) until pytest_configure takes them
_STARTUP: RunSignals | None = None
SIGNALS = pytest.StashKey[RunSignals]()


def pytest_addoption(parser: pytest.Parser) -> None:
    global _STARTUP
    # pytest calls this as it registers the plugin, early in start-up: a signal from now on is noted
    # (signals.py), and a drift run turns it into INTERRUPTED instead of dying with 143.
    signals = RunSignals()
    if signals.install():
        _STARTUP = signals
    group = parser.getgroup("driftcheck", "drift check of Docker Compose hosts")
    for option in OPTIONS:
        if option.switch:
            group.addoption(option.flag, dest=f"drift_{option.dest}", action="store_true", default=False,
                            help=f"{option.help} (env {option.env}=1)")
        else:
            group.addoption(option.flag, dest=f"drift_{option.dest}", default=None, metavar=option.metavar,
                            choices=FORMATS if option.dest == "format" else None,
                            help=f"{option.help} (env {option.env})")


def _reaches(config: pytest.Config, checks: Path) -> bool:
    """Whether the command line reaches checks/ (a run of the project's own tests/ is no drift run)."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == checks or checks in path.parents or path in checks.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _STARTUP
    signals, _STARTUP = _STARTUP or RunSignals(), None
    config.stash[SIGNALS] = signals  # restored by pytest_unconfigure, also after a usage error here
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    root = config.inipath.parent if config.inipath else config.rootpath
    try:
        options = RunOptions.build(root, config.invocation_params.dir,
                                   {o.dest: config.getoption(f"drift_{o.dest}") for o in OPTIONS}, os.environ)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    start_budget(options.compose_budget)  # every local docker-compose call of this run shares it
    try:
        previous = None if options.compare_path is None else load_previous(options.compare_path)
    except ValueError as exc:
        raise pytest.UsageError(printable(f"--compare-with={options.compare_with}: {exc}; expected a plan.json, a "
                                          "run folder, or latest")) from None
    offline = requires_manifest(config.option.markexpr or "")
    worker = hasattr(config, "workerinput")
    now = datetime.now(UTC)
    drift = not offline and (worker or _reaches(config, root / "checks"))
    state = RunState(options, new_run_id(now), now, offline=offline, drift=drift, worker=worker, previous=previous,
                     signals=signals)
    listing = bool(config.option.collectonly)
    if drift and not worker and signals.install():
        state.load_interruptibly(listing=listing)
    else:
        signals.restore(redeliver=True)  # no drift run (or an xdist worker): the signals behave as pytest's
        state.load(listing=listing)
    for tag in sorted({t for m in state.modules for t in m.tags}):
        config.addinivalue_line("markers", f"{tag}: modules tagged {tag}")
    config.stash[STATE] = state
    config.pluginmanager.register(checkrun, "driftcheck-checkrun")  # its fixtures
    config.pluginmanager.register(Recorder(state), "driftcheck-recorder")
    config.pluginmanager.register(Reporter(state), "driftcheck-reporter")
    config.pluginmanager.register(JunitLine(), "driftcheck-junit-line")
    if state.drift:
        _start_drift_run(config, state)


#: objects allocated (less those freed) between two young-generation collections of a drift run:
#: CPython's 700 makes the collector walk every young object again about every 700 allocations, and a
#: run of 5000 modules allocates millions (about a sixth of its CPU; 2000 is CPython 3.13's own
#: default). Its peak memory stays the same: bench/results.md.
GC_THRESHOLD = 10_000
GC_BEFORE = pytest.StashKey[tuple[int, ...]]()


def _start_drift_run(config: pytest.Config, state: RunState) -> None:
    """What only a drift run does to the process: quiet loggers, reports on, a collector that walks
    less often, signals, stdout."""
    before = gc.get_threshold()
    config.stash[GC_BEFORE] = before
    gc.set_threshold(max(before[0], GC_THRESHOLD), *before[1:])
    # testinfra logs command output at DEBUG; paramiko logs its transport thread's failures with
    # tracebacks, which the transport already translated into one-line errors.
    logging.getLogger("testinfra").setLevel(logging.WARNING)
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
    if hasattr(config.option, "json_report"):
        config.option.json_report = True
        config.option.json_report_file = None  # saved atomically with the run's other artifacts
        # Checks log nothing, and the libraries' loggers are quiet: no logging handler added and
        # removed around each of the three phases of every check.
        omit = config.option.json_report_omit
        if isinstance(omit, list) and "log" not in omit:
            omit.append("log")
    if state.worker:
        return
    if not config.option.collectonly:
        options = state.options
        state.source = SourceProbe(options.modules_dir, options.inventory, options.show(options.modules_dir),
                                   options.show(options.inventory)).start()
    # -p no:junitxml: no xmlpath option, and a run folder without junit.xml
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath and not config.option.collectonly:
        config.option.xmlpath = str(partial_dir(state.options.reports_dir, state.run_id) / "junit.xml")
    if not _tb_given(config):
        # pytest's FAILURES section in its default style rescans every report of the session for
        # each failure (pytest issue 13360): quadratic in a run where most modules drift. Each
        # failure is already one line (the verdict), so print it as one: --tb=line, unless asked.
        config.option.tbstyle = "line"
    if state.options.format == "json":
        # stdout carries the plan alone: pytest's terminal (created after this hook) writes to
        # stderr; sys.stdout is given back once it exists (report.py).
        state.plan_stdout = sys.stdout
        sys.stdout = sys.stderr
    if getattr(config.option, "dist", "no") != "no":
        from driftcheck.xdistpart import XdistController

        config.pluginmanager.register(XdistController(state, config.rootpath), "driftcheck-xdist")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """A drift run stopped before it collects (at start-up or loading) ends here as interrupted; from
    here until the session ends, a signal stops the run where it is (signals.py)."""
    state = session.config.stash.get(STATE, None)
    if state is not None and state.drift and not state.worker:
        pending = state.signals.take_pending()
        state.interrupted = state.interrupted or pending
        if state.interrupted:
            raise KeyboardInterrupt(state.interrupted)  # pytest ends the session as interrupted, with a plan
        state.signals.raising()
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    signals = config.stash.get(SIGNALS, None)
    if signals is not None:
        signals.restore()
    before = config.stash.get(GC_BEFORE, None)
    if before is not None:
        gc.set_threshold(*before)


def _tb_given(config: pytest.Config) -> bool:
    """Whether --tb (or --full-trace) was asked for: on the command line, in PYTEST_ADDOPTS or the ini."""
    words = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
             *config.getini("addopts")]
    return any(w == "--tb" or w.startswith("--tb=") or w in ("--full-trace", "--fulltrace") for w in words)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Offline runs collect only checks/test_manifest.py, drift runs only the other check files."""
    state = config.stash.get(STATE, None)
    if state is None or collection_path.parent != state.options.root / "checks" or collection_path.is_dir():
        return None
    return True if (collection_path.name == MANIFEST_FILE) != state.offline else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    offline, drift = "manifest_module" in metafunc.fixturenames, "drift_subject" in metafunc.fixturenames
    if not (offline or drift):
        return
    state = metafunc.config.stash[STATE]
    if state.load_errors:
        raise pytest.Collector.CollectError("\n".join(printable(str(e)) for e in state.load_errors))
    if offline:
        metafunc.parametrize("manifest_module", [
            pytest.param(m, id=m.name, marks=[pytest.mark.manifest, *(getattr(pytest.mark, t) for t in m.tags)])
            for m in state.modules])
        return
    check = BY_NAME[metafunc.function.__name__.removeprefix("test_")]
    metafunc.parametrize("drift_subject", [
        pytest.param(s, id=subject_id(s), marks=_marks(state, check.name, s)) for s in state.subjects_of(check)])


def _marks(state: RunState, check: str, subject: Subject) -> list[pytest.MarkDecorator]:
    # xdist_group only where it is read: an xdist worker's collection (--dist loadgroup); every mark
    # is walked for skip/xfail marks once per check phase.
    marks = [pytest.mark.drift, *([pytest.mark.xdist_group(subject.host)] if state.worker else [])]
    if isinstance(subject, Module):
        marks += [getattr(pytest.mark, t) for t in subject.tags]
        waiver = subject.waiver(check)
        if waiver is not None and not waiver.expired(state.started.date()):
            marks.append(pytest.mark.skip(reason=printable(f"ignored: {waiver.reason}"
                                                    + (f" (until {waiver.until})" if waiver.until else ""))))
    return marks


def _param(item: pytest.Item, name: str) -> object:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(name) if callspec is not None else None


def _subject_of(item: pytest.Item) -> Subject | None:
    value = _param(item, "drift_subject")
    return value if isinstance(value, Module | ProjectOnHost) else None


def pytest_itemcollected(item: pytest.Item) -> None:
    """`-k <host>` selects every check of the host's modules and its orphans checks: the host is a
    keyword of each item (its test id does not change). Before -k deselects anything."""
    subject = _subject_of(item)
    if subject is not None:
        item.extra_keyword_matches.add(subject.host)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A check no module has (an empty parameter set) is deselected, not shown as a skipped placeholder."""
    # pytest gives such an item the parameter NOTSET.
    empty = [i for i in items if any(name in getattr(i, "fixturenames", ()) and
                                     not isinstance(_param(i, name), Module | ProjectOnHost)
                                     for name in ("drift_subject", "manifest_module"))]
    if empty:
        dropped = set(empty)
        items[:] = [i for i in items if i not in dropped]
        config.hook.pytest_deselected(items=empty)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    if not state.drift:
        return
    for item in session.items:
        subject = _subject_of(item)
        if subject is not None:
            state.select(item.nodeid, check_name(item), subject)
    # The modules, items and fixtures built so far live until the run ends: keep the cyclic
    # garbage collector from walking them again and again (about 0.1 s of a 200-module run).
    gc.freeze()
