"""Nothing of a run is left behind (issue 15): with TMPDIR an empty folder of the test's own, every way a run
can end leaves it empty, and leaves no hidden partial folder or temp file in the reports folder. A run
that writes no artifacts names none (no "generated xml file", no "artifacts:" line)."""

from __future__ import annotations

import signal

import pytest

from .test_artifacts import leftovers


def assert_names_no_artifact(run) -> None:
    assert "generated xml file" not in run.output, run.output
    assert "artifacts:" not in run.output, run.output


#: each case: extra arguments, the phases plugin's environment, the exit status, whether it writes artifacts
CASES = {
    "in sync": ((), {}, 0, True),
    "usage error": (("--drift-format=yaml",), {}, 4, False),
    "bad --compare-with": (("--compare-with=nowhere.json",), {}, 4, False),
    "--collect-only": (("--collect-only",), {}, 0, False),
    "empty selection": (("-k", "no-such-module"), {}, 2, False),  # checked nothing: no run folder
    "crash while loading": ((), {"CRASH_AT": "load"}, 3, False),
    "crash at the end": ((), {"CRASH_AT": "finish"}, 1, False),
}


@pytest.mark.parametrize("case", CASES)
def test_nothing_left_in_tmpdir_or_reports(lab, tmp_path, case):
    args, env, rc, writes = CASES[case]
    lab.module("in-sync")
    lab.serve("in-sync")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    run = lab.start("-p", "tests.plugin.phases", *args, env={"TMPDIR": str(tmpdir), **env}).finish()
    assert run.rc == rc, run.output
    assert sorted(p.name for p in tmpdir.iterdir()) == [], "the run left files in TMPDIR"
    assert leftovers(lab.reports) == []
    if writes:
        assert run.run_dir is not None and f"artifacts: reports/{run.run_dir.name}/" in run.stdout, run.output
    else:
        assert run.run_dir is None
        assert_names_no_artifact(run)


@pytest.mark.parametrize("phase", ["startup", "load", "collect"])
def test_nothing_left_after_an_early_sigterm(lab, tmp_path, phase):
    lab.module("in-sync")
    lab.serve("in-sync")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    marker = tmp_path / "reached"
    started = lab.start("-p", "tests.plugin.phases", env={
        "TMPDIR": str(tmpdir), "STALL_AT": phase, "STALL_MARKER": str(marker),
        "STALL_SECONDS": "2" if phase == "startup" else "60"})
    started.wait_for(marker)
    started.proc.send_signal(signal.SIGTERM)
    run = started.finish()
    assert run.rc == 2, run.output
    assert sorted(p.name for p in tmpdir.iterdir()) == []
    assert leftovers(lab.reports) == []
    assert run.run_dir is not None  # an interrupted run keeps its folder, whole
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json", "report.json"]
