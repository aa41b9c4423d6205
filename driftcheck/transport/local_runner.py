"""local://: the machine driftcheck runs on; argv straight to `docker`, never through a shell.

The docker CLI honours DOCKER_HOST and docker contexts. One that points at `ssh://` would make
the CLI open its own SSH connection (`docker system dial-stdio` on the far side), past
hosts.yaml's host-key policy and the command record: that is refused before any command runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Sequence

from driftcheck import codes
from driftcheck.allowlist import check_argv
from driftcheck.boundedread import read_bounded
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
        remote = docker_over_ssh(dict(os.environ))  # nothing to open; but where would docker go?
        if remote:
            raise ObservationError(self.host, codes.DOCKER_UNAVAILABLE, f"local:// would reach docker over SSH "
                                   f"({remote}), past hosts.yaml's host-key policy; refused: use connection: "
                                   "ssh://[user@]host for that host in hosts.yaml")

    def run(self, argv: Sequence[str]) -> Output:
        args = list(argv)
        check_argv(args)
        self.connect()
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
        if done.returncode != 0 and any(s in done.stderr for s in DAEMON_DOWN):
            raise ObservationError(self.host, codes.DOCKER_UNAVAILABLE, f"`{shlex.join(args)[:60]}` could not reach "
                                   f"dockerd on this machine: {one_line(done.stderr.decode('utf-8', 'replace'))}; "
                                   "is dockerd running, and may this user use its socket (the docker group)?")
        return Output(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        pass  # nothing stays open between commands


#: what the docker CLI prints when it cannot talk to the daemon at all
DAEMON_DOWN = (b"Cannot connect to the Docker daemon",
               b"permission denied while trying to connect to the Docker daemon")
MAX_DOCKER_FILE = 1024 * 1024


def docker_over_ssh(env: dict[str, str]) -> str | None:
    """What would send the docker CLI over SSH (DOCKER_HOST or the current context), or None.

    Read from the CLI's own files (`docker context inspect` is no read-only command of the
    allowlist): DOCKER_CONTEXT, else DOCKER_HOST, else config.json's currentContext.
    """
    context = env.get("DOCKER_CONTEXT", "")
    docker_host = env.get("DOCKER_HOST", "")
    if not context and docker_host:
        return f"DOCKER_HOST={docker_host[:80]}" if docker_host.startswith("ssh://") else None
    folder = env.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    if not context:
        config = _json(os.path.join(folder, "config.json"))
        current = config.get("currentContext") if isinstance(config, dict) else None
        context = current if isinstance(current, str) else ""
    if not context or context == "default":
        return None
    meta = _json(os.path.join(folder, "contexts", "meta", hashlib.sha256(context.encode()).hexdigest(), "meta.json"))
    endpoints = meta.get("Endpoints") if isinstance(meta, dict) else None
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if isinstance(host, str) and host.startswith("ssh://"):
        return f"docker context {context[:40]!r} with host {host[:80]}"
    return None


def _json(path: str) -> object:
    try:
        return json.loads(read_bounded(path, MAX_DOCKER_FILE))  # never a FIFO, never more than the cap
    except (OSError, ValueError, RecursionError):  # FileRefused and JSON errors are ValueErrors
        return None
