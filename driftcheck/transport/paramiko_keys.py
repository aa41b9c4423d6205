"""Logging in with keys as paramiko's SSHClient does: the key files, then ssh-agent, then the default keys.

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


class _Login:
    """One login attempt; remembers why the last key failed."""

    def __init__(self, ssh: paramiko.Transport, user: str):
        self.ssh = ssh
        self.user = user
        self.failure: Exception | None = None
        #: an ssh-agent certificate broke the attempt
        self.agent_certificate = False

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
        except (OSError, ValueError, paramiko.SSHException) as exc:
            self.failure = exc
            return False
        return self.with_key(key)

    def with_agent(self) -> bool:
        try:
            agent = paramiko.Agent()
        except (OSError, paramiko.SSHException) as exc:
            self.failure = exc
            return False
        try:
            return any(self.with_key(key) for key in agent.get_keys())
        finally:
            agent.close()


def log_in(ssh: paramiko.Transport, config: HostConfig, username: str | None, key_files: Sequence[str],
           where: str) -> None:
    """Authenticate ssh or raise AUTH_FAILED; a connection lost meanwhile raises paramiko's error."""
    login = _Login(ssh, username or getpass.getuser())
    if any(login.with_file(path) for path in key_files) or login.with_agent():
        return
    if not key_files and any(login.with_file(os.path.expanduser(p)) for p in DEFAULT_KEYS if
                             os.path.isfile(os.path.expanduser(p))):
        return
    failure = login.failure
    if login.agent_certificate:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"logging in to {where}: ssh-agent holds a "
                               "certificate, which paramiko cannot use (paramiko issue 2462); remove it from "
                               "the agent (ssh-add -d), or set identity_file") from failure
    if isinstance(failure, paramiko.SSHException) and not ssh.is_active():
        raise failure  # the connection is gone: not a login problem
    who = username or "the local user"
    if failure is None:
        raise ObservationError(config.name, codes.AUTH_FAILED, f"no key to log in to {where} with: set "
                               "identity_file, or add a key to ssh-agent")
    if isinstance(failure, paramiko.AuthenticationException):
        raise ObservationError(config.name, codes.AUTH_FAILED, f"{where} refused the login of {who}: "
                               f"{one_line(str(failure))}; check the user and identity_file, and the key in the "
                               "user's authorized_keys") from failure
    raise ObservationError(config.name, codes.AUTH_FAILED, f"no usable key to log in to {where} as {who}: "
                           f"{one_line(str(failure)) or type(failure).__name__}; check identity_file, or add a key "
                           "to ssh-agent") from failure
