"""The CI templates (.github, .forgejo, .gitlab-ci.yml): valid YAML that does what docs/ci.md promises.

They are examples to copy, not run here; this checks their shape and their shell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = {"github": ROOT / ".github/workflows/driftcheck.yml", "forgejo": ROOT / ".forgejo/workflows/driftcheck.yml"}
GITLAB = ROOT / ".gitlab-ci.yml"


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def shell_of(steps: list[dict[str, Any]]) -> list[str]:
    return [s["run"] for s in steps if "run" in s]


def bash_n(script: str) -> None:
    # ${{ ... }} is the CI's own expression syntax, replaced before the shell sees it
    done = subprocess.run(["bash", "-n"], input=re.sub(r"\$\{\{[^}]*\}\}", "x", script), text=True,
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("kind", sorted(WORKFLOWS))
def test_actions_workflows(kind):
    data = load(WORKFLOWS[kind])
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    assert triggers["schedule"][0]["cron"]
    validate, drift = data["jobs"]["validate"], data["jobs"]["drift"]
    assert "pull_request" in validate["if"] and shell_of(validate["steps"])[-1] == "make validate"
    scripts = shell_of(drift["steps"])
    for script in scripts:
        bash_n(script)
    text = "\n".join(scripts)
    assert ".venv/bin/python -m pytest" in text and "make venv" in text
    assert 'cp -r "$run" artifacts/' in text  # reports/<run-id>/, whether latest moved or not
    assert 'DRIFT_ON_DRIFT" = warn' in text and 'exit "${status:-2}"' in text
    uploads = [s for s in drift["steps"] if "upload-artifact" in s.get("uses", "")]
    assert len(uploads) == 1 and uploads[0]["with"]["path"] == "artifacts/" and uploads[0]["if"] == "always()"
    if kind == "github":
        junit = [s for s in drift["steps"] if "junit" in s.get("uses", "")]
        assert junit and junit[0]["with"]["report_paths"] == "artifacts/*/junit.xml" and junit[0]["if"] == "always()"
        assert data["permissions"]["checks"] == "write"


def test_gitlab_ci():
    data = load(GITLAB)
    assert data["stages"] == ["validate", "drift"]
    assert data["validate"]["script"] == ["make validate"]
    assert data["validate"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    drift = data["drift"]
    assert {r["if"] for r in drift["rules"]} == {'$CI_PIPELINE_SOURCE == "schedule"', '$CI_PIPELINE_SOURCE == "web"'}
    bash_n("\n".join(drift["before_script"] + drift["script"]))
    assert drift["allow_failure"] == {"exit_codes": [1]}
    artifacts = drift["artifacts"]
    assert artifacts["when"] == "always" and artifacts["paths"] == ["artifacts/"]
    assert artifacts["reports"]["junit"] == "artifacts/*/junit.xml"


def test_the_shell_maps_exit_statuses_as_documented(tmp_path):
    # The GitLab script with pytest replaced by a stand-in exiting 0, 1 or 2, in warn and fail mode.
    script = "\n".join(load(GITLAB)["drift"]["script"]).replace(".venv/bin/python -m pytest", "sh -c 'exit $FAKE'")
    expected = {("fail", 0): 0, ("fail", 1): 3, ("fail", 2): 2, ("warn", 0): 0, ("warn", 1): 1, ("warn", 2): 2}
    for (mode, fake), want in expected.items():
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env={"FAKE": str(fake), "DRIFT_ON_DRIFT": mode,
                                                                        "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, check=False)
        assert done.returncode == want, (mode, fake, done.stdout, done.stderr)


@pytest.mark.parametrize("kind", sorted(WORKFLOWS))
def test_the_workflows_map_exit_statuses_as_documented(kind):
    step = next(s for s in load(WORKFLOWS[kind])["jobs"]["drift"]["steps"] if s.get("name", "").startswith("Exit"))
    expected = {("fail", "0"): 0, ("fail", "1"): 1, ("fail", "2"): 2, ("warn", "0"): 0, ("warn", "1"): 0,
                ("warn", "2"): 2, ("warn", ""): 2}  # no status at all: the check never ran
    assert step["env"] == {"status": "${{ steps.drift.outputs.status }}"}
    for (mode, status), want in expected.items():
        done = subprocess.run(["bash", "-c", step["run"]], env={"DRIFT_ON_DRIFT": mode, "PATH": "/usr/bin:/bin",
                                                                 "status": status},
                              capture_output=True, text=True, check=False)
        assert done.returncode == want, (mode, status, done.stdout)


SHARDED = {"gitlab": ROOT / "ci/gitlab-sharded.yml", "github": ROOT / "ci/github-sharded.yml"}


def sharded_parts(kind: str) -> tuple[list[str], str, str, str]:
    """The matrix's hosts, DRIFT_HOSTS, a shard's script and the merge script of a sharded template."""
    data = load(SHARDED[kind])
    if kind == "gitlab":
        drift, merge = data["drift"], data["drift-merge"]
        return (drift["parallel"]["matrix"][0]["DRIFT_HOST"], data["variables"]["DRIFT_HOSTS"],
                "\n".join(drift["before_script"] + drift["script"]), "\n".join(merge["script"]))
    drift, merge = data["jobs"]["drift"], data["jobs"]["merge"]
    assert merge["needs"] == "drift" and merge["if"] == "always()"
    step = next(s for s in merge["steps"] if s.get("id") == "merge")
    return (drift["strategy"]["matrix"]["host"], data["env"]["DRIFT_HOSTS"], "\n".join(shell_of(drift["steps"])),
            step["run"])


@pytest.mark.parametrize("kind", sorted(SHARDED))
def test_sharded_templates_check_each_host_of_the_matrix_and_merge_them(kind):
    hosts, listed, shard, merge = sharded_parts(kind)
    assert hosts == listed.split(), "DRIFT_HOSTS must name the matrix's hosts"
    bash_n(shard)
    bash_n(merge)
    assert '.venv/bin/python -m pytest -k "$DRIFT_HOST"' in shard
    assert 'make -s merge RUNS="$runs"' in merge


@pytest.mark.parametrize("kind", sorted(SHARDED))
def test_a_sharded_merge_with_a_hosts_run_missing_is_an_error(kind, tmp_path):
    """A host whose job left no run folder is never merged away as 'no drift'."""
    _, listed, _, merge = sharded_parts(kind)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "make").write_text("#!/bin/sh\necho \"$@\" >> made\n")
    (fake / "make").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "DRIFT_HOSTS": listed, "DRIFT_ON_DRIFT": "fail",
           "GITHUB_OUTPUT": str(tmp_path / "output")}
    first, second = listed.split()
    (tmp_path / "artifacts" / first / "20261129T000000Z-aaaa").mkdir(parents=True)
    done = subprocess.run(["bash", "-c", merge], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and f"no run folder from the job of host {second}" in done.stdout, done
    assert "merge" not in ((tmp_path / "made").read_text() if (tmp_path / "made").exists() else "")
    (tmp_path / "artifacts" / second / "20261129T000001Z-bbbb").mkdir(parents=True)
    done = subprocess.run(["bash", "-c", merge], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done
    made = (tmp_path / "made").read_text().splitlines()[-1]
    assert made.startswith("-s merge RUNS=") and f"artifacts/{first}/20261129T000000Z-aaaa/" in made
    assert f"artifacts/{second}/20261129T000001Z-bbbb/" in made


# -- what the linters of make lint-ci cannot see -------------------------------------------------------

ACTIONS = {**WORKFLOWS, "github-sharded": ROOT / "ci/github-sharded.yml"}
BIN = Path(sys.executable).parent


def steps_of(path: Path) -> list[dict[str, Any]]:
    return [step for job in load(path)["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_secrets_reach_scripts_through_env_only(kind):
    """A secret pasted into a run: script is substituted into the script's text before the shell reads it."""
    for step in steps_of(ACTIONS[kind]):
        assert "secrets." not in step.get("run", ""), step
        for value in (step.get("env") or {}).values():
            assert "secrets." not in str(value) or re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", value), value
    assert "secrets.DRIFT_DEPLOY_KEY" in ACTIONS[kind].read_text()


