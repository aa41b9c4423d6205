"""Load and strictly validate `modules/<name>/module.yaml` (schema_version 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from driftcheck.errors import ManifestError, kind_of, shown
from driftcheck.fields import Fields
from driftcheck.imageref import DIGEST_RE, MAX_REF_LENGTH, parse_ref
from driftcheck.registry import checks_for
from driftcheck.schema import validate
from driftcheck.yamlfile import load_yaml

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SERVICE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
CONTAINER_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
TAG_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_NAMES = frozenset({"and", "or", "not"})
RESERVED_TAGS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "manifest"}
)
STATES = ("running", "stopped", "absent")

RESTART_POLICY_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:[0-9]{1,4})?)$")
PORT_RE = re.compile(r"^(?:(?P<ip>[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
                     r"(?P<host>[0-9]{1,5}):(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
VOLUME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9_.@+/-]{0,254}$")
NETWORK_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
#: the desired keys whose checks compare the container's runtime configuration (SPEC §2)
RUNTIME_KEYS = ("replicas", "restart_policy", "ports", "env_keys", "env_digests", "mounts", "networks", "health")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class Waiver:
    """An ignore: entry: one check of one module silenced, with a reason, until a date."""

    #: the check it silences (the test id's test_<check>)
    check: str
    #: why, for whoever reads the plan
    reason: str
    #: the last day (UTC) it holds; None for no end
    until: date | None

    def expired(self, today: date) -> bool:
        return self.until is not None and today > self.until

    def as_dict(self) -> dict[str, str | None]:
        return {"check": self.check, "reason": self.reason,
                "until": None if self.until is None else self.until.isoformat()}


@dataclass(frozen=True)
class Module:
    """One module.yaml, validated."""

    #: module name, equal to its folder name
    name: str
    #: the manifest file, as shown in messages
    path: str
    #: inventory name of the host that runs it
    host: str
    #: pytest markers this module carries
    tags: tuple[str, ...]
    #: compose project name
    project: str
    #: compose service name
    service: str
    #: the container to observe (`<project>-<service>-1` unless set)
    container_name: str
    #: running | stopped | absent
    state: str
    #: desired image reference, as written; None only when state is absent
    image_ref: str | None
    #: catalog digest the running image must carry
    image_digest: str | None
    #: compose refers to the image by digest
    digest_pinned_in_compose: bool
    #: free text
    description: str | None = None
    #: desired.replicas: containers <project>-<service>-1..N
    replicas: int | None = None
    #: desired.restart_policy: no, always, unless-stopped, on-failure[:N]
    restart_policy: str | None = None
    #: desired.ports, normalised to host_ip:host_port:container_port/proto
    ports: frozenset[str] | None = None
    #: desired.env_keys: variable names that must be set
    env_keys: tuple[str, ...] | None = None
    #: desired.env_digests: (name, sha256:<hex> of the exact value)
    env_digests: tuple[tuple[str, str], ...] | None = None
    #: desired.mounts as (volume or host path, destination, read_only)
    mounts: frozenset[tuple[str, str, bool]] | None = None
    #: desired.networks
    networks: frozenset[str] | None = None
    #: desired.health: healthy
    health: str | None = None
    #: ignore: waivers, at most one per check
    ignore: tuple[Waiver, ...] = ()
    #: compose.file, resolved in the module's folder: the config-hash check's source
    compose_file: str | None = None

    @property
    def checks(self) -> tuple[str, ...]:
        """The checks this module gets (test_<check>[<module>]), from the check registry."""
        return checks_for(self)

    def waiver(self, check: str) -> Waiver | None:
        return next((w for w in self.ignore if w.check == check), None)


def parse_module(data: Any, path: str, folder: str, base: Path | None = None, full_schema: bool = False) -> Module:
    """Validate one parsed module.yaml; raises ManifestError naming the first problem.

    schema/module.schema.json (what editors and pre-commit check) gives the words for every
    problem it can say: a file these rules refuse is validated with it, and its message wins.
    A file these rules accept, the schema accepts too (tests/unit/test_schema.py proves it on
    generated manifests), so a run does not pay for jsonschema on every valid file; with
    full_schema (make validate) every file is validated with it first anyway. The rules the
    schema cannot say (the folder name, port ranges, real dates, files, which checks a module
    has) are only here.
    """
    if full_schema:
        validate("module", data, path)
    try:
        return _parse_module(data, path, folder, base)
    except ManifestError:
        validate("module", data, path)  # the schema's message, where it has one
        raise


def _parse_module(data: Any, path: str, folder: str, base: Path | None) -> Module:
    top = Fields(data, path, "")
    top.check_keys({"schema_version", "name", "description", "host", "tags", "compose", "desired", "image",
                    "ignore"})
    version = data.get("schema_version")
    if version is None:
        raise top.fail("schema_version", "is required; expected the integer 2")
    if type(version) is not int or version != 2:
        raise top.fail("schema_version", f"expected the integer 2, got {version!r}")
    name = top.string("name", NAME_RE, required=True, what="a name matching ^[a-z0-9][a-z0-9-]{0,62}$")
    assert name is not None
    if name in RESERVED_NAMES:
        raise top.fail("name", f"{name!r} is reserved (it breaks pytest -k)")
    if name != folder:
        raise top.fail("name", f"expected the folder name {folder!r}, got {name!r}")
    description = top.string("description")
    if description is not None and len(description) > 1000:
        raise top.fail("description", "expected at most 1000 characters")
    host = top.string("host", CONTAINER_RE, required=True, what="a host name from the inventory")
    assert host is not None
    tags = _tags(top)

    compose = Fields(data.get("compose"), path, "compose")
    compose.check_keys({"project", "service", "container_name", "file"})
    project = compose.string("project", PROJECT_RE, required=True,
                             what="a compose project name matching ^[a-z0-9][a-z0-9_-]*$")
    service = compose.string("service", SERVICE_RE, required=True,
                             what="a compose service name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    assert project is not None and service is not None
    container = compose.string("container_name", CONTAINER_RE,
                               what="a container name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    compose_file = _compose_file(compose, base)

    desired_data = data.get("desired", {})
    desired = Fields({} if desired_data is None else desired_data, path, "desired")
    desired.check_keys({"state", *RUNTIME_KEYS})
    state = desired.string("state", what="one of running, stopped, absent")
    state = "running" if state is None else state
    if state not in STATES:
        raise desired.fail("state", f"expected one of running, stopped, absent, got {shown(state)}")
    runtime = _runtime(desired, state)

    ref, digest, pinned = _image(data, path, required=state != "absent")
    module = Module(
        name=name, path=path, host=host, tags=tags, project=project, service=service,
        container_name=container or f"{project}-{service}-1", state=state, image_ref=ref,
        image_digest=digest, digest_pinned_in_compose=pinned, description=description, **runtime,
        compose_file=compose_file if state != "absent" else None,
    )
    return replace(module, ignore=_ignore(top, module.checks))


def _compose_file(compose: Fields, base: Path | None) -> str | None:
    """compose.file: a file in the module's folder (or below it), never outside."""
    text = compose.string("file", what="a compose file path relative to the module folder")
    if text is None:
        return None
    relative = Path(text)
    if not text or relative.is_absolute() or ".." in relative.parts or not PATH_RE.match("/" + text):
        raise compose.fail("file", f"expected a path inside the module folder, got {shown(text)}")
    if base is None:
        return text
    target = base / relative
    if not target.is_file():
        raise compose.fail("file", f"expected an existing file in the module folder, got {shown(text)}")
    return str(target)


