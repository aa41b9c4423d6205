"""ignore: waivers (skipped with their reason, or drift once expired) and --strict-images."""

from __future__ import annotations

from datetime import date

import pytest

from .harness import HOST, PROJECT

UNKNOWN_IMAGE = "sha256:" + "f" * 64


def test_waiver_skips_its_check_and_an_expired_one_is_drift(lab):
    lab.module("waived", ignore=[{"check": "image", "reason": "tag 2 is on trial, PLAT-7",
                                  "until": date(2999, 12, 31)}])
    lab.module("waiver-expired", ignore=[{"check": "state", "reason": "maintenance window, PLAT-8",
                                          "until": date(2020, 1, 31)}])
    lab.serve("waived", "waiver-expired")
    run = lab.run("-rs")
    assert run.rc == 1, run.output
    plan = lab.latest_plan()
    modules = {m["module"]: m for m in plan["modules"]}
    # waived runs lab/app:2 against lab/app:1: the waiver silences exactly that
    assert modules["waived"]["status"] == "in_sync"
    assert modules["waived"]["changes"] == []
    assert modules["waived"]["ignored"] == [{"check": "image", "reason": "tag 2 is on trial, PLAT-7",
                                             "until": "2999-12-31"}]
    assert run.outcomes.get("skipped") == 1, run.output
    assert "ignored: tag 2 is on trial, PLAT-7" in run.stdout
    # an expired waiver is itself drift, reported by the check it names (which ran)
    assert modules["waiver-expired"]["status"] == "drift"
    assert [c["code"] for c in modules["waiver-expired"]["changes"]] == ["IGNORE_EXPIRED"]
    assert modules["waiver-expired"]["ignored"] == []
    assert "IMAGE_TAG_MISMATCH" not in run.plan_text


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict-images"])
def test_strict_images_moves_unproven_images_to_changes(lab, strict):
    lab.module("in-sync")  # no image.digest: IMAGE_DIGEST_NOT_VERIFIED
    lab.module("stopped-ok", desired={"state": "stopped"}, image={"ref": "lab/gone:1"})
    lab.serve("in-sync", "stopped-ok")
    # neither its image id nor its tag is known to `docker image inspect`, which exits 1 with
    # "No such object" for them and prints in-sync's image: IMAGE_NOT_OBSERVED
    lab.patch_container("stopped-ok", Image=UNKNOWN_IMAGE, **{"Config.Image": "lab/gone:1"})
    run = lab.run(*(["--strict-images"] if strict else []))
    plan = lab.latest_plan()
    pairs = {("in-sync", "IMAGE_DIGEST_NOT_VERIFIED"), ("stopped-ok", "IMAGE_DIGEST_NOT_VERIFIED"),
             ("stopped-ok", "IMAGE_NOT_OBSERVED")}
    changes = {(c["module"], c["code"]) for c in plan["changes"]}
    warnings = {(w["module"], w["code"]) for w in plan["warnings"]}
    assert run.commands[-1][:3] == ["image", "inspect", "--"] and UNKNOWN_IMAGE in run.commands[-1], run.commands
    if strict:
        assert run.rc == 1, run.output
        assert plan["exit_code"] == 1
        assert changes == pairs and warnings == set()
        assert run.statuses() == {"in-sync": "drift", "stopped-ok": "drift"}
        assert all(c["host"] == HOST for c in plan["changes"])
    else:
        assert run.rc == 0, run.output
        assert plan["exit_code"] == 0
        assert warnings == pairs and changes == set()
        assert run.statuses() == {"in-sync": "in_sync", "stopped-ok": "in_sync"}
        assert plan["summary"]["warnings"] == 3
    assert f"{PROJECT}-stopped-ok-1" in {m["container"] for m in plan["modules"]}
