"""Desired (a Module) against observed (redacted records): pure functions, no I/O.

Every check has the same shape, `(subject, observed) -> Verdict`: the drift it found (changes)
and what it could not prove (warnings). The registry (registry.py) names them; when a module's
container is missing, the registry answers CONTAINER_MISSING for every check that needs it, so
the plan holds that one cause once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from driftcheck import codes
from driftcheck.imageref import ImageRef, parse_ref, refs_match
from driftcheck.records import (
    COMPOSE_VERSION_LABEL,
    CONFIG_HASH_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerObservation,
    ImageObservation,
    ListedContainer,
    LocalCompose,
    mount_entry,
)
from driftcheck.verdict import Change, Verdict, Warning

if TYPE_CHECKING:
    from driftcheck.manifest import Module

STOPPED_STATUSES = frozenset({"created", "exited", "dead", "removing"})
#: restarts since creation beyond which a running container counts as a restart loop
RESTART_LOOP_THRESHOLD = 5


@dataclass(frozen=True)
class ProjectOnHost:
    """One compose project on one host, and the modules that claim its containers: an orphans check's subject."""

    host: str
    project: str
    #: the modules of this project on this host
    claims: tuple[Module, ...] = field(default=(), compare=False, repr=False)

    @property
    def pseudo_module(self) -> str:
        return f"orphans@{self.host}/{self.project}"


@dataclass(frozen=True)
class Observed:
    """What a check is given of the host: only what its registry row says it needs."""

    #: the module's container as inspected, None when it does not exist
    container: ContainerObservation | None = None
    #: the images of the host's observed containers and declared tags, by id
    images: Mapping[str, ImageObservation] = field(default_factory=dict)
    #: every container on the host (docker ps)
    listing: tuple[ListedContainer, ...] = ()
    #: what Compose on this machine makes of the module's compose.file
    compose: LocalCompose | None = None

    @property
    def present(self) -> ContainerObservation:
        assert self.container is not None, "the registry answers CONTAINER_MISSING first"
        return self.container


def missing(module: Module) -> Verdict:
    return Verdict((Change(codes.CONTAINER_MISSING, "container", module.container_name, None),))


def check_exists(module: Module, observed: Observed) -> Verdict:
    """The container exists (or, for desired absent, does not)."""
    container = observed.container
    if module.state == "absent":
        if container is None:
            return Verdict()
        return Verdict((Change(codes.UNEXPECTEDLY_PRESENT, "desired.state", "absent", container.status),))
    return missing(module) if container is None else Verdict()


def check_labels(module: Module, observed: Observed) -> Verdict:
    """Its compose project and service labels match the module."""
    container = observed.present
    changes = []
    project = container.label(PROJECT_LABEL)
    if project != module.project:
        changes.append(Change(codes.PROJECT_LABEL_MISMATCH, "compose.project", module.project, project))
    service = container.label(SERVICE_LABEL)
    if service != module.service:
        changes.append(Change(codes.SERVICE_LABEL_MISMATCH, "compose.service", module.service, service))
    return Verdict(tuple(changes))


def _not_running(status: str) -> Change:
    return Change(codes.NOT_RUNNING, "desired.state", "running", status)


def check_state(module: Module, observed: Observed) -> Verdict:
    """It runs, or is stopped, as desired (running means State.Status == running)."""
    status = observed.present.status
    if module.state == "running" and status != "running":
        return Verdict((_not_running(status),))
    if module.state == "stopped" and status not in STOPPED_STATUSES:
        return Verdict((Change(codes.UNEXPECTEDLY_RUNNING, "desired.state", "stopped", status),))
    return Verdict()


def _repo_digests_for(repository: str, image: ImageObservation) -> set[str]:
    digests = set()
    for entry in image.repo_digests:
        ref = parse_ref(entry)
        if ref is not None and ref.repository == repository and ref.digest:
            digests.add(ref.digest)
    return digests


def _tagged(desired: ImageRef, images: Mapping[str, ImageObservation]) -> ImageObservation | None:
    """The image the desired tag resolves to on the host now, if the host has it."""
    for image in images.values():
        for tag in image.repo_tags:
            ref = parse_ref(tag)
            if ref is not None and refs_match(desired, ref):
                return image
    return None


