"""Opening one paramiko connection: TCP (or ProxyCommand), banner, key exchange, host key, login.

All of it shares one deadline, the host's timeout (paramiko bounds each phase on its own, so a
server slow in every phase could take three times as long). The ssh config is read only when
hosts.yaml names one, and only for HostName, User, Port, IdentityFile and ProxyCommand: host-key
settings come from hosts.yaml alone. Every failure leaves here as one ObservationError.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

import paramiko

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import HostConfig
from driftcheck.transport.known_hosts import KnownHosts, key_name
from driftcheck.transport.paramiko_keys import log_in

#: paramiko's transport thread logs its failures (tracebacks included) and every auth step;
#: they are translated into one ObservationError each, so its log goes nowhere.
SILENT_LOG = "driftcheck.transport.paramiko"
logging.getLogger(SILENT_LOG).addHandler(logging.NullHandler())
logging.getLogger(SILENT_LOG).propagate = False


@dataclass(frozen=True)
class Target:
    """Where to connect and as whom, after the ssh config (if hosts.yaml names one)."""

    #: address to connect to
    hostname: str
    port: int
    #: None: the local user
    username: str | None
    #: identity_file, else the ssh config's IdentityFile; empty: the agent, then the default keys
    key_files: tuple[str, ...]
    #: the ssh config's ProxyCommand, None to connect directly
    proxy_command: str | None

    @property
    def where(self) -> str:
        return f"{self.hostname}:{self.port}"


def resolve(config: HostConfig) -> Target:
    hostname, port, user = config.hostname or "", 22, config.user
    key_files: tuple[str, ...] = ()
    proxy: str | None = None
    if config.ssh_config:
        try:
            found = paramiko.SSHConfig.from_path(config.ssh_config).lookup(hostname)
            hostname = _text(found.get("hostname")) or hostname
            user = user or _text(found.get("user"))
            port = int(_text(found.get("port")) or port)
        except (OSError, ValueError, paramiko.SSHException) as exc:
            raise ObservationError(config.name, codes.HOST_UNREACHABLE, f"cannot use the ssh config "
                                   f"{config.ssh_config}: {one_line(str(exc)) or type(exc).__name__}") from exc
        identities = found.get("identityfile") or []
        key_files = tuple(os.path.expanduser(p) for p in ([identities] if isinstance(identities, str) else identities))
        command = _text(found.get("proxycommand"))
        proxy = command if command and command.lower() != "none" else None
    if config.port:
        port = config.port
    if config.identity_file:
        key_files = (config.identity_file,)
    return Target(hostname, port, user, key_files, proxy)


def _text(value: str | list[str] | None) -> str | None:
    return value[0] if isinstance(value, list) else value


class _Watchdog:
    """Cuts a connection attempt that outlives its deadline (paramiko then fails at once)."""

    def __init__(self, sock: socket.socket | paramiko.ProxyCommand, seconds: float):
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


def open_connection(config: HostConfig) -> paramiko.Transport:
    """A logged-in paramiko Transport to the host, within the host's timeout, or an ObservationError."""
    target = resolve(config)
    known = KnownHosts(config)
    started = time.monotonic()
    sock: socket.socket | paramiko.ProxyCommand
    try:
        if target.proxy_command:
            sock = paramiko.ProxyCommand(target.proxy_command)
        else:
            sock = socket.create_connection((target.hostname, target.port), config.timeout)
    except (OSError, EOFError, ValueError, paramiko.SSHException) as exc:
        raise _connect_error(config, target, exc, timed_out=False) from exc
    watchdog = _Watchdog(sock, config.timeout - (time.monotonic() - started))
    ssh: paramiko.Transport | None = None
    try:
        ssh = paramiko.Transport(sock)
        ssh.set_log_channel(SILENT_LOG)
        ssh.banner_timeout = ssh.auth_timeout = ssh.channel_timeout = config.timeout
        name = key_name(target.hostname, target.port)
        known.prefer_known_type(ssh, name)
        ssh.start_client(timeout=max(config.timeout - (time.monotonic() - started), 0.001))
        known.verify(ssh.get_remote_server_key(), name, target.where)
        log_in(ssh, config, target.username, target.key_files, target.where)
        if watchdog.fired.is_set():
            raise TimeoutError("the connection was cut at the deadline")
    except (ObservationError, paramiko.SSHException, OSError, EOFError) as exc:
        _close(ssh, sock)
        if isinstance(exc, ObservationError) and not watchdog.fired.is_set():
            raise
        raise _connect_error(config, target, exc, timed_out=watchdog.fired.is_set()) from exc
    finally:
        watchdog.cancel()
    return ssh


def _close(ssh: paramiko.Transport | None, sock: socket.socket | paramiko.ProxyCommand) -> None:
    if ssh is not None:
        ssh.close()
    try:
        sock.close()  # paramiko leaves it open when the handshake never began
    except OSError:
        pass  # a ProxyCommand that has already exited


def _connect_error(config: HostConfig, target: Target, exc: BaseException, timed_out: bool) -> ObservationError:
    """Translate a failed connect into one actionable error (third-party exceptions end here)."""
    where = target.where
    if timed_out or isinstance(exc, TimeoutError):
        return ObservationError(config.name, codes.HOST_UNREACHABLE, f"connecting to {where} did not complete within "
                                f"{config.timeout:g}s (TCP, SSH banner and login together); is sshd answering on "
                                "that port?")
    if isinstance(exc, socket.gaierror):
        return ObservationError(config.name, codes.HOST_UNREACHABLE, f"name {target.hostname} not found; check "
                                "the connection URL, or MagicDNS if it is a Tailscale name")
    if isinstance(exc, ConnectionRefusedError):
        return ObservationError(config.name, codes.HOST_UNREACHABLE, f"{where} refused the connection; is sshd "
                                "running there, and is the port right?")
    detail = one_line(str(exc)) or type(exc).__name__
    return ObservationError(config.name, codes.HOST_UNREACHABLE, f"cannot reach {where}: {detail}; check the "
                            "address, the port and that sshd runs there")
