"""Transport: the door every caller uses; a Runner underneath does the I/O.

It adds what a run needs on top of any runner: the allowlist before anything connects, the
record of every command sent (the plan's hosts[].commands), the time spent, and one reconnect
after a dropped connection.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence

from driftcheck import codes
from driftcheck.allowlist import check_argv
from driftcheck.errors import ConnectionDropped, DriftError, ObservationError, one_line
from driftcheck.inventory import HostConfig
from driftcheck.records import Output
from driftcheck.transport.base import Runner, short
from driftcheck.transport.runners import open_runner

#: A lost connection is re-established at most this often per host and run.
MAX_RECONNECTS = 1


class Transport:
    """One host's connection: every command is allowlisted, recorded, bounded and translated.

    Itself a Runner, so anything that takes a runner (the testinfra adapter) can take it.
    """

    def __init__(self, config: HostConfig, runner: Runner | None = None):
        self.config = config
        #: what does the I/O: open_runner(config) unless given (a CannedRunner in tests)
        self.runner = runner if runner is not None else open_runner(config)
        #: every command line sent to this host, in order (the plan's read-only record)
        self.commands: list[str] = []
        #: seconds spent talking to this host
        self.seconds = 0.0
        #: connections re-established after a drop (at most MAX_RECONNECTS)
        self.reconnects = 0
        #: set by close(): the run is over for this host
        self.closed = False

    @property
    def host(self) -> str:
        return self.config.name

    def connect(self) -> None:
        self.runner.connect()

    def run(self, argv: Sequence[str]) -> Output:
        """Send one allowlisted command; raises SafetyViolation or ObservationError.

        A connection lost during a command is re-established once per host and run, and that
        command sent again: every command is read-only, the new connection checks the host key
        under the same policy, and a timeout or a failed login is never retried.
        """
        args = tuple(argv)
        check_argv(args)  # again in the runner; here it raises before any connection is made
        command = shlex.join(args)
        if self.closed:
            raise ObservationError(self.config.name, codes.NOT_CHECKED, "the run ended before this host answered; "
                                   "run it again")
        started = time.monotonic()
        try:
            try:
                return self._send(args, command)
            except ConnectionDropped:
                if self.reconnects >= MAX_RECONNECTS or self.closed:
                    raise
                self.reconnects += 1
                self.runner.close()
                try:
                    return self._send(args, command)
                except ConnectionDropped as again:
                    raise ConnectionDropped(self.config.name, f"the SSH connection was lost again after one "
                                            f"reconnect, during `{short(command)}`; check the host's sshd and "
                                            "the network") from again
        finally:
            self.seconds += time.monotonic() - started

    def _send(self, args: tuple[str, ...], command: str) -> Output:
        try:
            # Connect first, so a refused connection is not recorded as a command sent.
            self.runner.connect()
            self.commands.append(command)
            return self.runner.run(args)
        except DriftError:
            raise
        except Exception as exc:
            # A runner translates every failure it knows; anything else is still one error for this
            # host, which the observer caches (no traceback and no new attempt in every check).
            raise ObservationError(self.config.name, codes.HOST_UNREACHABLE, f"talking to the host failed "
                                   f"unexpectedly ({type(exc).__name__}: {one_line(str(exc))}); check hosts.yaml "
                                   "and the files it names, and please report this as a driftcheck bug") from exc

    def close(self) -> None:
        """End the connection; a command still waiting (another thread) fails, nothing reconnects."""
        self.closed = True
        self.runner.close()
