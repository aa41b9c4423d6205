"""Logging in as OpenSSH does: `none`, then the key files, then ssh-agent, then the default keys.

No password, no keyboard-interactive: a login needs a key the host's authorized_keys names.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence

import paramiko

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import HostConfig

#: Tried when neither identity_file nor the ssh config's IdentityFile names a key (as SSHClient).
DEFAULT_KEYS = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519")
KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.RSAKey, paramiko.ECDSAKey, paramiko.Ed25519Key)
CERT_SUFFIX = "-cert.pub"
#: how an OpenSSH certificate's key type ends (ssh-ed25519-cert-v01@openssh.com)
CERT_TYPE_SUFFIX = "-cert-v01@openssh.com"


def load_key(path: str) -> paramiko.PKey:
    """A private key file (or the key of a -cert.pub), with the certificate beside it if there is one."""
    key_path = path.removesuffix(CERT_SUFFIX)
    cert_path = key_path + CERT_SUFFIX
    failures: list[paramiko.SSHException] = []
    for key_type in KEY_TYPES:
        try:
            key = key_type.from_private_key_file(key_path)
        except paramiko.SSHException as exc:
            failures.append(exc)  # not this type, or encrypted
            continue
        if os.path.isfile(cert_path):
            key.load_certificate(cert_path)
        return key
    # "private key file is encrypted" says more than "not a valid RSA private key file".
    raise next((f for f in failures if isinstance(f, paramiko.PasswordRequiredException)), failures[-1])


def unusable_agent_key(key: paramiko.PKey) -> bool:
    """A key ssh-agent holds that paramiko cannot offer: a certificate (paramiko issue 2462: offering it
    ends the connection with `AttributeError: public_blob`) or a type it does not know (FIDO `sk-…`)."""
    return isinstance(key, paramiko.AgentKey) and (
        key.get_name().endswith(CERT_TYPE_SUFFIX) or vars(key).get("inner_key") is None)


class _Login:
    """One login attempt; remembers why the last key failed."""

    def __init__(self, ssh: paramiko.Transport, user: str):
        self.ssh = ssh
        self.user = user
        self.failure: Exception | None = None
        #: an ssh-agent certificate broke the attempt
        self.agent_certificate = False
        #: ssh-agent keys paramiko cannot offer, skipped
        self.skipped: list[str] = []
        #: key files that need a passphrase
        self.encrypted: list[str] = []
        #: key files that could not be read as a key: (path, why)
        self.unusable: list[tuple[str, str]] = []
        #: the methods the server named when it refused `none`; None if it never said
        self.allowed: list[str] | None = None

    def with_none(self) -> bool:
        """The `none` method, as OpenSSH tries it first: Tailscale SSH accepts it (paramiko issue 2370)."""
        try:
            further = self.ssh.auth_none(self.user)
        except paramiko.BadAuthenticationType as exc:
            self.allowed = list(exc.allowed_types)
            return False
        except paramiko.AuthenticationException:
            return False
        return not further and self.ssh.is_authenticated()

    def with_key(self, key: paramiko.PKey) -> bool:
        try:
            further = self.ssh.auth_publickey(self.user, key)
        except paramiko.SSHException as exc:
            self.failure = exc
            return False
        except AttributeError as exc:
            if not isinstance(key, paramiko.AgentKey):
                raise
            # paramiko cannot offer a certificate held in ssh-agent (its issue 2462); the attempt
            # usually ends the connection too.
            self.failure, self.agent_certificate = exc, True
            return False
        if further:
            self.failure = paramiko.AuthenticationException(f"a second factor is required ({', '.join(further)})")
            return False
        return self.ssh.is_authenticated()

    def with_file(self, path: str) -> bool:
        try:
            key = load_key(path)
        except paramiko.PasswordRequiredException as exc:
            self.encrypted.append(path)
            self.failure = exc
            return False
        except (OSError, ValueError, paramiko.SSHException) as exc:
            self.failure = exc
            why = f"{exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.unusable.append((path, one_line(why) or type(exc).__name__))
            return False
        return self.with_key(key)

    def with_agent(self) -> bool:
        try:
            agent = paramiko.Agent()
        except (OSError, paramiko.SSHException) as exc:
            self.failure = exc
            return False
        try:
            for key in agent.get_keys():
                if unusable_agent_key(key):
                    self.skipped.append(key.get_name())
                elif self.with_key(key):
                    return True
                elif not self.ssh.is_active():
                    return False
            return False
        finally:
            agent.close()


def log_in(ssh: paramiko.Transport, config: HostConfig, username: str | None, key_files: Sequence[str],
           where: str, agent: bool = True) -> None:
    """Authenticate ssh or raise AUTH_FAILED; a connection lost meanwhile raises paramiko's error.

    `none` first (as OpenSSH), then the key files, then ssh-agent (unless agent=False: the ssh
    config's IdentitiesOnly), then the default keys when no key file is named.
    """
    login = _Login(ssh, username or getpass.getuser())
    if login.with_none():
        return
    if not ssh.is_active():
        raise paramiko.SSHException("the connection closed during the login")
    if any(login.with_file(path) for path in key_files) or (agent and login.with_agent()):
        return
    if not key_files and any(login.with_file(os.path.expanduser(p)) for p in DEFAULT_KEYS if
                             os.path.isfile(os.path.expanduser(p))):
        return
    failure = login.failure
    who = username or "the local user"
    if login.agent_certificate:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"logging in to {where}: ssh-agent holds a "
                               "certificate, which paramiko cannot use (paramiko issue 2462); remove it from "
                               "the agent (ssh-add -d), or set identity_file") from failure
    if isinstance(failure, paramiko.SSHException) and not ssh.is_active():
        raise failure  # the connection is gone: not a login problem
    if login.allowed is not None and "publickey" not in login.allowed:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"{where} offers only {', '.join(login.allowed)} "
                               f"logins to {who}; driftcheck logs in with keys (or none): allow publickey in its "
                               "sshd, or use connection: ssh://…")
    if login.encrypted:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"the key {login.encrypted[0]} is encrypted and no "
                               f"key in ssh-agent logged in to {where}: add it to ssh-agent (ssh-add "
                               f"{login.encrypted[0]}); driftcheck never asks for a passphrase") from failure
    skipped = (f" (ssh-agent's {', '.join(sorted(set(login.skipped)))} keys were skipped: paramiko cannot use "
               "them; connection: ssh://… can)") if login.skipped else ""
    if login.unusable:
        path, why = login.unusable[0]
        raise ObservationError(config.name, codes.AUTH_FAILED, f"the key file {path} cannot be used to log in to "
                               f"{where}: {why}{skipped}; expected a private key paramiko reads (RSA, ECDSA or "
                               "Ed25519): check identity_file (or the ssh config's IdentityFile), or use ssh-agent"
                               ) from failure
    if failure is None:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"no key to log in to {where} with{skipped}: set "
                               "identity_file, or add a key to ssh-agent")
    if isinstance(failure, paramiko.AuthenticationException):
        raise ObservationError(config.name, codes.AUTH_FAILED, f"{where} refused the login of {who}: "
                               f"{one_line(str(failure))}{skipped}; check the user and identity_file, and the key "
                               "in the user's authorized_keys") from failure
    raise ObservationError(config.name, codes.AUTH_FAILED, f"no usable key to log in to {where} as {who}: "
                           f"{one_line(str(failure)) or type(failure).__name__}{skipped}; check identity_file, or "
                           "add a key to ssh-agent") from failure
