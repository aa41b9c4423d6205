"""Offline validation (`pytest -m manifest`, `make validate`): every manifest and the inventory, no host."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.lab import (
    DRIFT_MODULES,
    EXAMPLE_MODULES,
    INVENTORY,
    logged_commands,
    make,
    run_suite,
    sshd_log_count,
    write_inventory,
)

CONNECTIONS = "Connection from 127.0.0.1"


@pytest.fixture
def untouched(lab: Path, command_log: Path):
    """Asserts, after the test, that the lab host saw no connection and ran no command."""
    before = sshd_log_count(CONNECTIONS)
    yield
    assert sshd_log_count(CONNECTIONS) == before, "validation connected to the host"
    assert logged_commands() == []


def copy_modules(tmp_path: Path, source: Path = EXAMPLE_MODULES) -> Path:
    modules = tmp_path / "modules"
    shutil.copytree(source, modules)
    return modules


def test_the_example_and_the_lab_modules_validate_offline(tmp_path, untouched):
    for modules in (EXAMPLE_MODULES, DRIFT_MODULES):
        run = run_suite(tmp_path, "-m", "manifest", modules=modules)
        count = len(list(modules.glob("*/module.yaml")))
        assert run.rc == 0, run.output
        assert f"{count} passed" in run.output and f"valid: {count} modules" in run.output
        assert "no host was contacted, no plan written" in run.output
        assert not (tmp_path / "reports").exists() and run.plan is None
        assert "junit" not in run.output  # no stray temp junit either


def test_an_invalid_manifest_is_exit_2_naming_file_and_key(tmp_path, untouched):
    modules = copy_modules(tmp_path)
    path = modules / "honcho-redis" / "module.yaml"
    path.write_text(path.read_text().replace('["127.0.0.1:16379:6379"]', "[16379]"))
    run = run_suite(tmp_path, "-m", "manifest", modules=modules)
    assert run.rc == 2, run.output
    assert "honcho-redis/module.yaml: key 'desired.ports[0]': expected a port" in run.output
    assert "INVALID  MANIFEST_INVALID" in run.output and "invalid: 1 problem;" in run.output
    assert not (tmp_path / "reports").exists()


def test_a_compose_file_without_the_service_is_exit_2(tmp_path, untouched):
    modules = copy_modules(tmp_path)
    folder = modules / "homepage"
    (folder / "compose.yaml").write_text("services:\n  other:\n    image: lab/app:1\n")
    path = folder / "module.yaml"
    path.write_text(path.read_text().replace("  service: homepage\n", "  service: homepage\n  file: compose.yaml\n"))
    run = run_suite(tmp_path, "-m", "manifest", modules=modules)
    assert run.rc == 2, run.output
    assert "COMPOSE_CONFIG_INVALID" in run.output and "homepage/module.yaml: key 'compose.file'" in run.output
    assert "1 failed" in run.output


def test_a_host_missing_from_the_inventory_and_no_modules_are_exit_2(tmp_path, untouched):
    modules = copy_modules(tmp_path)
    path = modules / "homepage" / "module.yaml"
    path.write_text(path.read_text().replace("host: rs2000", "host: rs3000"))
    run = run_suite(tmp_path, "-m", "manifest", modules=modules)
    assert run.rc == 2 and "homepage/module.yaml: key 'host': expected a host of" in run.output
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_suite(tmp_path, "-m", "manifest", modules=empty)
    assert run.rc == 2 and f"no module in {empty} yet (`make import HOST=<name>` adopts what a host runs)" in run.output


@pytest.mark.parametrize("key", ["identity_file", "known_hosts"])
def test_missing_key_files_are_a_validation_warning_and_a_run_error(tmp_path, untouched, key):
    # A PR pipeline has no deploy key or known_hosts: validation passes and warns, naming the file; a drift
    # run stops there before any host is contacted.
    inventory = write_inventory(tmp_path / "hosts.yaml", **{key: str(tmp_path / "no-such-file")})
    validated = run_suite(tmp_path, "-m", "manifest", inventory=inventory)
    assert validated.rc == 0, validated.output
    warning = [line for line in validated.output.splitlines() if line.startswith("WARNING")]
    assert len(warning) == 1, validated.output
    assert f"hosts.rs2000.{key}" in warning[0] and f"{tmp_path}/no-such-file" in warning[0]
    assert "INVENTORY_INVALID" in warning[0] and "valid (1 warning above)" in validated.output
    run = run_suite(tmp_path, "-k", "homepage", inventory=inventory)
    assert run.rc == 2 and f"hosts.rs2000.{key}" in run.output
    assert run.plan["errors"][0]["code"] == "INVENTORY_INVALID"
    assert run.plan["hosts"] == [] or all(h["commands"] == [] for h in run.plan["hosts"])


def test_drift_runs_never_include_the_manifest_checks(lab, tmp_path):
    for args in (["-k", "honcho-redis"], ["-m", "not manifest", "-k", "honcho-redis"]):
        run = run_suite(tmp_path, *args, "--collect-only", "-q")
        assert run.rc == 0 and "test_manifest" not in run.output and "test_image[honcho-redis]" in run.output
    run = run_suite(tmp_path, "-m", "manifest or tier0", "--collect-only", "-q")  # tier0's drift checks
    assert run.rc == 0 and "test_manifest" not in run.output and "test_image[honcho-redis]" in run.output
    run = run_suite(tmp_path, "-m", "manifest and tier0", "--collect-only", "-q")
    assert run.rc == 0 and "test_manifest[honcho-redis]" in run.output and "test_manifest[homepage]" not in run.output
    assert "test_image" not in run.output


def test_make_validate(tmp_path, untouched):
    done = make("validate", f"INVENTORY={INVENTORY}", f"MODULES_DIR={EXAMPLE_MODULES}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout
    broken = copy_modules(tmp_path)
    (broken / "homepage" / "module.yaml").write_text("schema_version: 2\nname: homepage\n")
    done = make("validate", f"MODULES_DIR={broken}", f"INVENTORY={INVENTORY}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "homepage/module.yaml: key 'host': is required" in done.stdout
