"""One run's state, pytest-free: what was loaded, selected and observed, and how hosts are observed."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from driftcheck.errors import ManifestError, ObservationError
from driftcheck.inventory import HostConfig, load_inventory
from driftcheck.manifest import Module, discover
from driftcheck.observe import HostObserver
from driftcheck.transport import Transport


@dataclass(frozen=True)
class ProjectOnHost:
    """One compose project on one host: the scope of an orphans check."""

    host: str
    project: str

    @property
    def pseudo_module(self) -> str:
        return f"orphans@{self.host}/{self.project}"


@dataclass
class DriftState:
    """Everything the plugin keeps for one pytest session."""

    #: the project root, for showing paths
    root: Path
    run_id: str
    started: datetime
    modules_dir: Path
    inventory: Path
    reports_dir: Path
    plan_out: Path | None
    junit_tmp: Path | None
    modules: list[Module] = field(default_factory=list)
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    load_errors: list[ManifestError] = field(default_factory=list)
    is_drift_run: bool = False
    #: -m manifest: offline validation, no host contacted, no plan written
    manifest_run: bool = False
    #: --drift-format json: the real stdout, kept for the plan while fd 1 points at stderr
    plan_fd: int | None = None
    #: how the run was interrupted ("SIGTERM", "Ctrl-C (SIGINT)"), or None
    interrupted: str | None = None
    #: the last SIGTERM/SIGINT received
    signal_received: str | None = None
    #: set when the session ends: from then on a signal is noted, not raised, so the plan and
    #: artifacts are always finished (that takes milliseconds)
    finishing: bool = False
    previous_handlers: dict[int, Any] = field(default_factory=dict)
    selected: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_errors: list[dict[str, Any]] = field(default_factory=list)
    observers: dict[str, HostObserver] = field(default_factory=dict)
    #: hosts whose observation has been started (each host is observed once per process)
    observed_hosts: set[str] = field(default_factory=set)
    #: hosts with a selected image check (only those get a `docker image inspect`)
    image_hosts: set[str] = field(default_factory=set)
    #: an xdist worker: observes only the hosts of its own tests, writes nothing, remaps nothing
    worker: bool = False
    #: under xdist, the controller's record of every host the workers observed
    worker_hosts: list[dict[str, Any]] = field(default_factory=list)
    #: xdist's controller: it runs no test and collects nothing; workers report to it
    xdist_controller: bool = False
    checks_dir: Path = Path("checks")
    #: the earlier run's plan (--compare-with)
    previous: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    run_dir: Path | None = None
    write_error: str | None = None

    def show(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def load(self) -> None:
        try:
            # Offline validation runs where the deploy key may not be (a PR pipeline): files named
            # by the inventory are checked when a run connects, not by -m manifest.
            self.hosts = load_inventory(self.inventory, self.show(self.inventory), check_files=not self.manifest_run,
                                        full_schema=self.manifest_run)
        except ManifestError as exc:
            self.load_errors.append(exc)
        self.modules, errors = discover(self.modules_dir, self.show, full_schema=self.manifest_run)
        self.load_errors += errors
        seen: dict[tuple[str, str], Module] = {}
        for module in self.modules:
            if self.hosts and module.host not in self.hosts:
                self.load_errors.append(ManifestError(
                    module.path, "host", f"expected a host of {self.show(self.inventory)} "
                    f"({', '.join(sorted(self.hosts))}), got {module.host!r}"))
            other = seen.setdefault((module.host, module.container_name), module)
            if other is not module:
                self.load_errors.append(ManifestError(
                    module.path, "compose", f"resolves to container {module.container_name} on host "
                    f"{module.host}, which module {other.name} ({other.path}) already declares"))

    def observer(self, host: str) -> HostObserver:
        if host not in self.observers:
            mine = [s for s in self.selected.values() if s["host"] == host]
            by_name = {m.name: m for m in self.modules}
            refs = {by_name[s["module"]].image_ref for s in mine if s["check"] == "image" and not s.get("pseudo")}
            self.observers[host] = HostObserver(Transport(self.hosts[host]),
                                                {s["container"] for s in mine if s["container"]},
                                                {r for r in refs if r})
        return self.observers[host]

    def observed(self, host: str) -> HostObserver:
        """The host's observer once it has observed; the first call observes every selected host at once.

        Hosts are observed concurrently, each in its own thread over its own connection, so a run
        takes about as long as its slowest host. An xdist worker observes only the host asked
        for: the hosts of its own tests (--dist loadgroup keeps each host on one worker).
        """
        if host not in self.observed_hosts:
            hosts = [host] if self.worker else sorted({s["host"] for s in self.selected.values()} | {host})
            self._observe([h for h in hosts if h not in self.observed_hosts])
        return self.observers[host]

    def _observe(self, hosts: list[str]) -> None:
        observers = [self.observer(h) for h in hosts]
        self.observed_hosts.update(hosts)

        def observe(observer: HostObserver) -> None:
            try:
                observer.containers()
                if observer.host in self.image_hosts:
                    observer.images()
            except ObservationError:
                pass  # cached by the observer: each affected check reports it

        if len(observers) == 1:
            observe(observers[0])
            return
        threads = [threading.Thread(target=observe, args=(o,), name=f"driftcheck-{o.host}", daemon=True)
                   for o in observers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def host_records(self) -> list[dict[str, Any]]:
        """Per host: every command sent, seconds spent, the error (hosts[] of the plan)."""
        return [{"host": name, "commands": list(o.transport.commands), "seconds": round(o.transport.seconds, 3),
                 "error": None if o.error is None else {"code": o.error.code, "message": o.error.message}}
                for name, o in sorted(self.observers.items())]


SIGNAL_NAMES: dict[int, str] = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


def install_signal_handlers(state: DriftState) -> None:
    """SIGTERM (a CI job cancelled, a systemd stop) ends the run the way Ctrl-C does: with a plan."""

    def handler(signum: int, frame: Any) -> None:
        name = SIGNAL_NAMES.get(signum, f"signal {signum}")
        state.signal_received = name
        if not state.finishing:
            raise KeyboardInterrupt(name)

    for signum in SIGNAL_NAMES:
        state.previous_handlers[signum] = signal.signal(signum, handler)
