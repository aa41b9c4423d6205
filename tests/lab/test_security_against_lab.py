"""SPEC §7 against the real lab: read-only, no secrets in any output, hostile manifests, host keys, agent."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import labctl

from driftcheck.allowlist import check_argv
from tests.support.hostile import CORPUS, place
from tests.support.lab import (
    DRIFT_MODULES,
    INVENTORY,
    logged_commands,
    run_suite,
    ssh_agent,
    sshd_log_count,
    write_inventory,
    wrong_known_hosts,
)


def test_full_runs_send_only_allowlisted_commands_and_change_nothing(drift_lab, command_log, tmp_path):
    since = f"{time.time():.3f}"  # after the drift-lab deployment (its events are not the suite's)
    assert run_suite(tmp_path / "a").rc == 0
    assert run_suite(tmp_path / "b", modules=DRIFT_MODULES).rc == 1
    assert run_suite(tmp_path / "c", "-k", "honcho-redis").rc == 0
    sent = logged_commands()
    assert len(sent) == 9  # three runs, three commands each
    for argv in sent:
        check_argv(["docker", *argv])
    until = f"{time.time():.3f}"
    events = labctl.docker("events", "--since", since, "--until", until, "--filter", "type=container",
                           "--format", "{{.Action}}\t{{.Actor.Attributes.name}}").stdout.split("\n")
    # What the engine does by itself: healthchecks (exec_* and health_status) and the restart loop.
    own = [e for e in events if e.strip() and not e.startswith(("exec_", "health_status"))
           and not e.endswith("\tdrift-lab-restart-loop-1")]
    assert own == []


def test_no_secret_in_any_output_of_a_loud_run(drift_lab, tmp_path):
    secret = labctl.lab_secret()
    # The lab really holds the secret in its containers' env (else this test could not fail).
    env_dump = labctl.docker("inspect", "--type", "container", "drift-lab-in-sync-1").stdout
    assert secret in env_dump
    run = run_suite(tmp_path, "-vv", "-l", "--tb=long", "-rA", "--log-level=DEBUG", "--log-cli-level=DEBUG",
                    "-o", "log_cli=true", modules=DRIFT_MODULES)
    assert run.rc == 1, run.output
    assert secret not in run.output
    for artifact in sorted(run.run_dir.iterdir()):
        assert secret not in artifact.read_text(), artifact.name
    assert "APP_TOKEN" not in (run.run_dir / "report.json").read_text()


def test_hostile_manifests_are_refused_before_any_connection(lab, command_log, tmp_path):
    modules = tmp_path / "modules"
    for case in CORPUS:
        place(case, modules)
    connections = sshd_log_count("Connection from")
    run = run_suite(tmp_path, modules=modules)
    assert run.rc == 2, run.output
    assert run.plan["modules"] == []
    files = sorted(Path(e["file"]).parent.name for e in run.plan["errors"])
    assert files == sorted(case.stem for case in CORPUS)
    assert all(e["code"] == "MANIFEST_INVALID" for e in run.plan["errors"])
    assert logged_commands() == []
    assert sshd_log_count("Connection from") == connections


def test_hostile_connections_are_inventory_errors(lab, command_log, tmp_path):
    for index, connection in enumerate(["paramiko://driftlab@127.0.0.1:22;id", "paramiko://-oProxyCommand=id@x",
                                        "paramiko://driftlab@127.0.0.1/$(id)", "telnet://127.0.0.1",
                                        "ssh://-oProxyCommand=id", "ssh://driftlab@127.0.0.1:22;id"]):
        inventory = write_inventory(tmp_path / f"hosts{index}.yaml", connection=connection)
        run = run_suite(tmp_path / str(index), inventory=inventory)
        assert run.rc == 2, run.output
        assert [(e["code"], e["key"]) for e in run.plan["errors"]] == [("INVENTORY_INVALID", "hosts.rs2000.connection")]
    assert logged_commands() == []


def test_accept_new_records_a_first_seen_key_and_never_replaces_one(lab, command_log, tmp_path):
    known = tmp_path / "known_hosts"
    inventory = write_inventory(tmp_path / "hosts.yaml", known_hosts=str(known), host_key_policy="accept-new")
    first = run_suite(tmp_path / "first", inventory=inventory)
    assert first.rc == 0, first.output
    host_key = (labctl.SSH / "host_ed25519.pub").read_text().split()[1]
    assert host_key in known.read_text()
    before = wrong_known_hosts(known).read_text()
    command_log.write_text("")
    changed = run_suite(tmp_path / "changed", inventory=inventory)
    assert changed.rc == 2
    assert {m["error"]["code"] for m in changed.plan["modules"]} == {"HOST_KEY_MISMATCH"}
    assert known.read_text() == before and logged_commands() == []


def test_passphrase_key_works_through_ssh_agent(lab, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(key)], check=True)
    authorized = labctl.SSH / "authorized_keys"
    original = authorized.read_text()
    authorized.write_text(original + (tmp_path / "id_ed25519.pub").read_text())
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 'correct horse'\n")
    askpass.chmod(0o700)
    askpass_env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    try:
        with ssh_agent(tmp_path, key, env=askpass_env) as sock:
            assert "identity_file" in INVENTORY.read_text()
            inventory = write_inventory(tmp_path / "hosts.yaml", identity_file=None)
            without_agent = run_suite(tmp_path / "no-agent", inventory=inventory,
                                      env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": ""})
            assert without_agent.rc == 2
            assert {m["error"]["code"] for m in without_agent.plan["modules"]} == {"AUTH_FAILED"}
            with_agent = run_suite(tmp_path / "agent", inventory=inventory,
                                   env={"HOME": str(tmp_path), "SSH_AUTH_SOCK": sock})
            assert with_agent.rc == 0, with_agent.output
            assert "correct horse" not in with_agent.output
    finally:
        authorized.write_text(original)
