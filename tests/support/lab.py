"""Lab-test helpers: run the suite as a user would (a subprocess) and read what the lab host saw.

Importing this module puts lab/ on sys.path, so `import labctl` works after it (tests/lab/conftest.py
imports it before any lab test module is collected).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "lab") not in sys.path:
    sys.path.insert(0, str(REPO / "lab"))
import labctl  # noqa: E402

#: How the lab tests reach the lab host: paramiko (make test's first pass over tests/lab) or ssh (its
#: second pass, LAB_TRANSPORT=ssh: the same tests through the system OpenSSH client). Tests of one
#: transport's own setups are marked pins_transport and run in the first pass only.
TRANSPORTS = ("paramiko", "ssh")
TRANSPORT = os.environ.get("LAB_TRANSPORT", "paramiko")
#: The lab's inventory for TRANSPORT: labctl's own, or a copy of it whose hosts are ssh:// URLs.
INVENTORY = labctl.INVENTORY if TRANSPORT == "paramiko" else labctl.RUN / f"inventory-{TRANSPORT}.yaml"

#: the example platform the lab deploys (what `make demo` checks); modules/ is the user's own, empty here
EXAMPLE_MODULES = REPO / "examples" / "modules"
DRIFT_MODULES = REPO / "fixtures" / "lab" / "modules"
DRIFT_COMPOSE = REPO / "fixtures" / "lab" / "drift-lab.yaml"


@dataclass
class SuiteRun:
    """One run of the drift suite in a subprocess."""

    rc: int
    output: str
    plan: dict[str, Any] | None
    seconds: float
    run_dir: Path | None
    #: the docker commands the lab host ran during this run, when the caller recorded them (drift_lab_run)
    commands: list[list[str]] | None = None

    def statuses(self) -> dict[str, str]:
        assert self.plan is not None
        return {m["module"]: m["status"] for m in self.plan["modules"]}

    def codes(self) -> dict[str, list[str]]:
        assert self.plan is not None
        return {m["module"]: sorted(c["code"] for c in m["changes"]) for m in self.plan["modules"]}


def lab_inventory() -> dict[str, Any]:
    return yaml.safe_load(INVENTORY.read_text())


def lab_connection(port: int, user: str = labctl.LAB_USER) -> str:
    """A connection URL of TRANSPORT to 127.0.0.1:port."""
    return f"{TRANSPORT}://{user}@127.0.0.1:{port}"


def write_transport_inventory() -> None:
    """INVENTORY for TRANSPORT, from the lab's paramiko:// one: the same user, address, port, key and
    known_hosts."""
    if TRANSPORT == "paramiko":
        return
    data = yaml.safe_load(labctl.INVENTORY.read_text())
    for host in data["hosts"].values():
        assert host["connection"].startswith("paramiko://"), host
        host["connection"] = f"{TRANSPORT}://" + host["connection"].removeprefix("paramiko://")
    INVENTORY.write_text(yaml.safe_dump(data))


def write_inventory(path: Path, **overrides: Any) -> Path:
    """The lab's inventory with some settings of host rs2000 replaced (None drops the setting)."""
    data = lab_inventory()
    host = data["hosts"]["rs2000"]
    host.update(overrides)
    for key in [k for k, v in host.items() if v is None]:
        del host[key]
    path.write_text(yaml.safe_dump(data))
    return path


def wrong_known_hosts(path: Path) -> Path:
    """A known_hosts naming the lab's sshd with a valid key that is not the host's."""
    port = int((labctl.RUN / "sshd.port").read_text())
    key_type, key = (labctl.SSH / "client_ed25519.pub").read_text().split()[:2]
    path.write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    return path


def sshd_log_count(text: str) -> int:
    """How often the lab's sshd logged a line containing text (connections, logins)."""
    return (labctl.RUN / "sshd.log").read_text().count(text)


def logged_commands() -> list[list[str]]:
    """Every docker command the lab host ran since command_log emptied it, as argv (without 'docker')."""
    return [line.split("\x1f")[:-1] for line in labctl.COMMAND_LOG.read_text().split("\n") if line]


