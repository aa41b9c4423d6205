"""paramiko:// against the lab's real OpenSSH sshd, with the setups operators really have.

User certificates (signed by the CA the lab's sshd trusts through TrustedUserCAKeys) as an
identity file and in ssh-agent, known_hosts with `@cert-authority` and `@revoked` lines, an
ssh config paramiko cannot honour, an encrypted key without an agent. Each works, or is exit 2
with one code and one line, and nothing is sent to the host before its key is verified.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.lab import (
    EXAMPLE_MODULES,
    SuiteRun,
    assert_errors_actionable,
    labctl,
    logged_commands,
    make,
    none_auth_server,
    run_suite,
    ssh_agent,
    write_inventory,
)
from tests.unit.test_paramiko_setups import relay_config

#: These tests choose their own transport: they run in the paramiko pass of tests/lab only.
pytestmark = pytest.mark.pins_transport


def user_certificate(folder: Path, name: str) -> Path:
    """A new key (not in authorized_keys) and its certificate for the lab user, signed by the lab's CA."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(labctl.SSH / "user_ca"), "-I", name, "-n", labctl.LAB_USER,
                    "-V", "-5m:+1h", f"{key}.pub"], check=True, capture_output=True)
    assert Path(f"{key}-cert.pub").exists()
    return key


def lab_known_hosts() -> str:
    return (labctl.SSH / "known_hosts").read_text()


def host_key() -> tuple[str, str]:
    key_type, key = (labctl.SSH / "host_ed25519.pub").read_text().split()[:2]
    return key_type, key


def assert_one_error(run: SuiteRun, code: str) -> str:
    """exit 2, every module this code, one line each; nothing ran on the host. The message."""
    assert run.rc == 2, run.output
    assert run.plan is not None
    assert {m["error"]["code"] for m in run.plan["modules"]} == {code}, run.plan["errors"]
    assert_errors_actionable(run.plan)
    assert "Traceback" not in run.output
    assert logged_commands() == []
    return str(run.plan["modules"][0]["error"]["message"])


def assert_connected(run: SuiteRun) -> None:
    """Logged in and observed every module (drift or not: only the connection is under test here)."""
    assert run.rc in (0, 1) and run.plan is not None and run.plan["errors"] == [], run.output
    assert logged_commands()


def test_a_user_certificate_as_identity_file_logs_in(lab, command_log, tmp_path):
    key = user_certificate(tmp_path, "id_cert")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", identity_file=str(key)),
                    env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
    assert_connected(run)


def test_a_certificate_in_ssh_agent_is_skipped_and_the_agents_other_key_logs_in(lab, command_log, tmp_path):
    key = user_certificate(tmp_path, "id_cert")
    with ssh_agent(tmp_path, key, labctl.SSH / "client_ed25519") as sock:
        listed = subprocess.run(["ssh-add", "-L"], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True,
                                capture_output=True, text=True).stdout
        assert "-cert-v01@openssh.com" in listed
        run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", identity_file=None),
                        env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": sock})
    assert_connected(run)
    assert "Traceback" not in run.output and "public_blob" not in run.output


def test_an_agent_holding_only_a_certificate_is_one_clear_auth_failure(lab, command_log, tmp_path):
    key = user_certificate(tmp_path, "id_cert")
    with ssh_agent(tmp_path, key) as sock:
        run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", identity_file=None),
                        env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": sock})
    message = assert_one_error(run, "AUTH_FAILED")
    assert "cert-v01@openssh.com keys were skipped" in message and "ssh://" in message


def test_an_unrelated_cert_authority_line_is_skipped(lab, command_log, tmp_path):
    ca_type, ca_key = (labctl.SSH / "user_ca.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority *.example.com {ca_type} {ca_key}\n" + lab_known_hosts())
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(known)))
    assert_connected(run)


def test_a_cert_authority_line_for_the_host_says_to_use_ssh(lab, command_log, tmp_path):
    ca_type, ca_key = (labctl.SSH / "user_ca.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority [127.0.0.1]:* {ca_type} {ca_key}\n")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(known)))
    message = assert_one_error(run, "HOST_KEY_UNKNOWN")
    assert "paramiko cannot verify host certificates; use connection: ssh://" in message


def test_a_revoked_host_key_is_a_mismatch_naming_its_line(lab, command_log, tmp_path):
    key_type, key = host_key()
    known = tmp_path / "known_hosts"
    known.write_text(lab_known_hosts() + f"@revoked * {key_type} {key}\n")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(known)))
    message = assert_one_error(run, "HOST_KEY_MISMATCH")
    assert f"@revoked in {known}:{len(lab_known_hosts().splitlines()) + 1}" in message


def test_an_unknown_host_key_prints_its_fingerprint_and_the_files_read(lab, command_log, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(known)))
    message = assert_one_error(run, "HOST_KEY_UNKNOWN")
    printed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(labctl.SSH / "host_ed25519.pub")],
                             check=True, capture_output=True, text=True).stdout.split()[1]
    assert printed in message and "ssh-ed25519" in message and str(known) in message


def test_an_ssh_config_paramiko_cannot_honour_is_refused_before_connecting(lab, command_log, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host 127.0.0.1\n  ProxyJump bastion.invalid\n")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", ssh_config=str(config)))
    assert run.rc == 2, run.output
    assert run.plan is not None
    errors = run.plan["errors"]
    assert [(e["code"], e["key"]) for e in errors] == [("INVENTORY_INVALID", "hosts.rs2000.ssh_config")], errors
    assert "ProxyJump" in errors[0]["message"] and "ssh://" in errors[0]["message"]
    assert logged_commands() == []
    validated = make("validate", f"INVENTORY={tmp_path / 'hosts.yaml'}", f"MODULES_DIR={EXAMPLE_MODULES}")
    assert validated.returncode == 2 and "ProxyJump" in validated.stdout + validated.stderr


def test_an_encrypted_identity_file_without_an_agent_says_to_add_it(lab, command_log, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(key)], check=True)
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", identity_file=str(key)),
                    env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
    message = assert_one_error(run, "AUTH_FAILED")
    assert f"ssh-add {key}" in message and "refused" not in message


def test_a_server_that_accepts_none_is_reached_with_no_key(lab, command_log, tmp_path):
    known = tmp_path / "known_hosts"
    with none_auth_server(known) as port:
        inventory = write_inventory(tmp_path / "hosts.yaml", connection=f"paramiko://{labctl.LAB_USER}@127.0.0.1:{port}",
                                    identity_file=None, known_hosts=str(known))
        run = run_suite(tmp_path, inventory=inventory, env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
    assert_connected(run)
    assert [argv[0] for argv in logged_commands()] == ["ps", "inspect", "image"]


def test_a_proxy_command_reaches_the_lab_and_a_failing_one_is_quoted(lab, command_log, tmp_path):
    relay_config(tmp_path)
    run = run_suite(tmp_path / "relay", inventory=write_inventory(tmp_path / "hosts.yaml",
                                                                  ssh_config=str(tmp_path / "ssh_config")))
    assert_connected(run)
    command_log.write_text("")
    failing = tmp_path / "failing_config"
    failing.write_text("Host *\n  ProxyCommand sh -c "
                       "'echo \"ssh: Could not resolve hostname bastion\" >&2; exit 255'\n")
    run = run_suite(tmp_path / "failing", inventory=write_inventory(tmp_path / "hosts.yaml", ssh_config=str(failing)))
    message = assert_one_error(run, "HOST_UNREACHABLE")
    assert "Could not resolve hostname bastion" in message and run.seconds < 8
