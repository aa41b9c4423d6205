"""The files the inventory names (keys, known_hosts, ssh configs) and the errors they give.

Each is a regular file of bounded size (read at most its cap plus one byte, without blocking on a
FIFO) and what its key says; a bad one is one INVENTORY_INVALID naming the file and the key at
load, or one error per host at connect, cached, never a traceback nor a retry in every check.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from driftcheck import allowlist
from driftcheck.errors import ManifestError, ObservationError
from driftcheck.inventory import MAX_KEY_FILE, MAX_KNOWN_HOSTS, MAX_SSH_CONFIG, key_file_kind, load_inventory
from driftcheck.localfile import LocalFileError, read_local_file, read_local_text
from driftcheck.observe import HostObserver
from driftcheck.records import Output
from driftcheck.transport import ParamikoRunner, Transport, paramiko_login
from driftcheck.transport.known_hosts import KnownHosts
from driftcheck.transport.openssh_options import connect_error
from tests.unit.test_paramiko_setups import server  # noqa: F401 - the in-process SSH server fixture
from tests.unit.test_runners import host_config

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


# -- reading a local file ------------------------------------------------------------------------


def test_only_a_regular_file_within_its_cap_is_read(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert read_local_file(str(tmp_path / "f"), 10) == b"x" * 10
    cases = {str(tmp_path): "is a directory", "/dev/zero": "is a character device",
             str(sparse(tmp_path / "big", 11)): "is larger than 10 bytes",
             str(tmp_path / "missing"): "cannot be read: No such file or directory"}
    os.mkfifo(tmp_path / "fifo")
    cases[str(tmp_path / "fifo")] = "is a FIFO"  # and open() does not wait for a writer
    for path, why in cases.items():
        with pytest.raises(LocalFileError) as info:
            read_local_file(path, 10)
        assert str(info.value).startswith(why), (path, str(info.value))
    (tmp_path / "latin").write_bytes(b"# ok\n# caf\xe9\n")
    with pytest.raises(LocalFileError, match=r"is not UTF-8 text \(line 2, byte 10\)"):
        read_local_text(str(tmp_path / "latin"), 100)


def test_key_files_are_told_apart_by_their_content():
    assert key_file_kind(KEY.encode()) == "private"
    assert key_file_kind(b"-----BEGIN RSA PRIVATE KEY-----\r\nMIIE\r\n") == "private"
    assert key_file_kind(b"ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ me-cert\n") == "certificate"
    assert key_file_kind(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@laptop\n") == "public"
    for other in (b"", b"hello\n", bytes(range(256)), b"-----BEGIN CERTIFICATE-----\n"):
        assert key_file_kind(other) is None


# -- at load: one INVENTORY_INVALID naming the file and the key ------------------------------------


def inventory(tmp_path: Path, scheme: str = "paramiko", **entry: str) -> Path:
    path = tmp_path / "hosts.yaml"
    fields = {"connection": f"{scheme}://deploy@db.example.com", **entry}
    path.write_text("hosts:\n  h:\n" + "".join(f"    {k}: '{v}'\n" for k, v in fields.items()))
    return path


def load_error(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_inventory(path, "hosts.yaml")
    assert info.value.code == "INVENTORY_INVALID"
    return info.value


def private(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize(("data", "scheme", "why"), [
    (b"hello\n", "paramiko", "is not a private key: expected an OpenSSH or PEM private key file"),
    (bytes(range(256)), "ssh", "is not a private key"),
    (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@laptop\n", "paramiko", "is a public key; paramiko:// needs the "
     "private key"),
    (b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + b"A" * MAX_KEY_FILE, "paramiko", "is larger than 262144 bytes"),
], ids=["text", "binary", "public-key", "too-large"])
def test_an_identity_file_that_is_not_a_key_is_refused_naming_it(tmp_path, data, scheme, why):
    key = private(tmp_path / "id", data)
    error = load_error(inventory(tmp_path, scheme, identity_file=key))
    assert error.key == "hosts.h.identity_file" and f"{key} {why}" in str(error)
    assert "AAAA" not in str(error)  # a key's content is never quoted


def test_keys_certificates_and_for_ssh_a_public_key_are_accepted(tmp_path):
    load_inventory(inventory(tmp_path, identity_file=private(tmp_path / "id", KEY)), "x")
    cert = private(tmp_path / "id-cert.pub", "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ x\n")
    load_inventory(inventory(tmp_path, identity_file=cert), "x")
    # ssh:// may name the public half of a key held by ssh-agent or a FIDO token (IdentitiesOnly)
    public = private(tmp_path / "id.pub", "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t x\n")
    load_inventory(inventory(tmp_path, "ssh", identity_file=public), "x")


@pytest.mark.parametrize(("data", "why"), [
    (b"[db.example.com]:22 ssh-ed25519 AAAA\n# caf\xe9\n", "is not UTF-8 text (line 2"),
    (None, "is larger than 16 MiB"),
], ids=["not-utf8", "too-large"])
def test_a_known_hosts_that_is_not_a_bounded_text_file_is_refused(tmp_path, data, why):
    known = tmp_path / "known_hosts"
    if data is None:
        sparse(known, MAX_KNOWN_HOSTS + 1)
    else:
        known.write_bytes(data)
    error = load_error(inventory(tmp_path, known_hosts=str(known)))
    assert error.key == "hosts.h.known_hosts" and f"{known} {why}" in str(error)


@pytest.mark.parametrize(("scheme", "data", "why"), [
    ("paramiko", b"Host *\n  Port abc\n", "line 2: Port 'abc' is not a port number (1 to 65535)"),
    ("paramiko", b"Host db.example.com\n  Port 70000\n", "line 2: Port '70000' is not a port number"),
    ("paramiko", b"Host *\n  User caf\xe9\n", "is not UTF-8 text (line 2"),
    ("ssh", None, "is larger than 1 MiB"),
], ids=["port-word", "port-range", "not-utf8", "too-large"])
def test_an_ssh_config_paramiko_cannot_use_is_refused(tmp_path, scheme, data, why):
    ssh_config = tmp_path / "ssh_config"
    if data is None:
        sparse(ssh_config, MAX_SSH_CONFIG + 1)
    else:
        ssh_config.write_bytes(data)
    error = load_error(inventory(tmp_path, scheme, ssh_config=str(ssh_config)))
    assert error.key == "hosts.h.ssh_config" and why in str(error)
    if scheme == "paramiko":  # and at connect, before paramiko reads a byte of it
        with pytest.raises(ObservationError) as info:
            paramiko_login.resolve(host_config("paramiko", hostname="db.example.com", ssh_config=str(ssh_config)))
        assert info.value.code == "INVENTORY_INVALID" and why in info.value.message


def test_a_port_for_another_host_is_not_this_hosts_problem(tmp_path):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host other\n  Port abc\nHost *\n  Port 2222\n")
    load_inventory(inventory(tmp_path, ssh_config=str(ssh_config)), "x")


# -- at connect: one error per host, cached -------------------------------------------------------


def in_thread(call) -> BaseException | None:
    """call() in a thread that must end within 5 s (a FIFO opened for reading would block for ever)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # whatever it is, the test reads it
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "blocked"
    return raised[0] if raised else None


