"""Under pytest-xdist, the controller's part: it collects nothing and runs nothing itself.

It learns the selection from a worker's collection (node ids), mapped back to subjects through
the same function that built the ids (session.subject_id), and the hosts from each worker's output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from driftcheck.plan import HostRecord
from driftcheck.registry import CHECKS
from driftcheck.report import WORKER_OUTPUT
from driftcheck.session import RunState, Subject, subject_id


class XdistController:
    def __init__(self, state: RunState, rootpath: Path):
        self.state = state
        #: node ids are relative to pytest's rootdir
        self.rootpath = rootpath

    def _known(self) -> dict[str, tuple[str, Subject]]:
        """Every node id a drift check can have, with and without loadgroup's @<host>, -> (check, subject)."""
        state = self.state
        known: dict[str, tuple[str, Subject]] = {}
        for check in CHECKS:
            path = Path(os.path.relpath(state.options.root / "checks" / check.file, self.rootpath))
            prefix = path.as_posix()
            for subject in state.subjects_of(check):
                nodeid = f"{prefix}::test_{check.name}[{subject_id(subject)}]"
                known[nodeid] = known[f"{nodeid}@{subject.host}"] = (check.name, subject)
        return known

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        state = self.state
        if state.outcomes:
            return
        known = self._known()
        for nodeid in ids:
            if nodeid in known:
                state.select(nodeid, *known[nodeid])

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        for data in getattr(node, "workeroutput", {}).get(WORKER_OUTPUT, []):
            record = HostRecord.from_json(data)
            same = self.state.worker_hosts.get(record.host)
            self.state.worker_hosts[record.host] = record if same is None else same.merged(record)
