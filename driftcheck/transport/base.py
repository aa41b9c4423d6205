"""The one interface every way of reaching a host implements, and the words its errors share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from driftcheck import codes
from driftcheck.errors import ObservationError
from driftcheck.inventory import HostConfig
from driftcheck.records import Output

#: Output beyond this is not a docker inspect of a sane host; stop reading instead of filling memory.
MAX_OUTPUT = 256 * 1024 * 1024


class Runner(Protocol):
    """Runs allowlisted argv on one host; one class per way of reaching a host.

    A runner checks every argv against the allowlist itself, bounds every command by the host's
    timeout, never retries and never logs; it raises only driftcheck.errors exceptions
    (ObservationError, ConnectionDropped, SafetyViolation), third-party ones translated with
    `from exc`. After close() the next call connects again.
    """

    #: the inventory name of the host
    host: str

    def connect(self) -> None:
        """Open the connection now if it is not open (a no-op where there is none to open)."""

    def run(self, argv: Sequence[str]) -> Output:
        """Send one allowlisted command and return what it printed and its exit status."""
        ...

    def close(self) -> None:
        """End the connection, if any; a command waiting on it fails."""


def short(command: str) -> str:
    """A command line as an error message quotes it."""
    return command if len(command) <= 60 else command[:57] + "..."


def timed_out(config: HostConfig, command: str) -> ObservationError:
    return ObservationError(config.name, codes.TIMEOUT, f"`{short(command)}` did not finish within {config.timeout:g}s "
                            "(the host's timeout); is dockerd responding? Try `docker info` on the host, or raise "
                            "timeout in hosts.yaml")


def too_much_output(config: HostConfig) -> ObservationError:
    return ObservationError(config.name, codes.OBSERVATION_INVALID, f"docker printed more than "
                            f"{MAX_OUTPUT // (1024 * 1024)} MiB; is the remote `docker` the Docker CLI?")
