"""make import that fails or is stopped while it writes: the modules it wrote are whole, nothing else is left.

The signal cases are real processes (driftcheck.importer's main) whose host view is canned and whose
second (or first) module write is interrupted by a signal the process sends itself.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, signal, sys
sys.path.insert(0, REPO)
from pathlib import Path
from driftcheck import importer
from tests.unit.test_importer import container, view

modules, signum, at = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
host = view(container("p-a-1", "p", "a"), container("p-b-1", "p", "b"))
importer.run = lambda h, inventory, modules_dir, show, say, options: importer.adopt(
    h, host, [], modules_dir, options, str, say)
real_fsync, synced = os.fsync, []

def fsync(fd):  # the signal comes while module number `at` is being written, after a file of it is on disk
    real_fsync(fd)
    synced.append(fd)
    if len(synced) == at:
        os.kill(os.getpid(), signum)

os.fsync = fsync
sys.exit(importer.main(["--host=rs2000", "--compose-files=no", f"--modules-dir={modules}"]))
"""


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
@pytest.mark.parametrize(("at", "left"), [(2, ["a", "a/module.yaml"]), (1, None)], ids=["second", "first"])
def test_an_interrupted_import_leaves_whole_modules_or_nothing(tmp_path, signum, at, left):
    modules = tmp_path / "modules"
    script = SCRIPT.replace("REPO", repr(str(REPO)))
    done = subprocess.run([sys.executable, "-c", script, str(modules), str(int(signum)), str(at)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    if left is None:
        assert not modules.exists()  # the import made the folder, and leaves none when it wrote nothing
    else:
        assert files_under(modules) == left  # no b/, no hidden temporary folder
        assert f"wrote    {modules / 'a' / 'module.yaml'}" in done.stdout
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert f"ERROR INTERRUPTED: import stopped by {name}; every module it said it wrote is complete" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_full_disk_while_writing_a_module_leaves_the_others_whole_and_nothing_of_it(tmp_path, monkeypatch):
    from driftcheck import importer
    from tests.unit.test_importer import Say, container, view

    real_fsync, synced = os.fsync, []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(fd)
        if len(synced) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    said = Say()
    modules = tmp_path / "modules"
    host = view(container("p-a-1", "p", "a"), container("p-b-1", "p", "b"), container("p-c-1", "p", "c"))
    status = importer.adopt("rs2000", host, [], modules, importer.ImportOptions(copy_compose_files=False), str, said)
    assert status == 2
    assert files_under(modules) == ["a", "a/module.yaml", "c", "c/module.yaml"]  # no b/, no hidden folder
    assert f"ERROR    p/b: {modules / 'b'} could not be written, nothing written for it: No space left on device" \
        in said
