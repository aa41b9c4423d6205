"""paramiko:// against the SSH setups operators really have: each works, or is one clear error.

known_hosts with markers and hashes, ssh-agent certificates, the `none` method (an in-process
paramiko server on 127.0.0.1), ssh_config keywords paramiko cannot honour, a failing
ProxyCommand, and local:// pointed at a remote docker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shlex
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from driftcheck import allowlist
from driftcheck.errors import ManifestError, ObservationError
from driftcheck.inventory import load_inventory, paramiko_unhonoured
from driftcheck.records import Output
from driftcheck.transport import LocalRunner, ParamikoRunner, paramiko_login
from driftcheck.transport.known_hosts import KnownHosts, fingerprint, parse_known_hosts
from driftcheck.transport.local_runner import docker_over_ssh
from tests.unit.test_runners import host_config


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def line(hosts: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker + ' ' if marker else ''}{hosts} {key.get_name()} {key.get_base64()}\n"


def hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def known_hosts(tmp_path: Path, text: str, **overrides: object) -> tuple[Path, KnownHosts]:
    path = tmp_path / "known_hosts"
    path.write_text(text)
    return path, KnownHosts(host_config("paramiko", known_hosts=str(path), **overrides))


# -- known_hosts, read line by line -------------------------------------------------------------


def test_hashed_names_patterns_and_negations_match_as_in_openssh(tmp_path, keys):
    key = keys[0]
    _, known = known_hosts(tmp_path, "# comment\n\nnot a key line\n@unknown-marker x y z\n"
                           + line(hashed("[db.example.com]:2222"), key)
                           + line("*.example.org,!bad.example.org", key) + line("10.0.0.?", key))
    for name in ("[db.example.com]:2222", "a.example.org", "10.0.0.7"):
        known.verify(key, name, name)
    for name in ("db.example.com", "bad.example.org", "10.0.0.17"):
        with pytest.raises(ObservationError) as info:
            known.verify(key, name, name)
        assert info.value.code == "HOST_KEY_UNKNOWN"


def test_an_unknown_key_names_its_type_fingerprint_and_the_files_read(tmp_path, keys):
    path, known = known_hosts(tmp_path, "")
    with pytest.raises(ObservationError) as info:
        known.verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")
    message = info.value.message
    assert keys[0].get_name() in message and fingerprint(keys[0]) in message and str(path) in message
    assert fingerprint(keys[0]).startswith("SHA256:") and not fingerprint(keys[0]).endswith("=")


def test_a_changed_key_names_the_file_and_line_of_the_entry(tmp_path, keys):
    path, known = known_hosts(tmp_path, line("other", keys[0]) + line("[127.0.0.1]:2222", keys[0]))
    with pytest.raises(ObservationError) as info:
        known.verify(keys[1], "[127.0.0.1]:2222", "127.0.0.1:2222")
    assert info.value.code == "HOST_KEY_MISMATCH" and f"{path}:2" in info.value.message


def test_a_revoked_key_is_refused_naming_its_line_even_when_also_listed(tmp_path, keys):
    path, known = known_hosts(tmp_path, line("[127.0.0.1]:2222", keys[0]) + line("*", keys[0], "@revoked"))
    with pytest.raises(ObservationError) as info:
        known.verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")
    assert info.value.code == "HOST_KEY_MISMATCH" and f"@revoked in {path}:2" in info.value.message
    _, accepting = known_hosts(tmp_path, line("*", keys[0], "@revoked"), host_key_policy="accept-new")
    with pytest.raises(ObservationError):
        accepting.verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")  # never learnt either
    assert "[127.0.0.1]:2222" not in path.read_text()


def test_a_cert_authority_for_the_host_is_a_clear_error_even_under_accept_new(tmp_path, keys):
    path, known = known_hosts(tmp_path, line("[127.0.0.1]:*", keys[1], "@cert-authority"),
                              host_key_policy="accept-new")
    with pytest.raises(ObservationError) as info:
        known.verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")
    assert info.value.code == "HOST_KEY_UNKNOWN"
    assert "paramiko cannot verify host certificates; use connection: ssh://" in info.value.message
    assert path.read_text().count("\n") == 1


def test_parsing_is_bounded_and_skips_what_it_cannot_read(tmp_path, keys):
    text = "x" * 20000 + "\n" + "host ssh-ed25519 !!notbase64!!\n" + "@revoked\n" + line("h", keys[0])
    entries = parse_known_hosts(text, "kh")
    assert [(e.line, e.hosts) for e in entries] == [(4, "h")]


# -- the inventory refuses what paramiko would ignore ---------------------------------------------


def inventory(tmp_path: Path, **entry: str) -> Path:
    path = tmp_path / "hosts.yaml"
    fields = {"connection": "paramiko://deploy@db.example.com", **entry}
    path.write_text("hosts:\n  h:\n" + "".join(f"    {k}: {v}\n" for k, v in fields.items()))
    return path


@pytest.mark.parametrize(("config", "keyword"), [
    ("Host db.example.com\n  ProxyJump bastion\n", "ProxyJump"),
    ("Include ~/.ssh/config.d/*\n", "Include"),
    ("Match exec \"touch {marker}\"\n  User x\n", "Match"),
    ("Host *\n  IdentityAgent ~/.1password/agent.sock\n", "IdentityAgent"),
    ("Host db.*\n  HostKeyAlias other\n", "HostKeyAlias"),
    ("CanonicalizeHostname yes\n", "CanonicalizeHostname"),
    ("Host db.example.com\n  RemoteCommand docker rm -f x\n", "RemoteCommand"),
    ("Host *\n  proxyjump=bastion\n", "ProxyJump"),
])
def test_ssh_config_keywords_paramiko_cannot_honour_are_refused_at_load(tmp_path, config, keyword):
    marker = tmp_path / "ran"
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(config.format(marker=marker))
    with pytest.raises(ManifestError) as info:
        load_inventory(inventory(tmp_path, ssh_config=str(ssh_config)), "hosts.yaml")
    assert info.value.code == "INVENTORY_INVALID"
    assert f"{ssh_config} line" in str(info.value) and keyword in str(info.value) and "ssh://" in str(info.value)
    with pytest.raises(ManifestError):  # offline (make validate) too
        load_inventory(inventory(tmp_path, ssh_config=str(ssh_config)), "hosts.yaml", check_files=False)
    # The runner checks again before paramiko looks anything up: a `Match exec` never runs.
    with pytest.raises(ObservationError) as error:
        paramiko_login.resolve(host_config("paramiko", hostname="db.example.com", ssh_config=str(ssh_config)))
    assert error.value.code == "INVENTORY_INVALID" and not marker.exists()


def test_keywords_for_other_hosts_and_honoured_keywords_pass(tmp_path):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host bastion\n  ProxyJump jump\n  IdentityAgent x\nHost * !db.example.com\n"
                          "  ProxyJump jump\nHost db.example.com\n  HostName 10.0.0.5\n  User ops\n  Port 2200\n"
                          "  IdentityFile ~/k\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n")
    assert paramiko_unhonoured(str(ssh_config), "db.example.com") is None
    assert "ProxyJump" in (paramiko_unhonoured(str(ssh_config), "bastion") or "")
    load_inventory(inventory(tmp_path, ssh_config=str(ssh_config)), "hosts.yaml")
    target = paramiko_login.resolve(host_config("paramiko", hostname="db.example.com", port=None,
                                                ssh_config=str(ssh_config)))
    assert target.identities_only and target.hostname == "10.0.0.5"


def test_a_missing_known_hosts_is_refused_at_load_unless_accept_new_may_create_it(tmp_path):
    with pytest.raises(ManifestError) as info:
        load_inventory(inventory(tmp_path, known_hosts="missing"), "hosts.yaml")
    assert info.value.code == "INVENTORY_INVALID" and "missing is not an existing file" in str(info.value)
    load_inventory(inventory(tmp_path, known_hosts="missing", host_key_policy="accept-new"), "hosts.yaml")
    with pytest.raises(ManifestError):
        load_inventory(inventory(tmp_path, known_hosts="nofolder/kh", host_key_policy="accept-new"), "hosts.yaml")
    (tmp_path / "kh").write_text("")
    load_inventory(inventory(tmp_path, known_hosts="kh"), "hosts.yaml")


# -- a ProxyCommand that fails says why ------------------------------------------------------------


def test_a_failing_proxy_command_is_quoted_at_once(tmp_path):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n  ProxyCommand sh -c 'echo \"ssh: Could not resolve hostname bastion: Name or "
                          "service not known\" >&2; exit 255'\n")
    known = tmp_path / "kh"
    known.write_text("")
    started = time.monotonic()
    with pytest.raises(ObservationError) as info:
        ParamikoRunner(host_config("paramiko", ssh_config=str(ssh_config), known_hosts=str(known),
                                   timeout=5)).run(allowlist.PS_ARGV)
    assert time.monotonic() - started < 3
    assert info.value.code == "HOST_UNREACHABLE"
    assert "exited (status 255)" in info.value.message and "Could not resolve hostname bastion" in info.value.message


# -- the `none` method, against an in-process server ---------------------------------------------


class Server(paramiko.ServerInterface):
    """Accepts `none` (as Tailscale SSH does), or only publickey; answers every exec with PS."""

    def __init__(self, accept_none: bool):
        self.accept_none = accept_none
        self.commands: list[str] = []

    def get_allowed_auths(self, username):
        return "none" if self.accept_none else "publickey"

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL if self.accept_none and username == "deploy" else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        self.commands.append(command.decode())

        def answer():
            time.sleep(0.1)  # after paramiko has sent the exec request's success reply
            channel.sendall(b"[CONTAINER ID,...]\n")
            channel.send_exit_status(0)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


@pytest.fixture
def server(request, tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    host_key = paramiko.ECDSAKey.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    interface = Server(accept_none=request.param)
    transports: list[paramiko.Transport] = []

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        transport = paramiko.Transport(conn)
        transports.append(transport)
        transport.add_server_key(host_key)
        transport.start_server(server=interface)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    yield host_config("paramiko", port=port, known_hosts=str(known)), interface
    listener.close()
    thread.join(5)
    for transport in transports:
        transport.close()


@pytest.mark.parametrize("server", [True], indirect=True)
def test_a_server_that_accepts_none_is_reached_with_no_key(server):
    config, interface = server
    runner = ParamikoRunner(config)
    try:
        assert runner.run(allowlist.PS_ARGV) == Output(0, b"[CONTAINER ID,...]\n", b"")
    finally:
        runner.close()
    assert interface.commands == [shlex.join(allowlist.PS_ARGV)]


@pytest.mark.parametrize("server", [False], indirect=True)
def test_a_server_that_refuses_none_goes_on_to_keys(server):
    config, interface = server
    with pytest.raises(ObservationError) as info:
        ParamikoRunner(config).run(allowlist.PS_ARGV)
    assert info.value.code == "AUTH_FAILED" and "no key to log in" in info.value.message
    assert interface.commands == []


# -- local:// never goes over SSH ----------------------------------------------------------------


def docker_folder(tmp_path: Path, current: str | None, host: str) -> dict[str, str]:
    folder = tmp_path / "docker"
    meta = folder / "contexts" / "meta" / hashlib.sha256(b"remote").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "remote", "Endpoints": {"docker": {"Host": host}}}))
    (folder / "config.json").write_text(json.dumps({"currentContext": current} if current else {}))
    return {"DOCKER_CONFIG": str(folder)}


def test_docker_over_ssh_is_found_in_docker_host_and_contexts(tmp_path):
    assert docker_over_ssh({"DOCKER_HOST": "ssh://me@far"}) == "DOCKER_HOST=ssh://me@far"
    assert docker_over_ssh({"DOCKER_HOST": "unix:///run/docker.sock"}) is None
    env = docker_folder(tmp_path, "remote", "ssh://me@far")
    assert "docker context 'remote'" in (docker_over_ssh(env) or "")
    assert docker_over_ssh({**env, "DOCKER_HOST": "unix:///x"}) is None  # DOCKER_HOST wins over config.json
    assert docker_over_ssh({**env, "DOCKER_CONTEXT": "default"}) is None
    assert docker_over_ssh({**env, "DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///x"})  # DOCKER_CONTEXT wins
    assert docker_over_ssh({"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_local_refuses_docker_over_ssh_before_any_command(tmp_path, monkeypatch):
    ran = tmp_path / "ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\ntouch {ran}\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@far")
    with pytest.raises(ObservationError) as info:
        LocalRunner(host_config()).run(allowlist.PS_ARGV)
    assert info.value.code == "DOCKER_UNAVAILABLE" and "connection: ssh://" in info.value.message
    assert not ran.exists()


def test_local_with_dockerd_down_speaks_of_this_machine(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at "
                                    "unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    with pytest.raises(ObservationError) as info:
        LocalRunner(host_config()).run(allowlist.PS_ARGV)
    assert info.value.code == "DOCKER_UNAVAILABLE" and "SSH" not in info.value.message
    assert "this machine" in info.value.message


RELAY = """import os, socket, sys, threading
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := conn.recv(65536):
    os.write(1, data)
"""


def relay_config(tmp_path: Path) -> Path:
    """An ssh config whose ProxyCommand relays to %h %p (a netcat in Python)."""
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(f"Host *\n  ProxyCommand {sys.executable} {relay} %h %p\n")
    return ssh_config


@pytest.mark.parametrize("server", [True], indirect=True)
def test_a_working_proxy_command_carries_the_connection_and_ends_with_it(server, tmp_path):
    config, _ = server
    runner = ParamikoRunner(replace(config, ssh_config=str(relay_config(tmp_path))))
    assert runner.run(allowlist.PS_ARGV).rc == 0
    ssh = runner.connection
    proxy = paramiko_login._PROXIES[ssh]
    runner.close()
    assert proxy.process.returncode is not None and ssh not in paramiko_login._PROXIES
