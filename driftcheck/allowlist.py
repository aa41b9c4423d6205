"""The read-only allowlist: the only command lines driftcheck will ever send to a host.

A command is checked as a parsed argv against fixed shapes, never by substring, and must be
the canonical shell quoting of that argv, so nothing can ride along in the shell.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from driftcheck.errors import SafetyViolation
from driftcheck.imageref import parse_ref

#: `docker ps` output: a header line, then one JSON array per container (id, names, compose
#: project, compose service, compose oneoff label, state). `table` makes docker print the header
#: even when there is no container, so an empty answer is recognisably wrong rather than "nothing
#: runs here". The header names a label column by its last dotted part: [CONTAINER ID,NAMES,
#: project,service,oneoff,STATE].
PS_FORMAT = (
    'table [{{json .ID}},{{json .Names}},'
    '{{json (.Label "com.docker.compose.project")}},{{json (.Label "com.docker.compose.service")}},'
    '{{json (.Label "com.docker.compose.oneoff")}},{{json .State}}]'
)
#: How that header line starts (docker names the columns; 20.10 and 28 agree).
PS_HEADER = "[CONTAINER ID,"
VERSION_FORMAT = "{{json .Server.APIVersion}}"
PS_ARGV = ("docker", "ps", "--all", "--no-trunc", "--format", PS_FORMAT)
VERSION_ARGV = ("docker", "version", "--format", VERSION_FORMAT)
INSPECT_PREFIX = ("docker", "inspect", "--type", "container", "--")
IMAGE_INSPECT_PREFIX = ("docker", "image", "inspect", "--")

CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{64}$")
IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
#: One command line stays well under any remote ARG_MAX.
MAX_ARGUMENTS = 4000


def _is_image_argument(arg: str) -> bool:
    # fullmatch and isprintable: `$` alone would let a trailing newline through
    return bool(IMAGE_ID_RE.fullmatch(arg)) or (arg.isprintable() and not arg.startswith("-")
                                                and parse_ref(arg) is not None)


def check_argv(argv: Sequence[str]) -> None:
    """Raise SafetyViolation unless argv is one of the allowlisted read-only docker commands."""
    args = tuple(argv)
    shown = shlex.join(args)
    if len(args) > MAX_ARGUMENTS:
        raise SafetyViolation(shown[:200], "too many arguments")
    if args in (PS_ARGV, VERSION_ARGV):
        return
    if args[: len(INSPECT_PREFIX)] == INSPECT_PREFIX:
        operands = args[len(INSPECT_PREFIX):]
        if operands and all(CONTAINER_ID_RE.fullmatch(a) for a in operands):
            return
        raise SafetyViolation(shown[:200], "docker inspect takes only full container ids")
    if args[: len(IMAGE_INSPECT_PREFIX)] == IMAGE_INSPECT_PREFIX:
        operands = args[len(IMAGE_INSPECT_PREFIX):]
        if operands and all(_is_image_argument(a) for a in operands):
            return
        raise SafetyViolation(shown[:200], "docker image inspect takes only image ids and references")
    raise SafetyViolation(shown[:200], "not on the read-only allowlist")


def check_command(command: str) -> list[str]:
    """Check a shell command line: it must be the canonical quoting of an allowlisted argv."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise SafetyViolation(command[:200], f"cannot be parsed: {exc}") from exc
    check_argv(argv)
    if shlex.join(argv) != command:
        raise SafetyViolation(command[:200], "is not the canonical quoting of its arguments")
    return argv
