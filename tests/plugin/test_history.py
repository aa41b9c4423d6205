"""A run's place in the archive: where its desired state came from (plan.json's source)."""

from __future__ import annotations

import os
import subprocess

IDENTITY = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]


def git(cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_plan_names_the_commit_the_modules_were_checked_against(lab):
    lab.module("in-sync")
    lab.serve("in-sync")
    outside = lab.run()
    assert outside.rc == 0, outside.output
    assert outside.plan["source"] == {"modules_dir": "modules", "inventory": "hosts.yaml", "revision": None,
                                      "dirty": None}
    (lab.root / ".gitignore").write_text("reports/\n_stub/\n")
    git(lab.root, "init", "-q", ".")
    git(lab.root, "add", ".")
    git(lab.root, "commit", "-qm", "platform")
    head = git(lab.root, "rev-parse", "HEAD")
    clean = lab.run()
    assert clean.plan["source"] == {"modules_dir": "modules", "inventory": "hosts.yaml", "revision": head,
                                    "dirty": False}, clean.output
    lab.module("in-sync", image={"ref": "lab/app:2"})  # an edit not yet committed
    edited = lab.run()
    assert edited.rc == 1 and edited.plan["source"]["revision"] == head and edited.plan["source"]["dirty"] is True
