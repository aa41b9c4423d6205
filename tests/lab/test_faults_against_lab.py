"""The fault matrix (docs/operations.md): every fault against the real lab is a clear exit 2, never in sync.

Faults come from the lab itself: a closed port, a port that never speaks SSH, sshd refusing a
login, the lab user's `docker` wrapper misbehaving on request (labctl.FAULT_MODES), the lab's
dockerd frozen with SIGSTOP, the suite killed mid-run, a read-only or full reports folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import labctl
import paramiko
import pytest
import yaml

from driftcheck.allowlist import PS_ARGV
from driftcheck.errors import ObservationError
from driftcheck.inventory import load_inventory
from driftcheck.transport import Transport
from tests.support.lab import (
    EXAMPLE_MODULES,
    REPO,
    TRANSPORT,
    add_module,
    assert_errors_actionable,
    fault,
    lab_connection,
    logged_commands,
    run_suite,
    sshd_log_count,
    write_inventory,
    wrong_known_hosts,
)

LOGIN = "Accepted publickey for driftlab"
#: Slack for a bounded phase: scheduling on a busy 2-core machine, not a second phase.
MARGIN = 1.0


def module_codes(run) -> set[str]:
    return {m["error"]["code"] for m in run.plan["modules"] if m["error"]}


def assert_all_error(run, code: str) -> None:
    """Exit 2; every module is an error with code (none in sync); every error actionable."""
    assert run.rc == 2, run.output
    assert run.plan["exit_code"] == 2
    assert set(run.statuses().values()) == {"error"}, run.statuses()
    assert module_codes(run) == {code}, run.plan["errors"]
    assert run.plan["summary"]["in_sync"] == 0
    assert_errors_actionable(run.plan)


# -- host unreachable ---------------------------------------------------------------------------

#: What each transport's message says of a fault (paramiko's own words, or OpenSSH's quoted).
SAYS = {
    "paramiko": {"refused": "refused the connection", "mute": ("did not complete within 2s",),
                 "wrong key": "refused the login of driftlab"},
    # ssh's own ConnectTimeout may end it first, in its own words
    "ssh": {"refused": "Connection refused", "mute": ("did not log in within 2s",
                                                      "Connection timed out during banner exchange"),
            "wrong key": "Permission denied (publickey)"},
}[TRANSPORT]


def test_closed_port_is_host_unreachable(lab, command_log, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=lab_connection(labctl.free_port()))
    run = run_suite(tmp_path, inventory=inventory)
    assert_all_error(run, "HOST_UNREACHABLE")
    assert SAYS["refused"] in run.plan["modules"][0]["error"]["message"]
    # One error per affected module, each a pytest setup error of its checks.
    assert len([e for e in run.plan["errors"] if e["code"] == "HOST_UNREACHABLE"]) == len(run.plan["modules"])
    assert "ERROR checks/test_container.py::test_exists[honcho-redis]" in run.output
    assert logged_commands() == []


@pytest.mark.parametrize("banner", [None, b"SSH-2.0-OpenSSH_9.2\r\n"], ids=["silent", "banner-then-silence"])
def test_port_that_never_speaks_ssh_is_host_unreachable_within_the_timeout(lab, command_log, tmp_path,
                                                                           mute_server, banner):
    port = mute_server(banner)
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=lab_connection(port),
                                timeout=2)
    run = run_suite(tmp_path, inventory=inventory)
    assert_all_error(run, "HOST_UNREACHABLE")
    assert any(words in run.plan["modules"][0]["error"]["message"] for words in SAYS["mute"]), run.plan["errors"]
    # TCP, banner, key exchange and login share one deadline (paramiko alone allows 15 s + 30 s).
    [host] = run.plan["hosts"]
    assert 2 - 0.1 <= host["seconds"] <= 2 + MARGIN, host
    assert host["commands"] == []


# -- authentication -----------------------------------------------------------------------------


def test_wrong_key_is_auth_failed(lab, command_log, tmp_path):
    key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", identity_file=str(key)))
    assert_all_error(run, "AUTH_FAILED")
    assert SAYS["wrong key"] in run.plan["modules"][0]["error"]["message"]
    assert logged_commands() == []


def test_wrong_user_is_auth_failed(lab, command_log, tmp_path):
    port = int((labctl.RUN / "sshd.port").read_text())
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=lab_connection(port, "nosuchuser"))
    run = run_suite(tmp_path, inventory=inventory)
    assert_all_error(run, "AUTH_FAILED")
    assert "nosuchuser" in run.plan["modules"][0]["error"]["message"]
    assert logged_commands() == []


def test_unknown_host_key_sends_nothing(lab, command_log, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(empty)))
    assert_all_error(run, "HOST_KEY_UNKNOWN")
    assert logged_commands() == []
    assert empty.read_text() == ""


def test_changed_host_key_is_rejected(lab, command_log, tmp_path):
    wrong = wrong_known_hosts(tmp_path / "known_hosts")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(wrong)))
    assert_all_error(run, "HOST_KEY_MISMATCH")
    assert logged_commands() == []


# -- docker unavailable -------------------------------------------------------------------------


@pytest.fixture
def denied_socket() -> Iterator[Path]:
    """A docker socket the lab user may not open (root's, mode 0600), as on a host where the
    deploy user is not in the docker group."""
    path = labctl.DENIED_SOCK
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    os.chmod(path, 0o600)
    yield path
    server.close()
    path.unlink(missing_ok=True)


@pytest.mark.parametrize(("mode", "first_stderr_line"), [
    ("daemon-down", "Cannot connect to the Docker daemon at unix://"),
    ("denied", "permission denied while trying to connect to the Docker daemon socket"),
    ("no-cli", "not found"),
])
def test_docker_unavailable_carries_the_first_line_of_stderr(lab, command_log, tmp_path, denied_socket,
                                                             mode, first_stderr_line):
    with fault("all", mode):
        run = run_suite(tmp_path)
    assert_all_error(run, "DOCKER_UNAVAILABLE")
    message = run.plan["modules"][0]["error"]["message"]
    assert first_stderr_line in message, message
    assert len(logged_commands()) == 1  # docker ps failed; nothing else was tried


# -- docker hangs -------------------------------------------------------------------------------


def test_docker_that_hangs_is_a_timeout(lab, command_log, tmp_path):
    with fault("inspect", "hang"):
        run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", timeout=2))
    assert_all_error(run, "TIMEOUT")
    [host] = run.plan["hosts"]
    # ps answered, inspect hung for the host's 2 s; nothing more was sent.
    assert 2 <= host["seconds"] <= 2 + MARGIN, host
    assert [c[0] for c in logged_commands()] == ["ps", "inspect"]


def test_frozen_dockerd_is_a_timeout(lab, command_log, tmp_path):
    pid = int((labctl.RUN / "docker.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", timeout=2))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_all_error(run, "TIMEOUT")
    assert run.plan["hosts"][0]["seconds"] <= 2 + MARGIN
    assert [c[0] for c in logged_commands()] == ["ps"]


@pytest.mark.pins_transport  # paramiko's own channels and threads (test_openssh: ssh's masters)
def test_a_timeout_leaves_no_thread_or_channel_behind(lab, command_log):
    before = set(threading.enumerate())
    config = load_inventory(labctl.INVENTORY, "inventory.yaml")["rs2000"]
    config = type(config)(**{**config.__dict__, "timeout": 1.0})
    transport = Transport(config)
    with fault("ps", "hang"):
        started = time.monotonic()
        with pytest.raises(ObservationError) as info:
            transport.run(PS_ARGV)
        took = time.monotonic() - started
    assert info.value.code == "TIMEOUT"
    assert took <= 1 + MARGIN
    ssh = transport.runner.connection
    assert ssh is not None and ssh.is_active()
    assert all(chan.closed for chan in ssh._channels.values()), "the timed-out channel is still open"
    transport.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(threading.enumerate()) - before:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    assert not any(isinstance(t, paramiko.Transport) for t in threading.enumerate())


# -- unparseable output -------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "mode"), [
    ("ps", "garbage"), ("inspect", "garbage"), ("inspect", "truncate"), ("inspect", "empty"),
    ("image", "truncate"), ("image", "empty"),
])
def test_malformed_truncated_or_empty_json_is_observation_invalid(lab, command_log, tmp_path, command, mode):
    with fault(command, mode):
        run = run_suite(tmp_path)
    assert run.rc == 2, run.output
    if command == "image":
        # The containers were observed; every module that needs the image check is incomplete.
        errors = {m["module"]: m["error"]["code"] for m in run.plan["modules"] if m["error"]}
        assert set(errors.values()) == {"OBSERVATION_INVALID"}
        assert set(run.statuses()) - set(errors) == {"legacy-wiki"}  # desired absent: exists is its only check
    else:
        assert_all_error(run, "OBSERVATION_INVALID")
    assert_errors_actionable(run.plan)


# -- docker fails without a word ----------------------------------------------------------------


def test_an_inspect_that_fails_without_a_word_never_makes_an_absent_module_in_sync(lab, command_log, tmp_path):
    # honcho-redis runs; desired absent, a silent `docker inspect` (exit 1, no output) read as
    # "every container missing" made it in sync, exit 0.
    modules = tmp_path / "modules"
    (modules / "honcho-redis").mkdir(parents=True)
    (modules / "honcho-redis" / "module.yaml").write_text(yaml.safe_dump({
        "schema_version": 2, "name": "honcho-redis", "host": "rs2000",
        "compose": {"project": "home-platform", "service": "honcho-redis"}, "desired": {"state": "absent"}}))
    with fault("inspect", "silent"):
        run = run_suite(tmp_path, "-k", "honcho-redis", modules=modules)  # (not the orphans check of its project)
    assert_all_error(run, "DOCKER_UNAVAILABLE")
    assert list(run.statuses()) == ["honcho-redis"]
    assert "`docker inspect` failed on the host: exit status 1 without a message" in \
        run.plan["modules"][0]["error"]["message"]
    assert [c[0] for c in logged_commands()] == ["ps", "inspect"]


def test_an_inspect_that_fails_without_a_word_never_makes_present_containers_missing(lab, command_log, tmp_path):
    with fault("inspect", "silent"):
        run = run_suite(tmp_path)
    assert_all_error(run, "DOCKER_UNAVAILABLE")  # was CONTAINER_MISSING for every present container, exit 1
    assert run.plan["changes"] == [] and "CONTAINER_MISSING" not in run.output


def test_an_image_inspect_that_fails_without_a_word_is_an_error_never_image_not_observed(lab, command_log, tmp_path):
    with fault("image", "silent"):
        run = run_suite(tmp_path)
    assert run.rc == 2, run.output  # was exit 0 with IMAGE_NOT_OBSERVED on every module
    statuses = run.statuses()
    assert statuses.pop("legacy-wiki") == "in_sync"  # desired absent: exists is its only check
    assert set(statuses.values()) == {"error"}
    assert module_codes(run) == {"DOCKER_UNAVAILABLE"}
    assert run.plan["warnings"] == [] and "IMAGE_NOT_OBSERVED" not in run.output
    assert_errors_actionable(run.plan)


@pytest.mark.parametrize("command", ["inspect", "image"])
def test_an_inspect_that_names_one_missing_object_and_leaves_out_the_others_is_observation_invalid(
        lab, command_log, tmp_path, command):
    # exit 1, "[]", and "No such object" for the last argument only: the others were left out unnamed
    with fault(command, "name-one"):
        run = run_suite(tmp_path)
    assert run.rc == 2, run.output
    errors = {m["module"]: m["error"]["code"] for m in run.plan["modules"] if m["error"]}
    assert set(errors.values()) == {"OBSERVATION_INVALID"}
    assert set(run.statuses()) - set(errors) == ({"legacy-wiki"} if command == "image" else set())
    assert "without naming them missing" in run.plan["errors"][0]["message"]
    assert run.plan["changes"] == [] and run.plan["warnings"] == []


# -- hostile host data ---------------------------------------------------------------------------

PWN = "\x1b]0;pwned\x07"  # retitles the terminal
ERASE = "\x1b[2K\x1b[1A"  # erases a line and moves up: a forged "in sync" row could follow


@contextmanager
def labelled_container(name: str, project: str, service: str) -> Iterator[None]:
    """A container on the lab host with these compose labels (the daemon refuses odd names, not labels)."""
    labctl.docker("run", "--detach", "--init", "--name", name, "--label", f"com.docker.compose.project={project}",
                  "--label", f"com.docker.compose.service={service}", "lab/app:1")
    try:
        yield
    finally:
        labctl.docker("rm", "--force", name)


def test_a_line_separator_in_an_unrelated_containers_label_leaves_the_host_observable(lab, command_log, tmp_path):
    # docker's JSON leaves U+0085 raw: str.splitlines() cut that `docker ps` row in two, and every
    # module of the host was OBSERVATION_INVALID
    with labelled_container("unrelated-odd-1", "unrelated\u0085x", "odd\u0085\u2028\u2029\x1c\x1d\x1e-service"):
        run = run_suite(tmp_path)
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]


def test_escape_sequences_in_a_hosts_labels_never_reach_the_terminal_raw(lab, command_log, tmp_path):
    with labelled_container("home-platform-intruder-1", "home-platform", f"intruder{PWN}{ERASE}"):
        run = run_suite(tmp_path, "-rf", "--tb=short")
        modules = tmp_path / "imported"
        done = subprocess.run([sys.executable, "-m", "driftcheck.importer", "--host=rs2000",
                               f"--inventory={labctl.INVENTORY}", f"--modules-dir={modules}",
                               "--project=home-platform"], cwd=REPO, capture_output=True, text=True, check=False)
    assert run.rc == 1, run.output
    assert run.codes()["orphans@rs2000/home-platform"] == ["ORPHAN_CONTAINER"]
    # the plan keeps the exact value; the terminal shows it escaped, in the failure lines too
    [orphan] = [c for c in run.plan["changes"] if c["code"] == "ORPHAN_CONTAINER"]
    assert f"intruder{PWN}{ERASE}" in orphan["message"]
    for text in (run.output, done.stdout + done.stderr):
        assert "\x1b" not in text and "\x07" not in text, text
    assert "intruder\\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A" in run.output, run.output
    # make import: the service cannot become a module (its name is no compose service name); it says so, escaped
    assert "intruder\\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A" in done.stdout, done.stdout + done.stderr


# -- connection dropped -------------------------------------------------------------------------


def test_connection_dropped_once_is_reconnected_once(lab, command_log, tmp_path):
    logins = sshd_log_count(LOGIN)
    with fault("inspect", "drop-once") as path:
        run = run_suite(tmp_path)
        assert not path.exists(), "the fault did not fire"
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    assert sshd_log_count(LOGIN) - logins == 2
    # The lost command was sent again on the new connection; the record shows both.
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "inspect", "image"]
    assert [c.split()[1] for c in run.plan["hosts"][0]["commands"]] == ["ps", "inspect", "inspect", "image"]


def test_connection_dropped_again_makes_the_unobserved_modules_errors(lab, command_log, tmp_path):
    logins = sshd_log_count(LOGIN)
    with fault("image", "drop"):
        run = run_suite(tmp_path)
    assert run.rc == 2, run.output
    # At most one reconnect.
    assert sshd_log_count(LOGIN) - logins == 2
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image", "image"]
    statuses = run.statuses()
    # legacy-wiki (desired absent) was fully observed before the drop; every other module still
    # needed its image check.
    assert statuses.pop("legacy-wiki") == "in_sync"
    assert set(statuses.values()) == {"error"}
    assert module_codes(run) == {"HOST_UNREACHABLE"}
    assert "lost again after one reconnect" in run.plan["errors"][0]["message"]
    assert_errors_actionable(run.plan)
    passed = [line for line in run.output.splitlines() if "test_state[honcho-redis]" in line]
    assert not any(line.startswith("ERROR") for line in passed)


# -- several hosts, one failing -----------------------------------------------------------------


def test_several_hosts_one_failing(lab, command_log, tmp_path, mute_server):
    modules = tmp_path / "modules"
    subprocess.run(["cp", "-r", str(EXAMPLE_MODULES), str(modules)], check=True)
    redis = modules / "honcho-redis" / "module.yaml"
    redis.write_text(redis.read_text().replace("redis:7.2-alpine", "redis:7.0-alpine"))  # drift on rs2000
    add_module(modules, "nas-app", "nas")
    add_module(modules, "edge-app", "edge")
    inventory = write_inventory(tmp_path / "hosts.yaml", timeout=2)
    data = yaml.safe_load(inventory.read_text())
    good = data["hosts"]["rs2000"]
    data["hosts"]["nas"] = {**good, "connection": lab_connection(labctl.free_port())}
    data["hosts"]["edge"] = {**good, "connection": lab_connection(mute_server(None))}
    inventory.write_text(yaml.safe_dump(data))
    run = run_suite(tmp_path, inventory=inventory, modules=modules)
    assert run.rc == 2, run.output
    statuses = run.statuses()
    assert statuses.pop("nas-app") == "error" and statuses.pop("edge-app") == "error"
    # Their hosts' orphans checks could not look either.
    assert statuses.pop("orphans@nas/home-platform") == statuses.pop("orphans@edge/home-platform") == "error"
    assert statuses.pop("honcho-redis") == "drift"
    assert set(statuses.values()) == {"in_sync"}
    assert run.codes()["honcho-redis"] == ["IMAGE_TAG_MISMATCH"]
    hosts = {h["host"]: h for h in run.plan["hosts"]}
    assert hosts["rs2000"]["error"] is None and len(hosts["rs2000"]["commands"]) == 3
    assert hosts["nas"]["error"]["code"] == "HOST_UNREACHABLE" and hosts["nas"]["commands"] == []
    assert hosts["edge"]["error"]["code"] == "HOST_UNREACHABLE" and hosts["edge"]["commands"] == []
    assert {(e["module"], e["host"]) for e in run.plan["errors"]} == {
        ("nas-app", "nas"), ("edge-app", "edge"), ("orphans@nas/home-platform", "nas"),
        ("orphans@edge/home-platform", "edge")}
    assert_errors_actionable(run.plan)
    assert len(logged_commands()) == 3


# -- interrupted --------------------------------------------------------------------------------


def snapshot(folder: Path, runs_only: bool = False) -> dict[str, bytes]:
    """Every file under folder; runs_only: of its run folders (the history page beside them is rewritten
    after each run)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not (runs_only and p.parent == folder)}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_exits_2_and_keeps_earlier_runs(lab, command_log, tmp_path, signum):
    earlier = run_suite(tmp_path)
    assert earlier.rc == 0 and earlier.run_dir is not None
    reports = tmp_path / "reports"
    before, latest = snapshot(reports, runs_only=True), os.readlink(reports / "latest")
    command_log.write_text("")
    with fault("inspect", "hang"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--reports-dir={reports}", f"--modules-dir={EXAMPLE_MODULES}",
             f"--inventory={write_inventory(tmp_path / 'hosts.yaml', timeout=60)}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [c[0] for c in logged_commands()] != ["ps", "inspect"]:
            time.sleep(0.05)
        assert [c[0] for c in logged_commands()] == ["ps", "inspect"], "the run never reached inspect"
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 2, output
    assert os.readlink(reports / "latest") == latest, "an interrupted run moved latest"
    after = snapshot(reports, runs_only=True)
    assert {k: v for k, v in after.items() if k in before} == before, "an earlier run was touched"
    new = {Path(k).parts[0] for k in after} - {Path(k).parts[0] for k in before}
    assert len(new) == 1, after.keys()
    run_dir = reports / new.pop()
    assert sorted(p.name for p in run_dir.iterdir()) == ["index.html", "junit.xml", "plan.json", "report.json"]
    assert not [p for p in reports.rglob("*") if p.name.startswith(".")], "a temp file was left"
    assert f'id="run-{run_dir.name}"' in (reports / "index.html").read_text(), "the history misses the run"
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["exit_code"] == 2 and plan["summary"]["in_sync"] == 0
    [interrupted] = [e for e in plan["errors"] if e["code"] == "INTERRUPTED"]
    assert ("SIGTERM" if signum == signal.SIGTERM else "SIGINT") in interrupted["message"]
    assert_errors_actionable(plan)


# -- reports folder not writable, disk full -----------------------------------------------------


@pytest.fixture
def mounted(tmp_path) -> Iterator[Path]:
    """tmp_path/reports, made unwritable by the test through a mount; unmounted afterwards."""
    reports = tmp_path / "reports"
    yield reports
    subprocess.run(["umount", str(reports)], check=False, capture_output=True)


def test_reports_folder_read_only(lab, command_log, tmp_path, mounted):
    assert run_suite(tmp_path).rc == 0  # an earlier run, which must stay
    before = snapshot(mounted)
    # A read-only bind mount: chmod would not stop root.
    subprocess.run(["mount", "--bind", str(mounted), str(mounted)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
    run = run_suite(tmp_path)
    assert run.rc == 2, run.output
    assert "ARTIFACTS_NOT_WRITTEN" in run.output and "Read-only file system" in run.output
    assert re.search(r"\nhoncho-redis +rs2000 +in sync ", run.output)  # the results are still on the terminal
    assert "7 modules: 7 in sync" in run.output
    assert snapshot(mounted) == before


def test_reports_disk_full(lab, command_log, tmp_path, mounted):
    mounted.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mounted)], check=True)
    filler = mounted / "filler"
    with open(filler, "wb") as handle:
        try:
            handle.write(b"\0" * (128 * 1024))
        except OSError:
            pass
    run = run_suite(tmp_path)
    assert run.rc == 2, run.output
    assert "ARTIFACTS_NOT_WRITTEN" in run.output and "No space left on device" in run.output
    assert "7 modules: 7 in sync" in run.output
    # Nothing half-written: no run folder, no partial folder, no temp file.
    assert [p.name for p in mounted.iterdir()] == ["filler"]