@pytest.mark.parametrize("make", ["fifo", "dev-zero", "directory", "not-utf8"])
def test_a_default_known_hosts_that_is_not_a_text_file_is_one_clear_error(tmp_path, monkeypatch, make):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    known = tmp_path / ".ssh" / "known_hosts"
    if make == "fifo":
        os.mkfifo(known)
    elif make == "dev-zero":
        known.symlink_to("/dev/zero")
    elif make == "directory":
        known.mkdir()
    else:
        known.write_bytes(b"\xff\xfe\n")
    error = in_thread(lambda: KnownHosts(host_config("paramiko")))
    assert isinstance(error, ObservationError) and error.code == "INVENTORY_INVALID", error
    assert f"the known_hosts file {known} (hosts.yaml names no known_hosts" in error.message


def test_a_proxy_command_that_cannot_start_says_so(tmp_path):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n  ProxyCommand /nonexistent/proxy %h %p\n")
    (tmp_path / "known_hosts").write_text("")
    config = host_config("paramiko", ssh_config=str(ssh_config), known_hosts=str(tmp_path / "known_hosts"))
    with pytest.raises(ObservationError) as info:
        paramiko_login.open_connection(config)
    assert info.value.code == "HOST_UNREACHABLE"
    assert (f"ProxyCommand for 127.0.0.1:2222 cannot start (No such file or directory: /nonexistent/proxy); "
            f"fix ProxyCommand in {ssh_config}") in info.value.message
    assert "check the address" not in info.value.message


