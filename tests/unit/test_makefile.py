"""What the Makefile's targets install (issue 17): `make venv` only what a check needs, `make setup` and
`make test` the developer tools too. Read from `make -n -B` (what make would run), nothing installed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = ("hypothesis", "mypy", "ruff")


def would_run(target: str) -> str:
    """The commands `make <target>` would run from scratch (-B: as if nothing were installed yet).

    Only for targets whose recipes never call $(MAKE): make -n still runs those lines."""
    done = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def pinned(requirements: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", (ROOT / requirements).read_text(), re.M)}


def test_make_venv_installs_only_what_a_check_needs():
    venv = would_run("venv")
    assert re.search(r"pip install .*-r requirements\.txt$", venv, re.M), venv
    assert "requirements-dev.txt" not in venv
    assert not set(DEV_TOOLS) & pinned("requirements.txt")


def test_make_setup_and_make_test_add_the_developer_tools():
    assert set(DEV_TOOLS) <= pinned("requirements-dev.txt")
    assert "-r requirements.in" in (ROOT / "requirements-dev.in").read_text()  # the dev lock holds the run's
    assert pinned("requirements.txt") <= pinned("requirements-dev.txt")
    commands = would_run("setup")
    assert re.search(r"pip install .*-r requirements-dev\.txt$", commands, re.M), commands
    assert re.search(r"^test: setup$", (ROOT / "Makefile").read_text(), re.M)
