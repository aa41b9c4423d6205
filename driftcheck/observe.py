"""Turn `docker ps` / `docker inspect` output into typed, redacted records, batched per host.

Redaction happens here: what leaves this module carries only the fields the checks compare
(names, the compose labels they read, state, image refs and ids). Env values, Cmd/Args,
health-check commands, other labels and mount sources never leave it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from driftcheck import codes
from driftcheck.allowlist import CONTAINER_ID_RE, IMAGE_ID_RE, IMAGE_INSPECT_PREFIX, INSPECT_PREFIX, PS_ARGV, PS_HEADER
from driftcheck.errors import ObservationError, one_line
from driftcheck.imageref import parse_ref
from driftcheck.records import KEPT_LABELS, ContainerObservation, ImageObservation, ListedContainer, Output
from driftcheck.transport import Transport

T = TypeVar("T")


def _invalid(host: str, what: str) -> ObservationError:
    return ObservationError(host, codes.OBSERVATION_INVALID, f"{what}; is the remote `docker` the Docker CLI?")


def _stderr_line(output: Output) -> str:
    return one_line(output.stderr.decode("utf-8", "replace")) or f"exit status {output.rc} without a message"


def _unavailable(host: str, what: str, output: Output) -> ObservationError:
    return ObservationError(host, codes.DOCKER_UNAVAILABLE, f"`{what}` failed on the host: {_stderr_line(output)}; "
                            "is dockerd running, and is the SSH user in the docker group?")


def parse_listing(host: str, stdout: bytes) -> tuple[ListedContainer, ...]:
    """`docker ps` header and rows -> every container with its compose labels and state."""
    found: list[ListedContainer] = []
    try:
        lines = [line for line in stdout.decode("utf-8").split("\n") if line.strip()]  # never splitlines()
        if not lines or not lines[0].startswith(PS_HEADER):
            raise ValueError("no header")
        for line in lines[1:]:
            row = json.loads(line)
            if not (isinstance(row, list) and len(row) == 6 and all(isinstance(v, str) for v in row)):
                raise ValueError("unexpected row shape")
            container_id, names, project, service, oneoff, state = row
            if not CONTAINER_ID_RE.fullmatch(container_id):
                raise ValueError("not a container id")
            found += [ListedContainer(container_id, name, project, service, oneoff == "True", state)
                      for name in names.split(",")]
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid(host, "`docker ps` printed output that is not a header line and one JSON row per "
                       "container (empty or cut short?)") from None
    return tuple(found)


def parse_ps(host: str, stdout: bytes) -> dict[str, str]:
    """`docker ps` header and rows -> {container name: container id}."""
    return {c.name: c.id for c in parse_listing(host, stdout)}


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
    host_config = _mapping(raw.get("HostConfig"))
    health = _mapping(state.get("Health")).get("Status")
    restart_count = raw.get("RestartCount", 0)
    if not isinstance(restart_count, int) or not (health is None or isinstance(health, str)):
        raise ValueError("field types")
    env_names, env_digests = _env(config.get("Env"))
    return ContainerObservation(
        name=name.lstrip("/"), id=container_id, status=status,
        configured_image=configured, image_id=image_id, labels=kept,
        restart_policy=_restart_policy(host_config.get("RestartPolicy")), restart_count=restart_count,
        restarting=state.get("Restarting") is True, ports=_ports(host_config.get("PortBindings")),
        env_names=env_names, env_digests=env_digests, mounts=_mounts(raw.get("Mounts")),
        networks=tuple(sorted(_mapping(_mapping(raw.get("NetworkSettings")).get("Networks")))),
        health=health, network_mode=_text(host_config.get("NetworkMode")),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("not a mapping")
    return value


def _restart_policy(raw: Any) -> str:
    policy = _mapping(raw)
    name, retries = policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0
    if not isinstance(name, str) or not isinstance(retries, int):
        raise ValueError("restart policy")
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def _ports(raw: Any) -> tuple[str, ...]:
    found = set()
    for container_port, bindings in _mapping(raw).items():
        port, _, proto = container_port.partition("/")
        for binding in bindings or []:
            binding = _mapping(binding)
            host_ip, host_port = binding.get("HostIp") or "0.0.0.0", binding.get("HostPort") or ""
            if not isinstance(host_ip, str) or not isinstance(host_port, str):
                raise ValueError("port binding")
            found.add(f"{host_ip}:{host_port}:{port}/{proto or 'tcp'}")
    return tuple(sorted(found))


def _env(raw: Any) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValueError("env")
    pairs = [item.partition("=") for item in raw]
    names = tuple(sorted({name for name, _, _ in pairs}))
    digests = tuple(sorted((name, "sha256:" + hashlib.sha256(value.encode()).hexdigest())
                           for name, _, value in pairs))
    return names, digests


def _mounts(raw: Any) -> tuple[tuple[str, str, str, bool], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("mounts")
    found = []
    for item in raw:
        mount = _mapping(item)
        kind, destination, rw = mount.get("Type"), mount.get("Destination"), mount.get("RW", True)
        source = mount.get("Name") if kind == "volume" else mount.get("Source")
        if kind not in ("volume", "bind"):
            continue  # tmpfs and others carry no source to compare
        if not (isinstance(source, str) and isinstance(destination, str) and isinstance(rw, bool)):
            raise ValueError("mount")
        found.append((kind, source, destination, not rw))
    return tuple(sorted(found))


_DECODER = json.JSONDecoder()
#: one host's answer parsed at a time: the GIL runs one parser anyway, and hosts that answer together
#: would otherwise hold every raw record of theirs at once (a fleet's peak memory)
_PARSING = threading.Lock()
_SPACE = re.compile(r"[ \t\n\r]*")


def _array_items(text: str) -> Iterator[Any]:
    """The items of a JSON array, one at a time: json.loads of a fleet's `docker inspect` (megabytes
    of JSON) would hold every raw record at once, env and all, where only their redacted form is kept."""
    i = _skip(text, 0)
    if text[i:i + 1] != "[":
        raise ValueError("not a list")
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        i += 1
    else:
        while True:
            item, i = _DECODER.raw_decode(text, i)
            yield item
            i = _skip(text, i)
            if text[i:i + 1] == "]":
                i += 1
                break
            if text[i:i + 1] != ",":
                raise ValueError("expected , or ] in the list")
            i = _skip(text, i + 1)
    if _skip(text, i) != len(text):
        raise ValueError("extra data after the list")


def _skip(text: str, i: int) -> int:
    """The index of the first character at or after i that is not JSON whitespace."""
    space = _SPACE.match(text, i)
    return space.end() if space else i


def parse_inspect(host: str, stdout: bytes) -> dict[str, ContainerObservation]:
    """`docker inspect --type container` JSON -> {name: redacted observation}."""
    try:
        containers = [_container(item) for item in _array_items(stdout.decode("utf-8"))]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
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
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise _invalid(host, "`docker image inspect` printed JSON of an unexpected shape") from None
    return images


class HostObserver:
    """Observes the selected modules of one host with at most three commands, each sent once.

    `containers()` sends `docker ps` and one `docker inspect --type container` for every
    wanted container present; `images()` sends one `docker image inspect` for the images
    those containers run. Results and failures are cached for the session.
    """

    def __init__(self, transport: Transport, wanted: Iterable[str] | None, refs: Iterable[str] = ()):
        self.transport = transport
        #: the containers to inspect; None: every container that carries a compose project label
        self.wanted = None if wanted is None else sorted(set(wanted))
        #: the image refs the modules declare (without a digest): inspected with the containers'
        #: images, so the image check sees what each tag resolves to on the host now (IMAGE_STALE)
        self.refs = sorted({r for r in refs if "@" not in r})
        self._containers: dict[str, ContainerObservation] | ObservationError | None = None
        self._images: dict[str, ImageObservation] | ObservationError | None = None
        self._listing: tuple[ListedContainer, ...] = ()

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
            raise _fresh(self._containers)
        return self._containers

    def listing(self) -> tuple[ListedContainer, ...]:
        """Every container on the host (from the same `docker ps`), for orphans and replicas."""
        self.containers()
        return self._listing

    def images(self) -> dict[str, ImageObservation]:
        containers = self.containers()
        if self._images is None:
            try:
                self._images = self._observe_images(containers)
            except ObservationError as exc:
                self._images = exc
        if isinstance(self._images, ObservationError):
            raise _fresh(self._images)
        return self._images

    def _observe_containers(self) -> dict[str, ContainerObservation]:
        ps = self.transport.run(PS_ARGV)
        if ps.rc == 127:
            raise ObservationError(self.host, codes.DOCKER_UNAVAILABLE, "`docker` was not found on the remote "
                                   f"user's PATH ({_stderr_line(ps)}); install the Docker CLI or fix that PATH")
        if ps.rc != 0:
            raise _unavailable(self.host, "docker ps", ps)
        self._listing = parse_listing(self.host, ps.stdout)
        present = {c.name: c.id for c in self._listing}
        wanted = set(self.wanted) if self.wanted is not None else {c.name for c in self._listing if c.project}
        ids = sorted({present[name] for name in wanted if name in present})
        if not ids:
            return {}
        inspect = self.transport.run((*INSPECT_PREFIX, *ids))
        found = _complete(self.host, "docker inspect", "container", inspect, ids,
                          lambda out: {c.id: c for c in parse_inspect(self.host, out).values()},
                          lambda found: found.__contains__)
        # A container removed between ps and inspect is simply missing.
        return {c.name: c for c in found.values() if c.name in wanted}

    def _observe_images(self, containers: dict[str, ContainerObservation]) -> dict[str, ImageObservation]:
        ids = sorted({c.image_id for c in containers.values() if IMAGE_ID_RE.fullmatch(c.image_id)})
        if not ids:
            return {}
        result = self.transport.run((*IMAGE_INSPECT_PREFIX, *ids, *self.refs))
        return _complete(self.host, "docker image inspect", "image", result, [*ids, *self.refs],
                         lambda out: parse_image_inspect(self.host, out), _image_answers)


def _image_answers(images: dict[str, ImageObservation]) -> Callable[[str], bool]:
    """Whether an image inspect's output answers for an id, or a tag (by its images' RepoTags), it was asked."""
    tags = {parse_ref(tag) for image in images.values() for tag in image.repo_tags} - {None}
    return lambda asked: asked in images or parse_ref(asked) in tags


def _complete(host: str, what: str, kind: str, output: Output, asked: list[str],
              parse: Callable[[bytes], dict[str, T]],
              answers: Callable[[dict[str, T]], Callable[[str], bool]]) -> dict[str, T]:
    """Parse a batched inspect: every object asked about must be in its output, or named missing.

    docker exits 1 when some objects are missing, prints the ones it found and names each missing
    one on stderr. Nothing else counts as "missing": an exit 1 without a word, another exit status
    or another complaint on stderr is DOCKER_UNAVAILABLE; an object left out without being named
    is OBSERVATION_INVALID. Either way the modules are errors, never in sync nor falsely missing.
    """
    missing: set[str] = set()
    if output.rc != 0:
        named = _named_missing(output, kind)
        if named is None:
            raise _unavailable(host, what, output)
        if not named <= set(asked):
            raise _invalid(host, f"`{what}` said {len(named - set(asked))} object(s) it was not asked about are "
                           "missing")
        missing = named
    if not output.stdout.strip() and output.rc == 0:
        raise _invalid(host, f"`{what}` exited 0 but printed nothing")
    found: dict[str, T] = {}
    if output.stdout.strip():
        with _PARSING:
            found = parse(output.stdout)
    answered = answers(found)
    left = [a for a in asked if a not in missing and not answered(a)]
    if left:
        raise _invalid(host, f"`{what}` exited {output.rc} but left out {len(left)} of the {len(asked)} objects it "
                       "was asked for without naming them missing")
    return found


def _fresh(error: ObservationError) -> ObservationError:
    """A new exception per check: re-raising one instance grows its traceback with every raise."""
    copy = ObservationError(error.host, error.code, error.message)
    copy.__suppress_context__ = True
    return copy


#: How docker names an object it could not find, one line each: 20.10 `Error: No such container:
#: <arg>`; 28 `Error response from daemon: No such container: <arg>`, and for an image
#: `Error response from daemon: no such image: <arg>: No such image: <normalised arg>`.
_NO_SUCH = re.compile(r"(?:Error|Error response from daemon): [Nn]o such (?P<kind>container|image|object): "
                      r"(?P<name>\S+?)(?:: No such image: \S+)?")


def _named_missing(output: Output, kind: str) -> set[str] | None:
    """The objects a failed inspect names as missing, when that is all it says; None otherwise.

    Only exit 1 with at least one line, each line naming one missing object of this kind: an
    exit 1 with an empty stderr names nothing, and must never read as "every object missing".
    """
    lines = [ln.strip() for ln in output.stderr.decode("utf-8", "replace").split("\n") if ln.strip()]
    named = set()
    for line in lines:
        match = _NO_SUCH.fullmatch(line)
        if match is None or match["kind"] not in (kind, "object"):
            return None
        named.add(match["name"])
    return named if output.rc == 1 and named else None
