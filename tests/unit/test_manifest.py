"""manifest and inventory: every error names the file, the key and what was expected."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from driftcheck.errors import ManifestError
from driftcheck.inventory import load_inventory, parse_inventory
from driftcheck.manifest import discover, load_module_file
from tests.support.unit import make_module

VALID = """schema_version: 2
name: honcho-redis
host: rs2000
tags: [tier0]
compose:
  project: home-platform
  service: honcho-redis
image:
  ref: redis:7.2-alpine
"""


def write(tmp_path: Path, text: str, name: str = "honcho-redis") -> Path:
    path = tmp_path / name / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_runtime_keys_are_normalised(tmp_path):
    text = VALID + """desired:
  restart_policy: on-failure:3
  ports: ['127.0.0.1:6379:6379', '8080:80/udp']
  env_keys: [TZ, TZ, REDIS_PASSWORD]
  env_digests: {TZ: 'sha256:""" + "b" * 64 + """'}
  mounts: ['home-platform_redis-data:/data', '/srv/conf:/etc/redis:ro']
  networks: [home-platform_default]
  health: healthy
"""
    module = load_module_file(write(tmp_path, text), "m.yaml")
    assert module.restart_policy == "on-failure:3" and module.health == "healthy"
    assert module.ports == {"127.0.0.1:6379:6379/tcp", "0.0.0.0:8080:80/udp"}
    assert module.env_keys == ("TZ", "REDIS_PASSWORD")
    assert module.env_digests == (("TZ", "sha256:" + "b" * 64),)
    assert module.mounts == {"home-platform_redis-data:/data", "/srv/conf:/etc/redis:ro"}
    assert module.networks == {"home-platform_default"}


@pytest.mark.parametrize(("text", "normal"), [
    ("80", "0.0.0.0::80/tcp"),  # Compose's ephemeral host port
    ("80/udp", "0.0.0.0::80/udp"),
    ("127.0.0.1::80", "127.0.0.1::80/tcp"),
    ("0.0.0.0::80/tcp", "0.0.0.0::80/tcp"),  # what make import writes for it
    ("[::1]::80", "::1::80/tcp"),
    ("8080:80", "0.0.0.0:8080:80/tcp"),
    ("[::]:8080:80/sctp", ":::8080:80/sctp"),
    ("08080:080", "0.0.0.0:8080:80/tcp"),  # as docker shows the numbers
])
def test_ports_grammar(text, normal):
    assert make_module(desired={"ports": [text]}).ports == {normal}


@pytest.mark.parametrize("text", [":80", "80:", "::80", "127.0.0.1:80", "0.0.0.0::0", "0.0.0.0::70000", "1.2.3.4::",
                                  "80/tcp/udp", "80\n"])
def test_ports_grammar_refuses(text):
    with pytest.raises(ManifestError) as info:
        make_module(desired={"ports": [text]})
    assert info.value.key == "desired.ports[0]"


@pytest.mark.parametrize("name", ["discovery.type", "cluster.routing.allocation.disk.threshold_enabled", "1X",
                                  "my-var", "a b", "ÄPFEL", "x" * 256])
def test_env_names_are_any_name_without_an_equals_sign(name):
    module = make_module(desired={"env_keys": [name], "env_digests": {name: "sha256:" + "a" * 64}})
    assert module.env_keys == (name,) and module.env_digests == ((name, "sha256:" + "a" * 64),)


@pytest.mark.parametrize("name", ["", "A=B", "=", "A\nB", "A\n", "\tA", "A\x7f", "A\x85", "x" * 257])
def test_env_names_refused(name):
    with pytest.raises(ManifestError) as info:
        make_module(desired={"env_keys": [name]})
    assert info.value.key == "desired.env_keys[0]"
    with pytest.raises(ManifestError) as info:
        make_module(desired={"env_digests": {name: "sha256:" + "a" * 64}})
    assert info.value.key == f"desired.env_digests.{name}"


@pytest.mark.parametrize(("text", "normal"), [
    ("data:/data", "data:/data"),
    ("data:/data:rw", "data:/data"),
    ("data:/data:ro", "data:/data:ro"),
    ("/srv/conf:/etc/conf:ro", "/srv/conf:/etc/conf:ro"),
    ("/app/node_modules", "/app/node_modules"),  # an anonymous volume: its destination alone
    ("/app/node_modules:ro", "/app/node_modules:ro"),
    ("secret:db_password", "secret:db_password"),
    ("secret:ro", "secret:ro"),  # a secret named ro
    ("secret:/data", "secret:/data"),  # a volume named secret
    ("a" * 64 + ":/cache", "/cache"),  # a volume named as docker names an anonymous one
])
def test_mounts_grammar_is_mount_entrys(text, normal):
    assert make_module(desired={"mounts": [text]}).mounts == {normal}


def test_a_bind_on_a_secrets_destination_must_be_declared_as_the_secret():
    """Its source would be parsed and never compared: a secret is matched by name."""
    import pytest

    from driftcheck.errors import ManifestError

    with pytest.raises(ManifestError, match="declare it as 'secret:db_password'"):
        make_module(desired={"mounts": ["/srv/pw.txt:/run/secrets/db_password:ro"]})


def test_a_bind_source_may_hold_spaces():
    assert make_module(desired={"mounts": ["/srv/My Files:/data:ro"]}).mounts == {"/srv/My Files:/data:ro"}


@pytest.mark.parametrize("text", ["data", "data:relative", "/a:/b:rx", "secret:", "secret:a/b", "secret:x:ro",
                                  "/a:/b:ro:ro", "-v:/x", "/a\n"])
def test_mounts_grammar_refuses(text):
    with pytest.raises(ManifestError) as info:
        make_module(desired={"mounts": [text]})
    assert info.value.key == "desired.mounts[0]"


@pytest.mark.parametrize(("text", "normal"), [("on-failure:007", "on-failure:7"), ("on-failure:0", "on-failure:0"),
                                              ("on-failure", "on-failure"), ("always", "always")])
def test_restart_policy_retries_as_docker_shows_them(text, normal):
    assert make_module(desired={"restart_policy": text}).restart_policy == normal


@pytest.mark.parametrize(("section", "value"), [
    ("compose", {"project": "drift-lab", "service": "in-sync\n"}),
    ("compose", {"project": "drift-lab\n", "service": "in-sync"}),
    ("image", {"ref": "lab/app:1\n"}),
    ("desired", {"networks": ["net\n"]}),
    ("tags", ["tier0\n"]),
])
def test_a_trailing_newline_is_never_accepted(section, value):
    """A pattern's `$` matches before a final newline: every pattern is matched against the whole value."""
    with pytest.raises(ManifestError):
        make_module(**{section: value})


