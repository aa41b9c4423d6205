"""The project's own tests are an ordinary pytest project (tests/pytest.ini), apart from the drift suite."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def collected(done: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """The test functions `pytest --co` listed, by module file name."""
    listed: dict[str, list[str]] = {}
    module = None
    for line in done.stdout.splitlines():
        if found := re.fullmatch(r"\s*<Module (\S+)>", line):
            module = found.group(1)
            listed[module] = []
        elif (found := re.fullmatch(r"\s*<Function (\S+)>", line)) and module is not None:
            listed[module].append(found.group(1))
    return listed


def test_unit_and_lab_tests_collect_in_one_run():
    """Each folder has its own conftest.py; the helpers they share are imported from tests.support."""
    files = ["tests/unit/test_compare.py", "tests/lab/test_suite_against_lab.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", *files, "--co"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = collected(done)
    assert set(listed) == {Path(f).name for f in files}, done.stdout
    for file in files:
        defined = {node.name for node in ast.parse((ROOT / file).read_text()).body
                   if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
        assert defined and {name.split("[")[0] for name in listed[Path(file).name]} == defined, file
    assert f"{sum(map(len, listed.values()))} tests collected" in done.stdout


def test_the_drift_suites_ini_and_plugin_do_not_apply(pytestconfig: pytest.Config):
    assert pytestconfig.rootpath == TESTS and pytestconfig.inipath == TESTS / "pytest.ini"
    plugins = pytestconfig.pluginmanager
    assert not [name for name, _ in plugins.list_name_plugin() if name and "driftcheck" in name]
    assert not [dest for dest in vars(pytestconfig.option) if dest.startswith(("drift", "modules_dir", "inventory"))]
    # what the drift suite's pytest.ini switches off for speed is on here (--lf works), and pytester is loaded
    for name in ("cacheprovider", "unraisableexception", "pytester", "hypothesispytest"):
        assert plugins.has_plugin(name), name
    assert not plugins.has_plugin("pytest11.testinfra")
    assert pytestconfig.getini("xfail_strict") is True


def test_the_hypothesis_profile_is_the_environments():
    assert settings.get_current_profile_name() == (os.environ.get("HYPOTHESIS_PROFILE") or "quick")
    assert settings.get_profile("thorough").max_examples == 300  # the counts the properties were written for
