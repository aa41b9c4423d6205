"""The history page (reports/index.html): rows from the run folders' plan.json, bounded, cached, static."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from driftcheck import history
from driftcheck.history import write_history
from tests.support.unit import plan_json

HOSTILE = '<script>alert("x")</script>'
TAG = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2"}
ORPHAN = {"code": "ORPHAN_CONTAINER", "field": "container", "desired": None, "observed": "p-x-1"}


def entry(module, check, outcome, changes=(), error=None):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": check, "outcome": outcome,
            "changes": list(changes), "warnings": [], "error": error}


def run_id(n: int) -> str:
    return f"20261201T{n:06d}Z-{n:04x}"


def add_run(reports: Path, n: int, drifted: tuple[str, ...] = (), errors: tuple[str, ...] = (),
            orphans: bool = False, revision: str | None = "0123456789abcdef0123") -> str:
    checks = [entry(m, "image", "failed" if m in drifted else "passed", [TAG] if m in drifted else [])
              for m in ("a", "b", "c") if m not in errors]
    checks += [entry(m, "image", "error", error={"code": "TIMEOUT", "message": "slow; retry"}) for m in errors]
    if orphans:
        checks.append({**entry("orphans@h/p", "orphans", "failed", [ORPHAN]), "container": None, "pseudo": True})
    plan = plan_json(checks, [], 1 if drifted else 0, run_id=run_id(n))
    plan["started_at"] = f"2026-12-01T00:00:{n:02d}Z"
    plan["source"] = {"modules_dir": "modules", "inventory": "hosts.yaml", "revision": revision, "dirty": n == 3}
    folder = reports / run_id(n)
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(plan))
    return run_id(n)


def rows_of(page: str) -> list[str]:
    return re.findall(r'<tr(?: class="latest")? id="run-([^"]+)">', page)


def test_every_run_newest_first_with_its_counts_revision_and_link(tmp_path):
    reports = tmp_path / "reports"
    ids = [add_run(reports, 1), add_run(reports, 2, drifted=("b",)), add_run(reports, 3, drifted=("b", "c")),
           add_run(reports, 4, errors=("a",)), add_run(reports, 5, orphans=True)]
    os.symlink(ids[-1], reports / "latest")
    page = write_history(reports).read_text()
    assert rows_of(page) == ids[::-1]
    assert "default-src 'none'; style-src 'unsafe-inline'" in page and "<script" not in page
    assert not re.search(r"\bsrc=|url\(|@import", page)
    for run in ids:  # each run's page, relative, and nothing else is linked
        assert f'<a href="{run}/index.html">{run}</a>' in page
    assert set(re.findall(r'href="([^"]+)"', page)) == {f"{run}/index.html" for run in ids}
    third = re.search(rf'<tr id="run-{ids[2]}">.*?</tr>', page).group()
    assert "<strong>1</strong>: drift" in third and '<code title="0123456789abcdef0123">0123456789ab</code>' in third
    assert "(dirty)" in third
    assert re.findall(r'<td(?: class="\w+")?>(\d+)</td>', third) == ["3", "1", "2", "0", "0", "0"]
    fourth = re.search(rf'<tr id="run-{ids[3]}">.*?</tr>', page).group()
    assert "<strong>2</strong>: error" in fourth
    assert re.search(rf'<tr class="latest" id="run-{ids[4]}">', page)

    # the chart: one linked bar per run, oldest first, each of three rects sized by its counts
    svg = re.search(r'<svg id="trend".*?</svg>', page, re.S).group()
    bars = re.findall(r'<a href="([^"]+)/index.html" class="run-bar".*?</a>', svg, re.S)
    assert bars == ids
    counts = [re.findall(r'<rect class="bar (\w+)" data-count="(\d+)"', bar) for bar in
              re.findall(r'class="run-bar".*?</a>', svg, re.S)]
    assert counts[2] == [("in_sync", "1"), ("drift", "2"), ("error", "0"), ("orphans", "0")]
    assert counts[3] == [("in_sync", "2"), ("drift", "0"), ("error", "1"), ("orphans", "0")]
    assert counts[4] == [("in_sync", "3"), ("drift", "0"), ("error", "0"), ("orphans", "1")]
    heights = [float(h) for h in re.findall(r'class="bar drift" data-count="\d+" x="[\d.]+" y="[\d.]+" width="[\d.]+" '
                                            r'height="([\d.]+)"', svg)]
    assert heights[1] > 0 and heights[2] == pytest.approx(2 * heights[1]) and heights[0] == 0

    # each module that drifted, with the runs where it did, newest first
    by_module = re.search(r'<table id="drift-by-module">.*?</table>', page, re.S).group()
    b = re.search(r'<tr id="drifted-b">.*?</tr>', by_module).group()
    assert re.findall(r'href="([^"]+)/index.html"', b) == [ids[2], ids[1]] and "2 of 5" in b
    assert re.findall(r'href="([^"]+)/index.html"', re.search(r'<tr id="drifted-c">.*?</tr>', by_module).group()) \
        == [ids[2]]
    assert 'id="drifted-a"' not in by_module and 'id="drifted-orphans@h/p"' in by_module


def test_a_plan_that_cannot_be_read_is_listed_with_why_and_never_waited_on(tmp_path):
    reports = tmp_path / "reports"
    good = add_run(reports, 1)
    (reports / run_id(2)).mkdir()
    (reports / run_id(2) / "plan.json").write_text("{not json")
    (reports / run_id(3)).mkdir()
    os.mkfifo(reports / run_id(3) / "plan.json")
    (reports / run_id(4)).mkdir()  # no plan at all
    (reports / run_id(5)).mkdir()
    (reports / run_id(5) / "plan.json").write_text(json.dumps({"run_id": HOSTILE, "modules": "x"}))
    started = time.monotonic()
    page = write_history(reports).read_text()
    assert time.monotonic() - started < 5
    assert rows_of(page) == [run_id(n) for n in (5, 4, 3, 2, 1)]
    assert "plan.json is not a plan" in page and "not a regular file" in page and "cannot be read" in page
    assert HOSTILE not in page and good in page


def test_only_the_newest_runs_are_read_and_each_plan_once(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    for n in range(1, 8):
        add_run(reports, n, drifted=("a",) if n % 2 else ())
    monkeypatch.setattr(history, "HISTORY_RUNS", 4)
    read = []
    real = history.read_row
    monkeypatch.setattr(history, "read_row", lambda folder: read.append(folder.name) or real(folder))
    page = write_history(reports).read_text()
    assert rows_of(page) == [run_id(n) for n in (7, 6, 5, 4)] and sorted(read) == [run_id(n) for n in (4, 5, 6, 7)]
    assert "7 archived run(s)" in page and "3 older run folder(s) are not shown" in page
    read.clear()
    add_run(reports, 8)
    again = write_history(reports).read_text()
    assert read == [run_id(8)], "a plan already in history.json was read again"
    assert again.replace(run_id(8), "") != page and rows_of(again)[0] == run_id(8)
    # a plan.json that changed since (size or mtime) is read again; a history.json that is not ours is ignored
    (reports / run_id(7) / "plan.json").write_text((reports / run_id(7) / "plan.json").read_text() + " ")
    read.clear()
    write_history(reports)
    assert read == [run_id(7)]
    read.clear()
    add_run(reports, 9)
    write_history(reports, json.loads((reports / run_id(9) / "plan.json").read_text()))
    assert read == [], "the plan the run holds in memory was read back"
    (reports / "history.json").write_text('{"version": 1, "runs": [{"stamp": [1, 2], "row": {"run_id": 5}}]}')
    read.clear()
    write_history(reports)
    assert sorted(read) == [run_id(n) for n in (6, 7, 8, 9)]


def test_hostile_module_names_are_escaped(tmp_path):
    reports = tmp_path / "reports"
    folder = reports / run_id(1)
    folder.mkdir(parents=True)
    plan = plan_json([entry(HOSTILE, "image", "failed", [TAG])], [], 1, run_id=run_id(1))
    plan["source"] = {"modules_dir": HOSTILE, "inventory": "x", "revision": HOSTILE, "dirty": False}
    (folder / "plan.json").write_text(json.dumps(plan))
    page = write_history(reports).read_text()
    assert "<script" not in page and "&lt;script&gt;" in page