def _ignore(top: Fields, checks: tuple[str, ...]) -> tuple[Waiver, ...]:
    raw = top.data.get("ignore")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise top.fail("ignore", f"expected a list of {{check, reason, until}}, got {kind_of(raw)}")
    waivers: list[Waiver] = []
    for index, item in enumerate(raw):
        entry = Fields(item, top.path, f"ignore[{index}]")
        entry.check_keys({"check", "reason", "until"})
        check = entry.string("check", required=True, what=f"one of this module's checks ({', '.join(checks)})")
        if check not in checks:
            raise entry.fail("check", f"expected one of this module's checks ({', '.join(checks)}), got "
                             f"{shown(str(check))}")
        if any(w.check == check for w in waivers):
            raise entry.fail("check", f"{check!r} is already ignored by an earlier entry")
        reason = entry.string("reason", required=True, what="a reason (who, why, a ticket)")
        if not reason or not reason.strip() or len(reason) > 500:
            raise entry.fail("reason", "expected a reason of 1 to 500 characters")
        waivers.append(Waiver(str(check), reason.strip(), _until(entry)))
    return tuple(waivers)


def _until(entry: Fields) -> date | None:
    value = entry.data.get("until")
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise entry.fail("until", f"expected a date YYYY-MM-DD, got {shown(str(value))}")


