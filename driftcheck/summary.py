"""The terminal summary of a run, from its plan alone (no pytest).

An aligned table (module, host, status, changes), one row per module and one line per change,
then the run-level errors, what changed since --compare-with, and a one-line total. Each line is
a list of (text, colour) segments: only the status cell and error lines carry a colour, and the
terminal writer drops colour where it does not belong (not a TTY, NO_COLOR). Every value taken
from the plan (the host's, a manifest's, an earlier plan's) is made printable here: the plan keeps
it exact, the terminal shows its control characters as escapes.
"""

from __future__ import annotations

from typing import Any

from driftcheck.printable import printable
from driftcheck.verdict import shown

LABELS = {"in_sync": "in sync", "drift": "DRIFT", "error": "ERROR"}
COLOURS = {"in_sync": "green", "drift": "yellow", "error": "red"}
HEADER = ("MODULE", "HOST", "STATUS", "CHANGES")
#: a line of the summary: (text, colour or None) segments
Line = list[tuple[str, str | None]]


def _changes(module: dict[str, Any]) -> list[str]:
    items = [f"{c['code']} {c['field']}: {shown(c['desired'])} → {shown(c['observed'])}" for c in module["changes"]]
    if module["error"]:
        items.append(f"{module['error']['code']}: {module['error']['message']}")
    items += [f"warning {w['code']}" for w in module["warnings"]]  # its message is in the plan
    items += [f"ignored test_{i['check']}: {i['reason']}" + (f" (until {i['until']})" if i.get("until") else "")
              for i in module.get("ignored", [])]
    return [printable(item) for item in items] or ["-"]


def table(plan: dict[str, Any]) -> list[Line]:
    """The per-module table: a header, then each module's row and its further changes below it."""
    rows = [(printable(str(m["module"])), printable(str(m["host"])), m["status"], _changes(m)) for m in plan["modules"]]
    width_module = max([len(r[0]) for r in rows] + [len(HEADER[0])])
    width_host = max([len(r[1]) for r in rows] + [len(HEADER[1])])
    width_status = max(len(label) for label in [*LABELS.values(), HEADER[2]])
    indent = " " * (width_module + width_host + width_status + 6)
    lines: list[Line] = [[(f"{HEADER[0]:<{width_module}}  {HEADER[1]:<{width_host}}  "
                           f"{HEADER[2]:<{width_status}}  {HEADER[3]}", None)]]
    for module, host, status, changes in rows:
        lines.append([(f"{module:<{width_module}}  {host:<{width_host}}  ", None),
                      (f"{LABELS[status]:<{width_status}}", COLOURS[status]), (f"  {changes[0]}", None)])
        lines += [[(indent + change, None)] for change in changes[1:]]
    return lines


def summary_lines(plan: dict[str, Any]) -> list[Line]:
    """The table, the run-level errors, what changed since --compare-with, and the total."""
    lines = table(plan) if plan["modules"] else []
    for e in plan["errors"]:
        if e["module"] is None:
            where = f"{e['file']}: {e['key']}: " if e.get("file") and e.get("key") else \
                f"{e['file']}: " if e.get("file") else ""
            lines.append([("ERROR", "red"), (printable(f" {e['code']}: {where}{e['message']}"), None)])
    if "since" in plan:
        since = plan["since"]
        lines.append([(f"since {printable(str(since['run_id']))}: {len(since['new'])} new, "
                       f"{len(since['resolved'])} resolved, {len(since['unchanged'])} unchanged", None)])
        lines += [[(printable(f"  {kind:<9}{item['module']} {item['code']}"), None)]
                  for kind in ("new", "resolved") for item in since[kind]]
    lines.append(total(plan))
    return lines


def total(plan: dict[str, Any]) -> Line:
    """One line: how many modules in each status, the warnings, and the exit status."""
    s = plan["summary"]
    colour = COLOURS["error"] if s["error"] or plan["exit_code"] not in (0, 1) else \
        COLOURS["drift"] if s["drift"] else COLOURS["in_sync"]
    return [(f"{s['modules']} modules: {s['in_sync']} in sync, {s['drift']} drift, {s['error']} error, "
             f"{s['warnings']} warnings; exit {plan['exit_code']}", colour)]


def plain(line: Line) -> str:
    """A line without colour, as a pipe or NO_COLOR shows it."""
    return "".join(text for text, _ in line).rstrip()