@pytest.mark.parametrize("server", [False], indirect=True)
@pytest.mark.parametrize(("data", "why"), [
    ("hello\n", "not a valid"), (KEY, "Invalid key"), (None, "Is a directory")], ids=["not-a-key", "bad-key", "dir"])
def test_a_key_file_paramiko_cannot_read_is_auth_failed_naming_it(server, tmp_path, data, why):  # noqa: F811
    config, interface = server
    key = tmp_path / "id"
    if data is None:
        key.mkdir()
    else:
        private(key, data)
    with pytest.raises(ObservationError) as info:
        ParamikoRunner(replace(config, identity_file=str(key))).run(allowlist.PS_ARGV)
    assert info.value.code == "AUTH_FAILED"
    assert f"the key file {key} cannot be used to log in to 127.0.0.1:" in info.value.message
    assert why in info.value.message and interface.commands == []


class Exploding:
    """A runner whose connect fails with what no runner translates (a bug, or a library's surprise)."""

    host = "h"

    def __init__(self) -> None:
        self.connects = 0

    def connect(self) -> None:
        self.connects += 1
        raise RuntimeError("surprise")

    def run(self, argv) -> Output:
        raise AssertionError("never reached")

    def close(self) -> None:
        pass


def test_an_unexpected_failure_is_one_error_for_the_host_tried_once():
    runner = Exploding()
    observer = HostObserver(Transport(host_config("paramiko"), runner), {"c"})
    for _ in range(3):  # three checks of the host
        with pytest.raises(ObservationError) as info:
            observer.containers()
        assert info.value.code == "HOST_UNREACHABLE" and "(RuntimeError: surprise)" in info.value.message
    assert runner.connects == 1


@pytest.mark.parametrize(("stderr", "code", "hint"), [
    ("/bin/bash: line 1: /nonexistent/proxy: No such file or directory\n", "HOST_UNREACHABLE",
     "a ProxyCommand of the ssh config could not run"),
    ("sh: 1: exec: /opt/proxy: Permission denied\n", "HOST_UNREACHABLE", "a ProxyCommand of the ssh config"),
    ("/home/me/.ssh/config line 2: Bad port 'abc'.\n", "HOST_UNREACHABLE", "fix that line of the ssh config"),
    ("me@h: Permission denied (publickey).\n", "AUTH_FAILED", "check the user"),
], ids=["proxy-missing", "proxy-not-executable", "bad-port", "auth"])
def test_ssh_errors_about_the_ssh_config_point_at_it(stderr, code, hint):
    error = connect_error(host_config("ssh", hostname="h"), stderr, 255)
    assert error.code == code and hint in error.message and stderr.strip().rstrip(".") in error.message


def test_paramiko_never_reads_an_ssh_config_unbounded(tmp_path, monkeypatch):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n  User ops\n")
    monkeypatch.setattr(paramiko.SSHConfig, "from_path", None)  # only from_text, after a bounded read
    assert paramiko_login.resolve(host_config("paramiko", user=None, ssh_config=str(ssh_config))).username == "ops"
