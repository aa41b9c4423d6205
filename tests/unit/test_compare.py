"""compare: every code, for every desired state, on containers captured from the lab."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from driftcheck.compare import Observed, ProjectOnHost
from driftcheck.observe import parse_image_inspect, parse_inspect, parse_listing
from driftcheck.records import ImageObservation, LocalCompose
from driftcheck.registry import BY_NAME
from driftcheck.verdict import Verdict
from tests.support.unit import make_module

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
BERLIN = "sha256:" + hashlib.sha256(b"Europe/Berlin").hexdigest()
#: what drift-lab's runtime-ok service runs (fixtures/lab/drift-lab.yaml)
RUNTIME_OK = {
    "replicas": 1, "restart_policy": "always", "ports": ["127.0.0.1:18082:80"], "env_keys": ["APP_TOKEN"],
    "env_digests": {"TZ": BERLIN},
    "mounts": ["drift-lab_data:/data", "/etc/hostname:/lab/hostname:ro"], "networks": ["drift-lab_default"],
    "health": "healthy",
}


@pytest.fixture(scope="module")
def observed(captured_containers):
    return parse_inspect("lab", captured_containers)


@pytest.fixture(scope="module")
def images(captured_images):
    return parse_image_inspect("lab", captured_images)


def codes(verdict):
    return [c.code for c in verdict.changes]


def judge(check, subject, container=None, images=None, listing=(), compose=None):
    """A check's verdict through the registry, as a run gets it."""
    return BY_NAME[check].run(subject, Observed(container, images or {}, listing, compose))


# (container in the capture or None, module overrides, check, expected change codes)
TABLE = [
    ("drift-lab-in-sync-1", {}, "exists", []),
    (None, {}, "exists", ["CONTAINER_MISSING"]),
    (None, {"desired__state": "stopped"}, "exists", ["CONTAINER_MISSING"]),
    (None, {"desired__state": "absent"}, "exists", []),
    ("drift-lab-should-be-gone-1", {"desired__state": "absent"}, "exists", ["UNEXPECTEDLY_PRESENT"]),
    ("drift-lab-stopped-ok-1", {"desired__state": "absent"}, "exists", ["UNEXPECTEDLY_PRESENT"]),
    ("drift-lab-in-sync-1", {}, "labels", []),
    ("drift-lab-relabelled-1", {"compose__service": "relabelled"}, "labels", ["SERVICE_LABEL_MISMATCH"]),
    ("drift-lab-in-sync-1", {"compose__project": "other"}, "labels", ["PROJECT_LABEL_MISMATCH"]),
    (None, {}, "labels", ["CONTAINER_MISSING"]),
    ("drift-lab-in-sync-1", {}, "state", []),
    ("drift-lab-stopped-1", {}, "state", ["NOT_RUNNING"]),
    ("drift-lab-stopped-1", {"desired__state": "stopped"}, "state", []),
    ("drift-lab-should-stop-1", {"desired__state": "stopped"}, "state", ["UNEXPECTEDLY_RUNNING"]),
    (None, {"desired__state": "stopped"}, "state", ["CONTAINER_MISSING"]),
    ("drift-lab-in-sync-1", {}, "image", []),
    ("drift-lab-wrong-tag-1", {}, "image", ["IMAGE_TAG_MISMATCH"]),
    ("drift-lab-in-sync-1", {"image": {"ref": "docker.io/lab/app:1"}}, "image", []),
    ("drift-lab-in-sync-1", {"image": {"ref": "lab/app"}}, "image", ["IMAGE_TAG_MISMATCH"]),
    ("drift-lab-in-sync-1", {"image": {"ref": "lab/app:1", "digest": DIGEST_A}}, "image",
     ["IMAGE_DIGEST_MISMATCH"]),
    ("drift-lab-stopped-ok-1", {"desired__state": "stopped"}, "image", []),
    (None, {}, "image", ["CONTAINER_MISSING"]),
    # the runtime checks, each only for a module declaring its key
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "restart_policy", []),
    ("drift-lab-runtime-ok-1", {"desired": {"restart_policy": "unless-stopped"}}, "restart_policy",
     ["RESTART_POLICY_MISMATCH"]),
    ("drift-lab-restart-drift-1", {"desired": {"restart_policy": "always"}}, "restart_policy",
     ["RESTART_POLICY_MISMATCH"]),
    ("drift-lab-restart-drift-1", {"desired": {"restart_policy": "no"}}, "restart_policy", []),
    ("drift-lab-restart-loop-1", {"desired": {"restart_policy": "always"}}, "restart_policy", ["RESTART_LOOP"]),
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "ports", []),
    ("drift-lab-ports-drift-1", {"desired": {"ports": ["127.0.0.1:18080:80"]}}, "ports", ["PORTS_MISMATCH"]),
    ("drift-lab-ports-drift-1", {"desired": {"ports": ["127.0.0.1:18081:80/tcp"]}}, "ports", []),
    ("drift-lab-in-sync-1", {"desired": {"ports": []}}, "ports", []),
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "env", []),
    ("drift-lab-env-drift-1", {"desired": {"env_keys": ["APP_TOKEN", "OTHER_KEY"]}}, "env", ["ENV_KEY_MISSING"]),
    ("drift-lab-env-drift-1", {"desired": {"env_digests": {"TZ": BERLIN}}}, "env", ["ENV_VALUE_MISMATCH"]),
    ("drift-lab-env-drift-1", {"desired": {"env_digests": {"NOPE": BERLIN}}}, "env", ["ENV_KEY_MISSING"]),
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "mounts", []),
    ("drift-lab-mounts-drift-1", {"desired": {"mounts": ["drift-lab_data:/data"]}}, "mounts", ["MOUNTS_MISMATCH"]),
    ("drift-lab-runtime-ok-1", {"desired": {"mounts": ["drift-lab_data:/data", "/etc/hostname:/lab/hostname"]}},
     "mounts", ["MOUNTS_MISMATCH"]),  # declared read-write, mounted read-only
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "networks", []),
    ("drift-lab-networks-drift-1", {"desired": {"networks": ["drift-lab_default", "drift-lab_backend"]}},
     "networks", ["NETWORKS_MISMATCH"]),
    ("drift-lab-runtime-ok-1", {"desired": RUNTIME_OK}, "health", []),
    ("drift-lab-unhealthy-1", {"desired": {"health": "healthy"}}, "health", ["UNHEALTHY"]),
    ("drift-lab-in-sync-1", {"desired": {"health": "healthy"}}, "health", ["UNHEALTHY"]),  # no healthcheck
    (None, {"desired": {"health": "healthy"}}, "health", ["CONTAINER_MISSING"]),
]


