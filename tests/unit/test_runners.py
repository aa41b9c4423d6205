"""transport: every runner (canned, local, paramiko), Transport over a runner, the testinfra adapter.

No network: the local runner runs a stub `docker` from a temporary PATH; the paramiko runner is
exercised up to its connect (socket.create_connection replaced) and with fake channels.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from driftcheck import allowlist
from driftcheck.errors import ConnectionDropped, ObservationError, SafetyViolation
from driftcheck.inventory import HostConfig
from driftcheck.records import Output
from driftcheck.transport import (
    RUNNERS,
    CannedRunner,
    LocalRunner,
    ParamikoRunner,
    Transport,
    open_runner,
    paramiko_login,
    paramiko_runner,
)
from driftcheck.transport.known_hosts import KnownHosts
from driftcheck.transport.paramiko_keys import log_in
from driftcheck.transport.testinfra_backend import RunnerBackend, as_testinfra_host

ROOT = Path(__file__).resolve().parents[2]
CID = "a" * 64
INSPECT = (*allowlist.INSPECT_PREFIX, CID)
PS = Output(0, b"[CONTAINER ID,...]\n", b"")
REFUSED = [("docker", "rm", "-f", CID), ("sh", "-c", "id"), ("docker", "inspect", CID), ("docker", "ps")]


def host_config(scheme: str = "local", timeout: float = 5.0, **overrides: object) -> HostConfig:
    fields: dict[str, object] = {
        "name": "h", "scheme": scheme, "hostname": None if scheme == "local" else "127.0.0.1", "user": "deploy",
        "port": None if scheme == "local" else 2222, "identity_file": None, "ssh_config": None,
        "known_hosts": None, "host_key_policy": "strict", "timeout": timeout,
    }
    return HostConfig(**{**fields, **overrides})  # type: ignore[arg-type]


# -- the records module -------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "forbidden"), [
    ("driftcheck.compare", ("paramiko", "testinfra")),
    ("driftcheck.records", ("paramiko", "testinfra", "socket", "subprocess", "select", "threading")),
])
def test_records_and_compare_load_no_io_module(module, forbidden):
    code = f"import {module}, sys; print(sorted(m for m in {forbidden!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


# -- the canned runner --------------------------------------------------------------------------


def test_canned_runner_answers_by_prefix_and_records_calls():
    runner = CannedRunner([(allowlist.PS_ARGV, PS), (allowlist.INSPECT_PREFIX, Output(1, b"[]", b"gone"))])
    assert runner.run(allowlist.PS_ARGV) is PS
    assert runner.run(INSPECT) == Output(1, b"[]", b"gone")
    assert runner.calls == [allowlist.PS_ARGV, INSPECT]
    assert runner.connects == 1


def test_canned_runner_raises_canned_errors_and_complains_of_unanswered_commands():
    dropped = ConnectionDropped("h", "gone")
    runner = CannedRunner([(allowlist.INSPECT_PREFIX, dropped), (allowlist.PS_ARGV, lambda argv: PS)])
    assert runner.run(allowlist.PS_ARGV) is PS
    with pytest.raises(ConnectionDropped):
        runner.run(INSPECT)
    assert not runner.connected
    with pytest.raises(AssertionError, match="no canned answer"):
        runner.run(allowlist.VERSION_ARGV)


# -- the allowlist in every runner --------------------------------------------------------------


@pytest.fixture
def stub_docker(tmp_path, monkeypatch):
    """A `docker` on an otherwise empty PATH: prints its argv (one per line), logs each call."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\necho called >> {log}\n'
                      'if [ "$1" = version ]; then exec /bin/sleep 5; fi\n'
                      'printf "%s\\n" "$@"\necho "to stderr" >&2\nexit "${STUB_RC:-0}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return script, log


def test_every_runner_refuses_before_anything_leaves(stub_docker, monkeypatch):
    _, log = stub_docker

    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(paramiko_login.socket, "create_connection", no_socket)
    runners = [LocalRunner(host_config()), ParamikoRunner(host_config("paramiko")), CannedRunner([((), PS)])]
    for runner in runners:
        for argv in REFUSED:
            with pytest.raises(SafetyViolation):
                runner.run(argv)
    assert not log.exists()
    assert runners[1].connection is None and runners[2].calls == []


