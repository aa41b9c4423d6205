"""Where a run's desired state came from (plan.json's `source`): the modules folder, the inventory,
and the git commit of the repository holding the modules, with whether they had uncommitted changes.

git runs on this machine only, read-only (no optional locks: `git status` does not refresh the
index), with a clean git environment, no fsmonitor hook, and a bound on its time; its process group
is killed when it outlives the bound. No git, no repository, no answer in time: null, never an error
of the run. It runs in a thread from the start of the run, so it costs the run no wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

#: seconds for both git commands together
GIT_TIMEOUT = 5.0
#: bytes of git output read at most (a status line per changed path; the first one decides)
MAX_OUTPUT = 1 << 20


def _git_env() -> dict[str, str]:
    """The caller's environment without GIT_* (no other repository, index or config injected), in C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def _git(cwd: Path, args: list[str], timeout: float) -> str | None:
    """git's stdout, or None when it failed, is missing or outlived timeout (its whole group killed)."""
    try:
        process = subprocess.Popen(["git", "--no-optional-locks", "-c", "core.fsmonitor=false", *args], cwd=cwd,
                                   env=_git_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    try:
        out, _ = process.communicate(timeout=max(timeout, 0.01))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.communicate()
        return None
    if process.returncode != 0:
        return None
    return out[:MAX_OUTPUT].decode("utf-8", "replace")


def git_state(modules_dir: Path, inventory: Path, timeout: float = GIT_TIMEOUT) -> tuple[str | None, bool | None]:
    """(revision, dirty) of the repository holding modules_dir; (None, None) outside git.

    dirty: a file of the modules folder, or the inventory when it lies in the same repository, is
    modified, added, deleted or untracked. revision is None in a repository with no commit yet.
    """
    folder = modules_dir.resolve()
    if not folder.is_dir():
        return None, None
    started = time.monotonic()
    top = _git(folder, ["rev-parse", "--show-toplevel"], timeout)
    if top is None or not top.strip():
        return None, None
    toplevel = Path(top.strip()).resolve()
    paths = [str(folder)]
    inventory = inventory.resolve()
    if toplevel in inventory.parents:
        paths.append(str(inventory))
    status = _git(folder, ["status", "--porcelain=v2", "--branch", "--ignore-submodules=all", "--", *paths],
                  timeout - (time.monotonic() - started))
    if status is None:
        return None, None
    revision = None
    dirty = False
    for line in status.split("\n"):
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            revision = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return revision, dirty


class SourceProbe:
    """plan.json's `source`, found in a thread started with the run and awaited when the plan is built."""

    def __init__(self, modules_dir: Path, inventory: Path, shown_modules: str, shown_inventory: str,
                 timeout: float = GIT_TIMEOUT):
        self._fields: dict[str, Any] = {"modules_dir": shown_modules, "inventory": shown_inventory,
                                        "revision": None, "dirty": None}
        self._timeout = timeout
        self._started = 0.0
        self._thread = threading.Thread(target=self._probe, args=(modules_dir, inventory), daemon=True,
                                        name="driftcheck-source")

    def start(self) -> SourceProbe:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _probe(self, modules_dir: Path, inventory: Path) -> None:
        revision, dirty = git_state(modules_dir, inventory, self._timeout)
        self._fields.update(revision=revision, dirty=dirty)

    def result(self, wait: bool = True) -> dict[str, Any]:
        """The source record; revision and dirty null if git has not answered within its bound (counted from
        the start of the run), or at once when not waiting (an interrupted run)."""
        if self._thread.ident is not None and wait:
            self._thread.join(max(0.0, self._started + self._timeout + 1 - time.monotonic()))
        if self._thread.is_alive():
            return {**self._fields, "revision": None, "dirty": None}
        return dict(self._fields)