@pytest.mark.parametrize(("name", "overrides", "check", "expected"), TABLE)
def test_table(observed, images, name, overrides, check, expected):
    module = make_module(**overrides)
    container = observed[name] if name else None
    assert codes(judge(check, module, container, images)) == expected


def test_paused_restarting_dead_are_not_running(observed):
    running = observed["drift-lab-in-sync-1"]
    for status in ("paused", "restarting", "dead", "created", "exited"):
        container = dataclasses.replace(running, status=status)
        assert codes(judge("state", make_module(), container)) == ["NOT_RUNNING"]
    for status, expected in (("created", []), ("exited", []), ("paused", ["UNEXPECTEDLY_RUNNING"]),
                             ("restarting", ["UNEXPECTEDLY_RUNNING"])):
        container = dataclasses.replace(running, status=status)
        assert codes(judge("state", make_module(desired__state="stopped"), container)) == expected


def test_digest_proof_by_repo_digests(observed):
    container = observed["drift-lab-in-sync-1"]
    image = ImageObservation(container.image_id, ("lab/app:1",),
                             (f"lab/app@{DIGEST_A}", f"other/repo@{DIGEST_B}"))
    images = {container.image_id: image}
    proven = judge("image", make_module(image={"ref": "lab/app:1", "digest": DIGEST_A}), container, images)
    assert proven == Verdict()
    # A digest of another repository proves nothing about this one.
    wrong_repo = judge("image", make_module(image={"ref": "lab/app:1", "digest": DIGEST_B}), container, images)
    assert codes(wrong_repo) == ["IMAGE_DIGEST_MISMATCH"]
    assert wrong_repo.changes[0].observed == DIGEST_A


