"""--drift-format=json, and a reports folder that cannot be written (ARTIFACTS_NOT_WRITTEN)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from .harness import HOST, PROJECT

TOTAL_RE = re.compile(r"^\d+ modules?: .*; exit (\d+)$", re.MULTILINE)


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


# -- escape sequences from a host or a file never reach the terminal raw -------------------------

PWN = "\x1b]0;pwned\x07"  # retitles the terminal
ERASE = "\x1b[2K\x1b[1A"  # erases a line and moves up: a forged row could follow
RAW = ("\x1b", "\x07", "\x9b", "\x85", "\u202e")


def assert_nothing_raw(run) -> None:
    for char in RAW:
        assert char not in run.stdout and char not in run.stderr, (char, run.output)


def test_escape_sequences_in_labels_names_images_waivers_and_a_compared_plan_are_shown_escaped(lab):
    lab.module("in-sync")
    lab.module("wrong-tag", image={"ref": "lab/app:2"})
    lab.module("waived", ignore=[{"check": "image", "reason": f"PLAT-7{ERASE}\u202e"}])
    lab.serve("in-sync", "wrong-tag", "waived")
    containers = json.loads((lab.stub_dir / "containers.json").read_text())
    by_name = {c["Name"].lstrip("/"): c for c in containers}
    by_name["drift-lab-in-sync-1"]["Config"]["Image"] = f"lab/app:1{PWN}"
    by_name["drift-lab-wrong-tag-1"]["Config"]["Labels"]["com.docker.compose.service"] = f"wrong-tag{ERASE}"
    orphan = json.loads(json.dumps(by_name["drift-lab-in-sync-1"]))
    orphan["Id"], orphan["Name"] = "e" * 64, f"/drift-lab-evil{ERASE}-1"
    orphan["Config"]["Labels"]["com.docker.compose.service"] = f"evil{PWN}\x9b2J"
    lab.write_json("containers.json", [*containers, orphan])
    tampered = lab.root / "tampered.json"
    tampered.write_text(json.dumps({"run_id": PWN + ERASE, "changes": []}))
    run = lab.run("-rfs", "--tb=short", f"--compare-with={tampered}")
    assert run.rc == 1, run.output
    assert_nothing_raw(run)
    # the table, pytest's failure lines, the skip reason and the since line show them escaped
    for shown in ("lab/app:1\\x1b]0;pwned\\x07", "wrong-tag\\x1b[2K\\x1b[1A", "drift-lab-evil\\x1b[2K\\x1b[1A-1",
                  "evil\\x1b]0;pwned\\x07\\x9b2J", "PLAT-7\\x1b[2K\\x1b[1A\\u202e",
                  "since \\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A: "):
        assert shown in run.stdout, (shown, run.output)
    assert "IMAGE_TAG_MISMATCH image.ref: desired lab/app:1, observed lab/app:1\\x1b]0;pwned\\x07" in run.stdout
    # the plan keeps the exact values
    observed = {(c["module"], c["code"]): c["observed"] for c in run.plan["changes"]}
    assert observed[("in-sync", "IMAGE_TAG_MISMATCH")] == f"lab/app:1{PWN}"
    assert observed[("wrong-tag", "SERVICE_LABEL_MISMATCH")] == f"wrong-tag{ERASE}"
    assert observed[(f"orphans@{HOST}/{PROJECT}", "ORPHAN_CONTAINER")] == f"drift-lab-evil{ERASE}-1"
    assert run.plan["since"]["run_id"] == PWN + ERASE


@pytest.mark.parametrize("args", [(), ("-m", "manifest")], ids=["run", "validate"])
def test_escape_sequences_in_a_manifest_are_shown_escaped_in_its_error(lab, args):
    lab.module("in-sync")
    lab.module_text("wrong-tag", json.dumps({
        "schema_version": 2, "name": "wrong-tag", "host": HOST, "compose": {"project": PROJECT, "service": "x"},
        "image": {"ref": f"lab/app:1{PWN}"}, f"colour{ERASE}": "blue"}))
    lab.serve("in-sync")
    run = lab.run(*args)
    assert run.rc == 2, run.output
    assert_nothing_raw(run)
    assert "colour\\x1b[2K\\x1b[1A" in run.stdout, run.output
def test_junit_properties_are_json(lab):
    """junit.xml shows a property's value as it is: each is JSON a CI tool can read, never a Python repr."""
    drift_setup(lab)
    run = lab.run()
    assert run.rc == 1 and run.run_dir is not None, run.output
    values = [p.get("value") for p in ET.parse(run.run_dir / "junit.xml").getroot().iter("property")]
    assert len(values) == 9, values  # one per check that ran (8 of the two modules, 1 orphans): its verdict
    parsed = [json.loads(v) for v in values]
    assert {p["kind"] for p in parsed} == {"verdict"}
    assert any(c["code"] == "IMAGE_TAG_MISMATCH" for p in parsed for c in p["changes"])
