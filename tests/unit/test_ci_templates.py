"""The CI templates (.github, .forgejo, .gitlab-ci.yml): valid YAML that does what the README promises.

They are examples to copy, not run here; this checks their shape and their shell.
"""

from __future__ import annotations

import re
import subprocess
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
    assert "pull_request" in validate["if"] and shell_of(validate["steps"]) == ["make validate"]
    scripts = shell_of(drift["steps"])
    for script in scripts:
        bash_n(script)
    text = "\n".join(scripts)
    assert ".venv/bin/python -m pytest" in text and "make venv" in text
    assert 'cp -rL reports/latest "artifacts/$(readlink reports/latest)"' in text  # reports/<run-id>/
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
    for (mode, status), want in expected.items():
        script = step["run"].replace("${{ steps.drift.outputs.status }}", status)
        done = subprocess.run(["bash", "-c", script], env={"DRIFT_ON_DRIFT": mode, "PATH": "/usr/bin:/bin"},
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
