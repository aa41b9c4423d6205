"""The plan of a run: typed records built from every selected check's outcome. Pure: no I/O.

Each record has `to_json`; plan.json is `Plan.to_json()`, nothing else is serialized.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from driftcheck import codes
from driftcheck.manifest import Waiver
from driftcheck.registry import checks_reporting
from driftcheck.verdict import Change, Verdict, Warning

SCHEMA_VERSION = 1
EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
#: how a selected check ended
OUTCOMES = ("passed", "failed", "error", "skipped", "not_run")
T = TypeVar("T")


def new_run_id(now: datetime) -> str:
    """UTC timestamp + short random suffix: sortable and unique."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a module, a host or a check could not be answered: a code and one line."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Problem | None:
        return None if data is None else cls(data["code"], data["message"])


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """How one selected check (test_<check>[<module>]) ended."""

    #: the module, or orphans@<host>/<project> for an orphans check
    module: str
    host: str
    #: the container it concerns (None for an orphans check)
    container: str | None
    check: str
    #: one of OUTCOMES
    outcome: str = "not_run"
    verdict: Verdict = field(default_factory=Verdict)
    #: why it could not observe (a setup error), if so
    error: Problem | None = None
    #: the waiver that skipped it
    ignored: Waiver | None = None
    #: an orphans check: in the plan only when it found something or could not look
    pseudo: bool = False

    @property
    def concluded(self) -> bool:
        """It ran to a verdict: in sync, or drift."""
        return self.outcome == "passed" or (self.outcome == "failed" and bool(self.verdict.changes))

    def unproven(self, stopped_by: str | None = None) -> Problem | None:
        """Why this check proves nothing, or None when it concluded (or was waived) without an error.
        stopped_by: the option that ended the run early (-x, --maxfail=N, --sw), if one did."""
        if self.error is not None:
            return self.error  # an observation that failed wins over whatever the check said
        if self.concluded or (self.outcome == "skipped" and self.ignored is not None):
            return None
        if self.outcome == "not_run" and stopped_by:
            return Problem(codes.NOT_CHECKED, f"check {self.check} did not run: stopped by {stopped_by}")
        if self.outcome == "not_run":
            return Problem(codes.NOT_CHECKED, f"check {self.check} did not run (the run ended early); run it again")
        if self.outcome == "skipped":
            return Problem(codes.NOT_CHECKED, f"check {self.check} was skipped; a skipped check proves nothing, "
                           "run it without the skip")
        return Problem(codes.CHECK_FAILED, f"check {self.check} failed without a verdict; see the test output")


@dataclass(frozen=True)
class HostRecord:
    """What the run sent to one host (the read-only record), how long it took, and its error."""

    host: str
    commands: tuple[str, ...]
    seconds: float
    error: Problem | None = None

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "commands": list(self.commands), "seconds": self.seconds,
                "error": None if self.error is None else self.error.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostRecord:
        return cls(data["host"], tuple(data["commands"]), data["seconds"], Problem.from_json(data["error"]))

    def merged(self, other: HostRecord) -> HostRecord:
        """Two workers observed one host (an xdist mode other than loadgroup)."""
        return HostRecord(self.host, self.commands + other.commands, round(self.seconds + other.seconds, 3),
                          self.error or other.error)


@dataclass(frozen=True)
class RunError:
    """An error of the run: a module's, or the run's own (module and host None)."""

    code: str
    message: str
    module: str | None = None
    host: str | None = None
    #: the file and key of a manifest or inventory error
    file: str | None = None
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "host": self.host, "code": self.code, "message": self.message,
                "file": self.file, "key": self.key}


@dataclass(frozen=True)
class ModuleEntry:
    """One module (or orphans pseudo-module) of the plan."""

    module: str
    host: str
    container: str | None
    status: str
    changes: tuple[Change, ...]
    warnings: tuple[Warning, ...]
    ignored: tuple[Waiver, ...]
    error: Problem | None

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "host": self.host, "container": self.container, "status": self.status,
                "changes": [c.to_json() for c in self.changes], "warnings": [w.to_json() for w in self.warnings],
                "ignored": [w.as_dict() for w in self.ignored],
                "error": None if self.error is None else self.error.to_json()}


