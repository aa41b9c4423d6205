"""A run's artifacts on disk: written atomically, at the edge; and an earlier run's plan read back."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from driftcheck.boundedread import FileRefused, read_bounded
from driftcheck.htmlpage import render

#: a plan of 5000 modules, each with changes, is a few MiB
MAX_PLAN_BYTES = 64 * 1024 * 1024


def load_previous(path: Path) -> dict[str, Any]:
    """An earlier run's plan for --compare-with: a plan.json, or a run folder holding one; ValueError if not."""
    target = path / "plan.json" if path.is_dir() else path
    try:
        # a FIFO is refused, not waited on; /dev/zero or a huge file is refused, not read whole
        data = json.loads(read_bounded(target, MAX_PLAN_BYTES).decode("utf-8"))
    except FileRefused as exc:
        raise ValueError(f"{target} {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {target}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{target} is not a plan.json (not JSON: {exc})") from exc
    except RecursionError:
        # json's decoder recurses once per nesting level; a plan is a few levels deep
        raise ValueError(f"{target} is not a plan.json (JSON nested too deeply)") from None
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
    return (json.dumps(obj, indent=indent, sort_keys=False) + "\n").encode("utf-8")


def point_latest(reports_dir: Path, run_id: str) -> None:
    """Replace reports/latest with a relative symlink to the run, atomically."""
    tmp = reports_dir / f".latest.{secrets.token_hex(4)}.tmp"
    os.symlink(run_id, tmp)
    try:
        os.replace(tmp, reports_dir / "latest")
    except BaseException:
        os.unlink(tmp)
        raise


def partial_dir(reports_dir: Path, run_id: str) -> Path:
    """The hidden folder a run's files are written into before it is renamed into place."""
    return reports_dir / f".{run_id}.partial"


def prepare_run(reports_dir: Path, run_id: str) -> None:
    """Create the run's partial folder: raises OSError before anything reports, if it cannot be written."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    partial_dir(reports_dir, run_id).mkdir(exist_ok=True)


def discard_run(reports_dir: Path, run_id: str) -> None:
    """Remove what a run that could not be written left of its partial folder."""
    shutil.rmtree(partial_dir(reports_dir, run_id), ignore_errors=True)


def write_run(reports_dir: Path, plan: dict[str, Any], report: dict[str, Any] | None,
              junit: bytes | None, plan_out: Path | None, move_latest: bool) -> Path:
    """Write reports/<run-id>/{plan.json,report.json,junit.xml,index.html}, the --plan-out copy, then latest.

    The files are written into the hidden partial folder (prepare_run) that is renamed into place
    once all of them are on disk, so a reader (or an archiver) sees a whole run folder or none.
    """
    run_id = str(plan["run_id"])
    run_dir = reports_dir / run_id
    partial = partial_dir(reports_dir, run_id)
    plan_bytes = to_json(plan)
    try:
        prepare_run(reports_dir, run_id)
        if junit is not None:
            write_atomic(partial / "junit.xml", junit)
        if report is not None:
            write_atomic(partial / "report.json", to_json(report, indent=None))
        write_atomic(partial / "index.html", render(plan))
        write_atomic(partial / "plan.json", plan_bytes)
        if plan_out is not None:  # before the rename: a run folder appears only with every copy written
            write_atomic(plan_out / "plan.json" if plan_out.is_dir() else plan_out, plan_bytes)
        os.rename(partial, run_dir)
        _fsync_dir(reports_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if move_latest:
        point_latest(reports_dir, run_id)
    return run_dir


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
