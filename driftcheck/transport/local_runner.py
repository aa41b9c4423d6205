"""local://: the machine driftcheck runs on; argv straight to `docker`, never through a shell."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from driftcheck import codes
from driftcheck.allowlist import check_argv
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import HostConfig
from driftcheck.records import Output
from driftcheck.transport.base import timed_out


class LocalRunner:
    """Runs allowlisted argv as a local process, bounded by the host's timeout."""

    def __init__(self, config: HostConfig):
        self.config = config
        self.host = config.name

    def connect(self) -> None:
        pass  # nothing to open

    def run(self, argv: Sequence[str]) -> Output:
        args = list(argv)
        check_argv(args)
        try:
            done = subprocess.run(args, capture_output=True, timeout=self.config.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise timed_out(self.config, shlex.join(args)) from exc
        except FileNotFoundError:
            # As a shell would answer: the observer reports DOCKER_UNAVAILABLE with this line.
            return Output(127, b"", b"docker: command not found")
        except OSError as exc:
            raise ObservationError(self.host, codes.DOCKER_UNAVAILABLE, f"cannot start `{args[0]}`: "
                                   f"{one_line(str(exc)) or type(exc).__name__}; is the Docker CLI installed "
                                   "and executable?") from exc
        return Output(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        pass  # nothing stays open between commands
