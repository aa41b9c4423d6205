"""reports/<run-id>/index.html in Debian's headless Chromium: it renders, lists every module, holds no secret."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import labctl

from tests.support.lab import run_suite

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
