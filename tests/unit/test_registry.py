"""The check and code registries, and everything derived from them, agree with each other."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from driftcheck import codes, docs, errors, registry
from driftcheck.codes import CODES, Code, Kind
from driftcheck.registry import BY_NAME, CHECKS, STRICT_CODES, checks_for, checks_reporting
from tests.support.unit import make_module

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "driftcheck"


def test_the_schema_lists_exactly_the_checks_a_waiver_may_name() -> None:
    schema = json.loads((REPO / "schema" / "module.schema.json").read_text())
    enum = schema["properties"]["ignore"]["items"]["properties"]["check"]["enum"]
    assert enum == list(registry.waivable())


def test_the_reference_code_table_is_the_generated_one() -> None:
    assert docs.REFERENCE == REPO / "docs" / "manifest.md"
    reference = docs.REFERENCE.read_text()
    assert docs.with_table(reference) == reference, "run: .venv/bin/python -m driftcheck.docs"
    for code in CODES:
        assert f"| `{code}` |" in reference


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_every_code_is_spelled_once_in_codes_py() -> None:
    spelled = [(f"{path.relative_to(REPO)}:{line}", text) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "codes.py" for line, text in _string_literals(path) if text in CODES]
    assert spelled == []


def test_codes_cannot_be_defined_twice() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        Code("NOT_RUNNING", Kind.DRIFT, "again")


def test_checks_report_drift_and_warnings_only() -> None:
    for check in CHECKS:
        assert check.reports, check.name
        assert all(code.kind in (Kind.DRIFT, Kind.WARNING) for code in check.reports), check.name
        assert set(check.strict) <= set(check.reports)
    assert STRICT_CODES == {codes.IMAGE_DIGEST_NOT_VERIFIED, codes.IMAGE_NOT_OBSERVED}


def test_every_drift_code_has_a_reporting_check() -> None:
    for code in codes.of_kind(Kind.DRIFT):
        assert checks_reporting(code), code


def test_the_replicas_stale_and_config_hash_codes_map_to_their_checks() -> None:
    # --compare-with resolves a change only when one of these checks ran again.
    assert checks_reporting(codes.REPLICAS_MISMATCH) == {"replicas"}
    assert checks_reporting(codes.IMAGE_STALE) == {"image"}
    assert checks_reporting(codes.CONFIG_HASH_MISMATCH) == {"config_hash"}
    assert checks_reporting(codes.CONTAINER_MISSING) == set(BY_NAME)


def test_each_check_has_exactly_one_test_in_its_file_and_each_test_a_check() -> None:
    found: dict[str, str] = {}
    for path in sorted((REPO / "checks").glob("test_*.py")):
        if path.name == "test_manifest.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                assert node.name.removeprefix("test_") not in found, node.name
                found[node.name.removeprefix("test_")] = path.name
                # each test is a one-line call into the registry (after its docstring)
                assert len(node.body) == 2 and ast.unparse(node.body[1]) == "drift_check()", node.name
    assert found == {c.name: c.file for c in CHECKS}


def test_which_checks_a_module_gets_follows_its_keys() -> None:
    core = ("exists", "labels", "state", "image")
    assert checks_for(make_module()) == core
    assert checks_for(make_module(desired={"ports": []})) == (*core, "ports")
    assert checks_for(make_module(desired={"env_digests": {"TZ": "sha256:" + "0" * 64}})) == (*core, "env")
    assert checks_for(make_module(desired={"state": "absent"}, image=None)) == ("exists",)
    assert make_module(desired={"replicas": 2}).checks == (*core, "replicas")


def test_the_exception_tree_docstring_names_every_exception_class() -> None:
    classes = {name for path in PACKAGE.rglob("*.py") for name, obj in
               inspect.getmembers(__import__(f"driftcheck.{'.'.join(path.relative_to(PACKAGE).with_suffix('').parts)}",
                                             fromlist=["_"]), inspect.isclass)
               if issubclass(obj, errors.DriftError) and obj.__module__.startswith("driftcheck")}
    assert classes
    for name in classes:
        assert f"{name}" in (errors.__doc__ or ""), name
