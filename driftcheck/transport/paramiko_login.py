"""Opening one paramiko connection: TCP (or ProxyCommand), banner, key exchange, host key, login.

All of it shares one deadline, the host's timeout (paramiko bounds each phase on its own, so a
server slow in every phase could take three times as long). The ssh config is read only when
hosts.yaml names one, and only for HostName, User, Port, IdentityFile, IdentitiesOnly and
ProxyCommand; a keyword paramiko cannot honour (ProxyJump, Include, Match, IdentityAgent, ...) is
refused before paramiko looks anything up (inventory.paramiko_unhonoured), so no `Match exec`
ever runs. Host-key settings come from hosts.yaml alone. Every failure leaves here as one
ObservationError; a ProxyCommand that exits is quoted from its stderr.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import paramiko

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import MAX_SSH_CONFIG, HostConfig, host_matches, paramiko_unhonoured
from driftcheck.localfile import LocalFileError, read_local_text
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
    #: the ssh config's IdentitiesOnly yes (with keys named): ssh-agent's other keys are not offered
    identities_only: bool = False

    @property
    def where(self) -> str:
        return f"{self.hostname}:{self.port}"


def resolve(config: HostConfig) -> Target:
    hostname, port, user = config.hostname or "", 22, config.user
    key_files: tuple[str, ...] = ()
    proxy: str | None = None
    identities_only = False
    text = ""
    if config.ssh_config:
        # Refused at load too; checked again here so that no lookup ever meets a `Match exec`.
        refused = paramiko_unhonoured(config.ssh_config, hostname)
        if refused:
            raise ObservationError(config.name, codes.INVENTORY_INVALID, refused)
        try:
            text = read_local_text(config.ssh_config, MAX_SSH_CONFIG)  # never paramiko's unbounded read
            found = paramiko.SSHConfig.from_text(text).lookup(hostname)
            hostname = _text(found.get("hostname")) or hostname
            user = user or _text(found.get("user"))
            port = int(_text(found.get("port")) or port)
        except (LocalFileError, ValueError, paramiko.SSHException) as exc:
            raise ObservationError(config.name, codes.INVENTORY_INVALID, f"cannot use the ssh config "
                                   f"{config.ssh_config}: {one_line(str(exc)) or type(exc).__name__}; fix it, or "
                                   "point ssh_config in hosts.yaml at another file") from exc
        identities = found.get("identityfile") or []
        key_files = tuple(os.path.expanduser(p) for p in ([identities] if isinstance(identities, str) else identities))
        identities_only = (_text(found.get("identitiesonly")) or "").lower() == "yes"
    if config.port:
        port = config.port
    if config.ssh_config:
        # Expanded here, not by paramiko: its %p would be the ssh config's port, not hosts.yaml's.
        command = raw_value(text, config.hostname or "", "proxycommand")
        if command and command.lower() != "none":
            proxy = expand_tokens(command, config.hostname or "", hostname, port, user)
    if config.identity_file:
        key_files = (config.identity_file,)
    return Target(hostname, port, user, key_files, proxy, identities_only and bool(key_files))


def raw_value(text: str, host: str, keyword: str) -> str | None:
    """The first value of keyword in the blocks of an ssh config (its text) that apply to host, as written."""
    applies = True
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.replace("=", " ", 1).partition(" ")
        if name.lower() == "host":
            applies = host_matches(rest.split(), host)
        elif applies and name.lower() == keyword:
            return rest.strip()
    return None


def expand_tokens(command: str, alias: str, hostname: str, port: int, user: str | None) -> str:
    """%h %p %r %n %u %d %% as OpenSSH expands them in ProxyCommand (others are left as written)."""
    values = {"h": hostname, "p": str(port), "r": user or getpass.getuser(), "n": alias, "u": getpass.getuser(),
              "d": os.path.expanduser("~"), "%": "%"}
    return re.sub(r"%(.)", lambda m: values.get(m.group(1), m.group(0)), command)


def _text(value: str | list[str] | None) -> str | None:
    return value[0] if isinstance(value, list) else value


class Proxy:
    """A ProxyCommand on one end of a socket pair, as OpenSSH runs it.

    Not paramiko.ProxyCommand: its recv spins on a closed pipe until the deadline when the
    command exits, and it never reads the command's stderr. Here paramiko gets a socket (the
    command's exit is an end of file at once) and stderr is kept for the error message.
    """

    def __init__(self, command: str):
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(shlex.split(command), stdin=theirs.fileno(), stdout=theirs.fileno(),
                                            stderr=subprocess.PIPE, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours

    def exited(self, wait: float = 0.0) -> bool:
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stderr_line(self) -> str:
        """The first line the command printed on stderr (bounded, never blocking), or ""."""
        if self.process.stderr is None:
            return ""
        try:
            fd = self.process.stderr.fileno()
            os.set_blocking(fd, False)
            data = os.read(fd, 8192)
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in data.decode("utf-8", "replace").split("\n") if line.strip()]
        if lines and lines[0].startswith("Traceback "):
            return one_line(lines[-1])  # a Python proxy: its exception, not the traceback's header
        return one_line(lines[0]) if lines else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


class _Watchdog:
    """Cuts a connection attempt that outlives its deadline (paramiko then fails at once)."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.sock = sock
        self.fired = threading.Event()
        self.timer = threading.Timer(max(seconds, 0.0), self._cut)
        self.timer.daemon = True
        self.timer.start()

    def _cut(self) -> None:
        self.fired.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
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
    proxy: Proxy | None = None
    try:
        if target.proxy_command:
            proxy = Proxy(target.proxy_command)
            sock = proxy.sock
        else:
            sock = socket.create_connection((target.hostname, target.port), config.timeout)
    except (OSError, EOFError, ValueError, paramiko.SSHException) as exc:
        if target.proxy_command and proxy is None:
            raise _proxy_start_error(config, target, exc) from exc
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
        log_in(ssh, config, target.username, target.key_files, target.where, agent=not target.identities_only)
        if watchdog.fired.is_set():
            raise TimeoutError("the connection was cut at the deadline")
    except (ObservationError, paramiko.SSHException, OSError, EOFError) as exc:
        watchdog.cancel()
        # A proxy that ended the connection has exited by now, or within a moment.
        failed = (_proxy_error(config, target, proxy) if proxy is not None and
                  not isinstance(exc, ObservationError) and proxy.exited(0.5) else None)
        _close(ssh, sock, proxy)
        if failed is not None:
            raise failed from exc
        if isinstance(exc, ObservationError) and not watchdog.fired.is_set():
            raise
        raise _connect_error(config, target, exc, timed_out=watchdog.fired.is_set()) from exc
    finally:
        watchdog.cancel()
    if proxy is not None:
        _PROXIES[ssh] = proxy  # ended with the connection (close_proxy)
    return ssh


