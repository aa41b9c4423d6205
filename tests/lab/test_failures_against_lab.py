"""Failures against the real lab: each is exit 2 and a module error, never in sync."""

from __future__ import annotations

import socket

import labctl

from conftest import logged_commands, run_suite, write_inventory, wrong_known_hosts


def test_sshd_unreachable(lab, command_log, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=f"paramiko://driftlab@127.0.0.1:{port}")
    run = run_suite(tmp_path, inventory=inventory)
    assert run.rc == 2, run.output
    assert set(run.statuses().values()) == {"error"}
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"HOST_UNREACHABLE"}
    assert run.plan["summary"]["in_sync"] == 0
    assert len([e for e in run.plan["errors"] if e["code"] == "HOST_UNREACHABLE"]) == len(run.plan["modules"])
    assert "ERROR checks/test_container.py::test_exists[honcho-redis]" in run.output
    assert logged_commands() == []


def test_unknown_host_key_sends_nothing(lab, command_log, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(empty)))
    assert run.rc == 2, run.output
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"HOST_KEY_UNKNOWN"}
    assert logged_commands() == []
    assert empty.read_text() == ""


def test_changed_host_key_is_rejected(lab, command_log, tmp_path):
    wrong = wrong_known_hosts(tmp_path / "known_hosts")
    run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", known_hosts=str(wrong)))
    assert run.rc == 2, run.output
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"HOST_KEY_MISMATCH"}
    assert logged_commands() == []


def test_docker_that_hangs_is_a_timeout(lab, command_log, tmp_path):
    hang = labctl.FAULTS / "hang"
    hang.write_text("")
    try:
        run = run_suite(tmp_path, inventory=write_inventory(tmp_path / "hosts.yaml", timeout=2))
    finally:
        hang.unlink()
    assert run.rc == 2, run.output
    assert {m["error"]["code"] for m in run.plan["modules"]} == {"TIMEOUT"}
    # One command hung for the host's 2 s; the run did not wait for the others (start-up included).
    assert run.seconds < 2 + 10, run.seconds
    assert len(logged_commands()) == 1


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
