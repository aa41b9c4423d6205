"""The terminal: an aligned table, colour only on a TTY (and never with NO_COLOR), and --drift-format json."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.support.lab import DRIFT_MODULES, EXAMPLE_MODULES, INVENTORY, REPO

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def suite(tmp_path: Path, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_") and k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "pytest", f"--reports-dir={tmp_path / 'reports'}",
                           f"--inventory={INVENTORY}", f"--modules-dir={EXAMPLE_MODULES}", *args], cwd=REPO,
                          env={**clean, **(env or {})},
                          timeout=120, check=False, **kwargs)


def on_a_tty(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The suite's output as a terminal shows it: stdout and stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    process = suite(tmp_path, *args, env={"TERM": "xterm", "COLUMNS": "200", **(env or {})},
                    stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.returncode == 1
    return b"".join(chunks).decode()


def table_of(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("MODULE "))
    end = next(i for i, line in enumerate(lines) if re.match(r"^\d+ modules?: ", line))
    return lines[start:end]


def test_the_table_is_aligned_with_every_module_and_a_one_line_total(drift_lab_run):
    run = drift_lab_run
    assert run.rc == 1 and run.plan is not None
    assert not ANSI.search(run.output), "colour on a pipe"
    rows = table_of(run.output)
    header = rows[0]
    status_at, changes_at = header.index("STATUS"), header.index("CHANGES")
    named = {row.split()[0]: row for row in rows[1:] if not row.startswith(" ")}
    assert set(named) == {m["module"] for m in run.plan["modules"]}
    for module in run.plan["modules"]:
        row = named[module["module"]]
        label = {"in_sync": "in sync", "drift": "DRIFT", "error": "ERROR"}[module["status"]]
        assert row[status_at:].startswith(label) and row[changes_at - 2:changes_at] == "  ", row
        for change in module["changes"]:
            assert any(line[changes_at:].startswith(change["code"]) for line in rows), change
    s = run.plan["summary"]
    assert (f"{s['modules']} modules: {s['in_sync']} in sync, {s['drift']} drift, {s['error']} error, "
            f"{s['warnings']} warnings; exit 1") in run.output


def test_colour_on_a_tty_and_never_with_no_color(drift_lab, tmp_path):
    coloured = on_a_tty(tmp_path, "-k", "wrong-tag or in-sync", f"--modules-dir={DRIFT_MODULES}")
    assert "\x1b[33mDRIFT" in coloured and "\x1b[32min sync" in coloured  # yellow drift, green in sync
    plain = on_a_tty(tmp_path, "-k", "wrong-tag or in-sync", f"--modules-dir={DRIFT_MODULES}", env={"NO_COLOR": "1"})
    assert not ANSI.search(plain) and re.search(r"\nwrong-tag +rs2000 +DRIFT +IMAGE_TAG_MISMATCH", plain)


def test_drift_format_json_makes_stdout_the_plan_alone(drift_lab, tmp_path):
    for args, env in ((["--drift-format=json"], None), ([], {"DRIFT_FORMAT": "json"})):
        done = suite(tmp_path, f"--modules-dir={DRIFT_MODULES}", *args, env=env, capture_output=True, text=True)
        assert done.returncode == 1, done.stderr
        plan = json.loads(done.stdout)  # the whole of stdout: `| jq` works
        latest = tmp_path / "reports" / "latest"
        assert plan == json.loads((latest / "plan.json").read_text())
        assert plan["exit_code"] == 1 and plan["summary"]["drift"] > 0
        assert "test session starts" in done.stderr and "MODULE " in done.stderr  # pytest's output: stderr
    done = suite(tmp_path, "-k", "in-sync", env={"DRIFT_FORMAT": "yaml"}, capture_output=True, text=True)
    assert done.returncode == 4 and "DRIFT_FORMAT=yaml: expected one of text, json" in done.stderr
    done = suite(tmp_path, "-k", "in-sync", "--drift-format=xml", capture_output=True, text=True)
    assert done.returncode == 4 and done.stdout == ""
