"""The drift checks: one test per check, parametrized with every module.yaml (ids carry the module)."""

from __future__ import annotations

from driftcheck import compare


def test_exists(drift_module, drift_container, drift_verdict):
    """The container exists (or, desired absent, does not)."""
    drift_verdict(compare.check_exists(drift_module, drift_container))


def test_labels(drift_module, drift_container, drift_verdict):
    """Its compose project and service labels match the module."""
    drift_verdict(compare.check_labels(drift_module, drift_container))


def test_state(drift_module, drift_container, drift_verdict):
    """It is running, or stopped, as desired."""
    drift_verdict(compare.check_state(drift_module, drift_container))


def test_image(drift_module, drift_container, drift_images, drift_verdict):
    """Its configured image ref matches; the digest is proven when declared."""
    drift_verdict(compare.check_image(drift_module, drift_container, drift_images))
