"""testinfra over any Runner: `as_testinfra_host(runner)` is a `testinfra.host.Host` whose commands the runner sends.

testinfra stays the host abstraction; its modules (`host.file`, `host.docker`, ...) still work
as far as the allowlist lets them, which is nowhere beyond the read-only docker commands: a
refused command raises SafetyViolation. The backend is duck-typed (testinfra.host.Host takes
any object with its methods); it has no run_local, no sudo and never logs a result.
"""

from __future__ import annotations

import shlex
from typing import Any

import testinfra.host
from testinfra.backend.base import CommandResult

from driftcheck.allowlist import check_command
from driftcheck.errors import SafetyViolation
from driftcheck.transport.base import Runner


class RunnerBackend:
    """The testinfra backend interface, handing every command line to a Runner as argv."""

    NAME = "driftcheck"
    HAS_RUN_SALT = False
    HAS_RUN_ANSIBLE = False

    def __init__(self, runner: Runner):
        self.runner = runner
        self.hostname = runner.host
        #: testinfra's sudo switches (`sudo=True` hosts, the sudo() module); a command under them is refused
        self.sudo = False
        self.sudo_user: str | None = None
        self.encoding = "utf-8"
        self._host: Any = None

    def set_host(self, host: Any) -> None:
        self._host = host

    @classmethod
    def get_connection_type(cls) -> str:
        return cls.NAME

    def get_hostname(self) -> str:
        return self.runner.host

    @staticmethod
    def quote(command: str, *args: str) -> str:
        return command % tuple(shlex.quote(a) for a in args) if args else command

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        raise SafetyViolation(command[:200], "sudo is never used")

    def get_command(self, command: str, *args: str) -> str:
        line = self.quote(command, *args)
        if self.sudo:
            raise SafetyViolation(line[:200], "sudo is never used")
        return line

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        line = self.get_command(command, *args)
        output = self.runner.run(check_command(line))
        # Built here, not with testinfra's BaseBackend.result(), which logs stdout at DEBUG.
        return CommandResult(backend=self, exit_status=output.rc, command=line.encode("utf-8"),
                             _stdout=output.stdout, _stderr=output.stderr)

    def decode(self, data: bytes) -> str:
        return data.decode(self.encoding, "replace")

    def encode(self, data: str) -> bytes:
        return data.encode(self.encoding)


def as_testinfra_host(runner: Runner) -> testinfra.host.Host:
    """A testinfra Host whose every command goes through runner (and its allowlist)."""
    backend = RunnerBackend(runner)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
