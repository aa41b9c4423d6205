"""Scale on the lab: hosts observed concurrently; pytest-xdist gives the same plan as one process."""

from __future__ import annotations

import json

import yaml

from tests.support.lab import (
    DRIFT_MODULES,
    add_module,
    lab_connection,
    logged_commands,
    run_suite,
    sshd_log_count,
    write_inventory,
)

#: what may differ between two runs with the same result
VOLATILE = ("run_id", "started_at", "finished_at")


#: a container restarting in a loop: its state and restart count move between two runs
MOVING = "restart-loop"


def comparable(plan: dict) -> dict:
    plan = {k: v for k, v in plan.items() if k not in VOLATILE}
    plan["hosts"] = [{**h, "seconds": None} for h in plan["hosts"]]
    # its changes come and go (NOT_RUNNING while it restarts, the count in RESTART_LOOP): only its
    # status is compared
    plan["changes"] = [c for c in plan["changes"] if c["module"] != MOVING]
    plan["modules"] = [{**m, "changes": None} if m["module"] == MOVING else m for m in plan["modules"]]
    return plan


def test_xdist_loadgroup_gives_the_same_plan(drift_lab_run, command_log, tmp_path):
    one = drift_lab_run
    assert one.rc == 1, one.output
    command_log.write_text("")
    logins = sshd_log_count("Accepted publickey for driftlab")
    two = run_suite(tmp_path / "two", "-n", "2", "--dist", "loadgroup", modules=DRIFT_MODULES)
    assert two.rc == 1, two.output
    assert comparable(two.plan) == comparable(one.plan)
    assert "2 workers" in two.output
    # The host's tests ran on one worker: observed once, over one connection.
    assert len(logged_commands()) == 3
    assert sshd_log_count("Accepted publickey for driftlab") - logins == 1
    # One report.json and one junit.xml, written by the controller, with the plan merged in.
    report = json.loads((two.run_dir / "report.json").read_text())
    assert report["exitcode"] == 1 and comparable(report["plan"]) == comparable(one.plan)
    assert {t["nodeid"].rsplit("@", 1)[1] for t in report["tests"]} == {"rs2000"}
    assert sorted(p.name for p in two.run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json", "report.json"]
    assert sorted(p.name for p in (tmp_path / "two" / "reports").iterdir()) == sorted(
        [two.run_dir.name, "latest", "index.html", "history.json"])  # the run folder, latest and the history


def test_xdist_with_nothing_selected_is_an_error(lab, tmp_path):
    plan_out = tmp_path / "plan.json"
    run = run_suite(tmp_path, "-n", "2", "--dist", "loadgroup", "-k", "no-such-module", f"--plan-out={plan_out}")
    assert run.rc == 2, run.output
    assert run.plan is None and not (tmp_path / "reports").exists(), "a run that checked nothing wrote a run folder"
    assert [e["code"] for e in json.loads(plan_out.read_text())["errors"]] == ["NO_MODULES_SELECTED"]


def test_hosts_are_observed_concurrently(lab, tmp_path, mute_server):
    """Three hosts that each take their whole 2 s timeout: the run waits about 2 s, not 6."""
    modules = tmp_path / "modules"
    modules.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yaml", timeout=2)
    data = yaml.safe_load(inventory.read_text())
    for name in ("edge-a", "edge-b", "edge-c"):
        add_module(modules, f"{name}-app", name)
        data["hosts"][name] = {**data["hosts"]["rs2000"],
                               "connection": lab_connection(mute_server(None))}
    inventory.write_text(yaml.safe_dump(data))
    run = run_suite(tmp_path, inventory=inventory, modules=modules)
    assert run.rc == 2, run.output
    assert [h["error"]["code"] for h in run.plan["hosts"]] == ["HOST_UNREACHABLE"] * 3
    assert all(h["seconds"] >= 2 - 0.1 for h in run.plan["hosts"])
    # Sequential observation would need 6 s on top of start-up.
    assert run.seconds < 2 + 2.5, run.seconds
