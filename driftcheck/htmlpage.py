"""reports/<run-id>/index.html: the run as a static page, built from the plan alone.

No script, no external asset (a Content-Security-Policy forbids both), every value escaped. The
plan carries no secret (no env value, no bind source, no command line), so neither does the page.
"""

from __future__ import annotations

from html import escape
from typing import Any

from driftcheck import codes
from driftcheck.plan import EXIT_MEANINGS, is_orphans
from driftcheck.summary import LABELS
from driftcheck.verdict import shown

CSP = "default-src 'none'; style-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
code { font: 12px ui-monospace, monospace; }
.in_sync { background: #e3f4e3; } .drift { background: #fff1cc; } .error { background: #fbdada; }
.exit { font-size: 1.15em; } .exit-0 strong { color: #1a7f37; } .exit-1 strong { color: #9a6700; }
.exit-2 strong, .exit-3 strong, .exit-4 strong { color: #cf222e; }
ul { margin: 0; padding-left: 1.2em; }
"""


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def _items(entries: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{e}</li>" for e in entries) + "</ul>" if entries else "-"


def _module_row(module: dict[str, Any]) -> str:
    changes = [f"<code>{_e(c['code'])}</code> {_e(c['field'])}: desired <code>{_e(shown(c['desired']))}</code>, "
               f"observed <code>{_e(shown(c['observed']))}</code>"
               + (f" ({_e(c['message'])})" if c.get("message") else "") for c in module["changes"]]
    if module["error"]:
        changes.append(f"<code>{_e(module['error']['code'])}</code> {_e(module['error']['message'])}")
    warnings = [f"<code>{_e(w['code'])}</code> {_e(w['message'])}" for w in module["warnings"]]
    warnings += [f"ignored <code>test_{_e(i['check'])}</code>: {_e(i['reason'])}"
                 + (f" (until {_e(i['until'])})" if i.get("until") else "") for i in module.get("ignored", [])]
    status = module["status"]
    return (f'<tr class="{_e(status)}" id="module-{_e(module["module"])}"><td>{_e(module["module"])}</td>'
            f"<td>{_e(module['host'])}</td><td>{_e(module['container'])}</td><td>{_e(LABELS[status])}</td>"
            f"<td>{_items(changes)}</td><td>{_items(warnings)}</td></tr>")


#: the rows of the modules tables: drift first, then error, then in sync (by name within each)
ORDER = {"drift": 0, "error": 1, "in_sync": 2}


def head(title: str, style: str = "") -> list[str]:
    """The document's head: no script, no external asset (the Content-Security-Policy forbids both)."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}{style}</style></head><body>",
    ]


def exit_line(code: Any) -> str:
    """The run's exit status and what it means, plainly: exit status 1: drift."""
    meaning = EXIT_MEANINGS.get(code, "unknown") if isinstance(code, int) else "unknown"
    return (f'<p class="exit exit-{_e(code)}" id="exit">exit status <strong id="exit-code">{_e(code)}</strong>: '
            f'<span id="exit-meaning">{_e(meaning)}</span></p>')


def count_cell(count: int, status: str) -> str:
    """A count, coloured by its status only when it is not zero."""
    return f'<td class="{status}">{count}</td>' if count else "<td>0</td>"


def totals(plan: dict[str, Any]) -> dict[str, int]:
    """The counts of a plan, the orphans pseudo-modules apart from the modules."""
    modules = [m for m in plan["modules"] if not is_orphans(m["module"])]
    orphans = [m for m in plan["modules"] if is_orphans(m["module"])]
    checked = plan.get("checked")
    return {"modules": len(modules), **{s: sum(1 for m in modules if m["status"] == s) for s in ORDER},
            "warnings": len(plan["warnings"]),
            "orphan_projects": sum(1 for m in orphans if m["status"] == "drift"),
            "orphan_containers": sum(1 for m in orphans for c in m["changes"] if c["code"] == codes.ORPHAN_CONTAINER),
            "orphans_error": sum(1 for m in orphans if m["status"] == "error"),
            "orphans_checked": sum(1 for m in checked if is_orphans(m)) if isinstance(checked, dict) else -1}


def _modules_table(table_id: str, entries: list[dict[str, Any]], first: str) -> list[str]:
    rows = sorted(entries, key=lambda m: (ORDER.get(m["status"], 3), m["module"]))
    return [f'<table id="{table_id}"><tr><th>{first}</th><th>host</th><th>container</th><th>status</th>'
            "<th>changes</th><th>warnings</th></tr>", *(_module_row(m) for m in rows), "</table>"]


def render(plan: dict[str, Any]) -> bytes:
    """The page for one run."""
    t = totals(plan)
    parts = [
        *head(f"driftcheck {plan['run_id']}: exit {plan['exit_code']}"),
        f"<h1>driftcheck run {_e(plan['run_id'])}</h1>",
        exit_line(plan["exit_code"]),
        f"<p>From {_e(plan['started_at'])} to {_e(plan['finished_at'])}.</p>",
        '<table id="totals"><tr><th>modules</th><th>in sync</th><th>drift</th><th>error</th><th>warnings</th></tr>',
        f"<tr><td>{t['modules']}</td>{count_cell(t['in_sync'], 'in_sync')}{count_cell(t['drift'], 'drift')}"
        f"{count_cell(t['error'], 'error')}<td>{t['warnings']}</td></tr></table>",
    ]
    if t["orphans_checked"] > 0 or t["orphan_projects"] or t["orphans_error"]:
        checked = "-" if t["orphans_checked"] < 0 else str(t["orphans_checked"] + t["orphans_error"])
        parts.append('<table id="orphan-totals"><tr><th>orphans checks (compose projects)</th>'
                     "<th>with orphans</th><th>orphan containers</th><th>error</th></tr>"
                     f"<tr><td>{checked}</td>{count_cell(t['orphan_projects'], 'drift')}"
                     f"{count_cell(t['orphan_containers'], 'drift')}{count_cell(t['orphans_error'], 'error')}"
                     "</tr></table>")
    run_errors = [e for e in plan["errors"] if e["module"] is None]
    if run_errors:
        parts.append('<h2>Errors of the run</h2><ul id="run-errors">')
        parts += [f"<li><code>{_e(e['code'])}</code> "
                  + (f"{_e(e['file'])}: " if e.get("file") else "") + (f"key {_e(e['key'])}: " if e.get("key") else "")
                  + f"{_e(e['message'])}</li>" for e in run_errors]
        parts.append("</ul>")
    parts.append("<h2>Modules</h2>")
    parts += _modules_table("modules", [m for m in plan["modules"] if not is_orphans(m["module"])], "module")
    orphans = [m for m in plan["modules"] if is_orphans(m["module"])]
    if orphans:
        parts.append("<h2>Orphans</h2><p>Containers of a module's compose project that no module claims, "
                     "per host and project.</p>")
        parts += _modules_table("orphans", orphans, "project")
    if "since" in plan:
        since = plan["since"]
        parts.append(f"<h2>Since {_e(since['run_id'])}</h2><table id=\"since\"><tr><th></th><th>module</th>"
                     "<th>code</th></tr>")
        parts += [f"<tr><td>{kind}</td><td>{_e(i['module'])}</td><td><code>{_e(i['code'])}</code></td></tr>"
                  for kind in ("new", "resolved", "unchanged", "not_compared") for i in since.get(kind, [])]
        parts.append("</table>")
    source = plan.get("source")
    if isinstance(source, dict):
        dirty = {True: " (with uncommitted changes)", False: "", None: ""}.get(source.get("dirty"), "")
        parts.append(f'<p id="source">Desired state: {_e(source.get("modules_dir"))}, inventory '
                     f'{_e(source.get("inventory"))}, revision <code>{_e(source.get("revision"))}</code>{dirty}.</p>')
    parts.append('<h2>Hosts</h2><p>Every command the run sent, in order: the read-only record.</p>'
                 '<table id="hosts"><tr><th>host</th><th>seconds</th><th>commands</th><th>error</th></tr>')
    for host in plan["hosts"]:
        error = host["error"]
        parts.append(f"<tr><td>{_e(host['host'])}</td><td>{_e(host['seconds'])}</td>"
                     f"<td>{_items([f'<code>{_e(c)}</code>' for c in host['commands']])}</td>"
                     f"<td>{'-' if not error else _e(error['code']) + ': ' + _e(error['message'])}</td></tr>")
    parts.append("</table>")
    parts.append("<p>The same content as plan.json in this folder; report.json and junit.xml beside it.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts).encode()
