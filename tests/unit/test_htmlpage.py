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
    assert re.findall(r'<tr class="(\w+)" id="module-([\w-]+)"', page) == [
        ("in_sync", "a"), ("drift", "b"), ("error", "c"), ("in_sync", "d")]
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
