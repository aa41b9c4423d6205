"""The check registry: one row per check, and everything derived from it.

A row names the check (its test id `test_<name>` and its `ignore.check` value), the manifest
keys that enable it, the codes it can report, what it needs observed and its pure function.
Which checks a module gets, the code -> check map of --compare-with, the codes --strict-images
turns into drift, the schema's `ignore.check` values and the docs' code table all come from
CHECKS. Adding a check: a row here, its function in compare.py, its manifest key (manifest.py,
schema/), its observation field (records.py, observe.py), its test in checks/ and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from driftcheck import codes, compare
from driftcheck.codes import Code
from driftcheck.compare import Observed, ProjectOnHost
from driftcheck.verdict import Verdict

if TYPE_CHECKING:
    from driftcheck.manifest import Module


class Need(Enum):
    """What a check needs observed, besides the module itself."""

    #: the module's container (docker ps + the run's one docker inspect)
    CONTAINER = "container"
    #: the images of the host's containers and declared tags (the run's one docker image inspect)
    IMAGES = "images"
    #: every container on the host (the run's one docker ps)
    LISTING = "listing"
    #: the config hash of the module's compose.file, computed locally
    COMPOSE_HASH = "compose hash"


@dataclass(frozen=True)
class Check:
    """One drift check."""

    #: test_<name> in checks/, and the value of ignore[].check
    name: str
    #: the file under checks/ that holds its test
    file: str
    #: one line: what it proves
    doc: str
    #: Module fields that enable it (any of them declared); () for a check every module gets
    keys: tuple[str, ...]
    #: the codes it can report (CONTAINER_MISSING and IGNORE_EXPIRED aside: any check may)
    reports: tuple[Code, ...]
    #: what it needs observed
    needs: frozenset[Need]
    #: (subject, observed) -> Verdict, pure
    verdict: Callable[[Any, Observed], Verdict]
    #: warnings that --strict-images reports as drift
    strict: tuple[Code, ...] = ()
    #: per compose project and host (orphans), not per module
    per_project: bool = False
    #: checked for a module desired absent (only `exists` is)
    when_absent: bool = False

    def applies(self, module: Module) -> bool:
        if self.per_project:
            return False
        if module.state == "absent":
            return self.when_absent
        return not self.keys or any(getattr(module, key) is not None for key in self.keys)

    def run(self, subject: Module | ProjectOnHost, observed: Observed) -> Verdict:
        """The verdict on a subject; a module whose container is missing gets CONTAINER_MISSING."""
        if not self.when_absent and not self.per_project and observed.container is None:
            assert not isinstance(subject, ProjectOnHost)
            return compare.missing(subject)
        return self.verdict(subject, observed)


_C, _I, _L, _H = Need.CONTAINER, Need.IMAGES, Need.LISTING, Need.COMPOSE_HASH
CONTAINER_FILE, ORPHANS_FILE = "test_container.py", "test_orphans.py"

CHECKS: tuple[Check, ...] = (
    Check("exists", CONTAINER_FILE, "The container exists (or, desired absent, does not).", (),
          (codes.CONTAINER_MISSING, codes.UNEXPECTEDLY_PRESENT), frozenset({_C}), compare.check_exists,
          when_absent=True),
    Check("labels", CONTAINER_FILE, "Its compose project and service labels match the module.", (),
          (codes.PROJECT_LABEL_MISMATCH, codes.SERVICE_LABEL_MISMATCH), frozenset({_C}), compare.check_labels),
    Check("state", CONTAINER_FILE, "It is running, or stopped, as desired.", (),
          (codes.NOT_RUNNING, codes.UNEXPECTEDLY_RUNNING), frozenset({_C}), compare.check_state),
    Check("image", CONTAINER_FILE, "Its configured image ref matches; the digest is proven when declared.", (),
          (codes.IMAGE_TAG_MISMATCH, codes.IMAGE_DIGEST_MISMATCH, codes.IMAGE_STALE,
           codes.IMAGE_DIGEST_NOT_VERIFIED, codes.IMAGE_NOT_OBSERVED), frozenset({_C, _I}), compare.check_image,
          strict=(codes.IMAGE_DIGEST_NOT_VERIFIED, codes.IMAGE_NOT_OBSERVED)),
    Check("replicas", CONTAINER_FILE, "As many containers of its compose service run as it declares (one-offs "
          "aside).", ("replicas",), (codes.REPLICAS_MISMATCH, codes.ONEOFF_RUNNING), frozenset({_C, _L}),
          compare.check_replicas),
    Check("restart_policy", CONTAINER_FILE, "Its restart policy is the declared one, and it is not in a restart "
          "loop.", ("restart_policy",), (codes.RESTART_POLICY_MISMATCH, codes.RESTART_LOOP), frozenset({_C}),
          compare.check_restart_policy),
    Check("ports", CONTAINER_FILE, "Its published ports are the declared set.", ("ports",),
          (codes.PORTS_MISMATCH,), frozenset({_C}), compare.check_ports),
    Check("env", CONTAINER_FILE, "The declared variables are set, with the declared value digests.",
          ("env_keys", "env_digests"), (codes.ENV_KEY_MISSING, codes.ENV_KEY_UNEXPECTED, codes.ENV_VALUE_MISMATCH),
          frozenset({_C}), compare.check_env),
    Check("mounts", CONTAINER_FILE, "Its volume and bind mounts are the declared set.", ("mounts",),
          (codes.MOUNTS_MISMATCH,), frozenset({_C}), compare.check_mounts),
    Check("networks", CONTAINER_FILE, "It is attached to the declared networks.", ("networks",),
          (codes.NETWORKS_MISMATCH,), frozenset({_C}), compare.check_networks),
    Check("health", CONTAINER_FILE, "Its healthcheck reports healthy.", ("health",),
          (codes.UNHEALTHY, codes.NOT_RUNNING), frozenset({_C}), compare.check_health),
    Check("config_hash", CONTAINER_FILE, "Compose would not recreate it: its config hash is the one the repo's "
          "compose file gives.", ("compose_file",), (codes.CONFIG_HASH_MISMATCH, codes.CONFIG_HASH_NOT_COMPARABLE),
          frozenset({_C, _H}), compare.check_config_hash),
    Check("orphans", ORPHANS_FILE, "No container of the project runs that no module claims.", (),
          (codes.ORPHAN_CONTAINER,), frozenset({_L}), compare.check_orphans, per_project=True),
)
BY_NAME: dict[str, Check] = {c.name: c for c in CHECKS}
#: warnings --strict-images reports as drift
STRICT_CODES: frozenset[Code] = frozenset(code for c in CHECKS for code in c.strict)


def checks_for(module: Module) -> tuple[str, ...]:
    """The checks a module gets (test_<check>[<module>]), in registry order."""
    return tuple(c.name for c in CHECKS if c.applies(module))


def waivable() -> tuple[str, ...]:
    """The values ignore[].check may take: every per-module check."""
    return tuple(c.name for c in CHECKS if not c.per_project)


#: codes every check may report: the one cause of a missing container, an expired waiver
ANY_CHECK: frozenset[Code] = frozenset({codes.CONTAINER_MISSING, codes.IGNORE_EXPIRED})


def checks_reporting(code: str, field: str = "") -> frozenset[str]:
    """The checks that can report a change: every check for CONTAINER_MISSING; for IGNORE_EXPIRED, the
    check its waiver names (its field is ignore[<check>].until)."""
    if code == codes.IGNORE_EXPIRED and field.startswith("ignore[") and "]" in field:
        return frozenset({field[len("ignore["):field.index("]")]})
    return frozenset(c.name for c in CHECKS if code in ANY_CHECK or code in c.reports)
