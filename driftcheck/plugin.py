"""The pytest plugin: options, parametrization, fixtures, exit codes and artifacts. pytest only."""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driftcheck.compare import Change, Verdict, applies
from driftcheck.composehash import ComposeError, compose_version, config_hash
from driftcheck.errors import DriftError, ManifestErrors, ObservationError
from driftcheck.manifest import Module
from driftcheck.observe import ContainerObservation, ImageObservation, ListedContainer
from driftcheck.plan import build_plan, iso, load_previous, new_run_id, to_json, write_run
from driftcheck.session import SIGNAL_NAMES, DriftState, ProjectOnHost, install_signal_handlers
from driftcheck.summary import summary_lines

PROPERTY = "driftcheck"
OPTIONS = {
    # option dest: (flag, env var, help)
    "drift_modules_dir": ("--modules-dir", "DRIFT_MODULES_DIR", "folder of modules/<name>/module.yaml"),
    "drift_inventory": ("--inventory", "DRIFT_INVENTORY", "the inventory (hosts.yaml)"),
    "drift_plan_out": ("--plan-out", "DRIFT_PLAN_OUT", "also write plan.json here (a file or an existing folder)"),
    "drift_reports_dir": ("--reports-dir", "DRIFT_REPORTS_DIR", "where reports/<run-id>/ folders go"),
    "drift_compare_with": ("--compare-with", "DRIFT_COMPARE_WITH",
                           "an earlier run to compare with: its plan.json, its folder, or latest"),
}


class DriftDetected(AssertionError):
    """A check found drift: a failing test whose message lists the changes."""


