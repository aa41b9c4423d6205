"""Desired (a Module) against observed (redacted records): pure functions, no I/O.

Each check returns a Verdict: the drift it found (changes) and what it could not prove
(warnings). When the container is missing, every check reports the same CONTAINER_MISSING
change, so the plan holds it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from driftcheck.imageref import ImageRef, parse_ref, refs_match
from driftcheck.manifest import Module
from driftcheck.observe import (
    COMPOSE_VERSION_LABEL,
    CONFIG_HASH_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerObservation,
    ImageObservation,
    ListedContainer,
)

STOPPED_STATUSES = frozenset({"created", "exited", "dead", "removing"})
def applies(check: str, module: Module) -> bool:
    """Whether a module gets a check (test_<check>[<module>])."""
    return check in module.checks


@dataclass(frozen=True)
class Change:
    """One difference between the repo and the host."""

    #: a drift code, e.g. IMAGE_TAG_MISMATCH
    code: str
    #: the manifest key it concerns, e.g. image.ref
    field: str
    #: what the repo says
    desired: str | None
    #: what the host shows
    observed: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "desired": self.desired, "observed": self.observed}


@dataclass(frozen=True)
class Warning:
    """Something that could not be proven; never changes the exit code."""

    #: a warning code, e.g. IMAGE_DIGEST_NOT_VERIFIED
    code: str
    #: one line for the operator
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check."""

    changes: tuple[Change, ...] = ()
    warnings: tuple[Warning, ...] = field(default=())


def _missing(module: Module) -> Verdict:
    return Verdict((Change("CONTAINER_MISSING", "container", module.container_name, None),))


def check_exists(module: Module, container: ContainerObservation | None) -> Verdict:
    """The container exists (or, for desired absent, does not)."""
    if module.state == "absent":
        if container is None:
            return Verdict()
        return Verdict((Change("UNEXPECTEDLY_PRESENT", "desired.state", "absent", container.status),))
    return _missing(module) if container is None else Verdict()


def check_labels(module: Module, container: ContainerObservation | None) -> Verdict:
    """Its compose project and service labels match the module."""
    if container is None:
        return _missing(module)
    changes = []
    project = container.label(PROJECT_LABEL)
    if project != module.project:
        changes.append(Change("PROJECT_LABEL_MISMATCH", "compose.project", module.project, project))
    service = container.label(SERVICE_LABEL)
    if service != module.service:
        changes.append(Change("SERVICE_LABEL_MISMATCH", "compose.service", module.service, service))
    return Verdict(tuple(changes))


def check_state(module: Module, container: ContainerObservation | None) -> Verdict:
    """It runs, or is stopped, as desired (running means State.Status == running)."""
    if container is None:
        return _missing(module)
    status = container.status
    if module.state == "running" and status != "running":
        return Verdict((Change("NOT_RUNNING", "desired.state", "running", status),))
    if module.state == "stopped" and status not in STOPPED_STATUSES:
        return Verdict((Change("UNEXPECTEDLY_RUNNING", "desired.state", "stopped", status),))
    return Verdict()


def _repo_digests_for(repository: str, image: ImageObservation) -> set[str]:
    digests = set()
    for entry in image.repo_digests:
        ref = parse_ref(entry)
        if ref is not None and ref.repository == repository and ref.digest:
            digests.add(ref.digest)
    return digests


def _tagged(desired: ImageRef, images: dict[str, ImageObservation]) -> ImageObservation | None:
    """The image the desired tag resolves to on the host now, if the host has it."""
    for image in images.values():
        for tag in image.repo_tags:
            ref = parse_ref(tag)
            if ref is not None and refs_match(desired, ref):
                return image
    return None


