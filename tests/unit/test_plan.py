"""plan: statuses, exit codes and the flat lists, from check outcomes alone."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from driftcheck.artifacts import write_run
from tests.support.unit import plan_json

CHANGE = {"code": "CONTAINER_MISSING", "field": "container", "desired": "p-a-1", "observed": None, "message": None}


def check(module, name, outcome, changes=(), error=None, warnings=()):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": name, "outcome": outcome,
            "changes": list(changes), "warnings": list(warnings), "error": error}


def plan_of(checks, errors=(), status=0):
    return plan_json(checks, list(errors), status)


def test_in_sync_with_warnings_is_exit_0():
    warning = {"code": "IMAGE_DIGEST_NOT_VERIFIED", "message": "m"}
    plan = plan_of([check("a", "exists", "passed"), check("a", "image", "passed", warnings=[warning])])
    assert plan["exit_code"] == 0 and plan["modules"][0]["status"] == "in_sync"
    assert plan["summary"]["warnings"] == 1 and plan["warnings"][0]["module"] == "a"


def test_missing_container_is_one_change():
    plan = plan_of([check("a", c, "failed", [CHANGE]) for c in ("exists", "labels", "state", "image")], status=1)
    assert plan["exit_code"] == 1 and plan["modules"][0]["changes"] == [CHANGE]
    assert plan["changes"] == [{"module": "a", "host": "h", **CHANGE}]


def test_error_wins_over_drift_and_is_never_in_sync():
    error = {"code": "HOST_UNREACHABLE", "message": "refused"}
    plan = plan_of([check("a", "exists", "failed", [CHANGE]), check("b", "exists", "error", error=error)], status=1)
    assert plan["exit_code"] == 2
    assert {m["module"]: m["status"] for m in plan["modules"]} == {"a": "drift", "b": "error"}
    assert plan["errors"] == [{"module": "b", "host": "h", "code": "HOST_UNREACHABLE", "message": "refused",
                               "file": None, "key": None}]


def test_a_check_that_did_not_run_makes_the_module_an_error():
    plan = plan_of([check("a", "exists", "passed"), check("a", "image", "not_run")])
    assert plan["modules"][0]["status"] == "error" and plan["exit_code"] == 2


def test_usage_and_internal_errors_keep_their_codes():
    assert plan_of([], status=4)["exit_code"] == 4
    assert plan_of([], errors=[{"code": "NO_MODULES_SELECTED"}])["exit_code"] == 2


def test_write_run_is_complete_and_moves_latest(tmp_path):
    plan = plan_of([check("a", "exists", "passed")])
    run_dir = write_run(tmp_path, plan, {"exitcode": 0}, b"<testsuites/>", tmp_path / "copy.json", True)
    assert json.loads((run_dir / "plan.json").read_text()) == plan
    assert (tmp_path / "latest").readlink().name == "r"
    assert json.loads((tmp_path / "copy.json").read_text()) == plan
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_skipped_check_proves_nothing():
    plan = plan_of([check("a", "exists", "passed"), check("a", "state", "skipped")])
    assert plan["modules"][0]["status"] == "error"
    assert plan["modules"][0]["error"]["code"] == "NOT_CHECKED"


def test_interrupted_write_leaves_no_folder_and_keeps_latest(tmp_path, monkeypatch):
    import driftcheck.artifacts as plan_module

    earlier = write_run(tmp_path, {**plan_of([]), "run_id": "earlier"}, {}, b"<x/>", None, True)
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    real = plan_module.write_atomic

    def interrupted(path, data):
        if path.name == "plan.json":
            raise KeyboardInterrupt("SIGTERM")
        real(path, data)

    monkeypatch.setattr(plan_module, "write_atomic", interrupted)
    try:
        write_run(tmp_path, plan_of([]), {}, b"<x/>", None, True)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the write was not interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "latest"]
    assert (tmp_path / "latest").readlink().name == "earlier"
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before


def test_write_atomic_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    import os

    from driftcheck.artifacts import write_atomic

    target = tmp_path / "plan.json"
    target.write_bytes(b"old")

    def fail(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fail)
    try:
        write_atomic(target, b"new")
    except KeyboardInterrupt:
        pass
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_waived_check_is_reported_not_an_error():
    waiver = {"check": "state", "reason": "PLAT-1", "until": None}
    plan = plan_of([check("a", "exists", "passed"), {**check("a", "state", "skipped"), "ignored": waiver}])
    assert plan["modules"][0]["status"] == "in_sync" and plan["modules"][0]["ignored"] == [waiver]
    assert plan["exit_code"] == 0


def test_since_an_earlier_run():
    missing = {"code": "CONTAINER_MISSING", "field": "container", "desired": "p-b-1", "observed": None}
    tag = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2", "message": None}
    previous = {"run_id": "old", "changes": [{"module": "a", "code": "NOT_RUNNING"},
                                             {"module": "b", "code": "CONTAINER_MISSING"},
                                             {"module": "c", "code": "NOT_RUNNING"},
                                             {"module": "d", "code": "NOT_RUNNING"}],
                "checked": {m: ["image", "state"] for m in "abcd"}}
    checks = [check("a", "state", "passed"), check("a", "image", "failed", [tag]),
              check("b", "exists", "failed", [missing]),
              check("c", "image", "passed"),  # -k test_image: c's state was not looked at again
              check("e", "state", "error", error={"code": "TIMEOUT", "message": "slow; retry"})]
    plan = plan_json(checks, [], 1, previous, run_id="new")
    assert plan["since"] == {"run_id": "old", "new": [{"module": "a", "code": "IMAGE_TAG_MISMATCH"}],
                             "resolved": [{"module": "a", "code": "NOT_RUNNING"}],
                             "unchanged": [{"module": "b", "code": "CONTAINER_MISSING"}], "not_compared": []}
    assert "since" not in plan_of([])  # only with --compare-with


def test_the_plan_records_what_each_module_was_checked_for():
    plan = plan_of([check("a", "state", "passed"), check("a", "image", "failed", [CHANGE]),
                    check("a", "ports", "not_run"), check("b", "image", "passed"),
                    check("c", "image", "error", error={"code": "TIMEOUT", "message": "slow; retry"}),
                    pseudo("passed")])
    # a's ports check never ran: a is an error, and an error module counts as not checked at all
    assert plan["checked"] == {"b": ["image"], "orphans@h/p": ["orphans"]}
    plan = plan_of([check("a", "state", "passed"), check("a", "image", "failed", [CHANGE])])
    assert plan["checked"] == {"a": ["image", "state"]}


def test_drift_the_earlier_run_did_not_check_is_not_compared():
    """After a -k run, a run whose host was down, or a -k test_image run, old drift is not called new."""
    tag = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "x:1", "observed": "x:2", "message": None}
    stopped = {"code": "NOT_RUNNING", "field": "state", "desired": "running", "observed": "exited", "message": None}
    previous = {"run_id": "old", "changes": [], "checked": {"a": ["image", "state"], "c": ["image"]},
                "modules": [{"module": m, "status": "in_sync"} for m in "abc"]}
    now = [check(m, "image", "failed", [tag]) for m in "abc"] + [check("c", "state", "failed", [stopped]),
                                                                   pseudo("failed", [ORPHAN])]
    since = plan_json(now, [], 1, previous)["since"]
    assert since["new"] == [{"module": "a", "code": "IMAGE_TAG_MISMATCH"},
                            {"module": "c", "code": "IMAGE_TAG_MISMATCH"}]
    assert since["not_compared"] == [{"module": "b", "code": "IMAGE_TAG_MISMATCH"},  # not selected, or in error
                                     {"module": "c", "code": "NOT_RUNNING"},  # -k test_image: state not looked at
                                     {"module": "orphans@h/p", "code": "ORPHAN_CONTAINER"}]  # no orphans check
    looked = plan_json(now, [], 1, {**previous, "checked": {**previous["checked"], "orphans@h/p": ["orphans"]}})
    assert {"module": "orphans@h/p", "code": "ORPHAN_CONTAINER"} in looked["since"]["new"]


def test_a_plan_from_before_the_checked_record_compares_its_modules_in_sync_or_in_drift():
    tag = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "x:1", "observed": "x:2", "message": None}
    previous = {"run_id": "old", "changes": [], "modules": [{"module": "a", "status": "in_sync"},
                                                            {"module": "b", "status": "error"}]}
    since = plan_json([check(m, "image", "failed", [tag]) for m in "abc"], [], 1, previous)["since"]
    assert since["new"] == [{"module": "a", "code": "IMAGE_TAG_MISMATCH"}]
    assert since["not_compared"] == [{"module": "b", "code": "IMAGE_TAG_MISMATCH"},
                                     {"module": "c", "code": "IMAGE_TAG_MISMATCH"}]
    odd = plan_json([check("a", "image", "failed", [tag])], [], 1,
                    {"run_id": "old", "changes": [], "modules": "x", "checked": {"a": "image"}})["since"]
    assert odd["not_compared"] == [{"module": "a", "code": "IMAGE_TAG_MISMATCH"}]  # a malformed record: no crash


def test_load_previous_accepts_a_plan_or_its_folder(tmp_path):
    import pytest

    from driftcheck.artifacts import load_previous

    run_dir = write_run(tmp_path, plan_of([check("a", "exists", "passed")]), None, None, None, True)
    assert load_previous(run_dir)["run_id"] == "r" == load_previous(run_dir / "plan.json")["run_id"]
    (tmp_path / "bad.json").write_text('{"changes": "no"}')
    for bad in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(ValueError, match=bad.name):
            load_previous(bad)


ORPHAN = {"code": "ORPHAN_CONTAINER", "field": "container", "desired": None, "observed": "p-x-1", "message": "m"}
REPLICAS = {"code": "REPLICAS_MISMATCH", "field": "desired.replicas", "desired": 1, "observed": 2, "message": "m"}


def pseudo(outcome, changes=()):
    return {**check("orphans@h/p", "orphans", outcome, changes), "container": None, "pseudo": True}


def test_since_resolves_an_orphan_when_the_orphans_check_ran_again():
    """The orphans pseudo-module is absent from the plan once in sync, yet its check ran: resolved."""
    previous = {"run_id": "old", "changes": [{"module": "orphans@h/p", "code": "ORPHAN_CONTAINER"}]}
    again = plan_json([pseudo("passed")], [], 0, previous)
    assert again["modules"] == []
    assert again["since"]["resolved"] == [{"module": "orphans@h/p", "code": "ORPHAN_CONTAINER"}]
    not_again = plan_json([check("a", "state", "passed")], [], 0, previous)
    assert not_again["since"]["resolved"] == []


def test_since_never_resolves_what_no_check_looked_at_again():
    """-k test_state after REPLICAS_MISMATCH, IMAGE_STALE, CONFIG_HASH_MISMATCH: none of them is resolved."""
    codes = ["REPLICAS_MISMATCH", "IMAGE_STALE", "CONFIG_HASH_MISMATCH"]
    previous = {"run_id": "old", "changes": [{"module": "a", "code": c} for c in codes]}
    plan = plan_json([check("a", "state", "passed")], [], 0, previous)
    assert plan["since"]["resolved"] == []
    plan = plan_json([check("a", "replicas", "passed"), check("a", "image", "passed")], [], 0, previous)
    assert plan["since"]["resolved"] == [{"module": "a", "code": "IMAGE_STALE"},
                                         {"module": "a", "code": "REPLICAS_MISMATCH"}]


def test_an_added_error_decides_the_exit_status_again():
    from driftcheck.plan import RunError, build_plan
    from tests.support.unit import outcome

    plan = build_plan(run_id="r", started_at="s", finished_at="f", outcomes=[outcome(check("a", "exists", "passed"))],
                      hosts=[], errors=[], pytest_status=0)
    assert plan.exit_code == 0
    failed = plan.with_error(RunError("ARTIFACTS_NOT_WRITTEN", "read-only"))
    assert failed.exit_code == 2 and failed.to_json()["exit_code"] == 2
    assert failed.to_json()["errors"][-1]["code"] == "ARTIFACTS_NOT_WRITTEN"


def test_values_survive_the_plan():
    plan = plan_of([check("a", "replicas", "failed", [REPLICAS])], status=1)
    assert plan["changes"][0]["desired"] == 1 and plan["changes"][0]["observed"] == 2


def test_since_resolves_an_expired_waiver_only_when_the_waived_check_ran_again():
    previous = {"run_id": "old", "changes": [{"module": "a", "code": "IGNORE_EXPIRED", "field": "ignore[ports].until"}]}
    assert plan_json([check("a", "state", "passed")], [], 0, previous)["since"]["resolved"] == []
    assert plan_json([check("a", "ports", "passed")], [], 0, previous)["since"]["resolved"] == [
        {"module": "a", "code": "IGNORE_EXPIRED"}]


def test_a_plan_out_that_cannot_be_written_leaves_no_run_folder(tmp_path):
    import pytest

    from driftcheck.artifacts import PlanOutNotWritten, discard_run

    (tmp_path / "file").write_text("")
    with pytest.raises(PlanOutNotWritten):
        write_run(tmp_path / "reports", plan_of([check("a", "exists", "passed")]), None, None,
                  tmp_path / "file" / "plan.json", True)
    # only the hidden partial folder, which the caller writes again without the copy, or discards
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [".r.partial"]
    discard_run(tmp_path / "reports", "r")
    assert [p.name for p in (tmp_path / "reports").iterdir()] == []


def test_only_a_run_that_observed_a_host_moves_latest():
    from driftcheck.plan import observed

    answered = {"host": "h", "commands": ["docker ps"], "seconds": 0.1, "error": None}
    refused = {"host": "g", "commands": [], "seconds": 0.1, "error": {"code": "HOST_UNREACHABLE", "message": "m"}}
    plan = {**plan_of([check("a", "exists", "passed")]), "hosts": [answered]}
    assert observed(plan)
    assert observed({**plan, "exit_code": 2, "hosts": [answered, refused]})  # one host of two answered
    assert not observed({**plan, "exit_code": 2, "hosts": [refused]})
    assert not observed({**plan, "hosts": []})  # nothing was sent anywhere
    assert not observed({**plan, "exit_code": 4}) and not observed({**plan, "exit_code": 3})
    for code in ("MANIFEST_INVALID", "INVENTORY_INVALID", "NO_MODULES_SELECTED", "INTERRUPTED"):
        error = {"module": None, "host": None, "code": code, "message": "m", "file": None, "key": None}
        assert not observed({**plan, "exit_code": 2, "errors": [error]}), code


def test_a_code_reported_on_two_checks_is_compared_where_either_was_checked_before():
    expired = {"code": "IGNORE_EXPIRED", "desired": "2020-01-31", "observed": None, "message": None}
    checks = [check("a", "ports", "failed", [{**expired, "field": "ignore[ports].until"}]),
              check("a", "state", "failed", [{**expired, "field": "ignore[state].until"}])]
    previous = {"run_id": "old", "changes": [], "checked": {"a": ["ports"]}}
    since = plan_json(checks, [], 1, previous)["since"]
    assert since["new"] == [{"module": "a", "code": "IGNORE_EXPIRED"}] and since["not_compared"] == []


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                       max_leaves=20)


@settings(max_examples=200)
@given(st.dictionaries(st.text(), JSONISH | st.lists(JSONISH, max_size=6), max_size=5) | JSONISH)
def test_report_json_written_in_pieces_is_the_same_bytes(obj):
    """report.json is written piece by piece (a fleet's report is never one string): the same bytes
    as encoding it whole."""
    from driftcheck.artifacts import json_pieces, to_json

    assert b"".join(json_pieces(obj)) == to_json(obj, indent=None)
    assert b"".join(json_pieces(obj, indent=2)) == to_json(obj)  # plan.json's form


def test_report_json_is_written_in_pieces_of_one_test_each(tmp_path):
    from driftcheck.artifacts import json_pieces, write_atomic

    report = {"created": 1.5, "tests": [{"nodeid": f"checks/test_container.py::test_image[m{i}]"} for i in range(1000)],
              "plan": {"exit_code": 0, "modules": [{"module": f"m{i}", "status": "in sync"} for i in range(1000)]}}
    pieces = list(json_pieces(report))
    assert max(len(p) for p in pieces) < 100 and len(pieces) > 2000  # a test, or a module of the plan, a piece
    write_atomic(tmp_path / "report.json", iter(pieces))
    assert json.loads((tmp_path / "report.json").read_text()) == report
    indented = list(json_pieces(report, indent=2))
    assert len(indented) > 1 and max(len(p) for p in indented) < 2 * (1 << 16)


def test_junitxmls_file_in_the_partial_folder_is_renamed_with_it_never_rewritten(tmp_path):
    from driftcheck.artifacts import partial_dir, prepare_run

    plan = plan_of([check("a", "exists", "passed")])
    prepare_run(tmp_path, "r")
    junit = partial_dir(tmp_path, "r") / "junit.xml"
    junit.write_bytes(b"<testsuites/>" * 1000)
    inode = junit.stat().st_ino
    run_dir = write_run(tmp_path, plan, {}, junit, None, True)
    assert (run_dir / "junit.xml").stat().st_ino == inode  # the same file: not read back, not written again
    assert (run_dir / "junit.xml").read_bytes() == b"<testsuites/>" * 1000


def test_a_junitxml_file_elsewhere_is_copied_in_pieces(tmp_path):
    elsewhere = tmp_path / "mine.xml"
    elsewhere.write_bytes(b"x" * (3 * (1 << 20) + 5))
    run_dir = write_run(tmp_path / "reports", plan_of([]), {}, elsewhere, None, True)
    assert (run_dir / "junit.xml").read_bytes() == elsewhere.read_bytes()


def test_a_failed_plan_out_copy_leaves_the_partial_folder_for_the_second_write(tmp_path):
    """report.py writes the run folder again without the copy that failed: junitxml's file, already
    in the partial folder, must still be there."""
    from driftcheck.artifacts import PlanOutNotWritten, partial_dir, prepare_run

    prepare_run(tmp_path, "r")
    junit = partial_dir(tmp_path, "r") / "junit.xml"
    junit.write_bytes(b"<testsuites/>")
    plan = plan_of([])
    try:
        (tmp_path / "a-file").write_text("")
        write_run(tmp_path, plan, {}, junit, tmp_path / "a-file" / "copy.json", True)
    except PlanOutNotWritten:
        pass
    else:
        raise AssertionError("the copy was written")
    assert not (tmp_path / "r").exists() and junit.is_file()
    run_dir = write_run(tmp_path, plan, {}, junit, None, False)
    assert (run_dir / "junit.xml").read_bytes() == b"<testsuites/>"