def test_warnings_when_nothing_proves_the_digest(observed, images):
    container = observed["drift-lab-in-sync-1"]
    verdict = judge("image", make_module(), container, images)
    assert verdict.changes == () and [w.code for w in verdict.warnings] == ["IMAGE_DIGEST_NOT_VERIFIED"]
    unobserved = judge("image", make_module(), container, {})
    assert [w.code for w in unobserved.warnings] == ["IMAGE_NOT_OBSERVED", "IMAGE_DIGEST_NOT_VERIFIED"]


def test_pinned_in_compose_matches_ref_with_digest(observed, images):
    container = dataclasses.replace(observed["drift-lab-in-sync-1"], configured_image=f"lab/app:1@{DIGEST_A}")
    pinned = make_module(image={"ref": "lab/app:1", "digest": DIGEST_A, "digest_pinned_in_compose": True})
    assert judge("image", pinned, container, images) == Verdict()
    other = make_module(image={"ref": "lab/app:1", "digest": DIGEST_B, "digest_pinned_in_compose": True})
    assert codes(judge("image", other, container, images)) == ["IMAGE_DIGEST_MISMATCH"]


def test_observed_secrets_never_reach_a_change(observed):
    """Env value digests and bind sources stay inside the observation; changes never carry them."""
    env = judge("env", make_module(desired={"env_digests": {"TZ": DIGEST_A}}), observed["drift-lab-env-drift-1"])
    digest_of_utc = dict(observed["drift-lab-env-drift-1"].env_digests)["TZ"]
    assert digest_of_utc not in repr(env) and "UTC" not in repr(env)
    mounts = judge("mounts", make_module(desired={"mounts": ["x:/y"]}), observed["drift-lab-mounts-drift-1"])
    assert codes(mounts) == ["MOUNTS_MISMATCH"]
    assert mounts.changes[0].observed == ("(bind):/lab/hostname:ro", "drift-lab_other:/data")


def test_restart_policy_on_failure_without_count_matches_any_count(observed):
    container = dataclasses.replace(observed["drift-lab-in-sync-1"], restart_policy="on-failure:3")
    assert judge("restart_policy", make_module(desired={"restart_policy": "on-failure"}), container).changes == ()
    assert codes(judge("restart_policy", make_module(desired={"restart_policy": "on-failure:2"}),
                       container)) == ["RESTART_POLICY_MISMATCH"]


def test_ipv6_twin_of_a_published_port_is_one_binding(observed):
    container = dataclasses.replace(observed["drift-lab-in-sync-1"],
                                    ports=("0.0.0.0:8080:80/tcp", ":::8080:80/tcp"))
    assert judge("ports", make_module(desired={"ports": ["8080:80"]}), container).changes == ()


def test_stale_image_under_a_correct_tag(observed, images):
    container = observed["drift-lab-in-sync-1"]
    newer = ImageObservation("sha256:" + "c" * 64, ("lab/app:1",), ())
    running = dataclasses.replace(images[container.image_id], repo_tags=())  # the tag moved away from it
    verdict = judge("image", make_module(), container, {container.image_id: running, newer.id: newer})
    assert codes(verdict) == ["IMAGE_STALE"]
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (newer.id, container.image_id)
    # The tag still names the running image: not stale; a digest-pinned ref is never stale.
    assert codes(judge("image", make_module(), container, images)) == []
    pinned = make_module(image={"ref": f"lab/app:1@{DIGEST_A}", "digest_pinned_in_compose": True})
    pinned_container = dataclasses.replace(container, configured_image=f"lab/app:1@{DIGEST_A}")
    assert "IMAGE_STALE" not in codes(judge("image", pinned, pinned_container,
                                            {container.image_id: running, newer.id: newer}))


@pytest.fixture(scope="module")
def listing():
    from driftcheck.observe import parse_listing
    from tests.support.unit import FIXTURES
    return parse_listing("lab", (FIXTURES / "inspect" / "ps.jsonl").read_bytes())


