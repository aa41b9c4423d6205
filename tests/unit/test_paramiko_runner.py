"""paramiko:// ends on the host what it gives up on: the SSH "signal" request, TERM then KILL.

Fakes of paramiko's Transport and Channel record the requests sent; the lab proves that the host's
processes really end (tests/lab/test_left_behind_against_lab.py).
"""

from __future__ import annotations

import os
import threading
import time

import paramiko
import pytest

from driftcheck import allowlist
from driftcheck.errors import ObservationError
from driftcheck.transport import ParamikoRunner
from driftcheck.transport.paramiko_runner import TERM_GRACE, end_remote
from tests.unit.test_runners import host_config


class FakeTransport:
    def __init__(self) -> None:
        self.requests: list[tuple[int, str, bool, str]] = []
        self.channel: FakeChannel | None = None
        self.active = True

    def is_active(self) -> bool:
        return self.active

    def open_session(self, timeout: float | None = None) -> FakeChannel:
        self.channel = FakeChannel(self)
        return self.channel

    def _send_user_message(self, message: paramiko.Message) -> None:
        read = paramiko.Message(message.asbytes())
        assert read.get_byte() == bytes([98])  # SSH_MSG_CHANNEL_REQUEST
        request = (read.get_int(), read.get_text(), read.get_boolean(), read.get_text())
        self.requests.append(request)
        assert self.channel is not None
        self.channel.on_signal(request[3])

    def signals(self) -> list[str]:
        assert all(r[:3] == (7, "signal", False) for r in self.requests), self.requests
        return [r[3] for r in self.requests]

    def close(self) -> None:
        self.active = False


class FakeChannel:
    """A command that runs until a signal it does not ignore ends it."""

    remote_chanid = 7
    eof_received = False

    def __init__(self, transport: FakeTransport, ignores: tuple[str, ...] = ()):
        self.transport = transport
        self.closed = False
        self.exited = False
        self.ignores = ignores
        self.started = threading.Event()
        self.read, self.write = os.pipe()  # select() needs a descriptor; nothing is ever written

    def exec_command(self, command: str) -> None:
        self.started.set()

    def on_signal(self, name: str) -> None:
        if name not in self.ignores:
            self.exited = True

    def recv_ready(self) -> bool:
        return False

    def recv_stderr_ready(self) -> bool:
        return False

    def exit_status_ready(self) -> bool:
        return self.exited

    def fileno(self) -> int:
        return self.read

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.read)
            os.close(self.write)


def runner(timeout: float = 0.3) -> tuple[ParamikoRunner, FakeTransport]:
    fake = FakeTransport()
    paramiko_runner = ParamikoRunner(host_config("paramiko", timeout=timeout))
    paramiko_runner.connection = fake  # type: ignore[assignment]
    return paramiko_runner, fake


def test_a_timed_out_command_gets_term_and_its_channel_is_closed():
    paramiko_runner, fake = runner()
    with pytest.raises(ObservationError) as info:
        paramiko_runner.run(allowlist.PS_ARGV)
    assert info.value.code == "TIMEOUT"
    assert fake.signals() == ["TERM"]  # it exited on TERM: no KILL
    assert fake.channel is not None and fake.channel.closed


def test_a_command_deaf_to_term_gets_kill_after_the_grace():
    paramiko_runner, fake = runner()
    fake.open_session = lambda timeout=None: setattr(fake, "channel", FakeChannel(fake, ignores=("TERM",))) or \
        fake.channel  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(ObservationError):
        paramiko_runner.run(allowlist.PS_ARGV)
    assert fake.signals() == ["TERM", "KILL"]
    assert 0.3 + TERM_GRACE - 0.05 <= time.monotonic() - started <= 0.3 + TERM_GRACE + 1.0


def test_a_finished_or_closed_command_gets_no_signal():
    fake = FakeTransport()
    chan = fake.open_session()
    chan.exited = True
    end_remote(chan, 1.0)  # type: ignore[arg-type]
    chan.exited, chan.closed = False, True
    end_remote(chan, 1.0)  # type: ignore[arg-type]
    assert fake.requests == []


def test_ctrl_c_during_a_command_ends_it_at_once():
    paramiko_runner, fake = runner(timeout=30)

    def interrupted() -> bool:
        raise KeyboardInterrupt

    original = fake.open_session

    def open_session(timeout: float | None = None) -> FakeChannel:
        chan = original(timeout)
        chan.ignores = ("TERM",)
        chan.recv_ready = interrupted  # type: ignore[method-assign]
        return chan

    fake.open_session = open_session  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        paramiko_runner.run(allowlist.PS_ARGV)
    assert fake.signals() == ["TERM", "KILL"]  # no grace: the run is ending
    assert fake.channel is not None and fake.channel.closed


def test_close_ends_a_command_another_thread_waits_on():
    paramiko_runner, fake = runner(timeout=30)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            paramiko_runner.run(allowlist.PS_ARGV)
        except BaseException as exc:  # whatever it is, the test reads it
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(200):
        if fake.channel is not None and fake.channel.started.is_set():
            break
        time.sleep(0.01)
    paramiko_runner.close()
    thread.join(5)
    assert not thread.is_alive()
    assert fake.signals() == ["TERM"]
    assert [type(f).__name__ for f in failures] == ["ConnectionDropped"]  # the transport sends it nowhere again
