"""The compose files a module's compose.file makes Compose read, checked before Compose ever runs.

Compose follows `include:` entries and `extends: file:` to other compose files, and with its
remote loaders it fetches them over the network (git URLs, http(s), `oci://`). A module's compose
file may only make Compose read files inside the module's folder: a remote reference, a path that
resolves outside the folder (`..`, an absolute path, a symlink pointing out, a relative path that
Compose resolves against the host's project directory) or one built from `${VAR}` is refused,
naming the compose file and its key. The remote loaders are also switched off where Compose runs
(composehash), so this is the first of two locks, not the only one.

Relative paths resolve as Compose resolves them: against the project directory when one is given
(a run passes the host's working_dir), else against the folder of the file that names them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

#: a compose file larger than this is not read (Compose files are a few KiB)
MAX_COMPOSE_BYTES = 1024 * 1024
#: at most this many compose files are followed from one compose.file
MAX_FILES = 64

#: what Compose's remote loaders accept: a URL scheme, or git's scp-like user@host:path
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/\s]+@[^/\s]+:")


class Refused(ValueError):
    """A compose file reads something it may not; the message names the file and the key."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Compose's own tags (!reset, !override) as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def refuse_outside(file: Path, root: Path, project_dir: Path | None = None) -> None:
    """Raise Refused if the compose file, or any compose file it includes or extends, lies outside root
    or is remote. Files that do not exist or do not parse are left to Compose to report.

    A relative path must stay inside root against every folder Compose might resolve it from: the
    folder of the file naming it, the project directory, any include's project_directory.
    """
    top = Path(os.path.realpath(root))
    bases = [] if project_dir is None else [project_dir]
    queue: list[tuple[Path, str]] = [(file, "compose.file")]
    seen: set[Path] = set()
    while queue:
        path, named_by = queue.pop(0)
        real = _inside(path, top, named_by)
        if real in seen or not real.exists():
            continue
        seen.add(real)
        if len(seen) > MAX_FILES:
            raise Refused(f"{file}: includes more than {MAX_FILES} compose files")
        data = _load(real, named_by)
        for key, value in _project_dirs(data):
            where = f"{path}: {key}"
            _literal(value, where, root)
            folder = Path(value) if Path(value).is_absolute() else real.parent / value
            bases.append(_inside(folder, top, where))
        for key, value, kind in _references(data):
            where = f"{path}: {key}"
            _literal(value, where, root)
            given = Path(value)
            for candidate in [given] if given.is_absolute() else [b / given for b in (real.parent, *bases)]:
                if kind == "file":
                    queue.append((candidate, where))
                else:
                    _inside(candidate, top, where)


def _literal(value: str, where: str, root: Path) -> None:
    if "$" in value:
        raise Refused(f"{where}: {value!r} is built from a variable; expected a literal path inside the module "
                      f"folder {root}, so that it can be checked before Compose runs")
    if _REMOTE.match(value):
        raise Refused(f"{where}: {value!r} is a remote resource; expected a file inside the module folder {root} "
                      "(driftcheck never lets Compose fetch anything)")


def _inside(path: Path, top: Path, named_by: str) -> Path:
    real = Path(os.path.realpath(path))
    if real != top and top not in real.parents:
        via = f" (through a symlink: {real})" if Path(os.path.abspath(path)) != real else ""
        raise Refused(f"{named_by}: {path} resolves outside the module folder {top}{via}; expected a file inside "
                      "it")
    return real


def _load(real: Path, named_by: str) -> Any:
    try:
        info = real.stat()
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{named_by}: {real} is not a regular file")
        with real.open("rb") as handle:
            raw = handle.read(MAX_COMPOSE_BYTES + 1)
    except OSError:
        return None  # Compose reports it, with its own words
    if len(raw) > MAX_COMPOSE_BYTES:
        raise Refused(f"{named_by}: {real} is larger than {MAX_COMPOSE_BYTES // 1024} KiB")
    try:
        return yaml.load(raw, Loader=_Loader)  # a SafeLoader
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return None  # Compose reports it, with its own words


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(data: Any) -> list[tuple[str, str, str]]:
    """(key, path, kind) of every file the compose file names for Compose to read as a compose or env file."""
    found: list[tuple[str, Any, str]] = []
    if not isinstance(data, dict):
        return found
    for i, entry in enumerate(_listed(data.get("include") or [])):
        if isinstance(entry, dict):
            for j, value in enumerate(_listed(entry.get("path"))):
                found.append((f"include[{i}].path" + (f"[{j}]" if isinstance(entry.get("path"), list) else ""),
                              value, "file"))
            for j, value in enumerate(_listed(entry.get("env_file"))):
                found.append((f"include[{i}].env_file" + (f"[{j}]" if isinstance(entry.get("env_file"), list)
                                                          else ""), value, "env"))
        else:
            found.append((f"include[{i}]", entry, "file"))
    services = data.get("services")
    for name, spec in (services.items() if isinstance(services, dict) else ()):
        extends = spec.get("extends") if isinstance(spec, dict) else None
        if isinstance(extends, dict) and "file" in extends:
            found.append((f"services.{name}.extends.file", extends["file"], "file"))
    return [(key, value, kind) for key, value, kind in found if isinstance(value, str) and value]


def _project_dirs(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        return []
    return [(f"include[{i}].project_directory", entry["project_directory"])
            for i, entry in enumerate(_listed(data.get("include") or []))
            if isinstance(entry, dict) and isinstance(entry.get("project_directory"), str)
            and entry["project_directory"]]
