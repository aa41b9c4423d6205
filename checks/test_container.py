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


def test_replicas(drift_module, drift_container, drift_listing, drift_verdict):
    """As many containers of its compose service run as it declares (desired.replicas)."""
    drift_verdict(compare.check_replicas(drift_module, drift_container, drift_listing))


def test_restart_policy(drift_module, drift_container, drift_verdict):
    """Its restart policy is the declared one, and it is not in a restart loop (desired.restart_policy)."""
    drift_verdict(compare.check_restart_policy(drift_module, drift_container))


def test_ports(drift_module, drift_container, drift_verdict):
    """Its published ports are the declared set (desired.ports)."""
    drift_verdict(compare.check_ports(drift_module, drift_container))


def test_env(drift_module, drift_container, drift_verdict):
    """The declared variables are set, with the declared value digests (desired.env_keys, env_digests)."""
    drift_verdict(compare.check_env(drift_module, drift_container))


def test_mounts(drift_module, drift_container, drift_verdict):
    """Its volume and bind mounts are the declared set (desired.mounts)."""
    drift_verdict(compare.check_mounts(drift_module, drift_container))


def test_networks(drift_module, drift_container, drift_verdict):
    """It is attached to the declared networks (desired.networks)."""
    drift_verdict(compare.check_networks(drift_module, drift_container))


def test_health(drift_module, drift_container, drift_verdict):
    """Its healthcheck reports healthy (desired.health)."""
    drift_verdict(compare.check_health(drift_module, drift_container))


def test_config_hash(drift_module, drift_container, drift_compose_hash, drift_verdict):
    """Compose would not recreate it: its config hash is the one the repo's compose file gives (compose.file)."""
    drift_verdict(compare.check_config_hash(drift_module, drift_container, *drift_compose_hash))
