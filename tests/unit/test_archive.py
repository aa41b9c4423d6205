"""The archive of runs (reports/): --keep-runs prunes the oldest run folders, and only run folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from driftcheck.artifacts import prune_runs, run_folders
from driftcheck.options import RunOptions

IDS = [f"2026112{d}T120000Z-00a{d}" for d in range(1, 7)]  # oldest first


def archive(tmp_path: Path, latest: str | None = None) -> Path:
    reports = tmp_path / "reports"
    for run_id in IDS:
        (reports / run_id).mkdir(parents=True)
        (reports / run_id / "plan.json").write_text("{}")
    (reports / ".20261130T000000Z-ffff.partial").mkdir()  # a run being written
    (reports / "notes").mkdir()
    (reports / "index.html").write_text("")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", reports / "20261120T000000Z-0000")  # not ours to follow
    if latest:
        os.symlink(latest, reports / "latest")
    return reports


def test_it_keeps_the_newest_and_latests_target_and_nothing_else_is_touched(tmp_path):
    reports = archive(tmp_path, latest=IDS[1])
    removed, failed = prune_runs(reports, 2, IDS[-1])
    assert (removed, failed) == ([IDS[0], IDS[2], IDS[3]], [])
    assert [p.name for p in run_folders(reports)] == [IDS[1], IDS[4], IDS[5]]
    assert {p.name for p in reports.iterdir()} == {IDS[1], IDS[4], IDS[5], ".20261130T000000Z-ffff.partial", "notes",
                                                   "index.html", "20261120T000000Z-0000", "latest"}
    assert (tmp_path / "elsewhere").is_dir()


def test_the_current_run_is_kept_even_when_it_sorts_older(tmp_path):
    reports = archive(tmp_path)
    removed, _ = prune_runs(reports, 1, IDS[0])  # the clock went back
    assert [p.name for p in run_folders(reports)] == [IDS[0], IDS[5]] and len(removed) == 4


def test_a_folder_that_cannot_be_removed_is_kept_and_said(tmp_path, monkeypatch):
    reports = archive(tmp_path, latest=IDS[-1])

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    removed, failed = prune_runs(reports, 5, IDS[-1])
    assert removed == [] and failed == [f"could not remove the old run folder {IDS[0]} ({reports / IDS[0]}: "
                                        "Permission denied); it is kept"]


def options(given=None, env=None):
    return RunOptions.build(Path("/r"), Path("/r"), given or {}, env or {})


def test_keep_runs_is_a_whole_number_of_one_or_more():
    assert options().keep_runs is None
    assert options({"keep_runs": "3"}).keep_runs == 3 == options(env={"DRIFT_KEEP_RUNS": "3"}).keep_runs
    assert options({"keep_runs": "2"}, {"DRIFT_KEEP_RUNS": "9"}).keep_runs == 2  # the option wins
    assert options(env={"DRIFT_KEEP_RUNS": ""}).keep_runs is None  # an empty variable is unset, as for the others
    for bad in ("0", "-1", "two", "1.5", " ", "٣"):
        with pytest.raises(ValueError, match=r"--keep-runs / DRIFT_KEEP_RUNS=.*expected a whole number"):
            options({"keep_runs": bad})
        with pytest.raises(ValueError, match=r"--keep-runs / DRIFT_KEEP_RUNS=.*expected a whole number"):
            options(env={"DRIFT_KEEP_RUNS": bad})


def test_runs_of_one_second_are_ordered_by_when_they_were_written(tmp_path):
    reports = tmp_path / "reports"
    older, newer = "20261201T000001Z-ffff", "20261201T000001Z-0000"  # the random suffixes sort the other way
    for name, written in ((older, 1_000_000_000), (newer, 1_000_000_005)):
        (reports / name).mkdir(parents=True)
        os.utime(reports / name, (written, written))
    (reports / "20261201T000000Z-ffff").mkdir()
    assert [p.name for p in run_folders(reports)] == ["20261201T000000Z-ffff", older, newer]
    assert prune_runs(reports, 1, newer) == (["20261201T000000Z-ffff", older], [])