@pytest.mark.parametrize("command", ["rm -rf /", "docker rm -f x", "docker inspect x", "id",
                                     "docker ps --all; id", "docker ps --all --no-trunc --format x"])
def test_the_testinfra_adapter_refuses_too(command):
    runner = CannedRunner([((), PS)])
    host = as_testinfra_host(runner)
    with pytest.raises(SafetyViolation):
        host.run(command)
    with pytest.raises(SafetyViolation):
        host.run("docker inspect %s", "x; id")
    assert runner.calls == []


def test_testinfra_modules_and_sudo_are_refused():
    runner = CannedRunner([((), PS)])
    host = as_testinfra_host(runner)
    with pytest.raises(SafetyViolation):
        _ = host.file("/etc/passwd").exists
    with pytest.raises(SafetyViolation):
        _ = host.docker("x").is_running
    with pytest.raises(SafetyViolation), host.sudo():
        host.run(" ".join(allowlist.PS_ARGV))
    assert runner.calls == []
    assert not hasattr(host.backend, "run_local")


def test_the_testinfra_adapter_runs_allowlisted_commands_over_any_runner():
    runner = CannedRunner([(allowlist.INSPECT_PREFIX, Output(0, b"[]\n", b"warn\n"))])
    host = as_testinfra_host(runner)
    result = host.run("docker inspect --type container -- %s", CID)
    assert (result.rc, result.stdout, result.stderr, result.stdout_bytes) == (0, "[]\n", "warn\n", b"[]\n")
    assert runner.calls == [INSPECT]
    assert isinstance(host.backend, RunnerBackend) and host.backend.get_hostname() == "h"


# -- the local runner ---------------------------------------------------------------------------


def test_local_runner_passes_argv_without_a_shell(stub_docker, monkeypatch):
    monkeypatch.setenv("STUB_RC", "3")
    output = LocalRunner(host_config()).run(allowlist.PS_ARGV)
    assert output.rc == 3
    assert output.stdout.decode().splitlines() == list(allowlist.PS_ARGV[1:])  # the format arrived as one word
    assert output.stderr == b"to stderr\n"


def test_local_runner_bounds_a_command_by_the_hosts_timeout(stub_docker):
    started = time.monotonic()
    with pytest.raises(ObservationError) as info:
        LocalRunner(host_config(timeout=0.5)).run(allowlist.VERSION_ARGV)
    assert info.value.code == "TIMEOUT" and "within 0.5s" in info.value.message
    assert time.monotonic() - started < 3


def test_local_runner_without_docker_is_rc_127(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert LocalRunner(host_config()).run(allowlist.PS_ARGV) == Output(127, b"", b"docker: command not found")


def test_local_runner_with_an_unusable_docker_is_docker_unavailable(tmp_path, monkeypatch):
    (tmp_path / "docker").mkdir()  # a folder: found on PATH, cannot be run
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ObservationError) as info:
        LocalRunner(host_config()).run(allowlist.PS_ARGV)
    assert info.value.code == "DOCKER_UNAVAILABLE"


# -- Transport over a runner --------------------------------------------------------------------


def test_transport_records_commands_only_once_connected():
    unreachable = ObservationError("h", "HOST_UNREACHABLE", "refused")
    runner = CannedRunner([((), PS)], connect_error=unreachable)
    transport = Transport(host_config(), runner)
    with pytest.raises(ObservationError):
        transport.run(allowlist.PS_ARGV)
    assert transport.commands == [] and runner.calls == []


def test_transport_refuses_before_connecting():
    runner = CannedRunner([((), PS)])
    transport = Transport(host_config(), runner)
    with pytest.raises(SafetyViolation):
        transport.run(("docker", "rm", CID))
    assert runner.connects == 0 and transport.commands == []


def test_transport_reconnects_once_and_records_both_sends():
    answers = iter([ConnectionDropped("h", "lost"), PS])

    def flaky(argv):
        answer = next(answers)
        if isinstance(answer, ObservationError):
            runner.connected = False
            raise answer
        return answer

    runner = CannedRunner([(allowlist.PS_ARGV, flaky)])
    transport = Transport(host_config(), runner)
    assert transport.run(allowlist.PS_ARGV) is PS
    assert transport.commands == [shlex.join(allowlist.PS_ARGV)] * 2
    assert runner.connects == 2 and transport.reconnects == 1


