"""The harness of the plugin tests: the repo's suite (pytest.ini, conftest.py, checks/) copied into
pytester.path and run in a subprocess against a `local://` host whose `docker` is docker_stub.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INSPECT = REPO / "fixtures" / "inspect"
STUB = Path(__file__).resolve().with_name("docker_stub.py")
#: the one host of the inventory; no module name contains it, so `-k` on a module never matches it
HOST = "stubhost"
PROJECT = "drift-lab"
#: each inner run is a few seconds at most; a hang fails the test instead of the whole suite
RUN_TIMEOUT = 60
COLLECTED_RE = re.compile(r"collected (\d+) items?(?: / (\d+) deselected)?(?: / (\d+) selected)?")


@dataclass
class Run:
    """One run of the drift suite in a subprocess."""

    rc: int
    stdout: str
    stderr: str
    #: the run's plan.json (from the run folder it wrote), None when it wrote none
    plan: dict[str, Any] | None
    #: the raw text of that plan.json
    plan_text: str | None
    run_dir: Path | None
    #: what the run sent to the stub: each an argv after `docker`
    commands: list[list[str]]
    outcomes: dict[str, int] = field(default_factory=dict)

    def statuses(self) -> dict[str, str]:
        assert self.plan is not None, self.output
        return {m["module"]: m["status"] for m in self.plan["modules"]}

    def codes(self) -> dict[str, list[str]]:
        assert self.plan is not None, self.output
        return {m["module"]: sorted(c["code"] for c in m["changes"]) for m in self.plan["modules"]}

    def error_codes(self) -> list[str]:
        assert self.plan is not None, self.output
        return sorted(e["code"] for e in self.plan["errors"])

    @property
    def output(self) -> str:
        return f"--- exit {self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class DriftLab:
    """A modules folder, an inventory, a reports folder and the docker stub's data, for one test."""

    def __init__(self, pytester: pytest.Pytester, containers: list[dict[str, Any]], images: list[dict[str, Any]]):
        self.pytester = pytester
        self.root = pytester.path
        # whatever the repo has: its ini (pyproject.toml only when there is no pytest.ini) and conftest
        names = ["pytest.ini", "conftest.py"] if (REPO / "pytest.ini").exists() else ["pyproject.toml", "conftest.py"]
        for name in names:
            if (REPO / name).exists():
                shutil.copy(REPO / name, self.root / name)
        shutil.copytree(REPO / "checks", self.root / "checks", ignore=shutil.ignore_patterns("__pycache__"))
        self.modules_dir = self.root / "modules"
        self.modules_dir.mkdir()
        self.inventory = self.root / "hosts.yaml"
        self.inventory.write_text(yaml.safe_dump({"hosts": {HOST: {"connection": "local://", "timeout": 20}}}))
        self.reports = self.root / "reports"
        self.stub_dir = self.root / "_stub"
        self.stub_dir.mkdir()
        self.log = self.stub_dir / "log.jsonl"
        self._containers = containers
        self.scenario: dict[str, Any] = {}
        self.write_json("images.json", images)
        self.serve()

    # -- the host, as the stub serves it

    def write_json(self, name: str, data: Any) -> None:
        (self.stub_dir / name).write_text(json.dumps(data, indent=1))

    def serve(self, *wanted: str) -> None:
        """The host runs these containers of the drift-lab capture: each a container name, or a compose
        service (all its containers); `drift-lab-<x>-1` may be written `<x>`."""
        def picked(c: dict[str, Any], w: str) -> bool:
            name = c["Name"].lstrip("/")
            service = (c["Config"].get("Labels") or {}).get("com.docker.compose.service")
            return w in (name, service, f"{PROJECT}-{w}-1")

        unknown = [w for w in wanted if not any(picked(c, w) for c in self._containers)]
        assert not unknown, f"not in the drift-lab capture: {unknown}"
        chosen = [c for c in self._containers if any(picked(c, w) for w in wanted)]
        self.write_json("containers.json", chosen)

    @staticmethod
    def _named(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
        full = name if name.startswith(f"{PROJECT}-") else f"{PROJECT}-{name}-1"
        return next(c for c in containers if c["Name"].lstrip("/") == full)

    def captured(self, name: str) -> dict[str, Any]:
        """A container of the drift-lab capture, by name (`drift-lab-<x>-1` may be written `<x>`)."""
        return self._named(self._containers, name)

    def patch_container(self, name: str, **fields: Any) -> None:
        """Change fields of a served container, by dotted path: patch_container("in-sync", **{"Config.Image": "x"})."""
        containers = json.loads((self.stub_dir / "containers.json").read_text())
        target = self._named(containers, name)
        for path, value in fields.items():
            *parents, leaf = path.split(".")
            node = target
            for part in parents:
                node = node[part]
            node[leaf] = value
        self.write_json("containers.json", containers)

    def set_scenario(self, **switches: Any) -> None:
        """The stub's switches (docker_stub.py): remove, vanish, retag, fail."""
        self.scenario = {k: v for k, v in {**self.scenario, **switches}.items() if v is not None}
        self.write_json("scenario.json", self.scenario)

    def commands_logged(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    # -- the repo side

    def module(self, name: str, **sections: Any) -> Path:
        """Write modules/<name>/module.yaml: a running lab/app:1 container of service <name> unless overridden.

        Each keyword replaces a top-level section, or (for dicts) is merged into it; None drops it.
        """
        data: dict[str, Any] = {
            "schema_version": 2, "name": name, "host": HOST,
            "compose": {"project": PROJECT, "service": name},
            "image": {"ref": "lab/app:1"},
        }
        for key, value in sections.items():
            if value is None:
                data.pop(key, None)
            elif isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return self.module_text(name, yaml.safe_dump(data, sort_keys=False))

    def module_text(self, name: str, text: str) -> Path:
        folder = self.modules_dir / name
        folder.mkdir(exist_ok=True)
        path = folder / "module.yaml"
        path.write_text(text)
        return path

    # -- running the suite

    def run_dirs(self, reports: Path | None = None) -> set[Path]:
        reports = reports or self.reports
        if not reports.is_dir():
            return set()
        return {p for p in reports.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")}

    def run(self, *args: str, reports: Path | None = None) -> Run:
        reports = reports or self.reports
        before = self.run_dirs(reports)
        sent = len(self.commands_logged())
        result = self.pytester.runpytest_subprocess(
            f"--modules-dir={self.modules_dir}", f"--inventory={self.inventory}", f"--reports-dir={reports}",
            *args, timeout=RUN_TIMEOUT)
        return self._result(int(result.ret), result.outlines, result.errlines, reports, before, sent)

    def _result(self, rc: int, outlines: list[str], errlines: list[str], reports: Path, before: set[Path],
                sent: int) -> Run:
        new = sorted(self.run_dirs(reports) - before)
        assert len(new) <= 1, f"one run wrote several run folders: {new}"
        run_dir = new[0] if new else None
        plan_text = (run_dir / "plan.json").read_text() if run_dir and (run_dir / "plan.json").exists() else None
        outcomes: dict[str, int] = {}
        for lines in (outlines, errlines):  # stderr under --drift-format=json
            try:
                outcomes = pytest.RunResult.parse_summary_nouns(lines)
                break
            except ValueError:
                continue
        return Run(
            rc=rc, stdout="\n".join(outlines), stderr="\n".join(errlines),
            plan=json.loads(plan_text) if plan_text is not None else None, plan_text=plan_text,
            run_dir=run_dir, commands=self.commands_logged()[sent:], outcomes=outcomes,
        )

    def start(self, *args: str, reports: Path | None = None, env: dict[str, str] | None = None,
              preexec_fn: Callable[[], None] | None = None) -> Started:
        """The suite started in a subprocess, as `python -m pytest` from the suite's folder, for a test
        that signals it or limits it; Started.finish() waits for it and gives its Run."""
        reports = reports or self.reports
        out, err = self.root / "run.stdout", self.root / "run.stderr"
        argv = [sys.executable, "-m", "pytest", f"--modules-dir={self.modules_dir}", f"--inventory={self.inventory}",
                f"--reports-dir={reports}", *args]
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen(argv, cwd=self.root, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                    env={**os.environ, **(env or {})}, preexec_fn=preexec_fn)
        return Started(self, proc, reports, self.run_dirs(reports), len(self.commands_logged()), out, err)

    def latest_plan(self) -> dict[str, Any]:
        return json.loads((self.reports / "latest" / "plan.json").read_text())


@dataclass
class Started:
    """A run of the suite still going (DriftLab.start)."""

    lab: DriftLab
    proc: subprocess.Popen[bytes]
    reports: Path
    before: set[Path]
    sent: int
    stdout: Path
    stderr: Path

    def wait_for(self, marker: Path, seconds: float = 30) -> None:
        """Until marker exists (the run got somewhere); fails if the run ends or time runs out first."""
        deadline = time.monotonic() + seconds
        while not marker.exists():
            assert self.proc.poll() is None, f"the run ended before {marker.name} appeared\n{self.finish().output}"
            assert time.monotonic() < deadline, f"{marker.name} did not appear within {seconds} s"
            time.sleep(0.02)

    def finish(self, timeout: float = RUN_TIMEOUT) -> Run:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the run did not end within {timeout} s") from None
        return self.lab._result(rc, self.stdout.read_text(errors="replace").splitlines(),
                                self.stderr.read_text(errors="replace").splitlines(), self.reports, self.before,
                                self.sent)


def sent_per_plan(run: Run) -> list[list[str]]:
    """The plan's hosts[].commands as argvs after `docker`, to compare with what the stub received."""
    assert run.plan is not None, run.output
    return [shlex.split(c)[1:] for h in run.plan["hosts"] for c in h["commands"]]


def ran(run: Run) -> int:
    """How many tests ran to an outcome, from pytest's summary line."""
    return sum(run.outcomes.get(k, 0) for k in ("passed", "failed", "errors", "skipped", "xfailed", "xpassed"))
