"""make import: adopt a running host, read-only, without ever overwriting a module; what it writes guards the host."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import labctl
import pytest
import yaml

from driftcheck.allowlist import check_argv
from tests.support.lab import EXAMPLE_MODULES, INVENTORY, lab_connection, logged_commands, make, run_suite

REMOVED = ("homepage", "traefik", "honcho-redis")
PROJECT = labctl.PROJECT  # home-platform: the example platform the lab runs
EXTRA_NETWORK = "import-test-extra"


def make_import(modules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return make("import", "HOST=rs2000", f"INVENTORY={INVENTORY}", f"MODULES_DIR={modules}", *args)


def services_on_the_lab() -> set[tuple[str, str]]:
    """Every compose (project, service) on the lab host with a container that is not a one-off."""
    out = labctl.docker("ps", "--all", "--format", '{{.Label "com.docker.compose.project"}}/'
                        '{{.Label "com.docker.compose.service"}}/{{.Label "com.docker.compose.oneoff"}}').stdout
    rows = [line.split("/") for line in out.split()]
    return {(project, service) for project, service, oneoff in rows if project and service and oneoff != "True"}


def expected_name(service: str) -> str:
    """The bare service name, or <project>-<service> when another project on the host has that service."""
    others = {p for p, s in services_on_the_lab() if s == service} - {PROJECT}
    return f"{PROJECT}-{service}" if others else service


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def adopted(modules: Path, kept: dict[str, bytes] | None = None) -> dict[str, dict]:
    """The modules import wrote, by compose service."""
    found = {}
    for path in modules.glob("*/module.yaml"):
        if kept is None or str(path.relative_to(modules)) not in kept:
            data = yaml.safe_load(path.read_text())
            assert data["name"] == path.parent.name
            found[data["compose"]["service"]] = data
    return found


def test_import_adopts_the_undeclared_services_of_a_project_and_they_are_in_sync(lab, command_log, tmp_path):
    modules = tmp_path / "modules"
    shutil.copytree(EXAMPLE_MODULES, modules)
    for name in REMOVED:
        shutil.rmtree(modules / name)
    kept = snapshot(modules)
    done = make_import(modules, f"PROJECT={PROJECT}")
    assert done.returncode == 0, done.stdout + done.stderr
    # read-only, through the allowlist: one docker ps, one docker inspect, nothing else
    sent = logged_commands()
    assert [argv[:2] for argv in sent] == [["ps", "--all"], ["inspect", "--type"]]
    for argv in sent:
        check_argv(["docker", *argv])
    # exactly the project's undeclared services, each under its deterministic name; nothing of other projects
    new = adopted(modules, kept)
    assert set(new) == set(REMOVED)
    assert {s: m["compose"]["project"] for s, m in new.items()} == dict.fromkeys(REMOVED, PROJECT)
    for service, data in new.items():
        assert data["name"] == expected_name(service)
        if data["name"] != service:
            assert f"         named {data['name']}, not {service}: {service} would be ambiguous" in done.stdout
    after = snapshot(modules)
    assert {k: after[k] for k in kept} == kept  # the kept modules are untouched
    # everything a check compares is declared, an empty list where the host shows none
    assert new["honcho-redis"]["desired"] == {
        "state": "running", "replicas": 1, "restart_policy": "unless-stopped", "ports": ["127.0.0.1:16379:6379/tcp"],
        "networks": [f"{PROJECT}_default"], "env_keys": ["REDIS_PASSWORD"], "env_keys_complete": True,
        "mounts": [f"{PROJECT}_redis-data:/data"]}
    assert new["traefik"]["desired"] == {
        "state": "running", "replicas": 1, "restart_policy": "no", "health": "healthy", "ports": [],
        "networks": [f"{PROJECT}_default"], "env_keys": [], "env_keys_complete": True, "mounts": []}
    assert "env_digests" not in new["honcho-redis"]["desired"]  # only with ENV_DIGESTS=1
    assert labctl.lab_secret() not in done.stdout + str(after)
    # the compose file is copied where it gives the container's config hash here; honcho-redis's
    # needs ${LAB_SECRET} from the operator's shell, so it is not set, and the output says why
    assert new["traefik"]["compose"]["file"] == "compose.yaml" and "file" not in new["honcho-redis"]["compose"]
    assert f"compose.file not set: a copy of {labctl.COMPOSE_FILE} does not give the container's config hash " \
        "here" in done.stdout
    assert "3 module(s) written, 3 compose service(s) already declared, on host rs2000 (projects home-platform)" \
        in done.stdout and "commands sent: 2" in done.stdout
    # what it wrote is what the host runs: the adopted modules are in sync
    run = run_suite(tmp_path, "-k", " or ".join(m["name"] for m in new.values()), modules=modules)
    assert run.rc == 0, run.output
    assert sorted(run.statuses()) == sorted(m["name"] for m in new.values())
    assert set(run.statuses().values()) == {"in_sync"}


@pytest.fixture
def restored_platform(lab) -> Iterator[None]:
    """The example platform back at its baseline after a test changed it."""
    yield
    labctl.docker("rm", "--force", "import-test-oneoff", check=False)
    labctl.docker("update", "--restart=no", f"{PROJECT}-homepage-1", check=False)
    labctl.docker("network", "disconnect", EXTRA_NETWORK, f"{PROJECT}-traefik-1", check=False)
    labctl.docker("network", "rm", EXTRA_NETWORK, check=False)
    labctl.converge()  # scales uptime-kuma back to 1


def test_imported_modules_guard_the_host_without_hand_edits(restored_platform, tmp_path):
    modules = tmp_path / "modules"
    # a one-off run of a service (docker compose run, kept): never a replica, never a module
    labctl.compose("run", "--detach", "--name", "import-test-oneoff", "uptime-kuma")
    done = make_import(modules, f"PROJECT={PROJECT}", "ENV_DIGESTS=1")
    assert done.returncode == 0, done.stdout + done.stderr
    new = adopted(modules)
    assert set(new) == {"homepage", "honcho-postgres", "honcho-redis", "nightly-backup", "traefik", "uptime-kuma"}
    assert new["uptime-kuma"]["desired"]["replicas"] == 1
    assert new["nightly-backup"]["desired"]["state"] == "stopped"
    assert set(new["honcho-postgres"]["desired"]["env_digests"]) == {"POSTGRES_PASSWORD", "TZ"}
    names = {service: data["name"] for service, data in new.items()}
    run = run_suite(tmp_path / "before", modules=modules)
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    # the drift operators cause, each caught on exactly its module with exactly its code
    labctl.compose("up", "--detach", "--scale", "uptime-kuma=2", "uptime-kuma")
    labctl.docker("update", "--restart=always", f"{PROJECT}-homepage-1")
    labctl.docker("network", "create", EXTRA_NETWORK)
    labctl.docker("network", "connect", EXTRA_NETWORK, f"{PROJECT}-traefik-1")
    run = run_suite(tmp_path / "after", modules=modules)
    assert run.rc == 1, run.output
    assert {m: c for m, c in run.codes().items() if c} == {
        names["uptime-kuma"]: ["REPLICAS_MISMATCH"], names["homepage"]: ["RESTART_POLICY_MISMATCH"],
        names["traefik"]: ["NETWORKS_MISMATCH"]}


def test_compose_files_are_copied_where_they_give_the_hash_and_are_in_sync_without_hand_edits(lab, tmp_path):
    modules = tmp_path / "modules"
    done = make_import(modules, f"PROJECT={PROJECT}")
    assert done.returncode == 0, done.stdout + done.stderr
    new = adopted(modules)
    assert len(new) == 6
    # the two services interpolating ${LAB_SECRET} (the operator's shell) get no compose.file
    needs_shell = {"honcho-redis", "honcho-postgres"}
    assert {n for n, d in new.items() if "file" not in d["compose"]} == needs_shell
    for name, data in new.items():
        if name not in needs_shell:
            assert (modules / data["name"] / "compose.yaml").read_bytes() == labctl.COMPOSE_FILE.read_bytes()
    assert done.stdout.count(f"         compose.file: compose.yaml, a copy of {labctl.COMPOSE_FILE}") == 4
    run = run_suite(tmp_path, modules=modules)
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}
    assert "CONFIG_HASH_NOT_COMPARABLE" not in str(run.plan["warnings"])
    # with the value in the module's .env, the copy gives the hash and is set too
    again = tmp_path / "again"
    done = make_import(again, f"PROJECT={PROJECT}", "COMPOSE_FILES=no")
    assert "compose.file not set (COMPOSE_FILES=no)" in done.stdout and not list(again.glob("*/compose.yaml"))


def test_import_never_overwrites_and_a_second_run_adds_nothing(lab, tmp_path):
    modules = tmp_path / "modules"
    shutil.copytree(EXAMPLE_MODULES, modules)
    shutil.rmtree(modules / "traefik")
    # a module named like the service, declaring something else: its name is taken
    (modules / "traefik").mkdir()
    (modules / "traefik" / "module.yaml").write_text(
        "schema_version: 2\nname: traefik\nhost: rs2000\ncompose:\n  project: other\n  service: proxy\n"
        "image:\n  ref: traefik:v3.1\n")
    done = make_import(modules, f"PROJECT={PROJECT}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "project: other" in (modules / "traefik" / "module.yaml").read_text()
    adopted_now = yaml.safe_load((modules / "home-platform-traefik" / "module.yaml").read_text())
    assert adopted_now["compose"] == {"project": "home-platform", "service": "traefik", "file": "compose.yaml"}
    assert "         named home-platform-traefik, not traefik: " in done.stdout
    before = snapshot(modules)
    again = make_import(modules, f"PROJECT={PROJECT}")
    assert again.returncode == 0 and "0 module(s) written" in again.stdout
    assert snapshot(modules) == before
    assert not list(modules.glob(".import-*"))


def test_import_errors_are_exit_2_and_write_nothing(lab, tmp_path, mute_server):
    modules = tmp_path / "modules"
    shutil.copytree(EXAMPLE_MODULES, modules)
    before = snapshot(modules)
    done = make("import", f"INVENTORY={INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "make import HOST=<inventory name>" in done.stdout + done.stderr
    done = make("import", "HOST=nowhere", f"INVENTORY={INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "HOST=nowhere is not a host of" in done.stdout
    done = make_import(modules, "PROJECT=no-such-project")
    assert done.returncode == 2 and "PROJECT=no-such-project: no such compose project on host rs2000" in done.stdout
    done = make_import(modules, "ENV_DIGESTS=yes")
    assert done.returncode == 2 and "ENV_DIGESTS=yes: expected 1 or 0" in done.stderr
    inventory = yaml.safe_load(INVENTORY.read_text())
    inventory["hosts"]["rs2000"].update(connection=lab_connection(mute_server(None)), timeout=1)
    silent = tmp_path / "silent.yaml"
    silent.write_text(yaml.safe_dump(inventory))
    done = make("import", "HOST=rs2000", f"INVENTORY={silent}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "ERROR HOST_UNREACHABLE" in done.stdout
    (modules / "homepage" / "module.yaml").write_text("schema_version: 2\n")
    done = make_import(modules)
    assert done.returncode == 2 and "fix the modules first" in done.stdout
    before["homepage/module.yaml"] = b"schema_version: 2\n"
    assert snapshot(modules) == before


def test_the_readme_quick_start_from_an_empty_repo_to_a_checked_host(lab, tmp_path):
    """Steps 4 to 7 of the README's quick start, with the lab's sshd as the remote host."""
    platform = tmp_path / "platform"
    (platform / "modules").mkdir(parents=True)
    shutil.copy(INVENTORY, platform / "hosts.yaml")
    inventory, modules = platform / "hosts.yaml", platform / "modules"
    done = make("import", "HOST=rs2000", f"INVENTORY={inventory}", f"MODULES_DIR={modules}")
    assert done.returncode == 0, done.stdout
    # keep what the example platform runs (the lab host also carries the tests' own projects)
    for path in modules.glob("*/module.yaml"):
        if yaml.safe_load(path.read_text())["compose"]["project"] != PROJECT:
            shutil.rmtree(path.parent)
    names = sorted(p.name for p in modules.iterdir())
    assert names == sorted(expected_name(s) for p, s in services_on_the_lab() if p == PROJECT)
    validate = make("validate", f"INVENTORY={inventory}", f"MODULES_DIR={modules}")
    assert validate.returncode == 0, validate.stdout
    run = run_suite(tmp_path, inventory=inventory, modules=modules)
    assert run.rc == 0, run.output
    assert sorted(run.statuses()) == names and set(run.statuses().values()) == {"in_sync"}
    assert (run.run_dir / "index.html").is_file()
