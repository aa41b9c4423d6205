"""Host keys, from hosts.yaml only: strict (unknown or changed = error) or accept-new (as OpenSSH).

known_hosts is read here line by line, not with paramiko.HostKeys: paramiko raises on every
`@cert-authority` and `@revoked` line, so one such line anywhere broke every connection.
Here an `@revoked` key is refused wherever it is presented, a `@cert-authority` line that
names the host is a clear error (paramiko cannot verify host certificates), and every other
such line is skipped. Hashed names (`|1|salt|hash`) and patterns (`*`, `?`, `!`) match as in
OpenSSH.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
from dataclasses import dataclass

import paramiko

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import MAX_KNOWN_HOSTS, HostConfig
from driftcheck.localfile import LocalFileError, read_local_text

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
#: a known_hosts file larger than this is refused (a host key line is under 1 KiB)
MAX_FILE = MAX_KNOWN_HOSTS
MAX_LINE = 16 * 1024
CERT_AUTHORITY = "@cert-authority"
REVOKED = "@revoked"


def key_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, `[host]:port` elsewhere."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """SHA256:… as `ssh-keygen -l` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Entry:
    """One usable line of a known_hosts file."""

    path: str
    line: int
    #: "", "@cert-authority" or "@revoked"
    marker: str
    #: the hosts field as written (patterns, or one hashed name)
    hosts: str
    key_type: str
    key: bytes

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def matches(self, name: str) -> bool:
        """Does the hosts field name `name` (`host` or `[host]:port`)?"""
        if self.hosts.startswith("|1|"):
            return _hashed_match(self.hosts, name)
        matched = False
        for pattern in self.hosts.split(","):
            negated = pattern.startswith("!")
            pattern = pattern[1:] if negated else pattern
            if pattern and fnmatch.fnmatchcase(name.lower(), _glob(pattern.lower())):
                if negated:
                    return False
                matched = True
        return matched

    def holds(self, key: paramiko.PKey) -> bool:
        return self.key_type == key.get_name() and self.key == key.asbytes()


def _glob(pattern: str) -> str:
    """An OpenSSH pattern (only `*` and `?` are special) as an fnmatch pattern."""
    return "".join("[[]" if c == "[" else c for c in pattern)


def _hashed_match(field: str, name: str) -> bool:
    parts = field.split("|")
    if len(parts) != 4:
        return False
    try:
        salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest(), digest)


def parse_known_hosts(text: str, path: str) -> list[Entry]:
    """Every line with a key; blank, comment, malformed and over-long lines are skipped (as OpenSSH)."""
    entries: list[Entry] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#") or len(line) > MAX_LINE:
            continue
        fields = line.split()
        marker = ""
        if fields[0].startswith("@"):
            marker = fields[0].lower()
            if marker not in (CERT_AUTHORITY, REVOKED):
                continue
            fields = fields[1:]
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        entries.append(Entry(path, number, marker, fields[0], fields[1], blob))
    return entries


class KnownHosts:
    """The keys one host may present: the inventory's known_hosts, or the user's and the system's."""

    def __init__(self, config: HostConfig):
        self.config = config
        if config.known_hosts is not None:
            self.files, self.learn_into = [config.known_hosts], config.known_hosts
        else:
            user = os.path.expanduser(USER_KNOWN_HOSTS)
            self.files, self.learn_into = [user, SYSTEM_KNOWN_HOSTS], user
        self.entries: list[Entry] = []
        for path in self.files:
            if not os.path.lexists(path):
                continue
            try:
                text = read_local_text(path, MAX_FILE)  # a FIFO, /dev/zero or a huge file: refused, not read
            except LocalFileError as exc:
                whose = ("" if config.known_hosts is not None else
                         " (hosts.yaml names no known_hosts for this host, so the default files are read)")
                raise ObservationError(config.name, codes.INVENTORY_INVALID, f"the known_hosts file {path}{whose} "
                                       f"{exc}; fix it, or point known_hosts in hosts.yaml at another file") from None
            self.entries += parse_known_hosts(text, path)

    def _plain(self, name: str) -> list[Entry]:
        return [e for e in self.entries if not e.marker and e.matches(name)]

    def prefer_known_type(self, ssh: paramiko.Transport, name: str) -> None:
        """Ask for the key type known_hosts holds, so a host with several keys is not a false mismatch."""
        known = self._plain(name)
        if not known:
            return
        options = ssh.get_security_options()
        wanted = [known[0].key_type]
        if wanted == ["ssh-rsa"]:
            wanted = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        wanted = [t for t in wanted if t in options.key_types]
        if wanted:
            options.key_types = [*wanted, *(t for t in options.key_types if t not in wanted)]

    def _read(self) -> str:
        read = [p for p in self.files if os.path.exists(p)]
        return ", ".join(read) if read else f"none ({', '.join(self.files)} do not exist)"

    def verify(self, key: paramiko.PKey, name: str, where: str) -> None:
        """Raise HOST_KEY_UNKNOWN / HOST_KEY_MISMATCH unless key is the one known for name."""
        host, kind, print_ = self.config.name, key.get_name(), fingerprint(key)
        revoked = next((e for e in self.entries if e.marker == REVOKED and e.holds(key)), None)
        if revoked is not None:
            raise ObservationError(host, codes.HOST_KEY_MISMATCH, f"{where} presented a {kind} host key ({print_}) "
                                   f"marked @revoked in {revoked.where}; the host's key must be replaced")
        known = self._plain(name)
        if any(e.holds(key) for e in known):
            return
        if known:
            entry = next((e for e in known if e.key_type == kind), known[0])
            raise ObservationError(host, codes.HOST_KEY_MISMATCH, f"{where} presented a {kind} host key ({print_}) "
                                   f"that differs from {entry.where}; if the host was rebuilt, replace that entry")
        authority = next((e for e in self.entries if e.marker == CERT_AUTHORITY and e.matches(name)), None)
        if authority is not None:
            raise ObservationError(host, codes.HOST_KEY_UNKNOWN, f"{name} is vouched for by @cert-authority in "
                                   f"{authority.where}, but paramiko cannot verify host certificates; use "
                                   f"connection: ssh://… (OpenSSH), or add its {kind} key ({print_}) to known_hosts")
        if self.config.host_key_policy == "accept-new":
            self._learn(key, name)
            return
        raise ObservationError(host, codes.HOST_KEY_UNKNOWN, f"{name} presented an unknown {kind} host key "
                               f"{print_} (known_hosts read: {self._read()}); add it to known_hosts after checking "
                               "its fingerprint, or set host_key_policy: accept-new")

    def _learn(self, key: paramiko.PKey, name: str) -> None:
        """accept-new: record a first-seen key, as OpenSSH does; a changed key never gets here."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        try:
            directory = os.path.dirname(self.learn_into)
            if directory and self.config.known_hosts is None:
                os.makedirs(directory, mode=0o700, exist_ok=True)  # ~/.ssh, as OpenSSH makes it
            with open(self.learn_into, "a", encoding="ascii") as handle:
                handle.write(line)
        except OSError as exc:
            raise ObservationError(self.config.name, codes.HOST_KEY_UNKNOWN, f"{name} presented a first-seen "
                                   f"{key.get_name()} host key that could not be recorded in {self.learn_into}: "
                                   f"{one_line(str(exc))}; check that file, or add the key yourself") from exc
        self.entries += parse_known_hosts(line, self.learn_into)