def test_transport_gives_up_after_a_second_drop_and_after_close():
    runner = CannedRunner([((), ConnectionDropped("h", "lost"))])
    transport = Transport(host_config(), runner)
    with pytest.raises(ConnectionDropped, match="lost again after one reconnect"):
        transport.run(allowlist.PS_ARGV)
    assert len(runner.calls) == 2
    with pytest.raises(ConnectionDropped):
        transport.run(allowlist.PS_ARGV)  # no second reconnect in the same run
    transport.close()
    with pytest.raises(ObservationError) as info:
        transport.run(allowlist.PS_ARGV)
    assert info.value.code == "NOT_CHECKED" and len(runner.calls) == 3


def test_open_runner_picks_a_runner_by_scheme(monkeypatch):
    assert isinstance(open_runner(host_config()), LocalRunner)
    assert isinstance(open_runner(host_config("paramiko")), ParamikoRunner)
    assert isinstance(Transport(host_config("paramiko")).runner, ParamikoRunner)  # nothing connects yet
    with pytest.raises(ObservationError, match="cannot reach telnet://"):
        open_runner(host_config("telnet"))
    monkeypatch.setitem(RUNNERS, "telnet", lambda config: CannedRunner([((), PS)], host=config.name))
    assert isinstance(open_runner(host_config("telnet")), CannedRunner)


# -- the paramiko runner, up to the network -----------------------------------------------------


def test_a_refused_connection_is_host_unreachable(monkeypatch):
    def refused(address, timeout):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(paramiko_login.socket, "create_connection", refused)
    transport = Transport(host_config("paramiko"))
    with pytest.raises(ObservationError) as info:
        transport.run(allowlist.PS_ARGV)
    assert info.value.code == "HOST_UNREACHABLE" and "127.0.0.1:2222 refused the connection" in info.value.message
    assert transport.commands == []


def test_a_server_that_never_speaks_is_cut_at_the_deadline(monkeypatch):
    ours, theirs = paramiko_login.socket.socketpair()  # a peer that never sends a banner; no network
    monkeypatch.setattr(paramiko_login.socket, "create_connection", lambda address, timeout: ours)
    before = set(threading.enumerate())
    started = time.monotonic()
    with pytest.raises(ObservationError) as info:
        ParamikoRunner(host_config("paramiko", timeout=0.5)).run(allowlist.PS_ARGV)
    assert info.value.code == "HOST_UNREACHABLE" and "did not complete within 0.5s" in info.value.message
    assert time.monotonic() - started < 0.5 + 1.0
    theirs.close()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()


