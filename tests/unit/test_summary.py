"""summary: the terminal lines of a run, from its plan alone."""

from __future__ import annotations

from driftcheck.plan import build_plan
from driftcheck.summary import summary_lines

TAG = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2"}
ORPHAN = {"code": "ORPHAN_CONTAINER", "field": "container", "desired": None, "observed": "p-x-1 (service x)"}


def entry(module, check, outcome, changes=(), error=None, **extra):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": check, "outcome": outcome,
            "changes": list(changes), "warnings": [], "error": error, **extra}


def test_one_aligned_line_per_module_then_the_totals():
    checks = [entry("a", "exists", "passed"), entry("long-name", "image", "failed", [TAG]),
              entry("c", "state", "error", error={"code": "TIMEOUT", "message": "slow; retry"}),
              {**entry("orphans@h/p", "orphans", "failed", [ORPHAN]), "container": None, "pseudo": True},
              {**entry("orphans@h/q", "orphans", "passed"), "container": None, "pseudo": True}]
    plan = build_plan(run_id="r", started_at="s", finished_at="f", checks=checks, hosts=[], errors=[],
                      pytest_status=1, previous={"run_id": "old", "changes": []})
    lines = summary_lines(plan)
    texts = [text for text, _ in lines]
    assert texts[:4] == [
        "IN SYNC  a@h",
        "ERROR    c@h          TIMEOUT: slow; retry",
        "DRIFT    long-name@h  IMAGE_TAG_MISMATCH image.ref: a:1 → a:2",
        "DRIFT    orphans@h/p  ORPHAN_CONTAINER container: None → p-x-1 (service x)",
    ]
    assert [c for _, c in lines[:4]] == ["green", "red", "yellow", "yellow"]
    assert not any("orphans@h/q" in t for t in texts)  # an orphans check with nothing found is not listed
    assert "since old: 2 new, 0 resolved, 0 unchanged" in texts
    assert texts[-1] == "4 modules: 1 in sync, 2 drift, 1 error, 0 warnings; exit 2"
