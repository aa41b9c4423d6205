"""htmlpage: the run as a static page, from the plan alone, every value escaped."""

from __future__ import annotations

import re

from driftcheck.htmlpage import render
from tests.support.unit import plan_json

HOSTILE = '<script>alert("x")</script>'


def entry(module, check, outcome, changes=(), error=None, **extra):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": check, "outcome": outcome,
            "changes": list(changes), "warnings": [], "error": error, **extra}


def test_every_module_with_its_changes_warnings_and_errors():
    checks = [entry("a", "image", "passed"),
              entry("b", "image", "failed", [{"code": "IMAGE_TAG_MISMATCH", "field": "image.ref",
                                               "desired": "a:1", "observed": HOSTILE}]),
              entry("c", "state", "error", error={"code": "TIMEOUT", "message": "slow & late; retry"}),
              entry("d", "ports", "skipped", ignored={"check": "ports", "reason": "PLAT-142", "until": None})]
    plan = plan_json(checks, [{"code": "MANIFEST_INVALID", "message": HOSTILE}], 2, run_id="r1")
    plan["hosts"] = [{"host": "h", "commands": ["docker ps --all"], "seconds": 0.1, "error": None}]
    plan["errors"][0].update(file="modules/x/module.yaml", key="name")
    page = render(plan).decode()
    assert re.findall(r'<tr class="(\w+)" id="module-([\w-]+)"', page) == [  # drift and error rows first
        ("drift", "b"), ("error", "c"), ("in_sync", "a"), ("in_sync", "d")]
    assert "IMAGE_TAG_MISMATCH" in page and "TIMEOUT</code> slow &amp; late; retry" in page
    assert "ignored <code>test_ports</code>: PLAT-142" in page and "<code>docker ps --all</code>" in page
    assert "modules/x/module.yaml: key name:" in page
    assert '<strong id="exit-code">2</strong>' in page


def test_nothing_runs_or_loads_from_elsewhere():
    checks = [entry(HOSTILE, "image", "failed", [{"code": "IMAGE_TAG_MISMATCH", "field": HOSTILE, "desired": HOSTILE,
                                                  "observed": HOSTILE, "message": HOSTILE}])]
    page = render(plan_json(checks, [], 1)).decode()
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert not re.search(r"\b(src|href)=", page) and "@import" not in page and "url(" not in page
    assert "default-src 'none'; style-src 'unsafe-inline'" in page  # the browser enforces it too


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))


def test_the_header_says_the_exit_status_plainly():
    cases = [([entry("a", "image", "passed")], [], 0, "exit status 0: in sync"),
             ([entry("a", "image", "failed", [TAG])], [], 1, "exit status 1: drift"),
             ([entry("a", "image", "passed")], [{"code": "NO_MODULES_SELECTED"}], 0, "exit status 2: error"),
             ([], [], 4, "exit status 4: usage error")]
    for checks, errors, status, said in cases:
        assert said in text_of(render(plan_json(checks, errors, status)).decode()), said
    # it is a line of its own, not the head of the counts
    page = render(plan_json([entry("a", "image", "failed", [TAG])], [], 1)).decode()
    assert "(0 in sync, 1 drift, 2 error)" not in page
    assert page.index('id="exit"') < page.index('id="totals"')


TAG = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2"}
ORPHAN = {"code": "ORPHAN_CONTAINER", "field": "container", "desired": None, "observed": "p-x-1"}


def cells(page: str, table: str) -> list[tuple[str, str]]:
    found = re.search(rf'<table id="{table}">.*?</table>', page, re.S)
    assert found, table
    return re.findall(r'<td(?: class="(\w+)")?>(\d+)</td>', found.group())


def test_a_zero_is_never_coloured_and_orphans_are_counted_apart():
    checks = [entry("a", "image", "passed"), entry("b", "image", "failed", [TAG]),
              {**entry("orphans@h/p", "orphans", "failed", [ORPHAN, {**ORPHAN, "observed": "p-y-1"}]),
               "container": None, "pseudo": True},
              {**entry("orphans@h/q", "orphans", "passed"), "container": None, "pseudo": True}]
    page = render(plan_json(checks, [], 1)).decode()
    # modules: 2 (not 3), 1 in sync, 1 drift, 0 error uncoloured, 0 warnings
    assert cells(page, "totals") == [("", "2"), ("in_sync", "1"), ("drift", "1"), ("", "0"), ("", "0")]
    # orphans: 2 projects checked, 1 with orphans, 2 containers, no error
    assert cells(page, "orphan-totals") == [("", "2"), ("drift", "1"), ("drift", "2"), ("", "0")]
    modules = re.search(r'<table id="modules">.*?</table>', page, re.S).group()
    orphans = re.search(r'<table id="orphans">.*?</table>', page, re.S).group()
    assert "orphans@" not in modules and 'id="module-orphans@h/p"' in orphans and "orphans@h/q" not in orphans
    clean = render(plan_json([entry("a", "image", "passed")], [], 0)).decode()
    assert 'class="error"' not in clean and 'class="drift"' not in clean and 'id="orphan-totals"' not in clean
