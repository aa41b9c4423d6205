"""plan: statuses, exit codes and the flat lists, from check outcomes alone."""

from __future__ import annotations

import json

from driftcheck.plan import build_plan, write_run

CHANGE = {"code": "CONTAINER_MISSING", "field": "container", "desired": "p-a-1", "observed": None}


def check(module, name, outcome, changes=(), error=None, warnings=()):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": name, "outcome": outcome,
            "changes": list(changes), "warnings": list(warnings), "error": error}


def plan_of(checks, errors=(), status=0):
    return build_plan(run_id="r", started_at="s", finished_at="f", checks=checks, hosts=[], errors=list(errors),
                      pytest_status=status)


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
    import driftcheck.plan as plan_module

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

    from driftcheck.plan import write_atomic

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
    tag = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2"}
    previous = {"run_id": "old", "changes": [{"module": "a", "code": "NOT_RUNNING"},
                                             {"module": "b", "code": "CONTAINER_MISSING"},
                                             {"module": "c", "code": "NOT_RUNNING"},
                                             {"module": "d", "code": "NOT_RUNNING"}]}
    checks = [check("a", "state", "passed"), check("a", "image", "failed", [tag]),
              check("b", "exists", "failed", [missing]),
              check("c", "image", "passed"),  # -k test_image: c's state was not looked at again
              check("e", "state", "error", error={"code": "TIMEOUT", "message": "slow; retry"})]
    plan = build_plan(run_id="new", started_at="s", finished_at="f", checks=checks, hosts=[], errors=[],
                      pytest_status=1, previous=previous)
    assert plan["since"] == {"run_id": "old", "new": [{"module": "a", "code": "IMAGE_TAG_MISMATCH"}],
                             "resolved": [{"module": "a", "code": "NOT_RUNNING"}],
                             "unchanged": [{"module": "b", "code": "CONTAINER_MISSING"}]}
    assert "since" not in plan_of([])  # only with --compare-with


def test_load_previous_accepts_a_plan_or_its_folder(tmp_path):
    import pytest

    from driftcheck.plan import load_previous

    run_dir = write_run(tmp_path, plan_of([check("a", "exists", "passed")]), None, None, None, True)
    assert load_previous(run_dir)["run_id"] == "r" == load_previous(run_dir / "plan.json")["run_id"]
    (tmp_path / "bad.json").write_text('{"changes": "no"}')
    for bad in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(ValueError, match=bad.name):
            load_previous(bad)
