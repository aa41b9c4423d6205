"""make merge: the run folders of jobs that each checked a slice of the hosts, as one run folder.

    python -m driftcheck.merge [--reports-dir=reports] RUN_DIR RUN_DIR ...

Each job of a sharded CI pipeline runs the suite with `-k <host>` (or another selection that
splits by host) and archives its run folder. This combines them: one plan.json, report.json,
junit.xml and index.html in a new run folder of the reports folder, with the exit-code rules of
SPEC §5 (error wins over drift), and moves `latest` to it when the slices observed a host. It
refuses plans whose modules overlap or whose schema versions differ. It reads files only: no host is contacted.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftcheck import codes
from driftcheck.artifacts import write_run
from driftcheck.history import archive_upkeep
from driftcheck.plan import SCHEMA_VERSION, RunError, exit_code, new_run_id, observed, plan_document
from driftcheck.summary import arrow_for, summary_lines

#: the most a run folder's file may be: a 5000-module run's report.json is well under this
MAX_FILE = 512 * 1024 * 1024


class MergeError(Exception):
    """A run folder that cannot be merged: one line naming the folder and why."""


@dataclass(frozen=True)
class Shard:
    """One job's run folder, read back."""

    folder: Path
    plan: dict[str, Any]
    report: dict[str, Any]
    junit: ET.Element


