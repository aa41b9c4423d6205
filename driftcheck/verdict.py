"""What a check concludes: changes (drift) and warnings, as plain values. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftcheck.codes import CODES, Code
from driftcheck.printable import printable

#: a desired or observed value: a string, a number, a list of strings, or nothing
Value = str | int | tuple[str, ...] | None


def _value_json(value: Value) -> str | int | list[str] | None:
    return list(value) if isinstance(value, tuple) else value


def _value_of(raw: Any) -> Value:
    if isinstance(raw, list):
        return tuple(str(item) for item in raw)
    if raw is None or isinstance(raw, str | int):
        return raw
    raise ValueError(f"not a change value: {type(raw).__name__}")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the repo and the host."""

    #: a drift code, e.g. IMAGE_TAG_MISMATCH
    code: Code
    #: the manifest key it concerns, e.g. image.ref
    field: str
    #: what the repo says (a value, never prose)
    desired: Value
    #: what the host shows (a value, never prose)
    observed: Value
    #: one line for the operator, where the values need one
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": str(self.code), "field": self.field, "desired": _value_json(self.desired),
                "observed": _value_json(self.observed), "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(CODES[data["code"]], data["field"], _value_of(data["desired"]), _value_of(data["observed"]),
                   data.get("message"))


@dataclass(frozen=True, slots=True)
class Warning:
    """Something that could not be proven; never changes the exit code."""

    #: a warning code, e.g. IMAGE_DIGEST_NOT_VERIFIED
    code: Code
    #: one line for the operator
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Warning:
        return cls(CODES[data["code"]], data["message"])


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check."""

    changes: tuple[Change, ...] = ()
    warnings: tuple[Warning, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "warnings": [w.to_json() for w in self.warnings]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(tuple(Change.from_json(c) for c in data["changes"]),
                   tuple(Warning.from_json(w) for w in data["warnings"]))

    def failure(self) -> str:
        """The check's failure message: one line per change, made printable (pytest shows it on the terminal)."""
        return "\n".join(printable(f"{c.code} {c.field}: desired {shown(c.desired)}, observed {shown(c.observed)}"
                                   + (f" ({c.message})" if c.message else "")) for c in self.changes)


def shown(value: Value) -> str:
    """A value as the terminal and the report page show it."""
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return ", ".join(value) or "(none)"
    return str(value)
