"""ssh:// (the system OpenSSH client) against the lab's real sshd: the same results, commands and codes as
paramiko://, over one connection per host and run, with host keys from hosts.yaml only."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import labctl
import pytest

from tests.lab.test_faults_against_lab import LOGIN, assert_all_error, module_codes
from tests.support.lab import (
    DRIFT_MODULES,
    assert_errors_actionable,
    fault,
    logged_commands,
    make,
    openssh_leftovers,
    run_suite,
    ssh_connection,
    sshd_log_count,
    write_ssh_inventory,
    wrong_known_hosts,
)


@pytest.fixture(autouse=True)
def nothing_left_behind(monkeypatch):
    """No ssh master keeps running and no private folder stays on disk after a run (the suite runs with
    a TMPDIR of its own, short enough for the control socket, so other runs on this machine do not count)."""
    tmpdir = Path(tempfile.mkdtemp(prefix="dcl-"))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    yield
    try:
        assert openssh_leftovers(tmpdir) == []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_drift_lab_over_ssh_matches_paramiko_over_one_connection(drift_lab_run, command_log, tmp_path):
    logins = sshd_log_count(LOGIN)
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"), modules=DRIFT_MODULES)
    assert run.rc == drift_lab_run.rc == 1, run.output
    assert run.statuses() == drift_lab_run.statuses()
    assert run.codes() == drift_lab_run.codes()
    # The same three commands, as the lab host saw them and as the plan records them.
    assert logged_commands() == drift_lab_run.commands and len(logged_commands()) == 3
    assert run.plan["hosts"][0]["commands"] == drift_lab_run.plan["hosts"][0]["commands"]
    assert sshd_log_count(LOGIN) - logins == 1


def test_example_suite_over_ssh_is_in_sync(lab, command_log, tmp_path):
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"))
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]


def test_import_over_ssh(lab, command_log, tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    inventory = write_ssh_inventory(tmp_path / "hosts.yaml")
    done = make("import", "HOST=rs2000", f"INVENTORY={inventory}", f"MODULES_DIR={modules}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(modules.glob("*/module.yaml"))
    assert [c[0] for c in logged_commands()] == ["ps", "inspect"]


def test_ssh_config_cannot_weaken_strict_host_keys(lab, command_log, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    user_config = tmp_path / "ssh_config"
    user_config.write_text("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                           "  GlobalKnownHostsFile /dev/null\n")
    logins = sshd_log_count(LOGIN)
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", known_hosts=str(empty),
                                                            ssh_config=str(user_config)))
    assert_all_error(run, "HOST_KEY_UNKNOWN")
    assert "No ED25519 host key is known for [127.0.0.1]:" in run.plan["errors"][0]["message"]
    assert empty.read_text() == "" and logged_commands() == []
    assert sshd_log_count(LOGIN) == logins  # the key was checked before any login


def test_changed_host_key_is_a_mismatch_naming_the_entry(lab, command_log, tmp_path):
    wrong = wrong_known_hosts(tmp_path / "known_hosts")
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", known_hosts=str(wrong)))
    assert_all_error(run, "HOST_KEY_MISMATCH")
    assert f"{wrong}:1" in run.plan["errors"][0]["message"]
    assert logged_commands() == []


def test_accept_new_records_the_key_then_trusts_it(lab, command_log, tmp_path):
    learned = tmp_path / "known_hosts"
    learned.write_text("")
    inventory = write_ssh_inventory(tmp_path / "hosts.yaml", known_hosts=str(learned), host_key_policy="accept-new")
    assert run_suite(tmp_path / "1", inventory=inventory).rc == 0
    assert "ssh-ed25519" in learned.read_text()
    assert run_suite(tmp_path / "2", inventory=inventory).rc == 0


def test_wrong_user_is_auth_failed_in_one_line(lab, command_log, tmp_path):
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml",
                                                            connection=ssh_connection(user="nosuchuser")))
    assert_all_error(run, "AUTH_FAILED")
    assert "nosuchuser@127.0.0.1: Permission denied (publickey)" in run.plan["errors"][0]["message"]
    assert logged_commands() == []


def test_closed_port_is_host_unreachable(lab, command_log, tmp_path):
    run = run_suite(tmp_path, inventory=write_ssh_inventory(
        tmp_path / "hosts.yaml", connection=ssh_connection(port=labctl.free_port())))
    assert_all_error(run, "HOST_UNREACHABLE")
    assert "Connection refused" in run.plan["errors"][0]["message"]
    assert run.plan["hosts"][0]["commands"] == []


def test_port_that_never_speaks_ssh_is_cut_at_the_timeout(lab, command_log, tmp_path, mute_server):
    run = run_suite(tmp_path, inventory=write_ssh_inventory(
        tmp_path / "hosts.yaml", connection=ssh_connection(port=mute_server(b"SSH-2.0-OpenSSH_9.2\r\n")), timeout=2))
    assert_all_error(run, "HOST_UNREACHABLE")
    assert run.plan["hosts"][0]["seconds"] <= 2 + 1.0


# -- the fault matrix: the same codes as paramiko -------------------------------------------------


def test_docker_that_hangs_is_a_timeout(lab, command_log, tmp_path):
    with fault("inspect", "hang"):
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", timeout=2))
    assert_all_error(run, "TIMEOUT")
    assert 2 <= run.plan["hosts"][0]["seconds"] <= 2 + 1.0
    assert [c[0] for c in logged_commands()] == ["ps", "inspect"]


@pytest.mark.parametrize(("command", "mode"), [("ps", "garbage"), ("inspect", "garbage")])
def test_garbage_is_observation_invalid(lab, command_log, tmp_path, command, mode):
    with fault(command, mode):
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"))
    assert_all_error(run, "OBSERVATION_INVALID")


def test_daemon_down_is_docker_unavailable(lab, command_log, tmp_path):
    with fault("all", "daemon-down"):
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"))
    assert_all_error(run, "DOCKER_UNAVAILABLE")
    assert "Cannot connect to the Docker daemon at unix://" in run.plan["errors"][0]["message"]
    assert len(logged_commands()) == 1


def test_connection_dropped_once_is_reconnected_once(lab, command_log, tmp_path):
    logins = sshd_log_count(LOGIN)
    with fault("inspect", "drop-once") as path:
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"))
        assert not path.exists(), "the fault did not fire"
    assert run.rc == 0, run.output
    assert sshd_log_count(LOGIN) - logins == 2
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "inspect", "image"]
    assert [c.split()[1] for c in run.plan["hosts"][0]["commands"]] == ["ps", "inspect", "inspect", "image"]


def test_connection_dropped_again_is_host_unreachable(lab, command_log, tmp_path):
    logins = sshd_log_count(LOGIN)
    with fault("image", "drop"):
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml"))
    assert run.rc == 2, run.output
    assert sshd_log_count(LOGIN) - logins == 2
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image", "image"]
    assert module_codes(run) == {"HOST_UNREACHABLE"}
    assert "lost again after one reconnect" in run.plan["errors"][0]["message"]
    assert_errors_actionable(run.plan)


# -- ProxyJump through a bastion, Include and Match in the user's ssh config ------------------------


@pytest.fixture(scope="module")
def hidden(lab):
    """(bastion port, hidden host port): a host only the bastion reaches (labctl.start_hidden)."""
    yield labctl.start_hidden()
    labctl.stop_hidden()


def hidden_setup(tmp_path: Path, ports: tuple[int, int], known: tuple[int, ...] | None = None) -> Path:
    """An inventory reaching rs2000 as `hidden`, an alias of the user's ssh config that jumps through
    `bastion`, an alias from an Included file; known_hosts holds the keys of the ports in known."""
    bastion, target = ports
    key = labctl.SSH / "client_ed25519"
    key_type, key_b64 = (labctl.SSH / "host_ed25519.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(f"[127.0.0.1]:{p} {key_type} {key_b64}\n" for p in (known or ports)))
    (tmp_path / "bastion.conf").write_text(f"Host bastion\n  HostName 127.0.0.1\n  Port {bastion}\n"
                                           f"  User driftlab\n  IdentityFile {key}\n")
    user_config = tmp_path / "ssh_config"
    user_config.write_text(f"Include {tmp_path / 'bastion.conf'}\n"
                           f"Match originalhost hidden\n  HostName 127.0.0.1\n  Port {target}\n"
                           "  ProxyJump bastion\n  StrictHostKeyChecking no\n")
    return write_ssh_inventory(tmp_path / "hosts.yaml", connection="ssh://driftlab@hidden", identity_file=str(key),
                               known_hosts=str(known_hosts), ssh_config=str(user_config))


def bastion_forwards() -> int:
    log = labctl.RUN / "sshd-bastion.log"
    return log.read_text().count("server_request_direct_tcpip") if log.exists() else 0


def test_proxyjump_through_the_bastion(hidden, command_log, tmp_path):
    labctl.HIDDEN_COMMAND_LOG.write_text("")
    logins, forwards = sshd_log_count(LOGIN), bastion_forwards()
    run = run_suite(tmp_path, inventory=hidden_setup(tmp_path, hidden))
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    hidden_commands = [line.split("\x1f")[0] for line in labctl.HIDDEN_COMMAND_LOG.read_text().splitlines()]
    assert hidden_commands == ["ps", "inspect", "image"]
    assert logged_commands() == [] and sshd_log_count(LOGIN) == logins  # never the lab's own sshd
    assert bastion_forwards() - forwards == 1  # one connection, through the bastion
    hidden_log = (labctl.RUN / "sshd-hidden.log").read_text()
    assert hidden_log.count(LOGIN) >= 1


def test_the_hidden_host_is_not_reachable_directly(hidden, command_log, tmp_path):
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml",
                                                            connection=ssh_connection(port=hidden[1])))
    assert_all_error(run, "HOST_UNREACHABLE")


def test_the_bastion_hop_checks_its_host_key_against_hosts_yaml(hidden, command_log, tmp_path):
    # known_hosts knows the target but not the bastion: the hop is refused, strictly, whatever the config says.
    inventory = hidden_setup(tmp_path, hidden, known=(hidden[1],))
    (tmp_path / "bastion.conf").write_text((tmp_path / "bastion.conf").read_text()
                                           + "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    labctl.HIDDEN_COMMAND_LOG.write_text("")
    run = run_suite(tmp_path, inventory=inventory)
    assert_all_error(run, "HOST_KEY_UNKNOWN")
    assert f"No ED25519 host key is known for [127.0.0.1]:{hidden[0]}" in run.plan["errors"][0]["message"]
    assert labctl.HIDDEN_COMMAND_LOG.read_text() == ""