def _read(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise MergeError(f"{path}: expected a file of a run folder (plan.json, report.json, junit.xml)")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise MergeError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    if len(data) > MAX_FILE:
        raise MergeError(f"{path}: larger than {MAX_FILE // 2**20} MiB; is it a run folder's file?")
    return data


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read(path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MergeError(f"{path}: not JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise MergeError(f"{path}: expected a JSON object")
    return data


def read_shard(folder: Path) -> Shard:
    plan = _json(folder / "plan.json")
    if plan.get("schema_version") != SCHEMA_VERSION:
        raise MergeError(f"{folder / 'plan.json'}: schema_version {plan.get('schema_version')!r}, expected "
                         f"{SCHEMA_VERSION} (merge runs of one driftcheck version)")
    for key in ("run_id", "started_at", "finished_at", "exit_code", "modules", "errors", "hosts"):
        if key not in plan:
            raise MergeError(f"{folder / 'plan.json'}: key '{key}' is missing; is it a plan.json?")
    report = _json(folder / "report.json")
    try:
        junit = ET.fromstring(_read(folder / "junit.xml"))
    except ET.ParseError as exc:
        raise MergeError(f"{folder / 'junit.xml'}: not XML ({exc})") from exc
    return Shard(folder, plan, report, junit)


def _refuse_overlaps(shards: list[Shard]) -> None:
    owner: dict[str, Path] = {}
    for shard in shards:
        for module in shard.plan["modules"]:
            name = module["module"]
            if name in owner:
                raise MergeError(f"module {name} is in both {owner[name]} and {shard.folder}: each module must be "
                                 "checked by one job only (split the jobs by host, -k <host>)")
            owner[name] = shard.folder
    seen: dict[str, Path] = {}
    for shard in shards:
        for host in shard.plan["hosts"]:
            if host["host"] in seen:
                raise MergeError(f"host {host['host']} was observed by both {seen[host['host']]} and {shard.folder}: "
                                 "split the jobs by host (-k <host>)")
            seen[host["host"]] = shard.folder


def _since(shards: list[Shard]) -> dict[str, Any] | None:
    compared = [s.plan.get("since") for s in shards]
    if not any(compared):
        return None
    ids = {c.get("run_id") if c else None for c in compared}
    if len(ids) != 1:
        raise MergeError("the runs were compared with different earlier runs (--compare-with): compare each job "
                         "with the same run, or with none")
    merged: dict[str, Any] = {"run_id": ids.pop()}
    for key in ("new", "resolved", "unchanged", "not_compared"):
        pairs = {(p["module"], p["code"]) for c in compared if c for p in c.get(key, [])}
        merged[key] = [{"module": m, "code": c} for m, c in sorted(pairs)]
    return merged


def _source(shards: list[Shard]) -> dict[str, Any] | None:
    """The slices' common source: a field on which they differ (or that one lacks) is null."""
    sources = [source for s in shards if isinstance(source := s.plan.get("source"), dict)]
    if not sources or len(sources) != len(shards):
        return None
    fields = ("modules_dir", "inventory", "revision", "dirty")
    return {f: sources[0].get(f) if all(s.get(f) == sources[0].get(f) for s in sources) else None for f in fields}


def _checked(shards: list[Shard]) -> dict[str, list[str]] | None:
    """Every slice's checked record together (their modules do not overlap); None if a slice has none."""
    records = [s.plan.get("checked") for s in shards]
    if not all(isinstance(r, dict) for r in records):
        return None
    merged = {m: c for r in records if isinstance(r, dict) for m, c in r.items()}
    return {m: merged[m] for m in sorted(merged)}


def merge_plans(shards: list[Shard], run_id: str) -> dict[str, Any]:
    """One plan from the slices: modules and hosts together, run errors once each, exit code by §5."""
    _refuse_overlaps(shards)
    modules = sorted((m for s in shards for m in s.plan["modules"]), key=lambda m: m["module"])
    module_errors = {m["module"] for m in modules if m["error"] is not None}
    run_errors = list({json.dumps(e, sort_keys=True): e for s in shards for e in s.plan["errors"]
                       if e["module"] not in module_errors}.values())
    errors = run_errors + [{"module": m["module"], "host": m["host"], **m["error"], "file": None, "key": None}
                           for m in modules if m["error"] is not None]
    codes = [int(s.plan["exit_code"]) for s in shards]
    status = next((c for c in codes if c in (3, 4)), 2 if 2 in codes else 0)
    return plan_document(
        run_id=run_id, started_at=min(s.plan["started_at"] for s in shards),
        finished_at=max(s.plan["finished_at"] for s in shards),
        exit_code=exit_code([RunError(**e) for e in errors], any(m["changes"] for m in modules), status),
        modules=modules, errors=[_error_fields(e) for e in errors],
        hosts=sorted((h for s in shards for h in s.plan["hosts"]), key=lambda h: h["host"]), since=_since(shards),
        source=_source(shards), checked=_checked(shards))


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    return {k: error.get(k) for k in ("module", "host", "code", "message", "file", "key")}


def _order(shards: list[Shard]) -> dict[str, int]:
    """Every collected node id in collection order (each job collects the whole suite, then selects)."""
    order: dict[str, int] = {}
    for shard in shards:
        for collector in shard.report.get("collectors", []):
            for child in collector.get("result", []):
                order.setdefault(child["nodeid"], len(order))
    return order


def merge_reports(shards: list[Shard], plan: dict[str, Any]) -> dict[str, Any]:
    """pytest-json-report's report of the whole run: every job's tests, in collection order."""
    order = _order(shards)
    tests = sorted((t for s in shards for t in s.report.get("tests", [])),
                   key=lambda t: (order.get(t["nodeid"], len(order)), t["nodeid"]))
    summary: dict[str, int] = {}
    for test in tests:
        summary[test["outcome"]] = summary.get(test["outcome"], 0) + 1
    collected = max((int(s.report.get("summary", {}).get("collected", 0)) for s in shards), default=0)
    summary.update(total=len(tests), collected=collected)
    if collected > len(tests):
        summary["deselected"] = collected - len(tests)
    collectors: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for collector in shard.report.get("collectors", []):
            merged = collectors.setdefault(collector["nodeid"], {**collector, "result": []})
            children = {c["nodeid"]: c for c in merged["result"]}
            for child in collector.get("result", []):
                # selected in the merged run when some job selected it
                if child["nodeid"] in children and not child.get("deselected"):
                    children[child["nodeid"]] = child
                children.setdefault(child["nodeid"], child)
            merged["result"] = list(children.values())
    first = shards[0].report
    return {"created": max(float(s.report.get("created", 0)) for s in shards),
            "duration": max(float(s.report.get("duration", 0)) for s in shards),
            "exitcode": plan["exit_code"], "root": first.get("root"), "environment": first.get("environment", {}),
            "summary": summary, "collectors": list(collectors.values()), "tests": tests, "plan": plan}


def _testcase_key(nodeid: str) -> tuple[str, str]:
    path, _, name = nodeid.partition("::")
    return path.removesuffix(".py").replace("/", "."), name


def merge_junit(shards: list[Shard]) -> bytes:
    """One testsuite with every job's test cases, in collection order, and the counts summed."""
    order = {_testcase_key(nodeid): index for nodeid, index in _order(shards).items()}
    cases = [case for s in shards for case in s.junit.iter("testcase")]
    cases.sort(key=lambda c: order.get((c.get("classname", ""), c.get("name", "")), len(order)))
    suites = [suite for s in shards for suite in s.junit.iter("testsuite")]
    root = ET.Element("testsuites", {"name": "pytest tests"})
    counts = {k: sum(int(suite.get(k, "0")) for suite in suites) for k in ("errors", "failures", "skipped", "tests")}
    suite = ET.SubElement(root, "testsuite", {
        "name": "pytest", **{k: str(v) for k, v in counts.items()},
        "time": f"{max((float(s.get('time', '0')) for s in suites), default=0.0):.3f}",
        "timestamp": min((s.get("timestamp", "") for s in suites), default=""),
        "hostname": suites[0].get("hostname", "") if suites else ""})
    suite.extend(cases)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>' + body


def merge(folders: list[Path], reports_dir: Path, now: datetime | None = None) -> tuple[Path, dict[str, Any]]:
    """Merge the run folders into a new run folder of reports_dir; latest points at it if a host was observed."""
    if len(folders) < 1:
        raise MergeError("no run folder to merge: RUNS=\"reports/<run-id> ...\"")
    shards = [read_shard(folder) for folder in folders]
    plan = merge_plans(shards, new_run_id(now or datetime.now(UTC)))
    report = merge_reports(shards, plan)
    run_dir = write_run(reports_dir, plan, report, merge_junit(shards), None, move_latest=observed(plan))
    for note in archive_upkeep(reports_dir, None, plan):
        print(f"merge: {note}", file=sys.stderr)
    return run_dir, plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make merge", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    try:
        run_dir, plan = merge(args.runs, args.reports_dir)
    except MergeError as exc:
        print(f"merge: {exc}; nothing written", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"merge: {codes.ARTIFACTS_NOT_WRITTEN}: cannot write into {args.reports_dir}: "
              f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    for line in summary_lines(plan, arrow_for(sys.stdout.encoding)):
        print("".join(text for text, _ in line))
    print(f"merged {len(args.runs)} run folders into {run_dir}/ (plan.json, report.json, junit.xml, index.html)")
    return int(plan["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
