"""The only door to a host: testinfra backends hardened for a production host.

testinfra's stock paramiko backend accepts unknown host keys, loads no known_hosts, reads
~/.ssh/config uninvited, has no per-command timeout, re-runs a command after an SSH error and
logs every command's output at DEBUG. The subclasses here do none of that: known_hosts is
enforced, every phase is bounded by the host's timeout, a failure is reported once and never
retried, nothing is logged, and every command passes the read-only allowlist first.
"""

from __future__ import annotations

import os
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paramiko
import testinfra.host
from testinfra.backend import base
from testinfra.backend.local import LocalBackend
from testinfra.backend.paramiko import ParamikoBackend

from driftcheck.allowlist import check_command
from driftcheck.errors import ConnectionDropped, ObservationError, one_line
from driftcheck.inventory import HostConfig

#: Output beyond this is not a docker inspect of a sane host; stop reading instead of filling memory.
MAX_OUTPUT = 256 * 1024 * 1024
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
#: A lost connection is re-established at most this often per host and run.
MAX_RECONNECTS = 1


@dataclass(frozen=True)
class Output:
    """What one remote command returned."""

    #: exit status
    rc: int
    #: raw standard output (never logged)
    stdout: bytes
    #: raw standard error
    stderr: bytes


class _UnknownHostKey(paramiko.SSHException):
    pass


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """strict: an unknown host key is an error."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(f"{hostname} presented an unknown {key.get_name()} host key")


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """accept-new: record a first-seen key in known_hosts (as OpenSSH does); a changed key still fails."""

    def __init__(self, path: str):
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        with open(self.path, "a", encoding="ascii") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class _Watchdog:
    """Cuts a connection attempt that outlives its deadline (paramiko then fails at once)."""

    def __init__(self, sock: Any, seconds: float):
        self.sock = sock
        self.fired = threading.Event()
        self.timer = threading.Timer(max(seconds, 0.0), self._cut)
        self.timer.daemon = True
        self.timer.start()

    def _cut(self) -> None:
        self.fired.set()
        try:
            if isinstance(self.sock, socket.socket):
                self.sock.shutdown(socket.SHUT_RDWR)
            else:
                self.sock.close()  # a ProxyCommand: ends its process
        except OSError:
            pass

    def cancel(self) -> None:
        self.timer.cancel()
        self.timer.join()


def _connect_error(cfg: HostConfig, where: str, settings: dict[str, Any], exc: BaseException,
                   timed_out: bool) -> ObservationError:
    """Translate a failed connect into one actionable error (third-party exceptions end here)."""
    if timed_out or isinstance(exc, TimeoutError):
        return ObservationError(cfg.name, "HOST_UNREACHABLE", f"connecting to {where} did not complete within "
                                f"{cfg.timeout:g}s (TCP, SSH banner and login together); is sshd answering on "
                                "that port?")
    if isinstance(exc, _UnknownHostKey):
        return ObservationError(cfg.name, "HOST_KEY_UNKNOWN", f"{exc}; add it to known_hosts after checking its "
                                "fingerprint, or set host_key_policy: accept-new")
    if isinstance(exc, paramiko.BadHostKeyException):
        return ObservationError(cfg.name, "HOST_KEY_MISMATCH", f"{where} presented a {exc.key.get_name()} host "
                                "key that differs from known_hosts; if the host was rebuilt, replace the entry")
    if isinstance(exc, paramiko.AuthenticationException):
        return ObservationError(cfg.name, "AUTH_FAILED", f"{where} refused the login of "
                                f"{settings['username'] or 'the local user'}: {one_line(str(exc))}; check "
                                "the user and identity_file, and the key in the user's authorized_keys")
    if isinstance(exc, paramiko.SSHException) and "No authentication methods available" in str(exc):
        return ObservationError(cfg.name, "AUTH_FAILED", f"no key to log in to {where} with: set "
                                "identity_file, or add a key to ssh-agent")
    if isinstance(exc, socket.gaierror):
        return ObservationError(cfg.name, "HOST_UNREACHABLE", f"name {settings['hostname']} not found; check "
                                "the connection URL, or MagicDNS if it is a Tailscale name")
    if isinstance(exc, ConnectionRefusedError):
        return ObservationError(cfg.name, "HOST_UNREACHABLE", f"{where} refused the connection; is sshd "
                                "running there, and is the port right?")
    detail = one_line(str(exc)) or type(exc).__name__
    return ObservationError(cfg.name, "HOST_UNREACHABLE", f"cannot reach {where}: {detail}; check the "
                            "address, the port and that sshd runs there")


def _no_log_result(backend: base.BaseBackend, rc: int, cmd: bytes, stdout: bytes, stderr: bytes) -> base.CommandResult:
    # testinfra's BaseBackend.result() logs the whole result (stdout included) at DEBUG.
    return base.CommandResult(backend=backend, exit_status=rc, command=cmd, _stdout=stdout, _stderr=stderr)


class StrictParamikoBackend(ParamikoBackend):
    """paramiko backend with known_hosts enforced, bounded phases and no silent retry."""

    NAME = "paramiko"

    def __init__(self, config: HostConfig):
        spec = config.hostname or ""
        if ":" in spec:
            spec = f"[{spec}]"
        if config.port:
            spec = f"{spec}:{config.port}"
        if config.user:
            spec = f"{config.user}@{spec}"
        # testinfra's own timeout (an int, connect only) is unused: self.client applies config.timeout
        # to every phase.
        super().__init__(spec, ssh_config=config.ssh_config, ssh_identity_file=config.identity_file)
        self.config = config
        self._client: paramiko.SSHClient | None = None

    def get_encoding(self) -> str:
        # The stock implementation runs `python3 -c ...` on the host: not on the allowlist.
        return "utf-8"

    def result(self, rc: int, cmd: bytes, stdout: Any, stderr: Any) -> base.CommandResult:
        return _no_log_result(self, rc, cmd, stdout, stderr)

    def _settings(self) -> dict[str, Any]:
        cfg = self.config
        settings: dict[str, Any] = {"hostname": cfg.hostname, "port": 22, "username": cfg.user}
        if cfg.ssh_config:
            ssh_config = paramiko.SSHConfig.from_path(cfg.ssh_config)
            found = ssh_config.lookup(cfg.hostname or "")
            # Host-key settings in ssh config are ignored on purpose: they come from hosts.yaml only.
            settings["hostname"] = found.get("hostname", cfg.hostname)
            if "user" in found and cfg.user is None:
                settings["username"] = found["user"]
            if "port" in found:
                settings["port"] = int(found["port"])
            if "identityfile" in found and cfg.identity_file is None:
                settings["key_filename"] = [os.path.expanduser(p) for p in found["identityfile"]]
            if "proxycommand" in found and found["proxycommand"].lower() != "none":
                settings["sock"] = paramiko.ProxyCommand(found["proxycommand"])
        if cfg.port:
            settings["port"] = cfg.port
        if cfg.identity_file:
            settings["key_filename"] = cfg.identity_file
        return settings

    @property
    def client(self) -> paramiko.SSHClient:  # type: ignore[override]
        # Not functools.cached_property: before Python 3.12 it holds one lock for every instance,
        # which would make hosts connect one after another instead of concurrently.
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> paramiko.SSHClient:
        cfg = self.config
        client = paramiko.SSHClient()
        if cfg.known_hosts is not None:
            if os.path.exists(cfg.known_hosts):
                client.load_host_keys(cfg.known_hosts)
            learn_into = cfg.known_hosts
        else:
            client.load_system_host_keys()
            if os.path.exists(SYSTEM_KNOWN_HOSTS):
                client.load_system_host_keys(SYSTEM_KNOWN_HOSTS)
            learn_into = os.path.expanduser("~/.ssh/known_hosts")
        if cfg.host_key_policy == "accept-new":
            client.set_missing_host_key_policy(_AcceptNew(learn_into))
        else:
            client.set_missing_host_key_policy(_RejectUnknown())
        settings = self._settings()
        where = f"{settings['hostname']}:{settings['port']}"
        started = time.monotonic()
        try:
            if "sock" not in settings:
                settings["sock"] = socket.create_connection((settings["hostname"], settings["port"]), cfg.timeout)
        except (OSError, EOFError) as exc:
            raise _connect_error(cfg, where, settings, exc, timed_out=False) from exc
        # One deadline for TCP, banner, key exchange and authentication together: paramiko bounds
        # each phase on its own, so a server that answers slowly in every phase could take 3x.
        watchdog = _Watchdog(settings["sock"], cfg.timeout - (time.monotonic() - started))
        try:
            client.connect(
                **settings,
                timeout=cfg.timeout, banner_timeout=cfg.timeout, auth_timeout=cfg.timeout,
                channel_timeout=cfg.timeout, look_for_keys="key_filename" not in settings,
                allow_agent=True,
            )
            if watchdog.fired.is_set():
                raise TimeoutError("the connection was cut at the deadline")
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise _connect_error(cfg, where, settings, exc, timed_out=watchdog.fired.is_set()) from exc
        finally:
            watchdog.cancel()
        return client

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        cfg = self.config
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionDropped(cfg.name, f"the SSH connection was lost before `{_short(command)}`; "
                                    "check the host's sshd and the network")
        deadline = time.monotonic() + cfg.timeout
        try:
            chan = transport.open_session(timeout=cfg.timeout)
            chan.exec_command(command)
            out, err = bytearray(), bytearray()
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if len(out) + len(err) > MAX_OUTPUT:
                    chan.close()
                    raise ObservationError(cfg.name, "OBSERVATION_INVALID", "docker printed more than "
                                           f"{MAX_OUTPUT // (1024 * 1024)} MiB; is the remote `docker` the "
                                           "Docker CLI?")
                if chan.exit_status_ready() and chan.eof_received and not chan.recv_ready() \
                        and not chan.recv_stderr_ready():
                    break
                if chan.closed or not transport.is_active():
                    raise paramiko.SSHException("the channel closed without an exit status")
                left = deadline - time.monotonic()
                if left <= 0:
                    chan.close()
                    raise _timed_out(cfg, command)
                select.select([chan], [], [], min(left, 0.5))
            rc = chan.recv_exit_status()
            chan.close()
            if rc == -1:
                raise paramiko.SSHException("the channel closed without an exit status")
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if transport.is_active() and time.monotonic() >= deadline:
                raise ObservationError(cfg.name, "TIMEOUT", f"opening a channel for `{_short(command)}` took "
                                       f"longer than {cfg.timeout:g}s (the host's timeout); is sshd overloaded?"
                                       ) from exc
            raise ConnectionDropped(cfg.name, f"the SSH connection was lost during `{_short(command)}`: "
                                    f"{one_line(str(exc)) or type(exc).__name__}; check the host's sshd "
                                    "and the network") from exc
        return rc, bytes(out), bytes(err)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        command = self.get_command(command, *args)
        check_command(command)
        cmd = command.encode("utf-8")
        rc, stdout, stderr = self._exec_command(cmd)
        return self.result(rc, cmd, stdout, stderr)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class GuardedLocalBackend(LocalBackend):
    """local:// backend: no shell, the allowlist first, the host's timeout on every command."""

    def __init__(self, config: HostConfig):
        super().__init__()
        self.config = config

    def get_encoding(self) -> str:
        return "utf-8"

    def result(self, rc: int, cmd: bytes, stdout: Any, stderr: Any) -> base.CommandResult:
        return _no_log_result(self, rc, cmd, stdout, stderr)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        command = self.get_command(command, *args)
        argv = check_command(command)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=self.config.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise _timed_out(self.config, command.encode()) from exc
        except FileNotFoundError:
            return self.result(127, command.encode(), b"", b"docker: command not found")
        return self.result(done.returncode, command.encode(), done.stdout, done.stderr)

    def close(self) -> None:
        pass


