"""The ssh:// runner against a fake `ssh` on PATH: the argv it builds, the options it forces, ssh's
errors in our codes, the allowlist before anything runs, the timeout and the output cap."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftcheck import codes
from driftcheck.allowlist import PS_ARGV, VERSION_ARGV
from driftcheck.errors import ConnectionDropped, ObservationError, SafetyViolation
from driftcheck.inventory import HostConfig, parse_inventory
from driftcheck.transport import openssh_runner
from driftcheck.transport.openssh_options import first_error_line, forced_options, generated_config
from driftcheck.transport.openssh_runner import OpenSSHRunner
from driftcheck.transport.recording import Transport
from driftcheck.transport.runners import open_runner
from tests.support.processes import gone, wait_for

#: A stand-in for OpenSSH: logs its argv, then acts as the master or a client as FAKE_SSH_MODE says.
FAKE_SSH = r"""#!PYTHON
import json, os, signal, sys, time
state = os.environ["FAKE_SSH_STATE"]
mode = open(os.path.join(state, "mode")).read().strip()
argv = sys.argv[1:]
with open(os.path.join(state, "calls"), "a") as log:
    log.write(json.dumps(argv) + "\n")
opts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-o"]
path = next(o.split("=", 1)[1] for o in opts if o.startswith("ControlPath="))
if "ControlMaster=yes" in opts:
    errors = {
        "unknown": "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
                   "Host key verification failed.\n",
        "changed": "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                   "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
                   "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                   "Offending ED25519 key in /k/known_hosts:3\nHost key verification failed.\n",
        "denied": "deploy@127.0.0.1: Permission denied (publickey).\n",
        "refused": "ssh: connect to host 127.0.0.1 port 2222: Connection refused\n",
        "noname": "ssh: Could not resolve hostname bastion: Name or service not known\n",
        "odd": "something ssh never said\n",
    }
    if mode in errors:
        sys.stderr.write(errors[mode])
        sys.exit(255)
    if mode.startswith("proxy"):
        # a ProxyCommand (or Match exec) child in ssh's group that ignores the hangup ssh sends it
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, "
                                  "signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(os.path.join(state, "proxy.pid"), "w").write(f"{os.getpid()} {child.pid}\n")
    if mode in ("slowlogin", "proxy-slowlogin"):
        time.sleep(60)
    open(os.path.join(state, "master.pid"), "w").write(str(os.getpid()))
    open(path, "w").close()  # "listening"
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while os.path.exists(path):
        time.sleep(0.02)
    sys.exit(0)
if "-O" in argv:  # exit
    os.unlink(path)
    sys.exit(0)
command = argv[-1]
if mode == "hang":
    time.sleep(60)
if mode == "flood":
    while True:
        sys.stdout.write("x" * 65536)
        sys.stdout.flush()
if mode == "drop":
    os.kill(int(open(os.path.join(state, "master.pid")).read()), signal.SIGKILL)
    sys.stderr.write("mux_client_read_packet: read header failed: Broken pipe\n")
    sys.exit(255)