def check_image(module: Module, container: ContainerObservation | None,
                images: dict[str, ImageObservation]) -> Verdict:
    """Its configured image ref matches; its digest is proven when the repo declares one."""
    if container is None:
        return _missing(module)
    assert module.image_ref is not None
    desired = parse_ref(module.image_ref)
    observed = parse_ref(container.configured_image)
    assert desired is not None
    # Compose pinned by digest: the container's ref may be repository@sha256:… without the tag.
    pinned_match = (module.digest_pinned_in_compose and observed is not None and observed.digest is not None
                    and observed.repository == desired.repository and observed.tag in (None, desired.tag))
    if observed is None or not (refs_match(desired, observed) or pinned_match):
        return Verdict((Change("IMAGE_TAG_MISMATCH", "image.ref", module.image_ref, container.configured_image),))
    image = images.get(container.image_id)
    declared = module.image_digest or desired.digest
    tagged = _tagged(desired, images) if desired.digest is None else None
    if tagged is not None and tagged.id != container.image_id:
        # Someone pulled a newer image under the tag and never recreated the container.
        return Verdict((Change("IMAGE_STALE", "image.ref", f"{module.image_ref} (now {tagged.id[:19]})",
                               f"the container runs {container.image_id[:19]}"),))
    if image is None:
        return Verdict(warnings=(
            Warning("IMAGE_NOT_OBSERVED", f"image {container.image_id[:19]} of the container cannot be "
                    "inspected on the host"),
            Warning("IMAGE_DIGEST_NOT_VERIFIED", "the image ref matches but the running image could not be "
                    "inspected to prove its digest"),
        ))
    repo_digests = _repo_digests_for(desired.repository, image)
    pinned = observed.digest if module.digest_pinned_in_compose else None
    if module.image_digest is not None:
        if module.image_digest in repo_digests or module.image_digest == pinned:
            return Verdict()
        shown = ", ".join(sorted(repo_digests | ({pinned} if pinned else set()))) or None
        return Verdict((Change("IMAGE_DIGEST_MISMATCH", "image.digest", module.image_digest, shown),))
    if declared is not None and (declared in repo_digests or declared == observed.digest):
        return Verdict()
    return Verdict(warnings=(Warning(
        "IMAGE_DIGEST_NOT_VERIFIED",
        "the image ref matches, but no digest is declared (image.digest) to prove the running image"
        if declared is None else
        f"the image ref matches, but nothing on the host proves digest {declared}"),))


#: restarts since creation beyond which a running container counts as a restart loop
RESTART_LOOP_THRESHOLD = 5


