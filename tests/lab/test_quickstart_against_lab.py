"""A new user's first hour (issue 17): `make demo` from a clone under a private folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.checkout import fresh_clone, network_namespace, seed_venv, user_env
from tests.support.lab import labctl


def in_clone(clone: Path, env: dict[str, str], *argv: str, enter: list[str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A command a user types in the clone (inside a network namespace when enter is given)."""
    return subprocess.run([*(enter or []), *argv], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.pins_transport
def test_make_demo_works_from_a_clone_under_a_private_folder(tmp_path):
    """sshd reads authorized_keys as the lab user, who cannot traverse a mode-700 folder: the lab keeps what
    that user reads outside the checkout. This clone's lab runs in a network namespace of its own (the
    example stack's ports would clash with the lab of make test), and is stopped and removed afterwards."""
    private = Path(tempfile.mkdtemp(prefix="dc-private-"))  # mode 700, as mktemp -d makes it
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        clone = fresh_clone(private / "driftcheck")
        seed_venv(clone, dev=True)  # make demo runs make setup: the developer tools too
        env = user_env(tmp_path / "home")
        with network_namespace("dc-private") as enter:
            try:
                demo = in_clone(clone, env, "make", "demo", enter=enter, timeout=600)
                assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
                assert "demo: OK, the deliberate drift was shown." in demo.stdout
                assert "AUTH_FAILED" not in demo.stdout
            finally:
                down = in_clone(clone, env, "make", "lab-down", enter=enter, timeout=300)
                assert down.returncode == 0, down.stdout + down.stderr
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_lab_up_says_which_folder_keeps_the_lab_user_out(lab):
    """Should the lab user's folder become unreachable, lab-up stops and names the folder, its mode, and the fix."""
    labctl.check_lab_user_access()  # the running lab passes
    labctl.SHARED.chmod(0o700)
    try:
        with pytest.raises(SystemExit) as stopped:
            labctl.check_lab_user_access()
    finally:
        labctl.SHARED.chmod(0o755)
    assert str(stopped.value) == (
        f"lab: the lab user {labctl.LAB_USER} cannot read {labctl.SSH / 'authorized_keys'}, so every login to the lab "
        f"would fail (sshd reads authorized_keys as {labctl.LAB_USER}): {labctl.SHARED} (mode 700, uid 0) keeps it "
        "out; make it mode 755")
