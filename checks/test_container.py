"""The drift checks of one module: one test per check of the registry (driftcheck/registry.py),
parametrized with every module.yaml that has it (ids carry the module name)."""

from __future__ import annotations


def test_exists(drift_check):
    """The container exists (or, desired absent, does not)."""
    drift_check()


def test_labels(drift_check):
    """Its compose project and service labels match the module."""
    drift_check()


def test_state(drift_check):
    """It is running, or stopped, as desired."""
    drift_check()


def test_image(drift_check):
    """Its configured image ref matches; the digest is proven when declared."""
    drift_check()


def test_replicas(drift_check):
    """As many containers of its compose service run as it declares (desired.replicas)."""
    drift_check()


def test_restart_policy(drift_check):
    """Its restart policy is the declared one, and it is not in a restart loop (desired.restart_policy)."""
    drift_check()


def test_ports(drift_check):
    """Its published ports are the declared set (desired.ports)."""
    drift_check()


def test_env(drift_check):
    """The declared variables are set, with the declared value digests (desired.env_keys, env_digests)."""
    drift_check()


def test_mounts(drift_check):
    """Its volume and bind mounts are the declared set (desired.mounts)."""
    drift_check()


def test_networks(drift_check):
    """It is attached to the declared networks (desired.networks)."""
    drift_check()


def test_health(drift_check):
    """Its healthcheck reports healthy (desired.health)."""
    drift_check()


def test_config_hash(drift_check):
    """Compose would not recreate it: its config hash is the one the repo's compose file gives (compose.file)."""
    drift_check()
