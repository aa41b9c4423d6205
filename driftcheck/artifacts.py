"""A run's artifacts on disk: written atomically, at the edge; and an earlier run's plan read back."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write to a temp file beside path, then rename: readers see the old file or the new one.

    data is the file's bytes, or its pieces in order (json_pieces): then the whole is never held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
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


def json_pieces(obj: Any, indent: int | None = None) -> Iterator[bytes]:
    """to_json(obj, indent), in pieces, so a fleet's report (20,000 checks) or plan is never one
    string, nor a copy of one. Without indent, each item of a list under a top-level
    key, or under a key of a dict there (report.json's plan), is encoded on its own by json's C encoder;
    with it, json's own pieces are gathered."""
    if indent is not None:
        batch: list[str] = []
        size = 0
        for chunk in json.JSONEncoder(indent=indent).iterencode(obj):
            batch.append(chunk)
            size += len(chunk)
            if size >= PIECE:
                yield "".join(batch).encode()
                batch, size = [], 0
        yield ("".join(batch) + "\n").encode()
        return
    yield from _pieces(obj, depth=3)
    yield b"\n"


def _pieces(value: Any, depth: int) -> Iterator[bytes]:
    """json.dumps(value) in pieces: dicts split by key while depth lasts, a list there by item, each item
    whole (a report's tests, its plan's modules)."""
    if depth and isinstance(value, dict) and all(isinstance(key, str) for key in value):
        yield b"{"
        for n, (key, item) in enumerate(value.items()):
            yield f"{', ' if n else ''}{json.dumps(key)}: ".encode()
            yield from _pieces(item, depth - 1)
        yield b"}"
    elif depth and isinstance(value, list) and value:
        yield b"["
        for i, item in enumerate(value):
            yield f"{', ' if i else ''}{json.dumps(item)}".encode()
        yield b"]"
    else:
        yield json.dumps(value).encode()


#: about how many characters json_pieces gathers into one piece
PIECE = 1 << 16


class PlanOutNotWritten(OSError):
    """The --plan-out copy could not be written (the run folder was not the problem)."""


class LatestNotALink(OSError):
    """reports/latest is a real folder or file: driftcheck keeps a symlink there and never removes the rest."""


def latest_blocker(reports_dir: Path) -> str | None:
    """What stands at reports/latest instead of a symlink ("a folder", "a file"), or None."""
    latest = reports_dir / "latest"
    if latest.is_symlink() or not latest.exists():
        return None
    return "a folder" if latest.is_dir() else "a file"


def point_latest(reports_dir: Path, run_id: str) -> None:
    """Replace reports/latest with a relative symlink to the run, atomically."""
    blocker = latest_blocker(reports_dir)
    if blocker is not None:  # os.replace would fail with EISDIR or, for a file, silently replace it
        raise LatestNotALink(0, blocker, str(reports_dir / "latest"))
    tmp = reports_dir / f".latest.{secrets.token_hex(4)}.tmp"
    os.symlink(run_id, tmp)
    try:
        os.replace(tmp, reports_dir / "latest")
    except BaseException:
        os.unlink(tmp)
        raise


ARTIFACTS = ("plan.json", "report.json", "junit.xml", "index.html")


@dataclass(frozen=True)
class Saved:
    """What a run wrote: its run folder and the files in it, or the plan alone (--plan-out), or nothing."""

    #: reports/<run-id>/, when it was written
    run_dir: Path | None
    #: the files in it, in ARTIFACTS order
    names: tuple[str, ...]
    #: where the plan alone went, when the run folder could not be written
    plan_only: Path | None


def artifact_names(report: bool, junit: bool) -> tuple[str, ...]:
    """The files a run folder holds (no report.json without pytest-json-report, no junit.xml without junitxml)."""
    return tuple(n for n in ARTIFACTS if (n != "report.json" or report) and (n != "junit.xml" or junit))


#: the name of a run folder (plan.new_run_id): only such folders are ever removed by --keep-runs
RUN_FOLDER = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]+")


