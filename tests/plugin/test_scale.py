"""The drift path is linear in the failing modules (issue 16), proven by counting, not timing.

pytest's FAILURES section in its default style rescans every report of the session for each failure
(pytest issue 13360, `_get_teardown_reports`): 20,000 failing checks took 18 minutes. A drift run
prints each failure as its one line (--tb=line) unless --tb is asked for, and pytest's own --tb,
-r and -v still work when asked.
"""

from __future__ import annotations

import json

#: a plugin for the inner run: counts the reports pytest's terminal reporter reads back
#: (TerminalReporter.getreports, which its summaries call: once per section, and once more per
#: failure for the teardown sections in the default style) and the logreport hook calls.
COUNTER = '''
import json, os
import pytest

COUNTS = {"reports_scanned": 0, "scans": 0, "logreports": 0}


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    real = reporter.getreports

    def counted(name=""):
        found = real(name)
        COUNTS["scans"] += 1
        COUNTS["reports_scanned"] += len(found)
        return found

    reporter.getreports = counted


def pytest_runtest_logreport(report):
    COUNTS["logreports"] += 1


def pytest_unconfigure(config):
    with open(os.environ["SCAN_COUNTS"], "w") as handle:
        json.dump(COUNTS, handle)
'''


def counted_run(lab, monkeypatch, n, *args):
    """n modules whose containers are all missing (every check fails); the counts of one run."""
    for name in list(lab.modules_dir.iterdir()):
        (name / "module.yaml").unlink()
        name.rmdir()
    for i in range(n):
        lab.module(f"m{i:03d}")
    lab.serve()  # the host runs none of them: CONTAINER_MISSING on each of their four checks
    (lab.root / "scancounter.py").write_text(COUNTER)
    counts = lab.root / f"counts-{n}.json"
    monkeypatch.setenv("SCAN_COUNTS", str(counts))
    run = lab.run("-p", "scancounter", *args)
    assert run.rc == 1, run.output
    assert run.outcomes.get("failed") == 4 * n, run.output
    return run, json.loads(counts.read_text())


def test_failure_summary_work_per_failing_module_does_not_grow(lab, monkeypatch):
    n = 10
    _, small = counted_run(lab, monkeypatch, n)
    run, large = counted_run(lab, monkeypatch, 2 * n)
    per_small, per_large = small["reports_scanned"] / n, large["reports_scanned"] / (2 * n)
    assert per_large <= per_small, (
        f"reports read back per failing module grew from {per_small:.1f} (N={n}) to {per_large:.1f} (N={2 * n}): "
        "the failure summary rescans the session per failure")
    assert large["scans"] == small["scans"], "a scan per failure"
    assert large["logreports"] / (2 * n) <= small["logreports"] / n
    # each failure is still shown, as its one line
    shown = [line for line in run.stdout.splitlines() if ": Failed: CONTAINER_MISSING container: desired" in line]
    assert len(shown) == 4 * 2 * n, run.stdout


def test_tb_asked_for_gives_pytests_sections_back(lab, monkeypatch):
    # The check that the counter above can fail: with --tb=short (pytest's sections, as before this
    # fix), the reports read back per failing module grow with N.
    n = 5
    _, small = counted_run(lab, monkeypatch, n, "--tb=short")
    run, large = counted_run(lab, monkeypatch, 2 * n, "--tb=short")
    assert large["reports_scanned"] / (2 * n) > small["reports_scanned"] / n
    assert "_ test_exists[m000] _" in run.stdout, "--tb=short shows pytest's per-test sections"


def test_verbose_and_report_chars_still_work(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")
    run = lab.run("-v", "-rA")
    assert run.rc == 1, run.output
    lines = run.stdout.splitlines()
    assert any(line.startswith("checks/test_container.py::test_image[wrong-tag] FAILED") for line in lines), run.stdout
    assert "PASSED checks/test_container.py::test_image[in-sync]" in run.stdout, "-rA lists the passes"
    assert "FAILED checks/test_container.py::test_image[wrong-tag] - Failed: IMAGE_TAG" in run.stdout
    assert any(line.endswith("Failed: IMAGE_TAG_MISMATCH image.ref: desired lab/app:1, observed lab/app:2")
               for line in lines), run.stdout


def test_a_failing_checks_report_is_pytests_own(lab):
    # The traceback of a failing check starts at the check's own frame (checkrun.py's makereport
    # hook, so pytest does not walk and stat its own frames for each failure): what pytest reports
    # is what it reported before, the check's line in checks/ and its one-line message.
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")
    run = lab.run("--tb=long")
    assert run.rc == 1, run.output
    report = json.loads((run.run_dir / "report.json").read_text())
    failed = [t for t in report["tests"] if t["outcome"] == "failed"]
    assert [t["nodeid"] for t in failed] == ["checks/test_container.py::test_image[wrong-tag]"]
    crash = failed[0]["call"]["crash"]
    lines = (lab.root / "checks" / "test_container.py").read_text().splitlines()
    assert crash["path"].endswith("checks/test_container.py"), crash
    assert lines[crash["lineno"] - 1].strip() == "drift_check()", crash
    assert crash["message"].startswith("Failed: IMAGE_TAG_MISMATCH image.ref: desired lab/app:1"), crash
    assert "IMAGE_TAG_MISMATCH image.ref: desired lab/app:1, observed lab/app:2" in run.stdout


GC_RECORDER = '''
import gc, json, os
import pytest

SEEN = {"before": gc.get_threshold()}  # imported by -p, before any plugin is configured


def pytest_runtest_call(item):
    SEEN["during"] = gc.get_threshold()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    SEEN["after"] = gc.get_threshold()
    with open(os.environ["GC_SEEN"], "w") as handle:
        json.dump(SEEN, handle)
'''


def test_a_drift_run_walks_its_garbage_less_often_and_gives_the_threshold_back(lab, monkeypatch):
    """The collector's young-generation threshold is raised for the run (plugin.GC_THRESHOLD: about a
    sixth of a 5000-module run's CPU) and given back when it ends, for a process that goes on."""
    from driftcheck.plugin import GC_THRESHOLD

    lab.module("in-sync")
    lab.serve("in-sync")
    (lab.root / "gcrecorder.py").write_text(GC_RECORDER)
    seen = lab.root / "gc.json"
    monkeypatch.setenv("GC_SEEN", str(seen))
    run = lab.run("-p", "gcrecorder")
    assert run.rc == 0, run.output
    recorded = json.loads(seen.read_text())
    assert recorded["during"][0] == max(GC_THRESHOLD, recorded["before"][0]) > 700, recorded
    assert recorded["during"][1:] == recorded["before"][1:]
    assert recorded["after"] == recorded["before"], recorded