def _runtime(desired: Fields, state: str) -> dict[str, Any]:
    """The optional runtime keys of desired:, each normalised for comparison."""
    found: dict[str, Any] = {}
    for key in RUNTIME_KEYS:
        if desired.data.get(key) is None:
            continue
        if state == "absent":
            raise desired.fail(key, "expected only with desired.state running or stopped (an absent "
                               "container has no configuration to check)")
        if key == "health" and state != "running":
            raise desired.fail(key, "expected only with desired.state running (a stopped container has no "
                               "health status)")
    replicas = desired.data.get("replicas")
    if replicas is not None and (type(replicas) is not int or not 1 <= replicas <= 1000):
        raise desired.fail("replicas", f"expected a whole number from 1 to 1000, got {replicas!r}")
    found["replicas"] = replicas
    found["restart_policy"] = desired.string("restart_policy", RESTART_POLICY_RE,
                                             what="one of no, always, unless-stopped, on-failure[:N]")
    found["health"] = desired.string("health", re.compile(r"^healthy$"), what="healthy")
    ports = _string_list(desired, "ports", "a port '[host_ip:]host_port:container_port[/proto]' (quote it: "
                         "YAML reads 22:22 as a number)")
    if ports is not None:
        found["ports"] = frozenset(_port(desired, f"ports[{i}]", p) for i, p in enumerate(ports))
    env_keys = _string_list(desired, "env_keys", "a variable name", ENV_NAME_RE)
    found["env_keys"] = None if env_keys is None else tuple(dict.fromkeys(env_keys))
    digests = desired.data.get("env_digests")
    if digests is not None:
        table = Fields(digests, desired.path, "desired.env_digests")
        for name in table.data:
            if not isinstance(name, str) or not ENV_NAME_RE.match(name):
                raise table.fail(str(name), "expected a variable name as the key")
            table.string(name, DIGEST_RE, required=True, what="sha256:<64 lowercase hex> of the exact value")
        found["env_digests"] = tuple(sorted(table.data.items()))
    mounts = _string_list(desired, "mounts", "a mount 'volume:/destination[:ro]' or '/host/path:/destination[:ro]'")
    if mounts is not None:
        found["mounts"] = frozenset(_mount(desired, f"mounts[{i}]", m) for i, m in enumerate(mounts))
    networks = _string_list(desired, "networks", "a network name", NETWORK_RE)
    found["networks"] = None if networks is None else frozenset(networks)
    return found


def _string_list(fields: Fields, name: str, what: str, pattern: re.Pattern[str] | None = None) -> list[str] | None:
    raw = fields.data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise fields.fail(name, f"expected a list, each item {what}; got {kind_of(raw)}")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise fields.fail(f"{name}[{index}]", f"expected {what}, got {kind_of(item)}")
        if pattern is not None and not pattern.match(item):
            raise fields.fail(f"{name}[{index}]", f"expected {what}, got {shown(item)}")
    return raw