@pytest.mark.parametrize("kind", sorted(WORKFLOWS))
def test_the_drift_job_runs_on_schedule_and_dispatch_only(kind):
    """Never on a pull request: it would hand the deploy key to unreviewed code, and fail on forks."""
    condition = load(WORKFLOWS[kind])["jobs"]["drift"]["if"]
    events = {"pull_request", "pull_request_target", "push", "schedule", "workflow_dispatch"}
    runs = {event for event in events if eval_condition(condition, event)}
    assert runs == {"schedule", "workflow_dispatch"}, condition


def eval_condition(condition: str, event: str) -> bool:
    """The job's `if:` for one event: only the forms these templates use (==, !=, ||, &&)."""
    python = condition.replace("github.event_name", repr(event)).replace("||", " or ").replace("&&", " and ")
    assert re.fullmatch(r"[\w'\s=!]+", python), condition
    return bool(eval(python, {"__builtins__": {}}))


def test_forgejos_validate_job_needs_no_javascript_action_and_checks_out_with_git(tmp_path):
    """python:3.11-bookworm has no node: a JavaScript action (actions/checkout) fails there. The
    job's own git checkout, run against a repository with a pull request's ref."""
    validate = load(WORKFLOWS["forgejo"])["jobs"]["validate"]
    assert validate["container"]["image"].startswith("python:3.11-bookworm")
    assert not [s for s in validate["steps"] if "uses" in s], "a JavaScript action in an image without node"
    checkout = validate["steps"][0]
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run([*git, "clone", "-q", str(origin), str(work)], check=True, capture_output=True)
    (work / "module.yaml").write_text("name: m\n")
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "pr"], check=True)
    subprocess.run([*git, "-C", str(work), "push", "-q", "origin", "HEAD:refs/pull/7/head"], check=True,
                   capture_output=True)
    job = tmp_path / "job"
    job.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SERVER": f"file://{tmp_path}",
           "REPOSITORY": "origin", "REF": "refs/pull/7/head", "TOKEN": "t0ken", "GIT_CONFIG_NOSYSTEM": "1"}
    assert set(checkout["env"]) == {"SERVER", "REPOSITORY", "REF", "TOKEN"}
    done = subprocess.run(["bash", "-e", "-c", checkout["run"]], cwd=job, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (job / "module.yaml").read_text() == "name: m\n"


@pytest.mark.parametrize("kind", ["gitlab", "gitlab-sharded"])
def test_gitlab_loads_the_deploy_key_from_a_file_variable(kind, tmp_path):
    """A private key cannot be a masked GitLab variable: it is a variable of type File, whose value is
    the path of a file holding the key. The job's own lines, with a real ssh-agent and ssh-add."""
    data = load(GITLAB if kind == "gitlab" else SHARDED["gitlab"])
    before = [line for line in data["drift"]["before_script"] if line != "make venv"]
    assert 'ssh-add "$DRIFT_DEPLOY_KEY"' in before and 'cp "$DRIFT_KNOWN_HOSTS" ~/.ssh/known_hosts' in before
    key = tmp_path / "DRIFT_DEPLOY_KEY"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drift-ci", "-f", str(key)], check=True)
    key.chmod(0o644)  # as a runner may leave it: the job makes it private before ssh-add
    known = tmp_path / "DRIFT_KNOWN_HOSTS"
    known.write_text("rs2000 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n")
    home = tmp_path / "home"
    home.mkdir()
    script = "\n".join([*before, "ssh-add -l", 'ssh-agent -k >/dev/null'])
    done = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ["PATH"], "HOME": str(home), "DRIFT_DEPLOY_KEY": str(key),
                               "DRIFT_KNOWN_HOSTS": str(known)})
    assert done.returncode == 0, done.stderr
    assert "drift-ci (ED25519)" in done.stdout
    assert (home / ".ssh" / "known_hosts").read_text() == known.read_text()


