"""reports/<run-id>/index.html: the run as a static page, built from the plan alone.

No script, no external asset (a Content-Security-Policy forbids both), every value escaped. The
plan carries no secret (no env value, no bind source, no command line), so neither does the page.
"""

from __future__ import annotations

from html import escape
from typing import Any

from driftcheck.summary import LABELS
from driftcheck.verdict import shown

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
code { font: 12px ui-monospace, monospace; }
.in_sync { background: #e3f4e3; } .drift { background: #fff1cc; } .error { background: #fbdada; }
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


def render(plan: dict[str, Any]) -> bytes:
    """The page for one run."""
    s = plan["summary"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>driftcheck {_e(plan['run_id'])}: exit {_e(plan['exit_code'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>driftcheck run {_e(plan['run_id'])}</h1>",
        f"<p>From {_e(plan['started_at'])} to {_e(plan['finished_at'])}; exit status "
        f"<strong id=\"exit-code\">{_e(plan['exit_code'])}</strong> (0 in sync, 1 drift, 2 error).</p>",
        '<table id="totals"><tr><th>modules</th><th>in sync</th><th>drift</th><th>error</th><th>warnings</th></tr>',
        f"<tr><td>{s['modules']}</td><td class=\"in_sync\">{s['in_sync']}</td><td class=\"drift\">{s['drift']}</td>"
        f"<td class=\"error\">{s['error']}</td><td>{s['warnings']}</td></tr></table>",
    ]
    run_errors = [e for e in plan["errors"] if e["module"] is None]
    if run_errors:
        parts.append('<h2>Errors of the run</h2><ul id="run-errors">')
        parts += [f"<li><code>{_e(e['code'])}</code> "
                  + (f"{_e(e['file'])}: " if e.get("file") else "") + (f"key {_e(e['key'])}: " if e.get("key") else "")
                  + f"{_e(e['message'])}</li>" for e in run_errors]
        parts.append("</ul>")
    parts.append('<h2>Modules</h2><table id="modules"><tr><th>module</th><th>host</th><th>container</th>'
                 "<th>status</th><th>changes</th><th>warnings</th></tr>")
    parts += [_module_row(m) for m in plan["modules"]]
    parts.append("</table>")
    if "since" in plan:
        since = plan["since"]
        parts.append(f"<h2>Since {_e(since['run_id'])}</h2><table id=\"since\"><tr><th></th><th>module</th>"
                     "<th>code</th></tr>")
        parts += [f"<tr><td>{kind}</td><td>{_e(i['module'])}</td><td><code>{_e(i['code'])}</code></td></tr>"
                  for kind in ("new", "resolved", "unchanged", "not_compared") for i in since.get(kind, [])]
        parts.append("</table>")
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
