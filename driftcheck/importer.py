"""make import HOST=<name>: a module.yaml for each compose service a host runs that no module declares.

Read-only and through the same allowlisted transport as a run: one `docker ps` and one batched
`docker inspect --type container`. Each module folder is written whole or not at all (a hidden
temporary folder, validated through the loader, then renamed into place), never over an existing
one; what it writes is what a run accepts.

    python -m driftcheck.importer --host=rs2000 [--inventory=FILE] [--modules-dir=DIR]
        [--project=P[,P...]]... [--env-digests] [--compose-files=copy]

Exit 0: done (also when there was nothing to adopt); 2: the inventory, the modules or the host
could not be read, or a --project is not on the host (nothing written); or a module could not be
written (the others are complete, and the output lists every file written); or Ctrl-C or SIGTERM
stopped it (the modules it said it wrote are complete, and nothing half-written is left).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from driftcheck import codes
from driftcheck.adoption import (
    Service,
    compose_services,
    config_files,
    health_note,
    manifest_for,
    module_names,
    restart_note,
    undeclared,
)
from driftcheck.composehash import ComposeError, local_compose
from driftcheck.errors import ManifestError, ObservationError
from driftcheck.inventory import HostConfig, load_inventory
from driftcheck.manifest import PROJECT_RE, Module, discover, parse_module
from driftcheck.observe import HostObserver
from driftcheck.options import OPTIONS, RunOptions
from driftcheck.printable import printable
from driftcheck.records import (
    COMPOSE_VERSION_LABEL,
    CONFIG_HASH_LABEL,
    WORKING_DIR_LABEL,
    ContainerObservation,
    ListedContainer,
)
from driftcheck.transport import Transport
from driftcheck.yamlfile import load_yaml

HEADER = "# yaml-language-server: $schema=../../schema/module.schema.json\n"
#: the name a copied compose file gets in its module folder (compose.file)
COMPOSE_COPY = "compose.yaml"
#: a compose file larger than this is not copied
MAX_COMPOSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ImportOptions:
    """What the user asked of one import, beyond where to read and write."""

    #: only these compose projects (--project / PROJECT=); None: every project on the host
    projects: frozenset[str] | None = None
    #: also write env_digests (--env-digests / ENV_DIGESTS=1)
    env_digests: bool = False
    #: copy each service's compose file into its module folder (the default; --compose-files=no /
    #: COMPOSE_FILES=no leaves compose.file out)
    copy_compose_files: bool = True


@dataclass(frozen=True)
class HostView:
    """What one `docker ps` and one `docker inspect` showed of the host, and the commands sent."""

    containers: Mapping[str, ContainerObservation]
    listing: tuple[ListedContainer, ...]
    commands: tuple[str, ...]


def observe_host(config: HostConfig) -> HostView:
    """Every compose container of the host, inspected; raises ObservationError."""
    transport = Transport(config)
    observer = HostObserver(transport, None)
    try:
        containers, listing = observer.containers(), observer.listing()
    finally:
        transport.close()
    return HostView(containers, listing, tuple(transport.commands))


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that reads Compose's own tags (!reset, !override) as nothing."""


_ComposeLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _compose_copy(service: Service) -> tuple[bytes | None, str]:
    """The compose file to copy for a service (its bytes), or None and why not."""
    files = config_files(service)
    if not files:
        return None, "compose.file not set: its container has no com.docker.compose.project.config_files label"
    if len(files) > 1:
        return None, (f"compose.file not set: project {service.project} was deployed from {len(files)} files "
                      f"({', '.join(files)}); none copied, compose.file names one")
    path = Path(files[0])
    try:
        info = path.stat()
        if not path.is_absolute() or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_COMPOSE_BYTES:
            raise OSError("not an absolute path to a regular file of at most 1 MiB")  # a FIFO would block
        data = path.read_bytes()
        parsed = yaml.load(data, Loader=_ComposeLoader)  # a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        # a YAML error's text quotes the file's lines, secrets included: its line number only
        mark = getattr(exc, "problem_mark", None)
        if isinstance(exc, OSError):
            why = exc.strerror or str(exc)
        else:
            why = f"not YAML, line {mark.line + 1}" if mark is not None else "not YAML"
        return None, f"compose.file not set: {path} cannot be read on this machine ({why})"
    services = parsed.get("services") if isinstance(parsed, dict) else None
    if not isinstance(services, dict) or service.service not in services:
        return None, f"compose.file not set: {path} on this machine does not define service {service.service}"
    problem = _gives_the_label(data, service)
    if problem is not None:
        return None, f"compose.file not set: a copy of {path} {problem}"
    return data, f"compose.file: {COMPOSE_COPY}, a copy of {path}"