#: the ProxyCommand behind each open connection
_PROXIES: dict[paramiko.Transport, Proxy] = {}


def close_proxy(ssh: paramiko.Transport) -> None:
    """End (and reap) the ProxyCommand of a closed connection, if it had one."""
    proxy = _PROXIES.pop(ssh, None)
    if proxy is not None:
        proxy.close()


def _proxy_error(config: HostConfig, target: Target, proxy: Proxy) -> ObservationError:
    """The ProxyCommand ended before the login: quote what it said."""
    said = proxy.stderr_line()
    return ObservationError(config.name, codes.HOST_UNREACHABLE, f"the ssh config's ProxyCommand for {target.where} "
                            f"exited (status {proxy.process.returncode}) before the login: "
                            f"{said or 'it printed nothing on stderr'}; run that command yourself to see why")


def _proxy_start_error(config: HostConfig, target: Target, exc: BaseException) -> ObservationError:
    """The ProxyCommand could not even start (a missing program, unbalanced quotes): say so, not "check the address"."""
    if isinstance(exc, OSError) and exc.strerror:
        why = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        why = one_line(str(exc)) or type(exc).__name__
    return ObservationError(config.name, codes.HOST_UNREACHABLE, f"the ssh config's ProxyCommand for {target.where} "
                            f"cannot start ({one_line(why)}); fix ProxyCommand in {config.ssh_config}, or install "
                            "the program it runs")


def _close(ssh: paramiko.Transport | None, sock: socket.socket, proxy: Proxy | None) -> None:
    if ssh is not None:
        ssh.close()
    try:
        sock.close()  # paramiko leaves it open when the handshake never began
    except OSError:
        pass
    if proxy is not None:
        proxy.close()


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
