"""ssh://: the options forced on the system `ssh` client, its generated config, and its errors in our words.

Host-key settings come from hosts.yaml alone. They are forced twice: with `-o` on the command
line (the first value obtained wins, so no config file can weaken them) and in the first lines
(`Host *`) of a generated config that then Includes the user's own, so a ProxyJump hop, a second
`ssh` that gets the same `-F` file but not our `-o` options, checks its host key the same way.
"""

from __future__ import annotations

import math
import os
import re

from driftcheck import codes
from driftcheck.errors import ObservationError, one_line
from driftcheck.inventory import HostConfig

SSH = "ssh"
USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


def forced_options(config: HostConfig) -> list[tuple[str, str]]:
    """The options no ssh config may change, in the order they are given."""
    if config.known_hosts is not None:
        user_known, global_known = _quoted(config.known_hosts), "/dev/null"
    else:
        user_known, global_known = USER_KNOWN_HOSTS, SYSTEM_KNOWN_HOSTS
    return [
        ("StrictHostKeyChecking", "accept-new" if config.host_key_policy == "accept-new" else "yes"),
        ("UserKnownHostsFile", user_known),
        ("GlobalKnownHostsFile", global_known),
        ("KnownHostsCommand", "none"),
        ("VerifyHostKeyDNS", "no"),  # an SSHFP record must not vouch for a key hosts.yaml does not know
        ("UpdateHostKeys", "no"),  # never rewrite known_hosts from what the server says
        ("CheckHostIP", "no"),
        ("BatchMode", "yes"),
        ("PermitLocalCommand", "no"),
        ("ConnectTimeout", str(max(1, math.ceil(config.timeout)))),
        ("LogLevel", "ERROR"),
        ("ForwardAgent", "no"),
        ("ForwardX11", "no"),
        ("ClearAllForwardings", "yes"),
        ("RequestTTY", "no"),
    ]


def _quoted(path: str) -> str:
    """A path as ssh_config reads it: % tokens escaped, in double quotes (a path with `"` is refused)."""
    if '"' in path or "\n" in path:
        raise ValueError(f"ssh cannot be given the path {path!r}")
    return '"' + path.replace("%", "%%") + '"'


def included_configs(config: HostConfig) -> list[str]:
    """What the user's shell would read: ssh_config from hosts.yaml (as -F), else ~/.ssh/config and the system's."""
    if config.ssh_config is not None:
        return [config.ssh_config]
    return [path for path in (os.path.expanduser(USER_CONFIG), SYSTEM_CONFIG) if os.path.isfile(path)]


def generated_config(config: HostConfig) -> str:
    """The -F file: `Host *` with the forced options (and no reuse of the user's own masters), then Include."""
    lines = ["# written by driftcheck for one run; removed when the run ends", "Host *"]
    lines += [f"  {key} {value}" for key, value in forced_options(config)]
    # Hops never ride on a ControlMaster of the user's that checked its key under other rules.
    lines += ["  ControlMaster no", "  ControlPath none"]
    lines += [f"  Include {_quoted(path)}" for path in included_configs(config)]
    return "\n".join(lines) + "\n"


def common_argv(config: HostConfig, config_file: str) -> list[str]:
    argv = [SSH, "-F", config_file]
    for key, value in forced_options(config):
        argv += ["-o", f"{key}={value}"]
    return argv


def master_argv(config: HostConfig, config_file: str, socket: str) -> list[str]:
    """Start the one connection of the run: authenticate, then serve commands on socket until told to exit."""
    argv = common_argv(config, config_file)
    argv += ["-o", "ControlMaster=yes", "-o", f"ControlPath={socket.replace('%', '%%')}", "-o", "ControlPersist=no",
             "-N", "-T", "-x", "-a"]
    if config.identity_file:
        argv += ["-i", config.identity_file.replace("%", "%%"), "-o", "IdentitiesOnly=yes"]
    return argv + _destination(config)


