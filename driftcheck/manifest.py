"""Load and strictly validate `modules/<name>/module.yaml` (schema_version 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftcheck.errors import ManifestError
from driftcheck.imageref import DIGEST_RE, MAX_REF_LENGTH, parse_ref
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

#: Keys of the extended drift surface (SPEC §2) whose checks have not landed yet.
NOT_SUPPORTED_YET = {
    "desired": {"replicas", "restart_policy", "ports", "env_keys", "env_digests", "mounts",
                "networks", "health"},
    "": {"ignore"},
}


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


class _Fields:
    """Typed access to one mapping of a manifest, recording which keys were read."""

    def __init__(self, data: Any, path: str, prefix: str):
        self.path = path
        self.prefix = prefix
        if not isinstance(data, dict):
            raise ManifestError(path, prefix or None, f"expected a mapping, got {_kind(data)}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.path, self.key(name), problem)

    def check_keys(self, allowed: set[str]) -> None:
        for raw in self.data:
            if not isinstance(raw, str):
                raise ManifestError(self.path, self.prefix or None, f"keys must be strings, got {raw!r}")
            if raw in NOT_SUPPORTED_YET.get(self.prefix, set()):
                raise self.fail(raw, "not supported yet: this check has not landed in driftcheck")
            if raw not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.fail(raw, f"unknown key; expected one of: {expected}")

    def string(self, name: str, pattern: re.Pattern[str] | None = None, *,
               required: bool = False, what: str = "") -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, f"is required; expected {what or 'a string'}")
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected {what or 'a string'}, got {_kind(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(name, f"expected {what or pattern.pattern}, got {_show(value)}")
        return value


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def parse_module(data: Any, path: str, folder: str) -> Module:
    """Validate one parsed module.yaml; raises ManifestError naming the first problem."""
    top = _Fields(data, path, "")
    top.check_keys({"schema_version", "name", "description", "host", "tags", "compose", "desired", "image"})
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

    compose = _Fields(data.get("compose"), path, "compose")
    compose.check_keys({"project", "service", "container_name", "file"})
    project = compose.string("project", PROJECT_RE, required=True,
                             what="a compose project name matching ^[a-z0-9][a-z0-9_-]*$")
    service = compose.string("service", SERVICE_RE, required=True,
                             what="a compose service name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    assert project is not None and service is not None
    container = compose.string("container_name", CONTAINER_RE,
                               what="a container name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    if compose.data.get("file") is not None:
        raise compose.fail("file", "not supported yet: config-hash checks have not landed in driftcheck")

    desired_data = data.get("desired", {})
    desired = _Fields({} if desired_data is None else desired_data, path, "desired")
    desired.check_keys({"state"})
    state = desired.string("state", what="one of running, stopped, absent") or "running"
    if state not in STATES:
        raise desired.fail("state", f"expected one of running, stopped, absent, got {_show(state)}")

    ref, digest, pinned = _image(data, path, required=state != "absent")
    return Module(
        name=name, path=path, host=host, tags=tags, project=project, service=service,
        container_name=container or f"{project}-{service}-1", state=state, image_ref=ref,
        image_digest=digest, digest_pinned_in_compose=pinned, description=description,
    )


def _tags(top: _Fields) -> tuple[str, ...]:
    raw = top.data.get("tags")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise top.fail("tags", f"expected a list of tag names, got {_kind(raw)}")
    tags: list[str] = []
    for index, tag in enumerate(raw):
        key = f"tags[{index}]"
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            shown = _show(tag) if isinstance(tag, str) else _kind(tag)
            raise top.fail(key, f"expected a tag matching ^[a-z][a-z0-9_]*$, got {shown}")
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
    image = _Fields(raw, path, "image")
    image.check_keys({"ref", "digest", "digest_pinned_in_compose"})
    ref = image.string("ref", required=True, what="an image reference [registry/]repository[:tag][@sha256:<64 hex>]")
    assert ref is not None
    if len(ref) > MAX_REF_LENGTH or parse_ref(ref) is None:
        raise image.fail("ref", "expected an image reference [registry/]repository[:tag][@sha256:<64 hex>], "
                         f"got {_show(ref)}")
    digest = image.string("digest", DIGEST_RE, what="a digest sha256:<64 lowercase hex>")
    pinned = image.data.get("digest_pinned_in_compose", False)
    if pinned is None:
        pinned = False
    if not isinstance(pinned, bool):
        raise image.fail("digest_pinned_in_compose", f"expected true or false, got {_kind(pinned)}")
    return ref, digest, pinned


def load_module_file(path: Path, display: str) -> Module:
    """Read and validate one module.yaml."""
    return parse_module(load_yaml(path, display), display, path.parent.name)


def discover(modules_dir: Path, show: Callable[[Path], str]) -> tuple[list[Module], list[ManifestError]]:
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
            modules.append(load_module_file(manifest, show(manifest)))
        except ManifestError as exc:
            errors.append(exc)
    return modules, errors
