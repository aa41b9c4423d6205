"""The run's artifacts when something is in the way (issue 15): a full disk, a disabled plugin, a crash,
reports/latest that is a real folder. The run never crashes, says in one line what was not written,
writes the plan wherever it still can, and leaves nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * (256 * 1024))
        except OSError:
            pass


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs under this test's own temp folder, filled up; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    folder = tmp_path / "full"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        fill(folder)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def leftovers(folder: Path) -> list[str]:
    """Hidden files or folders a run left in a reports folder (a partial run folder, a temp file)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")) if folder.is_dir() else []


def in_sync(lab) -> None:
    lab.module("in-sync")
    lab.serve("in-sync")


def test_without_junitxml_the_run_writes_the_rest_and_says_so(lab):
    in_sync(lab)
    run = lab.run("-p", "no:junitxml")
    assert run.rc == 0, run.output
    assert "INTERNALERROR" not in run.output
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["index.html", "plan.json", "report.json"]
    [line] = [ln for ln in run.stdout.splitlines() if ln.startswith("artifacts:")]
    assert line.endswith("(plan.json, report.json, index.html; no junit.xml: pytest's junitxml plugin is disabled "
                         "(-p no:junitxml))"), line


def test_without_json_report_the_line_names_only_what_was_written(lab):
    in_sync(lab)
    run = lab.run("-p", "no:pytest_jsonreport")
    assert run.rc == 0, run.output
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json"]
    [line] = [ln for ln in run.stdout.splitlines() if ln.startswith("artifacts:")]
    assert "(plan.json, junit.xml, index.html; no report.json: pytest-json-report is disabled" in line, line


def test_a_full_reports_disk_still_writes_the_plan_to_plan_out(lab, full_disk):
    in_sync(lab)
    plan_out = lab.root / "plan-out.json"
    run = lab.run(f"--plan-out={plan_out}", reports=full_disk)
    assert run.rc == 2, run.output
    assert "INTERNALERROR" not in run.output and "Traceback" not in run.output
    [error] = [ln for ln in run.stdout.splitlines() if "ARTIFACTS_NOT_WRITTEN" in ln]
    assert "No space left on device" in error and "free space on" in error and "--reports-dir=DIR" in error, error
    assert "generated xml file" not in run.output, "junitxml's line names a file that was removed"
    assert "artifacts:" not in run.stdout
    assert f"plan: {plan_out.name} (only the plan: the run folder could not be written)" in run.stdout
    plan = json.loads(plan_out.read_text())
    assert plan["exit_code"] == 2 and [e["code"] for e in plan["errors"]] == ["ARTIFACTS_NOT_WRITTEN"]
    assert plan["summary"]["in_sync"] == 1
    assert [p.name for p in full_disk.iterdir()] == ["filler"], "something half-written was left"


def test_a_full_plan_out_disk_still_writes_the_run_folder(lab, full_disk):
    in_sync(lab)
    run = lab.run(f"--plan-out={full_disk / 'plan.json'}")
    assert run.rc == 2, run.output
    [error] = [ln for ln in run.stdout.splitlines() if "ARTIFACTS_NOT_WRITTEN" in ln]
    assert "--plan-out copy" in error and "No space left on device" in error and "--plan-out=PATH" in error, error
    assert run.plan is not None and run.plan["exit_code"] == 2, run.output
    assert [e["code"] for e in run.plan["errors"]] == ["ARTIFACTS_NOT_WRITTEN"]
    assert json.loads((run.run_dir / "report.json").read_text())["exitcode"] == 2
    assert not (lab.reports / "latest").exists(), "latest moved to a run whose artifacts are incomplete"
    assert [p.name for p in full_disk.iterdir()] == ["filler"]
    assert leftovers(lab.reports) == []


def test_reports_latest_that_is_a_folder_is_named_and_kept(lab):
    in_sync(lab)
    latest = lab.reports / "latest"
    latest.mkdir(parents=True)
    (latest / "mine.txt").write_text("the operator's\n")
    run = lab.run()
    assert run.rc == 2, run.output
    [error] = [ln for ln in run.stdout.splitlines() if "ARTIFACTS_NOT_WRITTEN" in ln]
    assert "free space" not in error and "reports/latest is a folder, not the symlink driftcheck keeps there" in error
    assert "move reports/latest away or remove it" in error, error
    assert run.plan is not None and run.plan["exit_code"] == 2 and run.plan["summary"]["in_sync"] == 1
    assert [e["code"] for e in run.plan["errors"]] == ["ARTIFACTS_NOT_WRITTEN"]
    assert [p.name for p in latest.iterdir()] == ["mine.txt"] and not latest.is_symlink()
    assert leftovers(lab.reports) == []


def test_a_crash_at_the_end_leaves_no_partial_run_folder(lab):
    in_sync(lab)
    # another plugin's pytest_sessionfinish raising: pytest ends with that traceback, whatever driftcheck does
    run = lab.start("-p", "tests.plugin.phases", env={"CRASH_AT": "finish"}).finish()
    assert run.rc != 0 and "crashed at finish on purpose" in run.output, run.output
    assert leftovers(lab.reports) == []
    assert "generated xml file" not in run.output


@pytest.mark.parametrize("case", ["invalid manifest", "invalid inventory", "empty selection"])
def test_latest_moves_only_with_a_run_that_looked_at_its_hosts(lab, case):
    # SPEC §7b: not with an invalid manifest or an empty selection (it used to move with both)
    in_sync(lab)
    earlier = lab.run()
    assert earlier.rc == 0 and (lab.reports / "latest").resolve() == earlier.run_dir, earlier.output
    args: tuple[str, ...] = ()
    if case == "invalid manifest":
        lab.module("bad", colour="blue")
    elif case == "invalid inventory":
        lab.inventory.write_text("hosts: {stubhost: {connection: 'telnet://x'}}\n")
    else:
        args = ("-k", "no-such-module")
    run = lab.run(*args)
    # an invalid file keeps its run folder (the plan says what was invalid); an empty selection checked
    # nothing and writes none (issue 17)
    assert run.rc == 2 and (run.run_dir is None) == (case == "empty selection"), run.output
    assert run.run_dir != earlier.run_dir
    assert (lab.reports / "latest").resolve() == earlier.run_dir, "latest moved to a run that checked nothing"
    assert lab.latest_plan()["exit_code"] == 0


def test_an_unwritable_reports_folder_is_one_error_not_two(lab):
    # the folder's own error and junitxml's failing write into it are one cause
    in_sync(lab)
    blocker = lab.root / "not-a-folder"
    blocker.write_text("a file\n")
    run = lab.run("--drift-format=json", reports=blocker / "reports")
    assert run.rc == 2, run.output
    assert [e["code"] for e in json.loads(run.stdout)["errors"]] == ["ARTIFACTS_NOT_WRITTEN"], run.stdout
