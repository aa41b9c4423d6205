"""allowlist: only the read-only docker commands pass, as parsed argv in canonical quoting."""

from __future__ import annotations

import shlex

import pytest

from driftcheck import allowlist
from driftcheck.errors import SafetyViolation
from driftcheck.imageref import parse_ref

CID = "a" * 64
IMG = "sha256:" + "b" * 64

ALLOWED = [
    allowlist.PS_ARGV,
    allowlist.VERSION_ARGV,
    (*allowlist.INSPECT_PREFIX, CID, CID.replace("a", "c")),
    (*allowlist.IMAGE_INSPECT_PREFIX, IMG, "redis:7.2-alpine"),
]
REFUSED = [
    ("docker", "rm", CID),
    ("docker", "stop", CID),
    ("docker", "ps"),
    ("docker", "inspect", CID),
    ("docker", "inspect", "--type", "container", "--", "name"),
    ("docker", "inspect", "--type", "container", "--", CID, "--format", "{{.Config.Env}}"),
    ("docker", "image", "inspect", "--", "-f"),
    ("docker", "image", "rm", IMG),
    ("sh", "-c", "docker ps"),
    ("docker", "exec", CID, "env"),
    # a pattern's `$` matches before a trailing newline: ids and refs are matched whole
    ("docker", "inspect", "--type", "container", "--", CID + "\n"),
    ("docker", "image", "inspect", "--", IMG + "\n"),
    ("docker", "image", "inspect", "--", "redis:7\n"),
]


@pytest.mark.parametrize("argv", ALLOWED)
def test_allowed(argv):
    allowlist.check_argv(argv)
    assert allowlist.check_command(shlex.join(argv)) == list(argv)


@pytest.mark.parametrize("argv", REFUSED)
def test_refused(argv):
    with pytest.raises(SafetyViolation):
        allowlist.check_argv(argv)


@pytest.mark.parametrize("command", [
    "docker ps --all --no-trunc --format x; rm -rf /",
    shlex.join(allowlist.PS_ARGV) + " && reboot",
    shlex.join(allowlist.PS_ARGV) + "\nreboot",
    "docker inspect --type container -- $(id)",
    shlex.join(allowlist.PS_ARGV).replace("'", '"'),  # same argv, not the canonical quoting
])
def test_refused_command_lines(command):
    with pytest.raises(SafetyViolation):
        allowlist.check_command(command)


@pytest.mark.parametrize(("ref", "normal"), [
    ("redis", "docker.io/library/redis:latest"),
    ("redis:7.2-alpine", "docker.io/library/redis:7.2-alpine"),
    ("louislam/uptime-kuma:1", "docker.io/louislam/uptime-kuma:1"),
    ("ghcr.io/gethomepage/homepage:v0.9.6", "ghcr.io/gethomepage/homepage:v0.9.6"),
    ("127.0.0.1:5000/lab/app:1", "127.0.0.1:5000/lab/app:1"),
    ("localhost/app", "localhost/app:latest"),
    (f"redis@{IMG}", f"docker.io/library/redis@{IMG}"),
])
def test_image_ref_normalisation(ref, normal):
    parsed = parse_ref(ref)
    assert parsed is not None and str(parsed) == normal


@pytest.mark.parametrize("ref", ["", "Redis", "redis:", "-x", "a b", "redis:7;rm", "x" * 300, "redis@sha256:12"])
def test_invalid_refs(ref):
    assert parse_ref(ref) is None
