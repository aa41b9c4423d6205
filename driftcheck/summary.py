"""The terminal summary of a run, from its plan alone: (text, colour) lines, no pytest."""

from __future__ import annotations

from typing import Any

LABELS = {"in_sync": "IN SYNC", "drift": "DRIFT", "error": "ERROR"}
COLOURS = {"in_sync": "green", "drift": "yellow", "error": "red"}


def _label(module: dict[str, Any]) -> str:
    name = str(module["module"])
    return name if name.startswith("orphans@") else f"{name}@{module['host']}"


def _details(module: dict[str, Any]) -> str:
    parts = [f"{c['code']} {c['field']}: {c['desired']} → {c['observed']}" for c in module["changes"]]
    if module["error"]:
        parts.append(f"{module['error']['code']}: {module['error']['message']}")
    parts += [f"warning {w['code']}" for w in module["warnings"]]
    parts += [f"ignored {i['check']}: {i['reason']}" for i in module.get("ignored", [])]
    return "; ".join(parts)


def summary_lines(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """One line per module, the run-level errors, what changed since --compare-with, the totals."""
    lines: list[tuple[str, str | None]] = []
    width = max([len(_label(m)) for m in plan["modules"]] + [10])
    for m in plan["modules"]:
        lines.append((f"{LABELS[m['status']]:<8} {_label(m):<{width}}  {_details(m)}".rstrip(), COLOURS[m["status"]]))
    for e in plan["errors"]:
        if e["module"] is None:
            where = f"{e['file']}: {e['key']}: " if e.get("file") and e.get("key") else \
                f"{e['file']}: " if e.get("file") else ""
            lines.append((f"ERROR    {e['code']}: {where}{e['message']}", "red"))
    if "since" in plan:
        since = plan["since"]
        lines.append((f"since {since['run_id']}: {len(since['new'])} new, {len(since['resolved'])} resolved, "
                      f"{len(since['unchanged'])} unchanged", None))
        lines += [(f"  {kind:<9}{item['module']} {item['code']}", None)
                  for kind in ("new", "resolved") for item in since[kind]]
    s = plan["summary"]
    lines.append((f"{s['modules']} modules: {s['in_sync']} in sync, {s['drift']} drift, {s['error']} error, "
                  f"{s['warnings']} warnings; exit {plan['exit_code']}", None))
    return lines
