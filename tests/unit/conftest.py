"""Unit tests: pure logic on captured `docker inspect` JSON; no socket is ever opened."""

from __future__ import annotations

import pytest

from tests.support.unit import FIXTURES


@pytest.fixture(scope="session")
def captured_containers() -> bytes:
    return (FIXTURES / "inspect" / "drift-lab.containers.json").read_bytes()


@pytest.fixture(scope="session")
def captured_images() -> bytes:
    return (FIXTURES / "inspect" / "drift-lab.images.json").read_bytes()

