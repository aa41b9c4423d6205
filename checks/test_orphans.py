"""Orphans: one check per compose project per host, over every container the host lists."""

from __future__ import annotations

from driftcheck import compare


def test_orphans(drift_orphans, drift_verdict):
    """No container of the project runs that no module claims (by its service or its container name)."""
    project, modules, listing = drift_orphans
    drift_verdict(compare.check_orphans(project, modules, listing))