def _gives_the_label(data: bytes, service: Service) -> str | None:
    """Why a copy of the compose file would not give the container's config hash in a run, or None.

    Checked here, as a run will compute it: a copy that needs the host's environment or its .env
    (`${VAR}`) would be a CONFIG_HASH_MISMATCH right after import, so it is not set at all.
    """
    first = service.first
    with tempfile.TemporaryDirectory(prefix="driftcheck-import-") as folder:
        copy = Path(folder) / COMPOSE_COPY
        copy.write_bytes(data)
        try:
            local = local_compose(copy, service.project, service.service, first.label(WORKING_DIR_LABEL),
                                  first.network_mode)
        except ComposeError as exc:
            return f"does not render here ({exc})"
    if first.label(COMPOSE_VERSION_LABEL) == local.version and first.label(CONFIG_HASH_LABEL) != local.hash:
        return ("does not give the container's config hash here (a ${VAR} from the host's environment or "
                f".env? put it in the module folder's .env, copy the file as {COMPOSE_COPY} and set compose.file)")
    return None


def write_module(modules_dir: Path, name: str, files: Mapping[str, bytes], show: Callable[[Path], str]) -> Module:
    """modules_dir/name with these files, validated, or nothing: a temporary folder renamed into place.

    Raises FileExistsError when modules_dir/name exists (never overwritten), ManifestError when
    the module does not validate, OSError when the disk says no; in each case nothing is left.
    """
    final = modules_dir / name
    if final.exists() or final.is_symlink():
        raise FileExistsError(str(final))
    temp = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=modules_dir))  # hidden: discover skips it
    try:
        mask = os.umask(0o022)
        os.umask(mask)
        temp.chmod(0o777 & ~mask)  # mkdtemp's 0700 would outlive the rename
        for file_name, data in files.items():
            with open(temp / file_name, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        display = show(final / "module.yaml")
        module = parse_module(load_yaml(temp / "module.yaml", display), display, name, temp)
        if final.exists() or final.is_symlink():
            raise FileExistsError(str(final))
        temp.rename(final)  # rename(2) never replaces a non-empty folder
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return module


def _taken(modules: Iterable[Module], modules_dir: Path) -> set[str]:
    folders = {p.name for p in modules_dir.iterdir()} if modules_dir.is_dir() else set()
    return {m.name for m in modules} | folders


def _select(host: str, view: HostView, modules: list[Module], options: ImportOptions,
            say: Callable[[str], None]) -> tuple[list[Service], list[Service], list[Service]] | None:
    """Every service on the host, those of the asked projects, and those of them to adopt; None: a bad --project."""
    oneoff = {c.name for c in view.listing if c.oneoff}
    services = compose_services(view.containers, oneoff)
    projects = sorted({c.project for c in view.listing if c.project} | {s.project for s in services})
    wanted = options.projects
    if wanted is not None and not wanted <= set(projects):
        say(f"ERROR: PROJECT={','.join(sorted(wanted - set(projects)))}: no such compose project on host {host} "
            f"(projects there: {', '.join(projects) or 'none'}); nothing written")
        return None
    asked = [s for s in services if wanted is None or s.project in wanted]
    only_oneoff = {(c.project, c.service) for c in view.listing if c.name in oneoff and c.project and c.service}
    for project, service in sorted(only_oneoff - {s.key for s in services}):
        if wanted is None or project in wanted:
            say(f"skipped  {project}/{service}: only one-off containers (docker compose run), not a module")
    return services, asked, undeclared(asked, modules, host)


def adopt(host: str, view: HostView, modules: list[Module], modules_dir: Path, options: ImportOptions,
          show: Callable[[Path], str], say: Callable[[str], None]) -> int:
    """Write a module for each undeclared service of the host (of the asked projects); the exit status."""
    selected = _select(host, view, modules, options, say)
    if selected is None:
        return 2
    services, asked, todo = selected
    names = module_names((s.key for s in todo), (s.key for s in services), _taken(modules, modules_dir))
    today = datetime.now(UTC).date().isoformat()
    created_dir = not modules_dir.exists()
    written: list[str] = []
    adopted = 0
    not_copied: dict[str, None] = {}  # the compose files of modules written without compose.file, in order
    status = 0
    for service in todo:
        name = names[service.key]
        copied, copy_note = _compose_copy(service) if options.copy_compose_files else (None, None)
        data = manifest_for(service, name.name, host, today, options.env_digests,
                            COMPOSE_COPY if copied is not None else None)
        if data is None:
            say(f"skipped  {service.label}: its image {service.first.configured_image!r} is not a reference to "
                "declare")
            continue
        files = {"module.yaml": (HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)).encode()}
        if copied is not None:
            files[COMPOSE_COPY] = copied
        shown = [show(modules_dir / name.name / f) for f in files]
        try:
            modules_dir.mkdir(parents=True, exist_ok=True)
            write_module(modules_dir, name.name, files, show)
        except FileExistsError:
            say(f"skipped  {service.label}: {show(modules_dir / name.name)} exists and is never overwritten")
            continue
        except ManifestError as exc:
            say(f"ERROR    {service.label}: its module does not validate, nothing written for it: {exc}")
            status = 2
            continue
        except OSError as exc:
            say(f"ERROR    {service.label}: {show(modules_dir / name.name)} could not be written, nothing written "
                f"for it: {exc.strerror or exc}")
            status = 2
            continue
        written += shown
        adopted += 1
        desired = data["desired"]
        say(f"wrote    {', '.join(shown)}  ({service.label}, {data['image']['ref']}, {desired['state']}, "
            f"replicas {desired['replicas']})")
        if not options.copy_compose_files:
            not_copied.update(dict.fromkeys(config_files(service)))
        for note in (f"named {name.name}, not {service.service}: {name.reason}" if name.reason else None, copy_note,
                     health_note(service), restart_note(service)):
            if note:
                say(f"         {note}")
    if created_dir and not written and modules_dir.is_dir() and not any(modules_dir.iterdir()):
        modules_dir.rmdir()
    declared = len(asked) - len(todo)
    scope = f" (projects {', '.join(sorted(options.projects))})" if options.projects is not None else ""
    say(f"{adopted} module(s) written, {declared} compose "
        f"service(s) already declared, on host {host}{scope}")
    if not_copied:
        sources = list(not_copied)
        say(f"compose.file not set (COMPOSE_FILES=no): Compose read {', '.join(sources[:3])}"
            f"{' and more' if len(sources) > 3 else ''} on the host. Without COMPOSE_FILES=no, import copies each "
            f"service's compose file, where this machine can read it, into its new module folder as {COMPOSE_COPY}; "
            f"for a module already written, copy it there yourself and set compose.file: {COMPOSE_COPY}")
    if status and written:
        say(f"exit 2 after writing {len(written)} file(s), each complete and kept: {', '.join(written)}")
    return status


