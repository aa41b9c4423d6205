"""A run's place in the archive: where its desired state came from (plan.json's source)."""

from __future__ import annotations

import os
import shutil
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


def latest(lab):
    link = lab.reports / "latest"
    return link.resolve() if link.is_symlink() else None


def test_latest_moves_only_with_a_run_that_observed_its_hosts(lab):
    lab.module("in-sync")
    lab.module("wrong-tag", tags=["tier0"])
    lab.serve("in-sync", "wrong-tag")
    good = lab.run()
    assert good.rc == 1 and latest(lab) == good.run_dir, good.output

    typo = lab.run("-m", "tier9")  # NO_MODULES_SELECTED
    assert typo.rc == 2 and latest(lab) == good.run_dir, typo.output
    usage = lab.run("--drift-format=yaml")  # a usage error: exit 4
    assert usage.rc == 4 and latest(lab) == good.run_dir, usage.output
    lab.set_scenario(fail={"all": {"rc": 1, "stderr": "Cannot connect to the Docker daemon at "
                                                      "unix:///var/run/docker.sock. Is the docker daemon running?"}})
    down = lab.run()
    assert down.rc == 2 and down.run_dir is not None and latest(lab) == good.run_dir, down.output
    assert "reports/latest not moved: this run observed no host" in down.stdout, down.stdout[-3000:]
    lab.set_scenario(fail={})
    broken = lab.module_text("broken", "schema_version: 2\nname: broken\n")
    invalid = lab.run()
    assert invalid.rc == 2 and invalid.run_dir is not None and latest(lab) == good.run_dir, invalid.output
    shutil.rmtree(broken.parent)

    # So comparing with latest after those runs compares with the last run that looked: nothing is new.
    again = lab.run("--compare-with=latest")
    assert again.rc == 1 and latest(lab) == again.run_dir, again.output
    assert again.plan["since"]["run_id"] == good.plan["run_id"]
    assert again.plan["since"]["new"] == [] and again.plan["since"]["unchanged"] == [
        {"module": "wrong-tag", "code": "IMAGE_TAG_MISMATCH"}]
    assert "not moved" not in again.stdout
    one = lab.run("-k", "in-sync")  # a narrower run that observed its host moves it
    assert one.rc == 0 and latest(lab) == one.run_dir, one.output


def test_keep_runs_keeps_the_newest_and_latests_target(lab):
    lab.module("in-sync")
    lab.serve("in-sync")
    good = lab.run()
    assert good.rc == 0, good.output
    lab.set_scenario(fail={"all": {"rc": 1, "stderr": "Cannot connect to the Docker daemon at "
                                                      "unix:///var/run/docker.sock. Is the docker daemon running?"}})
    down = [lab.run("--keep-runs=2") for _ in range(3)]  # latest stays on the good run
    assert [r.rc for r in down] == [2, 2, 2]
    assert lab.run_dirs() == {good.run_dir, down[1].run_dir, down[2].run_dir}, "kept: latest's target, 2 newest"
    assert f"removed 1 old run folder(s) (--keep-runs=2): {down[0].run_dir.name}" in down[2].stdout
    lab.set_scenario(fail={})
    kept = lab.run("--keep-runs=1")
    assert kept.rc == 0 and lab.run_dirs() == {kept.run_dir} and latest(lab) == kept.run_dir, kept.output
    for bad in ("0", "many"):
        refused = lab.run(f"--keep-runs={bad}")
        assert refused.rc == 4 and f"--keep-runs / DRIFT_KEEP_RUNS={bad}: expected a whole number" in refused.stderr
    assert lab.run_dirs() == {kept.run_dir}


def test_the_history_page_is_rewritten_after_each_run(lab):
    import re

    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")
    runs = [lab.run("-k", "in-sync"), lab.run(), lab.run("--keep-runs=2")]
    assert [r.rc for r in runs] == [0, 1, 1], [r.output for r in runs]
    page = (lab.reports / "index.html").read_text()
    listed = re.findall(r'<tr(?: class="latest")? id="run-([^"]+)">', page)
    assert listed == [runs[2].run_dir.name, runs[1].run_dir.name]  # newest first; the pruned run is gone
    assert f'<tr class="latest" id="run-{runs[2].run_dir.name}">' in page
    assert re.search(r'<tr id="drifted-wrong-tag">.*2 of 2', page)
    assert sorted(p.name for p in lab.reports.iterdir()) == sorted(
        ["history.json", "index.html", "latest", runs[1].run_dir.name, runs[2].run_dir.name])
