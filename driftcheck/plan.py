"""Build the plan (pure) and write a run's artifacts (atomically, at the edge)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftcheck.htmlpage import render

SCHEMA_VERSION = 1
EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


def new_run_id(now: datetime) -> str:
    """UTC timestamp + short random suffix: sortable and unique."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _unproven(entry: dict[str, Any]) -> dict[str, str]:
    check, outcome = entry["check"], entry["outcome"]
    if outcome == "not_run":
        return {"code": "NOT_CHECKED", "message": f"check {check} did not run (the run ended early); run it again"}
    if outcome == "skipped":
        return {"code": "NOT_CHECKED", "message": f"check {check} was skipped; a skipped check proves "
                "nothing, run it without the skip"}
    return {"code": "CHECK_FAILED", "message": f"check {check} failed without a verdict; see the test output"}


def build_plan(*, run_id: str, started_at: str, finished_at: str, checks: list[dict[str, Any]],
               hosts: list[dict[str, Any]], errors: list[dict[str, Any]], pytest_status: int,
               previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan of a run from the outcome of every selected check.

    checks: one dict per selected check with module, host, container, check, outcome
    (passed, failed, error, skipped, not_run), changes, warnings and error.
    errors: run-level errors (invalid manifests, no module selected).
    previous: an earlier run's plan (--compare-with); adds "since".
    """
    by_module: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_module.setdefault(check["module"], []).append(check)
    modules = []
    flat_changes: list[dict[str, Any]] = []
    flat_warnings: list[dict[str, Any]] = []
    flat_errors: list[dict[str, Any]] = list(errors)
    for name in sorted(by_module):
        entries = by_module[name]
        first = entries[0]
        changes = _unique(c for e in entries for c in e.get("changes", []))
        warnings = _unique(w for e in entries for w in e.get("warnings", []))
        module_errors = _unique(e["error"] for e in entries if e.get("error"))
        for entry in entries:
            outcome = entry["outcome"]
            verdict = outcome == "passed" or (outcome == "failed" and entry.get("changes"))
            waived = outcome == "skipped" and entry.get("ignored")
            if not verdict and not waived and not entry.get("error"):
                # Only a check that ran to its verdict proves anything; whatever else is an error.
                module_errors = _unique([*module_errors, _unproven(entry)])
        status = "error" if module_errors else "drift" if changes else "in_sync"
        if first.get("pseudo") and status == "in_sync":
            continue  # an orphans check appears only when it found orphans or could not look
        error = module_errors[0] if module_errors else None
        modules.append({
            "module": name, "host": first["host"], "container": first["container"], "status": status,
            "changes": changes, "warnings": warnings,
            "ignored": [e["ignored"] for e in entries if e["outcome"] == "skipped" and e.get("ignored")],
            "error": None if error is None else {"code": error["code"], "message": error["message"]},
        })
        where = {"module": name, "host": first["host"]}
        flat_changes += [{**where, **c} for c in changes]
        flat_warnings += [{**where, **w} for w in warnings]
        flat_errors += [{**where, "code": e["code"], "message": e["message"], "file": None, "key": None}
                        for e in module_errors]
    if pytest_status in (3, 4):
        exit_code = pytest_status
    elif flat_errors or pytest_status == 2:
        exit_code = EXIT_ERROR
    elif flat_changes:
        exit_code = EXIT_DRIFT
    else:
        exit_code = EXIT_OK
    count = {s: sum(1 for m in modules if m["status"] == s) for s in ("in_sync", "drift", "error")}
    plan = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "started_at": started_at,
        "finished_at": finished_at, "exit_code": exit_code,
        "summary": {"modules": len(modules), **count, "warnings": len(flat_warnings)},
        "modules": modules, "changes": flat_changes, "warnings": flat_warnings,
        "errors": flat_errors, "hosts": hosts,
    }
    if previous is not None:
        plan["since"] = since(previous, plan, checks)
    return plan


#: the check that reports each drift code (CONTAINER_MISSING and IGNORE_EXPIRED: any check)
CODE_CHECK = {
    "UNEXPECTEDLY_PRESENT": "exists", "SERVICE_LABEL_MISMATCH": "labels", "PROJECT_LABEL_MISMATCH": "labels",
    "NOT_RUNNING": "state", "UNEXPECTEDLY_RUNNING": "state", "IMAGE_TAG_MISMATCH": "image",
    "IMAGE_DIGEST_MISMATCH": "image", "RESTART_POLICY_MISMATCH": "restart_policy", "RESTART_LOOP": "restart_policy",
    "PORTS_MISMATCH": "ports", "ENV_KEY_MISSING": "env", "ENV_VALUE_MISMATCH": "env", "MOUNTS_MISMATCH": "mounts",
    "NETWORKS_MISMATCH": "networks", "UNHEALTHY": "health",
}


def since(previous: dict[str, Any], plan: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Drift new, resolved and unchanged since an earlier run's plan, as {module, code} pairs.

    A change counts as resolved only where this run looked again: its module was selected and
    observed, and the check that reports the code ran to a verdict.
    """
    before = {(c["module"], c["code"]) for c in previous.get("changes", [])}
    now = {(c["module"], c["code"]) for c in plan["changes"]}
    observed = {m["module"] for m in plan["modules"] if m["status"] != "error"}
    looked = {(c["module"], c["check"]) for c in checks if c["outcome"] in ("passed", "failed")}

    def rechecked(module: str, code: str) -> bool:
        check = CODE_CHECK.get(code)
        ran = {c for m, c in looked if m == module}
        return module in observed and (check in ran if check else bool(ran))

    def listed(pairs: set[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"module": m, "code": c} for m, c in sorted(pairs)]

    return {"run_id": previous.get("run_id"), "new": listed(now - before),
            "resolved": listed({p for p in before - now if rechecked(*p)}), "unchanged": listed(now & before)}


def load_previous(path: Path) -> dict[str, Any]:
    """An earlier run's plan for --compare-with: a plan.json, or a run folder holding one."""
    target = path / "plan.json" if path.is_dir() else path
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {target}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{target} is not a plan.json (not JSON: {exc})") from exc
    if not (isinstance(data, dict) and isinstance(data.get("changes"), list)
            and all(isinstance(c, dict) and isinstance(c.get("module"), str) and isinstance(c.get("code"), str)
                    for c in data["changes"])):
        raise ValueError(f"{target} is not a plan.json (expected an object with a list of changes)")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file beside path, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def to_json(obj: Any, indent: int | None = 2) -> bytes:
    # indent=None takes json's C encoder: report.json of a 200-module run is ~10x faster to write.
    return (json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n").encode("utf-8")


def point_latest(reports_dir: Path, run_id: str) -> None:
    """Replace reports/latest with a relative symlink to the run, atomically."""
    tmp = reports_dir / f".latest.{secrets.token_hex(4)}.tmp"
    os.symlink(run_id, tmp)
    try:
        os.replace(tmp, reports_dir / "latest")
    except BaseException:
        os.unlink(tmp)
        raise


def write_run(reports_dir: Path, plan: dict[str, Any], report: dict[str, Any] | None,
              junit: bytes | None, plan_out: Path | None, move_latest: bool) -> Path:
    """Write reports/<run-id>/{plan.json,report.json,junit.xml,index.html}, the --plan-out copy, then latest.

    The files are written into a hidden .<run-id>.partial folder that is renamed into place once
    all of them are on disk, so a reader (or an archiver) sees a whole run folder or none.
    """
    run_id = str(plan["run_id"])
    run_dir = reports_dir / run_id
    partial = reports_dir / f".{run_id}.partial"
    reports_dir.mkdir(parents=True, exist_ok=True)
    plan_bytes = to_json(plan)
    try:
        partial.mkdir()
        if junit is not None:
            write_atomic(partial / "junit.xml", junit)
        if report is not None:
            write_atomic(partial / "report.json", to_json(report, indent=None))
        write_atomic(partial / "index.html", render(plan))
        write_atomic(partial / "plan.json", plan_bytes)
        os.rename(partial, run_dir)
        _fsync_dir(reports_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if plan_out is not None:
        target = plan_out / "plan.json" if plan_out.is_dir() else plan_out
        write_atomic(target, plan_bytes)
    if move_latest:
        point_latest(reports_dir, run_id)
    return run_dir


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