def check_image(module: Module, observed: Observed) -> Verdict:
    """Its configured image ref matches; its digest is proven when the repo declares one."""
    container, images = observed.present, observed.images
    assert module.image_ref is not None
    desired = parse_ref(module.image_ref)
    configured = parse_ref(container.configured_image)
    assert desired is not None
    if (configured is not None and configured.repository == desired.repository and desired.digest is not None
            and configured.digest is not None and configured.digest != desired.digest):
        # A digest in the declared ref is a claim: the container was created from another one.
        return Verdict((Change(codes.IMAGE_DIGEST_MISMATCH, "image.ref", desired.digest, configured.digest,
                               f"the container's configured image {container.configured_image} pins another "
                               "digest than image.ref"),))
    # Compose pinned by digest: the container's ref may be repository@sha256:… without the tag.
    pinned_match = (module.digest_pinned_in_compose and configured is not None and configured.digest is not None
                    and configured.repository == desired.repository and configured.tag in (None, desired.tag))
    if configured is None or not (refs_match(desired, configured) or pinned_match):
        return Verdict((Change(codes.IMAGE_TAG_MISMATCH, "image.ref", module.image_ref, container.configured_image),))
    image = images.get(container.image_id)
    declared = module.image_digest or desired.digest
    tagged = _tagged(desired, images) if desired.digest is None else None
    if tagged is not None and tagged.id != container.image_id:
        return Verdict((Change(codes.IMAGE_STALE, "image.ref", tagged.id, container.image_id,
                               f"{module.image_ref} now names another image than the container runs: pulled "
                               "or built, and the container never recreated"),))
    if image is None:
        return Verdict(warnings=(
            Warning(codes.IMAGE_NOT_OBSERVED, f"image {container.image_id[:19]} of the container cannot be "
                    "inspected on the host"),
            Warning(codes.IMAGE_DIGEST_NOT_VERIFIED, "the image ref matches but the running image could not be "
                    "inspected to prove its digest"),
        ))
    repo_digests = _repo_digests_for(desired.repository, image)
    pinned = configured.digest if module.digest_pinned_in_compose else None
    if module.image_digest is not None and not (module.image_digest in repo_digests or module.image_digest == pinned):
        shown = tuple(sorted(repo_digests | ({pinned} if pinned else set())))
        return Verdict((Change(codes.IMAGE_DIGEST_MISMATCH, "image.digest", module.image_digest,
                               shown[0] if len(shown) == 1 else shown or None),))
    # Both declared digests are claims: image.digest proven above does not excuse the one image.ref pins.
    if desired.digest is not None and not (desired.digest in repo_digests or desired.digest == configured.digest):
        if repo_digests:
            return Verdict((Change(codes.IMAGE_DIGEST_MISMATCH, "image.ref", desired.digest,
                                   tuple(sorted(repo_digests)) if len(repo_digests) > 1 else repo_digests.pop(),
                                   "the running image's repository digests do not include the digest image.ref "
                                   "pins"),))
        return Verdict(warnings=(Warning(codes.IMAGE_DIGEST_NOT_VERIFIED, "the image ref matches, but nothing on "
                                         f"the host proves digest {desired.digest}"),))
    if declared is not None:
        return Verdict()
    return Verdict(warnings=(Warning(
        codes.IMAGE_DIGEST_NOT_VERIFIED,
        "the image ref matches, but no digest is declared (image.digest) to prove the running image"),))


def _sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(items))


def check_restart_policy(module: Module, observed: Observed) -> Verdict:
    """Its restart policy is the declared one, and it is not caught in a restart loop."""
    container = observed.present
    assert module.restart_policy is not None
    changes = []
    desired, policy = module.restart_policy, container.restart_policy
    # docker shows on-failure with no retry limit (MaximumRetryCount 0) as plain on-failure
    exact = "on-failure" if desired == "on-failure:0" else desired
    if not (exact == policy or (desired == "on-failure" and policy.startswith("on-failure"))):
        changes.append(Change(codes.RESTART_POLICY_MISMATCH, "desired.restart_policy", desired, policy))
    if container.restarting or container.restart_count > RESTART_LOOP_THRESHOLD:
        changes.append(Change(codes.RESTART_LOOP, "desired.restart_policy", RESTART_LOOP_THRESHOLD,
                              container.restart_count,
                              f"{container.restart_count} restarts since it was created"
                              + (", restarting now" if container.restarting else "")
                              + f" (at most {RESTART_LOOP_THRESHOLD} expected)"))
    return Verdict(tuple(changes))