def test_ignore_entries(tmp_path):
    text = VALID + """ignore:
  - check: image
    reason: "waiting for the 7.4 rollout, PLAT-99"
    until: 2026-12-31
  - check: state
    reason: maintenance window
    until: '2026-01-01'
"""
    module = load_module_file(write(tmp_path, text), "m.yaml")
    image, state = module.ignore
    assert image.as_dict() == {"check": "image", "reason": "waiting for the 7.4 rollout, PLAT-99",
                               "until": "2026-12-31"}
    assert not image.expired(date(2026, 12, 31)) and image.expired(date(2027, 1, 1))  # inclusive
    assert state.until == date(2026, 1, 1) and module.waiver("labels") is None


def test_valid_module_defaults(tmp_path):
    module = load_module_file(write(tmp_path, VALID), "m.yaml")
    assert module.container_name == "home-platform-honcho-redis-1"
    assert module.state == "running" and module.tags == ("tier0",)


# (replace this, with that) in VALID -> expected key in the error
BAD = [
    ("schema_version: 2", "schema_version: 1", "schema_version"),
    ("schema_version: 2", "schema_version: '2'", "schema_version"),
    ("name: honcho-redis", "name: other", "name"),
    ("host: rs2000", "host: rs2000\nextra: 1", "extra"),
    ("tags: [tier0]", "tags: [Tier0]", "tags[0]"),
    ("tags: [tier0]", "tags: [skip]", "tags[0]"),
    ("tags: [tier0]", "tags: [manifest]", "tags[0]"),
    ("  project: home-platform", "  project: Home", "compose.project"),
    ("  project: home-platform", "  project: 'a;b'", "compose.project"),
    ("  project: home-platform", "  project: '$(id)'", "compose.project"),
    ("  service: honcho-redis", "  service: '--format'", "compose.service"),
    ("  service: honcho-redis", "  service: 'a b'", "compose.service"),
    ("  service: honcho-redis", "  service: honcho-redis\n  container_name: '`id`'", "compose.container_name"),
    ("  service: honcho-redis", "  service: honcho-redis\n  file: ../../etc/passwd", "compose.file"),
    ("  ref: redis:7.2-alpine", "  ref: 'redis:7.2;rm'", "image.ref"),
    ("  ref: redis:7.2-alpine", "  ref: '-redis'", "image.ref"),
    ("  ref: redis:7.2-alpine", "  ref: redis:7.2-alpine\n  digest: sha256:abc", "image.digest"),
    ("  ref: redis:7.2-alpine", "  ref: redis:7.2-alpine\n  digest_pinned_in_compose: 'yes'",
     "image.digest_pinned_in_compose"),
    ("image:\n  ref: redis:7.2-alpine\n", "desired:\n  state: running\n", "image"),
    ("host: rs2000", "host: rs2000\ndesired:\n  state: gone", "desired.state"),
    ("host: rs2000", "host: rs2000\ndesired:\n  replicas: 0", "desired.replicas"),
    ("host: rs2000", "host: rs2000\ndesired:\n  replicas: '2'", "desired.replicas"),
    ("host: rs2000", "host: rs2000\ndesired:\n  ports: [22:22]", "desired.ports[0]"),  # YAML 1.1 reads 1342
    ("host: rs2000", "host: rs2000\ndesired:\n  ports: '80:80'", "desired.ports"),
    ("host: rs2000", "host: rs2000\ndesired:\n  ports: ['80:80;id']", "desired.ports[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  ports: ['0:80']", "desired.ports[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  ports: ['80:80/icmp']", "desired.ports[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  restart_policy: sometimes", "desired.restart_policy"),
    ("host: rs2000", "host: rs2000\ndesired:\n  env_keys: ['A=B']", "desired.env_keys[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  env_digests: {TZ: md5:abc}", "desired.env_digests.TZ"),
    ("host: rs2000", "host: rs2000\ndesired:\n  env_digests: {'A=B': 'sha256:" + "a" * 64 + "'}",
     "desired.env_digests.A=B"),
    ("host: rs2000", "host: rs2000\ndesired:\n  mounts: ['data']", "desired.mounts[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  mounts: ['data:relative']", "desired.mounts[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  mounts: ['/a:/b:rx']", "desired.mounts[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  networks: ['a b']", "desired.networks[0]"),
    ("host: rs2000", "host: rs2000\ndesired:\n  health: ok", "desired.health"),
    ("host: rs2000", "host: rs2000\ndesired:\n  state: stopped\n  health: healthy", "desired.health"),
    ("host: rs2000", "host: rs2000\ndesired:\n  state: absent\n  ports: ['80:80']", "desired.ports"),
    ("host: rs2000", "host: rs2000\nignore: {check: state}", "ignore"),
    ("host: rs2000", "host: rs2000\nignore: [{check: ports, reason: x}]", "ignore[0].check"),  # no ports check
    ("host: rs2000", "host: rs2000\nignore: [{check: state}]", "ignore[0].reason"),
    ("host: rs2000", "host: rs2000\nignore: [{check: state, reason: '  '}]", "ignore[0].reason"),
    ("host: rs2000", "host: rs2000\nignore: [{check: state, reason: x, until: '2026-13-01'}]", "ignore[0].until"),
    ("host: rs2000", "host: rs2000\nignore: [{check: state, reason: x, until: tomorrow}]", "ignore[0].until"),
    ("host: rs2000", "host: rs2000\nignore: [{check: state, reason: x}, {check: state, reason: y}]",
     "ignore[1].check"),
    ("host: rs2000", "host: rs2000\nignore: [{check: state, reason: x, owner: me}]", "ignore[0].owner"),
]


