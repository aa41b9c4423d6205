"""Turn `docker ps` / `docker inspect` output into typed, redacted records, batched per host.

Redaction happens here: what leaves this module carries only the fields the checks compare
(names, the compose labels they read, state, image refs and ids). Env values, Cmd/Args,
health-check commands, other labels and mount sources never leave it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from driftcheck.allowlist import CONTAINER_ID_RE, IMAGE_ID_RE, IMAGE_INSPECT_PREFIX, INSPECT_PREFIX, PS_ARGV
from driftcheck.errors import ObservationError
from driftcheck.transport import Output, Transport

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
#: Labels that may leave the observation boundary; every other label is dropped.
KEPT_LABELS = (PROJECT_LABEL, SERVICE_LABEL)


@dataclass(frozen=True)
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
    labels: tuple[tuple[str, str], ...]

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class ImageObservation:
    """One image as `docker image inspect` showed it."""

    #: image id, sha256:<hex>
    id: str
    #: every tag of this image id
    repo_tags: tuple[str, ...]
    #: every repository digest of this image id (`repo@sha256:…`)
    repo_digests: tuple[str, ...]


def _invalid(host: str, what: str) -> ObservationError:
    return ObservationError(host, "OBSERVATION_INVALID", f"{what}; is the remote `docker` the Docker CLI?")


def _stderr_line(output: Output) -> str:
    text = output.stderr.decode("utf-8", "replace").strip()
    line = text.splitlines()[0] if text else f"exit status {output.rc}"
    return "".join(c if c.isprintable() else "?" for c in line)[:200]


def parse_ps(host: str, stdout: bytes) -> dict[str, str]:
    """`docker ps` lines -> {container name: container id}."""
    found: dict[str, str] = {}
    try:
        text = stdout.decode("utf-8")
        for line in text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if not (isinstance(row, list) and len(row) == 4 and all(isinstance(v, str) for v in row)):
                raise ValueError("unexpected row shape")
            container_id, names = row[0], row[1]
            if not CONTAINER_ID_RE.match(container_id):
                raise ValueError("not a container id")
            for name in names.split(","):
                found[name] = container_id
    except (UnicodeDecodeError, ValueError):
        raise _invalid(host, "`docker ps` printed output that is not one JSON row per container") from None
    return found


def _container(raw: Any) -> ContainerObservation:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    state, config = raw["State"], raw["Config"]
    labels = config.get("Labels") or {}
    if not isinstance(labels, dict):
        raise ValueError("labels")
    kept = tuple((k, labels[k]) for k in KEPT_LABELS if isinstance(labels.get(k), str))
    name, container_id, status = raw["Name"], raw["Id"], state["Status"]
    configured, image_id = config["Image"], raw["Image"]
    if not all(isinstance(v, str) for v in (name, container_id, status, configured, image_id)):
        raise ValueError("field types")
    return ContainerObservation(
        name=name.lstrip("/"), id=container_id, status=status,
        configured_image=configured, image_id=image_id, labels=kept,
    )


def parse_inspect(host: str, stdout: bytes) -> dict[str, ContainerObservation]:
    """`docker inspect --type container` JSON -> {name: redacted observation}."""
    try:
        data = json.loads(stdout.decode("utf-8"))
        if not isinstance(data, list):
            raise ValueError("not a list")
        containers = [_container(item) for item in data]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        # `from None`: the raw output (env values included) must not ride along in a traceback.
        raise _invalid(host, "`docker inspect` printed JSON of an unexpected shape") from None
    return {c.name: c for c in containers}


def parse_image_inspect(host: str, stdout: bytes) -> dict[str, ImageObservation]:
    """`docker image inspect` JSON -> {image id: observation}."""
    try:
        data = json.loads(stdout.decode("utf-8"))
        if not isinstance(data, list):
            raise ValueError("not a list")
        images = {}
        for item in data:
            tags, digests = item.get("RepoTags") or [], item.get("RepoDigests") or []
            if not (isinstance(item["Id"], str) and all(isinstance(t, str) for t in [*tags, *digests])):
                raise ValueError("field types")
            images[item["Id"]] = ImageObservation(item["Id"], tuple(tags), tuple(digests))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise _invalid(host, "`docker image inspect` printed JSON of an unexpected shape") from None
    return images


class HostObserver:
    """Observes the selected modules of one host with at most three commands, each sent once.

    `containers()` sends `docker ps` and one `docker inspect --type container` for every
    wanted container present; `images()` sends one `docker image inspect` for the images
    those containers run. Results and failures are cached for the session.
    """

    def __init__(self, transport: Transport, wanted: Iterable[str]):
        self.transport = transport
        self.wanted = sorted(set(wanted))
        self._containers: dict[str, ContainerObservation] | ObservationError | None = None
        self._images: dict[str, ImageObservation] | ObservationError | None = None

    @property
    def host(self) -> str:
        return self.transport.config.name

    @property
    def error(self) -> ObservationError | None:
        for result in (self._containers, self._images):
            if isinstance(result, ObservationError):
                return result
        return None

    def containers(self) -> dict[str, ContainerObservation]:
        if self._containers is None:
            try:
                self._containers = self._observe_containers()
            except ObservationError as exc:
                self._containers = exc
        if isinstance(self._containers, ObservationError):
            raise self._containers
        return self._containers

    def images(self) -> dict[str, ImageObservation]:
        containers = self.containers()
        if self._images is None:
            try:
                self._images = self._observe_images(containers)
            except ObservationError as exc:
                self._images = exc
        if isinstance(self._images, ObservationError):
            raise self._images
        return self._images

    def _observe_containers(self) -> dict[str, ContainerObservation]:
        ps = self.transport.run(PS_ARGV)
        if ps.rc != 0:
            if ps.rc == 127:
                raise ObservationError(self.host, "DOCKER_UNAVAILABLE", "`docker` was not found on the "
                                       "remote user's PATH")
            raise ObservationError(self.host, "DOCKER_UNAVAILABLE", f"`docker ps` failed: {_stderr_line(ps)}")
        present = parse_ps(self.host, ps.stdout)
        ids = sorted({present[name] for name in self.wanted if name in present})
        if not ids:
            return {}
        inspect = self.transport.run((*INSPECT_PREFIX, *ids))
        found = parse_inspect(self.host, inspect.stdout) if inspect.stdout.strip() else {}
        if inspect.rc != 0 and not _only_missing(inspect, "container"):
            raise ObservationError(self.host, "DOCKER_UNAVAILABLE",
                                   f"`docker inspect` failed: {_stderr_line(inspect)}")
        # A container removed between ps and inspect is simply missing.
        return {name: c for name, c in found.items() if name in self.wanted}

    def _observe_images(self, containers: dict[str, ContainerObservation]) -> dict[str, ImageObservation]:
        ids = sorted({c.image_id for c in containers.values() if IMAGE_ID_RE.match(c.image_id)})
        if not ids:
            return {}
        result = self.transport.run((*IMAGE_INSPECT_PREFIX, *ids))
        found = parse_image_inspect(self.host, result.stdout) if result.stdout.strip() else {}
        if result.rc != 0 and not _only_missing(result, "image"):
            raise ObservationError(self.host, "DOCKER_UNAVAILABLE",
                                   f"`docker image inspect` failed: {_stderr_line(result)}")
        return found


def _only_missing(output: Output, kind: str) -> bool:
    """docker exits 1 when some objects are missing yet prints the ones it found."""
    lines = [ln.strip() for ln in output.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return output.rc == 1 and all(ln.lower().startswith(f"error: no such {kind}") or
                                  ln.lower().startswith("error: no such object") for ln in lines)