def _joined(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "(none)"


def check_restart_policy(module: Module, container: ContainerObservation | None) -> Verdict:
    """Its restart policy is the declared one, and it is not caught in a restart loop."""
    if container is None:
        return _missing(module)
    assert module.restart_policy is not None
    changes = []
    desired, observed = module.restart_policy, container.restart_policy
    if not (desired == observed or (desired == "on-failure" and observed.startswith("on-failure"))):
        changes.append(Change("RESTART_POLICY_MISMATCH", "desired.restart_policy", desired, observed))
    if container.restarting or container.restart_count > RESTART_LOOP_THRESHOLD:
        changes.append(Change("RESTART_LOOP", "desired.restart_policy", f"at most {RESTART_LOOP_THRESHOLD} "
                              "restarts", f"{container.restart_count} restarts"
                              + (", restarting now" if container.restarting else "")))
    return Verdict(tuple(changes))


def check_ports(module: Module, container: ContainerObservation | None) -> Verdict:
    """Its published ports are exactly the declared set."""
    if container is None:
        return _missing(module)
    assert module.ports is not None
    observed = container.published_ports()
    if observed == module.ports:
        return Verdict()
    return Verdict((Change("PORTS_MISMATCH", "desired.ports", _joined(module.ports), _joined(observed)),))


def check_env(module: Module, container: ContainerObservation | None) -> Verdict:
    """The declared variables are set, and those with a digest hold that exact value (never shown)."""
    if container is None:
        return _missing(module)
    changes = []
    names = set(container.env_names)
    for name in module.env_keys or ():
        if name not in names:
            changes.append(Change("ENV_KEY_MISSING", "desired.env_keys", name, None))
    digests = dict(container.env_digests)
    for name, digest in module.env_digests or ():
        if name not in digests:
            if name not in (module.env_keys or ()):
                changes.append(Change("ENV_KEY_MISSING", f"desired.env_digests.{name}", name, None))
        elif digests[name] != digest:
            changes.append(Change("ENV_VALUE_MISMATCH", f"desired.env_digests.{name}", digest,
                                  "(a different value; not shown)"))
    return Verdict(tuple(changes))


def _mount_text(source: str, destination: str, read_only: bool) -> str:
    return f"{source}:{destination}" + (":ro" if read_only else "")


def check_mounts(module: Module, container: ContainerObservation | None) -> Verdict:
    """Its volume and bind mounts are exactly the declared set (observed bind sources are never shown)."""
    if container is None:
        return _missing(module)
    assert module.mounts is not None
    observed = {(source, destination, read_only) for _, source, destination, read_only in container.mounts}
    if observed == module.mounts:
        return Verdict()
    shown = [_mount_text(source if kind == "volume" else "(bind)", destination, read_only)
             for kind, source, destination, read_only in container.mounts]
    return Verdict((Change("MOUNTS_MISMATCH", "desired.mounts",
                           _joined(_mount_text(*m) for m in module.mounts), _joined(shown)),))


def check_networks(module: Module, container: ContainerObservation | None) -> Verdict:
    """It is attached to exactly the declared networks."""
    if container is None:
        return _missing(module)
    assert module.networks is not None
    if set(container.networks) == module.networks:
        return Verdict()
    return Verdict((Change("NETWORKS_MISMATCH", "desired.networks", _joined(module.networks),
                           _joined(container.networks)),))


def check_health(module: Module, container: ContainerObservation | None) -> Verdict:
    """It has a healthcheck, and its status is healthy."""
    if container is None:
        return _missing(module)
    if container.health == "healthy":
        return Verdict()
    return Verdict((Change("UNHEALTHY", "desired.health", "healthy", container.health or "no healthcheck"),))


def check_replicas(module: Module, container: ContainerObservation | None,
                   listing: tuple[ListedContainer, ...]) -> Verdict:
    """As many containers carry its compose project and service labels as it declares."""
    if container is None:
        return _missing(module)
    assert module.replicas is not None
    names = sorted(c.name for c in listing if (c.project, c.service) == (module.project, module.service))
    if len(names) == module.replicas:
        return Verdict()
    return Verdict((Change("REPLICAS_MISMATCH", "desired.replicas", str(module.replicas),
                           f"{len(names)}: {', '.join(names)}"),))


def check_orphans(project: str, modules: Iterable[Module], listing: tuple[ListedContainer, ...]) -> Verdict:
    """No container of the project runs on the host that no module claims (by service or by name)."""
    services = {m.service for m in modules}
    names = {m.container_name for m in modules}
    orphans = sorted((c.name, c.service) for c in listing
                     if c.project == project and c.service not in services and c.name not in names)
    return Verdict(tuple(Change("ORPHAN_CONTAINER", "container", None, f"{name} (service {service or '?'})")
                         for name, service in orphans))


def check_config_hash(module: Module, container: ContainerObservation | None, local_hash: str,
                      local_version: str) -> Verdict:
    """Compose would not recreate it: it was created from the config the repo's compose file gives."""
    if container is None:
        return _missing(module)
    observed, version = container.label(CONFIG_HASH_LABEL), container.label(COMPOSE_VERSION_LABEL)
    if version != local_version:
        # The hash follows Compose's own serialization, which has changed between releases.
        return Verdict(warnings=(Warning("CONFIG_HASH_NOT_COMPARABLE", f"the container was created by Compose "
                                         f"{version or '(unknown)'} and this machine has {local_version}; their "
                                         "config hashes cannot be compared"),))
    if observed == local_hash:
        return Verdict()
    return Verdict((Change("CONFIG_HASH_MISMATCH", "compose.file", f"config {local_hash[:12]} (the repo's)",
                           f"config {(observed or '(none)')[:12]}: Compose would recreate this container: it was "
                           "created from a different config than the repo's"),))
