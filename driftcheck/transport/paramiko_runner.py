"""paramiko://: commands over one in-process SSH connection per host, each bounded by the host's timeout.

Composes paramiko directly (a Transport over a socket or ProxyCommand, see paramiko_login), not
testinfra's paramiko backend, which accepts unknown host keys, reads ~/.ssh/config uninvited,
has no per-command timeout, re-runs a command after an SSH error and logs command output.
"""

from __future__ import annotations

import select
import shlex
import time
from collections.abc import Sequence

import paramiko

from driftcheck import codes
from driftcheck.allowlist import check_argv
from driftcheck.errors import ConnectionDropped, ObservationError, one_line
from driftcheck.inventory import HostConfig
from driftcheck.records import Output
from driftcheck.transport.base import MAX_OUTPUT, short, timed_out, too_much_output
from driftcheck.transport.paramiko_login import close_proxy, open_connection


class ParamikoRunner:
    """One SSH connection to one host, opened on first use; a failure is reported once, never retried."""

    def __init__(self, config: HostConfig):
        self.config = config
        self.host = config.name
        #: the open connection, None before the first command and after close()
        self.connection: paramiko.Transport | None = None

    def connect(self) -> None:
        # Not functools.cached_property: before Python 3.12 it holds one lock for every instance,
        # which would make hosts connect one after another instead of concurrently.
        if self.connection is None:
            self.connection = open_connection(self.config)

    def run(self, argv: Sequence[str]) -> Output:
        args = list(argv)
        check_argv(args)
        command = shlex.join(args)
        self.connect()
        ssh = self.connection
        if ssh is None or not ssh.is_active():
            raise ConnectionDropped(self.host, f"the SSH connection was lost before `{short(command)}`; "
                                    "check the host's sshd and the network")
        return self._exec(ssh, command)

    def _exec(self, ssh: paramiko.Transport, command: str) -> Output:
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout
        try:
            chan = ssh.open_session(timeout=cfg.timeout)
            chan.exec_command(command)
            out, err = bytearray(), bytearray()
            while True:
                # One chunk per turn, so a host that never stops printing meets the cap and the deadline.
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and chan.eof_received:
                    break
                elif chan.closed or not ssh.is_active():
                    raise paramiko.SSHException("the channel closed without an exit status")
                else:
                    select.select([chan], [], [], max(min(deadline - time.monotonic(), 0.5), 0))
                if len(out) + len(err) > MAX_OUTPUT:
                    chan.close()
                    raise too_much_output(cfg)
                if time.monotonic() >= deadline:
                    chan.close()
                    raise timed_out(cfg, command)
            rc = chan.recv_exit_status()
            chan.close()
            if rc == -1:
                raise paramiko.SSHException("the channel closed without an exit status")
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if ssh.is_active() and time.monotonic() >= deadline:
                raise ObservationError(cfg.name, codes.TIMEOUT, f"opening a channel for `{short(command)}` took "
                                       f"longer than {cfg.timeout:g}s (the host's timeout); is sshd overloaded?"
                                       ) from exc
            raise ConnectionDropped(cfg.name, f"the SSH connection was lost during `{short(command)}`: "
                                    f"{one_line(str(exc)) or type(exc).__name__}; check the host's sshd "
                                    "and the network") from exc
        return Output(rc, bytes(out), bytes(err))

    def close(self) -> None:
        ssh, self.connection = self.connection, None
        if ssh is not None:
            ssh.close()
            close_proxy(ssh)