def test_replicas_counted_by_compose_labels(observed, listing):
    container = observed["drift-lab-scaled-1"]
    scaled = make_module(compose={"project": "drift-lab", "service": "scaled"}, desired={"replicas": 1})
    verdict = judge("replicas", scaled, container, listing=listing)
    assert codes(verdict) == ["REPLICAS_MISMATCH"]
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (1, 2)
    assert verdict.changes[0].message == "containers of the service: drift-lab-scaled-1, drift-lab-scaled-2"
    two = make_module(compose={"project": "drift-lab", "service": "scaled"}, desired={"replicas": 2})
    assert judge("replicas", two, container, listing=listing) == Verdict()
    assert codes(judge("replicas", two, None, listing=listing)) == ["CONTAINER_MISSING"]


def test_orphans_are_containers_of_the_project_no_module_claims(listing):
    modules = [make_module(name=n, compose={"project": "drift-lab", "service": n})
               for n in ("in-sync", "stopped", "wrong-tag", "should-stop", "should-be-gone", "stopped-ok",
                         "runtime-ok", "ports-drift", "env-drift", "mounts-drift", "networks-drift", "unhealthy",
                         "restart-drift", "restart-loop", "waived", "waiver-expired", "stale", "scaled")]
    # "relabelled" claims the impostor's container by its name, not by its service label.
    modules.append(make_module(name="relabelled", compose={"project": "drift-lab", "service": "relabelled"}))
    verdict = judge("orphans", ProjectOnHost("h", "drift-lab", tuple(modules)), listing=listing)
    assert [(c.observed, c.message) for c in verdict.changes] == [
        ("drift-lab-orphan-1", "service orphan; no module claims it")]
    assert codes(judge("orphans", ProjectOnHost("h", "drift-lab", tuple(modules[:-1])), listing=listing)) == \
        ["ORPHAN_CONTAINER"] * 2
    assert judge("orphans", ProjectOnHost("h", "other-project"), listing=listing) == Verdict()


def test_pinned_by_digest_without_a_tag_still_matches_the_ref(observed, images):
    container = dataclasses.replace(observed["drift-lab-in-sync-1"], configured_image=f"lab/app@{DIGEST_A}")
    pinned = make_module(image={"ref": "lab/app:1", "digest": DIGEST_A, "digest_pinned_in_compose": True})
    assert judge("image", pinned, container, images) == Verdict()
    # Without digest_pinned_in_compose the tag is missing: a mismatch.
    unpinned = make_module(image={"ref": "lab/app:1", "digest": DIGEST_A})
    assert codes(judge("image", unpinned, container, images)) == ["IMAGE_TAG_MISMATCH"]


def test_config_hash(observed):
    container = observed["drift-lab-in-sync-1"]
    labels = dict(container.labels)
    local, version = labels["com.docker.compose.config-hash"], labels["com.docker.compose.version"]
    module = make_module(compose={"project": "drift-lab", "service": "in-sync", "file": "compose.yaml"})
    assert judge("config_hash", module, container, compose=LocalCompose(local, version)) == Verdict()
    changed = judge("config_hash", module, container, compose=LocalCompose("f" * 64, version))
    assert codes(changed) == ["CONFIG_HASH_MISMATCH"] and "Compose would recreate" in changed.changes[0].message
    assert (changed.changes[0].desired, changed.changes[0].observed) == ("f" * 64, local)
    other = judge("config_hash", module, container, compose=LocalCompose("f" * 64, "2.20.0"))
    assert other.changes == () and [w.code for w in other.warnings] == ["CONFIG_HASH_NOT_COMPARABLE"]
    assert version in other.warnings[0].message and "2.20.0" in other.warnings[0].message
    # A service on another service's network whose network mode was not observed: no claim either way.
    unknown = dataclasses.replace(container, network_mode="")
    shared = judge("config_hash", module, unknown, compose=LocalCompose("f" * 64, version, "service:db"))
    assert shared.changes == () and [w.code for w in shared.warnings] == ["CONFIG_HASH_NOT_COMPARABLE"]
    # The repo puts it on another service's network, the container runs on its own: Compose would recreate.
    own = dataclasses.replace(container, network_mode="drift-lab_default")
    moved = judge("config_hash", module, own, compose=LocalCompose("f" * 64, version, "service:db"))
    assert codes(moved) == ["CONFIG_HASH_MISMATCH"]


