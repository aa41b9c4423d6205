"""observe: parsing and redaction at the observation boundary, batching on a fake host."""

from __future__ import annotations

import pytest

from driftcheck import allowlist
from driftcheck.errors import ObservationError
from driftcheck.inventory import HostConfig
from driftcheck.observe import HostObserver, parse_inspect, parse_ps
from driftcheck.transport import Output

SECRET = "captured-secret-value-9d2e"


def test_redaction_drops_env_cmd_and_other_labels(captured_containers):
    assert SECRET.encode() in captured_containers
    observed = parse_inspect("lab", captured_containers)
    assert len(observed) == 7
    text = repr(observed)
    assert SECRET not in text and "sleep" not in text and "config-hash" not in text
    assert dict(observed["drift-lab-relabelled-1"].labels) == {
        "com.docker.compose.project": "drift-lab", "com.docker.compose.service": "impostor"}


@pytest.mark.parametrize("garbage", [b"", b"{", b"[1]", b'[{"Id": 1}]', b"\xff\xfe", b'{"a": []}',
                                     b'[{"Id": "x", "Name": "/n", "State": {}, "Config": {}}]'])
def test_unexpected_inspect_output_is_observation_invalid(garbage):
    with pytest.raises(ObservationError) as info:
        parse_inspect("h", garbage)
    assert info.value.code == "OBSERVATION_INVALID"


def test_parse_ps_rows(tmp_path):
    from conftest import FIXTURES
    rows = parse_ps("h", (FIXTURES / "inspect" / "ps.jsonl").read_bytes())
    assert "drift-lab-in-sync-1" in rows and all(len(i) == 64 for i in rows.values())
    with pytest.raises(ObservationError):
        parse_ps("h", b"not json\n")


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


def test_one_ps_one_inspect_one_image_inspect_for_many_modules(captured_containers, captured_images):
    from conftest import FIXTURES
    fake = FakeTransport([
        (allowlist.PS_ARGV, Output(0, (FIXTURES / "inspect" / "ps.jsonl").read_bytes(), b"")),
        (allowlist.INSPECT_PREFIX, Output(0, captured_containers, b"")),
        (allowlist.IMAGE_INSPECT_PREFIX, Output(0, captured_images, b"")),
    ])
    observer = HostObserver(fake, ["drift-lab-in-sync-1", "drift-lab-wrong-tag-1", "drift-lab-missing-1"])
    for _ in range(5):
        containers = observer.containers()
        observer.images()
    assert [c[:2] for c in fake.calls] == [("docker", "ps"), ("docker", "inspect"), ("docker", "image")]
    assert set(containers) == {"drift-lab-in-sync-1", "drift-lab-wrong-tag-1"}


def test_docker_failure_is_cached_not_retried():
    fake = FakeTransport([(allowlist.PS_ARGV, Output(1, b"", b"Cannot connect to the Docker daemon\n"))])
    observer = HostObserver(fake, ["a"])
    for _ in range(3):
        with pytest.raises(ObservationError) as info:
            observer.containers()
        assert info.value.code == "DOCKER_UNAVAILABLE" and "Cannot connect" in info.value.message
    assert len(fake.calls) == 1


def test_missing_docker_cli():
    fake = FakeTransport([(allowlist.PS_ARGV, Output(127, b"", b"sh: docker: not found\n"))])
    with pytest.raises(ObservationError, match="not found"):
        HostObserver(fake, ["a"]).containers()
