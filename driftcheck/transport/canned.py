"""A runner that answers from a table, for tests (as httpx has MockTransport): no host, no socket."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence

from driftcheck.allowlist import check_argv
from driftcheck.errors import ConnectionDropped, ObservationError
from driftcheck.records import Output

#: What a canned host answers: an Output, an error to raise, or a function of the argv.
Answer = Output | ObservationError | Callable[[tuple[str, ...]], Output]


class CannedRunner:
    """Maps argv prefixes to answers (the first that matches wins) and records every call.

    The allowlist applies as in every runner: a refused argv raises SafetyViolation and is
    not recorded. An argv no prefix matches is a mistake in the test (AssertionError).

        runner = CannedRunner([(PS_ARGV, Output(0, ps_json, b""))])
        Transport(config, runner).run(PS_ARGV)
    """

    def __init__(self, answers: Iterable[tuple[Sequence[str], Answer]], host: str = "h",
                 connect_error: ObservationError | None = None):
        self.host = host
        self.answers = [(tuple(prefix), answer) for prefix, answer in answers]
        #: raised by every connect(), as an unreachable host would
        self.connect_error = connect_error
        #: every argv that passed the allowlist, in order
        self.calls: list[tuple[str, ...]] = []
        #: how many connections were opened (a reconnect after a drop counts again)
        self.connects = 0
        self.connected = False

    def connect(self) -> None:
        if self.connect_error is not None:
            raise self.connect_error
        if not self.connected:
            self.connected = True
            self.connects += 1

    def run(self, argv: Sequence[str]) -> Output:
        args = tuple(argv)
        check_argv(args)
        self.connect()
        self.calls.append(args)
        for prefix, answer in self.answers:
            if args[: len(prefix)] != prefix:
                continue
            if isinstance(answer, ConnectionDropped):
                self.connected = False
            if isinstance(answer, ObservationError):
                raise answer
            return answer if isinstance(answer, Output) else answer(args)
        raise AssertionError(f"no canned answer for `{shlex.join(args)}`")

    def close(self) -> None:
        self.connected = False
