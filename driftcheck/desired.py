"""The runtime keys of a module's desired: section (SPEC §2), each parsed and normalised for comparison.

Their grammar follows what Compose writes: ports in its short syntax (an ephemeral host port
included), any variable name without '=', mounts in records.mount_entry's form.
"""

from __future__ import annotations

import re
from typing import Any

from driftcheck.errors import kind_of, shown
from driftcheck.fields import Fields
from driftcheck.imageref import DIGEST_RE
from driftcheck.records import mount_entry

RESTART_POLICY_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:[0-9]{1,4})?)$")
_IP = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9a-fA-F:]+\]"
#: Compose's short port syntax, one port: [[host_ip:][host_port]:]container_port[/proto]. Without a host
#: port (`80`, `127.0.0.1::80`) the host port is ephemeral: docker picks one when the container starts.
PORT_RE = re.compile(rf"^(?:(?P<ip>{_IP}):(?P<ip_host>[0-9]{{1,5}})?:|(?P<host>[0-9]{{1,5}}):)?"
                     r"(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")
PORT_WHAT = "a port '[[host_ip:][host_port]:]container_port[/proto]' (quote it: YAML reads 22:22 as a number)"
#: Compose allows any variable name without '=' (`discovery.type`); driftcheck also refuses control characters
ENV_NAME_RE = re.compile(r"^[^=\u0000-\u001f\u007f-\u009f]{1,256}$")
ENV_NAME_WHAT = "a variable name (1 to 256 characters, no '=' and no control characters)"
VOLUME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9_.@+/-]{0,254}$")
#: a bind's host path: any printable character but ':' (Compose's separator), spaces included
_VOLUME, _PATH = VOLUME_RE.pattern[1:-1], r"/[^:\u0000-\u001f\u007f-\u009f]{0,254}"
#: desired.mounts, as records.mount_entry writes them: `secret:<name>` (a Compose secret), or
#: `[volume:|/host/path:]/destination[:ro|:rw]` (without a source: an anonymous volume)
MOUNT_RE = re.compile(rf"^(?:secret:(?P<secret>[A-Za-z0-9_.@+-]{{1,254}})|(?:(?P<source>{_VOLUME}|{_PATH}):)?"
                      rf"(?P<destination>{_PATH})(?::(?P<mode>ro|rw))?)$")
MOUNT_WHAT = ("a mount 'volume:/destination', '/host/path:/destination', '/destination' (an anonymous volume), "
              "each with an optional ':ro', or 'secret:<name>' (a Compose secret)")
NETWORK_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
#: the desired keys whose checks compare the container's runtime configuration (SPEC §2)
RUNTIME_KEYS = ("replicas", "restart_policy", "ports", "env_keys", "env_keys_complete", "env_digests", "mounts",
                "networks", "health")


