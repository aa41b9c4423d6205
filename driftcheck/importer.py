"""make import HOST=<name>: a module.yaml for each compose service a host runs that no module declares.

Read-only and through the same allowlisted transport as a run: one `docker ps` and one batched
`docker inspect --type container`. It writes only new files (never over an existing module) and
loads each file it wrote back through the loader, so what it writes is what a run accepts.

    python -m driftcheck.importer --host=rs2000 [--inventory=FILE] [--modules-dir=DIR]

Exit 0: done (also when there was nothing to adopt); 2: the inventory, the modules or the host
could not be read (nothing written).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from driftcheck.errors import ManifestError, ObservationError
from driftcheck.imageref import parse_ref
from driftcheck.inventory import load_inventory
from driftcheck.manifest import NAME_RE, RESERVED_NAMES, Module, discover, load_module_file
from driftcheck.observe import HostObserver
from driftcheck.options import OPTIONS, RunOptions
from driftcheck.records import PROJECT_LABEL, SERVICE_LABEL, ContainerObservation
from driftcheck.transport import Transport

HEADER = "# yaml-language-server: $schema=../../schema/module.schema.json\n"


@dataclass(frozen=True)
class Service:
    """One compose service on the host: its containers (replicas), the first one observed in full."""

    project: str
    service: str
    containers: tuple[ContainerObservation, ...]

    @property
    def first(self) -> ContainerObservation:
        default = f"{self.project}-{self.service}-1"
        return next((c for c in self.containers if c.name == default), self.containers[0])


def undeclared(containers: dict[str, ContainerObservation], modules: list[Module], host: str) -> list[Service]:
    """The compose services on the host that no module of that host claims (by labels or by name)."""
    mine = [m for m in modules if m.host == host]
    claimed_names = {m.container_name for m in mine}
    claimed_services = {(m.project, m.service) for m in mine}
    groups: dict[tuple[str, str], list[ContainerObservation]] = {}
    for container in containers.values():
        project, service = container.label(PROJECT_LABEL), container.label(SERVICE_LABEL)
        if project and service:
            groups.setdefault((project, service), []).append(container)
    return [Service(project, service, tuple(sorted(group, key=lambda c: c.name)))
            for (project, service), group in sorted(groups.items())
            if (project, service) not in claimed_services and not claimed_names & {c.name for c in group}]


def module_name(service: Service, taken: set[str]) -> str:
    """The service's name when it is free and valid, else <project>-<service>, made valid and unique."""
    for candidate in (service.service, f"{service.project}-{service.service}"):
        name = re.sub(r"[^a-z0-9-]+", "-", candidate.lower()).strip("-")[:63].rstrip("-")
        if NAME_RE.match(name) and name not in RESERVED_NAMES and name not in taken:
            return name
    base = name[:58]
    return next(f"{base}-{n}" for n in range(2, 10_000) if f"{base}-{n}" not in taken)


def manifest_for(service: Service, name: str, host: str, today: str) -> dict[str, Any] | None:
    """The module.yaml of one service, as it runs now; None when its image ref is not a reference."""
    first = service.first
    ref = first.configured_image
    if parse_ref(ref) is None or re.match(r"^(sha256:)?[0-9a-f]{64}$", ref):
        return None  # e.g. a container created from a bare image id: nothing to declare
    compose: dict[str, Any] = {"project": service.project, "service": service.service}
    if first.name != f"{service.project}-{service.service}-1":
        compose["container_name"] = first.name
    desired: dict[str, Any] = {"state": "running" if first.status == "running" else "stopped"}
    if len(service.containers) > 1:
        desired["replicas"] = len(service.containers)
    if first.restart_policy != "no":
        desired["restart_policy"] = first.restart_policy
    ports = first.published_ports()
    if ports:
        desired["ports"] = sorted(_port_text(p) for p in ports)
    if first.networks:
        desired["networks"] = list(first.networks)
    if first.health == "healthy" and desired["state"] == "running":
        desired["health"] = "healthy"
    image: dict[str, Any] = {"ref": ref}
    if "@sha256:" in ref:
        image["digest_pinned_in_compose"] = True
    return {"schema_version": 2, "name": name,
            "description": f"Imported from {host} on {today} (make import); review before committing",
            "host": host, "compose": compose, "desired": desired, "image": image}


def _port_text(observed: str) -> str:
    """host_ip:host_port:container_port/proto as a manifest writes it (an IPv6 address in brackets)."""
    ip, host_port, rest = observed.rsplit(":", 2)
    return f"{f'[{ip}]' if ':' in ip else ip}:{host_port}:{rest}"


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "..."


def write_new(path: Path, text: str) -> bool:
    """Create path with text; False, and nothing touched, when it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True


def run(host: str, inventory: Path, modules_dir: Path, show: Callable[[Path], str], say: Callable[[str], None]) -> int:
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
    transport = Transport(hosts[host])
    try:
        containers = HostObserver(transport, None).containers()
    except ObservationError as exc:
        say(f"ERROR {exc.code}: {exc.message}")
        return 2
    finally:
        transport.close()
    services = undeclared(containers, modules, host)
    taken = {m.name for m in modules} | ({p.name for p in modules_dir.iterdir()} if modules_dir.exists() else set())
    today = datetime.now(UTC).date().isoformat()
    written, status = 0, 0
    for service in services:
        name = module_name(service, taken)
        taken.add(name)
        data = manifest_for(service, name, host, today)
        label = f"{service.project}/{service.service}"
        if data is None:
            say(f"skipped  {label}: its image {service.first.configured_image!r} is not a reference to declare")
            continue
        path = modules_dir / name / "module.yaml"
        if not write_new(path, HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)):
            say(f"skipped  {label}: {show(path)} exists and is never overwritten")
            continue
        try:
            load_module_file(path, show(path))  # what was written is what a run accepts
        except ManifestError as exc:
            path.unlink()
            say(f"ERROR    {label}: the module written for it does not validate, removed: {exc}")
            status = 2
            continue
        written += 1
        say(f"wrote    {show(path)}  ({label}, {data['image']['ref']}, {data['desired']['state']})")
    declared = len({(c.label(PROJECT_LABEL), c.label(SERVICE_LABEL)) for c in containers.values()}) - len(services)
    say(f"{written} module(s) written, {declared} compose service(s) already declared, on host {host}; "
        f"commands sent: {len(transport.commands)} ({'; '.join(_short(c) for c in transport.commands)})")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make import", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="", help="the inventory name of the host to adopt")
    for option in OPTIONS:
        if option.dest in ("inventory", "modules_dir"):
            parser.add_argument(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                                help=f"{option.help} (env {option.env})")
    args = parser.parse_args(argv)
    if not args.host:
        print("ERROR: which host? make import HOST=<inventory name> [INVENTORY=...] [MODULES_DIR=...]", file=sys.stderr)
        return 2
    # The same options as a run: --inventory and --modules-dir, or DRIFT_INVENTORY and
    # DRIFT_MODULES_DIR, relative to where it runs; by default the project's own.
    root = Path(__file__).resolve().parent.parent
    env = {o.env: os.environ[o.env] for o in OPTIONS if o.dest in ("inventory", "modules_dir") and o.env in os.environ}
    options = RunOptions.build(root, Path.cwd(), vars(args), env)
    return run(args.host, options.inventory, options.modules_dir, options.show, lambda line: print(line, flush=True))


if __name__ == "__main__":
    sys.exit(main())