@pytest.mark.parametrize(("old", "new", "key"), BAD)
def test_bad_manifest_names_file_and_key(tmp_path, old, new, key):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ManifestError) as info:
        load_module_file(path, "modules/honcho-redis/module.yaml")
    assert info.value.key == key
    assert str(info.value).startswith(f"modules/honcho-redis/module.yaml: key '{key}': ")


@pytest.mark.parametrize("text", ["a: 1\na: 2\n", "x: &a [1]\ny: *a\n", "a: [\n", "- 1\n", "d: 2026-13-01\n"])
def test_bad_yaml_is_a_manifest_error(tmp_path, text):
    with pytest.raises(ManifestError) as info:
        load_module_file(write(tmp_path, text), "m.yaml")
    assert info.value.path == "m.yaml"


def test_non_utf8_and_oversized(tmp_path):
    path = write(tmp_path, "")
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(ManifestError, match="UTF-8"):
        load_module_file(path, "m.yaml")
    path.write_bytes(b"#" * 300_000)
    with pytest.raises(ManifestError, match="bytes"):
        load_module_file(path, "m.yaml")


def test_reserved_names(tmp_path):
    for name in ("and", "or", "not"):
        with pytest.raises(ManifestError, match="reserved"):
            load_module_file(write(tmp_path, VALID.replace("honcho-redis\nhost", f"{name}\nhost"), name), "m")


