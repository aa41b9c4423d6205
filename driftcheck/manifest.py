"""Load and strictly validate `modules/<name>/module.yaml` (schema_version 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from driftcheck.boundedread import FileRefused, check_bounded
from driftcheck.composefiles import Refused, refuse_outside
from driftcheck.desired import PATH_RE, RUNTIME_KEYS, parse_runtime
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

DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: compose.file and the module folder's .env, which docker-compose reads: regular files of at most this
MAX_COMPOSE_INPUT = 1024 * 1024


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
    #: desired.ports, normalised to host_ip:host_port:container_port/proto (host_port empty: ephemeral)
    ports: frozenset[str] | None = None
    #: desired.env_keys: variable names that must be set
    env_keys: tuple[str, ...] | None = None
    #: desired.env_keys_complete: env_keys names every variable; another one set is drift
    env_keys_complete: bool | None = None
    #: desired.env_digests: (name, sha256:<hex> of the exact value)
    env_digests: tuple[tuple[str, str], ...] | None = None
    #: desired.mounts, each as records.mount_entry writes it (`secret:<name>`, `/dest` for an anonymous volume)
    mounts: frozenset[str] | None = None
    #: desired.networks
    networks: frozenset[str] | None = None
    #: desired.health: healthy
    health: str | None = None
    #: ignore: waivers, at most one per check
    ignore: tuple[Waiver, ...] = ()
    #: compose.file, resolved in the module's folder: the config-hash check's source
    compose_file: str | None = None
    #: the module's folder, which compose.file and every compose file it includes must stay in
    compose_root: str | None = None

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
    runtime = parse_runtime(desired, state)

    ref, digest, pinned = _image(data, path, required=state != "absent")
    module = Module(
        name=name, path=path, host=host, tags=tags, project=project, service=service,
        container_name=container or f"{project}-{service}-1", state=state, image_ref=ref,
        image_digest=digest, digest_pinned_in_compose=pinned, description=description, **runtime,
        compose_file=compose_file if state != "absent" else None,
        compose_root=str(base) if compose_file is not None and base is not None else None,
    )
    return replace(module, ignore=_ignore(top, module.checks))


def _compose_file(compose: Fields, base: Path | None) -> str | None:
    """compose.file: a file in the module's folder (or below it), never outside."""
    text = compose.string("file", what="a compose file path relative to the module folder")
    if text is None:
        return None
    relative = Path(text)
    if not text or relative.is_absolute() or ".." in relative.parts or not PATH_RE.fullmatch("/" + text):
        raise compose.fail("file", f"expected a path inside the module folder, got {shown(text)}")
    if base is None:
        return text
    target = base / relative
    if not target.is_file():
        raise compose.fail("file", f"expected an existing file in the module folder, got {shown(text)}")
    _bounded_compose_input(compose, target, f"file {shown(text)}")
    env = base / ".env"  # docker-compose reads it for ${VAR} (composehash.py)
    if env.exists() or env.is_symlink():
        _bounded_compose_input(compose, env, f"the module folder's .env ({env})")
    try:
        refuse_outside(target, base)  # a symlink out, a remote include: refused before Compose runs
    except Refused as exc:
        raise compose.fail("file", str(exc)) from None
    return str(target)


def _bounded_compose_input(compose: Fields, path: Path, what: str) -> None:
    """docker-compose reads these files whole: refuse a FIFO, a device or an oversized file before it runs."""
    try:
        check_bounded(path, MAX_COMPOSE_INPUT)
    except FileRefused as exc:
        raise compose.fail("file", f"{what} {exc}") from None
    except OSError as exc:
        raise compose.fail("file", f"{what} cannot be read: {exc.strerror or exc}") from None


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
    if isinstance(value, str) and DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise entry.fail("until", f"expected a date YYYY-MM-DD, got {shown(str(value))}")


def _tags(top: Fields) -> tuple[str, ...]:
    raw = top.data.get("tags")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise top.fail("tags", f"expected a list of tag names, got {kind_of(raw)}")
    tags: list[str] = []
    for index, tag in enumerate(raw):
        key = f"tags[{index}]"
        if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
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
    if len(ref) > MAX_REF_LENGTH or not ref.isprintable() or parse_ref(ref) is None:
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
        if not (manifest.exists() or manifest.is_symlink()):  # present but not a file: load_yaml says what it is
            errors.append(ManifestError(show(folder), None, "expected a module.yaml in this module folder"))
            continue
        try:
            modules.append(load_module_file(manifest, show(manifest), full_schema))
        except ManifestError as exc:
            errors.append(exc)
    return modules, errors
