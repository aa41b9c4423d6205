"""The drift plugin end to end: the repo's suite run by pytester in a subprocess (runpytest_subprocess)
against a `local://` host whose `docker` is a stub (docker_stub.py) serving captured inspect JSON.

No root, no dockerd, no sshd, seconds per run. pytester comes from `-p pytester` (tests/pytest.ini's
addopts; until then run `python -m pytest -p pytester tests/plugin`).
"""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from .harness import INSPECT, REPO, STUB, DriftLab


@pytest.fixture(scope="session")
def docker_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bin folder holding `docker`: the stub, run by this interpreter (isolated, no site: fast start)."""
    folder = tmp_path_factory.mktemp("docker-stub-bin")
    target = folder / "docker"
    target.write_text(f"#!{sys.executable} -IS\n" + STUB.read_text())
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


@pytest.fixture(scope="session")
def captured() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    containers = json.loads((INSPECT / "drift-lab.containers.json").read_text())
    images = json.loads((INSPECT / "drift-lab.images.json").read_text())
    return containers, images


@pytest.fixture
def lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, docker_bin: Path,
        captured: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> DriftLab:
    """The drift suite in pytester.path, the stub first on PATH, nothing of the caller's DRIFT_* settings."""
    containers, images = captured
    built = DriftLab(pytester, copy.deepcopy(containers), copy.deepcopy(images))
    for name in list(os.environ):
        if name.startswith("DRIFT_") or name.startswith("DOCKER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_STUB_DIR", str(built.stub_dir))
    monkeypatch.setenv("PATH", f"{docker_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    return built
