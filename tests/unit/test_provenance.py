"""provenance: plan.json's source, the git revision of the repository holding the modules, read-only and bounded."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from driftcheck.provenance import SourceProbe, git_state

IDENTITY = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", *IDENTITY, *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with modules/a/module.yaml and hosts.yaml committed."""
    root = tmp_path / "platform"
    (root / "modules" / "a").mkdir(parents=True)
    (root / "modules" / "a" / "module.yaml").write_text("name: a\n")
    (root / "hosts.yaml").write_text("hosts: {}\n")
    (root / "notes.txt").write_text("x\n")
    git(root, "init", "-q", ".")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root


def test_a_clean_checkout_gives_its_commit(repo):
    assert git_state(repo / "modules", repo / "hosts.yaml") == (git(repo, "rev-parse", "HEAD"), False)


@pytest.mark.parametrize("change", ["modified module", "untracked module", "deleted module", "modified inventory"])
def test_uncommitted_desired_state_is_dirty(repo, change):
    if change == "modified module":
        (repo / "modules" / "a" / "module.yaml").write_text("name: a\nhost: b\n")
    elif change == "untracked module":
        (repo / "modules" / "b").mkdir()
        (repo / "modules" / "b" / "module.yaml").write_text("name: b\n")
    elif change == "deleted module":
        (repo / "modules" / "a" / "module.yaml").unlink()
    else:
        (repo / "hosts.yaml").write_text("hosts: {x: {}}\n")
    assert git_state(repo / "modules", repo / "hosts.yaml") == (git(repo, "rev-parse", "HEAD"), True)


def test_a_change_elsewhere_in_the_repository_is_not_the_desired_state(repo):
    (repo / "notes.txt").write_text("changed\n")
    (repo / "scratch.py").write_text("")
    assert git_state(repo / "modules", repo / "hosts.yaml")[1] is False


def test_an_inventory_outside_the_repository_is_left_out(repo, tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("hosts: {}\n")
    assert git_state(repo / "modules", outside) == (git(repo, "rev-parse", "HEAD"), False)


def test_outside_git_and_without_a_commit(repo, tmp_path):
    (tmp_path / "plain" / "modules").mkdir(parents=True)
    assert git_state(tmp_path / "plain" / "modules", tmp_path / "plain" / "hosts.yaml") == (None, None)
    assert git_state(tmp_path / "missing", tmp_path / "hosts.yaml") == (None, None)
    fresh = tmp_path / "fresh"
    (fresh / "modules" / "a").mkdir(parents=True)
    (fresh / "modules" / "a" / "module.yaml").write_text("name: a\n")
    git(fresh, "init", "-q", ".")
    assert git_state(fresh / "modules", fresh / "hosts.yaml") == (None, True)  # in git, nothing committed


def test_it_reads_and_never_writes_the_repository(repo):
    (repo / "modules" / "a" / "module.yaml").write_text("name: a\nhost: b\n")
    index = repo / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    os.utime(repo / "modules" / "a" / "module.yaml")  # stale stat info: a plain `git status` would refresh the index
    assert git_state(repo / "modules", repo / "hosts.yaml")[1] is True
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert not (repo / ".git" / "index.lock").exists()


def test_the_callers_git_environment_does_not_redirect_it(repo, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", ".")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    assert git_state(repo / "modules", repo / "hosts.yaml") == (git(repo, "rev-parse", "HEAD"), False)


def fake_git(folder: Path, body: str) -> None:
    folder.mkdir()
    script = folder / "git"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_a_hung_git_is_bounded_and_killed_with_its_children(repo, tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    fake_git(tmp_path / "bin", f"sleep 60 & echo $! > {pidfile}\nwait\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    started = time.monotonic()
    assert git_state(repo / "modules", repo / "hosts.yaml", timeout=0.5) == (None, None)
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2], \
        "git's child outlived the bound"


def test_no_git_on_this_machine(repo, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_state(repo / "modules", repo / "hosts.yaml") == (None, None)


def test_the_probe_gives_the_plan_its_source(repo):
    probe = SourceProbe(repo / "modules", repo / "hosts.yaml", "modules", "hosts.yaml").start()
    assert probe.result() == {"modules_dir": "modules", "inventory": "hosts.yaml",
                              "revision": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_the_probe_never_holds_the_end_of_a_run_beyond_its_bound(repo, tmp_path, monkeypatch):
    fake_git(tmp_path / "bin", "sleep 30\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    probe = SourceProbe(repo / "modules", repo / "hosts.yaml", "modules", "hosts.yaml", timeout=1.0).start()
    started = time.monotonic()
    assert probe.result(wait=False)["revision"] is None and time.monotonic() - started < 0.5  # interrupted: no wait
    assert probe.result() == {"modules_dir": "modules", "inventory": "hosts.yaml", "revision": None, "dirty": None}
    assert time.monotonic() - started < 4
