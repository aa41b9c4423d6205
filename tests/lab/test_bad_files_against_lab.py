"""Files the inventory names that cannot be used: one clear error, never a traceback, never a retry per check.

Against the lab, on both transports: a key file that is not a key, known_hosts and ssh configs that
are not bounded text files, a ProxyCommand whose program is missing, a Port that is not a number.
A problem the loader can see is one INVENTORY_INVALID naming the file and the key, before any
connection; one only a connection shows is one error per module of the host (the same one, found
once and cached), with at most one connection to the host's sshd.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.lab import (
    assert_errors_actionable,
    labctl,
    logged_commands,
    run_suite,
    ssh_connection,
    sshd_log_count,
    write_inventory,
)


def connection(scheme: str) -> str:
    port = int((labctl.RUN / "sshd.port").read_text())
    return ssh_connection() if scheme == "ssh" else f"paramiko://{labctl.LAB_USER}@127.0.0.1:{port}"


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    path.chmod(0o600)
    return str(path)


def setting(tmp_path: Path, case: str) -> dict[str, str]:
    """The hosts.yaml setting that makes the case (files under tmp_path)."""
    if case == "key-not-a-key":
        return {"identity_file": write(tmp_path / "id", b"not a key\n")}
    if case == "key-public":
        return {"identity_file": write(tmp_path / "id.pub", (labctl.SSH / "client_ed25519.pub").read_bytes())}
    if case == "key-broken":
        return {"identity_file": write(tmp_path / "id", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                       b"-----END OPENSSH PRIVATE KEY-----\n")}
    if case == "known-hosts-dev-zero":
        (tmp_path / "kh").symlink_to("/dev/zero")
        return {"known_hosts": str(tmp_path / "kh")}
    if case == "known-hosts-not-utf8":
        return {"known_hosts": write(tmp_path / "kh", (labctl.SSH / "known_hosts").read_bytes() + b"# \xff\n")}
    if case == "ssh-config-port":
        return {"ssh_config": write(tmp_path / "cfg", b"Host *\n  Port abc\n")}
    if case == "ssh-config-proxy-missing":
        return {"ssh_config": write(tmp_path / "cfg", b"Host *\n  ProxyCommand /nonexistent/proxy %h %p\n")}
    raise AssertionError(case)


#: case -> scheme -> (code, at load, words the message holds ({file} is the file's path))
CASES = {
    "key-not-a-key": {"paramiko": ("INVENTORY_INVALID", True, "{file} is not a private key"),
                      "ssh": ("INVENTORY_INVALID", True, "{file} is not a private key")},
    "key-public": {"paramiko": ("INVENTORY_INVALID", True, "{file} is a public key; paramiko:// needs"),
                   # ssh would use the agent's private half of a named public key; the lab runs no agent
                   "ssh": ("AUTH_FAILED", False, 'Load key "{file}"')},
    "key-broken": {"paramiko": ("AUTH_FAILED", False, "the key file {file} cannot be used to log in"),
                   "ssh": ("AUTH_FAILED", False, 'Load key "{file}"')},
    "known-hosts-dev-zero": {"paramiko": ("INVENTORY_INVALID", True, "{file} is not an existing file"),
                             "ssh": ("INVENTORY_INVALID", True, "{file} is not an existing file")},
    "known-hosts-not-utf8": {"paramiko": ("INVENTORY_INVALID", True, "{file} is not UTF-8 text (line {last}"),
                             "ssh": ("INVENTORY_INVALID", True, "{file} is not UTF-8 text (line {last}")},
    "ssh-config-port": {"paramiko": ("INVENTORY_INVALID", True, "{file} line 2: Port 'abc' is not a port number"),
                        "ssh": ("HOST_UNREACHABLE", False, "{file} line 2: Bad port 'abc'")},
    "ssh-config-proxy-missing": {
        "paramiko": ("HOST_UNREACHABLE", False, "ProxyCommand for 127.0.0.1:{port} cannot start (No such file or "
                     "directory: /nonexistent/proxy); fix ProxyCommand in {file}"),
        # ssh runs ProxyCommand with the user's $SHELL, whose words for a missing program vary (bash, dash)
        "ssh": ("HOST_UNREACHABLE", False, ("/nonexistent/proxy", "; a ProxyCommand of the ssh config could not run"))},
}


@pytest.mark.parametrize("scheme", ["paramiko", "ssh"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_is_one_clear_error(lab, command_log, tmp_path, scheme, case):
    code, at_load, words = CASES[case][scheme]
    over = setting(tmp_path, case)
    [file] = over.values()
    inventory = write_inventory(tmp_path / "hosts.yaml", connection=connection(scheme), **over)
    connections = sshd_log_count("Connection from")
    run = run_suite(tmp_path, inventory=inventory)
    assert run.rc == 2, run.output
    assert "Traceback" not in run.output and "CHECK_FAILED" not in run.output, run.output
    last = Path(file).read_bytes().count(b"\n") if Path(file).is_file() else 0  # the line a bad byte ends
    port = (labctl.RUN / "sshd.port").read_text().strip()
    parts = (words,) if isinstance(words, str) else words
    expected = [part.format(file=file, port=port, last=last) for part in parts]
    if at_load:
        [error] = run.plan["errors"]
        key = f"hosts.rs2000.{next(iter(over))}"
        assert (error["code"], error["file"], error["key"]) == (code, str(inventory), key)
        assert all(part in error["message"] for part in expected), error
        assert run.plan["modules"] == []
    else:
        assert {m["error"]["code"] for m in run.plan["modules"]} == {code}
        messages = {m["error"]["message"] for m in run.plan["modules"]}
        assert len(messages) == 1 and all(part in next(iter(messages)) for part in expected), run.plan["errors"]
        assert len(run.plan["errors"]) == len(run.plan["modules"])  # one per module, found once
    assert_errors_actionable(run.plan)
    assert sshd_log_count("Connection from") - connections <= 1  # never a new attempt per check
    assert logged_commands() == []