@dataclass(frozen=True)
class Plan:
    """The plan of a run (plan.json)."""

    run_id: str
    started_at: str
    finished_at: str
    exit_code: int
    modules: tuple[ModuleEntry, ...]
    errors: tuple[RunError, ...]
    hosts: tuple[HostRecord, ...]
    #: what changed since --compare-with's run
    since: dict[str, Any] | None = None
    #: where the desired state came from: modules_dir, inventory, revision, dirty (provenance.py)
    source: dict[str, Any] | None = None
    #: per module (orphans pseudo-modules included), the checks that ran to a verdict: what a later
    #: --compare-with can compare with
    checked: dict[str, list[str]] = field(default_factory=dict)
    #: to_json's document, built once: a fleet's plan is read by the report, plan.json, the page, the
    #: history and the terminal, and held by several of them at once (with_error starts anew)
    _document: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """plan.json's document: the same dict at each call, for reading only."""
        if self._document is None:
            object.__setattr__(self, "_document", plan_document(
                run_id=self.run_id, started_at=self.started_at, finished_at=self.finished_at,
                exit_code=self.exit_code, modules=[m.to_json() for m in self.modules],
                errors=[e.to_json() for e in self.errors], hosts=[h.to_json() for h in self.hosts],
                since=self.since, source=self.source, checked=self.checked))
        assert self._document is not None
        return self._document

    def with_error(self, error: RunError) -> Plan:
        """The plan with one more run error, its exit status decided again by the same rule."""
        errors = (*self.errors, error)
        return replace(self, errors=errors,
                       exit_code=exit_code(errors, any(m.changes for m in self.modules), self.exit_code))


def plan_document(*, run_id: str, started_at: str, finished_at: str, exit_code: int, modules: list[dict[str, Any]],
                  errors: list[dict[str, Any]], hosts: list[dict[str, Any]],
                  since: dict[str, Any] | None = None, source: dict[str, Any] | None = None,
                  checked: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """plan.json from its parts (a run's records, or the plans make merge combines): the summary,
    changes and warnings are derived from the modules here, and nowhere else."""
    changes = [{"module": m["module"], "host": m["host"], **c} for m in modules for c in m["changes"]]
    warnings = [{"module": m["module"], "host": m["host"], **w} for m in modules for w in m["warnings"]]
    count = {s: sum(1 for m in modules if m["status"] == s) for s in ("in_sync", "drift", "error")}
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "started_at": started_at, "finished_at": finished_at,
        "exit_code": exit_code, "summary": {"modules": len(modules), **count, "warnings": len(warnings)},
        "modules": modules, "changes": changes, "warnings": warnings, "errors": errors, "hosts": hosts,
    }
    if source is not None:
        data["source"] = source
    if checked is not None:
        data["checked"] = checked
    if since is not None:
        data["since"] = since
    return data


#: what each exit status means (SPEC §5), as the pages say it
EXIT_MEANINGS = {EXIT_OK: "in sync", EXIT_DRIFT: "drift", EXIT_ERROR: "error", 3: "internal error", 4: "usage error"}


def is_orphans(module: str) -> bool:
    """An orphans pseudo-module (orphans@<host>/<project>): no module name holds an '@'."""
    return "@" in module


#: run errors after which a run observed nothing worth comparing with: reports/latest stays
NOT_OBSERVED_RUN = (codes.MANIFEST_INVALID, codes.INVENTORY_INVALID, codes.NO_MODULES_SELECTED, codes.INTERRUPTED)


def observed(plan: dict[str, Any]) -> bool:
    """Whether a run observed its hosts, and so moves reports/latest (SPEC §7b): not a usage or internal
    error, not an invalid manifest or inventory, an empty selection or an interrupted run, and at least
    one host answered. A run of partly unreachable hosts moves it; its modules in error count as not
    checked for a later --compare-with."""
    if plan["exit_code"] not in (EXIT_OK, EXIT_DRIFT, EXIT_ERROR):
        return False
    if any(e.get("module") is None and e.get("code") in NOT_OBSERVED_RUN for e in plan["errors"]):
        return False
    return any(h.get("error") is None and h.get("commands") for h in plan["hosts"])


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(items))


def _entry(name: str, outcomes: list[CheckOutcome], stopped_by: str | None) -> ModuleEntry:
    first = outcomes[0]
    changes = _unique(c for o in outcomes for c in o.verdict.changes)
    problems = _unique(p for o in outcomes if (p := o.unproven(stopped_by)) is not None)
    status = "error" if problems else "drift" if changes else "in_sync"
    return ModuleEntry(name, first.host, first.container, status, changes,
                       _unique(w for o in outcomes for w in o.verdict.warnings),
                       tuple(o.ignored for o in outcomes if o.outcome == "skipped" and o.ignored is not None),
                       problems[0] if problems else None)


def exit_code(errors: Iterable[RunError], changes: bool, pytest_status: int) -> int:
    """The one place the exit status is decided (SPEC §5): error wins over drift."""
    if pytest_status in (3, 4):
        return pytest_status
    if any(True for _ in errors) or pytest_status == 2:
        return EXIT_ERROR
    return EXIT_DRIFT if changes else EXIT_OK