def test_a_stopped_container_with_a_healthcheck_has_one_cause(observed):
    """NOT_RUNNING from both the state and the health check: one change in the plan, never UNHEALTHY too."""
    stopped = dataclasses.replace(observed["drift-lab-unhealthy-1"], status="exited")
    module = make_module(desired={"health": "healthy"})
    assert judge("health", module, stopped) == judge("state", module, stopped)
    assert codes(judge("health", module, stopped)) == ["NOT_RUNNING"]


def test_changes_carry_values_and_prose_goes_to_the_message(observed):
    env = judge("env", make_module(desired={"env_digests": {"TZ": DIGEST_A}}), observed["drift-lab-env-drift-1"])
    assert env.changes[0].to_json() == {"code": "ENV_VALUE_MISMATCH", "field": "desired.env_digests.TZ",
                                        "desired": DIGEST_A, "observed": None,
                                        "message": "the variable holds a different value (never shown)"}
    ports = judge("ports", make_module(desired={"ports": ["127.0.0.1:18080:80"]}), observed["drift-lab-ports-drift-1"])
    assert ports.changes[0].to_json()["desired"] == ["127.0.0.1:18080:80/tcp"]


@pytest.mark.parametrize("pinned", [True, False])
@pytest.mark.parametrize("ref", [f"lab/app@{DIGEST_A}", f"lab/app:1@{DIGEST_A}"])
def test_a_digest_in_the_ref_is_a_claim_that_is_compared(observed, images, pinned, ref):
    """Re-pinned compose (repo@sha256:B) against a module pinning sha256:A is drift, never in sync."""
    module = make_module(image={"ref": ref, "digest_pinned_in_compose": pinned})
    repinned = dataclasses.replace(observed["drift-lab-in-sync-1"], configured_image=f"lab/app@{DIGEST_B}")
    verdict = judge("image", module, repinned, images)
    assert codes(verdict) == ["IMAGE_DIGEST_MISMATCH"]
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (DIGEST_A, DIGEST_B)
    same = dataclasses.replace(repinned, configured_image=f"lab/app@{DIGEST_A}")
    assert judge("image", module, same, images) == Verdict()  # the claim holds


def test_a_digest_in_the_ref_is_compared_with_the_repo_digests(observed):
    """Compose used the tag; the running image's RepoDigests show another digest than the ref claims."""
    container = observed["drift-lab-in-sync-1"]
    images = {container.image_id: ImageObservation(container.image_id, ("lab/app:1",), (f"lab/app@{DIGEST_B}",))}
    verdict = judge("image", make_module(image={"ref": f"lab/app:1@{DIGEST_A}"}), container, images)
    assert codes(verdict) == ["IMAGE_DIGEST_MISMATCH"] and verdict.changes[0].observed == DIGEST_B
    proven = judge("image", make_module(image={"ref": f"lab/app:1@{DIGEST_B}"}), container, images)
    assert proven == Verdict()


# -- Compose's own shapes (issue 13), on a hand-written inspect modelled on the lab corpus --------------

@pytest.fixture(scope="module")
def shapes():
    from tests.support.unit import FIXTURES
    [container] = parse_inspect("h", (FIXTURES / "inspect" / "compose-shapes.containers.json").read_bytes()).values()
    listing = parse_listing("h", (FIXTURES / "inspect" / "compose-shapes.ps.jsonl").read_bytes())
    return container, listing


def shape_module(**desired):
    return make_module(compose={"project": "shapes", "service": "web"}, image={"ref": "ghcr.io/acme/web:2.1"},
                       desired=desired)


SHAPE_PORTS = ["8080", "127.0.0.1::53/udp", "127.0.0.1:18443:443"]