def test_discover_collects_every_problem(tmp_path):
    write(tmp_path, VALID)
    write(tmp_path, VALID.replace("schema_version: 2", "schema_version: 3"), "b")
    (tmp_path / "empty").mkdir()
    modules, errors = discover(tmp_path, str)
    assert [m.name for m in modules] == ["honcho-redis"]
    assert len(errors) == 2


def test_absent_module_needs_no_image():
    module = make_module(desired={"state": "absent"}, image=None)
    assert module.image_ref is None


INVENTORY_BAD = [
    ({"connection": "telnet://a"}, "hosts.h.connection"),
    ({"connection": "ssh://-oProxyCommand=id"}, "hosts.h.connection"),
    ({"connection": "paramiko://u:pw@a"}, "hosts.h.connection"),
    ({"connection": "paramiko://a;b"}, "hosts.h.connection"),
    ({"connection": "paramiko://a:99999"}, "hosts.h.connection"),
    ({"connection": "paramiko://a", "host_key_policy": "ignore"}, "hosts.h.host_key_policy"),
    ({"connection": "paramiko://a", "timeout": 0}, "hosts.h.timeout"),
    ({"connection": "paramiko://a", "identity_file": "/nonexistent/key"}, "hosts.h.identity_file"),
    ({"connection": "paramiko://a", "proxy": "x"}, "hosts.h.proxy"),
    ({}, "hosts.h.connection"),
]


@pytest.mark.parametrize(("entry", "key"), INVENTORY_BAD)
def test_bad_inventory(tmp_path, entry, key):
    with pytest.raises(ManifestError) as info:
        parse_inventory({"hosts": {"h": entry}}, "hosts.yaml", tmp_path)
    assert info.value.code == "INVENTORY_INVALID" and info.value.key == key


def test_inventory_paths_resolve_against_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYS", "keys")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")  # its content is checked too
    (tmp_path / "keys" / "id").chmod(0o600)
    (tmp_path / "kh").write_text("")  # a known_hosts that does not exist is refused at load
    path = tmp_path / "hosts.yaml"
    path.write_text("hosts:\n  h:\n    connection: paramiko://deploy@h.tail1234.ts.net:2222\n"
                    "    identity_file: $KEYS/id\n    known_hosts: kh\n")
    host = load_inventory(path, "hosts.yaml")["h"]
    assert (host.user, host.hostname, host.port) == ("deploy", "h.tail1234.ts.net", 2222)
    assert host.identity_file == str(tmp_path / "keys" / "id")
    assert host.known_hosts == str(tmp_path / "kh") and host.host_key_policy == "strict"


def test_identity_file_readable_by_others_is_refused(tmp_path):
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o644)
    with pytest.raises(ManifestError) as info:
        parse_inventory({"hosts": {"h": {"connection": "paramiko://a", "identity_file": str(key)}}}, "hosts.yaml",
                        tmp_path)
    assert info.value.key == "hosts.h.identity_file" and "chmod 600" in str(info.value)
    assert "BEGIN" not in str(info.value)


def test_env_keys_complete_needs_env_keys_and_a_boolean():
    import pytest

    from driftcheck.errors import ManifestError

    assert make_module(desired={"env_keys": ["A"], "env_keys_complete": True}).env_keys_complete is True
    with pytest.raises(ManifestError, match=r"desired\.env_keys_complete"):
        make_module(desired={"env_keys_complete": True})
    with pytest.raises(ManifestError, match=r"desired\.env_keys_complete"):
        make_module(desired={"env_keys": ["A"], "env_keys_complete": "yes"})
