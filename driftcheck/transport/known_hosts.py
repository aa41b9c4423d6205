"""Host keys, from hosts.yaml only: strict (unknown or changed = error) or accept-new (as OpenSSH)."""

from __future__ import annotations

import os

import paramiko
from paramiko.hostkeys import InvalidHostKey

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line, shown
from driftcheck.inventory import HostConfig

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
USER_KNOWN_HOSTS = "~/.ssh/known_hosts"


def key_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, `[host]:port` elsewhere."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


class KnownHosts:
    """The keys one host may present: the inventory's known_hosts, or the user's and the system's."""

    def __init__(self, config: HostConfig):
        self.config = config
        self.keys = paramiko.HostKeys()
        if config.known_hosts is not None:
            files, self.learn_into = [config.known_hosts], config.known_hosts
        else:
            user = os.path.expanduser(USER_KNOWN_HOSTS)
            files, self.learn_into = [user, SYSTEM_KNOWN_HOSTS], user
        for path in files:
            if not os.path.exists(path):
                continue
            try:
                self.keys.load(path)
            except InvalidHostKey as exc:
                # paramiko reads no @cert-authority or @revoked line (it cannot verify certificates).
                raise ObservationError(config.name, codes.HOST_KEY_UNKNOWN, f"the known hosts file {path} has a "
                                       f"line paramiko cannot read ({shown(exc.line)}); @cert-authority and "
                                       "@revoked are not supported: point known_hosts in hosts.yaml at a file "
                                       "of plain host keys") from exc
            except (OSError, ValueError, paramiko.SSHException) as exc:
                raise ObservationError(config.name, codes.HOST_KEY_UNKNOWN, f"cannot read the known hosts file "
                                       f"{path}: {one_line(str(exc)) or type(exc).__name__}; fix it or point "
                                       "known_hosts in hosts.yaml at another file") from exc

    def prefer_known_type(self, ssh: paramiko.Transport, name: str) -> None:
        """Ask for the key type known_hosts holds, so a host with several keys is not a false mismatch."""
        known = self.keys.lookup(name)
        if not known:
            return
        options = ssh.get_security_options()
        wanted = next(iter(known))
        if wanted in options.key_types:
            options.key_types = [wanted, *(t for t in options.key_types if t != wanted)]

    def verify(self, key: paramiko.PKey, name: str, where: str) -> None:
        """Raise HOST_KEY_UNKNOWN / HOST_KEY_MISMATCH unless key is the one known for name."""
        known = self.keys.lookup(name)
        if known is None:
            if self.config.host_key_policy == "accept-new":
                self._learn(key, name)
                return
            raise ObservationError(self.config.name, codes.HOST_KEY_UNKNOWN, f"{name} presented an unknown "
                                   f"{key.get_name()} host key; add it to known_hosts after checking its "
                                   "fingerprint, or set host_key_policy: accept-new")
        if known.get(key.get_name()) != key:
            raise ObservationError(self.config.name, codes.HOST_KEY_MISMATCH, f"{where} presented a {key.get_name()} "
                                   "host key that differs from known_hosts; if the host was rebuilt, replace the "
                                   "entry")

    def _learn(self, key: paramiko.PKey, name: str) -> None:
        """accept-new: record a first-seen key, as OpenSSH does; a changed key never gets here."""
        self.keys.add(name, key.get_name(), key)
        try:
            directory = os.path.dirname(self.learn_into)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            with open(self.learn_into, "a", encoding="ascii") as handle:
                handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        except OSError as exc:
            raise ObservationError(self.config.name, codes.HOST_KEY_UNKNOWN, f"{name} presented a first-seen "
                                   f"{key.get_name()} host key that could not be recorded in {self.learn_into}: "
                                   f"{one_line(str(exc))}; check that file, or add the key yourself") from exc