def test_the_ssh_config_is_read_only_when_the_inventory_names_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n  HostName elsewhere.invalid\n  User intruder\n")
    target = paramiko_login.resolve(host_config("paramiko"))
    assert (target.hostname, target.port, target.username, target.key_files) == ("127.0.0.1", 2222, "deploy", ())
    named = tmp_path / "ssh_config"
    named.write_text("Host 127.0.0.1\n  HostName localhost\n  User ops\n  Port 2200\n  IdentityFile ~/k1\n"
                     "  ProxyCommand nc %h %p\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    config = host_config("paramiko", user=None, port=None, ssh_config=str(named))
    target = paramiko_login.resolve(config)
    assert (target.hostname, target.port, target.username) == ("localhost", 2200, "ops")
    assert target.key_files == (str(tmp_path / "k1"),) and target.proxy_command == "nc localhost 2200"
    # Host-key settings of the ssh config never apply: known_hosts comes from hosts.yaml alone.
    assert KnownHosts(config).learn_into == str(tmp_path / ".ssh" / "known_hosts")


def test_inventory_settings_win_over_the_ssh_config(tmp_path):
    named = tmp_path / "ssh_config"
    named.write_text("Host *\n  User ops\n  Port 2200\n  IdentityFile ~/k1\n  ProxyCommand none\n")
    config = host_config("paramiko", ssh_config=str(named), identity_file=str(tmp_path / "id"))
    target = paramiko_login.resolve(config)
    assert (target.port, target.username, target.key_files, target.proxy_command) == (
        2222, "deploy", (str(tmp_path / "id"),), None)


# -- host keys ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def test_strict_refuses_an_unknown_key_and_writes_nothing(tmp_path, keys):
    known = tmp_path / "known_hosts"
    with pytest.raises(ObservationError) as info:
        KnownHosts(host_config("paramiko", known_hosts=str(known))).verify(keys[0], "[127.0.0.1]:2222", "x")
    assert info.value.code == "HOST_KEY_UNKNOWN" and "accept-new" in info.value.message
    assert not known.exists()


def test_accept_new_records_a_first_seen_key_and_refuses_a_changed_one(tmp_path, keys):
    (tmp_path / "sub").mkdir()  # the inventory refuses a known_hosts whose folder is missing
    known = tmp_path / "sub" / "known_hosts"
    config = host_config("paramiko", known_hosts=str(known), host_key_policy="accept-new")
    KnownHosts(config).verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")
    recorded = known.read_text()
    assert recorded == f"[127.0.0.1]:2222 {keys[0].get_name()} {keys[0].get_base64()}\n"
    KnownHosts(config).verify(keys[0], "[127.0.0.1]:2222", "127.0.0.1:2222")
    with pytest.raises(ObservationError) as info:
        KnownHosts(config).verify(keys[1], "[127.0.0.1]:2222", "127.0.0.1:2222")
    assert info.value.code == "HOST_KEY_MISMATCH" and f"differs from {known}:1;" in info.value.message
    assert known.read_text() == recorded


def test_a_cert_authority_line_is_skipped_unless_it_names_the_host(tmp_path, keys):
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority *.example.com {keys[0].get_name()} {keys[0].get_base64()}\n"
                     f"[127.0.0.1]:2222 {keys[1].get_name()} {keys[1].get_base64()}\n")
    KnownHosts(host_config("paramiko", known_hosts=str(known))).verify(keys[1], "[127.0.0.1]:2222", "x")
    with pytest.raises(ObservationError) as info:
        KnownHosts(host_config("paramiko", known_hosts=str(known))).verify(keys[1], "db.example.com", "x")
    assert info.value.code == "HOST_KEY_UNKNOWN" and f"@cert-authority in {known}:1" in info.value.message
    assert "ssh://" in info.value.message


# -- login --------------------------------------------------------------------------------------


class RefusingServer:
    """The part of paramiko.Transport a login uses; refuses every key."""

    def __init__(self):
        self.offered: list[str] = []

    def auth_none(self, username):
        raise paramiko.BadAuthenticationType("Bad authentication type", ["publickey"])

    def auth_publickey(self, username, key):
        self.offered.append(f"{username}:{key.get_name()}")
        raise paramiko.AuthenticationException("Authentication failed.")

    def is_authenticated(self):
        return False

    def is_active(self):
        return True


@pytest.fixture
def no_agent_no_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_no_key_at_all_is_auth_failed(no_agent_no_home):
    with pytest.raises(ObservationError) as info:
        log_in(RefusingServer(), host_config("paramiko"), "deploy", (), "127.0.0.1:2222")
    assert info.value.code == "AUTH_FAILED" and "no key to log in to 127.0.0.1:2222" in info.value.message


def test_a_refused_key_is_auth_failed_naming_the_user(tmp_path, no_agent_no_home, keys):
    path = tmp_path / "id_ecdsa"
    keys[0].write_private_key_file(str(path))
    server = RefusingServer()
    with pytest.raises(ObservationError) as info:
        log_in(server, host_config("paramiko"), "deploy", (str(path),), "127.0.0.1:2222")
    assert info.value.code == "AUTH_FAILED" and "refused the login of deploy" in info.value.message
    assert server.offered == [f"deploy:{keys[0].get_name()}"]