def client_argv(config: HostConfig, config_file: str, socket: str, *extra: str, command: str | None = None
                ) -> list[str]:
    """A command over the master's socket. No user config is read (no Match exec runs again), and if the
    master is gone ssh's fallback to a connection of its own fails at once (ProxyCommand /bin/false)."""
    argv = common_argv(config, config_file)
    argv += ["-o", "ControlMaster=no", "-o", f"ControlPath={socket.replace('%', '%%')}",
             "-o", "ProxyCommand=/bin/false", "-T", "-x", "-a", *extra]
    # The command line, one argument after the destination: the only remote command.
    return argv + _destination(config) + ([command] if command is not None else [])


def _destination(config: HostConfig) -> list[str]:
    argv = []
    if config.user:
        argv += ["-l", config.user]
    if config.port:
        argv += ["-p", str(config.port)]
    # Host names are validated in inventory (no leading "-"); "--" ends ssh's options anyway.
    return [*argv, "--", config.hostname or ""]


# -- ssh's own failures (exit 255) in the words of SPEC §5 ---------------------------------------

_RULES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed|"
                r"host key .* (?:is revoked|revoked)", re.I), codes.HOST_KEY_MISMATCH,
     "if the host was rebuilt, replace its entry in known_hosts after checking the new fingerprint"),
    (re.compile(r"No \S+ host key is known|Host key verification failed|host key .* not known", re.I),
     codes.HOST_KEY_UNKNOWN, "add the host's key to known_hosts after checking its fingerprint, or set "
     "host_key_policy: accept-new"),
    # A ProxyCommand that cannot start: the shell ssh runs it with says so (before "Permission denied" below).
    (re.compile(r"^(?:\S*/)?(?:sh|bash|dash|zsh|ksh)(?:: line \d+|: \d+)?: .*(?:No such file or directory|"
                r"not found|Permission denied)\s*$", re.M),
     codes.HOST_UNREACHABLE, "a ProxyCommand of the ssh config could not run: fix it in the ssh config, or install "
     "the program it names"),
    # The ssh config itself: ssh names the file and line ("Bad port 'abc'", "Bad configuration option").
    (re.compile(r"line \d+: (?:Bad |Unsupported option|garbage at end of line)|bad configuration options", re.I),
     codes.HOST_UNREACHABLE, "fix that line of the ssh config (ssh_config in hosts.yaml, or your own)"),
    (re.compile(r"Permission denied|Too many authentication failures|no more authentication methods", re.I),
     codes.AUTH_FAILED, "check the user, identity_file, ssh-agent and the host's authorized_keys"),
    (re.compile(r"Could not resolve hostname|Name or service not known|nodename nor servname", re.I),
     codes.HOST_UNREACHABLE, "check the connection URL (or the ssh config's HostName), or MagicDNS if it is a "
     "Tailscale name"),
    (re.compile(r"Connection refused|No route to host|timed out|Network is unreachable|Connection reset|"
                r"Connection closed|kex_exchange_identification", re.I),
     codes.HOST_UNREACHABLE, "check the address, the port and that sshd runs there"),
]


def first_error_line(stderr: str) -> str:
    """ssh's first line that says something (not the @@@ frame of its host-key warning)."""
    for line in stderr.split("\n"):
        text = line.strip().strip("@").strip()
        if text and not text.startswith("Warning: Permanently added"):
            return one_line(text)
    return ""


def connect_error(config: HostConfig, stderr: str, status: int | None) -> ObservationError:
    """One ObservationError for a master that did not come up, quoting ssh's first error line."""
    first = first_error_line(stderr)
    where = _where(config)
    for pattern, code, hint in _RULES:
        if pattern.search(stderr):
            detail = first
            if code == codes.HOST_KEY_MISMATCH:
                offending = re.search(r"Offending \S+ key in (\S+)", stderr)
                if offending:
                    detail = f"{first} (offending entry: {one_line(offending.group(1))})"
            return ObservationError(config.name, code, f"ssh to {where}: {detail}; {hint}")
    said = first or f"ssh exited with status {status} without a message"
    return ObservationError(config.name, codes.HOST_UNREACHABLE, f"ssh to {where}: {said}; check the address, "
                            "the port, the ssh config and that sshd runs there")


def _where(config: HostConfig) -> str:
    where = config.hostname or ""
    if config.user:
        where = f"{config.user}@{where}"
    return f"{where}:{config.port}" if config.port else where
