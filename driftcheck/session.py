"""One run's state, pytest-free: what was loaded, selected and observed, and how hosts are observed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from signal import SIGINT
from typing import Any, TextIO

from driftcheck import codes
from driftcheck.artifacts import Saved
from driftcheck.compare import Observed, ProjectOnHost
from driftcheck.composehash import ComposeError, local_compose
from driftcheck.errors import ManifestError, ObservationError
from driftcheck.inventory import HostConfig, file_problems, load_inventory
from driftcheck.manifest import Module, discover
from driftcheck.observe import HostObserver
from driftcheck.options import MAX_CONNECTIONS, RunOptions
from driftcheck.plan import CheckOutcome, HostRecord, Plan, Problem, RunError
from driftcheck.provenance import SourceProbe
from driftcheck.records import WORKING_DIR_LABEL
from driftcheck.registry import BY_NAME, Check, Need
from driftcheck.signals import NAMES, RunSignals
from driftcheck.transport import Transport

#: what a drift check is parametrized with: a module, or a compose project on a host (orphans)
Subject = Module | ProjectOnHost


def subject_id(subject: Subject) -> str:
    """The test id's parameter: the module name, or <host>/<project> for an orphans check."""
    return subject.name if isinstance(subject, Module) else f"{subject.host}/{subject.project}"


def base_outcome(check: str, subject: Subject) -> CheckOutcome:
    """A selected check before it has run."""
    if isinstance(subject, Module):
        return CheckOutcome(subject.name, subject.host, subject.container_name, check)
    return CheckOutcome(subject.pseudo_module, subject.host, None, check, pseudo=True)


