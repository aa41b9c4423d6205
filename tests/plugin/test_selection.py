"""What a run selects: the -m manifest truth table, -k and pytest's counts, and xdist --dist loadgroup."""

from __future__ import annotations

import re

import pytest
import yaml

from .harness import COLLECTED_RE, HOST, ran


def two_modules(lab):
    lab.module("in-sync", tags=["canary"])
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")


@pytest.mark.parametrize("expression", ["manifest", "manifest and canary"])
def test_m_manifest_is_offline(lab, expression):
    two_modules(lab)
    run = lab.run("-m", expression)
    assert run.rc == 0, run.output
    assert run.commands == [], f"-m {expression!r} sent commands to the host"
    assert run.plan is None and lab.run_dirs() == set(), f"-m {expression!r} wrote a plan"
    assert not (lab.reports / "latest").exists()
    assert "no host was contacted" in run.stdout
    expected = 2 if expression == "manifest" else 1
    assert run.outcomes.get("passed") == expected, run.output


@pytest.mark.parametrize(("expression", "modules", "rc"), [
    ("not manifest", {"in-sync": "in_sync", "wrong-tag": "drift"}, 1),
    ("manifest or canary", {"in-sync": "in_sync"}, 0),
])
def test_m_without_manifest_required_is_a_drift_run(lab, expression, modules, rc):
    two_modules(lab)
    run = lab.run("-m", expression)
    assert run.rc == rc, run.output
    assert run.plan is not None, f"-m {expression!r} wrote no plan\n{run.output}"
    assert lab.latest_plan() == run.plan
    assert run.statuses() == modules
    assert run.commands, "a drift run observes its host"


@pytest.mark.parametrize("selection", [(), ("-k", "in-sync")], ids=["all", "k-one-module"])
def test_collected_counts_add_up_to_what_ran(lab, selection):
    # modules without optional keys: every optional check (replicas, ports, ...) has no parameter
    two_modules(lab)
    run = lab.run(*selection)
    assert run.rc == 0 if selection else 1, run.output
    found = COLLECTED_RE.search(run.stdout)
    assert found, run.output
    collected, deselected = int(found[1]), int(found[2] or 0)
    selected = int(found[3]) if found[3] else collected - deselected
    line = found[0]
    assert ran(run) == collected - deselected == selected, (
        f"pytest says {line!r} but {ran(run)} tests ran ({run.outcomes}): "
        "items were dropped after collection without being deselected")
    if selection:
        assert run.statuses() == {"in-sync": "in_sync"}


def test_xdist_loadgroup_gives_the_serial_plan(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.module("stopped")
    lab.module("scaled", desired={"replicas": 1})
    lab.serve("in-sync", "wrong-tag", "stopped", "scaled", "orphan")
    serial = lab.run("-v")
    parallel = lab.run("-v", "-n", "2", "--dist", "loadgroup")
    assert serial.rc == parallel.rc == 1, serial.output + parallel.output
    assert parallel.plan is not None and lab.latest_plan() == parallel.plan

    def shape(plan):
        return {m["module"]: (m["status"], m["changes"], m["warnings"], m["ignored"], m["error"])
                for m in plan["modules"]}

    assert shape(parallel.plan) == shape(serial.plan)
    assert parallel.plan["changes"] == serial.plan["changes"]
    assert parallel.plan["summary"] == serial.plan["summary"]
    assert set(shape(serial.plan)) == {"in-sync", "wrong-tag", "stopped", "scaled", f"orphans@{HOST}/drift-lab"}
    # ids carry @<host> under loadgroup; the plan keeps module names
    assert re.search(rf"checks/test_container\.py::test_image\[wrong-tag\]@{HOST}\b", parallel.stdout), \
        parallel.output
    assert not any("@" in m["module"].removeprefix("orphans@") for m in parallel.plan["modules"])
    # one host, one worker: it is observed once, as in the serial run
    assert [c[:2] for c in parallel.commands] == [c[:2] for c in serial.commands]
    assert parallel.plan["hosts"][0]["commands"] == serial.plan["hosts"][0]["commands"]


def test_k_host_selects_every_check_of_that_hosts_modules(lab):
    """`-k <host>` selects the host's modules (every check) and its orphans checks; ids do not change."""
    lab.inventory.write_text(yaml.safe_dump({"hosts": {HOST: {"connection": "local://", "timeout": 20},
                                                       "otherhost": {"connection": "local://", "timeout": 20}}}))
    lab.module("in-sync")
    lab.module("wrong-tag", host="otherhost")
    lab.serve("in-sync", "wrong-tag")
    everything = lab.run("-v")
    assert everything.rc == 1, everything.output
    other = lab.run("-v", "-k", "otherhost")
    assert other.rc == 1, other.output
    assert set(other.statuses()) == {"wrong-tag", "orphans@otherhost/drift-lab"}, other.output
    assert other.statuses()["wrong-tag"] == "drift"
    ids = re.findall(r"(checks/\S+::test_\w+\[[^\]]+\]) ", other.stdout)
    assert ids and all("[wrong-tag]" in i or "[otherhost/drift-lab]" in i for i in ids), ids
    assert set(ids) <= set(re.findall(r"(checks/\S+::test_\w+\[[^\]]+\]) ", everything.stdout))
    mine = lab.run("-k", HOST)  # both hosts are the one stub: wrong-tag's container is an orphan on this one
    assert mine.statuses() == {"in-sync": "in_sync", f"orphans@{HOST}/drift-lab": "drift"}, mine.output
    nothing = lab.run("-k", "nosuchhost")
    assert nothing.rc == 2, nothing.output
    assert nothing.plan is None and "nothing was checked (NO_MODULES_SELECTED)" in nothing.stdout, nothing.output
