"""Which runner reaches a host: one row per connection scheme of hosts.yaml.

A new way of reaching a host (an OpenSSH `ssh://` runner, say) is a new Runner class and one
row here; no other runner changes.
"""

from __future__ import annotations

from collections.abc import Callable

from driftcheck import codes
from driftcheck.errors import ObservationError
from driftcheck.inventory import HostConfig
from driftcheck.transport.base import Runner
from driftcheck.transport.local_runner import LocalRunner
from driftcheck.transport.openssh_runner import OpenSSHRunner
from driftcheck.transport.paramiko_runner import ParamikoRunner

#: connection scheme -> the runner for a host of that scheme
RUNNERS: dict[str, Callable[[HostConfig], Runner]] = {
    "paramiko": ParamikoRunner,
    "ssh": OpenSSHRunner,
    "local": LocalRunner,
}


def open_runner(config: HostConfig) -> Runner:
    """The runner for one host (nothing connects until its first command)."""
    factory = RUNNERS.get(config.scheme)
    if factory is None:
        raise ObservationError(config.name, codes.HOST_UNREACHABLE, f"driftcheck cannot reach {config.scheme}:// "
                               f"hosts; use one of: {', '.join(f'{s}://' for s in RUNNERS)}")
    return factory(config)
