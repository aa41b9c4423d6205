"""ssh:// (the system OpenSSH client) against the lab's real sshd: the same results, commands and codes as
paramiko://, over one connection per host and run, with host keys from hosts.yaml only."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import labctl
import pytest

from tests.lab.test_faults_against_lab import LOGIN, assert_all_error, module_codes
from tests.lab.test_paramiko_setups_against_lab import assert_one_error, user_certificate
from tests.support.lab import (
    DRIFT_MODULES,
    assert_errors_actionable,
    fault,
    logged_commands,
    make,
    none_auth_server,
    openssh_leftovers,
    run_suite,
    ssh_agent,
    ssh_connection,
    sshd_log_count,
    write_inventory,
    write_ssh_inventory,
    wrong_known_hosts,
)

#: These tests choose their own transport: they run in the paramiko pass of tests/lab only.
pytestmark = pytest.mark.pins_transport


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
    # restart-loop may be caught in its instant of running by either run (test_suite_against_lab)
    assert {**run.codes(), "restart-loop": ["RESTART_LOOP"]} == {**drift_lab_run.codes(),
                                                                  "restart-loop": ["RESTART_LOOP"]}
    assert "RESTART_LOOP" in run.codes()["restart-loop"]
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


# -- local commands of ssh (ProxyCommand, Match exec): bounded, killed with ssh's process group -------


def marker_processes(marker: str) -> list[str]:
    """Processes whose command line holds marker (the `sleep <marker>` a ProxyCommand or Match exec started)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if marker.encode() in argv:
            found.append(f"{entry.name}: {b' '.join(argv).decode(errors='replace')}")
    return found


def fresh_marker() -> str:
    """A sleep duration no other process on this machine uses, to find what a test started."""
    return f"{3000 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"


@pytest.mark.parametrize("local_command", ["ProxyCommand", "Match exec"])
def test_a_local_command_of_ssh_that_hangs_is_cut_at_the_timeout_and_leaves_nothing(lab, command_log, tmp_path,
                                                                                   local_command):
    marker = fresh_marker()
    user_config = tmp_path / "ssh_config"
    user_config.write_text(f"Host *\n  ProxyCommand sh -c 'trap \"\" HUP TERM; sleep {marker}'\n"
                           if local_command == "ProxyCommand" else
                           f"Match exec \"trap '' HUP TERM; sleep {marker}\"\n  User driftlab\n")
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", ssh_config=str(user_config),
                                                            timeout=2))
    assert_all_error(run, "HOST_UNREACHABLE")
    assert run.plan["hosts"][0]["seconds"] <= 2 + 1.5
    assert marker_processes(marker) == []
    assert logged_commands() == []


def test_a_proxycommand_child_that_ignores_the_hangup_ends_with_the_run(lab, command_log, tmp_path):
    """ssh -O exit ends the master, which sends its ProxyCommand a SIGHUP; what ignores it dies with the group."""
    marker = fresh_marker()
    user_config = tmp_path / "ssh_config"
    user_config.write_text(f"Host *\n  ProxyCommand sh -c '(trap \"\" HUP TERM; exec sleep {marker} </dev/null "
                           ">/dev/null 2>&1) & exec busybox nc %h %p'\n")
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", ssh_config=str(user_config)))
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    assert marker_processes(marker) == []


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


# -- certificates: a user certificate the lab's sshd trusts, a host certificate, a none-auth server ------


def test_a_user_certificate_in_ssh_agent_logs_in(lab, command_log, tmp_path):
    key = user_certificate(tmp_path, "id_agent_cert")  # not in authorized_keys: only the certificate opens
    logins = sshd_log_count("ID id_agent_cert ")
    with ssh_agent(tmp_path, key) as sock:
        listed = subprocess.run(["ssh-add", "-L"], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True,
                                capture_output=True, text=True).stdout
        assert "-cert-v01@openssh.com" in listed
        run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", identity_file=None),
                        env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": sock})
    assert run.rc == 0, run.output
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]
    assert sshd_log_count("ID id_agent_cert ") - logins == 1  # one login, with the certificate


def test_a_user_certificate_as_identity_file_logs_in(lab, command_log, tmp_path):
    key = user_certificate(tmp_path, "id_file_cert")  # ssh picks up id_file_cert-cert.pub beside it
    logins = sshd_log_count("ID id_file_cert ")
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", identity_file=str(key)),
                    env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
    assert run.rc == 0, run.output
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]
    assert sshd_log_count("ID id_file_cert ") - logins == 1


@pytest.fixture(scope="module")
def host_cert_sshd(lab, tmp_path_factory):
    """(port, known_hosts): a lab sshd instance presenting the lab's host key certified by a host CA of
    our own; known_hosts holds only `@cert-authority [127.0.0.1]:<port> <CA>`. Stopped by its pid."""
    folder = tmp_path_factory.mktemp("hostcert")
    ca = folder / "host_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "driftlab-host-ca", "-f", str(ca)], check=True)
    host_pub = folder / "host_ed25519.pub"
    shutil.copy(labctl.SSH / "host_ed25519.pub", host_pub)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "driftlab-host", "-n", "127.0.0.1",
                    "-V", "-5m:+1h", str(host_pub)], check=True, capture_output=True)
    cert = folder / "host_ed25519-cert.pub"
    assert cert.exists()
    port = labctl.start_sshd("sshd-hostcert", labctl.COMMAND_LOG, extra=f"HostCertificate {cert}\n")
    ca_type, ca_key = Path(f"{ca}.pub").read_text().split()[:2]
    known = folder / "known_hosts"
    known.write_text(f"@cert-authority [127.0.0.1]:{port} {ca_type} {ca_key}\n")
    try:
        yield port, known
    finally:
        labctl.stop_pid(labctl.RUN / "sshd-hostcert.pid", "sshd-hostcert")
        (labctl.RUN / "sshd-hostcert.port").unlink(missing_ok=True)


def test_a_host_certificate_is_verified_through_cert_authority(host_cert_sshd, command_log, tmp_path):
    port, known = host_cert_sshd
    run = run_suite(tmp_path, inventory=write_ssh_inventory(tmp_path / "hosts.yaml", known_hosts=str(known),
                                                            connection=ssh_connection(port=port)))
    assert run.rc == 0, run.output
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]
    assert "@cert-authority" in known.read_text() and len(known.read_text().splitlines()) == 1  # nothing learned


def test_paramiko_says_to_use_ssh_for_the_same_host_certificate(host_cert_sshd, command_log, tmp_path):
    port, known = host_cert_sshd
    log = labctl.RUN / "sshd-hostcert.log"
    logins = log.read_text().count(LOGIN)
    run = run_suite(tmp_path, inventory=write_inventory(
        tmp_path / "hosts.yaml", known_hosts=str(known), connection=f"paramiko://{labctl.LAB_USER}@127.0.0.1:{port}"))
    message = assert_one_error(run, "HOST_KEY_UNKNOWN")
    assert "paramiko cannot verify host certificates" in message and "ssh://" in message
    assert log.read_text().count(LOGIN) == logins  # refused before any login


def test_a_server_that_accepts_none_is_reached_over_ssh_with_no_key(lab, command_log, tmp_path):
    known = tmp_path / "known_hosts"
    with none_auth_server(known) as port:
        inventory = write_ssh_inventory(tmp_path / "hosts.yaml", connection=ssh_connection(port=port),
                                        identity_file=None, known_hosts=str(known))
        run = run_suite(tmp_path, inventory=inventory, env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
    assert run.rc == 0, run.output
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]