def _timed_out(cfg: HostConfig, command: bytes) -> ObservationError:
    return ObservationError(cfg.name, "TIMEOUT", f"`{_short(command)}` did not finish within {cfg.timeout:g}s "
                            "(the host's timeout); is dockerd responding? Try `docker info` on the host, or raise "
                            "timeout in hosts.yaml")


def _short(command: bytes) -> str:
    text = command.decode("utf-8", "replace")
    return text if len(text) <= 60 else text[:57] + "..."


class Transport:
    """One host's connection: every command is allowlisted, recorded, bounded and translated."""

    def __init__(self, config: HostConfig):
        self.config = config
        #: every command line sent to this host, in order (the plan's read-only record)
        self.commands: list[str] = []
        #: seconds spent talking to this host
        self.seconds = 0.0
        #: connections re-established after a drop (at most MAX_RECONNECTS)
        self.reconnects = 0
        #: set by close(): the run is over for this host
        self.closed = False
        backend: StrictParamikoBackend | GuardedLocalBackend
        if config.scheme == "local":
            backend = GuardedLocalBackend(config)
        else:
            backend = StrictParamikoBackend(config)
        self.backend = backend
        self.host = testinfra.host.Host(backend)

    def run(self, argv: Sequence[str]) -> Output:
        """Send one allowlisted command; raises SafetyViolation or ObservationError.

        A connection lost during a command is re-established once per host and run, and that
        command sent again: every command is read-only, the new connection checks the host key
        under the same policy, and a timeout or a failed login is never retried.
        """
        command = shlex.join(argv)
        check_command(command)  # again in the backend; here it raises before any connection is made
        if self.closed:
            raise ObservationError(self.config.name, "NOT_CHECKED", "the run ended before this host answered; "
                                   "run it again")
        started = time.monotonic()
        try:
            try:
                return self._send(command)
            except ConnectionDropped:
                if self.reconnects >= MAX_RECONNECTS or self.closed:
                    raise
                self.reconnects += 1
                self.backend.close()
                try:
                    return self._send(command)
                except ConnectionDropped as again:
                    raise ConnectionDropped(self.config.name, f"the SSH connection was lost again after one "
                                            f"reconnect, during `{_short(command.encode())}`; check the "
                                            "host's sshd and the network") from again
        finally:
            self.seconds += time.monotonic() - started

    def _send(self, command: str) -> Output:
        if self.config.scheme != "local":
            # Connect first, so a refused connection is not recorded as a command sent.
            self.backend.client  # noqa: B018
        self.commands.append(command)
        result = self.host.run(command)
        return Output(result.rc, result.stdout_bytes, result.stderr_bytes)

    def close(self) -> None:
        """End the connection; a command still waiting (another thread) fails, nothing reconnects."""
        self.closed = True
        self.backend.close()
