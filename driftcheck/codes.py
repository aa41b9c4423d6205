"""Every code driftcheck reports, defined once, with its kind.

A code is a `str` (it is what plan.json, junit.xml and the terminal show), carrying its kind:

    drift    a difference between the repo and the host: a failing check, exit 1
    warning  something that could not be proven; never changes the exit code
    error    the run could not answer for a module or for itself: exit 2

Everything else (the check registry, --compare-with, --strict-images, the docs' code table)
refers to these objects; no other module spells a code.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    DRIFT = "drift"
    WARNING = "warning"
    ERROR = "error"


#: every code by name, in definition order
CODES: dict[str, Code] = {}


class Code(str):
    """A code: its name is the string; `kind` and `meaning` say what it is."""

    kind: Kind
    meaning: str

    def __new__(cls, name: str, kind: Kind, meaning: str) -> Code:
        if name in CODES:
            raise ValueError(f"code {name} is defined twice")
        code = super().__new__(cls, name)
        code.kind = kind
        code.meaning = meaning
        CODES[name] = code
        return code


def of_kind(kind: Kind) -> tuple[Code, ...]:
    return tuple(c for c in CODES.values() if c.kind is kind)


_D, _W, _E = Kind.DRIFT, Kind.WARNING, Kind.ERROR

# Drift: what a check finds.
CONTAINER_MISSING = Code("CONTAINER_MISSING", _D, "the module's container does not exist (every check of the "
                         "module reports this one cause)")
UNEXPECTEDLY_PRESENT = Code("UNEXPECTEDLY_PRESENT", _D, "a container desired absent exists")
PROJECT_LABEL_MISMATCH = Code("PROJECT_LABEL_MISMATCH", _D, "its compose project label differs")
SERVICE_LABEL_MISMATCH = Code("SERVICE_LABEL_MISMATCH", _D, "its compose service label differs")
NOT_RUNNING = Code("NOT_RUNNING", _D, "desired running, but it is created, exited, paused, restarting or dead")
UNEXPECTEDLY_RUNNING = Code("UNEXPECTEDLY_RUNNING", _D, "desired stopped, but it runs")
IMAGE_TAG_MISMATCH = Code("IMAGE_TAG_MISMATCH", _D, "the container's configured image ref differs")
IMAGE_DIGEST_MISMATCH = Code("IMAGE_DIGEST_MISMATCH", _D, "the declared digest is not the running image's")
IMAGE_STALE = Code("IMAGE_STALE", _D, "the declared tag now names a newer image than the container runs")
REPLICAS_MISMATCH = Code("REPLICAS_MISMATCH", _D, "another number of containers runs the service (one-off "
                         "containers aside), or another replica is not in the desired state")
RESTART_POLICY_MISMATCH = Code("RESTART_POLICY_MISMATCH", _D, "its restart policy differs")
RESTART_LOOP = Code("RESTART_LOOP", _D, "it is restarting, or restarted more than 5 times")
PORTS_MISMATCH = Code("PORTS_MISMATCH", _D, "its published ports differ")
ENV_KEY_MISSING = Code("ENV_KEY_MISSING", _D, "a declared variable is not set")
ENV_KEY_UNEXPECTED = Code("ENV_KEY_UNEXPECTED", _D, "a variable is set that a module with env_keys_complete "
                          "does not declare")
ENV_VALUE_MISMATCH = Code("ENV_VALUE_MISMATCH", _D, "a variable's value differs from its declared digest")
MOUNTS_MISMATCH = Code("MOUNTS_MISMATCH", _D, "its volume and bind mounts differ")
NETWORKS_MISMATCH = Code("NETWORKS_MISMATCH", _D, "it is attached to other networks")
UNHEALTHY = Code("UNHEALTHY", _D, "its healthcheck is not healthy (or it has none)")
CONFIG_HASH_MISMATCH = Code("CONFIG_HASH_MISMATCH", _D, "it was created from another config than the repo's "
                            "compose file gives")
ORPHAN_CONTAINER = Code("ORPHAN_CONTAINER", _D, "a container of a module's project that no module claims")
IGNORE_EXPIRED = Code("IGNORE_EXPIRED", _D, "a waiver (ignore:) is past its until date")

# Warnings: what could not be proven.
IMAGE_DIGEST_NOT_VERIFIED = Code("IMAGE_DIGEST_NOT_VERIFIED", _W, "the image ref matches, but no declared digest "
                                 "was proven (drift with --strict-images)")
IMAGE_NOT_OBSERVED = Code("IMAGE_NOT_OBSERVED", _W, "the running image cannot be inspected on the host "
                          "(drift with --strict-images)")
ONEOFF_RUNNING = Code("ONEOFF_RUNNING", _W, "a one-off container of the service (docker compose run) is running; "
                      "it is never counted as a replica")
CONFIG_HASH_NOT_COMPARABLE = Code("CONFIG_HASH_NOT_COMPARABLE", _W, "the container was created by another "
                                  "Compose version than this machine's")

# Errors: what kept a module, a host or the run from being answered.
MANIFEST_INVALID = Code("MANIFEST_INVALID", _E, "a module.yaml is invalid (file, key, what was expected)")
INVENTORY_INVALID = Code("INVENTORY_INVALID", _E, "hosts.yaml is invalid (file, key, what was expected)")
HOST_UNREACHABLE = Code("HOST_UNREACHABLE", _E, "refused, no route, name not found, connect timed out, "
                        "connection lost")
AUTH_FAILED = Code("AUTH_FAILED", _E, "the host refused the login")
HOST_KEY_UNKNOWN = Code("HOST_KEY_UNKNOWN", _E, "the host's key is not in known_hosts")
HOST_KEY_MISMATCH = Code("HOST_KEY_MISMATCH", _E, "the host's key differs from known_hosts")
TIMEOUT = Code("TIMEOUT", _E, "a remote command outlived the host's timeout")
DOCKER_UNAVAILABLE = Code("DOCKER_UNAVAILABLE", _E, "docker failed or is missing on the host")
OBSERVATION_INVALID = Code("OBSERVATION_INVALID", _E, "docker printed output of an unexpected shape")
COMPOSE_CONFIG_INVALID = Code("COMPOSE_CONFIG_INVALID", _E, "the module's compose.file does not render its "
                              "service locally")
NO_MODULES_SELECTED = Code("NO_MODULES_SELECTED", _E, "the -k/-m selection left no module")
NOT_CHECKED = Code("NOT_CHECKED", _E, "a check did not run (skipped, or the run ended early)")
CHECK_FAILED = Code("CHECK_FAILED", _E, "a check failed without a verdict")
INTERRUPTED = Code("INTERRUPTED", _E, "the run was stopped by SIGTERM or Ctrl-C")
ARTIFACTS_NOT_WRITTEN = Code("ARTIFACTS_NOT_WRITTEN", _E, "the run's artifacts could not be written")
SAFETY_VIOLATION = Code("SAFETY_VIOLATION", _E, "a command off the read-only allowlist was refused before "
                        "it was sent")
DRIFT_ERROR = Code("DRIFT_ERROR", _E, "any other error driftcheck raises on purpose")
