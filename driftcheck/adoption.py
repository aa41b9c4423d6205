"""What `make import` adopts, and how: pure functions over what one host showed (no I/O).

A service is adopted when no module of its host claims it (by its labels or its container
name); one-off containers (`docker compose run`) never count and never become modules. Its
module.yaml declares everything a check can compare (SPEC §9), and its name is the bare
service name unless that would be ambiguous on the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftcheck.compare import RESTART_LOOP_THRESHOLD
from driftcheck.imageref import parse_ref
from driftcheck.manifest import NAME_RE, RESERVED_NAMES, Module
from driftcheck.records import CONFIG_FILES_LABEL, PROJECT_LABEL, SERVICE_LABEL, ContainerObservation, mount_entry

#: container statuses a module declares as `desired.state: running` (paused and restarting were
#: started and are meant to run; the state check reports them as NOT_RUNNING)
RUNNING_STATUSES = frozenset({"running", "paused", "restarting"})
#: a container created from a bare image id has no reference to declare
_BARE_ID_RE = re.compile(r"^(sha256:)?[0-9a-f]{64}$")

Key = tuple[str, str]


@dataclass(frozen=True)
class Service:
    """One compose service on the host: its containers (replicas, one-offs excluded), sorted by name."""

    project: str
    service: str
    containers: tuple[ContainerObservation, ...]

    @property
    def key(self) -> Key:
        return self.project, self.service

    @property
    def label(self) -> str:
        return f"{self.project}/{self.service}"

    @property
    def first(self) -> ContainerObservation:
        """The container a module observes: <project>-<service>-1 when it exists."""
        default = f"{self.project}-{self.service}-1"
        return next((c for c in self.containers if c.name == default), self.containers[0])


@dataclass(frozen=True)
class Name:
    """The module name a service gets, and why it is not the bare service name (None when it is)."""

    name: str
    reason: str | None = None


def compose_services(containers: Mapping[str, ContainerObservation], oneoff: Iterable[str]) -> list[Service]:
    """Every compose service on the host with at least one container that is not a one-off, sorted."""
    skip = set(oneoff)
    groups: dict[Key, list[ContainerObservation]] = {}
    for container in containers.values():
        project, service = container.label(PROJECT_LABEL), container.label(SERVICE_LABEL)
        if project and service and container.name not in skip:
            groups.setdefault((project, service), []).append(container)
    return [Service(p, s, tuple(sorted(group, key=lambda c: c.name))) for (p, s), group in sorted(groups.items())]


def undeclared(services: Iterable[Service], modules: Iterable[Module], host: str) -> list[Service]:
    """The services that no module of that host claims (by labels or by container name)."""
    mine = [m for m in modules if m.host == host]
    claimed_names = {m.container_name for m in mine}
    claimed = {(m.project, m.service) for m in mine}
    return [s for s in services if s.key not in claimed and not claimed_names & {c.name for c in s.containers}]


def _slug(text: str) -> str:
    """text as a module name: lower case, runs of other characters as one '-', at most 63 long."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].rstrip("-")


def _usable(name: str) -> bool:
    return bool(NAME_RE.match(name)) and name not in RESERVED_NAMES


def module_names(wanted: Iterable[Key], on_host: Iterable[Key], taken: Iterable[str]) -> dict[Key, Name]:
    """Deterministic, readable names: the bare service name when it is unambiguous, else <project>-<service>.

    Unambiguous: no other service on the host (whatever its project, declared or not) has that
    name, and no module or folder is named so (taken). The result depends only on these sets,
    never on the order they come in; a long form that is taken too gets -2, -3, ... in sorted order.
    """
    wanted = sorted(set(wanted))
    used = set(taken)
    holders: dict[str, set[Key]] = {}
    for key in {*on_host, *wanted}:
        holders.setdefault(_slug(key[1]), set()).add(key)
    names: dict[Key, Name] = {}
    reasons: dict[Key, str] = {}
    for key in wanted:
        bare = _slug(key[1])
        others = sorted(f"{p}/{s}" for p, s in holders[bare] - {key})
        if not _usable(bare):
            reasons[key] = f"{key[1]!r} is not a valid module name"
        elif others:
            reasons[key] = f"{bare} would be ambiguous on this host (also {', '.join(others)})"
        elif bare in used:
            reasons[key] = f"a module or folder named {bare} exists already"
        else:
            names[key] = Name(bare)
    used |= {n.name for n in names.values()}
    for key in wanted:
        if key in names:
            continue
        long = _slug(f"{key[0]}-{key[1]}")
        name, reason = long, reasons[key]
        if not _usable(long) or long in used:
            name = next(f"{long[:58]}-{n}" for n in range(2, 10_000) if f"{long[:58]}-{n}" not in used)
            reason += f", and {long} is taken too"
        used.add(name)
        names[key] = Name(name, reason)
    return names