def run(host: str, inventory: Path, modules_dir: Path, show: Callable[[Path], str], say: Callable[[str], None],
        options: ImportOptions | None = None, observe: Callable[[HostConfig], HostView] = observe_host) -> int:
    options = options or ImportOptions()
    say = _printable(say)  # labels, names and paths come from the host: never a raw control character
    try:
        hosts = load_inventory(inventory, show(inventory))
    except ManifestError as exc:
        say(f"ERROR {exc.code}: {exc}")
        return 2
    if host not in hosts:
        say(f"ERROR: HOST={host} is not a host of {show(inventory)} ({', '.join(sorted(hosts)) or 'none'})")
        return 2
    modules: list[Module] = []
    if modules_dir.exists():
        modules, errors = discover(modules_dir, show)
        if errors:
            for error in errors:
                say(f"ERROR {error.code}: {error}")
            say("nothing imported: fix the modules first (make validate), so their claims are known")
            return 2
    try:
        view = observe(hosts[host])
    except ObservationError as exc:
        say(f"ERROR {exc.code}: {exc.message}")
        return 2
    status = adopt(host, view, modules, modules_dir, options, show, say)
    say(f"commands sent: {len(view.commands)} ({'; '.join(_short(c) for c in view.commands)})")
    return status


def _printable(say: Callable[[str], None]) -> Callable[[str], None]:
    return lambda line: say(printable(line))


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "..."


