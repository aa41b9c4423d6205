"""make merge: a run split into host slices (-k <host>, as a CI matrix runs it) and merged equals the
single run, except for run ids and times; overlapping or mismatched runs are refused."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from .harness import HOST, REPO

HOSTS = [HOST, "nas", "edge", "gone"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def four_hosts(lab) -> None:
    """An in-sync module, a wrong tag, a stopped container and an unreachable host: one per host."""
    local = {"connection": "local://", "timeout": 20}
    lab.inventory.write_text(yaml.safe_dump({"hosts": {
        HOST: dict(local), "nas": dict(local), "edge": dict(local),
        "gone": {"connection": f"paramiko://nobody@127.0.0.1:{closed_port()}", "timeout": 5}}}))
    lab.module("in-sync")
    lab.module("wrong-tag", host="nas")
    lab.module("stopped", host="edge")
    lab.module("scaled", host="gone")
    lab.serve("in-sync", "wrong-tag", "stopped", "scaled")


def merge(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "driftcheck.merge", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def timeless_plan(plan: dict[str, Any]) -> dict[str, Any]:
    plan = {k: v for k, v in plan.items() if k not in ("run_id", "started_at", "finished_at")}
    plan["hosts"] = [{k: v for k, v in h.items() if k != "seconds"} for h in plan["hosts"]]
    return plan


def outcomes_of(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(t["nodeid"], t["outcome"], t.get("user_properties")) for t in report["tests"]]


def cases_of(junit: Path) -> tuple[dict[str, str], list[tuple[str, str, list[str]]]]:
    suite = next(ET.parse(junit).getroot().iter("testsuite"))
    counts = {k: suite.get(k, "") for k in ("errors", "failures", "skipped", "tests")}
    return counts, [(c.get("classname", ""), c.get("name", ""), sorted(child.tag for child in c))
                    for c in suite.iter("testcase")]


def test_a_run_split_into_host_slices_and_merged_equals_the_single_run(lab):
    four_hosts(lab)
    single = lab.run()
    assert single.rc == 2, single.output  # drift on nas and edge, an unreachable host: error wins
    assert single.run_dir is not None
    slices = [lab.run("-k", host) for host in HOSTS]
    # the three local:// hosts are the one stub: each sees the others' containers as orphans
    assert [s.rc for s in slices] == [1, 1, 1, 2], [s.output for s in slices]
    folders = [s.run_dir for s in slices]
    assert all(folders)
    done = merge(f"--reports-dir={lab.reports}", *folders, cwd=lab.root)
    assert done.returncode == single.rc, done.stdout + done.stderr
    merged = (lab.reports / "latest").resolve()
    assert merged not in {single.run_dir, *folders} and f"into {merged}" in done.stdout
    total = next(line for line in single.stdout.splitlines() if " modules: " in line)
    assert total in done.stdout.splitlines(), done.stdout

    plan = json.loads((merged / "plan.json").read_text())
    assert plan["run_id"] == merged.name and plan["run_id"] != single.plan["run_id"]
    assert timeless_plan(plan) == timeless_plan(single.plan)

    report = json.loads((merged / "report.json").read_text())
    alone = json.loads((single.run_dir / "report.json").read_text())
    assert outcomes_of(report) == outcomes_of(alone)
    assert report["summary"] == alone["summary"] and report["exitcode"] == alone["exitcode"] == 2
    assert timeless_plan(report["plan"]) == timeless_plan(plan)
    selected = {c["nodeid"]: c.get("deselected", False) for col in report["collectors"] for c in col["result"]}
    assert selected == {c["nodeid"]: c.get("deselected", False) for col in alone["collectors"] for c in col["result"]}

    assert cases_of(merged / "junit.xml") == cases_of(single.run_dir / "junit.xml")
    page = (merged / "index.html").read_text()
    assert "wrong-tag" in page and "IMAGE_TAG_MISMATCH" in page


def test_overlapping_or_mismatched_runs_are_refused_and_nothing_is_written(lab, tmp_path):
    four_hosts(lab)
    first, second, third = lab.run("-k", HOST), lab.run("-k", f"{HOST} or nas"), lab.run("-k", "nas")
    assert first.run_dir and second.run_dir and third.run_dir
    other = tmp_path / "other"
    shutil.copytree(third.run_dir, other)
    plan = json.loads((other / "plan.json").read_text())
    (other / "plan.json").write_text(json.dumps({**plan, "schema_version": 99}))
    before, latest = lab.run_dirs(), (lab.reports / "latest").resolve()
    done = merge(f"--reports-dir={lab.reports}", first.run_dir, second.run_dir, cwd=lab.root)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "module in-sync is in both" in done.stderr, done.stderr
    assert "nothing written" in done.stderr and "Traceback" not in done.stderr
    done = merge(f"--reports-dir={lab.reports}", first.run_dir, other, cwd=lab.root)
    assert done.returncode == 2 and "schema_version 99, expected 1" in done.stderr, done.stderr
    done = merge(f"--reports-dir={lab.reports}", first.run_dir, tmp_path / "nowhere", cwd=lab.root)
    assert done.returncode == 2 and "nowhere/plan.json: expected a file of a run folder" in done.stderr
    assert lab.run_dirs() == before and (lab.reports / "latest").resolve() == latest
    assert [p.name for p in lab.reports.iterdir() if p.name.startswith(".")] == []


def test_make_merge_needs_runs():
    done = subprocess.run(["make", "-s", "merge"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and 'RUNS=: expected the run folders to merge' in done.stderr
