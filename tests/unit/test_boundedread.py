"""Bounded reading of local files (issue 15): a FIFO, a device, a folder or an oversized file is refused
with a one-line message naming the file, never read whole and never waited on."""

from __future__ import annotations

import os
import re
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from driftcheck.boundedread import FileRefused, check_bounded, read_bounded
from driftcheck.errors import ManifestError
from driftcheck.inventory import load_inventory
from driftcheck.manifest import discover, load_module_file
from driftcheck.yamlfile import MAX_BYTES

VALID = """schema_version: 2
name: web
host: rs2000
compose:
  project: shop
  service: web
image:
  ref: nginx:1
"""


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """call() in a thread; fails the test (instead of hanging it) when it does not return in time."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the test below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def sparse_4g(tmp_path: Path) -> Path:
    """A 4 GiB file that takes no disk space (a hole); reading it whole would take 4 GiB of memory."""
    path = tmp_path / "huge"
    with open(path, "wb") as handle:
        handle.truncate(4 << 30)
    return path


def test_a_regular_file_up_to_the_cap_is_read(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100) == b"x" * 100
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileRefused, match=r"is 101 bytes; expected at most 100 bytes"):
        read_bounded(path, 100)


@pytest.mark.parametrize(("name", "kind"), [
    ("fifo", "a named pipe (FIFO)"), ("/dev/zero", "a character device"), ("folder", "a folder"),
])
def test_what_is_not_a_regular_file_is_refused_unread(tmp_path, fifo, name, kind):
    path = {"fifo": fifo, "folder": tmp_path}.get(name, Path(name))
    with pytest.raises(FileRefused, match=f"^is {re.escape(kind)}, not a regular file$"):
        within(5, lambda: read_bounded(path, 1024))
    with pytest.raises(FileRefused, match=f"^is {re.escape(kind)}, not a regular file$"):
        within(5, lambda: check_bounded(path, 1024))


def test_an_oversized_file_costs_no_memory(sparse_4g):
    tracemalloc.start()
    try:
        with pytest.raises(FileRefused, match=r"is 4294967296 bytes; expected at most 256 KiB"):
            read_bounded(sparse_4g, 256 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_file_whose_size_is_not_known_beforehand_is_read_to_the_cap_plus_one_byte():
    # /proc files are regular files that report size 0: only the read itself can tell.
    assert len(Path("/proc/self/mounts").read_bytes()) > 64
    with pytest.raises(FileRefused, match="grew past 64 bytes while it was read"):
        read_bounded("/proc/self/mounts", 64)


def test_a_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing", 10)


# -- the files a run reads ----------------------------------------------------------------------


def module_path(tmp_path: Path) -> Path:
    folder = tmp_path / "modules" / "web"
    folder.mkdir(parents=True)
    return folder / "module.yaml"


@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "folder", "4 GiB"])
def test_module_yaml_that_is_no_bounded_regular_file_is_manifest_invalid(tmp_path, fifo, sparse_4g, what):
    path = module_path(tmp_path)
    if what == "folder":
        path.mkdir()
    else:
        path.symlink_to({"fifo": fifo, "4 GiB": sparse_4g}.get(what, Path(what)))
    expected = {"fifo": "is a named pipe (FIFO), not a regular file", "/dev/zero": "is a character device, not a "
                "regular file", "folder": "is a folder, not a regular file",
                "4 GiB": f"is 4294967296 bytes; expected at most {MAX_BYTES // 1024} KiB"}[what]
    modules, errors = within(5, lambda: discover(path.parent.parent, str))
    assert modules == []
    assert [(e.path, e.key, e.problem, e.code) for e in errors] == [(str(path), None, expected, "MANIFEST_INVALID")]
    assert str(errors[0]) == f"{path}: {expected}"


@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "folder", "4 GiB"])
def test_an_inventory_that_is_no_bounded_regular_file_is_inventory_invalid(tmp_path, fifo, sparse_4g, what):
    path = {"fifo": fifo, "folder": tmp_path, "4 GiB": sparse_4g}.get(what, Path(what))
    with pytest.raises(ManifestError) as info:
        within(5, lambda: load_inventory(path, "hosts.yaml"))
    assert info.value.code == "INVENTORY_INVALID" and info.value.path == "hosts.yaml" and info.value.key is None
    assert "not a regular file" in info.value.problem or "expected at most 256 KiB" in info.value.problem


@pytest.mark.parametrize(("name", "target", "expected"), [
    ("compose.yaml", "4 GiB", "file 'compose.yaml' is 4294967296 bytes; expected at most 1 MiB"),
    (".env", "4 GiB", "the module folder's .env ({env}) is 4294967296 bytes; expected at most 1 MiB"),
    (".env", "fifo", "the module folder's .env ({env}) is a named pipe (FIFO), not a regular file"),
    (".env", "/dev/zero", "the module folder's .env ({env}) is a character device, not a regular file"),
])
def test_compose_inputs_docker_compose_reads_are_bounded(tmp_path, fifo, sparse_4g, name, target, expected):
    path = module_path(tmp_path)
    path.write_text(VALID.replace("  service: web\n", "  service: web\n  file: compose.yaml\n"))
    (path.parent / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1\n")
    (path.parent / name).unlink(missing_ok=True)
    (path.parent / name).symlink_to({"fifo": fifo, "4 GiB": sparse_4g}.get(target, Path(target)))
    with pytest.raises(ManifestError) as info:
        within(5, lambda: load_module_file(path, "web/module.yaml"))
    assert (info.value.key, info.value.code) == ("compose.file", "MANIFEST_INVALID")
    assert info.value.problem == expected.format(env=path.parent / ".env")


def test_a_bounded_env_file_is_fine(tmp_path):
    path = module_path(tmp_path)
    path.write_text(VALID.replace("  service: web\n", "  service: web\n  file: compose.yaml\n"))
    (path.parent / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1\n")
    (path.parent / ".env").write_text("TAG=1\n")
    assert load_module_file(path, "web/module.yaml").compose_file == str(path.parent / "compose.yaml")


def test_local_docker_config_that_is_a_fifo_is_not_waited_on(tmp_path):
    from driftcheck.transport.local_runner import docker_over_ssh

    os.mkfifo(tmp_path / "config.json")
    assert within(5, lambda: docker_over_ssh({"DOCKER_CONFIG": str(tmp_path)})) is None