STATE = pytest.StashKey[DriftState]()
#: the key of a worker's host records in xdist's workeroutput
WORKER_OUTPUT = "driftcheck_hosts"
#: checks/<file>::test_<check>[<module>], optionally @<group> (xdist --dist loadgroup)
NODEID_RE = re.compile(r"^(?P<file>[^:]+)::test_(?P<check>\w+)\[(?P<param>[^\]]+)\](?:@.*)?$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("driftcheck", "drift check of Docker Compose hosts")
    for dest, (flag, env, text) in OPTIONS.items():
        group.addoption(flag, dest=dest, default=None, metavar="PATH",
                        help=f"{text} (env {env}); write it as {flag}=PATH")
    group.addoption("--strict-images", dest="drift_strict_images", action="store_true", default=False,
                    help="an image whose digest cannot be proven (IMAGE_DIGEST_NOT_VERIFIED) or inspected "
                    "(IMAGE_NOT_OBSERVED) is drift, not a warning (env DRIFT_STRICT_IMAGES=1)")
    group.addoption("--drift-format", dest="drift_format", default=None, choices=FORMATS, metavar="FORMAT",
                    help="text (default), or json: stdout is the plan alone and pytest's own output goes to "
                    "stderr, for scripts and jq (env DRIFT_FORMAT)")


FORMATS = ("text", "json")


def _format(config: pytest.Config) -> str:
    value = config.getoption("drift_format") or os.environ.get("DRIFT_FORMAT") or "text"
    if value not in FORMATS:
        raise pytest.UsageError(f"DRIFT_FORMAT={value}: expected one of {', '.join(FORMATS)}")
    return str(value)


#: warnings that --strict-images turns into drift
STRICT_CODES = frozenset({"IMAGE_DIGEST_NOT_VERIFIED", "IMAGE_NOT_OBSERVED"})


def _strict_images(config: pytest.Config) -> bool:
    return bool(config.getoption("drift_strict_images")) or os.environ.get("DRIFT_STRICT_IMAGES", "") == "1"


def _option_path(config: pytest.Config, dest: str, default: Path | None) -> Path | None:
    _, env, _ = OPTIONS[dest]
    value = config.getoption(dest) or os.environ.get(env) or None
    if value is None:
        return default
    return config.invocation_params.dir / os.path.expanduser(value)


def manifest_run(config: pytest.Config) -> bool:
    """`-m manifest` (make validate): the manifests and the inventory are checked; no host, no plan.

    A run is offline when its -m expression requires the manifest mark, whatever other marks
    (tags) an item has: `manifest` and `manifest and tier0` are offline; `not manifest` and
    `manifest or tier0` are drift runs (of the selected drift checks).
    """
    text = config.option.markexpr or ""
    if not re.search(r"\bmanifest\b", text):
        return False
    from _pytest.mark.expression import Expression, ParseError

    try:
        expression = Expression.compile(text)
    except ParseError:
        return False  # pytest reports the bad expression itself
    others = sorted(set(re.findall(r"[A-Za-z_][\w.-]*", text)) - {"and", "or", "not", "manifest"})[:10]
    for bits in range(2 ** len(others)):
        marks = {name for index, name in enumerate(others) if bits >> index & 1}

        def without_manifest(name: str, /, **kwargs: str | int | bool | None) -> bool:
            return name in marks  # noqa: B023 (used at once, within this iteration)

        if expression.evaluate(without_manifest):
            return False  # it selects an item without the manifest mark: a drift check
    return True


def _may_collect_checks(config: pytest.Config, checks: Path) -> bool:
    """Whether the command line reaches checks/ (the project's own tests/ get no junit of ours)."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == checks or checks in path.parents or path in checks.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Belt and braces: testinfra logs command output at DEBUG; nothing here may log inspect output.
    logging.getLogger("testinfra").setLevel(logging.WARNING)
    # paramiko logs its transport thread's failures with tracebacks; they are translated into
    # one-line errors (transport.py) and would only repeat them, in every check's captured log.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)
    config.addinivalue_line("markers", "drift: a drift check generated from a module.yaml")
    config.addinivalue_line("markers", "xdist_group(name): tests of one host run on one xdist worker")
    config.addinivalue_line("markers", "manifest: offline validation of the manifests and the inventory "
                            "(pytest -m manifest, make validate); contacts no host, writes no plan")
    base = config.inipath.parent if config.inipath else config.rootpath
    now = datetime.now(UTC)
    plan_out = _option_path(config, "drift_plan_out", None)
    if plan_out is not None and not plan_out.is_dir() and not plan_out.parent.is_dir():
        raise pytest.UsageError(f"--plan-out={plan_out}: expected a file in an existing folder, or a folder")
    reports_dir = _option_path(config, "drift_reports_dir", base / "reports") or base
    previous = None
    compare_with = config.getoption("drift_compare_with") or os.environ.get("DRIFT_COMPARE_WITH") or None
    if compare_with is not None:
        where = reports_dir / "latest" if compare_with == "latest" else \
            config.invocation_params.dir / os.path.expanduser(compare_with)
        try:
            previous = load_previous(where)
        except ValueError as exc:
            raise pytest.UsageError(f"--compare-with={compare_with}: {exc}; expected a plan.json, a run "
                                    "folder, or latest") from None
    junit_tmp = None
    worker = hasattr(config, "workerinput")
    offline = manifest_run(config)
    if not worker and not offline and not config.option.xmlpath and _may_collect_checks(config, base / "checks"):
        junit_tmp = Path(tempfile.mkdtemp(prefix="driftcheck-junit-")) / "junit.xml"
        config.option.xmlpath = str(junit_tmp)
    if hasattr(config.option, "json_report"):
        config.option.json_report = True
        config.option.json_report_file = None  # saved atomically by write_run instead
    state = DriftState(
        root=config.rootpath, run_id=new_run_id(now), started=now,
        modules_dir=_option_path(config, "drift_modules_dir", base / "modules") or base,
        inventory=_option_path(config, "drift_inventory", base / "hosts.yaml") or base,
        reports_dir=reports_dir, plan_out=plan_out, junit_tmp=junit_tmp, checks_dir=base / "checks",
        previous=previous,
    )
    state.worker = worker
    state.manifest_run = offline
    if _format(config) == "json" and not worker:
        # stdout carries the plan alone: everything else written to fd 1 from here on (pytest's
        # terminal, created after this hook, and any plugin's print) goes to stderr instead.
        sys.stdout.flush()
        state.plan_fd = os.dup(1)
        os.dup2(2, 1)
    state.load()
    if not worker and threading.current_thread() is threading.main_thread():
        install_signal_handlers(state)
    for tag in sorted({t for m in state.modules for t in m.tags}):
        config.addinivalue_line("markers", f"{tag}: modules tagged {tag}")
    config.stash[STATE] = state
    config.pluginmanager.register(SessionHooks(state), "driftcheck-session")
    config.pluginmanager.register(ArtifactWriter(state), "driftcheck-writer")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        for signum, previous in state.previous_handlers.items():
            signal.signal(signum, previous)
        for name in ("driftcheck-session", "driftcheck-writer"):
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
        if state.junit_tmp is not None:
            shutil.rmtree(state.junit_tmp.parent, ignore_errors=True)
        if state.plan_fd is not None:
            _print_plan(state)


def _print_plan(state: DriftState) -> None:
    """--drift-format json: the plan on the real stdout, which is given back to fd 1."""
    assert state.plan_fd is not None
    sys.stdout.flush()
    os.dup2(state.plan_fd, 1)
    os.close(state.plan_fd)
    state.plan_fd = None
    if state.plan is not None:
        data = memoryview(to_json(state.plan))
        while data:
            data = data[os.write(1, data):]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    """Offline runs collect only the manifest checks, drift runs only the drift checks (not even as placeholders)."""
    if not (callable(obj) and name.startswith("test_")):
        return None
    state = collector.config.stash[STATE]
    if state.checks_dir not in collector.path.parents:
        return None
    code = getattr(obj, "__code__", None)
    manifest_check = "manifest_module" in getattr(code, "co_varnames", ())[:getattr(code, "co_argcount", 0)]
    return [] if manifest_check != state.manifest_run else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash[STATE]
    # Offline validation and drift checks never mix: -m manifest runs only the former (a host is
    # never contacted), any other selection only the latter (-k honcho-redis means its drift checks):
    # pytest_pycollect_makeitem leaves out the other kind's functions.
    offline = "manifest_module" in metafunc.fixturenames
    per_module = "drift_module" in metafunc.fixturenames
    if not (offline or per_module or "drift_project" in metafunc.fixturenames):
        return
    state.is_drift_run = state.is_drift_run or not offline
    if state.load_errors:
        raise pytest.Collector.CollectError(str(ManifestErrors(state.load_errors)))
    if offline:
        metafunc.parametrize("manifest_module", [
            pytest.param(m, id=m.name, marks=[pytest.mark.manifest, *(getattr(pytest.mark, t) for t in m.tags)])
            for m in state.modules])
        return
    if not per_module:
        scopes = sorted({ProjectOnHost(m.host, m.project) for m in state.modules}, key=lambda p: (p.host, p.project))
        metafunc.parametrize("drift_project", [
            pytest.param(p, id=f"{p.host}/{p.project}", marks=[pytest.mark.drift, pytest.mark.xdist_group(p.host)])
            for p in scopes])
        return
    check = metafunc.function.__name__.removeprefix("test_")
    params = [
        pytest.param(m, id=m.name, marks=[pytest.mark.drift, pytest.mark.xdist_group(m.host),
                                          *(getattr(pytest.mark, t) for t in m.tags)])
        for m in state.modules if applies(check, m)
    ]
    metafunc.parametrize("drift_module", params)


def _module_of(item: pytest.Item) -> Module | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("drift_module") if callspec is not None else None
    return value if isinstance(value, Module) else None


def _project_of(item: pytest.Item) -> ProjectOnHost | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("drift_project") if callspec is not None else None
    return value if isinstance(value, ProjectOnHost) else None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # An empty parameter set makes pytest add a skipped placeholder; a drift run has no use for it.
    ours = {"drift_module", "drift_project", "manifest_module"}
    items[:] = [i for i in items if _module_of(i) is not None or _project_of(i) is not None
                or _manifest_of(i) is not None or not ours & set(getattr(i, "fixturenames", ()))]


def _manifest_of(item: pytest.Item) -> Module | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("manifest_module") if callspec is not None else None
    return value if isinstance(value, Module) else None


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    for item in session.items:
        module, scope = _module_of(item), _project_of(item)
        if module is not None:
            state.selected[item.nodeid] = {
                "module": module.name, "host": module.host, "container": module.container_name,
                "check": _check_of(item),
            }
        elif scope is not None:
            state.selected[item.nodeid] = {"module": scope.pseudo_module, "host": scope.host, "container": None,
                                           "check": _check_of(item), "pseudo": True}
    state.image_hosts = {s["host"] for s in state.selected.values() if s["check"] == "image"}
    if state.is_drift_run:
        _note_empty_selection(state)
        # The modules, items and fixtures built so far live until the run ends: keep the cyclic
        # garbage collector from walking them again and again (about 0.1 s of a 200-module run).
        gc.freeze()


def _note_empty_selection(state: DriftState) -> None:
    if not state.load_errors and not state.selected:
        state.run_errors.append({
            "module": None, "host": None, "code": "NO_MODULES_SELECTED", "file": None, "key": None,
            "message": "no module matched the selection (-k/-m) or no module is declared; check the -k/-m "
            "expression against the module names and tags",
        })


def _record(node: pytest.Item, kind: str, value: dict[str, Any]) -> None:
    node.user_properties.append((PROPERTY, {"kind": kind, **value}))


@contextmanager
def _recorded(node: pytest.Item, prefix: str = "") -> Iterator[None]:
    """A failure to observe (or to compute a local config hash) is recorded for the plan, then raised."""
    try:
        yield
    except (ObservationError, ComposeError) as exc:
        message = exc.message if isinstance(exc, ObservationError) else str(exc)
        _record(node, "error", {"code": exc.code, "message": prefix + message})
        raise


@pytest.fixture
def drift_container(request: pytest.FixtureRequest, drift_module: Module) -> ContainerObservation | None:
    """The module's container as observed (None when missing); an observation failure is a setup error."""
    with _recorded(request.node):
        return request.config.stash[STATE].observed(drift_module.host).containers().get(drift_module.container_name)


@pytest.fixture
def drift_images(request: pytest.FixtureRequest, drift_module: Module,
                 drift_container: ContainerObservation | None) -> dict[str, ImageObservation]:
    """The images the host's observed containers run, from one batched `docker image inspect`."""
    if drift_container is None:
        return {}
    with _recorded(request.node):
        return request.config.stash[STATE].observed(drift_module.host).images()


@pytest.fixture
def drift_compose_hash(request: pytest.FixtureRequest, drift_module: Module) -> tuple[str, str]:
    """(config hash, Compose version) of the module's service, computed locally from its compose.file."""
    assert drift_module.compose_file is not None
    with _recorded(request.node, prefix=f"{drift_module.path}: "):
        return (config_hash(Path(drift_module.compose_file), drift_module.project, drift_module.service),
                compose_version())


@pytest.fixture
def drift_listing(request: pytest.FixtureRequest, drift_module: Module) -> tuple[ListedContainer, ...]:
    """Every container on the module's host (from the run's one `docker ps`)."""
    with _recorded(request.node):
        return request.config.stash[STATE].observed(drift_module.host).listing()


@pytest.fixture
def drift_orphans(request: pytest.FixtureRequest, drift_project: ProjectOnHost) -> Any:
    """What an orphans check compares: the project, the modules that claim its containers, the listing."""
    state = request.config.stash[STATE]
    claims = [m for m in state.modules if (m.host, m.project) == (drift_project.host, drift_project.project)]
    with _recorded(request.node):
        return drift_project.project, claims, state.observed(drift_project.host).listing()


@pytest.fixture
def drift_verdict(request: pytest.FixtureRequest) -> Any:
    """Record a check's verdict for the plan; drift fails the test with the changes as its message."""
    today = request.config.stash[STATE].started.date()
    module = _module_of(request.node)
    waiver = module.waiver(_check_of(request.node)) if module is not None else None

    strict = _strict_images(request.config)

    def verdict(result: Verdict) -> None:
        __tracebackhide__ = True
        if strict and any(w.code in STRICT_CODES for w in result.warnings):
            result = Verdict((*result.changes, *(Change(w.code, "image.digest", module.image_digest if module else None,
                                                        w.message) for w in result.warnings if w.code in STRICT_CODES)),
                             tuple(w for w in result.warnings if w.code not in STRICT_CODES))
        if waiver is not None and waiver.expired(today):
            # An expired waiver is itself drift, so waivers cannot rot silently.
            result = Verdict((*result.changes, Change("IGNORE_EXPIRED", f"ignore[{waiver.check}].until",
                                                      str(waiver.until), f"{today} (reason: {waiver.reason})")),
                             result.warnings)
        _record(request.node, "verdict", {
            "changes": [c.as_dict() for c in result.changes],
            "warnings": [w.as_dict() for w in result.warnings],
        })
        if result.changes:
            raise DriftDetected("\n".join(
                f"{c.code} {c.field}: desired {c.desired!r}, observed {c.observed!r}" for c in result.changes))

    return verdict


def _check_of(item: pytest.Item) -> str:
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    return name.removeprefix("test_")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A check its module waives (ignore:, not expired) is skipped with the waiver's reason."""
    module = _module_of(item)
    waiver = module.waiver(_check_of(item)) if module is not None else None
    if waiver is not None and not waiver.expired(item.config.stash[STATE].started.date()):
        _record(item, "ignored", waiver.as_dict())
        pytest.skip(f"ignored: {waiver.reason}" + (f" (until {waiver.until})" if waiver.until else ""))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
    """Drift and observation failures get a one-line report instead of a traceback.

    Nothing from a frame's locals can reach any output, and pytest does not parse source files
    to draw a traceback: with 200 modules on an unreachable host, that was 800 parses and 20 s.
    """
    if call.excinfo is None or not isinstance(call.excinfo.value, (DriftError, DriftDetected)):
        return None
    exc = call.excinfo.value
    longrepr = str(exc) if isinstance(exc, DriftDetected) else f"{exc.code}: {exc}"
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    assert call.when != "collect"
    return pytest.TestReport(
        item.nodeid, item.location, {k: 1 for k in item.keywords}, "failed", longrepr, call.when, sections,
        call.duration, call.start, call.stop, user_properties=item.user_properties,
    )


class SessionHooks:
    """Hooks that need the session's state but receive no config: one instance per session."""

    def __init__(self, state: DriftState):
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.state.selected:
            return
        record = self.state.records.setdefault(
            report.nodeid, {"outcome": "not_run", "changes": [], "warnings": [], "error": None})
        props: list[dict[str, Any]] = [v for k, v in report.user_properties if k == PROPERTY]  # type: ignore[misc]
        errors = [p for p in props if p["kind"] == "error"]
        verdicts = [p for p in props if p["kind"] == "verdict"]
        ignored = [p for p in props if p["kind"] == "ignored"]
        if ignored:
            record["ignored"] = {k: v for k, v in ignored[-1].items() if k != "kind"}
        if errors:
            record["error"] = {"code": errors[-1]["code"], "message": errors[-1]["message"]}
        if verdicts:
            record["changes"], record["warnings"] = verdicts[-1]["changes"], verdicts[-1]["warnings"]
        if report.when == "setup" and report.failed:
            record["outcome"] = "error"
        elif report.when == "setup" and report.skipped:
            record["outcome"] = "skipped"
        elif report.when == "call":
            drift = bool(verdicts) and bool(record["changes"])
            record["outcome"] = "passed" if report.passed else "failed" if drift else "error"
        elif report.when == "teardown" and report.failed:
            record["outcome"] = "error"

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest raises Session.Interrupted (a KeyboardInterrupt) for collection errors and -x too.
        if not isinstance(excinfo.value, pytest.Session.Interrupted):
            self.state.interrupted = self.state.signal_received or SIGNAL_NAMES[signal.SIGINT]

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Any:
        # Decide the plan and the exit status before json-report (tryfirst) reads session.exitstatus.
        state = self.state
        state.finishing = True
        if state.manifest_run:
            # A manifest that does not validate, or no manifest at all, is exit 2 (SPEC §7b).
            if int(session.exitstatus) in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.INTERRUPTED
            return (yield)
        for observer in state.observers.values():
            observer.transport.close()
        if state.worker:
            # The controller builds the plan; a worker only tells it what it sent to its hosts.
            session.config.workeroutput[WORKER_OUTPUT] = state.host_records()  # type: ignore[attr-defined]
            return (yield)
        if state.xdist_controller and _may_collect_checks(session.config, state.checks_dir):
            state.is_drift_run = True
            _note_empty_selection(state)
        if state.is_drift_run and not session.config.option.collectonly:
            checks = [{**base, **state.records.get(nodeid, {"outcome": "not_run"})}
                      for nodeid, base in state.selected.items()]
            hosts = sorted(state.host_records() + state.worker_hosts, key=lambda h: str(h["host"]))
            errors = [{"module": None, "host": None, "code": e.code, "message": e.problem,
                       "file": e.path, "key": e.key} for e in state.load_errors] + state.run_errors
            if state.interrupted:
                errors.append({"module": None, "host": None, "code": "INTERRUPTED", "file": None, "key": None,
                               "message": f"the run was stopped by {state.interrupted}; checks that had not run "
                               "are NOT_CHECKED; nothing was changed on any host; run it again"})
            state.plan = build_plan(
                run_id=state.run_id, started_at=iso(state.started), finished_at=iso(datetime.now(UTC)),
                checks=checks, hosts=hosts, errors=errors, pytest_status=int(session.exitstatus),
                previous=state.previous,
            )
            session.exitstatus = state.plan["exit_code"]
        return (yield)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # xdist's controller collects nothing itself: the selection comes from a worker's node ids
        # (with --dist loadgroup they end in @<host>; the plan keeps module names).
        state = self.state
        state.xdist_controller = True
        if state.selected:
            return
        by_name = {m.name: m for m in state.modules}
        scopes = {f"{m.host}/{m.project}" for m in state.modules}
        for nodeid in ids:
            found = NODEID_RE.match(nodeid)
            if not found or not found["file"].startswith("checks/"):
                continue
            module, param = by_name.get(found["param"]), found["param"]
            if found["check"] == "orphans" and param in scopes:
                host, _, project = param.partition("/")
                state.selected[nodeid] = {"module": ProjectOnHost(host, project).pseudo_module, "host": host,
                                          "container": None, "check": "orphans", "pseudo": True}
            elif module is not None:
                state.selected[nodeid] = {"module": module.name, "host": module.host,
                                          "container": module.container_name, "check": found["check"]}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        for record in getattr(node, "workeroutput", {}).get(WORKER_OUTPUT, []):
            same = next((h for h in self.state.worker_hosts if h["host"] == record["host"]), None)
            if same is None:
                self.state.worker_hosts.append(record)
            else:  # two workers observed one host (a --dist mode other than loadgroup)
                same["commands"] += record["commands"]
                same["seconds"] = round(same["seconds"] + record["seconds"], 3)
                same["error"] = same["error"] or record["error"]

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        if self.state.plan is not None:
            json_report["plan"] = self.state.plan


class ArtifactWriter:
    """Writes the run's artifacts after json-report and junitxml have built theirs (trylast)."""

    def __init__(self, state: DriftState):
        self.state = state

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self.state
        if state.plan is None:
            return
        report = getattr(getattr(session.config, "_json_report", None), "report", None)
        xmlpath = session.config.option.xmlpath
        try:
            junit = Path(xmlpath).read_bytes() if xmlpath and Path(xmlpath).is_file() else None
            state.run_dir = write_run(state.reports_dir, state.plan, report, junit, state.plan_out,
                                      move_latest=not state.interrupted)
            if junit is not None and state.junit_tmp is not None:
                _point_junit_summary_at(session.config, str(state.run_dir / "junit.xml"))
        except OSError as exc:
            where = state.show(Path(exc.filename)) if exc.filename else state.show(state.reports_dir)
            state.write_error = (f"ARTIFACTS_NOT_WRITTEN: could not write the run's artifacts ({where}: "
                                 f"{exc.strerror or exc}); the results above are complete; free space or make "
                                 f"{state.show(state.reports_dir)} writable, or pass --reports-dir=DIR")
            session.exitstatus = 2


def _manifest_summary(terminalreporter: Any, state: DriftState) -> None:
    terminalreporter.ensure_newline()  # after the progress dots, before the section's rule
    terminalreporter.section("driftcheck validate")
    for error in state.load_errors:
        terminalreporter.write_line(f"INVALID  {error.code}: {error}", red=True)
    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    passed = len(terminalreporter.stats.get("passed", []))
    problems = len(state.load_errors) or failed
    if problems or not passed:
        what = f"invalid: {problems} problem(s)" if problems else "no module to validate"
        terminalreporter.write_line(f"{what}; no host was contacted, no plan written; exit 2", red=True)
    else:
        terminalreporter.write_line(f"valid: {passed} module(s) in {state.show(state.modules_dir)}, the inventory "
                                    f"{state.show(state.inventory)}; no host was contacted, no plan written",
                                    green=True)


def _point_junit_summary_at(config: pytest.Config, path: str) -> None:
    # junitxml's "generated xml file" line would otherwise name the temp file it wrote.
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "LogXML" and hasattr(plugin, "logfile"):
            plugin.logfile = path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(STATE, None)
    if state is not None and state.manifest_run and not state.worker:
        _manifest_summary(terminalreporter, state)
        return
    if state is None or state.plan is None:
        return
    terminalreporter.section("driftcheck")
    for line in summary_lines(state.plan):
        terminalreporter.ensure_newline()
        for text, colour in line:
            terminalreporter.write(text, **({colour: True} if colour else {}))
        terminalreporter.write("\n")
    if state.write_error:
        terminalreporter.write_line(f"ERROR {state.write_error}", red=True)
    else:
        terminalreporter.write_line(f"artifacts: {state.show(state.reports_dir / state.plan['run_id'])}/ "
                                    "(plan.json, report.json, junit.xml, index.html)")
