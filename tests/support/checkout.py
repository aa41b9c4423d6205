"""A new user's checkout for the lab tests: a fresh clone of this working tree, its venv, and a network
namespace of its own for a second lab."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def fresh_clone(dest: Path) -> Path:
    """dest as `git clone` would make it of this working tree: every tracked file and every new file that is
    not git-ignored, as they are now (uncommitted edits included), committed in a repository of its own;
    nothing ignored (no .venv, no lab/run, no reports)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    dest.mkdir(parents=True)
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)
    git = ["git", "-c", "user.name=driftcheck tests", "-c", "user.email=tests@driftcheck.invalid"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a fresh clone"]):
        subprocess.run([*git, *argv], cwd=dest, check=True, capture_output=True)
    return dest


def _packages(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==", line.strip())
        if match:
            names.add(match.group(1).lower().replace("_", "-"))
    return names


def seed_venv(clone: Path, dev: bool) -> None:
    """clone/.venv as `make venv` (dev: `make setup`) builds it, without a network: the lab's network
    namespace reaches no package index, so the venv is a copy of this checkout's, built from the same
    lock files, less the developer tools unless dev, pointed at the clone (its scripts and the
    checkout .pth the Makefile writes) and marked up to date, so that `make venv` (and `make setup`
    when dev) in the clone find nothing to do. What `make venv` installs is tests/unit/test_makefile.py's."""
    venv = clone / ".venv"
    subprocess.run(["cp", "-a", str(REPO / ".venv"), str(venv)], check=True)
    for script in (venv / "bin").iterdir():  # pip's scripts name the venv they were installed into
        if script.is_file() and not script.is_symlink() and script.read_bytes()[:2] == b"#!":
            text = script.read_bytes()
            script.write_bytes(text.replace(str(REPO / ".venv").encode(), str(venv).encode(), 1))
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-c", "import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path('purelib'), "
                    "'driftcheck-checkout.pth').write_text(sys.argv[1] + '\\n')", str(clone)], check=True)
    if not dev:
        dev_only = _packages(REPO / "requirements-dev.txt") - _packages(REPO / "requirements.txt")
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", *sorted(dev_only)], check=True,
                       capture_output=True)
    for marker in venv.glob(".installed*"):
        marker.unlink()
    for marker in [".installed", *([".installed-dev"] if dev else [])]:
        (venv / marker).touch()  # newer than the clone's requirements files


@contextmanager
def network_namespace(prefix: str) -> Iterator[list[str]]:
    """A network namespace of our own with only its loopback up, deleted afterwards; yields the nsenter
    prefix that runs a command inside it (nsenter, not `ip netns exec`, which would remount /sys under
    a dockerd started there)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    enter = ["nsenter", f"--net=/var/run/netns/{name}"]
    try:
        subprocess.run([*enter, "ip", "link", "set", "lo", "up"], check=True)
        yield enter
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def user_env(home: Path) -> dict[str, str]:
    """The environment of a new user's shell: HOME is theirs, no DRIFT_* setting, no lab transport."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "LAB_", "PYTEST_"))}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    return env