# -- invalid inventory --------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "key", "expected"), [
    ({"connection": "telnet://driftlab@127.0.0.1:22"}, "hosts.rs2000.connection", "paramiko://"),
    ({"host_key_policy": "trust-all"}, "hosts.rs2000.host_key_policy", "strict or accept-new"),
    ({"identity_file": "/nonexistent/id_ed25519"}, "hosts.rs2000.identity_file", "/nonexistent/id_ed25519"),
], ids=["bad-url", "unknown-policy", "missing-key-file"])
def test_invalid_inventory_names_host_and_key(lab, command_log, tmp_path, setting, key, expected):
    logins = sshd_log_count("Connection from")
    inventory = write_inventory(tmp_path / "hosts.yaml", **setting)
    run = run_suite(tmp_path, inventory=inventory)
    assert run.rc == 2, run.output
    assert run.plan["modules"] == []
    [error] = run.plan["errors"]
    assert (error["code"], error["key"], error["file"]) == ("INVENTORY_INVALID", key, str(inventory))
    assert expected in error["message"]
    assert f"key '{key}'" in run.output
    assert_errors_actionable(run.plan)
    assert logged_commands() == [] and sshd_log_count("Connection from") == logins


def test_invalid_manifest_contacts_no_host(lab, command_log, tmp_path):
    modules = tmp_path / "modules"
    (modules / "bad").mkdir(parents=True)
    (modules / "bad" / "module.yaml").write_text(
        "schema_version: 2\nname: bad\nhost: rs2000\ncompose:\n  project: 'x; rm -rf /'\n  service: s\n"
        "image:\n  ref: a:1\n")
    run = run_suite(tmp_path, modules=modules)
    assert run.rc == 2, run.output
    assert run.plan["modules"] == []
    [error] = run.plan["errors"]
    assert error["code"] == "MANIFEST_INVALID" and error["key"] == "compose.project"
    assert error["file"].endswith("bad/module.yaml")
    assert "compose.project" in run.output
    assert logged_commands() == []
