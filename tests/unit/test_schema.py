"""schema/: the JSON Schemas editors and pre-commit use are the ones the loader validates with."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from driftcheck import imageref, inventory, manifest
from driftcheck.errors import ManifestError
from driftcheck.schema import SCHEMA_DIR, jsonable, validate

ROOT = Path(__file__).resolve().parents[2]
MODULE_SCHEMA = json.loads((SCHEMA_DIR / "module.schema.json").read_text())
HOSTS_SCHEMA = json.loads((SCHEMA_DIR / "hosts.schema.json").read_text())
EVERY_MODULE = sorted([*ROOT.glob("modules/*/module.yaml"), *ROOT.glob("fixtures/lab/modules/*/module.yaml")])


@pytest.mark.parametrize("schema", [MODULE_SCHEMA, HOSTS_SCHEMA], ids=["module", "hosts"])
def test_the_schemas_are_valid_draft_2020_12(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_example_and_fixture_module_is_valid_under_the_schema_alone():
    assert len(EVERY_MODULE) > 20
    for path in EVERY_MODULE:
        data = jsonable(yaml.safe_load(path.read_text()), str(path), "MANIFEST_INVALID")
        errors = list(jsonschema.Draft202012Validator(MODULE_SCHEMA).iter_errors(data))
        assert errors == [], path


def test_the_example_modules_point_editors_at_the_schema():
    for path in ROOT.glob("modules/*/module.yaml"):
        assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../../schema/module.schema.json"
        assert (path.parent / "../../schema/module.schema.json").resolve().is_file()
    assert (ROOT / "hosts.yaml").read_text().startswith("# yaml-language-server: $schema=schema/hosts.schema.json\n")
    jsonschema.validate(yaml.safe_load((ROOT / "hosts.yaml").read_text()), HOSTS_SCHEMA)


def _pattern(*path: str) -> str:
    node = MODULE_SCHEMA
    for part in path:
        node = node[part]
    return str(node["pattern"])


@pytest.mark.parametrize(("path", "regex"), [
    (("properties", "name"), manifest.NAME_RE),
    (("properties", "compose", "properties", "project"), manifest.PROJECT_RE),
    (("properties", "compose", "properties", "service"), manifest.SERVICE_RE),
    (("properties", "tags", "items"), manifest.TAG_RE),
    (("properties", "desired", "properties", "restart_policy"), manifest.RESTART_POLICY_RE),
    (("properties", "image", "properties", "digest"), imageref.DIGEST_RE),
], ids=lambda v: v[-1] if isinstance(v, tuple) else "")
def test_schema_and_loader_use_the_same_patterns(path, regex):
    assert _pattern(*path) == regex.pattern


def test_the_image_ref_pattern_is_the_loaders_without_group_names():
    assert _pattern("properties", "image", "properties", "ref") == re.sub(r"\(\?P<\w+>", "(", imageref.REF_RE.pattern)


def test_reserved_words_agree():
    assert set(MODULE_SCHEMA["properties"]["name"]["not"]["enum"]) == manifest.RESERVED_NAMES
    assert set(MODULE_SCHEMA["properties"]["tags"]["items"]["not"]["enum"]) == manifest.RESERVED_TAGS
    checks = set(MODULE_SCHEMA["properties"]["ignore"]["items"]["properties"]["check"]["enum"])
    assert checks == {*manifest.CORE_CHECKS, *manifest.OPTIONAL_CHECKS}
    policies = HOSTS_SCHEMA["properties"]["hosts"]["additionalProperties"]["properties"]["host_key_policy"]["enum"]
    assert tuple(policies) == inventory.POLICIES


VALID = {"schema_version": 2, "name": "honcho-redis", "host": "rs2000",
         "compose": {"project": "home-platform", "service": "honcho-redis"}, "image": {"ref": "redis:7.2-alpine"}}


# (change to VALID) -> (key, words of the schema's x-expected in the message)
CASES = [
    ({"colour": "red"}, "colour", "unknown key; expected one of: compose, description"),
    ({"image": None}, "image", "expected a mapping with 'ref' (required unless desired.state is absent)"),
    ({"desired": {"ports": [6379]}}, "desired.ports[0]", "(quote it: YAML reads 22:22 as a number), got 6379"),
    ({"ignore": [{"check": "nope", "reason": "x"}]}, "ignore[0].check", "a check name as in the test ids"),
    ({"compose": {"project": "home-platform"}}, "compose.service", "is required; expected a compose service name"),
    ({"schema_version": "2"}, "schema_version", "expected the integer 2, got '2'"),
    ({"desired": {"env_digests": {"1X": "sha256:" + "a" * 64}}}, "desired.env_digests.1X", "a variable name"),
    ({"name": "and"}, "name", "and, or, not are reserved"),
]


@pytest.mark.parametrize(("change", "key", "words"), CASES, ids=[c[1] for c in CASES])
def test_the_loaders_message_is_the_schemas(tmp_path, change, key, words):
    path = tmp_path / "honcho-redis" / "module.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({**VALID, **change}))
    with pytest.raises(ManifestError) as caught:
        manifest.load_module_file(path, "modules/honcho-redis/module.yaml")
    assert caught.value.path == "modules/honcho-redis/module.yaml"
    assert caught.value.key == key and words in caught.value.problem
    # and an editor, or check-jsonschema, refuses the same document
    assert not jsonschema.Draft202012Validator(MODULE_SCHEMA).is_valid(jsonable({**VALID, **change}, "m", "X"))


def test_a_yaml_date_is_a_date_string_to_the_schema(tmp_path):
    text = yaml.safe_dump(VALID) + "ignore:\n  - check: image\n    reason: PLAT-1\n    until: 2026-12-31\n"
    data = yaml.safe_load(text)
    validate("module", data, "m")  # a YAML date passes as YYYY-MM-DD
    with pytest.raises(ManifestError, match="expected a date YYYY-MM-DD, got 'Dec 31'"):
        validate("module", {**VALID, "ignore": [{"check": "image", "reason": "r", "until": "Dec 31"}]}, "m")


@pytest.mark.parametrize(("hosts", "key", "words"), [
    ({"a b": {"connection": "local://"}}, "hosts.a b", "a host name matching"),
    ({"a": {"connection": "ssh://x"}}, "hosts.a.connection", "paramiko://[user@]host[:port] or local://"),
    ({"a": {"connection": "local://", "timeout": 0}}, "hosts.a.timeout", "between 0 and 600, got 0"),
    ({"a": {}}, "hosts.a.connection", "is required"),
])
def test_inventory_messages_come_from_the_hosts_schema(tmp_path, hosts, key, words):
    with pytest.raises(ManifestError) as caught:
        inventory.parse_inventory({"hosts": hosts}, "hosts.yaml", tmp_path)
    assert caught.value.code == "INVENTORY_INVALID" and caught.value.key == key and words in caught.value.problem
