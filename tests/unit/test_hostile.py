"""The hostile-manifest corpus (fixtures/hostile): each case is refused, naming its file and key."""

from __future__ import annotations

import pytest

from driftcheck.errors import ManifestError, SafetyViolation
from driftcheck.inventory import HostConfig
from driftcheck.manifest import discover
from driftcheck.transport import LocalRunner, Transport
from driftcheck.transport.testinfra_backend import as_testinfra_host
from tests.support.hostile import CORPUS, expected_key, place


def test_the_corpus_is_there():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=lambda p: p.stem)
def test_each_case_is_refused_with_file_and_key(tmp_path, case):
    place(case, tmp_path)
    modules, errors = discover(tmp_path, lambda p: str(p.relative_to(tmp_path)))
    assert modules == []
    [error] = errors
    assert isinstance(error, ManifestError)
    assert error.path == f"{case.stem}/module.yaml"
    assert error.key == expected_key(case)


LOCAL = HostConfig("local", "local", None, None, None, None, None, None, "strict", 5.0)


@pytest.mark.parametrize("command", ["rm -rf /", "docker rm -f x", "docker inspect x", "id"])
def test_testinfra_host_cannot_reach_the_backend_around_the_allowlist(command):
    transport = Transport(LOCAL)
    assert isinstance(transport.runner, LocalRunner)
    with pytest.raises(SafetyViolation):
        as_testinfra_host(transport).run(command)
    with pytest.raises(SafetyViolation):
        transport.run(command.split())


def test_testinfra_modules_are_refused_too():
    host = as_testinfra_host(Transport(LOCAL))
    with pytest.raises(SafetyViolation):
        _ = host.docker("x").is_running
    with pytest.raises(SafetyViolation):
        _ = host.file("/etc/passwd").exists
