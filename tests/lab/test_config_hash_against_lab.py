"""Compose config drift: the repo's compose file against the config-hash label Compose left on the host."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import labctl
import pytest

from driftcheck import composehash
from tests.support.lab import logged_commands, run_suite

SERVICE = """  {name}:
    image: lab/app:1
    init: true
    stop_grace_period: 1s
    command: [/bin/sleep, '2147483647']
    volumes: ['./conf:/etc/conf:ro']
    environment:
      MODE: ${{MODE}}
"""
#: a service on another service's network: `up -d` leaves it alone, though `config --hash` differs
SHARED = """  hash-shared:
    image: lab/app:1
    init: true
    stop_grace_period: 1s
    command: [/bin/sleep, '2147483647']
    network_mode: 'service:hash-same'
"""


def compose_text(**modes: str) -> str:
    """The services named, each with a relative bind (resolved where Compose ran) and its EXTRA value."""
    return "services:\n" + "".join(SERVICE.format(name=name) + f"      EXTRA: {extra}\n"
                                   for name, extra in modes.items())


@pytest.fixture(scope="module")
def hash_lab(lab: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Project hash-lab deployed from one compose file; the repo's modules each carry their own copy."""
    root = tmp_path_factory.mktemp("hash-lab")
    deployed = root / "deployed"
    deployed.mkdir()
    (deployed / ".env").write_text("MODE=blue\n")  # what the host interpolated
    (deployed / "compose.yaml").write_text(compose_text(**{"hash-same": "a", "hash-changed": "a"}) + SHARED)
    labctl.compose("up", "--detach", project="hash-lab", file=deployed / "compose.yaml")
    # A container an older Compose created: its hash is not comparable with this machine's.
    labctl.docker("run", "--detach", "--init", "--network", "none", "--name", "hash-lab-hash-old-1",
                  "--label", "com.docker.compose.project=hash-lab", "--label", "com.docker.compose.service=hash-old",
                  "--label", "com.docker.compose.version=2.20.0",
                  "--label", "com.docker.compose.config-hash=" + "0" * 64, "lab/app:1", "/bin/sleep", "2147483647")
    modules = root / "modules"
    repo = {"hash-same": "a", "hash-changed": "b", "hash-old": "a", "hash-shared": "a"}  # hash-changed: EXTRA
    for name, extra in repo.items():
        folder = modules / name
        folder.mkdir(parents=True)
        (folder / ".env").write_text("MODE=blue\n")
        ours = {} if name == "hash-shared" else {name: extra}
        text = compose_text(**{"hash-same": "a", "hash-changed": "a", **ours}) + SHARED
        (folder / "compose.yaml").write_text(text if name != "hash-old" else compose_text(**{name: extra}))
        (folder / "module.yaml").write_text(
            f"schema_version: 2\nname: {name}\nhost: rs2000\ncompose:\n  project: hash-lab\n  service: {name}\n"
            "  file: compose.yaml\nimage:\n  ref: lab/app:1\n")
    yield modules
    labctl.docker("rm", "--force", "hash-lab-hash-old-1")
    labctl.compose("down", "--timeout", "1", project="hash-lab", file=deployed / "compose.yaml")


def test_config_hash_shows_what_compose_would_recreate(hash_lab, command_log, tmp_path):
    run = run_suite(tmp_path, modules=hash_lab)
    assert run.rc == 1, run.output
    modules = {m["module"]: m for m in run.plan["modules"]}
    # Relative binds resolve against the project's working directory on the host (the deployed
    # folder), not the module folder: no false mismatch; a service on another's network is hashed
    # with that container's id, as Compose did.
    assert {m: e["status"] for m, e in modules.items()} == {
        "hash-same": "in_sync", "hash-changed": "drift", "hash-old": "in_sync", "hash-shared": "in_sync"}
    assert not [w for w in modules["hash-shared"]["warnings"] if w["code"].startswith("CONFIG")]
    [change] = modules["hash-changed"]["changes"]
    assert change["code"] == "CONFIG_HASH_MISMATCH" and "Compose would recreate this container" in change["message"]
    [warning] = [w for w in modules["hash-old"]["warnings"] if w["code"] == "CONFIG_HASH_NOT_COMPARABLE"]
    assert "2.20.0" in warning["message"] and "2.40.3" in warning["message"]
    # Computed locally: the host saw the usual three read-only commands and nothing of the file.
    assert [c[0] for c in logged_commands()] == ["ps", "inspect", "image"]


