"""reports/<run-id>/index.html and the history page reports/index.html in Debian's headless Chromium: they
render, list every module and every run, link each run's page, hold no secret."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import labctl

from driftcheck.historypage import COLOURS
from tests.support.lab import DRIFT_MODULES, run_suite
from tests.support.png import columns_of, read_png

CHROMIUM = "/usr/bin/chromium"
# As root, without a desktop, and with nothing fetched from the network (the page needs nothing).
# (Turning scripts off with --blink-settings would also stop --dump-dom, which needs them; the page's
# own Content-Security-Policy forbids any script of the page.)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_page_renders_lists_every_module_and_holds_no_secret(drift_lab_run, tmp_path):
    run = drift_lab_run
    assert run.rc == 1 and run.plan is not None and run.run_dir is not None
    page = run.run_dir / "index.html"
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())  # the document as Chromium built it
    rows = dict((name, status) for status, name in re.findall(r'<tr class="(\w+)" id="module-([^"]+)"', dom))
    assert rows == {m["module"]: m["status"] for m in run.plan["modules"]}
    assert len(rows) >= 21  # the 21 modules of the drift lab, and its orphans pseudo-module
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    for change in run.plan["changes"]:
        assert change["code"] in text
    for warning in run.plan["warnings"]:
        assert warning["message"] in text
    s = run.plan["summary"]
    modules = [m for m in run.plan["modules"] if "@" not in m["module"]]  # the orphans pseudo-module apart
    assert len(modules) == s["modules"] - 1
    totals = re.search(r'<table id="totals">.*?</table>', dom, re.S)
    assert totals and [int(n) for n in re.findall(r"<td[^>]*>(\d+)</td>", totals.group())] == [
        len(modules), *(sum(1 for m in modules if m["status"] == k) for k in ("in_sync", "drift", "error")),
        s["warnings"]]
    orphans = re.search(r'<table id="orphan-totals">.*?</table>', dom, re.S)
    assert orphans and re.findall(r"<td[^>]*>(\d+)</td>", orphans.group())[1] == "1"  # drift-lab has orphans
    plain = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", dom)))
    assert '<strong id="exit-code">1</strong>' in dom and "exit status 1: drift" in plain
    # drift and error rows first, in the modules table
    statuses = [status for status, _ in re.findall(r'<tr class="(\w+)" id="module-([^"@]+)"', dom)]
    assert statuses == sorted(statuses, key=["drift", "error", "in_sync"].index)

    secret = labctl.lab_secret()
    assert secret in labctl.docker("inspect", "--type", "container", "drift-lab-in-sync-1").stdout  # it is there
    assert secret not in page.read_text() and secret not in dom

    # It renders: a screenshot of the page is far from a blank one of the same size.
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>")
    shots = {}
    for name, uri in (("page", page.as_uri()), ("blank", blank.as_uri())):
        shot = tmp_path / f"{name}.png"
        chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", uri)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shots[name] = shot.stat().st_size
    assert shots["page"] > 10 * shots["blank"], shots


def test_the_page_needs_nothing_from_anywhere(lab, tmp_path):
    run = run_suite(tmp_path, "-k", "honcho-redis")
    assert run.rc == 0 and run.run_dir is not None
    page = (run.run_dir / "index.html").read_text()
    assert "<script" not in page and not re.search(r"\b(src|href)=|url\(|@import", page)
    assert "default-src 'none'" in page
    dom = chromium(tmp_path, "--dump-dom", (run.run_dir / "index.html").as_uri())
    assert 'id="module-honcho-redis"' in dom and 'class="in_sync"' in dom


def bands(xs: list[int], wide: int = 20) -> int:
    """Bands of adjacent pixel columns at least `wide` px wide: the chart's bars (40 px), not its legend's
    squares (13 px) nor text."""
    count, start = 0, None
    for i, x in enumerate(xs):
        if start is None:
            start = x
        if i + 1 == len(xs) or xs[i + 1] != x + 1:
            count += x - start + 1 >= wide
            start = None
    return count


def test_the_history_of_five_runs_with_drift_appearing_and_resolving(drift_lab, tmp_path):
    """reports/index.html after five runs against the lab: in sync, drift appears on the host (a module
    stopped, then another started), then it is resolved one by one."""
    modules = tmp_path / "modules"
    for name in ("in-sync", "runtime-ok", "stopped-ok", "absent-ok"):
        shutil.copytree(DRIFT_MODULES / name, modules / name)
    steps = [None, ("stop", "drift-lab-in-sync-1"), ("start", "drift-lab-stopped-ok-1"),
             ("start", "drift-lab-in-sync-1"), ("stop", "drift-lab-stopped-ok-1")]
    runs = []
    try:
        for step in steps:
            if step:
                labctl.docker(*step)
            runs.append(run_suite(tmp_path, "-k", "not orphans", modules=modules))
    finally:
        labctl.docker("start", "drift-lab-in-sync-1")
        labctl.docker("stop", "drift-lab-stopped-ok-1")
    assert [r.rc for r in runs] == [0, 1, 1, 1, 0], [r.output for r in runs]
    assert [sorted(c["module"] for c in r.plan["changes"]) for r in runs] == [
        [], ["in-sync"], ["in-sync", "stopped-ok"], ["stopped-ok"], []]
    ids = [r.run_dir.name for r in runs]
    index = tmp_path / "reports" / "index.html"
    source = index.read_text()
    assert "<script" not in source and "default-src 'none'; style-src 'unsafe-inline'" in source
    assert not re.search(r"\bsrc=|url\(|@import", source)

    dom = chromium(tmp_path, "--dump-dom", index.as_uri())
    # every run, newest first, linked to its page
    assert re.findall(r'<tr(?: class="latest")? id="run-([^"]+)">', dom) == ids[::-1]
    for run_id in ids:
        assert f'<a href="{run_id}/index.html">{run_id}</a>' in dom
    links = set(re.findall(r'href="([^"]+)"', dom))
    assert links == {f"{r}/index.html" for r in ids}
    assert all((index.parent / link).is_file() for link in links)
    # the chart: a bar per run, oldest on the left, linked, its segments the run's counts
    svg = re.search(r'<svg id="trend".*?</svg>', dom, re.S)
    assert svg, "no chart"
    bars = re.findall(r'<a href="([^"]+)/index.html" class="run-bar".*?</a>', svg.group(), re.S)
    assert bars == ids
    for run, bar in zip(runs, re.findall(r'class="run-bar".*?</a>', svg.group(), re.S), strict=True):
        counts = dict(re.findall(r'<rect class="bar (\w+)" data-count="(\d+)"', bar))
        statuses = [m["status"] for m in run.plan["modules"] if "@" not in m["module"]]
        assert counts == {"in_sync": str(statuses.count("in_sync")), "drift": str(statuses.count("drift")),
                          "error": "0", "orphans": "0"}, (run.run_dir.name, bar)
    # each module that drifted, with the runs where it did (newest first)
    drifted = {m: re.findall(r'href="([^"]+)/index.html"', row)
               for m, row in re.findall(r'<tr id="drifted-([^"]+)">(.*?)</tr>', dom, re.S)}
    assert drifted == {"in-sync": [ids[2], ids[1]], "stopped-ok": [ids[3], ids[2]]}
    # a link leads to the run's own page
    linked = chromium(tmp_path, "--dump-dom", (index.parent / f"{ids[2]}/index.html").as_uri())
    assert '<strong id="exit-code">1</strong>' in linked and 'id="module-stopped-ok"' in linked

    # The screenshot: the chart is drawn, five bars with an in-sync segment, three with drift, none in error.
    shot = tmp_path / "history.png"
    chromium(tmp_path, "--window-size=1000,700", f"--screenshot={shot}", index.as_uri())
    _, _, pixels = read_png(shot)
    assert bands(columns_of(pixels, COLOURS["in_sync"])) == 5
    assert bands(columns_of(pixels, COLOURS["drift"])) == 3
    assert bands(columns_of(pixels, COLOURS["error"])) == 0