def declarable_ref(ref: str) -> bool:
    """Whether the container's configured image is a reference a module can declare (not a bare id)."""
    return parse_ref(ref) is not None and not _BARE_ID_RE.match(ref)


def port_text(observed: str) -> str:
    """host_ip:host_port:container_port/proto as a manifest writes it (an IPv6 address in brackets).

    An ephemeral host port (`ports: ["80"]`) keeps its empty host port: `0.0.0.0::80/tcp`.
    """
    ip, host_port, rest = observed.rsplit(":", 2)
    return f"{f'[{ip}]' if ':' in ip else ip}:{host_port}:{rest}"


def manifest_for(service: Service, name: str, host: str, today: str, env_digests: bool = False,
                 compose_file: str | None = None) -> dict[str, Any] | None:
    """The module.yaml of one service, as it runs now; None when its image ref is not a reference.

    Everything a check compares is declared, an empty list where the host shows none (so a port
    published later is drift); env values never, only their names, and their sha256 with
    env_digests.
    """
    first = service.first
    ref = first.configured_image
    if not declarable_ref(ref):
        return None
    compose: dict[str, Any] = {"project": service.project, "service": service.service}
    if first.name != f"{service.project}-{service.service}-1":
        compose["container_name"] = first.name
    if compose_file is not None:
        compose["file"] = compose_file
    running = first.status in RUNNING_STATUSES
    desired: dict[str, Any] = {"state": "running" if running else "stopped", "replicas": len(service.containers),
                               "restart_policy": first.restart_policy}
    if running and first.health == "healthy":
        desired["health"] = "healthy"
    desired["ports"] = sorted(port_text(p) for p in first.published_ports())
    desired["networks"] = sorted(first.networks)
    desired["env_keys"] = sorted(first.env_names)
    desired["env_keys_complete"] = True  # a variable set later is drift, not only one removed
    if env_digests:
        desired["env_digests"] = dict(sorted(first.env_digests))
    desired["mounts"] = sorted(mount_entry(*m) for m in first.mounts)
    image: dict[str, Any] = {"ref": ref}
    parsed = parse_ref(ref)
    if parsed is not None and parsed.digest is not None:
        image["digest"] = parsed.digest
        image["digest_pinned_in_compose"] = True
    return {"schema_version": 2, "name": name,
            "description": f"Imported from {host} on {today} (make import); review before committing",
            "host": host, "compose": compose, "desired": desired, "image": image}


def config_files(service: Service) -> list[str]:
    """The compose files Compose read on the host for this service (its config_files label)."""
    text = service.first.label(CONFIG_FILES_LABEL) or ""
    return [part for part in text.split(",") if part]


def restart_note(service: Service) -> str | None:
    """Why the adopted module is drift at once: its container restarts in a loop, or has looped."""
    first = service.first
    if first.restarting or first.restart_count > RESTART_LOOP_THRESHOLD:
        return (f"RESTART_LOOP at once: it restarted {first.restart_count} times since it was created"
                + (" and is restarting now" if first.restarting else "") + "; it stays drift until it is fixed "
                "and recreated")
    return None


def health_note(service: Service) -> str | None:
    """Why `health: healthy` was left out of a running service that has a healthcheck, if it was."""
    first = service.first
    if first.status == "running" and first.health not in (None, "healthy"):
        return (f"health not declared: its healthcheck is {first.health} now; add `health: healthy` under "
                "desired once it passes")
    return None