def run_folders(reports_dir: Path) -> list[Path]:
    """The run folders of a reports folder, oldest first; no symlink, no hidden folder.

    A run id sorts by its second; runs of one second (their random suffixes do not) by when their
    folder was last written."""
    try:
        entries = list(os.scandir(reports_dir))
    except OSError:
        return []
    keyed = []
    for entry in entries:
        try:
            if RUN_FOLDER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                written = entry.stat(follow_symlinks=False).st_mtime_ns
                keyed.append(((entry.name.split("-")[0], written, entry.name), Path(entry.path)))
        except OSError:
            continue  # removed meanwhile
    return [path for _, path in sorted(keyed)]


def prune_runs(reports_dir: Path, keep: int, current: str) -> tuple[list[str], list[str]]:
    """Remove all but the newest `keep` run folders, never latest's target nor the current run.

    Returns the run ids removed and one line per folder that could not be removed.
    """
    try:
        latest = os.readlink(reports_dir / "latest")
    except OSError:
        latest = None
    folders = run_folders(reports_dir)
    spared = {p.name for p in folders[-keep:]} | {current} | ({latest} if latest else set())
    removed, failed = [], []
    for folder in folders:
        if folder.name in spared:
            continue
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            failed.append(f"could not remove the old run folder {folder.name} ({exc.filename}: "
                          f"{exc.strerror or exc}); it is kept")
        else:
            removed.append(folder.name)
    return removed, failed


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


def plan_out_file(plan_out: Path) -> Path:
    """--plan-out names a file, or an existing folder that gets plan.json."""
    return plan_out / "plan.json" if plan_out.is_dir() else plan_out


def write_plan_out(plan_out: Path, plan_bytes: bytes | Iterable[bytes]) -> None:
    """The --plan-out copy; PlanOutNotWritten when it cannot be written."""
    target = plan_out_file(plan_out)
    try:
        write_atomic(target, plan_bytes)
    except OSError as exc:
        raise PlanOutNotWritten(exc.errno, exc.strerror or str(exc), exc.filename or str(target)) from exc


def write_run(reports_dir: Path, plan: dict[str, Any], report: dict[str, Any] | None,
              junit: bytes | Path | None, plan_out: Path | None, move_latest: bool) -> Path:
    """Write reports/<run-id>/{plan.json,report.json,junit.xml,index.html}, the --plan-out copy, then latest.

    The files are written into the hidden partial folder (prepare_run) that is renamed into place
    once all of them are on disk, so a reader (or an archiver) sees a whole run folder or none.
    A failed --plan-out copy raises PlanOutNotWritten (and no run folder appears; the partial folder
    stays for the caller to write again without the copy, or discard); reports/latest that is not a
    symlink raises LatestNotALink after the run folder is in place.

    junit is the file's bytes, or the file junitxml wrote: already in the partial folder (the run's
    own --junitxml), it stays there and is flushed to disk; elsewhere, it is copied in pieces. A run's
    junit.xml is never read back whole.
    """
    run_id = str(plan["run_id"])
    run_dir = reports_dir / run_id
    partial = partial_dir(reports_dir, run_id)
    try:
        prepare_run(reports_dir, run_id)
        if isinstance(junit, Path) and junit == partial / "junit.xml":
            fsync(junit)
        elif isinstance(junit, Path):
            write_atomic(partial / "junit.xml", _pieces_of(junit))
        elif junit is not None:
            write_atomic(partial / "junit.xml", junit)
        if report is not None:
            write_atomic(partial / "report.json", json_pieces(report))
        write_atomic(partial / "index.html", render(plan))
        write_atomic(partial / "plan.json", json_pieces(plan, indent=2))
        if plan_out is not None:  # before the rename: a run folder appears only with every copy written
            write_plan_out(plan_out, json_pieces(plan, indent=2))
        os.rename(partial, run_dir)
        fsync(reports_dir)
    except PlanOutNotWritten:
        raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if move_latest:
        point_latest(reports_dir, run_id)
    return run_dir


def _pieces_of(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while piece := handle.read(size):
            yield piece


def fsync(path: Path) -> None:
    """Flush a file (junitxml's, before its folder is renamed into place) or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