def test_variables_come_from_the_module_folder_not_the_shell(hash_lab, tmp_path):
    """The operator's MODE must not leak into the hash: .env in the module folder decides."""
    run = run_suite(tmp_path, "-k", "hash-same and config_hash", modules=hash_lab, env={"MODE": "green"})
    assert run.rc == 0, run.output
    (hash_lab / "hash-same" / ".env").write_text("MODE=green\n")
    try:
        changed = run_suite(tmp_path / "again", "-k", "hash-same and config_hash", modules=hash_lab)
    finally:
        (hash_lab / "hash-same" / ".env").write_text("MODE=blue\n")
    assert changed.rc == 1 and changed.codes() == {"hash-same": ["CONFIG_HASH_MISMATCH"]}


@contextmanager
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback port that records the first bytes of every connection it gets (a fetch of a remote include)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                seen.append(conn.recv(64) or b"(connected)")
            except OSError:
                seen.append(b"(connected)")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1]), seen
    finally:
        stop.set()
        thread.join()
        server.close()


def test_a_remote_include_never_reaches_the_network(hash_lab, tmp_path):
    """Refused with MANIFEST_INVALID by make validate and by a run; and Compose itself, asked directly,
    cannot fetch it either (its remote loaders are off, no git or ssh on its PATH)."""
    modules = tmp_path / "modules"
    folder = modules / "hash-same"
    shutil.copytree(hash_lab / "hash-same", folder)
    text = (folder / "compose.yaml").read_text()
    with listener() as (port, seen):
        urls = [f"http://127.0.0.1:{port}/stack.git", f"https://127.0.0.1:{port}/stack.git",
                f"ssh://git@127.0.0.1:{port}/stack.git", f"oci://127.0.0.1:{port}/stack:1"]
        (folder / "compose.yaml").write_text(f"include:\n  - {urls[0]}\n" + text)
        validate = run_suite(tmp_path / "validate", "-m", "manifest", modules=modules)
        run = run_suite(tmp_path / "run", modules=modules)
        asked = []
        for url in urls:
            (folder / "compose.yaml").write_text(f"include:\n  - {url}\n" + text)
            with pytest.raises(composehash.ComposeError) as info:  # the refusal bypassed on purpose
                composehash._run([composehash.compose_binary(), "-f", "compose.yaml", "-p", "hash-lab", "config"],
                                 folder)
            asked.append(str(info.value))
    assert seen == [], f"something connected to the include's address: {seen}"
    assert validate.rc == 2 and "MANIFEST_INVALID" in validate.output and "remote resource" in validate.output
    assert run.rc == 2 and [e["code"] for e in run.plan["errors"]] == ["MANIFEST_INVALID"], run.output
    error = run.plan["errors"][0]
    assert error["file"].endswith("hash-same/module.yaml") and error["key"] == "compose.file", error
    assert all("remote resource is disabled" in message for message in asked), asked


def test_a_relative_include_is_refused_where_compose_would_read_the_hosts_folder(hash_lab, tmp_path):
    """Compose resolves `include:` against the project directory: in a run, the container's working_dir,
    a folder of the host that may hold anything on this machine. Refused, not hashed from there."""
    modules = tmp_path / "modules"
    folder = modules / "hash-same"
    shutil.copytree(hash_lab / "hash-same", folder)
    (folder / "extra.yaml").write_text("services:\n  extra:\n    image: lab/app:1\n")
    (hash_lab.parent / "deployed" / "extra.yaml").write_text("services:\n  extra:\n    image: lab/app:1\n")
    (folder / "compose.yaml").write_text("include:\n  - extra.yaml\n" + (folder / "compose.yaml").read_text())
    validate = run_suite(tmp_path / "validate", "-m", "manifest", modules=modules)
    assert validate.rc == 0, validate.output  # inside the module folder: valid
    run = run_suite(tmp_path / "run", "-k", "config_hash", modules=modules)
    assert run.rc == 2, run.output
    [error] = run.plan["errors"]
    assert error["module"] == "hash-same" and error["code"] == "MANIFEST_INVALID", error
    assert "include[0]" in error["message"] and "outside the module folder" in error["message"]
