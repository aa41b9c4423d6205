"""The records that cross module boundaries: what a command returned and what observation saw.

No I/O here (no paramiko, socket, subprocess, testinfra): compare and the checks import these
records without loading a transport.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
COMPOSE_VERSION_LABEL = "com.docker.compose.version"
#: where Compose ran on the host (config hashes resolve relative paths against it)
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
#: the compose files Compose read on the host, comma-separated (make import locates them)
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
#: Labels that may leave the observation boundary (the ones the checks read); every other is dropped.
KEPT_LABELS = (PROJECT_LABEL, SERVICE_LABEL, CONFIG_HASH_LABEL, COMPOSE_VERSION_LABEL, WORKING_DIR_LABEL,
               CONFIG_FILES_LABEL)


#: where Compose mounts a service's `secrets:` (a bind of the secret's file)
SECRETS_DIR = "/run/secrets/"
#: the name docker gives an anonymous volume (`- /app/node_modules`): new on every create
ANONYMOUS_VOLUME_RE = re.compile(r"^[0-9a-f]{64}$")


def mount_entry(kind: str, source: str, destination: str, read_only: bool) -> str:
    """A mount as module.yaml declares it (make import writes this; the mounts check compares it).

    `volume:/dest` and `/host/path:/dest` (with `:ro` when read-only); an anonymous volume by its
    destination alone, `/dest`, since its name changes on every create; a Compose secret as
    `secret:<name>`, matched by its /run/secrets/<name> destination whatever file backs it.
    """
    if kind == "bind" and destination.startswith(SECRETS_DIR) and "/" not in destination[len(SECRETS_DIR):]:
        return f"secret:{destination[len(SECRETS_DIR):]}"
    suffix = ":ro" if read_only else ""
    if kind == "volume" and ANONYMOUS_VOLUME_RE.match(source):
        return f"{destination}{suffix}"
    return f"{source}:{destination}{suffix}"


@dataclass(frozen=True, slots=True)
class LocalCompose:
    """What Compose on this machine makes of a module's service from the repo's compose file."""

    #: its config hash (`docker-compose config --hash`)
    hash: str
    #: this machine's Compose version, as a container label writes it (2.40.3)
    version: str
    #: its network_mode as written ("service:db" shares another service's network), "" for none
    network_mode: str = ""


@dataclass(frozen=True, slots=True)
class Output:
    """What one remote command returned."""

    #: exit status
    rc: int
    #: raw standard output (never logged)
    stdout: bytes
    #: raw standard error
    stderr: bytes


@dataclass(frozen=True, slots=True)
class ContainerObservation:
    """One container as `docker inspect --type container` showed it, redacted."""

    #: container name without the leading slash
    name: str
    #: full container id
    id: str
    #: State.Status: created, running, paused, restarting, removing, exited or dead
    status: str
    #: Config.Image: the image reference the container was created from
    configured_image: str
    #: Image: the id of the image the container runs
    image_id: str
    #: the compose labels the checks read (project, service); nothing else
    labels: tuple[tuple[str, str], ...] = field(repr=False)
    #: HostConfig.RestartPolicy: no, always, unless-stopped, on-failure or on-failure:N
    restart_policy: str = "no"
    #: RestartCount: how often the engine restarted it since it was created
    restart_count: int = 0
    #: State.Restarting
    restarting: bool = False
    #: HostConfig.PortBindings as host_ip:host_port:container_port/proto, sorted
    ports: tuple[str, ...] = ()
    #: the names of the variables in Config.Env (never their values)
    env_names: tuple[str, ...] = ()
    #: sha256 of each variable's value, to compare with env_digests; never shown anywhere
    env_digests: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: volume and bind mounts as (type, volume name or host path, destination, read_only); never
    #: shown, except bind sources never and the rest only in a MOUNTS_MISMATCH
    mounts: tuple[tuple[str, str, str, bool], ...] = field(default=(), repr=False)
    #: names of the networks it is attached to, sorted
    networks: tuple[str, ...] = ()
    #: State.Health.Status (starting, healthy, unhealthy), None without a healthcheck
    health: str | None = None
    #: HostConfig.NetworkMode: "container:<id>" for a service on another service's network
    network_mode: str = ""

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def published_ports(self) -> set[str]:
        """Its ports as a set, the "::" binding docker adds beside "0.0.0.0" for one port counted once."""
        ports = set(self.ports)
        return ports - {p for p in ports if p.startswith(":::") and "0.0.0.0" + p[2:] in ports}


@dataclass(frozen=True, slots=True)
class ImageObservation:
    """One image as `docker image inspect` showed it."""

    #: image id, sha256:<hex>
    id: str
    #: every tag of this image id
    repo_tags: tuple[str, ...]
    #: every repository digest of this image id (`repo@sha256:…`)
    repo_digests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListedContainer:
    """One row of `docker ps --all`: every container on the host, with its compose labels."""

    #: full container id
    id: str
    #: its name (docker lists one per container)
    name: str
    #: com.docker.compose.project, "" when unlabelled
    project: str
    #: com.docker.compose.service, "" when unlabelled
    service: str
    #: com.docker.compose.oneoff is True: a `docker compose run` container, never a replica
    oneoff: bool = False
    #: its State (running, exited, ...), as `docker ps` shows it
    state: str = ""
