"""Load and validate `hosts.yaml`: how to reach each host."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from driftcheck import codes
from driftcheck.errors import ManifestError
from driftcheck.localfile import LocalFileError, read_local_file, read_local_text
from driftcheck.schema import validate
from driftcheck.yamlfile import load_yaml

HOST_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
POLICIES = ("strict", "accept-new")
CODE = codes.INVENTORY_INVALID
MAX_TIMEOUT = 600.0


@dataclass(frozen=True)
class HostConfig:
    """One inventory entry, validated, with its paths expanded."""

    #: inventory name, as modules refer to it
    name: str
    #: "paramiko" or "local"
    scheme: str
    #: address to connect to (None for local)
    hostname: str | None
    #: SSH user, None to take it from ssh_config or the local user
    user: str | None
    #: SSH port, None to take it from ssh_config or 22
    port: int | None
    #: private key file
    identity_file: str | None
    #: OpenSSH client config to read HostName, User, Port, IdentityFile, ProxyCommand from
    ssh_config: str | None
    #: known_hosts file; None means the user's and the system's
    known_hosts: str | None
    #: strict | accept-new
    host_key_policy: str
    #: seconds; bounds connect, banner, auth and each remote command
    timeout: float


def _path(value: Any, base: Path, display: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ManifestError(display, key, "expected a file path", CODE)
    expanded = os.path.expanduser(os.path.expandvars(value))
    return str(base / expanded) if not os.path.isabs(expanded) else expanded


def parse_connection(value: Any, display: str, key: str) -> tuple[str, str | None, str | None, int | None]:
    """`paramiko://` or `ssh://[user@]host[:port]`, or `local://` -> (scheme, hostname, user, port)."""
    expected = "expected paramiko://[user@]host[:port], ssh://[user@]host[:port] or local://"
    if not isinstance(value, str):
        raise ManifestError(display, key, f"{expected}, got a {type(value).__name__}", CODE)
    if value == "local://":
        return "local", None, None, None
    if any(c.isspace() or ord(c) < 32 for c in value) or not value.startswith(("paramiko://", "ssh://")):
        raise ManifestError(display, key, f"{expected}, got {value[:80]!r}", CODE)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ManifestError(display, key, f"{expected}: {exc}", CODE) from exc
    if parts.netloc.endswith(":") or port == 0:
        raise ManifestError(display, key, f"{expected}; the port must be a number from 1 to 65535", CODE)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ManifestError(display, key, f"{expected}; no path, query or fragment", CODE)
    if parts.password is not None:
        raise ManifestError(display, key, "passwords do not belong in the inventory; use a key or ssh-agent", CODE)
    host = parts.hostname
    if not host or not (HOSTNAME_RE.match(host) or _is_ipv6(host)):
        raise ManifestError(display, key, f"{expected}; the host part is not a host name or address", CODE)
    user = parts.username
    if user is not None and not USER_RE.match(user):
        raise ManifestError(display, key, f"the user {user[:40]!r} is not a valid user name", CODE)
    return parts.scheme, host, user, port


def _is_ipv6(host: str) -> bool:
    return ":" in host and all(c in "0123456789abcdefABCDEF:." for c in host)


def parse_inventory(data: Any, display: str, base: Path, check_files: bool = True,
                    full_schema: bool = False) -> dict[str, HostConfig]:
    """Validate a parsed hosts.yaml; raises ManifestError naming the first problem.

    As for module.yaml (manifest.parse_module): schema/hosts.schema.json words every problem it
    can say; the checks of files and URLs are only here.
    """
    if full_schema:
        validate("hosts", data, display, CODE)
    try:
        return _parse_inventory(data, display, base, check_files)
    except ManifestError:
        validate("hosts", data, display, CODE)
        raise


def _parse_inventory(data: Any, display: str, base: Path, check_files: bool) -> dict[str, HostConfig]:
    if not isinstance(data, dict) or set(data) != {"hosts"} or not isinstance(data["hosts"], dict):
        raise ManifestError(display, "hosts", "expected a mapping 'hosts:' of host name -> settings", CODE)
    hosts: dict[str, HostConfig] = {}
    allowed = {"connection", "identity_file", "ssh_config", "known_hosts", "host_key_policy", "timeout"}
    for name, entry in data["hosts"].items():
        if not isinstance(name, str) or not HOST_NAME_RE.match(name):
            raise ManifestError(display, f"hosts.{name}",
                                "expected a host name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", CODE)
        prefix = f"hosts.{name}"
        if not isinstance(entry, dict):
            raise ManifestError(display, prefix, "expected a mapping with at least 'connection'", CODE)
        for key in entry:
            if key not in allowed:
                raise ManifestError(display, f"{prefix}.{key}",
                                    f"unknown key; expected one of: {', '.join(sorted(allowed))}", CODE)
        if "connection" not in entry:
            raise ManifestError(display, f"{prefix}.connection", "is required", CODE)
        scheme, hostname, user, port = parse_connection(entry["connection"], display, f"{prefix}.connection")
        policy = entry.get("host_key_policy", "strict")
        if policy not in POLICIES:
            raise ManifestError(display, f"{prefix}.host_key_policy",
                                f"expected strict or accept-new, got {str(policy)[:40]!r}", CODE)
        timeout = entry.get("timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
            raise ManifestError(display, f"{prefix}.timeout",
                                f"expected a number of seconds between 0 and {MAX_TIMEOUT:g}, got {timeout!r}", CODE)
        paths = {k: _path(entry.get(k), base, display, f"{prefix}.{k}")
                 for k in ("identity_file", "ssh_config", "known_hosts")}
        hosts[name] = HostConfig(
            name=name, scheme=scheme, hostname=hostname, user=user, port=port,
            identity_file=paths["identity_file"], ssh_config=paths["ssh_config"],
            known_hosts=paths["known_hosts"], host_key_policy=policy, timeout=float(timeout),
        )
        if check_files:
            problems = file_problems(hosts[name], display)
            if problems:
                raise problems[0]
        ssh_config = paths["ssh_config"]
        if scheme == "paramiko" and ssh_config is not None and (check_files or os.path.isfile(ssh_config)):
            # Offline (make validate) too, when the file is on this machine.
            refused = paramiko_unhonoured(ssh_config, hostname or "")
            if refused:
                raise ManifestError(display, f"{prefix}.ssh_config", refused, CODE)
    return hosts


def file_problems(host: HostConfig, display: str) -> list[ManifestError]:
    """What is wrong on this machine with the files a host's entry names (its key, ssh config and
    known_hosts): a run that connects refuses the first; make validate (offline, perhaps where the
    deploy key is not) shows them all as warnings."""
    prefix, problems = f"hosts.{host.name}", []
    for key, file in (("identity_file", host.identity_file), ("ssh_config", host.ssh_config)):
        if file is not None and not os.path.isfile(file):
            problems.append(ManifestError(display, f"{prefix}.{key}", f"expected an existing file, {file} is not one",
                                          CODE))
    known = host.known_hosts
    if known is not None and not os.path.isfile(known) and not (
            host.host_key_policy == "accept-new" and not os.path.exists(known)
            and os.path.isdir(os.path.dirname(known))):
        problems.append(ManifestError(display, f"{prefix}.known_hosts", f"{known} is not an existing file; create it "
                                      "(ssh-keyscan, then check the fingerprints), or set host_key_policy: accept-new "
                                      "with its folder in place", CODE))
    key_file = host.identity_file
    if key_file is not None and os.path.isfile(key_file) and os.stat(key_file).st_mode & 0o077:
        # As OpenSSH does: a private key others can read is no longer private.
        problems.append(ManifestError(display, f"{prefix}.identity_file", f"{key_file} is readable by others; "
                                      f"expected mode 600 (chmod 600 {key_file})", CODE))
    if not problems:  # what is there: regular, bounded, and what its key says it is
        try:
            _check_contents(display, prefix, host.scheme, {"identity_file": host.identity_file,
                                                           "ssh_config": host.ssh_config,
                                                           "known_hosts": host.known_hosts})
        except ManifestError as exc:
            problems.append(exc)
    return problems


def load_inventory(path: Path, display: str, check_files: bool = True,
                   full_schema: bool = False) -> dict[str, HostConfig]:
    """Read and validate hosts.yaml; check_files=False leaves out whether its key and config files exist."""
    return parse_inventory(load_yaml(path, display, CODE), display, path.resolve().parent, check_files, full_schema)


#: A private key (RSA 16384 bits included) or a certificate is a few KiB; a known_hosts of thousands of
#: hosts a few MiB. The files the inventory names are read up to these sizes, and a larger one is refused.
MAX_KEY_FILE = 256 * 1024
MAX_KNOWN_HOSTS = 16 * 1024 * 1024
_PRIVATE_KEY_RE = re.compile(rb"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?$", re.M)
_OPENSSH_KEY_RE = re.compile(rb"^(?:ssh-|ecdsa-|sk-)[a-z0-9@.-]+ [A-Za-z0-9+/]{20,}", re.M)


def key_file_kind(data: bytes) -> str | None:
    """"private" (an OpenSSH or PEM private key), "certificate" (an OpenSSH -cert.pub), "public", or None."""
    if _PRIVATE_KEY_RE.search(data):
        return "private"
    match = _OPENSSH_KEY_RE.match(data.lstrip())
    if match is None:
        return None
    return "certificate" if b"-cert-v01@openssh.com " in match.group(0) else "public"


def _check_contents(display: str, prefix: str, scheme: str, paths: dict[str, str | None]) -> None:
    """The files a run will read: regular, bounded, readable, and what their key says they are."""
    key_file = paths["identity_file"]
    if key_file is not None:
        try:
            kind = key_file_kind(read_local_file(key_file, MAX_KEY_FILE))
        except LocalFileError as exc:
            raise ManifestError(display, f"{prefix}.identity_file", f"{key_file} {exc}", CODE) from None
        if kind is None:
            raise ManifestError(display, f"{prefix}.identity_file", f"{key_file} is not a private key: expected an "
                                "OpenSSH or PEM private key file (-----BEGIN ... PRIVATE KEY-----), or its "
                                "-cert.pub certificate", CODE)
        if kind == "public" and scheme == "paramiko":
            # ssh:// may name a public key whose private half is in ssh-agent (or on a FIDO token).
            raise ManifestError(display, f"{prefix}.identity_file", f"{key_file} is a public key; paramiko:// "
                                "needs the private key (the same name without .pub), or leave identity_file out "
                                "to use ssh-agent", CODE)
    known = paths["known_hosts"]
    if known is not None and os.path.lexists(known):
        try:
            read_local_text(known, MAX_KNOWN_HOSTS)
        except LocalFileError as exc:
            raise ManifestError(display, f"{prefix}.known_hosts", f"{known} {exc}", CODE) from None
    ssh_config = paths["ssh_config"]
    if ssh_config is not None:
        try:
            # paramiko:// parses it as text; ssh:// hands it to ssh, which takes any bytes.
            (read_local_text if scheme == "paramiko" else read_local_file)(ssh_config, MAX_SSH_CONFIG)
        except LocalFileError as exc:
            raise ManifestError(display, f"{prefix}.ssh_config", f"{ssh_config} {exc}", CODE) from None


#: ssh_config keywords paramiko:// would silently ignore although they change where, how or as
#: whom ssh connects (paramiko reads only HostName, User, Port, IdentityFile and ProxyCommand;
#: host-key settings come from hosts.yaml by design). Include and Match are refused wherever
#: they stand: which hosts they apply to cannot be known without running them (`Match exec`).
PARAMIKO_UNHONOURED = {k.lower(): k for k in (
    "ProxyJump", "IdentityAgent", "HostKeyAlias", "CanonicalizeHostname", "CanonicalDomains", "BindAddress",
    "BindInterface", "AddressFamily", "CertificateFile", "PKCS11Provider", "SecurityKeyProvider",
    "RemoteCommand", "ProxyUseFdpass", "Tunnel", "TunnelDevice",
)}
ALWAYS_REFUSED = {"include": "Include", "match": "Match"}
MAX_SSH_CONFIG = 1024 * 1024


def paramiko_unhonoured(path: str, host: str) -> str | None:
    """Why paramiko:// cannot use this ssh config for host, or None (the file is read, never run).

    A keyword it would ignore, an Include or a Match anywhere, a Port that is not a number, or a
    file that is not a bounded regular UTF-8 text file.
    """
    try:
        text = read_local_text(path, MAX_SSH_CONFIG)
    except LocalFileError as exc:
        return f"{path} {exc}"
    applies = True  # before the first Host line: every host
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.replace("=", " ", 1).partition(" ")
        keyword = keyword.lower()
        if keyword == "host":
            applies = host_matches(rest.split(), host)
            continue
        name = ALWAYS_REFUSED.get(keyword) or (PARAMIKO_UNHONOURED.get(keyword) if applies else None)
        if name:
            return (f"{path} line {number}: {name} is not honoured by paramiko:// (it would be ignored "
                    "without a word); use connection: ssh://… (the OpenSSH client), or remove it from that file")
        port = rest.strip().strip('"')
        if applies and keyword == "port" and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            return f"{path} line {number}: Port {port[:20]!r} is not a port number (1 to 65535)"
    return None


def host_matches(patterns: list[str], host: str) -> bool:
    """Does a `Host` line's pattern list (`*`, `?`, `!negated`) apply to host?"""
    matched = False
    for pattern in (p.strip('"') for p in patterns):
        negated = pattern.startswith("!")
        glob = "".join("[[]" if c == "[" else c for c in pattern.removeprefix("!").lower())
        if fnmatch.fnmatchcase(host.lower(), glob):
            if negated:
                return False
            matched = True
    return matched
