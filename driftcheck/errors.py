"""The exceptions of driftcheck, in one tree.

    DriftError                       base of everything driftcheck raises on purpose
    ├── ManifestError(path, key, problem, code)
    │                                a module.yaml or hosts.yaml is invalid
    │                                (code MANIFEST_INVALID or INVENTORY_INVALID)
    ├── ManifestErrors(errors)       several of those, found in one load
    ├── ComposeError                 a module's compose.file does not render its service
    │   │                            locally (COMPOSE_CONFIG_INVALID; composehash.py)
    │   └── ComposeRefused           it would make Compose read something remote or outside
    │                                the module folder; refused before Compose runs
    │                                (MANIFEST_INVALID)
    ├── ObservationError(host, code, message)
    │   │                            a host could not be observed (HOST_UNREACHABLE,
    │   │                            AUTH_FAILED, HOST_KEY_UNKNOWN, HOST_KEY_MISMATCH,
    │   │                            TIMEOUT, DOCKER_UNAVAILABLE, OBSERVATION_INVALID)
    │   └── ConnectionDropped        an established SSH connection was lost during a
    │                                command (HOST_UNREACHABLE); the transport may
    │                                reconnect once and send that command again
    └── SafetyViolation(command)     a command not on the read-only allowlist was
                                     about to be sent; raised before it leaves the process

Third-party exceptions (yaml, paramiko, socket, json) are translated into these where
they happen, so the rest of the code only ever sees this tree. Every code is defined once,
in codes.py. tests/unit/test_registry.py checks that this tree names every exception class.
"""

from __future__ import annotations

import re
from typing import Any

from driftcheck import codes

#: Credentials that can appear in an error line (a DOCKER_HOST URL, a registry login).
_CREDENTIALS = (
    (re.compile(r"(://)[^/@\s]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(password|passwd|token|secret|auth)([=:]\s*)\S+"), r"\1\2***"),
)


def kind_of(value: Any) -> str:
    """What a parsed YAML value is, in words ("a mapping", "an integer"), for "expected ..., got ..."."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def shown(text: str) -> str:
    """A string as an error message quotes it: repr'd, at most 80 characters."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def one_line(text: str) -> str:
    """The first line of a foreign error message: printable, at most 200 characters, credentials masked."""
    text = text.strip()
    line = text.split("\n")[0].strip() if text else ""
    for pattern, replacement in _CREDENTIALS:
        line = pattern.sub(replacement, line)
    return "".join(c if c.isprintable() else "?" for c in line)[:200]


class DriftError(Exception):
    """Base of every error driftcheck raises on purpose."""

    code: str = codes.DRIFT_ERROR


class ManifestError(DriftError):
    """A manifest or the inventory is invalid: names the file, the key and what was expected."""

    def __init__(self, path: str, key: str | None, problem: str, code: str = codes.MANIFEST_INVALID):
        self.path = path
        self.key = key
        self.problem = problem
        self.code = code
        where = f"{path}: key '{key}'" if key else path
        super().__init__(f"{where}: {problem}")


class ManifestErrors(DriftError):
    """Every problem found while loading the manifests and the inventory."""

    code = codes.MANIFEST_INVALID

    def __init__(self, errors: list[ManifestError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ObservationError(DriftError):
    """A host could not be observed; the affected modules are errors, never in sync."""

    def __init__(self, host: str, code: str, message: str):
        self.host = host
        self.code = code
        self.message = message
        super().__init__(f"host {host}: {message}")


class ConnectionDropped(ObservationError):
    """An established SSH connection was lost during a command."""

    def __init__(self, host: str, message: str):
        super().__init__(host, codes.HOST_UNREACHABLE, message)


class SafetyViolation(DriftError):
    """A command outside the read-only allowlist was about to be sent to a host."""

    code = codes.SAFETY_VIOLATION

    def __init__(self, command: str, reason: str):
        self.command = command
        self.reason = reason
        super().__init__(f"refused to send {command!r}: {reason}")