def _port(fields: Fields, key: str, text: str) -> str:
    found = PORT_RE.match(text)
    if found is None:
        raise fields.fail(key, f"expected '[host_ip:]host_port:container_port[/proto]', got {shown(text)}")
    host_port, container_port = int(found["host"]), int(found["container"])
    if not (0 < host_port < 65536 and 0 < container_port < 65536):
        raise fields.fail(key, f"expected ports between 1 and 65535, got {shown(text)}")
    ip = (found["ip"] or "0.0.0.0").strip("[]")
    return f"{ip}:{host_port}:{container_port}/{found['proto'] or 'tcp'}"


def _mount(fields: Fields, key: str, text: str) -> tuple[str, str, bool]:
    parts = text.split(":")
    read_only = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) != 2 or not (VOLUME_RE.match(parts[0]) or PATH_RE.match(parts[0])) or not PATH_RE.match(parts[1]):
        raise fields.fail(key, f"expected 'volume:/destination[:ro]' or '/host/path:/destination[:ro]', "
                          f"got {shown(text)}")
    return parts[0], parts[1], read_only


def _tags(top: Fields) -> tuple[str, ...]:
    raw = top.data.get("tags")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise top.fail("tags", f"expected a list of tag names, got {kind_of(raw)}")
    tags: list[str] = []
    for index, tag in enumerate(raw):
        key = f"tags[{index}]"
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            got = shown(tag) if isinstance(tag, str) else kind_of(tag)
            raise top.fail(key, f"expected a tag matching ^[a-z][a-z0-9_]*$, got {got}")
        if tag in RESERVED_TAGS:
            raise top.fail(key, f"{tag!r} is reserved by pytest or driftcheck")
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _image(data: dict[str, Any], path: str, required: bool) -> tuple[str | None, str | None, bool]:
    raw = data.get("image")
    if raw is None:
        if required:
            raise ManifestError(path, "image", "is required unless desired.state is absent; "
                                "expected a mapping with 'ref'")
        return None, None, False
    image = Fields(raw, path, "image")
    image.check_keys({"ref", "digest", "digest_pinned_in_compose"})
    ref = image.string("ref", required=True, what="an image reference [registry/]repository[:tag][@sha256:<64 hex>]")
    assert ref is not None
    if len(ref) > MAX_REF_LENGTH or parse_ref(ref) is None:
        raise image.fail("ref", "expected an image reference [registry/]repository[:tag][@sha256:<64 hex>], "
                         f"got {shown(ref)}")
    digest = image.string("digest", DIGEST_RE, what="a digest sha256:<64 lowercase hex>")
    pinned = image.data.get("digest_pinned_in_compose", False)
    if pinned is None:
        pinned = False
    if not isinstance(pinned, bool):
        raise image.fail("digest_pinned_in_compose", f"expected true or false, got {kind_of(pinned)}")
    return ref, digest, pinned


def load_module_file(path: Path, display: str, full_schema: bool = False) -> Module:
    """Read and validate one module.yaml."""
    return parse_module(load_yaml(path, display), display, path.parent.name, path.parent, full_schema)


def discover(modules_dir: Path, show: Callable[[Path], str],
             full_schema: bool = False) -> tuple[list[Module], list[ManifestError]]:
    """Every module under modules_dir, and every problem found on the way (all files are read)."""
    if not modules_dir.is_dir():
        return [], [ManifestError(show(modules_dir), None, "expected a folder of modules/<name>/module.yaml")]
    modules: list[Module] = []
    errors: list[ManifestError] = []
    for folder in sorted(p for p in modules_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = folder / "module.yaml"
        if not manifest.is_file():
            errors.append(ManifestError(show(folder), None, "expected a module.yaml in this module folder"))
            continue
        try:
            modules.append(load_module_file(manifest, show(manifest), full_schema))
        except ManifestError as exc:
            errors.append(exc)
    return modules, errors