@pytest.mark.parametrize(("ports", "expected"), [
    (SHAPE_PORTS, []),
    (["0.0.0.0::8080/tcp", "127.0.0.1::53/udp", "127.0.0.1:18443:443/tcp"], []),  # as make import writes them
    (["8080", "127.0.0.1::53/udp"], ["PORTS_MISMATCH"]),  # 443 published, not declared
    (["8080", "127.0.0.1::53/udp", "127.0.0.1:18443:443", "9090"], ["PORTS_MISMATCH"]),  # 9090 not published
    (["8080/udp", "127.0.0.1::53/udp", "127.0.0.1:18443:443"], ["PORTS_MISMATCH"]),  # another protocol
    (["127.0.0.1::8080", "127.0.0.1::53/udp", "127.0.0.1:18443:443"], ["PORTS_MISMATCH"]),  # another address
    (["8080", "127.0.0.1::53/udp", "127.0.0.1::443"], []),  # ephemeral declared: any host port matches (SPEC §9)
    # an ephemeral and a fixed binding of one port are two bindings: one is missing
    (["8080", "127.0.0.1::53/udp", "127.0.0.1::443", "127.0.0.1:18443:443"], ["PORTS_MISMATCH"]),
    (["8080", "127.0.0.1::53/udp", "127.0.0.1::443", "127.0.0.1:18444:443"], ["PORTS_MISMATCH"]),
])
def test_an_ephemeral_host_port_is_matched_by_any_published_host_port(shapes, ports, expected):
    container, _ = shapes
    assert container.published_ports() == {"0.0.0.0::8080/tcp", "127.0.0.1::53/udp", "127.0.0.1:18443:443/tcp"}
    assert codes(judge("ports", shape_module(ports=ports), container)) == expected


def test_a_fixed_host_port_is_not_an_ephemeral_one_and_the_ipv6_twin_folds(observed):
    fixed = dataclasses.replace(observed["drift-lab-in-sync-1"], ports=("0.0.0.0:32768:80/tcp", ":::32768:80/tcp"))
    assert judge("ports", make_module(desired={"ports": ["80"]}), fixed) == Verdict()
    ephemeral = dataclasses.replace(fixed, ports=("0.0.0.0::80/tcp", "::::80/tcp"))  # HostIp "::", HostPort ""
    assert judge("ports", make_module(desired={"ports": ["80"]}), ephemeral) == Verdict()
    verdict = judge("ports", make_module(desired={"ports": ["8080:80"]}), ephemeral)
    assert codes(verdict) == ["PORTS_MISMATCH"]
    assert verdict.changes[0].message == "missing: 0.0.0.0:8080:80/tcp; extra: 0.0.0.0::80/tcp"
    nothing = dataclasses.replace(fixed, ports=())
    assert codes(judge("ports", make_module(desired={"ports": ["80"]}), nothing)) == ["PORTS_MISMATCH"]


SHAPE_MOUNTS = ["shapes_uploads:/app/uploads", "/app/node_modules", "secret:db_password",
                "/srv/stacks/shapes/nginx:/etc/nginx/conf.d:ro"]


def test_compose_mounts_as_make_import_writes_them_are_in_sync(shapes):
    container, _ = shapes
    assert judge("mounts", shape_module(mounts=SHAPE_MOUNTS), container) == Verdict()


def test_an_anonymous_volume_is_compared_by_its_destination(shapes):
    container, _ = shapes
    module = shape_module(mounts=SHAPE_MOUNTS)
    # down/up: a new random name for the anonymous volume, still in sync
    renamed = tuple((k, "7c" * 32 if d == "/app/node_modules" else s, d, ro) for k, s, d, ro in container.mounts)
    assert judge("mounts", module, dataclasses.replace(container, mounts=renamed)) == Verdict()
    moved = tuple((k, s, "/app/vendor" if d == "/app/node_modules" else d, ro) for k, s, d, ro in container.mounts)
    verdict = judge("mounts", module, dataclasses.replace(container, mounts=moved))
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (("/app/node_modules",), ("/app/vendor",))


def test_a_compose_secret_is_matched_by_its_run_secrets_destination(shapes):
    container, _ = shapes
    module = shape_module(mounts=SHAPE_MOUNTS)
    # another file backs it, mounted read-write: still the secret db_password
    other = tuple((k, "/elsewhere/pw" if d == "/run/secrets/db_password" else s, d,
                   False if d == "/run/secrets/db_password" else ro) for k, s, d, ro in container.mounts)
    assert judge("mounts", module, dataclasses.replace(container, mounts=other)) == Verdict()
    renamed = tuple((k, s, "/run/secrets/db_pass" if d == "/run/secrets/db_password" else d, ro)
                    for k, s, d, ro in container.mounts)
    verdict = judge("mounts", module, dataclasses.replace(container, mounts=renamed))
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (("secret:db_password",), ("secret:db_pass",))


