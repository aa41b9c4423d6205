"""paramiko://: commands over one in-process SSH connection per host, each bounded by the host's timeout.

Composes paramiko directly (a Transport over a socket or ProxyCommand, see paramiko_login), not
testinfra's paramiko backend, which accepts unknown host keys, reads ~/.ssh/config uninvited,
has no per-command timeout, re-runs a command after an SSH error and logs command output.

A command cut short (its timeout, the output cap, a Ctrl-C or SIGTERM of the run, close() while
it runs) is ended on the host too: closing a channel alone leaves it running there, re-parented
to init, since sshd hangs up only a session with a pty, and a pty would mix stderr into stdout
and rewrite line ends. So the channel first carries RFC 4254's "signal" request (OpenSSH's sshd
honours it since 7.9: killpg of the command's process group as the user), TERM and then KILL.
A connection that is already lost can carry nothing: what it ran ends by itself, or when it next writes.
"""

from __future__ import annotations

import select
import shlex
import socket
import threading
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

#: SSH_MSG_CHANNEL_REQUEST (RFC 4254 5.4)
MSG_CHANNEL_REQUEST = bytes([98])
#: after TERM, how long a timed-out command may take to exit before KILL follows
TERM_GRACE = 0.5


class ParamikoRunner:
    """One SSH connection to one host, opened on first use; a failure is reported once, never retried."""

    def __init__(self, config: HostConfig):
        self.config = config
        self.host = config.name
        #: the open connection, None before the first command and after close()
        self.connection: paramiko.Transport | None = None
        #: the channels whose command is running now (close() ends them on the host)
        self._running: set[paramiko.Channel] = set()
        self._lock = threading.Lock()

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
        chan: paramiko.Channel | None = None
        try:
            chan = ssh.open_session(timeout=cfg.timeout)
            with self._lock:
                self._running.add(chan)
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
                    end_remote(chan, TERM_GRACE)
                    raise too_much_output(cfg)
                if time.monotonic() >= deadline:
                    end_remote(chan, TERM_GRACE)
                    raise timed_out(cfg, command)
            rc = chan.recv_exit_status()
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
        except ObservationError:
            raise  # a timeout or the output cap: its command was ended already
        except BaseException:
            if chan is not None:
                end_remote(chan, 0)  # Ctrl-C or SIGTERM of the run: no grace, the run is ending
            raise
        finally:
            if chan is not None:
                with self._lock:
                    self._running.discard(chan)
                chan.close()
        return Output(rc, bytes(out), bytes(err))

    def close(self) -> None:
        """End every command still running (another thread's), then the connection."""
        with self._lock:
            running, self._running = list(self._running), set()
        for chan in running:
            end_remote(chan, 0)
        ssh, self.connection = self.connection, None
        if ssh is not None:
            sock = getattr(ssh, "sock", None)
            if isinstance(sock, socket.socket):
                # The FIN now: paramiko's own thread holds the socket open until it next wakes (0.1 s
                # later, or more on a busy machine), and --max-connections counts connections open.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            ssh.close()
            close_proxy(ssh)


def send_signal(chan: paramiko.Channel, name: str) -> None:
    """RFC 4254 6.9: deliver signal `name` ("TERM", "KILL") to the channel's command; no reply is asked."""
    message = paramiko.Message()
    message.add_byte(MSG_CHANNEL_REQUEST)
    message.add_int(chan.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    chan.transport._send_user_message(message)


def end_remote(chan: paramiko.Channel, grace: float) -> None:
    """End a command that is still running on the host: TERM, up to grace seconds to exit, then KILL.

    A server without the signal request ignores it (want-reply is false); a lost connection
    carries nothing. Neither is an error here: the caller is already failing the command.
    """
    try:
        if chan.closed or chan.exit_status_ready():
            return
        send_signal(chan, "TERM")
        deadline = time.monotonic() + grace
        while not chan.exit_status_ready() and not chan.closed and time.monotonic() < deadline:
            select.select([chan], [], [], max(min(deadline - time.monotonic(), 0.05), 0))
            # What it prints while dying is not wanted, but must not fill the window; one chunk a
            # turn, so a host that never stops printing still meets the deadline.
            if chan.recv_ready():
                chan.recv(65536)
            if chan.recv_stderr_ready():
                chan.recv_stderr(65536)
        if not chan.exit_status_ready() and not chan.closed:
            send_signal(chan, "KILL")
    except (paramiko.SSHException, OSError, EOFError):
        pass
