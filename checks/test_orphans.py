"""Orphans: one check per compose project per host, over every container the host lists."""

from __future__ import annotations


def test_orphans(drift_check):
    """No container of the project runs that no module claims (by its service or its container name)."""
    drift_check()
