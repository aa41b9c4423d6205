"""A run's options, built once from the command line and the environment (a CLI option wins)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("text", "json")
#: seconds all local docker-compose calls of a run may take together (--compose-budget)
DEFAULT_COMPOSE_BUDGET = 120.0
#: hosts observed (connections open) at once, unless --max-connections says otherwise: a fleet of
#: 50 hosts is observed in one wave, one of 500 in eight, never 500 sockets at once
MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class Option:
    """One option of a run: its flag, its environment variable and its help."""

    dest: str
    flag: str
    env: str
    metavar: str
    help: str
    #: a switch (--strict-images, env value 1) rather than a value
    switch: bool = False


OPTIONS = (
    Option("modules_dir", "--modules-dir", "DRIFT_MODULES_DIR", "DIR", "folder of modules/<name>/module.yaml"),
    Option("inventory", "--inventory", "DRIFT_INVENTORY", "FILE", "the inventory (hosts.yaml)"),
    Option("plan_out", "--plan-out", "DRIFT_PLAN_OUT", "PATH", "also write plan.json here (a file or an existing "
           "folder)"),
    Option("reports_dir", "--reports-dir", "DRIFT_REPORTS_DIR", "DIR", "where reports/<run-id>/ folders go"),
    Option("compare_with", "--compare-with", "DRIFT_COMPARE_WITH", "PLAN", "an earlier run to compare with: its "
           "plan.json, its folder, or latest"),
    Option("strict_images", "--strict-images", "DRIFT_STRICT_IMAGES", "", "an image whose digest cannot be proven "
           "(IMAGE_DIGEST_NOT_VERIFIED) or inspected (IMAGE_NOT_OBSERVED) is drift, not a warning", switch=True),
    Option("format", "--drift-format", "DRIFT_FORMAT", "FORMAT", "text (default), or json: stdout is the plan "
           "alone and pytest's own output goes to stderr, for scripts and jq"),
    Option("compose_budget", "--compose-budget", "DRIFT_COMPOSE_BUDGET", "SECONDS", "the seconds all local "
           "docker-compose calls of the run (compose.file) may take together, each call at most 30; default "
           f"{DEFAULT_COMPOSE_BUDGET:g}"),
    Option("keep_runs", "--keep-runs", "DRIFT_KEEP_RUNS", "N", "keep the newest N run folders of the reports "
           "folder and remove older ones after the run (never latest's target); default: keep every run"),
    Option("max_connections", "--max-connections", "DRIFT_MAX_CONNECTIONS", "N", "at most N hosts are observed at "
           f"once, each over its own connection, closed once it has answered (default {MAX_CONNECTIONS})"),
)


@dataclass(frozen=True)
class RunOptions:
    """Where a run reads its desired state and writes its artifacts, and how it judges."""

    #: the folder of pytest.ini: defaults are relative to it
    root: Path
    modules_dir: Path
    inventory: Path
    reports_dir: Path
    #: also write plan.json here
    plan_out: Path | None
    #: an earlier run's plan.json or run folder, as given (--compare-with), and where it resolves
    compare_with: str | None
    compare_path: Path | None
    strict_images: bool
    #: text or json
    format: str
    #: seconds all local docker-compose calls of the run may take together
    compose_budget: float = DEFAULT_COMPOSE_BUDGET
    #: keep the newest N run folders (--keep-runs); None keeps every run
    keep_runs: int | None = None
    #: at most this many hosts observed, connections open, at once
    max_connections: int = MAX_CONNECTIONS

    @classmethod
    def build(cls, root: Path, cwd: Path, given: Mapping[str, Any], env: Mapping[str, str]) -> RunOptions:
        """From option values (None: not given) and the environment; raises ValueError for a bad value."""
        values: dict[str, Any] = {}
        for option in OPTIONS:
            value = given.get(option.dest)
            if option.switch:
                values[option.dest] = bool(value) or env.get(option.env, "") == "1"
            else:
                values[option.dest] = value or env.get(option.env) or None

        def path(dest: str, default: Path | None) -> Path | None:
            text = values[dest]
            return default if text is None else cwd / os.path.expanduser(text)

        fmt = values["format"] or "text"
        if fmt not in FORMATS:
            raise ValueError(f"--drift-format / DRIFT_FORMAT={fmt}: expected one of {', '.join(FORMATS)}")
        budget = _seconds(values["compose_budget"])
        keep_runs = _whole("--keep-runs / DRIFT_KEEP_RUNS", values["keep_runs"], "run folders to keep")
        max_connections = _whole("--max-connections / DRIFT_MAX_CONNECTIONS", values["max_connections"],
                                 "hosts observed at once")
        plan_out = path("plan_out", None)
        if plan_out is not None and not plan_out.is_dir() and not plan_out.parent.is_dir():
            raise ValueError(f"--plan-out={plan_out}: expected a file in an existing folder, or a folder")
        reports_dir = path("reports_dir", root / "reports") or root
        compare_with = values["compare_with"]
        compare_path = None if compare_with is None else \
            reports_dir / "latest" if compare_with == "latest" else cwd / os.path.expanduser(compare_with)
        return cls(root=root, modules_dir=path("modules_dir", root / "modules") or root,
                   inventory=path("inventory", root / "hosts.yaml") or root, reports_dir=reports_dir,
                   plan_out=plan_out, compare_with=compare_with, compare_path=compare_path,
                   strict_images=values["strict_images"], format=fmt, compose_budget=budget,
                   keep_runs=keep_runs, max_connections=max_connections or MAX_CONNECTIONS)

    def show(self, path: Path) -> str:
        """A path as messages show it: relative to the project where it lies inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def _seconds(text: str | None) -> float:
    """--compose-budget / DRIFT_COMPOSE_BUDGET: a positive number of seconds; raises ValueError."""
    if text is None:
        return DEFAULT_COMPOSE_BUDGET
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ValueError(f"--compose-budget / DRIFT_COMPOSE_BUDGET={text}: expected seconds, a number above 0 and "
                         "at most 86400")
    return value


def _whole(name: str, given: object, what: str) -> int | None:
    """A whole number of at least 1, or None when not given; raises ValueError naming the option."""
    if given is None:
        return None
    text = str(given).strip()
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise ValueError(f"{name}={given}: expected a whole number of {what}, 1 or more")
    return int(text)