def parse_runtime(desired: Fields, state: str) -> dict[str, Any]:
    """The optional runtime keys of desired:, each normalised for comparison."""
    found: dict[str, Any] = {}
    for key in RUNTIME_KEYS:
        if desired.data.get(key) is None:
            continue
        if state == "absent":
            raise desired.fail(key, "expected only with desired.state running or stopped (an absent "
                               "container has no configuration to check)")
        if key == "health" and state != "running":
            raise desired.fail(key, "expected only with desired.state running (a stopped container has no "
                               "health status)")
    replicas = desired.data.get("replicas")
    if replicas is not None and (type(replicas) is not int or not 1 <= replicas <= 1000):
        raise desired.fail("replicas", f"expected a whole number from 1 to 1000, got {replicas!r}")
    found["replicas"] = replicas
    found["restart_policy"] = _restart_policy(desired)
    found["health"] = desired.string("health", re.compile(r"^healthy$"), what="healthy")
    ports = _string_list(desired, "ports", PORT_WHAT)
    if ports is not None:
        found["ports"] = frozenset(_port(desired, f"ports[{i}]", p) for i, p in enumerate(ports))
    env_keys = _string_list(desired, "env_keys", ENV_NAME_WHAT, ENV_NAME_RE)
    found["env_keys"] = None if env_keys is None else tuple(dict.fromkeys(env_keys))
    complete = desired.data.get("env_keys_complete")
    if complete is not None:
        if not isinstance(complete, bool):
            raise desired.fail("env_keys_complete", f"expected true or false, got {kind_of(complete)}")
        if env_keys is None:
            raise desired.fail("env_keys_complete", "expected only with desired.env_keys (the complete list)")
        found["env_keys_complete"] = complete
    digests = desired.data.get("env_digests")
    if digests is not None:
        table = Fields(digests, desired.path, "desired.env_digests")
        for name in table.data:
            if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
                raise table.fail(str(name), f"expected {ENV_NAME_WHAT} as the key")
            table.string(name, DIGEST_RE, required=True, what="sha256:<64 lowercase hex> of the exact value")
        found["env_digests"] = tuple(sorted(table.data.items()))
    mounts = _string_list(desired, "mounts", MOUNT_WHAT)
    if mounts is not None:
        found["mounts"] = frozenset(_mount(desired, f"mounts[{i}]", m) for i, m in enumerate(mounts))
    networks = _string_list(desired, "networks", "a network name", NETWORK_RE)
    found["networks"] = None if networks is None else frozenset(networks)
    return found


def _string_list(fields: Fields, name: str, what: str, pattern: re.Pattern[str] | None = None) -> list[str] | None:
    raw = fields.data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise fields.fail(name, f"expected a list, each item {what}; got {kind_of(raw)}")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise fields.fail(f"{name}[{index}]", f"expected {what}, got {kind_of(item)}")
        if pattern is not None and not pattern.fullmatch(item):
            raise fields.fail(f"{name}[{index}]", f"expected {what}, got {shown(item)}")
    return raw


def _restart_policy(desired: Fields) -> str | None:
    """no, always, unless-stopped, on-failure[:N], with N as docker shows it (no leading zeros)."""
    policy = desired.string("restart_policy", RESTART_POLICY_RE, what="one of no, always, unless-stopped, "
                            "on-failure[:N]")
    if policy is not None and policy.startswith("on-failure:"):
        return f"on-failure:{int(policy.partition(':')[2])}"
    return policy


def _port(fields: Fields, key: str, text: str) -> str:
    """One port, normalised to host_ip:host_port:container_port/proto; the host port is empty when ephemeral."""
    found = PORT_RE.fullmatch(text)
    if found is None:
        raise fields.fail(key, f"expected {PORT_WHAT}, got {shown(text)}")
    host = found["host"] or found["ip_host"] or ""
    if not (0 < int(found["container"]) < 65536 and (not host or 0 < int(host) < 65536)):
        raise fields.fail(key, f"expected ports between 1 and 65535, got {shown(text)}")
    ip = (found["ip"] or "0.0.0.0").strip("[]")
    return f"{ip}:{host and int(host)}:{int(found['container'])}/{found['proto'] or 'tcp'}"


def _mount(fields: Fields, key: str, text: str) -> str:
    """One mount, in the form records.mount_entry gives an observed one (so both sides compare as text)."""
    found = MOUNT_RE.fullmatch(text)
    if found is None:
        raise fields.fail(key, f"expected {MOUNT_WHAT}, got {shown(text)}")
    if found["secret"] is not None:
        return f"secret:{found['secret']}"
    source, destination, read_only = found["source"], found["destination"], found["mode"] == "ro"
    if source is not None and source.startswith("/") and mount_entry("bind", source, destination, False) != \
            f"{source}:{destination}":
        # Compose mounts a secret there: it is matched by name, so a source written here would be
        # parsed and never compared.
        raise fields.fail(key, f"a bind on {destination} is a Compose secret: declare it as "
                          f"'{mount_entry('bind', source, destination, False)}', got {shown(text)}")
    if source is None:
        return destination + (":ro" if read_only else "")  # an anonymous volume: its destination alone
    return mount_entry("bind" if source.startswith("/") else "volume", source, destination, read_only)
