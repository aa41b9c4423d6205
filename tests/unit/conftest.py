"""Unit tests: pure logic on captured `docker inspect` JSON; no socket is ever opened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftcheck import allowlist
from driftcheck.inventory import HostConfig
from driftcheck.manifest import Module, parse_module

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="session")
def captured_containers() -> bytes:
    return (FIXTURES / "inspect" / "drift-lab.containers.json").read_bytes()


@pytest.fixture(scope="session")
def captured_images() -> bytes:
    return (FIXTURES / "inspect" / "drift-lab.images.json").read_bytes()


def make_module(**overrides: Any) -> Module:
    data: dict[str, Any] = {
        "schema_version": 2, "name": "m", "host": "h",
        "compose": {"project": "drift-lab", "service": "in-sync"},
        "image": {"ref": "lab/app:1"},
    }
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            data.setdefault(section, {})[leaf] = value
        else:
            data[section] = value
    return parse_module(data, "modules/m/module.yaml", data["name"])


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / "inspect" / name).read_text())


class FakeTransport:
    """Maps argv prefixes to canned outputs and records every call (unit tests only)."""

    def __init__(self, answers):
        self.config = HostConfig("h", "local", None, None, None, None, None, None, "strict", 5.0)
        self.answers = answers
        self.calls = []

    def run(self, argv):
        allowlist.check_argv(argv)
        self.calls.append(tuple(argv))
        for prefix, output in self.answers:
            if tuple(argv[: len(prefix)]) == prefix:
                return output
        raise AssertionError(argv)
