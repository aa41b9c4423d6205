"""The suite against the real lab: in sync, every kind of drift, selection, artifacts, command count."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.lab import DRIFT_MODULES, EXAMPLE_MODULES, logged_commands, run_suite, sshd_log_count

EXPECTED_DRIFT = {
    "in-sync": ("in_sync", []),
    "stopped": ("drift", ["NOT_RUNNING"]),
    "wrong-tag": ("drift", ["IMAGE_TAG_MISMATCH"]),
    "relabelled": ("drift", ["SERVICE_LABEL_MISMATCH"]),
    "should-stop": ("drift", ["UNEXPECTEDLY_RUNNING"]),
    "should-be-gone": ("drift", ["UNEXPECTEDLY_PRESENT"]),
    "stopped-ok": ("in_sync", []),
    "missing": ("drift", ["CONTAINER_MISSING"]),
    "absent-ok": ("in_sync", []),
    "runtime-ok": ("in_sync", []),
    "ports-drift": ("drift", ["PORTS_MISMATCH"]),
    "env-drift": ("drift", ["ENV_KEY_MISSING", "ENV_VALUE_MISMATCH"]),
    "mounts-drift": ("drift", ["MOUNTS_MISMATCH"]),
    "networks-drift": ("drift", ["NETWORKS_MISMATCH"]),
    "unhealthy": ("drift", ["UNHEALTHY"]),
    "restart-drift": ("drift", ["RESTART_POLICY_MISMATCH"]),
    # State.Status is "restarting" between its short runs (NOT_RUNNING), "running" for an instant.
    "restart-loop": ("drift", ["NOT_RUNNING", "RESTART_LOOP"]),
    "waived": ("in_sync", []),
    "waiver-expired": ("drift", ["IGNORE_EXPIRED"]),
    "stale": ("drift", ["IMAGE_STALE"]),
    "scaled": ("drift", ["REPLICAS_MISMATCH"]),
    "orphans@rs2000/drift-lab": ("drift", ["ORPHAN_CONTAINER"]),
}


def test_baseline_is_in_sync_with_at_most_three_commands(lab, command_log, tmp_path):
    logins = sshd_log_count("Accepted publickey for driftlab")
    run = run_suite(tmp_path)
    # One SSH connection for the whole run, seen by sshd.
    assert sshd_log_count("Accepted publickey for driftlab") - logins == 1
    assert run.rc == 0, run.output
    assert run.plan is not None
    assert set(run.statuses().values()) == {"in_sync"}
    assert len(run.plan["modules"]) == len(list(EXAMPLE_MODULES.glob("*/module.yaml")))
    sent = logged_commands()
    # Counted on the host's side (the lab user's docker wrapper), not only from the plan's record.
    assert 1 <= len(sent) <= 3, sent
    assert [c[0:2] for c in sent] == [["ps", "--all"], ["inspect", "--type"], ["image", "inspect"]]
    assert len(run.plan["hosts"]) == 1
    assert len(run.plan["hosts"][0]["commands"]) == len(sent)


def test_every_kind_of_drift_is_found(drift_lab_run):
    run = drift_lab_run
    assert run.rc == 1, run.output
    plan = run.plan
    assert plan is not None and plan["exit_code"] == 1
    found = {m: (s, run.codes()[m]) for m, s in run.statuses().items()}
    if found["restart-loop"] == ("drift", ["RESTART_LOOP"]):  # caught in its instant of running
        found["restart-loop"] = EXPECTED_DRIFT["restart-loop"]
    assert found == EXPECTED_DRIFT
    # The flat list holds each change once, with its module and host.
    flat = sorted((c["module"], c["code"]) for c in plan["changes"] if c["module"] != "restart-loop")
    assert flat == sorted((m, code) for m, (_, codes) in EXPECTED_DRIFT.items() for code in codes
                          if m != "restart-loop")
    assert all(c["host"] == "rs2000" for c in plan["changes"])
    wrong_tag = next(c for c in plan["changes"] if c["module"] == "wrong-tag")
    assert (wrong_tag["field"], wrong_tag["desired"], wrong_tag["observed"]) == ("image.ref", "lab/app:1", "lab/app:2")
    assert plan["summary"] == {"modules": 22, "in_sync": 5, "drift": 17, "error": 0,
                               "warnings": len(plan["warnings"])}
    # Observed secrets stay out: env value digests and bind-mount sources are never shown.
    mounts = next(c for c in plan["changes"] if c["code"] == "MOUNTS_MISMATCH")
    assert mounts["observed"] == ["(bind):/lab/hostname:ro", "drift-lab_other:/data"]
    env = next(c for c in plan["changes"] if c["code"] == "ENV_VALUE_MISMATCH")
    assert env["observed"] is None and env["message"] == "the variable holds a different value (never shown)"
    failing = {line.split()[1] for line in run.output.splitlines() if line.startswith("FAILED ")}
    failing.discard("checks/test_container.py::test_state[restart-loop]")
    assert failing == {
        "checks/test_container.py::test_ports[ports-drift]", "checks/test_container.py::test_env[env-drift]",
        "checks/test_container.py::test_mounts[mounts-drift]",
        "checks/test_container.py::test_networks[networks-drift]", "checks/test_container.py::test_health[unhealthy]",
        "checks/test_container.py::test_restart_policy[restart-drift]",
        "checks/test_container.py::test_restart_policy[restart-loop]",
        "checks/test_container.py::test_state[waiver-expired]", "checks/test_container.py::test_image[stale]",
        "checks/test_container.py::test_replicas[scaled]", "checks/test_orphans.py::test_orphans[rs2000/drift-lab]",
        "checks/test_container.py::test_exists[missing]", "checks/test_container.py::test_labels[missing]",
        "checks/test_container.py::test_state[missing]", "checks/test_container.py::test_image[missing]",
        "checks/test_container.py::test_exists[should-be-gone]",
        "checks/test_container.py::test_labels[relabelled]", "checks/test_container.py::test_state[stopped]",
        "checks/test_container.py::test_state[should-stop]", "checks/test_container.py::test_image[wrong-tag]",
    }
    assert run.commands is not None and len(run.commands) <= 3


def test_k_narrows_the_run_and_the_plan(drift_lab, command_log, tmp_path):
    run = run_suite(tmp_path, "-k", "wrong-tag", modules=DRIFT_MODULES)
    assert run.rc == 1, run.output
    assert run.statuses() == {"wrong-tag": "drift"}
    assert "4 deselected" not in run.output and "1 failed, 3 passed" in run.output
    junit = ET.parse(run.run_dir / "junit.xml").getroot()
    names = sorted(case.get("name") for case in junit.iter("testcase"))
    assert names == ["test_exists[wrong-tag]", "test_image[wrong-tag]", "test_labels[wrong-tag]",
                     "test_state[wrong-tag]"]
    in_sync = run_suite(tmp_path / "again", "-k", "in-sync", modules=DRIFT_MODULES)
    assert in_sync.rc == 0 and in_sync.statuses() == {"in-sync": "in_sync"}


def test_k_on_one_check_covers_only_that_check(drift_lab, tmp_path):
    run = run_suite(tmp_path, "-k", "test_state", modules=DRIFT_MODULES)
    assert run.rc == 1
    codes = {code for codes in run.codes().values() for code in codes}
    assert codes == {"NOT_RUNNING", "UNEXPECTEDLY_RUNNING", "CONTAINER_MISSING", "IGNORE_EXPIRED"}
    assert "absent-ok" not in run.statuses()  # absent modules have only test_exists


def test_m_selects_by_tag(drift_lab, tmp_path):
    run = run_suite(tmp_path, "-m", "canary", "--strict-markers", modules=DRIFT_MODULES)
    assert run.rc == 1, run.output
    assert run.statuses() == {"in-sync": "in_sync", "wrong-tag": "drift"}


def test_artifacts_of_a_run(lab, tmp_path):
    plan_out = tmp_path / "out"
    plan_out.mkdir()
    run = run_suite(tmp_path, f"--plan-out={plan_out}")
    assert run.rc == 0 and run.run_dir is not None
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json", "report.json"]
    assert (tmp_path / "reports" / "latest").readlink() == Path(run.plan["run_id"])
    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["plan"] == run.plan and report["exitcode"] == 0
    assert json.loads((plan_out / "plan.json").read_text()) == run.plan
    assert ET.parse(run.run_dir / "junit.xml").getroot().find("testsuite") is not None


def test_no_module_selected_is_an_error(lab, command_log, tmp_path):
    plan_out = tmp_path / "plan.json"
    run = run_suite(tmp_path, "-k", "no-such-module", f"--plan-out={plan_out}")
    assert run.rc == 2, run.output
    assert run.plan is None and not (tmp_path / "reports").exists(), "a run that checked nothing wrote a run folder"
    assert [e["code"] for e in json.loads(plan_out.read_text())["errors"]] == ["NO_MODULES_SELECTED"]
    assert logged_commands() == []


def test_collect_only_writes_nothing(lab, command_log, tmp_path):
    run = run_suite(tmp_path, "--collect-only", "-q")
    assert run.rc == 0, run.output
    assert not (tmp_path / "reports").exists()
    assert logged_commands() == []


def test_waivers_skip_with_their_reason_and_expire_into_drift(drift_lab, tmp_path):
    run = run_suite(tmp_path, "-k", "waived or waiver-expired", "-rs", modules=DRIFT_MODULES)
    assert run.rc == 1, run.output
    modules = {m["module"]: m for m in run.plan["modules"]}
    assert modules["waived"]["status"] == "in_sync"
    assert modules["waived"]["ignored"] == [{"check": "image", "reason": "tag 2 is on trial, PLAT-7",
                                             "until": "2999-12-31"}]
    assert "SKIPPED" in run.output and "ignored: tag 2 is on trial, PLAT-7 (until 2999-12-31)" in run.output
    [expired] = modules["waiver-expired"]["changes"]
    assert (expired["code"], expired["field"], expired["desired"]) == ("IGNORE_EXPIRED", "ignore[state].until",
                                                                      "2020-01-31")
    assert modules["waiver-expired"]["ignored"] == []  # an expired waiver silences nothing
    report = json.loads((run.run_dir / "report.json").read_text())
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in report["tests"]}
    assert outcomes["test_image[waived]"] == "skipped" and outcomes["test_state[waiver-expired]"] == "failed"


def test_compare_with_an_earlier_run(drift_lab, tmp_path):
    first = run_suite(tmp_path, "-k", "in-sync or wrong-tag", modules=DRIFT_MODULES)
    assert first.rc == 1
    again = run_suite(tmp_path, "-k", "in-sync or wrong-tag", "--compare-with=latest", modules=DRIFT_MODULES)
    assert again.plan["since"] == {"run_id": first.plan["run_id"], "new": [], "resolved": [],
                                   "unchanged": [{"module": "wrong-tag", "code": "IMAGE_TAG_MISMATCH"}],
                                   "not_compared": []}
    # The repo changes: wrong-tag now wants what runs, in-sync wants a tag that does not.
    modules = tmp_path / "modules"
    shutil.copytree(DRIFT_MODULES, modules)
    for name, ref in (("wrong-tag", "lab/app:2"), ("in-sync", "lab/app:9")):
        manifest = modules / name / "module.yaml"
        manifest.write_text(manifest.read_text().replace("ref: lab/app:1", f"ref: {ref}"))
    changed = run_suite(tmp_path, "-k", "in-sync or wrong-tag", f"--compare-with={first.run_dir}", modules=modules)
    assert changed.plan["since"]["new"] == [{"module": "in-sync", "code": "IMAGE_TAG_MISMATCH"}]
    assert changed.plan["since"]["resolved"] == [{"module": "wrong-tag", "code": "IMAGE_TAG_MISMATCH"}]
    assert "since " + first.plan["run_id"] + ": 1 new, 1 resolved, 0 unchanged" in changed.output
    # Checks that did not run resolve nothing.
    narrow = run_suite(tmp_path, "-k", "wrong-tag and test_state", "--compare-with=latest", modules=modules)
    assert narrow.plan["since"]["resolved"] == []


def test_compare_with_something_that_is_not_a_plan_is_a_usage_error(lab, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    for value in (str(tmp_path / "notes.txt"), str(tmp_path / "nowhere")):
        run = run_suite(tmp_path, f"--compare-with={value}")
        assert run.rc == 4, run.output
        assert "--compare-with=" in run.output and "expected a plan.json" in run.output
