"""The only door to a host: a small Runner interface, one class per way of reaching a host.

    base.Runner                  host, connect(), run(argv) -> Output, close()
    ├── ParamikoRunner           paramiko://  (paramiko_runner; login in paramiko_login,
    │                            paramiko_keys, known_hosts)
    ├── LocalRunner              local://     (local_runner)
    └── CannedRunner             tests: answers from a table (canned)
    runners.open_runner(config)  the runner for a host's scheme (one row per scheme)
    recording.Transport          what callers use: allowlist, command record, one reconnect
    testinfra_backend            as_testinfra_host(runner): testinfra's Host over any runner

Every runner checks the read-only allowlist itself, bounds each command by the host's
timeout, never retries, never logs and raises only driftcheck.errors exceptions.
"""

from driftcheck.transport.base import MAX_OUTPUT, Runner
from driftcheck.transport.canned import CannedRunner
from driftcheck.transport.local_runner import LocalRunner
from driftcheck.transport.paramiko_runner import ParamikoRunner
from driftcheck.transport.recording import MAX_RECONNECTS, Transport
from driftcheck.transport.runners import RUNNERS, open_runner

__all__ = [
    "MAX_OUTPUT",
    "MAX_RECONNECTS",
    "RUNNERS",
    "CannedRunner",
    "LocalRunner",
    "ParamikoRunner",
    "Runner",
    "Transport",
    "open_runner",
]
