"""Digest proof against the lab's registry: real RepoDigests, compose services pinned by digest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import labctl
import pytest

from tests.support.lab import run_suite

#: module -> (what its compose service runs, what the module declares under image:)
CASES = {
    "tagged-ok": ("{repo}:1", "  ref: {repo}:1\n  digest: {d1}\n"),
    "tagged-wrong": ("{repo}:1", "  ref: {repo}:1\n  digest: {d2}\n"),
    "pinned-ok": ("{repo}@{d1}", "  ref: {repo}:1\n  digest: {d1}\n  digest_pinned_in_compose: true\n"),
    "pinned-wrong": ("{repo}@{d1}", "  ref: {repo}:1\n  digest: {d2}\n  digest_pinned_in_compose: true\n"),
    "undeclared": ("{repo}:1", "  ref: {repo}:1\n"),
}


@pytest.fixture(scope="module")
def digest_lab(lab: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Lab images pushed to the lab registry, a compose project running them, and its modules."""
    repo = f"127.0.0.1:{int((labctl.RUN / 'registry.port').read_text())}/lab/app"
    values = {"repo": repo, "d1": labctl.push("lab/app:1", f"{repo}:1"), "d2": labctl.push("lab/app:2", f"{repo}:2")}
    folder = tmp_path_factory.mktemp("digest-lab")
    compose = folder / "compose.yaml"
    compose.write_text("services:\n" + "".join(
        f"  {name}:\n    image: {image.format(**values)}\n    init: true\n    stop_grace_period: 1s\n"
        f"    command: [/bin/sleep, '2147483647']\n" for name, (image, _) in CASES.items()))
    modules = folder / "modules"
    for name, (_, image) in CASES.items():
        (modules / name).mkdir(parents=True)
        (modules / name / "module.yaml").write_text(
            f"schema_version: 2\nname: {name}\nhost: rs2000\ncompose:\n  project: digest-lab\n  service: {name}\n"
            f"image:\n{image.format(**values)}")
    labctl.compose("up", "--detach", "--pull", "never", project="digest-lab", file=compose)
    yield modules
    labctl.compose("down", "--timeout", "1", project="digest-lab", file=compose)
    labctl.docker("rmi", f"{repo}:1", f"{repo}:2")


def test_digests_are_proven_by_repo_digests(digest_lab, tmp_path):
    run = run_suite(tmp_path, modules=digest_lab)
    assert run.rc == 1, run.output
    modules = {m["module"]: m for m in run.plan["modules"]}
    assert {m: (e["status"], [c["code"] for c in e["changes"]]) for m, e in modules.items()} == {
        "tagged-ok": ("in_sync", []), "pinned-ok": ("in_sync", []), "undeclared": ("in_sync", []),
        "tagged-wrong": ("drift", ["IMAGE_DIGEST_MISMATCH"]), "pinned-wrong": ("drift", ["IMAGE_DIGEST_MISMATCH"]),
    }
    # Proven digests leave no warning; without a declared digest nothing is proven.
    assert modules["tagged-ok"]["warnings"] == [] == modules["pinned-ok"]["warnings"]
    assert [w["code"] for w in modules["undeclared"]["warnings"]] == ["IMAGE_DIGEST_NOT_VERIFIED"]
    wrong = modules["tagged-wrong"]["changes"][0]
    assert wrong["field"] == "image.digest" and wrong["observed"].startswith("sha256:")
    assert wrong["observed"] != wrong["desired"]


def test_strict_images_makes_an_unproven_digest_drift(digest_lab, tmp_path):
    run = run_suite(tmp_path, "--strict-images", "-k", "undeclared or tagged-ok", modules=digest_lab)
    assert run.rc == 1, run.output
    assert run.statuses() == {"undeclared": "drift", "tagged-ok": "in_sync"}
    assert [c["code"] for c in run.plan["changes"]] == ["IMAGE_DIGEST_NOT_VERIFIED"]
    assert run.plan["warnings"] == []
    by_env = run_suite(tmp_path / "env", "-k", "undeclared", modules=digest_lab, env={"DRIFT_STRICT_IMAGES": "1"})
    assert by_env.rc == 1 and by_env.statuses() == {"undeclared": "drift"}
