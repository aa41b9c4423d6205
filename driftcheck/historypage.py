"""reports/index.html: the history of the archived runs as a static page. Pure: rows in, HTML out.

A row is what the page shows of one run, derived from its plan.json (row_of); history.py reads
the run folders and keeps the rows. Newest first: time, exit status, counts, the revision of the
desired state, a link to the run's page; a drift-over-time chart as inline SVG (in sync, drift and
error per run, oldest on the left); and for each module the runs where it drifted. No script, no
external asset: the same Content-Security-Policy as a run's page; every value escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from driftcheck.htmlpage import count_cell, head, totals
from driftcheck.plan import EXIT_MEANINGS, is_orphans

#: the most module names a row keeps as drifted (an all-drift run of thousands of modules)
MAX_DRIFTED = 1000
#: the most modules the "drift by module" table lists
MAX_MODULES = 500
#: the chart's size (SVG user units)
WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 900, 220, 16, 36, 44
COLOURS = {"in_sync": "#2da44e", "drift": "#d4a72c", "error": "#cf222e", "orphans": "#8250df"}
#: the chart's segments, bottom up, and their legend
SEGMENTS = (("in_sync", "modules in sync"), ("drift", "modules in drift"), ("error", "modules in error"),
            ("orphans", "compose projects with orphans"))

HISTORY_STYLE = """
.latest td:first-child { font-weight: bold; }
#runs td { white-space: nowrap; }
svg { border: 1px solid #ccc; background: #fff; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em; vertical-align: -.1em; }
"""


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value), quote=True)


def row_of(plan: dict[str, Any]) -> dict[str, Any]:
    """What the history shows of one run, from its plan."""
    t = totals(plan)
    source = plan["source"] if isinstance(plan.get("source"), dict) else {}
    drifted = sorted(m["module"] for m in plan["modules"] if m["status"] == "drift")
    return {"run_id": plan["run_id"], "started_at": plan["started_at"], "exit_code": plan["exit_code"],
            "modules": t["modules"], "in_sync": t["in_sync"], "drift": t["drift"], "error": t["error"],
            "warnings": t["warnings"], "orphans": t["orphan_projects"],
            "revision": source.get("revision"), "dirty": source.get("dirty"),
            "drifted": drifted[:MAX_DRIFTED], "drifted_more": max(len(drifted) - MAX_DRIFTED, 0), "problem": None}


def unreadable_row(run_id: str, problem: str) -> dict[str, Any]:
    """A run folder whose plan.json could not be read: listed, with why, and counted nowhere."""
    return {"run_id": run_id, "started_at": None, "exit_code": None, "modules": 0, "in_sync": 0, "drift": 0,
            "error": 0, "warnings": 0, "orphans": 0, "revision": None, "dirty": None, "drifted": [],
            "drifted_more": 0, "problem": problem}


def _link(run_id: str, text: str | None = None) -> str:
    return f'<a href="{_e(run_id)}/index.html">{_e(text or run_id)}</a>'


def _revision(row: dict[str, Any]) -> str:
    if row["revision"] is None:
        return "-"
    dirty = ' <span title="uncommitted changes">(dirty)</span>' if row["dirty"] else ""
    return f'<code title="{_e(row["revision"])}">{_e(str(row["revision"])[:12])}</code>{dirty}'


def chart(rows: list[dict[str, Any]]) -> str:
    """Drift over time: one stacked bar per run (modules in sync, in drift, in error, and the compose
    projects with orphans on top), oldest on the left; each bar links to its run's page."""
    runs = [r for r in reversed(rows) if r["problem"] is None]
    top = max([sum(r[s] for s, _ in SEGMENTS) for r in runs] + [1])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(runs), 1)
    bar = max(min(step * 0.7, 40), 1.0)
    parts = [f'<svg id="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-labelledby="trend-title">',
             '<title id="trend-title">modules in sync, in drift and in error per run (and compose projects with '
             "orphans), oldest on the left</title>",
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>']
    for index, row in enumerate(runs):
        x = LEFT + step * index + (step - bar) / 2
        y = TOP + plot_h
        parts.append(f'<a href="{_e(row["run_id"])}/index.html" class="run-bar" data-run="{_e(row["run_id"])}">')
        parts.append(f"<title>{_e(row['run_id'])}: exit {_e(row['exit_code'])}, {row['in_sync']} in sync, "
                     f"{row['drift']} drift, {row['error']} error, {row['orphans']} with orphans</title>")
        for status, _ in SEGMENTS:
            count = int(row[status])
            height = plot_h * count / top
            y -= height
            parts.append(f'<rect class="bar {status}" data-count="{count}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{bar:.1f}" height="{height:.1f}" fill="{COLOURS[status]}"/>')
        parts.append("</a>")
    if runs:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 12}">{_e(runs[0]["started_at"])}</text>')
        parts.append(f'<text x="{WIDTH - 8}" y="{HEIGHT - 12}" text-anchor="end">{_e(runs[-1]["started_at"])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _run_row(row: dict[str, Any], latest: str | None) -> str:
    marker = ' class="latest"' if row["run_id"] == latest else ""
    name = _link(row["run_id"]) + (" (latest)" if row["run_id"] == latest else "")
    if row["problem"] is not None:
        return (f'<tr{marker} id="run-{_e(row["run_id"])}"><td>{name}</td>'
                f'<td colspan="9">not shown: {_e(row["problem"])}</td></tr>')
    code = row["exit_code"]
    meaning = EXIT_MEANINGS.get(code, "unknown") if isinstance(code, int) else "unknown"
    return (f'<tr{marker} id="run-{_e(row["run_id"])}"><td>{name}</td><td>{_e(row["started_at"])}</td>'
            f'<td class="exit exit-{_e(code)}"><strong>{_e(code)}</strong>: {_e(meaning)}</td>'
            f"<td>{row['modules']}</td>{count_cell(row['in_sync'], 'in_sync')}{count_cell(row['drift'], 'drift')}"
            f"{count_cell(row['error'], 'error')}<td>{row['warnings']}</td>{count_cell(row['orphans'], 'drift')}"
            f"<td>{_revision(row)}</td></tr>")


def _by_module(rows: list[dict[str, Any]]) -> list[str]:
    """Each module that drifted in a listed run, the most recent drift first, with links to those runs."""
    runs: dict[str, list[str]] = {}
    for row in rows:  # newest first
        for module in row["drifted"]:
            runs.setdefault(module, []).append(row["run_id"])
    if not runs:
        return ["<p>No module drifted in these runs.</p>"]
    order = {row["run_id"]: index for index, row in enumerate(rows)}
    names = sorted(runs, key=lambda m: (order[runs[m][0]], is_orphans(m), m))
    parts = ['<table id="drift-by-module"><tr><th>module</th><th>runs in drift</th><th>runs where it drifted, '
             "newest first</th></tr>"]
    for module in names[:MAX_MODULES]:
        links = ", ".join(_link(r) for r in runs[module])
        parts.append(f'<tr id="drifted-{_e(module)}"><td>{_e(module)}</td><td>{len(runs[module])} of {len(rows)}</td>'
                     f"<td>{links}</td></tr>")
    parts.append("</table>")
    if len(names) > MAX_MODULES:
        parts.append(f"<p>and {len(names) - MAX_MODULES} more modules, not listed.</p>")
    if any(row["drifted_more"] for row in rows):
        parts.append(f"<p>A run lists at most {MAX_DRIFTED} drifted modules here; its own page lists all.</p>")
    return parts


def render_history(rows: list[dict[str, Any]], latest: str | None, older: int, read_at_most: int) -> bytes:
    """The page: rows newest first; `older` run folders beyond the newest `read_at_most` are only counted."""
    parts = [
        *head(f"driftcheck history: {len(rows) + older} runs", HISTORY_STYLE),
        "<h1>driftcheck history</h1>",
        f'<p id="runs-count">{len(rows) + older} archived run(s) in this folder, newest first'
        + (f"; the page reads the newest {read_at_most}, and {older} older run folder(s) are not shown" if older
           else "") + (f"; <code>latest</code> is {_link(latest)}" if latest else "") + ".</p>",
        "<h2>Drift over time</h2>",
        chart(rows),
        '<p class="legend">' + "".join(f'<span style="background: {COLOURS[s]}"></span>{label}'
                                       for s, label in SEGMENTS) + "</p>",
        "<h2>Runs</h2>",
        '<table id="runs"><tr><th>run</th><th>started (UTC)</th><th>exit status</th><th>modules</th><th>in sync</th>'
        "<th>drift</th><th>error</th><th>warnings</th><th>projects with orphans</th><th>revision</th></tr>",
        *(_run_row(row, latest) for row in rows),
        "</table>",
        "<h2>Drift by module</h2>",
        *_by_module(rows),
        "<p>Built from each run folder's plan.json; rewritten after every run. "
        "A run's page is its folder's index.html.</p>",
        "</body></html>\n",
    ]
    return "\n".join(parts).encode()
