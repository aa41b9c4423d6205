"""make import: adopt a running host, read-only, without ever overwriting a module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import labctl
import yaml

from driftcheck.allowlist import check_argv
from tests.support.lab import REPO, logged_commands, make, run_suite

REMOVED = ("homepage", "traefik", "honcho-redis")


def make_import(*args: str) -> subprocess.CompletedProcess:
    return make("import", *args)


def compose_services_on_the_lab() -> set[tuple[str, str]]:
    out = labctl.docker("ps", "--all", "--format",
                        '{{.Label "com.docker.compose.project"}}/{{.Label "com.docker.compose.service"}}').stdout
    return {tuple(line.split("/")) for line in out.split() if line != "/"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_import_adopts_the_undeclared_services_and_they_are_in_sync(lab, command_log, tmp_path):
    modules = tmp_path / "modules"
    shutil.copytree(REPO / "modules", modules)
    for name in REMOVED:
        shutil.rmtree(modules / name)
    kept = snapshot(modules)
    done = make_import("HOST=rs2000", f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 0, done.stdout + done.stderr
    # read-only, through the allowlist: one docker ps, one docker inspect, nothing else
    sent = logged_commands()
    assert [argv[:2] for argv in sent] == [["ps", "--all"], ["inspect", "--type"]]
    for argv in sent:
        check_argv(["docker", *argv])
    # every compose service of the host is now declared, by the kept modules or a new one
    new = {p.parent.name: yaml.safe_load(p.read_text()) for p in modules.glob("*/module.yaml")
           if str(p.relative_to(modules)) not in kept}
    assert set(REMOVED) <= set(new)
    declared = {(m["compose"]["project"], m["compose"]["service"]) for m in new.values()} | {
        ("home-platform", yaml.safe_load((modules / n / "module.yaml").read_text())["compose"]["service"])
        for n in ("honcho-postgres", "uptime-kuma", "nightly-backup")}
    assert compose_services_on_the_lab() <= declared
    after = snapshot(modules)
    assert {k: after[k] for k in kept} == kept  # the kept modules are untouched
    assert new["traefik"]["desired"]["health"] == "healthy"
    assert new["honcho-redis"]["desired"]["ports"] == ["127.0.0.1:16379:6379/tcp"]
    assert "wrote    " in done.stdout and "commands sent: 2" in done.stdout
    # what it wrote is what the host runs: the adopted modules are in sync
    run = run_suite(tmp_path, "-k", " or ".join(REMOVED), modules=modules)
    assert run.rc == 0, run.output
    assert set(run.statuses()) == set(REMOVED) and set(run.statuses().values()) == {"in_sync"}


def test_import_never_overwrites_and_a_second_run_adds_nothing(lab, tmp_path):
    modules = tmp_path / "modules"
    shutil.copytree(REPO / "modules", modules)
    shutil.rmtree(modules / "traefik")
    # a module named like the service, declaring something else: its name is taken
    (modules / "traefik").mkdir()
    (modules / "traefik" / "module.yaml").write_text(
        "schema_version: 2\nname: traefik\nhost: rs2000\ncompose:\n  project: other\n  service: proxy\n"
        "image:\n  ref: traefik:v3.1\n")
    assert make_import("HOST=rs2000", f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}").returncode == 0
    assert "project: other" in (modules / "traefik" / "module.yaml").read_text()
    adopted = yaml.safe_load((modules / "home-platform-traefik" / "module.yaml").read_text())
    assert adopted["compose"] == {"project": "home-platform", "service": "traefik"}
    before = snapshot(modules)
    again = make_import("HOST=rs2000", f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}")
    assert again.returncode == 0 and "0 module(s) written" in again.stdout
    assert snapshot(modules) == before


def test_import_errors_are_exit_2_and_write_nothing(lab, tmp_path, mute_server):
    modules = tmp_path / "modules"
    shutil.copytree(REPO / "modules", modules)
    before = snapshot(modules)
    done = make_import(f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "make import HOST=<inventory name>" in done.stdout + done.stderr
    done = make_import("HOST=nowhere", f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "HOST=nowhere is not a host of" in done.stdout
    inventory = yaml.safe_load(labctl.INVENTORY.read_text())
    inventory["hosts"]["rs2000"].update(connection=f"paramiko://driftlab@127.0.0.1:{mute_server(None)}", timeout=1)
    silent = tmp_path / "silent.yaml"
    silent.write_text(yaml.safe_dump(inventory))
    done = make_import("HOST=rs2000", f"INVENTORY={silent}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "ERROR HOST_UNREACHABLE" in done.stdout
    (modules / "homepage" / "module.yaml").write_text("schema_version: 2\n")
    done = make_import("HOST=rs2000", f"INVENTORY={labctl.INVENTORY}", f"MODULES_DIR={modules}")
    assert done.returncode == 2 and "fix the modules first" in done.stdout
    before["homepage/module.yaml"] = b"schema_version: 2\n"
    assert snapshot(modules) == before


def test_the_readme_quick_start_from_an_empty_repo_to_a_checked_host(lab, tmp_path):
    """Steps 4 to 7 of the README's quick start, with the lab's sshd as the remote host."""
    platform = tmp_path / "platform"
    (platform / "modules").mkdir(parents=True)
    shutil.copy(labctl.INVENTORY, platform / "hosts.yaml")
    inventory, modules = platform / "hosts.yaml", platform / "modules"
    done = make_import("HOST=rs2000", f"INVENTORY={inventory}", f"MODULES_DIR={modules}")
    assert done.returncode == 0, done.stdout
    # keep what the example platform runs (the lab host also carries the tests' own projects)
    for path in modules.glob("*/module.yaml"):
        if yaml.safe_load(path.read_text())["compose"]["project"] != "home-platform":
            shutil.rmtree(path.parent)
    adopted = sorted(p.name for p in modules.iterdir())
    assert len(adopted) >= 6 and "traefik" in adopted
    validate = make("validate", f"INVENTORY={inventory}", f"MODULES_DIR={modules}")
    assert validate.returncode == 0, validate.stdout
    run = run_suite(tmp_path, inventory=inventory, modules=modules)
    assert run.rc == 0, run.output
    assert sorted(run.statuses()) == adopted and set(run.statuses().values()) == {"in_sync"}
    assert (run.run_dir / "index.html").is_file()
