"""Exit codes 0, 1 and 2 (SPEC §5), each with its plan and what was sent to the host."""

from __future__ import annotations

import json

from .harness import HOST, PROJECT, sent_per_plan


def test_all_in_sync_exits_0_with_three_commands_at_most(lab):
    lab.module("in-sync")
    lab.module("stopped-ok", desired={"state": "stopped"})
    lab.module("absent-ok", desired={"state": "absent"}, image=None)
    lab.serve("in-sync", "stopped-ok")
    run = lab.run()
    assert run.rc == 0, run.output
    plan = lab.latest_plan()
    assert plan == run.plan and (lab.reports / "latest").resolve() == run.run_dir
    assert plan["exit_code"] == 0
    assert run.statuses() == {"absent-ok": "in_sync", "in-sync": "in_sync", "stopped-ok": "in_sync"}
    assert plan["changes"] == [] and plan["errors"] == []
    assert plan["summary"] == {"modules": 3, "in_sync": 3, "drift": 0, "error": 0, "warnings": 2}
    # read-only and batched: docker ps, one inspect, one image inspect; the plan records exactly what was sent
    assert [argv[:2] for argv in run.commands] == [["ps", "--all"], ["inspect", "--type"], ["image", "inspect"]]
    assert sent_per_plan(run) == run.commands
    assert "3 modules: 3 in sync, 0 drift, 0 error, 2 warnings; exit 0" in run.stdout


def test_wrong_image_tag_is_drift_exit_1(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")
    run = lab.run()
    assert run.rc == 1, run.output
    plan = lab.latest_plan()
    assert plan["exit_code"] == 1
    assert run.statuses() == {"in-sync": "in_sync", "wrong-tag": "drift"}
    expected = {"module": "wrong-tag", "host": HOST, "code": "IMAGE_TAG_MISMATCH", "field": "image.ref",
                "desired": "lab/app:1", "observed": "lab/app:2"}
    assert [{k: c.get(k) for k in expected} for c in plan["changes"]] == [expected]  # (a change may add a message)
    assert run.outcomes.get("failed") == 1, run.output
    assert "IMAGE_TAG_MISMATCH" in run.stdout
    assert sent_per_plan(run) == run.commands


def test_container_gone_between_ps_and_inspect_is_missing(lab):
    # docker inspect exits 1 with "No such object" for it and prints the others: an observation, not an error
    lab.module("in-sync")
    lab.module("wrong-tag", image={"ref": "lab/app:2"})
    lab.serve("in-sync", "wrong-tag")
    lab.set_scenario(vanish=[f"{PROJECT}-in-sync-1"])
    run = lab.run()
    assert run.rc == 1, run.output
    assert run.codes() == {"in-sync": ["CONTAINER_MISSING"], "wrong-tag": []}
    assert run.statuses() == {"in-sync": "drift", "wrong-tag": "in_sync"}


def test_invalid_manifest_exits_2_and_contacts_no_host(lab):
    lab.module("in-sync")
    bad = lab.module("wrong-tag", colour="blue")
    lab.serve("in-sync", "wrong-tag")
    run = lab.run()
    assert run.rc == 2, run.output
    assert run.commands == [], "a host was contacted despite an invalid manifest"
    assert run.plan is not None, "an invalid manifest still writes the plan (SPEC §6)\n" + run.output
    assert run.plan["exit_code"] == 2
    assert run.plan["modules"] == []
    assert run.error_codes() == ["MANIFEST_INVALID"]
    error = run.plan["errors"][0]
    assert error["file"] and error["file"].endswith(f"{bad.parent.name}/module.yaml"), error
    assert "colour" in (error["key"] or ""), error
    assert "MANIFEST_INVALID" in run.stdout


def test_docker_unavailable_exits_2(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")
    lab.set_scenario(fail={"ps": {"rc": 1, "stderr": "Cannot connect to the Docker daemon at "
                                  "unix:///var/run/docker.sock. Is the docker daemon running?\n"}})
    run = lab.run()
    assert run.rc == 2, run.output
    plan = run.plan
    assert plan is not None and plan["exit_code"] == 2
    assert not (lab.reports / "latest").exists(), "a run that observed no host moved latest"
    # the orphans pseudo-module appears too: its host could not be looked at (SPEC §2)
    assert run.statuses() == {"in-sync": "error", "wrong-tag": "error", f"orphans@{HOST}/{PROJECT}": "error"}
    assert {m["error"]["code"] for m in plan["modules"]} == {"DOCKER_UNAVAILABLE"}
    assert set(run.error_codes()) == {"DOCKER_UNAVAILABLE"}
    assert [argv[0] for argv in run.commands] == ["ps"], "nothing is sent after docker ps failed"
    assert "DOCKER_UNAVAILABLE" in run.stdout


def test_k_matching_nothing_is_no_modules_selected_exit_2(lab):
    lab.module("in-sync")
    lab.serve("in-sync")
    run = lab.run("-k", "nomatch", "--drift-format=json")
    assert run.rc == 2, run.output
    assert run.run_dir is None and not lab.reports.exists(), "a run that checked nothing wrote a run folder"
    plan = json.loads(run.stdout)
    assert plan["exit_code"] == 2
    assert plan["modules"] == []
    assert [e["code"] for e in plan["errors"]] == ["NO_MODULES_SELECTED"]
    assert run.commands == []
    assert "NO_MODULES_SELECTED" in run.stderr



def test_an_inspect_that_fails_without_a_word_is_exit_2_never_in_sync(lab):
    # A module desired absent whose container runs: docker exits 1 with an empty stderr. It named
    # no container missing, so none is (this was "in sync", exit 0).
    lab.module("wrong-tag", desired={"state": "absent"}, image=None)
    lab.serve("wrong-tag")
    lab.set_scenario(fail={"inspect": {"rc": 1, "stderr": ""}})
    run = lab.run()
    assert run.rc == 2, run.output
    # (the orphans check of its project could not look either)
    assert run.statuses() == {"wrong-tag": "error", f"orphans@{HOST}/{PROJECT}": "error"}
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"DOCKER_UNAVAILABLE"}
    assert "exit status 1 without a message" in run.plan["modules"][0]["error"]["message"]


def test_an_inspect_that_fails_without_a_word_is_exit_2_never_container_missing(lab):
    lab.module("in-sync")
    lab.module("wrong-tag", image={"ref": "lab/app:2"})
    lab.serve("in-sync", "wrong-tag")
    lab.set_scenario(fail={"inspect": {"rc": 1, "stdout": "[]\n", "stderr": ""}})
    run = lab.run()
    assert run.rc == 2, run.output
    assert run.statuses() == {"in-sync": "error", "wrong-tag": "error", f"orphans@{HOST}/{PROJECT}": "error"}
    assert run.plan["changes"] == [] and "CONTAINER_MISSING" not in run.stdout
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"DOCKER_UNAVAILABLE"}


def test_an_image_inspect_that_fails_without_a_word_is_exit_2_never_image_not_observed(lab):
    lab.module("in-sync")
    lab.serve("in-sync")
    lab.set_scenario(fail={"image": {"rc": 1, "stderr": ""}})
    run = lab.run()
    assert run.rc == 2, run.output
    assert run.statuses() == {"in-sync": "error"}
    assert run.plan["modules"][0]["error"]["code"] == "DOCKER_UNAVAILABLE"
    assert "IMAGE_NOT_OBSERVED" not in run.plan_text
