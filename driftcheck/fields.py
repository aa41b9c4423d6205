"""Typed access to one mapping of a parsed YAML file, with errors naming the file and the key."""

from __future__ import annotations

import re
from typing import Any

from driftcheck.errors import ManifestError, kind_of, shown


class Fields:
    """Typed access to one mapping of a manifest, recording which keys were read."""

    def __init__(self, data: Any, path: str, prefix: str):
        self.path = path
        self.prefix = prefix
        if not isinstance(data, dict):
            raise ManifestError(path, prefix or None, f"expected a mapping, got {kind_of(data)}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.path, self.key(name), problem)

    def check_keys(self, allowed: set[str]) -> None:
        for raw in self.data:
            if not isinstance(raw, str):
                raise ManifestError(self.path, self.prefix or None, f"keys must be strings, got {raw!r}")
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
            raise self.fail(name, f"expected {what or 'a string'}, got {kind_of(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(name, f"expected {what or pattern.pattern}, got {shown(value)}")
        return value
