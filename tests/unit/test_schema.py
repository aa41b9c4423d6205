"""schema/: the JSON Schemas editors and pre-commit use are the ones the loader validates with."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftcheck import desired, imageref, inventory, manifest, registry
from driftcheck.errors import ManifestError
from driftcheck.schema import SCHEMA_DIR, jsonable, validate

ROOT = Path(__file__).resolve().parents[2]
MODULE_SCHEMA = json.loads((SCHEMA_DIR / "module.schema.json").read_text())
HOSTS_SCHEMA = json.loads((SCHEMA_DIR / "hosts.schema.json").read_text())
EXAMPLE_MODULES = sorted(ROOT.glob("examples/modules/*/module.yaml"))
EVERY_MODULE = sorted([*EXAMPLE_MODULES, *ROOT.glob("fixtures/lab/modules/*/module.yaml")])


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


def test_the_example_modules_and_inventories_point_editors_at_the_schema():
    assert len(EXAMPLE_MODULES) == 7
    for path in EXAMPLE_MODULES:
        assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../../../schema/module.schema.json"
        assert (path.parent / "../../../schema/module.schema.json").resolve().is_file()
    for hosts in (ROOT / "hosts.yaml", ROOT / "examples" / "hosts.yaml"):
        schema = hosts.read_text().splitlines()[0].removeprefix("# yaml-language-server: $schema=")
        assert (hosts.parent / schema).resolve() == SCHEMA_DIR / "hosts.schema.json", hosts
        jsonschema.validate(yaml.safe_load(hosts.read_text()), HOSTS_SCHEMA)


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
    (("properties", "desired", "properties", "restart_policy"), desired.RESTART_POLICY_RE),
    (("properties", "image", "properties", "digest"), imageref.DIGEST_RE),
], ids=lambda v: v[-1] if isinstance(v, tuple) else "")
def test_schema_and_loader_use_the_same_patterns(path, regex):
    assert _pattern(*path) == regex.pattern


def test_the_image_ref_pattern_is_the_loaders_without_group_names():
    assert _pattern("properties", "image", "properties", "ref") == re.sub(r"\(\?P<\w+>", "(", imageref.REF_RE.pattern)


@pytest.mark.parametrize(("path", "regex"), [
    (("properties", "desired", "properties", "ports", "items"), desired.PORT_RE),
    (("properties", "desired", "properties", "mounts", "items"), desired.MOUNT_RE),
    (("properties", "desired", "properties", "env_keys", "items"), desired.ENV_NAME_RE),
    (("properties", "desired", "properties", "env_digests", "propertyNames"), desired.ENV_NAME_RE),
], ids=["ports", "mounts", "env_keys", "env_digests"])
def test_the_port_mount_and_env_name_patterns_are_the_loaders(path, regex):
    assert _pattern(*path) == re.sub(r"\(\?P<\w+>", "(", regex.pattern)


def test_reserved_words_agree():
    assert set(MODULE_SCHEMA["properties"]["name"]["not"]["enum"]) == manifest.RESERVED_NAMES
    assert set(MODULE_SCHEMA["properties"]["tags"]["items"]["not"]["enum"]) == manifest.RESERVED_TAGS
    checks = set(MODULE_SCHEMA["properties"]["ignore"]["items"]["properties"]["check"]["enum"])
    assert checks == set(registry.waivable())
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
    ({"desired": {"env_digests": {"A=B": "sha256:" + "a" * 64}}}, "desired.env_digests.A=B", "no '=' and no control"),
    ({"desired": {"env_keys": ["A\tB"]}}, "desired.env_keys[0]", "a variable name (1 to 256 characters"),
    ({"desired": {"ports": [":80"]}}, "desired.ports[0]", "[[host_ip:][host_port]:]container_port[/proto]"),
    ({"desired": {"mounts": ["secret:a/b"]}}, "desired.mounts[0]", "or 'secret:<name>' (a Compose secret)"),
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
    ({"a": {"connection": "telnet://x"}}, "hosts.a.connection",
     "paramiko://[user@]host[:port], ssh://[user@]host[:port] or local://"),
    ({"a": {"connection": "local://", "timeout": 0}}, "hosts.a.timeout", "between 0 and 600, got 0"),
    ({"a": {}}, "hosts.a.connection", "is required"),
])
def test_inventory_messages_come_from_the_hosts_schema(tmp_path, hosts, key, words):
    with pytest.raises(ManifestError) as caught:
        inventory.parse_inventory({"hosts": hosts}, "hosts.yaml", tmp_path)
    assert caught.value.code == "INVENTORY_INVALID" and caught.value.key == key and words in caught.value.problem


def test_the_pre_commit_hooks_check_the_repos_files_against_these_schemas():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    [repo] = config["repos"]
    assert repo["repo"] == "https://github.com/python-jsonschema/check-jsonschema" and repo["rev"]
    by_schema = {hook["args"][1]: re.compile(hook["files"]) for hook in repo["hooks"]}
    assert all(hook["id"] == "check-jsonschema" and hook["args"][0] == "--schemafile" for hook in repo["hooks"])
    assert set(by_schema) == {"schema/module.schema.json", "schema/hosts.schema.json"}
    modules = [str(p.relative_to(ROOT)) for p in EXAMPLE_MODULES]
    assert modules and all(by_schema["schema/module.schema.json"].search(p) for p in modules)
    assert by_schema["schema/module.schema.json"].search("modules/mine/module.yaml")  # the user's own
    assert by_schema["schema/hosts.schema.json"].search("hosts.yaml")
    assert by_schema["schema/hosts.schema.json"].search("examples/hosts.yaml")
    assert not by_schema["schema/module.schema.json"].search("fixtures/lab/modules/x/module.yaml")


# A manifest using every key, and values to put anywhere in it: the property below mutates it.
RICH = {
    "schema_version": 2, "name": "honcho-redis", "description": "Redis", "host": "rs2000", "tags": ["tier0"],
    "compose": {"project": "home-platform", "service": "honcho-redis", "container_name": None, "file": None},
    "desired": {"state": "running", "replicas": 1, "restart_policy": "on-failure:3",
                "ports": ["127.0.0.1:6379:6379"], "env_keys": ["TZ"], "env_digests": {"TZ": "sha256:" + "a" * 64},
                "mounts": ["home-platform_redis-data:/data"], "networks": ["home-platform_default"],
                "health": "healthy"},
    "image": {"ref": "redis:7.2-alpine", "digest": "sha256:" + "b" * 64, "digest_pinned_in_compose": False},
    "ignore": [{"check": "ports", "reason": "PLAT-142", "until": "2026-12-31"}],
}
VALUES = [None, 0, 1, 2, -1, 1001, 1.0, 2.0, 1.5, True, False, "", " ", "x", "X", "a b", "a\nb", "and", "manifest",
          "skip", "running", "stopped", "absent", "healthy", "tier0", "honcho-redis", "home-platform", "rs2000",
          "redis:7.2-alpine", "REDIS:7", "redis@sha256:" + "c" * 64, "127.0.0.1:6379:6379", "6379", "70000:1",
          "[::1]:80:80/udp", "on-failure", "on-failure:", "on-failure:3", "sha256:" + "a" * 64,
          "sha256:" + "A" * 64, "2026-12-31", "2026-13-01", "Dec 31", "ports", "image", "exists", "config_hash",
          "nope", "/abs", "../x", "compose.yaml", "vol:/data", "vol:/data:ro", "/srv:/data:rw", "1X", "TZ",
          "80", "80/udp", "127.0.0.1::80", "0.0.0.0::80/tcp", ":80", "discovery.type", "A=B", "x\n", "a\tb",
          "x" * 257, "secret:db", "secret:a/b", "/app/node_modules", "/app/node_modules:ro", "a" * 64 + ":/cache",
          "on-failure:007", {"discovery.type": "sha256:" + "a" * 64}, {"A=B": "sha256:" + "a" * 64},
          [], {}, ["x"], [1], [None], {"k": "v"}, {"TZ": "x"}]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(doc: Any, path: tuple, op: str, value: Any) -> None:
    *parents, last = path
    node = doc
    for part in parents:
        node = node[part]
    if op == "delete":
        del node[last]
    elif op == "add" and isinstance(node, dict):
        node[f"extra_{last}"] = value
    else:
        node[last] = value


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["set", "set", "delete", "add"]),
                          st.sampled_from(VALUES)), min_size=1, max_size=3))
@settings(max_examples=10 * settings.default.max_examples,  # a wide space: ten times the profile's count
          deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_what_the_loaders_rules_accept_the_schema_accepts(mutations):
    """The run skips jsonschema for files its own rules accept: that is sound only if this holds."""
    doc = copy.deepcopy(RICH)
    for pick, op, value in mutations:
        paths = _paths(doc)
        if not paths:
            break
        _mutate(doc, paths[pick % len(paths)], op, copy.deepcopy(value))
    folder = doc.get("name") if isinstance(doc.get("name"), str) else "honcho-redis"
    try:
        manifest._parse_module(doc, "m", folder, None)
    except ManifestError:
        return  # refused by the rules: the schema's words are used where it has some
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in
              jsonschema.Draft202012Validator(MODULE_SCHEMA).iter_errors(jsonable(doc, "m", "X"))]
    assert errors == [], doc


@pytest.mark.parametrize("path", EVERY_MODULE[:3], ids=lambda p: p.parent.name)
def test_validate_checks_every_file_with_the_schema_even_one_the_rules_accept(tmp_path, monkeypatch, path):
    seen = []
    monkeypatch.setattr(manifest, "validate", lambda *args: seen.append(args[0]))
    manifest.load_module_file(path, "m", full_schema=True)
    assert seen == ["module"]
    seen.clear()
    manifest.load_module_file(path, "m")
    assert seen == []  # a run does not pay for it on a valid file


HOST_VALUES = [None, 0, 10, 600, 601, 0.5, True, "", "x", "strict", "accept-new", "warn", "local://", "local:///",
               "paramiko://h", "paramiko://deploy@rs2000.tail1234.ts.net:22", "paramiko://h:", "paramiko://h:0",
               "paramiko://h:99999", "paramiko://h/", "paramiko://h/x", "paramiko://h?x", "paramiko://u:p@h",
               "paramiko://U@h", "paramiko://[::1]:22", "paramiko://[::1", "paramiko://-h", "paramiko://h_1",
               "paramiko://a..b", "ssh://h", "ssh://u@h:22", "ssh://-oProxyCommand=x", "telnet://h", "paramiko:// h",
               "~/.ssh/id_ed25519", [], {}]


@given(st.lists(st.tuples(st.sampled_from(["connection", "identity_file", "ssh_config", "known_hosts",
                                           "host_key_policy", "timeout", "extra"]),
                          st.sampled_from(["set", "delete"]), st.sampled_from(HOST_VALUES)), min_size=1, max_size=3))
@settings(max_examples=5 * settings.default.max_examples, deadline=None)  # five times the profile's count
def test_what_the_inventory_rules_accept_the_hosts_schema_accepts(tmp_path_factory, mutations):
    entry: dict[str, Any] = {"connection": "paramiko://deploy@127.0.0.1:2222", "host_key_policy": "strict",
                             "timeout": 10}
    for key, op, value in mutations:
        if op == "delete":
            entry.pop(key, None)
        else:
            entry[key] = value
    try:
        inventory._parse_inventory({"hosts": {"h1": entry}}, "hosts.yaml", Path("/"), check_files=False)
    except ManifestError:
        return
    assert jsonschema.Draft202012Validator(HOSTS_SCHEMA).is_valid({"hosts": {"h1": entry}}), entry