def build_plan(*, run_id: str, started_at: str, finished_at: str, outcomes: Iterable[CheckOutcome],
               hosts: Iterable[HostRecord], errors: Iterable[RunError], pytest_status: int,
               previous: dict[str, Any] | None = None, stopped_by: str | None = None,
               source: dict[str, Any] | None = None) -> Plan:
    """The plan of a run from the outcome of every selected check, its hosts and its run errors.

    stopped_by: the option that ended the run before every check ran (-x, --maxfail=N, --sw): a
    run-level NOT_CHECKED error says so once, and each check that did not run names it.
    """
    outcomes = list(outcomes)
    by_module: dict[str, list[CheckOutcome]] = {}
    for outcome in outcomes:
        by_module.setdefault(outcome.module, []).append(outcome)
    not_run = sum(1 for o in outcomes if o.outcome == "not_run")
    if stopped_by and not_run:
        errors = [*errors, RunError(codes.NOT_CHECKED, f"{stopped_by} stopped the run at a failure: {not_run} "
                                    f"check{'' if not_run == 1 else 's'} did not run; run without {stopped_by} to "
                                    "check everything")]
    modules = []
    for name in sorted(by_module):
        entry = _entry(name, by_module[name], stopped_by)
        if entry.status == "in_sync" and by_module[name][0].pseudo:
            continue  # an orphans check appears only when it found orphans or could not look
        modules.append(entry)
    all_errors = [*errors, *(RunError(m.error.code, m.error.message, m.module, m.host)
                             for m in modules if m.error is not None)]
    plan = Plan(run_id, started_at, finished_at,
                exit_code(all_errors, any(m.changes for m in modules), pytest_status),
                tuple(modules), tuple(all_errors), tuple(sorted(hosts, key=lambda h: h.host)), source=source,
                checked=checked(outcomes, {m.module for m in modules if m.status == "error"}))
    if previous is None:
        return plan
    return replace(plan, since=since(previous, plan))


def checked(outcomes: Iterable[CheckOutcome], failed: set[str]) -> dict[str, list[str]]:
    """Per module, the checks that ran to a verdict (in sync or drift); a module in error counts as unchecked."""
    ran: dict[str, set[str]] = {}
    for outcome in outcomes:
        if outcome.concluded and outcome.module not in failed:
            ran.setdefault(outcome.module, set()).add(outcome.check)
    return {module: sorted(ran[module]) for module in sorted(ran)}


def _checked_before(previous: dict[str, Any]) -> dict[str, set[str]] | None:
    """The earlier run's checked record; None for a plan written before it existed."""
    record = previous.get("checked")
    if not isinstance(record, dict):
        return None
    return {str(m): {c for c in checks if isinstance(c, str)} for m, checks in record.items()
            if isinstance(checks, list)}


def since(previous: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Drift new, resolved, unchanged and not compared since an earlier run's plan, as {module, code} pairs.

    Only what both runs checked is compared. A change counts as resolved only where this run looked
    again: a check that can report its code ran to a verdict on that module (an orphans
    pseudo-module included: it is in the plan only while it finds orphans, yet its check ran). A
    change of this run is new only where the earlier run looked: otherwise it is not_compared (that
    run did not select the module or the check, or could not observe it). An earlier plan without
    `checked` counts each of its modules in sync or in drift as checked whole.
    """
    before = {(c["module"], c["code"]) for c in previous.get("changes", [])}
    fields = {(c["module"], c["code"]): str(c.get("field", "")) for c in previous.get("changes", [])}
    now: dict[tuple[str, str], set[str]] = {}  # each drift of this run, with the fields it was reported on
    for m in plan.modules:
        for c in m.changes:
            now.setdefault((m.module, str(c.code)), set()).add(str(c.field))
    earlier = _checked_before(previous)
    modules = previous.get("modules")
    legacy = {str(m.get("module")) for m in (modules if isinstance(modules, list) else [])
              if isinstance(m, dict) and m.get("status") in ("in_sync", "drift")}

    def rechecked(module: str, code: str) -> bool:
        return bool(set(plan.checked.get(module, ())) & checks_reporting(code, fields.get((module, code), "")))

    def compared(module: str, code: str) -> bool:
        if earlier is None:
            return module in legacy
        return any(earlier.get(module, set()) & checks_reporting(code, field) for field in now[(module, code)])

    def listed(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"module": m, "code": c} for m, c in sorted(pairs)]

    fresh = [p for p in now if p not in before]
    return {"run_id": previous.get("run_id"), "new": listed(p for p in fresh if compared(*p)),
            "resolved": listed(p for p in before - now.keys() if rechecked(*p)),
            "unchanged": listed(p for p in now if p in before),
            "not_compared": listed(p for p in fresh if not compared(*p))}