def _port_key(port: str) -> tuple[str, str]:
    """(host_ip, container_port/proto) of host_ip:host_port:container_port/proto (host_ip may hold colons)."""
    host, _, container = port.rpartition(":")
    return host.rpartition(":")[0], container


def check_ports(module: Module, observed: Observed) -> Verdict:
    """Its published ports are exactly the declared set; a declared ephemeral host port (`ip::80/tcp`) is
    matched by any published host port of that address and container port (SPEC §9), empty included."""
    assert module.ports is not None
    ports = observed.present.published_ports()
    missing, extra = set(module.ports) - ports, ports - module.ports
    for wanted in sorted(p for p in missing if p.split(":")[-2] == ""):
        match = next((p for p in sorted(extra) if _port_key(p) == _port_key(wanted)), None)
        if match is not None:
            missing.discard(wanted)
            extra.discard(match)
    if not missing and not extra:
        return Verdict()
    return Verdict((Change(codes.PORTS_MISMATCH, "desired.ports", _sorted(module.ports), _sorted(ports),
                           _missing_extra(missing, extra)),))


def _missing_extra(missing: Iterable[str], extra: Iterable[str]) -> str:
    return f"missing: {', '.join(_sorted(missing)) or '(none)'}; extra: {', '.join(_sorted(extra)) or '(none)'}"


def check_env(module: Module, observed: Observed) -> Verdict:
    """The declared variables are set, and those with a digest hold that exact value (never shown)."""
    container = observed.present
    changes = []
    names = set(container.env_names)
    for name in module.env_keys or ():
        if name not in names:
            changes.append(Change(codes.ENV_KEY_MISSING, "desired.env_keys", name, None))
    if module.env_keys_complete:
        declared = set(module.env_keys or ()) | {name for name, _ in module.env_digests or ()}
        changes += [Change(codes.ENV_KEY_UNEXPECTED, "desired.env_keys", None, name,
                           "env_keys_complete: a variable the module does not declare is set")
                    for name in sorted(names - declared)]
    digests = dict(container.env_digests)
    for name, digest in module.env_digests or ():
        if name not in digests:
            if name not in (module.env_keys or ()):
                changes.append(Change(codes.ENV_KEY_MISSING, f"desired.env_digests.{name}", name, None))
        elif digests[name] != digest:
            changes.append(Change(codes.ENV_VALUE_MISMATCH, f"desired.env_digests.{name}", digest, None,
                                  "the variable holds a different value (never shown)"))
    return Verdict(tuple(changes))


def check_mounts(module: Module, observed: Observed) -> Verdict:
    """Its mounts are exactly the declared set, both sides in records.mount_entry's form: an anonymous
    volume by its destination, a Compose secret by its name. desired: the declared entries the host
    lacks; observed: the host's entries not declared (a bind's source never shown)."""
    assert module.mounts is not None
    shown: dict[str, str] = {}
    for kind, source, destination, read_only in observed.present.mounts:
        entry = mount_entry(kind, source, destination, read_only)
        if kind == "bind" and not entry.startswith("secret:"):
            shown[entry] = f"(bind):{destination}" + (":ro" if read_only else "")
        else:
            shown[entry] = entry
    missing = _sorted(module.mounts - set(shown))
    extra = _sorted(text for entry, text in shown.items() if entry not in module.mounts)
    if not missing and not extra:
        return Verdict()
    return Verdict((Change(codes.MOUNTS_MISMATCH, "desired.mounts", missing, extra, _missing_extra(missing, extra)),))


def check_networks(module: Module, observed: Observed) -> Verdict:
    """It is attached to exactly the declared networks."""
    container = observed.present
    assert module.networks is not None
    if set(container.networks) == module.networks:
        return Verdict()
    return Verdict((Change(codes.NETWORKS_MISMATCH, "desired.networks", _sorted(module.networks),
                           _sorted(container.networks)),))


