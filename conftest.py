"""The drift suite's conftest. The plugin is loaded by pytest.ini (`-p driftcheck.plugin`), before
pytest parses the command line; everything else lives in driftcheck/.

A pytest started in a folder above this checkout finds no pytest.ini of ours: it would collect the
project's own tests/ and bench/ without the plugin. It is told what to run instead (a collection
error, exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.inipath is None or config.inipath.resolve() != HERE / "pytest.ini":
        pytest.fail(
            f"{HERE} is a driftcheck checkout, but pytest started outside it ({config.rootpath}), without its "
            f"pytest.ini: it would collect the project's own tests and bench too. Run the drift checks from the "
            f"checkout (cd {HERE} && .venv/bin/python -m pytest), or name it (pytest {HERE})", pytrace=False)
    return None