sys.stdout.write("ran: " + command)
sys.exit(3)
"""


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """A fake `ssh` first on PATH; returns a function that sets its mode and reads its calls."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH.replace("PYTHON", sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_STATE", str(state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh/config of the machine's user

    class Fake:
        def mode(self, mode: str) -> None:
            (state / "mode").write_text(mode)

        def calls(self) -> list[list[str]]:
            log = state / "calls"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    fake = Fake()
    fake.mode("ok")
    yield fake
    openssh_runner._stop_all()  # a test that failed half-way leaves no master running


def config(tmp_path: Path | None = None, **entry: object) -> HostConfig:
    data = {"connection": "ssh://deploy@127.0.0.1:2222", "timeout": 5, **entry}
    return parse_inventory({"hosts": {"h": data}}, "hosts.yaml", tmp_path or Path("/"), check_files=False)["h"]


def options(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-o"]


def test_ssh_scheme_picks_the_openssh_runner():
    assert config().scheme == "ssh" and (config().user, config().port) == ("deploy", 2222)
    assert isinstance(open_runner(config()), OpenSSHRunner)


def test_forced_options_and_the_generated_config(tmp_path):
    cfg = config(tmp_path, known_hosts="/k/known hosts", ssh_config="/u/config", host_key_policy="strict", timeout=2.5)
    forced = dict(forced_options(cfg))
    assert forced["StrictHostKeyChecking"] == "yes"
    assert forced["UserKnownHostsFile"] == '"/k/known hosts"' and forced["GlobalKnownHostsFile"] == "/dev/null"
    assert (forced["KnownHostsCommand"], forced["BatchMode"], forced["PermitLocalCommand"]) == ("none", "yes", "no")
    assert (forced["ConnectTimeout"], forced["LogLevel"]) == ("3", "ERROR")
    text = generated_config(cfg).splitlines()
    # Host * first, forced options, then the user's config: a ProxyJump hop reads the same lines first.
    assert text[1] == "Host *" and text[2] == "  StrictHostKeyChecking yes"
    assert text[-1] == '  Include "/u/config"'
    assert "  ControlPath none" in text
    assert dict(forced_options(config(host_key_policy="accept-new")))["StrictHostKeyChecking"] == "accept-new"
    defaults = dict(forced_options(config()))
    assert (defaults["UserKnownHostsFile"], defaults["GlobalKnownHostsFile"]) == (
        "~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


def test_one_master_every_command_over_its_socket_closed_at_the_end(fake_ssh, tmp_path):
    runner = OpenSSHRunner(config(tmp_path, identity_file="/keys/id", known_hosts="/k/kh"))
    first = runner.run(PS_ARGV)
    second = runner.run(VERSION_ARGV)
    assert first.rc == 3 and first.stdout.startswith(b"ran: docker ps ")
    assert second.stdout == b"ran: " + shlex.join(VERSION_ARGV).encode()
    private = Path(runner.socket).parent
    assert oct(private.stat().st_mode & 0o777) == "0o700" and len(runner.socket) < 100
    master, *clients = fake_ssh.calls()
    assert len(clients) == 2
    assert master[0] == "-F" and Path(master[1]).parent == private
    opts = options(master)
    for forced in ("StrictHostKeyChecking=yes", 'UserKnownHostsFile="/k/kh"', "GlobalKnownHostsFile=/dev/null",
                   "KnownHostsCommand=none", "BatchMode=yes", "PermitLocalCommand=no", "ConnectTimeout=5",
                   "LogLevel=ERROR", "ControlMaster=yes", "IdentitiesOnly=yes"):
        assert forced in opts, forced
    assert master[-6:] == ["-l", "deploy", "-p", "2222", "--", "127.0.0.1"] and "-N" in master
    assert master[master.index("-i") + 1] == "/keys/id"
    for client in clients:
        assert f"ControlPath={runner.socket}" in options(client) and "ControlMaster=no" in options(client)
        assert "ProxyCommand=/bin/false" in options(client)  # never a connection of its own
        assert client[client.index("--") + 1:][0] == "127.0.0.1" and len(client[client.index("--") + 1:]) == 2
    assert clients[1][-1] == shlex.join(VERSION_ARGV)  # shlex.join: one argument, the only command
    runner.close()
    exit_call = fake_ssh.calls()[-1]
    assert exit_call[exit_call.index("-O") + 1] == "exit" and "ControlMaster=no" in options(exit_call)
    assert not private.exists()
    assert runner.master is None


def test_the_allowlist_refuses_before_anything_runs(fake_ssh):
    runner = OpenSSHRunner(config())
    with pytest.raises(SafetyViolation):
        runner.run(["docker", "rm", "-f", "x"])
    with pytest.raises(SafetyViolation):
        Transport(config()).run(["sh", "-c", "id"])
    assert fake_ssh.calls() == [] and runner.master is None


@pytest.mark.parametrize(("mode", "code", "quoted"), [
    ("unknown", codes.HOST_KEY_UNKNOWN, "No ED25519 host key is known for [127.0.0.1]:2222"),
    ("changed", codes.HOST_KEY_MISMATCH, "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! (offending entry: "
                                         "/k/known_hosts:3)"),
    ("denied", codes.AUTH_FAILED, "deploy@127.0.0.1: Permission denied (publickey)."),
    ("refused", codes.HOST_UNREACHABLE, "ssh: connect to host 127.0.0.1 port 2222: Connection refused"),
    ("noname", codes.HOST_UNREACHABLE, "ssh: Could not resolve hostname bastion: Name or service not known"),
    ("odd", codes.HOST_UNREACHABLE, "something ssh never said"),
])
def test_ssh_failures_are_one_code_and_one_line_quoting_ssh(fake_ssh, mode, code, quoted):
    fake_ssh.mode(mode)
    transport = Transport(config())
    with pytest.raises(ObservationError) as info:
        transport.run(PS_ARGV)
    assert not isinstance(info.value, ConnectionDropped)
    assert info.value.code == code
    message = str(info.value.message)
    assert quoted in message and "\n" not in message and "; " in message
    assert transport.commands == []  # nothing recorded: connect() failed
    assert len(fake_ssh.calls()) == 1 and transport.runner.dir is None  # type: ignore[attr-defined]


def test_a_login_that_never_completes_is_cut_at_the_timeout(fake_ssh):
    fake_ssh.mode("slowlogin")
    runner = OpenSSHRunner(config(timeout=1))
    started = time.monotonic()
    with pytest.raises(ObservationError) as info:
        runner.run(PS_ARGV)
    assert time.monotonic() - started < 2.5
    assert info.value.code == codes.HOST_UNREACHABLE and "within 1s" in info.value.message
    assert runner.master is None and runner.dir is None


def test_a_command_that_hangs_is_killed_at_the_timeout(fake_ssh):
    runner = OpenSSHRunner(config(timeout=1))
    runner.connect()
    fake_ssh.mode("hang")
    started = time.monotonic()
    with pytest.raises(ObservationError) as info:
        runner.run(PS_ARGV)
    assert time.monotonic() - started < 2.5
    assert info.value.code == codes.TIMEOUT
    assert runner.master is not None and runner.master.poll() is None  # the connection stays up
    fake_ssh.mode("ok")
    assert runner.run(PS_ARGV).rc == 3
    runner.close()


def test_output_beyond_the_cap_is_refused(fake_ssh, monkeypatch):
    monkeypatch.setattr(openssh_runner, "MAX_OUTPUT", 1024 * 1024)
    runner = OpenSSHRunner(config())
    runner.connect()
    fake_ssh.mode("flood")
    with pytest.raises(ObservationError) as info:
        runner.run(PS_ARGV)
    assert info.value.code == codes.OBSERVATION_INVALID
    runner.close()


def test_a_dropped_master_is_reconnected_once_by_the_transport(fake_ssh):
    transport = Transport(config())
    transport.connect()
    fake_ssh.mode("drop")
    with pytest.raises(ConnectionDropped) as info:
        transport.run(PS_ARGV)
    assert "lost again after one reconnect" in info.value.message
    masters = [c for c in fake_ssh.calls() if "ControlMaster=yes" in options(c)]
    assert len(masters) == 2 and transport.reconnects == 1
    transport.close()
    assert transport.runner.dir is None  # type: ignore[attr-defined]


def test_first_error_line_skips_the_frame_of_the_warning():
    assert first_error_line("@@@@\n@  WARNING: X  @\n") == "WARNING: X"
    assert first_error_line("") == ""


def proxy_pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in wait_for(tmp_path / "state" / "proxy.pid").split()]


def test_a_proxycommand_child_dies_with_ssh_at_the_login_timeout(fake_ssh, tmp_path):
    fake_ssh.mode("proxy-slowlogin")
    runner = OpenSSHRunner(config(timeout=1))
    with pytest.raises(ObservationError) as info:
        runner.run(PS_ARGV)
    assert info.value.code == codes.HOST_UNREACHABLE
    assert gone(*proxy_pids(tmp_path)), "ssh or its ProxyCommand child still runs after the timeout"


def test_a_proxycommand_child_that_ignores_the_hangup_dies_at_close(fake_ssh, tmp_path):
    """`ssh -O exit` ends the master, which only sends its ProxyCommand a SIGHUP: the group goes too."""
    fake_ssh.mode("proxy")
    runner = OpenSSHRunner(config())
    assert runner.run(PS_ARGV).rc == 3
    master, child = proxy_pids(tmp_path)
    runner.close()
    assert gone(master, child), "the ProxyCommand child outlived close()"


def test_a_master_that_dies_on_its_own_leaves_no_proxycommand_child(fake_ssh, tmp_path):
    fake_ssh.mode("proxy")
    transport = Transport(config())
    transport.connect()
    master, child = proxy_pids(tmp_path)
    os.kill(master, signal.SIGKILL)  # the connection dropped; its ProxyCommand child lingers
    assert gone(master)  # (a zombie until the runner reaps it)
    fake_ssh.mode("ok")
    assert transport.run(PS_ARGV).rc == 3 and transport.reconnects == 1
    assert gone(master, child), "the dead master's ProxyCommand child still runs"
    transport.close()


SIGTERMED = """
import sys
from driftcheck.inventory import parse_inventory
from driftcheck.transport.openssh_runner import OpenSSHRunner
from pathlib import Path
cfg = parse_inventory({"hosts": {"h": {"connection": "ssh://deploy@127.0.0.1:2222", "timeout": 5}}}, "hosts.yaml",
                      Path("/"), check_files=False)["h"]
OpenSSHRunner(cfg).connect()
print("connected", flush=True)
import time
time.sleep(60)
"""


def test_sigterm_ends_ssh_and_its_proxycommand_child(fake_ssh, tmp_path):
    """A process with no SIGTERM handler of its own (make import) takes ssh's group down with it."""
    fake_ssh.mode("proxy")
    proc = subprocess.Popen([sys.executable, "-c", SIGTERMED], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "connected\n"
        master, child = proxy_pids(tmp_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for call in fake_ssh.calls():  # the private folder of the process that was killed
            socket = next((o.split("=", 1)[1] for o in options(call) if o.startswith("ControlPath=")), None)
            if socket:
                shutil.rmtree(Path(socket).parent, ignore_errors=True)
    assert gone(master, child), "ssh or its ProxyCommand child outlived the SIGTERM"