def _projects(values: list[str]) -> frozenset[str] | None:
    """--project given any number of times, each a comma-separated list; None when not given."""
    if not values:
        return None
    names = frozenset(p.strip() for value in values for p in value.split(",") if p.strip())
    bad = sorted(p for p in names if not PROJECT_RE.fullmatch(p))
    if bad or not names:
        raise ValueError(f"PROJECT={','.join(values)}: expected compose project names (^[a-z0-9][a-z0-9_-]*$), "
                         f"comma-separated{'; not: ' + ', '.join(bad) if bad else ''}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make import", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="", help="the inventory name of the host to adopt")
    parser.add_argument("--project", action="append", default=[], metavar="P[,P...]",
                        help="only these compose projects (repeatable, or comma-separated)")
    parser.add_argument("--env-digests", action="store_true",
                        help="also write env_digests: the sha256 of each variable's value (never the value)")
    parser.add_argument("--compose-files", choices=("copy", "no"), default="copy",
                        help=f"copy (default): copy each service's compose file (its config_files label) into the "
                             f"module folder as {COMPOSE_COPY} and set compose.file, where this machine can read it "
                             "and it gives the container's config hash; no: leave compose.file out")
    for option in OPTIONS:
        if option.dest in ("inventory", "modules_dir"):
            parser.add_argument(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                                help=f"{option.help} (env {option.env})")
    args = parser.parse_args(argv)
    if not args.host:
        print("ERROR: which host? make import HOST=<inventory name> [PROJECT=...] [INVENTORY=...] [MODULES_DIR=...]",
              file=sys.stderr)
        return 2
    try:
        projects = _projects(args.project)
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    # The same options as a run: --inventory and --modules-dir, or DRIFT_INVENTORY and
    # DRIFT_MODULES_DIR, relative to where it runs; by default the project's own.
    root = Path(__file__).resolve().parent.parent
    env = {o.env: os.environ[o.env] for o in OPTIONS if o.dest in ("inventory", "modules_dir") and o.env in os.environ}
    given: dict[str, Any] = {"inventory": args.inventory, "modules_dir": args.modules_dir}
    paths = RunOptions.build(root, Path.cwd(), given, env)
    options = ImportOptions(projects, args.env_digests, args.compose_files != "no")
    created = not paths.modules_dir.exists()
    stopped_by = _stop_on_sigterm()
    try:
        return run(args.host, paths.inventory, paths.modules_dir, paths.show, lambda line: print(line, flush=True),
                   options)
    except KeyboardInterrupt:
        # write_module removed the folder it was writing; a modules folder this import made and left empty goes too.
        if created and paths.modules_dir.is_dir() and not any(paths.modules_dir.iterdir()):
            paths.modules_dir.rmdir()
        print(f"ERROR {codes.INTERRUPTED}: import stopped by {stopped_by[0] if stopped_by else 'Ctrl-C'}; every module "
              "it said it wrote is complete, and nothing half-written is left", flush=True)
        return 2


def _stop_on_sigterm() -> list[str]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so a module folder being written is removed, not left
    half-written; the list returned gets "SIGTERM" when it came."""
    came: list[str] = []

    def stop(signum: int, frame: object) -> None:
        came.append("SIGTERM")
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, stop)
    return came


if __name__ == "__main__":
    sys.exit(main())
