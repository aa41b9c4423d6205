"""A run's local docker-compose calls (compose.file) with the real Compose binary: one budget for the whole
run, nothing left running after it, remote references refused before any host is contacted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from driftcheck.composehash import compose_binary


def compose_processes(root: Path) -> list[int]:
    """The Compose binaries still running in a folder under root."""
    binary = os.path.realpath(compose_binary())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "exe") == binary and os.readlink(entry / "cwd").startswith(str(root)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_hanging_compose_calls_share_the_runs_budget_and_nothing_is_left_running(lab, tmp_path):
    """An env_file that is a FIFO makes `docker-compose config` wait for ever, deaf to SIGTERM."""
    fifo = tmp_path / "app.env"
    os.mkfifo(fifo)
    names = ["in-sync", "wrong-tag", "unhealthy"]
    for name in names:
        folder = lab.module(name, compose={"file": "compose.yaml"}).parent
        (folder / "compose.yaml").write_text(f"services:\n  {name}:\n    image: lab/app:1\n    env_file: [{fifo}]\n")
    lab.serve(*names)
    started = time.monotonic()
    run = lab.run("-k", "config_hash", "--compose-budget=2")
    elapsed = time.monotonic() - started
    assert run.rc == 2, run.output
    errors = sorted((e["module"], e["code"], e["message"]) for e in run.plan["errors"] if e["module"])
    assert [(m, c) for m, c, _ in errors] == [(n, "COMPOSE_CONFIG_INVALID") for n in sorted(names)], errors
    messages = [m for _, _, m in errors]
    assert sum("did not finish within 2s" in m for m in messages) == 1, messages
    assert sum("took their budget of 2s (--compose-budget" in m for m in messages) == 2, messages
    assert elapsed < 2 + 20, f"{elapsed:.1f}s: the budget did not bound the run"  # 3 x 30 s before
    assert compose_processes(lab.root) == []


def test_a_remote_include_is_manifest_invalid_before_any_host_is_contacted(lab):
    folder = lab.module("in-sync", compose={"file": "compose.yaml"}).parent
    (folder / "compose.yaml").write_text("include:\n  - https://github.com/example/stack.git\n"
                                         "services:\n  in-sync:\n    image: lab/app:1\n")
    lab.serve("in-sync")
    run = lab.run()
    assert run.rc == 2, run.output
    assert run.commands == [] and run.error_codes() == ["MANIFEST_INVALID"]
    [error] = run.plan["errors"]
    assert error["key"] == "compose.file" and error["file"].endswith("in-sync/module.yaml")
    assert "include[0]" in error["message"] and "remote resource" in error["message"]


def test_a_compose_budget_that_is_not_seconds_is_a_usage_error(lab):
    lab.module("in-sync")
    run = lab.run("--compose-budget=soon")
    assert run.rc == 4, run.output
    assert "--compose-budget / DRIFT_COMPOSE_BUDGET=soon: expected seconds" in run.stderr
