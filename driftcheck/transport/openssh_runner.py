"""ssh://: commands through the system OpenSSH client, over one ControlMaster connection per host and run.

The master starts on first use in the foreground of its own process group (our child, so its pid
is known and only it is stopped), with its socket in a private temp dir (mode 0700, a short path);
every command is a `ssh -S <socket>` client with the allowlisted command line as its only remote
command, bounded by the host's timeout and the output cap. close() sends `ssh -O exit`, waits for
the master and removes the dir. The options and ssh's error words are in openssh_options.

Every ssh process (the master, each client, `-O exit`) is started by procgroup in its own process
group, and that whole group is killed when it is done with: at a timeout, at close(), on a signal
or at interpreter exit. So a ProxyCommand, a ProxyJump hop or a `Match exec` command that ssh
started never outlives the run, even one that ignores the hangup ssh sends it.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence

from driftcheck import codes, procgroup
from driftcheck.allowlist import check_argv
from driftcheck.errors import ConnectionDropped, ObservationError, one_line
from driftcheck.inventory import HostConfig
from driftcheck.records import Output
from driftcheck.transport.base import MAX_OUTPUT, short, timed_out, too_much_output
from driftcheck.transport.openssh_options import (
    client_argv,
    connect_error,
    first_error_line,
    generated_config,
    master_argv,
)

#: A socket path longer than this does not fit sockaddr_un (with room for ssh's temp suffix).
MAX_SOCKET_PATH = 90
#: After a client's exit 255, how long to wait for a dying master to be seen dead.
DROP_GRACE = 1.0
#: How long close() waits for the master to exit before it kills it.
EXIT_GRACE = 5.0

#: every runner whose master may be running; stopped at interpreter exit if close() never ran
_LIVE: set[OpenSSHRunner] = set()


def _stop_all() -> None:
    for runner in list(_LIVE):
        runner.close()


atexit.register(_stop_all)


def _private_dir() -> str:
    """A fresh 0700 directory with a short path (sockaddr_un holds about 100 bytes)."""
    base = tempfile.gettempdir()
    if len(base) > 40:
        base = "/tmp"
    return tempfile.mkdtemp(prefix="dc-ssh-", dir=base)  # mkdtemp: mode 0700, owned by us


class OpenSSHRunner:
    """One `ssh` ControlMaster to one host, opened on first use; a failure is reported once, never retried."""

    def __init__(self, config: HostConfig):
        self.config = config
        self.host = config.name
        #: the master process, None before the first command and after close()
        self.master: subprocess.Popen[bytes] | None = None
        #: the private dir holding the generated config, the socket and the master's stderr
        self.dir: str | None = None
        self._lock = threading.Lock()

    @property
    def socket(self) -> str:
        assert self.dir is not None
        return os.path.join(self.dir, "m")

    @property
    def config_file(self) -> str:
        assert self.dir is not None
        return os.path.join(self.dir, "config")

    def connect(self) -> None:
        with self._lock:
            if self.master is None:
                self._start_master()

    def _start_master(self) -> None:
        cfg = self.config
        self.dir = _private_dir()
        try:
            if len(self.socket) > MAX_SOCKET_PATH:
                raise ObservationError(cfg.name, codes.HOST_UNREACHABLE, f"the control socket path {self.socket} "
                                       "is too long for ssh; set TMPDIR to a short folder")
            try:
                text = generated_config(cfg)
            except ValueError as exc:
                raise ObservationError(cfg.name, codes.HOST_UNREACHABLE, f"{exc}; rename the file or folder"
                                       ) from exc
            with open(os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                handle.write(text)
            errors = os.path.join(self.dir, "stderr")
            with open(os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as err:
                try:
                    master = procgroup.start(master_argv(cfg, self.config_file, self.socket),
                                             stdout=subprocess.DEVNULL, stderr=err)
                except OSError as exc:
                    raise ObservationError(cfg.name, codes.HOST_UNREACHABLE, f"cannot start the OpenSSH client "
                                           f"`ssh`: {one_line(str(exc)) or type(exc).__name__}; install "
                                           "openssh-client, or use paramiko://") from exc
            self.master = master
            _LIVE.add(self)
            self._wait_until_up(master, errors)
        except BaseException:
            self._stop()
            raise

    def _wait_until_up(self, master: subprocess.Popen[bytes], errors: str) -> None:
        """The socket appears once ssh is logged in; ssh exiting first is a failed connect."""
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout
        while True:
            if procgroup.exited(master):
                procgroup.kill_group(master)  # and whatever it started (a ProxyCommand)
                with open(errors, encoding="utf-8", errors="replace") as handle:
                    raise connect_error(cfg, handle.read(), master.returncode or 0)
            if os.path.exists(self.socket):
                return
            if time.monotonic() >= deadline:
                where = f"{cfg.hostname}:{cfg.port}" if cfg.port else cfg.hostname
                raise ObservationError(cfg.name, codes.HOST_UNREACHABLE, f"ssh to {where} did not log in within "
                                       f"{cfg.timeout:g}s (TCP, SSH banner and login together); is sshd "
                                       "answering on that port?")
            time.sleep(0.02)

    def run(self, argv: Sequence[str]) -> Output:
        args = list(argv)
        check_argv(args)
        command = shlex.join(args)
        self.connect()
        master = self.master
        if master is None or procgroup.exited(master):
            raise ConnectionDropped(self.host, f"the SSH connection was lost before `{short(command)}`; "
                                    "check the host's sshd and the network")
        rc, out, err = self._exec(client_argv(self.config, "/dev/null", self.socket, command=command), command)
        if rc == 255 and self._master_died():
            raise ConnectionDropped(self.host, f"the SSH connection was lost during `{short(command)}`: "
                                    f"{first_error_line(err.decode('utf-8', 'replace')) or 'ssh exited 255'}; "
                                    "check the host's sshd and the network")
        return Output(rc, out, err)

    def _master_died(self) -> bool:
        master = self.master
        deadline = time.monotonic() + DROP_GRACE
        return master is None or procgroup.wait_exit(master, deadline)

    def _exec(self, argv: list[str], command: str) -> tuple[int, bytes, bytes]:
        """Run one ssh client: stdin /dev/null, output capped, killed with its group at the deadline."""
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout
        try:
            proc = procgroup.start(argv)
        except OSError as exc:
            raise ObservationError(cfg.name, codes.HOST_UNREACHABLE, f"cannot start the OpenSSH client `ssh`: "
                                   f"{one_line(str(exc)) or type(exc).__name__}; install openssh-client, or use "
                                   "paramiko://") from exc
        try:
            return procgroup.communicate(proc, deadline, cap=MAX_OUTPUT)
        except procgroup.Deadline:
            raise timed_out(cfg, command) from None
        except procgroup.TooMuchOutput:
            raise too_much_output(cfg) from None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        """`ssh -O exit`, then the master's whole group killed (at once if it lingers) and the dir removed."""
        master, self.master = self.master, None
        _LIVE.discard(self)
        if master is not None:
            told = False
            if not procgroup.exited(master) and self.dir is not None and os.path.exists(self.socket):
                try:
                    told = procgroup.communicate(procgroup.start(client_argv(self.config, "/dev/null", self.socket,
                                                                             "-O", "exit")),
                                                 time.monotonic() + EXIT_GRACE)[0] == 0
                except (OSError, procgroup.Deadline):
                    pass
            if told:
                procgroup.wait_exit(master, time.monotonic() + EXIT_GRACE)
            # Still logging in, deaf to -O exit, or gone: its group goes, with a ProxyCommand or
            # `Match exec` child that stayed behind.
            procgroup.kill_group(master)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
