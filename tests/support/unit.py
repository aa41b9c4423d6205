"""Unit-test helpers: captured `docker inspect` JSON, a module builder, a fake transport."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from driftcheck.inventory import HostConfig
from driftcheck.manifest import Module, parse_module
from driftcheck.transport import Transport
from driftcheck.transport.canned import CannedRunner

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def make_module(**overrides: Any) -> Module:
    data: dict[str, Any] = {
        "schema_version": 2, "name": "m", "host": "h",
        "compose": {"project": "drift-lab", "service": "in-sync"},
        "image": {"ref": "lab/app:1"},
    }
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            data.setdefault(section, {})[leaf] = value
        else:
            data[section] = value
    return parse_module(data, "modules/m/module.yaml", data["name"])


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / "inspect" / name).read_text())


def canned(answers: Any) -> Transport:
    """A host for unit tests: driftcheck's own Transport over its CannedRunner (the allowlist, the
    command record, no socket); its runner's `calls` lists every argv sent."""
    return Transport(HostConfig("h", "local", None, None, None, None, None, None, "strict", 5.0), CannedRunner(answers))


def calls(transport: Transport) -> list[tuple[str, ...]]:
    runner = transport.runner
    assert isinstance(runner, CannedRunner)
    return runner.calls


def outcome(entry: dict[str, Any]) -> Any:
    """A CheckOutcome from the dict shape the plan tests write: module, check, outcome, changes, ..."""
    from driftcheck.manifest import Waiver
    from driftcheck.plan import CheckOutcome, Problem
    from driftcheck.verdict import Verdict

    ignored = entry.get("ignored")
    return CheckOutcome(
        entry["module"], entry["host"], entry["container"], entry["check"], entry["outcome"],
        Verdict.from_json({"changes": entry.get("changes", []), "warnings": entry.get("warnings", [])}),
        Problem.from_json(entry.get("error")),
        None if ignored is None else Waiver(ignored["check"], ignored["reason"],
                                            ignored["until"] and date.fromisoformat(ignored["until"])),
        entry.get("pseudo", False))


def plan_json(checks: list[dict[str, Any]], errors: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
              pytest_status: int = 0, previous: dict[str, Any] | None = None, run_id: str = "r") -> dict[str, Any]:
    """plan.json of a run whose checks ended as the dicts say."""
    from driftcheck.plan import RunError, build_plan

    return build_plan(run_id=run_id, started_at="s", finished_at="f", outcomes=[outcome(c) for c in checks],
                      hosts=[], errors=[RunError(e["code"], e.get("message", ""), file=e.get("file"), key=e.get("key"))
                              for e in errors],
                      pytest_status=pytest_status, previous=previous).to_json()