def test_default_keys_are_tried_only_without_a_named_key(tmp_path, no_agent_no_home, keys):
    (tmp_path / ".ssh").mkdir()
    keys[1].write_private_key_file(str(tmp_path / ".ssh" / "id_ecdsa"))
    server = RefusingServer()
    with pytest.raises(ObservationError):
        log_in(server, host_config("paramiko"), None, (), "127.0.0.1:2222")
    assert len(server.offered) == 1
    encrypted = tmp_path / "encrypted"
    keys[0].write_private_key_file(str(encrypted), password="correct horse")
    server = RefusingServer()
    with pytest.raises(ObservationError) as info:
        log_in(server, host_config("paramiko"), None, (str(encrypted),), "127.0.0.1:2222")
    assert server.offered == [] and "refused" not in info.value.message
    assert f"{encrypted} is encrypted" in info.value.message and f"(ssh-add {encrypted})" in info.value.message


def test_a_certificate_in_ssh_agent_is_skipped_and_the_next_agent_key_logs_in(no_agent_no_home, monkeypatch, keys):
    # What paramiko's Agent builds for a certificate: an AgentKey without inner_key (issue 2462).
    blob = paramiko.Message()
    blob.add_string("ssh-ed25519-cert-v01@openssh.com")
    blob.add_string(b"\0" * 32)
    certificate = paramiko.AgentKey(None, blob.asbytes())
    assert certificate.inner_key is None

    class Agent:
        def get_keys(self):
            return (certificate, keys[0])

        def close(self):
            pass

    class Server(RefusingServer):
        authenticated = False

        def auth_publickey(self, username, key):
            if key is certificate:
                raise AttributeError("public_blob")  # and paramiko's thread dies with the connection
            self.offered.append(key.get_name())
            self.authenticated = True
            return []

        def is_authenticated(self):
            return self.authenticated

    monkeypatch.setattr(paramiko, "Agent", Agent)
    server = Server()
    log_in(server, host_config("paramiko"), "deploy", (), "127.0.0.1:2222")
    assert server.offered == [keys[0].get_name()]
    monkeypatch.setattr(Agent, "get_keys", lambda self: (certificate,))
    with pytest.raises(ObservationError) as info:
        log_in(Server(), host_config("paramiko"), "deploy", (), "127.0.0.1:2222")
    assert info.value.code == "AUTH_FAILED" and "ssh-ed25519-cert-v01@openssh.com keys were skipped" in \
        info.value.message


# -- the paramiko runner's commands, on fake channels -------------------------------------------


class FakeChannel:
    """A channel that prints `chunk` forever (or nothing, and never exits)."""

    remote_chanid = 0

    def __init__(self, chunk: bytes):
        self.chunk = chunk
        self.closed = False
        self.eof_received = False
        self.read_end, self.write_end = os.pipe()
        #: the SSH requests the runner sends on this channel (the signal that ends its command)
        self.requests: list[bytes] = []
        self.transport = self

    def _send_user_message(self, message):
        self.requests.append(message.asbytes())

    def exec_command(self, command):
        self.command = command

    def recv_ready(self):
        return bool(self.chunk) and not self.closed

    def recv(self, size):
        return self.chunk

    def recv_stderr_ready(self):
        return False

    def exit_status_ready(self):
        return False

    def fileno(self):
        return self.read_end

    def close(self):
        self.closed = True
        os.close(self.read_end)
        os.close(self.write_end)


class FakeConnection:
    def __init__(self, channel: FakeChannel):
        self.channel = channel

    def open_session(self, timeout):
        return self.channel

    def is_active(self):
        return True


@pytest.mark.parametrize(("chunk", "code"), [(b"x" * 65536, "OBSERVATION_INVALID"), (b"", "TIMEOUT")],
                         ids=["too-much-output", "hangs"])
def test_a_command_is_bounded_in_output_and_in_time(monkeypatch, chunk, code):
    monkeypatch.setattr(paramiko_runner, "MAX_OUTPUT", 1024 * 1024)
    channel = FakeChannel(chunk)
    runner = ParamikoRunner(host_config("paramiko", timeout=0.3))
    runner.connection = FakeConnection(channel)  # type: ignore[assignment]
    with pytest.raises(ObservationError) as info:
        runner.run(allowlist.PS_ARGV)
    assert info.value.code == code and channel.closed
    assert channel.command == shlex.join(allowlist.PS_ARGV)
    # ended on the host too: it never exits, so TERM and, after the grace, KILL
    assert [r.endswith(b"signal\x00\x00\x00\x00\x04TERM") for r in channel.requests] == [True, False]
    assert channel.requests[1].endswith(b"\x04KILL")