@pytest.mark.skipif(not (BIN / "actionlint").exists(), reason="make setup installs actionlint")
def test_actionlint_finds_a_script_injection_in_a_workflow(tmp_path):
    """The linter of make lint-ci is real: an untrusted value pasted into a run: script fails it."""
    broken = tmp_path / "driftcheck.yml"
    broken.write_text(WORKFLOWS["github"].read_text().replace(
        "      - run: make validate", "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
        "      - run: make validate"))
    done = subprocess.run([str(BIN / "actionlint"), "-no-color", "-config-file", str(ROOT / "ci/actionlint.yaml"),
                           str(broken)], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 1 and "github.event.pull_request.title" in done.stdout, done.stdout


@pytest.mark.skipif(not (BIN / "check-jsonschema").exists(), reason="make setup installs check-jsonschema")
def test_gitlabs_schema_refuses_a_malformed_job(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("exit_codes: [1]", "exit_codes: one"))
    done = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(broken)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "allow_failure" in done.stdout, done.stdout
def drift_scripts() -> dict[str, str]:
    """The shell of each template's drift job, up to its exit mapping."""
    scripts = {kind: next(s["run"] for s in load(path)["jobs"]["drift"]["steps"] if s.get("id") == "drift")
               for kind, path in WORKFLOWS.items()}
    gitlab = load(GITLAB)["drift"]
    scripts["gitlab"] = "\n".join(gitlab["before_script"] + gitlab["script"])
    for kind in SHARDED:
        scripts[f"{kind}-sharded"] = sharded_parts(kind)[2]
    return scripts


@pytest.mark.parametrize("kind", ["github", "forgejo", "gitlab", "github-sharded", "gitlab-sharded"])
def test_the_run_folder_is_archived_when_latest_did_not_move(kind, tmp_path):
    """A run where no host answered writes its folder but leaves reports/latest alone (or there is none yet):
    the job archives the folder all the same, the run an operator most needs to read."""
    script = drift_scripts()[kind]
    run = "mkdir -p reports/20261129T000000Z-aaaa; touch reports/20261129T000000Z-aaaa/plan.json; exit 2"
    script = re.sub(r"\.venv/bin/python -m pytest( -k \"\$DRIFT_HOST\")?", f"sh -c '{run}'", script)
    script = re.sub(r"^.*(make|ssh-add|ssh-agent|known_hosts|apt-get|pip).*$", ":", script, flags=re.M)
    env = {"PATH": "/usr/bin:/bin", "DRIFT_ON_DRIFT": "fail", "DRIFT_HOST": "rs2000", "HOME": str(tmp_path),
           "GITHUB_OUTPUT": str(tmp_path / "output")}
    subprocess.run(["bash", "-c", re.sub(r"\$\{\{[^}]*\}\}", "x", script)], cwd=tmp_path, env=env,
                   capture_output=True, text=True, check=False)
    host = "rs2000/" if kind.endswith("sharded") else ""
    assert (tmp_path / f"artifacts/{host}20261129T000000Z-aaaa/plan.json").is_file(), script