@contextmanager
def fault(command: str, mode: str) -> Iterator[Path]:
    """Make the lab host's `docker <command>` (ps, inspect, image or all) misbehave as mode says."""
    assert mode in labctl.FAULT_MODES, mode
    path = labctl.FAULTS / command
    path.write_text(mode)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def assert_errors_actionable(plan: dict[str, Any]) -> None:
    """Every error names its module and host (where it has them), its code, and one line to act on."""
    assert plan["errors"], "expected errors"
    for error in plan["errors"]:
        assert set(error) == {"module", "host", "code", "message", "file", "key"}, error
        assert error["code"] and error["code"].isupper(), error
        message = error["message"]
        assert message and "\n" not in message and len(message) < 400, error
        if error["module"] is not None:
            assert error["host"], error
            assert "; " in message, f"no hint on what to try: {message}"


def add_module(modules: Path, name: str, host: str, ref: str = "lab/app:1") -> None:
    (modules / name).mkdir()
    (modules / name / "module.yaml").write_text(
        f"schema_version: 2\nname: {name}\nhost: {host}\ncompose:\n  project: home-platform\n"
        f"  service: {name}\nimage:\n  ref: {ref}\n")


def make(target: str, *variables: str) -> subprocess.CompletedProcess[str]:
    """`make -s <target> VAR=value ...` in the repository, as a user types it."""
    return subprocess.run(["make", "-s", target, *variables], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)