def test_mounts_mismatch_says_what_is_missing_and_what_is_extra_never_a_bind_source(shapes):
    container, _ = shapes
    declared = ["shapes_data:/app/uploads", "/app/node_modules", "secret:db_password", "/srv/other:/etc/nginx/conf.d"]
    verdict = judge("mounts", shape_module(mounts=declared), container)
    [change] = verdict.changes
    assert change.code == "MOUNTS_MISMATCH"
    assert change.desired == ("/srv/other:/etc/nginx/conf.d", "shapes_data:/app/uploads")
    assert change.observed == ("(bind):/etc/nginx/conf.d:ro", "shapes_uploads:/app/uploads")
    assert change.message == ("missing: /srv/other:/etc/nginx/conf.d, shapes_data:/app/uploads; "
                              "extra: (bind):/etc/nginx/conf.d:ro, shapes_uploads:/app/uploads")
    assert "/srv/stacks" not in repr(verdict)
    fewer = judge("mounts", shape_module(mounts=SHAPE_MOUNTS[:3]), container).changes[0]
    assert (fewer.desired, fewer.observed) == ((), ("(bind):/etc/nginx/conf.d:ro",))
    assert fewer.message == "missing: (none); extra: (bind):/etc/nginx/conf.d:ro"


def test_dotted_env_names_are_compared(shapes):
    container, _ = shapes
    utc = "sha256:" + hashlib.sha256(b"single-node").hexdigest()
    assert judge("env", shape_module(env_keys=["discovery.type", "TZ"], env_digests={"discovery.type": utc}),
                 container) == Verdict()
    verdict = judge("env", shape_module(env_keys=["discovery.type", "cluster.name"],
                                        env_digests={"discovery.type": DIGEST_A}), container)
    assert [(c.code, c.field) for c in verdict.changes] == [
        ("ENV_KEY_MISSING", "desired.env_keys"), ("ENV_VALUE_MISMATCH", "desired.env_digests.discovery.type")]


def test_one_off_containers_are_never_replicas_and_a_running_one_is_a_warning(shapes):
    container, listing = shapes
    module = make_module(compose={"project": "shapes", "service": "web"}, image={"ref": "ghcr.io/acme/web:2.1"},
                         desired={"state": "running", "replicas": 1})
    alone = tuple(c for c in listing if c.name != "shapes-web-2")
    verdict = judge("replicas", module, container, listing=alone)
    assert verdict.changes == ()
    assert [(w.code, w.message) for w in verdict.warnings] == [(
        "ONEOFF_RUNNING", "one-off container(s) of the service running (docker compose run, never counted as "
        "replicas): shapes-web-run-0a1b2c3d4e5f")]
    stopped = tuple(dataclasses.replace(c, state="exited") if c.oneoff else c for c in alone)
    assert judge("replicas", module, container, listing=stopped) == Verdict()  # kept after it exits: nothing


def test_a_replica_other_than_the_modules_container_is_in_its_desired_state(shapes):
    container, listing = shapes
    two = make_module(compose={"project": "shapes", "service": "web"}, image={"ref": "ghcr.io/acme/web:2.1"},
                      desired={"replicas": 2})
    verdict = judge("replicas", two, container, listing=listing)  # shapes-web-2 exited
    assert codes(verdict) == ["REPLICAS_MISMATCH"]
    assert (verdict.changes[0].desired, verdict.changes[0].observed) == (2, 1)
    assert verdict.changes[0].message == ("containers of the service: shapes-web-1, shapes-web-2 (exited); "
                                          "not running: 1")
    running = tuple(dataclasses.replace(c, state="running") for c in listing)
    assert codes(judge("replicas", two, container, listing=running)) == []
    # its own container's state is the state check's one cause: never REPLICAS_MISMATCH too
    first_stopped = tuple(dataclasses.replace(c, state="exited" if c.name == "shapes-web-1" else "running")
                          for c in listing)
    assert codes(judge("replicas", two, container, listing=first_stopped)) == []
    stopped = make_module(compose={"project": "shapes", "service": "web"}, image={"ref": "ghcr.io/acme/web:2.1"},
                          desired={"state": "stopped", "replicas": 2})
    assert codes(judge("replicas", stopped, container, listing=running)) == ["REPLICAS_MISMATCH"]
    all_stopped = tuple(dataclasses.replace(c, state="exited") for c in listing)
    assert codes(judge("replicas", stopped, container, listing=all_stopped)) == []


