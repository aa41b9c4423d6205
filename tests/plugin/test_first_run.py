"""A first user's runs (issue 17): listing the checks needs no credentials, and an empty modules folder
says what to do instead of failing obscurely."""

from __future__ import annotations

import json

import yaml

from .harness import HOST


def missing_files(tmp_path):
    """An inventory entry naming a key and a known_hosts this machine does not have (as in a fresh clone)."""
    return {"connection": "paramiko://deploy@192.0.2.10:22", "identity_file": str(tmp_path / "no-ssh" / "id_ed25519"),
            "known_hosts": str(tmp_path / "no-ssh" / "known_hosts"), "timeout": 2}


def missing_files_inventory(lab, tmp_path):
    lab.inventory.write_text(yaml.safe_dump({"hosts": {HOST: missing_files(tmp_path)}}))


def test_collect_only_lists_the_checks_without_the_inventorys_files(lab, tmp_path):
    missing_files_inventory(lab, tmp_path)
    lab.module("in-sync")
    listed = lab.run("--collect-only", "-q")
    assert listed.rc == 0, listed.output
    assert "checks/test_container.py::test_exists[in-sync]" in listed.stdout, listed.output
    assert "expected an existing file" not in listed.output and "INVENTORY_INVALID" not in listed.output
    assert listed.run_dir is None and lab.commands_logged() == []
    # a run that connects still refuses the missing key before contacting anything, naming the key
    run = lab.run()
    assert run.rc == 2 and run.error_codes() == ["INVENTORY_INVALID"], run.output
    assert f"hosts.{HOST}.identity_file" in run.stdout and "expected an existing file" in run.stdout
    # make validate (-m manifest) shows both missing files as warnings and stays valid
    validated = lab.run("-m", "manifest")
    assert validated.rc == 0, validated.output
    assert validated.stdout.count("WARNING  hosts.yaml: key") == 2, validated.output


def test_a_run_checks_the_files_of_the_hosts_its_modules_name_only(lab, tmp_path):
    """A run connects only to the hosts its modules name; another entry's missing key stops nothing."""
    lab.inventory.write_text(yaml.safe_dump({"hosts": {HOST: {"connection": "local://", "timeout": 20},
                                                       "spare": missing_files(tmp_path)}}))
    lab.module("in-sync")
    lab.serve("in-sync")
    run = lab.run()
    assert run.rc == 0 and run.statuses() == {"in-sync": "in_sync"}, run.output
    lab.module("elsewhere", host="spare")
    run = lab.run()
    assert run.rc == 2 and run.error_codes() == ["INVENTORY_INVALID"], run.output
    assert run.plan["errors"][0]["key"] == "hosts.spare.identity_file" and run.commands == []


def test_an_empty_modules_folder_says_how_to_start(lab, tmp_path):
    (lab.modules_dir / "README.md").write_text("Your modules go here.\n")  # as in a fresh clone: no module,
    missing_files_inventory(lab, tmp_path)                                # no key, no known_hosts
    run = lab.run("--drift-format=json")  # no run folder (nothing was checked): the plan on stdout
    assert run.rc == 2 and run.run_dir is None, run.output
    plan = json.loads(run.stdout)
    assert [e["code"] for e in plan["errors"]] == ["NO_MODULES_SELECTED"], run.output
    message = plan["errors"][0]["message"]
    assert "no module is declared in" in message and "make import HOST=<name>" in message, message
    assert "Traceback" not in run.output
    validated = lab.run("-m", "manifest")
    assert validated.rc == 2 and "Traceback" not in validated.output
    assert "no module in modules yet" in validated.stdout and "make import HOST=<name>" in validated.stdout, \
        validated.output
    # a selection that matches nothing in a non-empty folder keeps its own words
    lab.inventory.write_text(yaml.safe_dump({"hosts": {HOST: {"connection": "local://", "timeout": 20}}}))
    lab.module("in-sync")
    unmatched = lab.run("-k", "nothing-like-this", "--drift-format=json")
    assert unmatched.rc == 2
    assert "no module matched the selection" in json.loads(unmatched.stdout)["errors"][0]["message"]