@dataclass
class RunState:
    """Everything the plugin keeps for one pytest session."""

    options: RunOptions
    run_id: str
    started: datetime
    #: -m manifest: offline validation, no host contacted, no plan written
    offline: bool
    #: the run collects drift checks: it observes, writes a plan and remaps the exit status
    drift: bool
    #: an xdist worker: observes only the hosts of its own tests, writes nothing, remaps nothing
    worker: bool
    #: the earlier run's plan (--compare-with)
    previous: dict[str, Any] | None = None
    modules: list[Module] = field(default_factory=list)
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    load_errors: list[ManifestError] = field(default_factory=list)
    #: offline: what a run on this machine would refuse in the inventory's files (a missing key or
    #: known_hosts), shown by make validate as warnings; the PR pipeline validating may not have them
    load_warnings: list[ManifestError] = field(default_factory=list)
    #: every selected drift check by node id, with its subject and, as reports arrive, its outcome
    subjects: dict[str, Subject] = field(default_factory=dict)
    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)
    #: under xdist, the controller's record of every host the workers observed
    worker_hosts: dict[str, HostRecord] = field(default_factory=dict)
    observations: Observations | None = None
    #: how the run was interrupted ("SIGTERM", "Ctrl-C (SIGINT)"), or None
    interrupted: str | None = None
    #: what SIGTERM and SIGINT do, phase by phase (signals.py)
    signals: RunSignals = field(default_factory=RunSignals)
    #: --drift-format json: the real stdout, which gets the plan alone at the end
    plan_stdout: TextIO | None = None
    plan: Plan | None = None
    #: pytest-json-report's report, as its pytest_json_modifyreport hook hands it over
    json_report: dict[str, Any] | None = None
    #: what the run wrote, once it has
    saved: Saved | None = None
    #: plan.json's source (the modules' git revision), probed while the run observes
    source: SourceProbe | None = None
    #: the run folder was written and reports/latest points at it (a run that observed its hosts)
    latest_moved: bool = False
    #: what the run did to the archive besides its own folder (--keep-runs), one line each
    archive_notes: list[str] = field(default_factory=list)

    def load(self, listing: bool = False) -> None:
        """Read the inventory and the modules; listing (--collect-only) lists checks and connects nowhere."""
        show = self.options.show
        inventory_errors: list[ManifestError] = []
        try:
            self.hosts = load_inventory(self.options.inventory, show(self.options.inventory), check_files=False,
                                        full_schema=self.offline)
        except ManifestError as exc:
            inventory_errors.append(exc)
        self.modules, errors = discover(self.options.modules_dir, show, full_schema=self.offline)
        # The files an inventory entry names (key, ssh config, known_hosts) matter only to a run that
        # connects, and only for the hosts its modules name: offline validation runs where the deploy
        # key may not be (a PR pipeline) and shows them as warnings; listing the checks needs none.
        problems = {name: file_problems(host, show(self.options.inventory)) for name, host in self.hosts.items()}
        if self.offline:
            self.load_warnings = [p for found in problems.values() for p in found]
        elif not listing:
            used = {m.host for m in self.modules}
            inventory_errors += [found[0] for name, found in problems.items() if found and name in used]
        self.load_errors += inventory_errors + errors
        seen: dict[tuple[str, str], Module] = {}
        for module in self.modules:
            if self.hosts and module.host not in self.hosts:
                self.load_errors.append(ManifestError(
                    module.path, "host", f"expected a host of {show(self.options.inventory)} "
                    f"({', '.join(sorted(self.hosts))}), got {module.host!r}"))
            other = seen.setdefault((module.host, module.container_name), module)
            if other is not module:
                self.load_errors.append(ManifestError(
                    module.path, "compose", f"resolves to container {module.container_name} on host "
                    f"{module.host}, which module {other.name} ({other.path}) already declares"))

    def load_interruptibly(self, listing: bool = False) -> None:
        """load(), which a signal may stop (signals.py): then nothing loaded counts, and the run is interrupted."""
        signals = self.signals
        try:
            signals.raising()
            self.load(listing=listing)
            signals.noting()
        except KeyboardInterrupt:
            signals.noting()
            self.modules, self.hosts, self.load_errors = [], {}, []
            self.interrupted = signals.received or NAMES[SIGINT]
        pending = signals.take_pending()
        if pending is not None and not self.interrupted:
            self.interrupted = pending  # noted at start-up, or after loading

    def projects(self) -> list[ProjectOnHost]:
        """Every compose project some module uses, per host, with the modules that claim it."""
        keys = sorted({(m.host, m.project) for m in self.modules})
        return [ProjectOnHost(host, project, tuple(m for m in self.modules if (m.host, m.project) == (host, project)))
                for host, project in keys]

    def subjects_of(self, check: Check) -> list[Subject]:
        """What a check is parametrized with: every project for orphans, else the modules it applies to."""
        if check.per_project:
            return list(self.projects())
        return [m for m in self.modules if check.applies(m)]

    def select(self, nodeid: str, check: str, subject: Subject) -> None:
        self.subjects[nodeid] = subject
        self.outcomes[nodeid] = base_outcome(check, subject)

    def run_errors(self) -> list[RunError]:
        """The run's own errors: invalid files, an empty selection, an interruption."""
        errors = [RunError(e.code, e.problem, file=e.path, key=e.key) for e in self.load_errors]
        if not self.load_errors and not self.outcomes and not self.interrupted and not self.modules:
            folder = self.options.show(self.options.modules_dir)
            errors.append(RunError(codes.NO_MODULES_SELECTED, f"no module is declared in {folder}; adopt what a "
                                   "host runs with `make import HOST=<name>`, or write "
                                   f"{folder}/<name>/module.yaml"))
        elif not self.load_errors and not self.outcomes and not self.interrupted:
            errors.append(RunError(codes.NO_MODULES_SELECTED, "no module matched the selection (-k/-m); check the "
                                   "-k/-m expression against the module names and tags"))
        if self.interrupted:
            errors.append(RunError(codes.INTERRUPTED, f"the run was stopped by {self.interrupted}; checks that had "
                                   "not run are NOT_CHECKED; nothing was changed on any host; run it again"))
        return errors

    def host_records(self) -> list[HostRecord]:
        mine = self.observations.host_records() if self.observations is not None else []
        records = {r.host: r for r in mine}
        for name, record in self.worker_hosts.items():
            records[name] = records[name].merged(record) if name in records else record
        return [records[name] for name in sorted(records)]