def test_a_one_off_of_a_claimed_service_is_not_an_orphan(shapes):
    _, listing = shapes
    web = make_module(name="web", compose={"project": "shapes", "service": "web"})
    verdict = judge("orphans", ProjectOnHost("h", "shapes", (web,)), listing=listing)
    # the web one-offs are claimed by web's service label; migrate's one-off (its service has no
    # module: a profiled job run by hand) is no service of its own either
    assert [c.observed for c in verdict.changes] == []


def test_both_declared_digests_are_claims(observed):
    """image.digest proven does not excuse another digest pinned in image.ref (a value parsed, never compared)."""
    container = observed["drift-lab-in-sync-1"]  # configured lab/app:1, compose used the tag
    images = {container.image_id: ImageObservation(container.image_id, ("lab/app:1",), (f"lab/app@{DIGEST_B}",))}
    module = make_module(image={"ref": f"lab/app:1@{DIGEST_A}", "digest": DIGEST_B})
    verdict = judge("image", module, container, images)
    assert codes(verdict) == ["IMAGE_DIGEST_MISMATCH"]
    assert (verdict.changes[0].field, verdict.changes[0].desired, verdict.changes[0].observed) == \
        ("image.ref", DIGEST_A, DIGEST_B)
    both = make_module(image={"ref": f"lab/app:1@{DIGEST_B}", "digest": DIGEST_B})
    assert judge("image", both, container, images) == Verdict()
    # nothing on the host proves the ref's digest: not verified, never in sync without a word
    bare = {container.image_id: ImageObservation(container.image_id, ("lab/app:1",), ())}
    pinned = make_module(image={"ref": f"lab/app:1@{DIGEST_A}", "digest": DIGEST_B, "digest_pinned_in_compose": True})
    unproven = judge("image", pinned, dataclasses.replace(container, configured_image=f"lab/app:1@{DIGEST_A}"), bare)
    assert codes(unproven) == ["IMAGE_DIGEST_MISMATCH"]  # image.digest B: neither repo digest nor the pinned A


def test_on_failure_without_a_retry_limit(observed):
    unlimited = dataclasses.replace(observed["drift-lab-in-sync-1"], restart_policy="on-failure")
    assert judge("restart_policy", make_module(desired={"restart_policy": "on-failure:0"}), unlimited) == Verdict()
    limited = dataclasses.replace(unlimited, restart_policy="on-failure:3")
    assert codes(judge("restart_policy", make_module(desired={"restart_policy": "on-failure:0"}), limited)) == \
        ["RESTART_POLICY_MISMATCH"]
    assert judge("restart_policy", make_module(desired={"restart_policy": "on-failure:003"}), limited) == Verdict()


def test_env_keys_complete_makes_an_added_variable_drift(observed):
    """An adopted module lists every variable: one set later (env key added) is ENV_KEY_UNEXPECTED."""
    container = observed["drift-lab-runtime-ok-1"]
    names = list(container.env_names)
    complete = make_module(desired={"env_keys": names, "env_keys_complete": True})
    assert judge("env", complete, container) == Verdict()
    fewer = make_module(desired={"env_keys": names[1:], "env_keys_complete": True})
    verdict = judge("env", fewer, container)
    assert codes(verdict) == ["ENV_KEY_UNEXPECTED"] and verdict.changes[0].observed == names[0]
    # Without env_keys_complete, env_keys only says what must be set.
    assert judge("env", make_module(desired={"env_keys": names[1:]}), container) == Verdict()
