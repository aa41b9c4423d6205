"""The JSON Schemas in schema/: the loader validates every module.yaml and hosts.yaml with them first.

Editors (yaml-language-server) and pre-commit (check-jsonschema) read the same files, so what an
editor underlines is what a run refuses. Each schema node may carry `x-expected`, the words an
error message uses for what was expected there.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftcheck import codes

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

from driftcheck.errors import ManifestError, kind_of, shown

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
#: kind -> file in schema/
FILES = {"module": "module.schema.json", "hosts": "hosts.schema.json"}


@cache
def validator(kind: str) -> jsonschema.Draft202012Validator:
    # Imported here: a run whose files are all valid never needs it (about 60 ms of start-up).
    import jsonschema

    schema = json.loads((SCHEMA_DIR / FILES[kind]).read_text())
    return jsonschema.Draft202012Validator(schema)


def jsonable(data: Any, display: str, code: str, where: str = "") -> Any:
    """The parsed YAML as JSON sees it: YAML dates become YYYY-MM-DD strings; keys must be strings."""
    if isinstance(data, dict):
        result = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise ManifestError(display, where or None, f"keys must be strings, got {key!r}", code)
            result[key] = jsonable(value, display, code, _join(where, key))
        return result
    if isinstance(data, list):
        return [jsonable(v, display, code, f"{where}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, date):
        return data.isoformat()
    return data


def validate(kind: str, data: Any, display: str, code: str = codes.MANIFEST_INVALID) -> None:
    """Raise a ManifestError naming the file, the key and what was expected, for the most relevant problem."""
    instance = jsonable(data, display, code)
    from jsonschema.exceptions import best_match

    errors = sorted(validator(kind).iter_errors(instance), key=_rank)
    if errors:
        error = best_match([errors[0]])  # descends into anyOf/oneOf for the error that says most
        key, problem = describe(error)
        raise ManifestError(display, key, problem, code)


def _rank(error: ValidationError) -> tuple[int, bool]:
    # The shallowest problem first (what is missing or unknown at the top says most), and a
    # conditional rule (image is required unless absent) after the plain ones at the same depth.
    return len(error.absolute_path), bool({"if", "then", "else"} & set(error.relative_schema_path))


def _join(prefix: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{prefix}[{part}]"
    return f"{prefix}.{part}" if prefix else part


def _key(path: Any) -> str:
    key = ""
    for part in path:
        key = _join(key, part)
    return key


def _expected(schema: Any) -> str | None:
    return schema.get("x-expected") if isinstance(schema, dict) else None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return kind_of(value)


def describe(error: ValidationError) -> tuple[str | None, str]:
    """(key, problem) for one schema error, in the words of the schema's x-expected."""
    key = _key(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    properties = schema.get("properties", {})
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        expected = _expected(properties.get(missing))
        return _join(key, missing), "is required" + (f"; expected {expected}" if expected else "")
    if error.validator == "additionalProperties" and properties:
        unknown = sorted(set(error.instance) - set(properties))[0]
        return _join(key, unknown), f"unknown key; expected one of: {', '.join(sorted(properties))}"
    if "propertyNames" in error.relative_schema_path:
        # the instance is the offending key itself; the path is its mapping's
        return _join(key, str(error.instance)), f"expected {_expected(schema) or 'another key'}, got " \
            f"{_show(error.instance)}"
    expected = _expected(schema) or error.message
    return key or None, f"expected {expected}, got {_show(error.instance)}"
