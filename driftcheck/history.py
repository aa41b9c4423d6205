"""reports/index.html (the history page) and reports/history.json (its rows), rewritten after each run.

Built from the run folders' plan.json files, bounded: only the newest HISTORY_RUNS folders are read,
each plan.json at most MAX_PLAN bytes (and only a regular file). A run folder is written once, so
its row is kept in history.json with the size and mtime of the plan.json it came from, and a plan
is read again only when those change: after each run, only the new run's plan is new. Both files
are written atomically (write_atomic); readers see the old page or the new one.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftcheck.artifacts import RUN_FOLDER, prune_runs, run_folders, to_json, write_atomic
from driftcheck.historypage import render_history, row_of, unreadable_row

#: run folders read for the page, newest first; older ones are only counted
HISTORY_RUNS = 100
#: the most bytes of a plan.json read (a 5000-module run's plan is well under it)
MAX_PLAN = 32 * 1024 * 1024
#: the most bytes of history.json read; a larger one is ignored and rebuilt
MAX_CACHE = 64 * 1024 * 1024
PAGE, CACHE = "index.html", "history.json"
CACHE_VERSION = 1
#: a row's keys and the types of their values (a row of history.json that does not match is rebuilt)
ROW_KEYS: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "started_at": (str, type(None)), "exit_code": (int, type(None)), "modules": (int,),
    "in_sync": (int,), "drift": (int,), "error": (int,), "warnings": (int,), "orphans": (int,),
    "revision": (str, type(None)), "dirty": (bool, type(None)), "drifted": (list,), "drifted_more": (int,),
    "problem": (str, type(None)),
}


def _read_capped(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most cap; raises ValueError for anything else (a FIFO is never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"larger than {cap // 2**20} MiB")
    return data


def _stamp(path: Path) -> list[int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def read_row(folder: Path) -> dict[str, Any]:
    """The row of one run folder, from its plan.json; a plan that cannot be read gives a row that says why."""
    path = folder / "plan.json"
    try:
        plan = json.loads(_read_capped(path, MAX_PLAN))
        row = row_of(plan)
    except OSError as exc:
        return unreadable_row(folder.name, f"plan.json cannot be read ({exc.strerror or exc})")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return unreadable_row(folder.name, f"plan.json is not a plan ({str(exc)[:120] or type(exc).__name__})")
    except (KeyError, TypeError, AttributeError) as exc:
        return unreadable_row(folder.name, f"plan.json is not a plan (missing or odd {exc})"[:160])
    if not valid_row(row):
        return unreadable_row(folder.name, "plan.json is not a plan (unexpected values)")
    return {**row, "run_id": folder.name}


def _row(plan: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return row_of(plan)
    except (KeyError, TypeError, AttributeError):
        return None


def valid_row(row: Any) -> bool:
    return (isinstance(row, dict) and set(row) == set(ROW_KEYS)
            and all(isinstance(row[k], types) and not (isinstance(row[k], bool) and bool not in types)
                    for k, types in ROW_KEYS.items())
            and all(isinstance(m, str) for m in row["drifted"]))


def _cached(reports_dir: Path) -> dict[str, dict[str, Any]]:
    """history.json's entries by run id ({"stamp", "row"}); nothing when it is missing or not ours."""
    try:
        data = json.loads(_read_capped(reports_dir / CACHE, MAX_CACHE))
    except (OSError, ValueError, RecursionError):
        return {}
    if not (isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("runs"), list)):
        return {}
    return {e["row"]["run_id"]: e for e in data["runs"]
            if isinstance(e, dict) and isinstance(e.get("stamp"), list) and valid_row(e.get("row"))}


def _latest(reports_dir: Path) -> str | None:
    try:
        target = os.readlink(reports_dir / "latest")
    except OSError:
        return None
    return target if RUN_FOLDER.fullmatch(target) else None


def write_history(reports_dir: Path, current: dict[str, Any] | None = None) -> Path:
    """Rewrite reports/index.html and reports/history.json from the run folders; raises OSError.

    current: the plan this process just wrote into its run folder, so it is not read back."""
    folders = run_folders(reports_dir)
    newest = folders[::-1][:HISTORY_RUNS]
    cache = _cached(reports_dir)
    entries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for folder in newest:
        stamp = _stamp(folder / "plan.json")
        known = cache.get(folder.name)
        fresh = known is not None and stamp is not None and known["stamp"] == stamp and known["row"]["problem"] is None
        if known is not None and fresh:
            row = known["row"]
        elif current is not None and current.get("run_id") == folder.name and valid_row(mine := _row(current)):
            row = mine
        else:
            row = read_row(folder)
        entries.append({"stamp": stamp, "row": row})
        rows.append(row)
    write_atomic(reports_dir / CACHE, to_json({"version": CACHE_VERSION, "runs": entries}, indent=None))
    page = reports_dir / PAGE
    write_atomic(page, render_history(rows, _latest(reports_dir), len(folders) - len(newest), HISTORY_RUNS))
    return page


def archive_upkeep(reports_dir: Path, keep_runs: int | None, plan: dict[str, Any],
                   show: Callable[[Path], str] = str) -> list[str]:
    """After a run folder is written: --keep-runs, then the history page. One line per thing to say;
    neither changes the run's exit status (its own artifacts are written)."""
    notes = []
    if keep_runs is not None:
        removed, failed = prune_runs(reports_dir, keep_runs, str(plan["run_id"]))
        if removed:
            notes.append(f"removed {len(removed)} old run folder(s) (--keep-runs={keep_runs}): {', '.join(removed)}")
        notes += failed
    try:
        write_history(reports_dir, plan)
    except OSError as exc:
        notes.append(f"the history page {show(reports_dir / PAGE)} could not be written "
                     f"({exc.strerror or exc}); the run's own artifacts are")
    return notes
