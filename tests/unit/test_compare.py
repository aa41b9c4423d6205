"""compare: every code, for every desired state, on containers captured from the lab."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import make_module
from driftcheck import compare
from driftcheck.observe import ImageObservation, parse_image_inspect, parse_inspect

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def observed(captured_containers):
    return parse_inspect("lab", captured_containers)


@pytest.fixture(scope="module")
def images(captured_images):
    return parse_image_inspect("lab", captured_images)


def codes(verdict):
    return [c.code for c in verdict.changes]


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
]


@pytest.mark.parametrize(("name", "overrides", "check", "expected"), TABLE)
def test_table(observed, images, name, overrides, check, expected):
    module = make_module(**overrides)
    container = observed[name] if name else None
    if check == "image":
        verdict = compare.check_image(module, container, images)
    else:
        verdict = getattr(compare, f"check_{check}")(module, container)
    assert codes(verdict) == expected


def test_paused_restarting_dead_are_not_running(observed):
    running = observed["drift-lab-in-sync-1"]
    for status in ("paused", "restarting", "dead", "created", "exited"):
        container = dataclasses.replace(running, status=status)
        assert codes(compare.check_state(make_module(), container)) == ["NOT_RUNNING"]
    for status, expected in (("created", []), ("exited", []), ("paused", ["UNEXPECTEDLY_RUNNING"]),
                             ("restarting", ["UNEXPECTEDLY_RUNNING"])):
        container = dataclasses.replace(running, status=status)
        assert codes(compare.check_state(make_module(desired__state="stopped"), container)) == expected


def test_digest_proof_by_repo_digests(observed):
    container = observed["drift-lab-in-sync-1"]
    image = ImageObservation(container.image_id, ("lab/app:1",),
                             (f"lab/app@{DIGEST_A}", f"other/repo@{DIGEST_B}"))
    images = {container.image_id: image}
    proven = compare.check_image(make_module(image={"ref": "lab/app:1", "digest": DIGEST_A}), container, images)
    assert proven == compare.Verdict()
    # A digest of another repository proves nothing about this one.
    wrong_repo = compare.check_image(make_module(image={"ref": "lab/app:1", "digest": DIGEST_B}), container, images)
    assert codes(wrong_repo) == ["IMAGE_DIGEST_MISMATCH"]
    assert wrong_repo.changes[0].observed == DIGEST_A


def test_warnings_when_nothing_proves_the_digest(observed, images):
    container = observed["drift-lab-in-sync-1"]
    verdict = compare.check_image(make_module(), container, images)
    assert verdict.changes == () and [w.code for w in verdict.warnings] == ["IMAGE_DIGEST_NOT_VERIFIED"]
    unobserved = compare.check_image(make_module(), container, {})
    assert [w.code for w in unobserved.warnings] == ["IMAGE_NOT_OBSERVED", "IMAGE_DIGEST_NOT_VERIFIED"]


def test_pinned_in_compose_matches_ref_with_digest(observed, images):
    container = dataclasses.replace(observed["drift-lab-in-sync-1"], configured_image=f"lab/app:1@{DIGEST_A}")
    pinned = make_module(image={"ref": "lab/app:1", "digest": DIGEST_A, "digest_pinned_in_compose": True})
    assert compare.check_image(pinned, container, images) == compare.Verdict()
    other = make_module(image={"ref": "lab/app:1", "digest": DIGEST_B, "digest_pinned_in_compose": True})
    assert codes(compare.check_image(other, container, images)) == ["IMAGE_DIGEST_MISMATCH"]
