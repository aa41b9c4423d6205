"""Local helper processes (docker-compose, ssh): each in its own process group, bounded, killed with its group.

A helper starts in a new session (start_new_session), so its process group is its own: a Ctrl-C
on the terminal reaches only driftcheck, and os.killpg ends the helper together with every child
it started that stayed in its group (an ssh ProxyCommand or `Match exec`, anything a compose
binary spawns). A helper's group is killed

- when it outlives its deadline, or driftcheck stops waiting for it for any other reason (an
  exception, KeyboardInterrupt from SIGINT or from the run's SIGTERM handler);
- after it exited, before it is reaped (the group id cannot have been reused yet): whatever it
  left behind in its group goes too;
- at interpreter exit, for helpers still running (an ssh master whose close() never ran);
- when SIGTERM or SIGHUP would end the process with no handler of its own (make import,
  make validate): the groups are killed first, then the signal takes its default course.

A child that leaves the group on purpose (setsid, setpgid) escapes all of this; nothing driftcheck
starts does.
"""

from __future__ import annotations

import atexit
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

#: every helper started and not yet reaped, by pid
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


class Deadline(Exception):
    """The helper outlived its deadline; it was killed with its group."""


class TooMuchOutput(Exception):
    """The helper printed more than the cap; it was killed with its group."""


def start(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
          stdin: int | IO[Any] | None = subprocess.DEVNULL, stdout: int | IO[Any] | None = subprocess.PIPE,
          stderr: int | IO[Any] | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """Start a helper in a new session (its own process group), known to kill_all(); raises OSError."""
    _guard_signals()
    proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                            start_new_session=True)
    _LIVE[proc.pid] = proc
    return proc


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the helper has exited, without reaping it (so its group can still be killed safely)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def wait_exit(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait, without reaping, until the helper exits or the deadline (time.monotonic()) passes."""
    while not exited(proc):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the helper's whole process group (it, and whatever it left there), then reap it."""
    _LIVE.pop(proc.pid, None)
    if proc.returncode is None:  # not reaped yet: the pid, and so the group id, is still ours
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def kill_all() -> None:
    """SIGKILL the group of every helper still known (interpreter exit, a fatal signal)."""
    for proc in list(_LIVE.values()):
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


atexit.register(kill_all)


def communicate(proc: subprocess.Popen[bytes], deadline: float, data: bytes = b"",
                cap: int | None = None) -> tuple[int, bytes, bytes]:
    """Feed stdin, collect stdout and stderr, wait for the exit, all by the deadline (time.monotonic()).

    Returns (exit status, stdout, stderr). The group is killed in every case: after a normal exit
    (anything left in it), and on Deadline, TooMuchOutput or any exception while waiting.
    """
    try:
        out, err = _collect(proc, deadline, data, cap)
        if not wait_exit(proc, deadline):
            raise Deadline
    finally:
        kill_group(proc)
    assert proc.returncode is not None
    return proc.returncode, out, err


def _collect(proc: subprocess.Popen[bytes], deadline: float, data: bytes, cap: int | None) -> tuple[bytes, bytes]:
    fds = [-1 if stream is None else stream.fileno() for stream in (proc.stdout, proc.stderr)]
    chunks = {fd: bytearray() for fd in fds if fd >= 0}
    stdin = proc.stdin
    view, written = memoryview(data), 0
    try:
        with selectors.DefaultSelector() as selector:
            for fd in chunks:
                selector.register(fd, selectors.EVENT_READ)
            if stdin is not None and data:
                os.set_blocking(stdin.fileno(), False)
                selector.register(stdin.fileno(), selectors.EVENT_WRITE)
            elif stdin is not None:
                stdin.close()
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Deadline
                for key, _ in selector.select(min(left, 0.5)):
                    if key.fd not in chunks:  # stdin
                        assert stdin is not None
                        try:
                            written += os.write(key.fd, view[written:written + 65536])
                        except BrokenPipeError:
                            written = len(data)
                        if written >= len(data):
                            selector.unregister(key.fd)
                            stdin.close()
                        continue
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                    chunks[key.fd] += chunk
                if cap is not None and sum(len(c) for c in chunks.values()) > cap:
                    raise TooMuchOutput
    finally:
        for stream in (stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
    out, err = (bytes(chunks.get(fd, b"")) for fd in fds)
    return out, err


def _guard_signals() -> None:
    """Where SIGTERM or SIGHUP would end the process unhandled, kill the helpers' groups first."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _die)


def _die(signum: int, frame: Any) -> None:
    kill_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
