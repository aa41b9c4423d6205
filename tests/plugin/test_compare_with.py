"""--compare-with: new, resolved and unchanged drift since an earlier run."""

from __future__ import annotations

import os

import pytest

from .harness import HOST, PROJECT
from .test_inputs import assert_clean, limit_memory


def pair(module, code):
    return {"module": module, "code": code}


def test_new_resolved_unchanged(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.module("stopped")
    lab.serve("in-sync", "wrong-tag", "stopped")
    first = lab.run()
    assert first.rc == 1, first.output
    assert first.codes() == {"in-sync": [], "wrong-tag": ["IMAGE_TAG_MISMATCH"], "stopped": ["NOT_RUNNING"]}
    # wrong-tag recreated from lab/app:1, in-sync removed, stopped still stopped
    lab.patch_container("wrong-tag", **{"Config.Image": "lab/app:1", "Image": lab.captured("in-sync")["Image"]})
    lab.set_scenario(remove=[f"{PROJECT}-in-sync-1"])
    second = lab.run(f"--compare-with={first.run_dir}")
    assert second.rc == 1, second.output
    assert lab.latest_plan() == second.plan and (lab.reports / "latest").resolve() == second.run_dir
    since = second.plan["since"]
    assert since["run_id"] == first.plan["run_id"]
    assert since["new"] == [pair("in-sync", "CONTAINER_MISSING")]
    assert since["resolved"] == [pair("wrong-tag", "IMAGE_TAG_MISMATCH")]
    assert since["unchanged"] == [pair("stopped", "NOT_RUNNING")]
    assert f"since {first.plan['run_id']}: 1 new, 1 resolved, 1 unchanged" in second.stdout


@pytest.mark.parametrize(("module", "sections", "code"), [
    ("scaled", {"desired": {"replicas": 1}}, "REPLICAS_MISMATCH"),
    ("stale", {"image": {"ref": "lab/stale:1"}}, "IMAGE_STALE"),
])
def test_drift_of_a_check_that_did_not_run_is_not_resolved(lab, module, sections, code):
    # Bug a (a1ae813): since() knew no check for REPLICAS_MISMATCH / IMAGE_STALE and counted any check
    # of the module that ran as having looked again. (CONFIG_HASH_MISMATCH would need docker-compose.)
    lab.module(module, **sections)
    lab.serve(module)
    first = lab.run()
    assert first.rc == 1, first.output
    assert code in first.codes()[module], first.output
    second = lab.run("-k", "test_state", f"--compare-with={first.run_dir}")
    assert second.rc == 0, second.output
    assert second.statuses() == {module: "in_sync"}  # only test_state ran, and passed
    since = second.plan["since"]
    assert pair(module, code) not in since["resolved"], (
        f"{code} is listed as resolved, but -k test_state never ran the check that reports it: {since}")


def test_orphan_removed_is_resolved(lab):
    # Bug b (a1ae813): an orphans check that finds nothing leaves its pseudo-module out of the plan, so
    # since() never counted it as observed and a removed orphan was never resolved.
    orphans = f"orphans@{HOST}/{PROJECT}"
    lab.module("in-sync")
    lab.serve("in-sync", "orphan")
    first = lab.run()
    assert first.rc == 1, first.output
    assert first.codes() == {"in-sync": [], orphans: ["ORPHAN_CONTAINER"]}
    lab.set_scenario(remove=[f"{PROJECT}-orphan-1"])
    second = lab.run("-v", f"--compare-with={first.run_dir}")
    assert second.rc == 0, second.output
    assert f"test_orphans[{HOST}/{PROJECT}] PASSED" in second.stdout, "the orphans check ran again"
    since = second.plan["since"]
    assert pair(orphans, "ORPHAN_CONTAINER") in since["resolved"], (
        f"the orphan is gone and the orphans check ran, yet it is not resolved: {since}")


# Issue 15: a FIFO hung the run, deep nesting was INTERNALERROR RecursionError (exit 3), a huge file was read whole.
@pytest.mark.parametrize(("kind", "expected"), [
    ("fifo", "is a named pipe (FIFO), not a regular file"),
    ("/dev/zero", "is a character device, not a regular file"),
    ("nested", "is not a plan.json (JSON nested too deeply)"),
    ("huge", "is 4294967296 bytes; expected at most 64 MiB"),
])
def test_compare_with_an_unreadable_plan_is_a_usage_error(lab, kind, expected):
    lab.module("in-sync")
    lab.serve("in-sync")
    target = lab.root / "earlier.json"
    if kind == "fifo":
        os.mkfifo(target)  # nobody ever writes to it: reading it would wait forever
    elif kind == "nested":
        target.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "huge":
        with open(target, "wb") as handle:
            handle.truncate(4 << 30)
    else:
        target.symlink_to(kind)
    run = lab.start(f"--compare-with={target}", preexec_fn=limit_memory).finish(timeout=30)
    assert run.rc == 4, run.output
    assert_clean(run)
    [line] = [ln for ln in run.stderr.splitlines() if ln.startswith("ERROR:")]
    assert line == (f"ERROR: --compare-with={target}: {target} {expected}; expected a plan.json, a run folder, "
                    "or latest"), run.output
    assert run.plan is None and run.commands == []


def test_drift_the_earlier_run_did_not_check_is_not_compared_not_new(lab):
    # The case: after a run of one module (-k), comparing a whole run with it called the
    # other modules' old drift "new".
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.module("stopped")
    lab.serve("in-sync", "wrong-tag", "stopped")
    narrow = lab.run("-k", "in-sync")
    assert narrow.rc == 0 and narrow.plan["checked"]["in-sync"], narrow.output
    image_only = lab.run("-k", "test_image")
    assert image_only.rc == 1, image_only.output
    whole = lab.run(f"--compare-with={narrow.run_dir}")
    assert whole.rc == 1, whole.output
    since = whole.plan["since"]
    assert since["new"] == [] and since["unchanged"] == []
    assert since["not_compared"] == [pair("stopped", "NOT_RUNNING"), pair("wrong-tag", "IMAGE_TAG_MISMATCH")]
    assert "0 new, 0 resolved, 0 unchanged, 2 not compared" in whole.stdout
    assert "<td>not_compared</td><td>stopped</td>" in (whole.run_dir / "index.html").read_text()
    # against a run of the image check alone: its drift is unchanged, the state it never looked at is not new
    since = lab.run(f"--compare-with={image_only.run_dir}").plan["since"]
    assert since["unchanged"] == [pair("wrong-tag", "IMAGE_TAG_MISMATCH")]
    assert since["new"] == [] and since["not_compared"] == [pair("stopped", "NOT_RUNNING")]
