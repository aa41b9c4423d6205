"""--drift-format=json, and a reports folder that cannot be written (ARTIFACTS_NOT_WRITTEN)."""

from __future__ import annotations

import json
import re

TOTAL_RE = re.compile(r"^\d+ modules: .*; exit (\d+)$", re.MULTILINE)


def drift_setup(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")


def unwritable(lab):
    """A --reports-dir whose parent is a regular file: it cannot be created, even by root."""
    blocker = lab.root / "not-a-folder"
    blocker.write_text("a file\n")
    return blocker / "reports"


def test_json_format_stdout_is_exactly_the_plan(lab):
    drift_setup(lab)
    run = lab.run("--drift-format=json")
    assert run.rc == 1, run.output
    assert run.plan_text is not None, run.output
    assert json.loads(run.stdout) == lab.latest_plan() == run.plan
    assert run.stdout == run.plan_text.rstrip("\n"), "stdout holds more than the plan"
    # pytest's own output, the driftcheck summary included, is on stderr
    assert "IMAGE_TAG_MISMATCH" in run.stderr
    assert "1 failed" in run.stderr
    assert [m[1] for m in TOTAL_RE.finditer(run.stderr)] == ["1"], run.stderr


def test_unwritable_reports_folder_text_exits_2(lab):
    drift_setup(lab)
    reports = unwritable(lab)
    run = lab.run(reports=reports)
    assert run.rc == 2, run.output
    assert "ARTIFACTS_NOT_WRITTEN" in run.stdout
    assert str(reports.parent.name) in run.stdout, "the message names the path"
    assert "IMAGE_TAG_MISMATCH" in run.stdout, "the results are still on the terminal"
    assert not reports.parent.is_dir() and not lab.reports.exists()


def test_unwritable_reports_folder_json_plan_and_total_say_exit_2(lab):
    # Bug c (a1ae813): the plan printed on stdout and the total line were built before the write
    # failed, so both said the drift run's exit (0 here) while the process exited 2.
    lab.module("in-sync")
    lab.serve("in-sync")
    run = lab.run("--drift-format=json", reports=unwritable(lab))
    assert run.rc == 2, run.output
    assert "ARTIFACTS_NOT_WRITTEN" in run.stderr
    printed = json.loads(run.stdout)
    totals = [m[1] for m in TOTAL_RE.finditer(run.stderr)]
    assert (printed["exit_code"], totals) == (2, ["2"]), (
        f"the process exits 2 but the printed plan says exit_code {printed['exit_code']} and the total line "
        f"says exit {totals}")