def check_health(module: Module, observed: Observed) -> Verdict:
    """It has a healthcheck, and its status is healthy; a container that is not running has one cause."""
    container = observed.present
    if container.status != "running":
        return Verdict((_not_running(container.status),))  # the state check's change: one cause, one code
    if container.health == "healthy":
        return Verdict()
    return Verdict((Change(codes.UNHEALTHY, "desired.health", "healthy", container.health,
                           None if container.health else "the container has no healthcheck"),))


def _in_state(desired: str, state: str) -> bool:
    return state == "running" if desired == "running" else state in STOPPED_STATUSES


def check_replicas(module: Module, observed: Observed) -> Verdict:
    """As many containers of its compose service exist as it declares, the others in its desired state too
    (its own container's state is the state check's one cause). One-off containers (`docker compose run`)
    are never replicas; a running one is a warning."""
    assert module.replicas is not None
    service = sorted((c for c in observed.listing if (c.project, c.service) == (module.project, module.service)),
                     key=lambda c: c.name)
    replicas = [c for c in service if not c.oneoff]
    astray = [c for c in replicas if c.name != module.container_name and not _in_state(module.state, c.state)]
    oneoffs = [c.name for c in service if c.oneoff and c.state == "running"]
    warnings = (Warning(codes.ONEOFF_RUNNING, f"one-off container(s) of the service running (docker compose run, "
                        f"never counted as replicas): {', '.join(oneoffs)}"),) if oneoffs else ()
    if len(replicas) == module.replicas and not astray:
        return Verdict(warnings=warnings)
    names = [c.name + (f" ({c.state or 'unknown state'})" if c in astray else "") for c in replicas]
    return Verdict((Change(codes.REPLICAS_MISMATCH, "desired.replicas", module.replicas, len(replicas) - len(astray),
                           f"containers of the service: {', '.join(names) or '(none)'}"
                           + (f"; not {module.state}: {len(astray)}" if astray else "")),), warnings)


def check_orphans(scope: ProjectOnHost, observed: Observed) -> Verdict:
    """No container of the project runs on the host that no module claims (by service or by name)."""
    services = {m.service for m in scope.claims}
    names = {m.container_name for m in scope.claims}
    orphans = sorted((c.name, c.service) for c in observed.listing
                     if c.project == scope.project and c.service not in services and c.name not in names
                     and not c.oneoff)  # a kept `docker compose run` container is no service of its own
    return Verdict(tuple(Change(codes.ORPHAN_CONTAINER, "container", None, name,
                                f"service {service or '(no service label)'}; no module claims it")
                         for name, service in orphans))


def check_config_hash(module: Module, observed: Observed) -> Verdict:
    """Compose would not recreate it: it was created from the config the repo's compose file gives."""
    container = observed.present
    assert observed.compose is not None
    local = observed.compose
    label, version = container.label(CONFIG_HASH_LABEL), container.label(COMPOSE_VERSION_LABEL)
    if version != local.version:
        # The hash follows Compose's own serialization, which has changed between releases.
        return Verdict(warnings=(Warning(codes.CONFIG_HASH_NOT_COMPARABLE, f"the container was created by Compose "
                                         f"{version or '(unknown)'} and this machine has {local.version}; their "
                                         "config hashes cannot be compared"),))
    if label == local.hash:
        return Verdict()
    if local.network_mode.startswith("service:") and not container.network_mode:
        # Compose hashes it with the other container's id (container:<id>); without that id observed,
        # the repo's hash cannot be compared, and a recreate must never be claimed.
        return Verdict(warnings=(Warning(codes.CONFIG_HASH_NOT_COMPARABLE, f"network_mode {local.network_mode}: "
                                         "Compose hashes this service with the other container's id, which "
                                         "was not observed, so the repo's hash cannot be compared"),))
    return Verdict((Change(codes.CONFIG_HASH_MISMATCH, "compose.file", local.hash, label,
                           "Compose would recreate this container: it was created from a different config "
                           "than the repo's"),))