def run_dirs(reports: Path) -> set[Path]:
    """The run folders of a reports folder (not latest, not a hidden partial one)."""
    if not reports.is_dir():
        return set()
    return {p for p in reports.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")}


def run_suite(tmp_path: Path, *args: str, inventory: Path | None = None, modules: Path | None = None,
              env: dict[str, str] | None = None, timeout: float = 120) -> SuiteRun:
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", f"--reports-dir={reports}",
               f"--inventory={inventory or INVENTORY}", *args, f"--modules-dir={modules or EXAMPLE_MODULES}"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
    full_env.update(env or {})
    before = run_dirs(reports)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.monotonic() - started
    # this run's own folder (reports/latest moves only with a run that observed its hosts)
    new = sorted(run_dirs(reports) - before)
    assert len(new) <= 1, f"one run wrote several run folders: {new}"
    run_dir = new[0] if new else None
    plan = json.loads((run_dir / "plan.json").read_text()) if run_dir else None
    return SuiteRun(done.returncode, done.stdout + done.stderr, plan, seconds, run_dir)


# -- the corpus of compose stacks (fixtures/stacks, deployed by labctl.stacks_up) ----------------------


def edit_stack(project: str, old: str, new: str, file: str = "compose.yaml") -> None:
    """An operator's edit of a deployed corpus file (lab/run/stacks/<project>/<file>): old, once, becomes new."""
    path = labctl.STACKS / project / file
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def modules_by_service(modules: Path) -> dict[tuple[str, str], str]:
    """(compose project, service) -> module name, for every module.yaml under modules (as import named them)."""
    found = {}
    for path in sorted(modules.glob("*/module.yaml")):
        data = yaml.safe_load(path.read_text())
        found[(data["compose"]["project"], data["compose"]["service"])] = data["name"]
    return found


def container_id(name: str) -> str:
    return labctl.docker("inspect", "--type", "container", "--format", "{{.Id}}", name).stdout.strip()


def restart_count(name: str) -> int:
    return int(labctl.docker("inspect", "--type", "container", "--format", "{{.RestartCount}}", name).stdout)


# -- ssh:// (the system OpenSSH client) against the lab ------------------------------------------------


def ssh_connection(user: str = labctl.LAB_USER, port: int | None = None) -> str:
    """The lab host as an ssh:// URL (the lab's sshd unless port says otherwise)."""
    port = port if port is not None else int((labctl.RUN / "sshd.port").read_text())
    return f"ssh://{user}@127.0.0.1:{port}"


def write_ssh_inventory(path: Path, **overrides: Any) -> Path:
    """The lab's inventory with host rs2000 reached through ssh:// (and some settings replaced)."""
    return write_inventory(path, **{"connection": ssh_connection(), **overrides})


def openssh_leftovers(tmpdir: Path) -> list[str]:
    """ssh masters of the ssh:// runner still running, and its private folders still on disk, under tmpdir
    (the TMPDIR the suite ran with)."""
    masters = subprocess.run(["pgrep", "-af", "ControlMaster=yes"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
    return [line for line in masters if f"{tmpdir}/dc-ssh-" in line] + [str(p) for p in tmpdir.glob("dc-ssh-*")]


# -- a server that accepts the SSH `none` method (as Tailscale SSH does) -----------------------------


@contextmanager
def none_auth_server(known_hosts: Path) -> Iterator[int]:
    """A paramiko server on 127.0.0.1 that logs anyone in as the lab user with no key (`none`).

    It runs each exec request with `sh -c` as the lab user, with the environment the lab's sshd
    gives (the lab's docker, the command log), and presents the lab's host key; known_hosts gets
    its `[127.0.0.1]:port` line. Yields the port.
    """
    import pwd
    import socket
    import threading

    import paramiko

    host_key = paramiko.Ed25519Key.from_private_key_file(str(labctl.SSH / "host_ed25519"))
    account = pwd.getpwnam(labctl.LAB_USER)
    groups = os.getgrouplist(labctl.LAB_USER, account.pw_gid)  # the docker group among them
    env = {"DOCKER_HOST": f"unix://{labctl.DOCKER_SOCK}", "PATH": f"{labctl.BIN}:/usr/bin:/bin",
           "LAB_COMMAND_LOG": str(labctl.COMMAND_LOG), "HOME": account.pw_dir, "USER": labctl.LAB_USER}

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username: str) -> str:
            return "none"

        def check_auth_none(self, username: str) -> int:
            return paramiko.AUTH_SUCCESSFUL if username == labctl.LAB_USER else paramiko.AUTH_FAILED

        def check_channel_request(self, kind: str, chanid: int) -> int:
            return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
            def run() -> None:
                try:
                    time.sleep(0.1)  # after paramiko has sent the exec request's success reply
                    done = subprocess.run(["/bin/sh", "-c", command.decode()], env=env, user=account.pw_uid,
                                          group=account.pw_gid, extra_groups=groups, cwd="/", capture_output=True,
                                          timeout=60, check=False)
                    channel.sendall(done.stdout)
                    channel.sendall_stderr(done.stderr)
                    channel.send_exit_status(done.returncode)
                except (OSError, subprocess.TimeoutExpired, EOFError):
                    pass
                finally:
                    channel.close()

            threading.Thread(target=run, daemon=True).start()
            return True

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transports.append(transport)
            transport.add_server_key(host_key)
            try:
                transport.start_server(server=Server())
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    lines = known_hosts.read_text() if known_hosts.exists() else ""
    known_hosts.write_text(lines + f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    try:
        yield port
    finally:
        listener.close()
        thread.join(5)
        for transport in transports:
            transport.close()


@contextmanager
def ssh_agent(folder: Path, *keys: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """An ssh-agent of our own (stopped by its pid) holding keys (and the certificates beside them); env is
    added to ssh-add's (SSH_ASKPASS for a key with a passphrase). Yields its socket."""
    sock = folder / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.1)
        adding = {**os.environ, **(env or {}), "SSH_AUTH_SOCK": str(sock)}
        for key in keys:
            subprocess.run(["ssh-add", str(key)], env=adding, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        yield str(sock)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


# -- what a run leaves running on the lab host -----------------------------------------------------------


def host_processes() -> list[tuple[int, str]]:
    """(pid, command line) of every live process the lab's sshd instances started for a session, and their
    children, wherever they were re-parented: each carries the lab's LAB_COMMAND_LOG (sshd's SetEnv) in its
    environment. Other checkouts' labs share the lab user, but not this value."""
    marker = f"LAB_COMMAND_LOG={labctl.SHARED}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # exited, not yet reaped
            if not any(v.startswith(marker) for v in (entry / "environ").read_bytes().split(b"\0")):
                continue
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, IndexError):
            continue  # gone meanwhile
        found.append((int(entry.name), args))
    return sorted(found)


def settled_host_processes(seconds: float = 3.0) -> list[tuple[int, str]]:
    """host_processes() once it is empty, or what is still there after seconds (sshd reaps what was killed)."""
    deadline = time.monotonic() + seconds
    while (left := host_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
