"""Strict YAML reading for manifests and the inventory: UTF-8 only, no duplicate keys, bounded size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftcheck import codes
from driftcheck.boundedread import FileRefused, read_bounded
from driftcheck.errors import ManifestError

#: A manifest is a few hundred bytes; anything this large is a mistake or an attack.
MAX_BYTES = 256 * 1024

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Base):  # type: ignore[misc]
    """SafeLoader (C-accelerated when available) that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def load_yaml(path: Path, display: str, code: str = codes.MANIFEST_INVALID) -> Any:
    """Read and parse one YAML file, translating every failure into a ManifestError."""
    try:
        raw = read_bounded(path, MAX_BYTES)  # a FIFO, /dev/zero or a 4 GiB file is refused, never read whole
    except FileRefused as exc:
        raise ManifestError(display, None, str(exc), code) from None
    except OSError as exc:
        raise ManifestError(display, None, f"cannot be read: {exc.strerror or exc}", code) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(display, None, f"is not valid UTF-8 (byte {exc.start})", code) from exc
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _reject_aliases(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise ManifestError(display, None, f"is not valid YAML: {problem}", code) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values its resolver accepted: 2026-13-01 is a date
        # by the look of it, and month 13 only fails when it is built.
        raise ManifestError(display, None, f"is not valid YAML: a value cannot be read ({exc})", code) from exc


def _reject_aliases(node: yaml.Node) -> None:
    # Aliases show up as the very same node object appearing twice; anchors as node.anchor.
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            raise yaml.YAMLError(
                f"anchors and aliases are not allowed (line {current.start_mark.line + 1})"
            )
        seen.add(id(current))
        if depth > 32:
            raise yaml.YAMLError("nesting deeper than 32 levels")
        if isinstance(current, yaml.MappingNode):
            for k, v in current.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((v, depth + 1) for v in current.value)