class Observations:
    """The run's observers, one per host: each host is observed once, all hosts at once."""

    def __init__(self, hosts: dict[str, HostConfig], subjects: Iterable[tuple[str, Subject]], worker: bool,
                 max_connections: int = MAX_CONNECTIONS):
        self.hosts = hosts
        self.worker = worker
        #: hosts observed (connections open) at once
        self.max_connections = max(1, max_connections)
        self.wanted: dict[str, set[str]] = {}
        self.refs: dict[str, set[str]] = {}
        #: hosts with a selected image check (only those get a `docker image inspect`)
        self.image_hosts: set[str] = set()
        for check, subject in subjects:
            wanted = self.wanted.setdefault(subject.host, set())
            if isinstance(subject, Module):
                wanted.add(subject.container_name)
                if Need.IMAGES in BY_NAME[check].needs and subject.image_ref:
                    self.refs.setdefault(subject.host, set()).add(subject.image_ref)
                    self.image_hosts.add(subject.host)
        self.observers: dict[str, HostObserver] = {}
        self.lock = threading.Lock()

    def observer(self, host: str) -> HostObserver:
        """The host's observer once it has observed; the first call observes every selected host at once.

        Hosts are observed concurrently, each over its own connection, so a run takes about as
        long as its slowest host: at most max_connections at once (--max-connections), each
        connection closed as soon as its host has answered everything the run asks it. An xdist
        worker observes only the host asked for: the hosts of its own tests (--dist loadgroup
        keeps each host on one worker).
        """
        with self.lock:
            if host not in self.observers:
                hosts = [host] if self.worker else sorted(set(self.wanted) | {host})
                self._observe([h for h in hosts if h not in self.observers])
        return self.observers[host]

    def _observe(self, hosts: list[str]) -> None:
        for host in hosts:
            self.observers[host] = HostObserver(Transport(self.hosts[host]), self.wanted.get(host, set()),
                                                self.refs.get(host, set()))

        def observe(observer: HostObserver) -> None:
            try:
                observer.containers()
                if observer.host in self.image_hosts:
                    observer.images()
            except ObservationError:
                pass  # cached by the observer: each affected check reports it
            finally:
                # Its answers are cached: the checks send nothing more, so its connection ends now.
                observer.transport.close()

        if len(hosts) == 1:
            observe(self.observers[hosts[0]])
            return
        work: queue.SimpleQueue[HostObserver] = queue.SimpleQueue()
        for host in hosts:
            work.put(self.observers[host])

        def drain() -> None:
            while True:
                try:
                    observer = work.get_nowait()
                except queue.Empty:
                    return
                observe(observer)

        threads = [threading.Thread(target=drain, name=f"driftcheck-observe-{i}", daemon=True)
                   for i in range(min(self.max_connections, len(hosts)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def observed_for(self, check: Check, subject: Subject) -> Observed:
        """What a check needs observed of its subject (the registry row's needs); raises ObservationError."""
        observer = self.observer(subject.host)
        container = None
        if Need.CONTAINER in check.needs:
            assert isinstance(subject, Module)
            container = observer.containers().get(subject.container_name)
        images = observer.images() if Need.IMAGES in check.needs and container is not None else {}
        listing = observer.listing() if Need.LISTING in check.needs else ()
        compose = None
        if Need.COMPOSE_HASH in check.needs and container is not None:
            assert isinstance(subject, Module) and subject.compose_file is not None
            try:
                compose = local_compose(Path(subject.compose_file), subject.project, subject.service,
                                        container.label(WORKING_DIR_LABEL), container.network_mode,
                                        None if subject.compose_root is None else Path(subject.compose_root))
            except ComposeError as exc:
                raise ObservationError(subject.host, exc.code, f"{subject.path}: key 'compose.file': {exc}") from None
        return Observed(container, images, listing, compose)

    def is_host_error(self, error: ObservationError) -> bool:
        """Whether an observation error is its host's own (the host record's), not one module's."""
        observer = self.observers.get(error.host)
        failed = observer.error if observer is not None else None
        return failed is not None and (failed.code, failed.message) == (error.code, error.message)

    def host_records(self) -> list[HostRecord]:
        """Per host: every command sent, seconds spent, the error (hosts[] of the plan)."""
        return [HostRecord(name, tuple(o.transport.commands), round(o.transport.seconds, 3),
                           None if o.error is None else Problem(o.error.code, o.error.message))
                for name, o in sorted(self.observers.items())]

    def close(self) -> None:
        for observer in self.observers.values():
            observer.transport.close()
