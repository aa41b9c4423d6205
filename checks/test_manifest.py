"""Offline validation: `pytest -m manifest` (make validate). No host is contacted, no plan written.

Loading already validated every module.yaml (schema/ and the loader's rules) and the inventory;
one that is invalid fails collection with the file, the key and what was expected (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftcheck.composehash import ComposeError, check_defines
from driftcheck.printable import printable


def test_manifest(manifest_module):
    """The module is valid; its compose.file, when declared, renders and defines its service."""
    if manifest_module.compose_file is not None:
        # a local `docker-compose config --services`: no daemon, no host
        try:
            check_defines(Path(manifest_module.compose_file), manifest_module.project, manifest_module.service,
                          None if manifest_module.compose_root is None else Path(manifest_module.compose_root))
        except ComposeError as exc:
            pytest.fail(printable(f"{exc.code}: {manifest_module.path}: key 'compose.file': {exc}"), pytrace=False)
