"""The terminal summary of a run, from its plan alone (no pytest).

An aligned table (module, host, status, changes), one row per module and one line per change,
then one line per host that could not be observed (its modules show only the code), the run-level
errors, what changed since --compare-with, and a one-line total. Each line is
a list of (text, colour) segments: only the status cell and error lines carry a colour, and the
terminal writer drops colour where it does not belong (not a TTY, NO_COLOR). Every value taken
from the plan (the host's, a manifest's, an earlier plan's) is made printable here: the plan keeps
it exact, the terminal shows its control characters as escapes.
"""

from __future__ import annotations

import locale
from typing import Any

from driftcheck.printable import printable
from driftcheck.verdict import shown

LABELS = {"in_sync": "in sync", "drift": "DRIFT", "error": "ERROR"}
COLOURS = {"in_sync": "green", "drift": "yellow", "error": "red"}
HEADER = ("MODULE", "HOST", "STATUS", "CHANGES")
#: a line of the summary: (text, colour or None) segments
Line = list[tuple[str, str | None]]
ARROW, ASCII_ARROW = "→", "->"


def arrow_for(encoding: str | None) -> str:
    """The arrow a stream can show: `→` only where both its encoding and the locale's charset hold it
    (LC_ALL=C makes Python's stdout UTF-8, yet the terminal behind it shows ASCII)."""
    try:
        charset = locale.nl_langinfo(locale.CODESET)
    except (AttributeError, ValueError):  # no nl_langinfo (Windows)
        charset = ""
    for name in (encoding or "ascii", charset or "utf-8"):
        try:
            ARROW.encode(name)
        except (LookupError, UnicodeEncodeError):
            return ASCII_ARROW
    return ARROW


def plural(count: int, noun: str) -> str:
    """`1 module`, `2 modules`, `0 modules`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def host_errors(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The hosts that could not be observed, with their error ({code, message})."""
    return {h["host"]: h["error"] for h in plan.get("hosts", []) if h.get("error")}


def _of_host(module: dict[str, Any], failed: dict[str, dict[str, Any]]) -> bool:
    """The module's error is its host's: the summary says it once, on the host's line."""
    error, host = module["error"], failed.get(module["host"])
    return bool(error and host and (error["code"], error["message"]) == (host["code"], host["message"]))


def _changes(module: dict[str, Any], failed: dict[str, dict[str, Any]], arrow: str) -> list[str]:
    items = [f"{c['code']} {c['field']}: {shown(c['desired'])} {arrow} {shown(c['observed'])}"
             for c in module["changes"]]
    if module["error"]:
        items.append(f"{module['error']['code']} (host error)" if _of_host(module, failed) else
                     f"{module['error']['code']}: {module['error']['message']}")
    items += [f"warning {w['code']}" for w in module["warnings"]]  # its message is in the plan
    items += [f"ignored test_{i['check']}: {i['reason']}" + (f" (until {i['until']})" if i.get("until") else "")
              for i in module.get("ignored", [])]
    return [printable(item) for item in items] or ["-"]


def table(plan: dict[str, Any], arrow: str = ARROW) -> list[Line]:
    """The per-module table: a header, then each module's row and its further changes below it. A
    module that failed with its host's error shows only the code; the host's line has the message."""
    failed = host_errors(plan)
    rows = [(printable(str(m["module"])), printable(str(m["host"])), m["status"], _changes(m, failed, arrow))
            for m in plan["modules"]]
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


def summary_lines(plan: dict[str, Any], arrow: str = ARROW) -> list[Line]:
    """The table, one line per host that could not be observed, the run-level errors, what changed
    since --compare-with, and the total."""
    lines = table(plan, arrow) if plan["modules"] else []
    affected = {m["host"] for m in plan["modules"] if _of_host(m, host_errors(plan))}
    for host, error in sorted(host_errors(plan).items()):
        if host in affected:
            lines.append([("ERROR", "red"), (printable(f" host {host}: {error['code']}: {error['message']}"), None)])
    for e in plan["errors"]:
        if e["module"] is None:
            where = f"{e['file']}: {e['key']}: " if e.get("file") and e.get("key") else \
                f"{e['file']}: " if e.get("file") else ""
            lines.append([("ERROR", "red"), (printable(f" {e['code']}: {where}{e['message']}"), None)])
    if "since" in plan:
        since = plan["since"]
        not_compared = len(since.get("not_compared", []))
        lines.append([(f"since {printable(str(since['run_id']))}: {len(since['new'])} new, "
                       f"{len(since['resolved'])} resolved, {len(since['unchanged'])} unchanged"
                       + (f", {not_compared} not compared (that run did not check them)" if not_compared else ""),
                       None)])
        lines += [[(printable(f"  {kind:<9}{item['module']} {item['code']}"), None)]
                  for kind in ("new", "resolved") for item in since[kind]]
    lines.append(total(plan))
    return lines


def total(plan: dict[str, Any]) -> Line:
    """One line: how many modules in each status, the warnings, and the exit status."""
    s = plan["summary"]
    colour = COLOURS["error"] if s["error"] or plan["exit_code"] not in (0, 1) else \
        COLOURS["drift"] if s["drift"] else COLOURS["in_sync"]
    return [(f"{plural(s['modules'], 'module')}: {s['in_sync']} in sync, {s['drift']} drift, {s['error']} error, "
             f"{plural(s['warnings'], 'warning')}; exit {plan['exit_code']}", colour)]


def plain(line: Line) -> str:
    """A line without colour, as a pipe or NO_COLOR shows it."""
    return "".join(text for text, _ in line).rstrip()
