"""Local inputs a run reads (issue 15): a FIFO, a device or an oversized file is a one-line error
naming the file, never a hang, a traceback or a whole read (--compare-with: test_compare_with.py)."""

from __future__ import annotations

import os
import resource

import pytest

#: an address-space limit for the run: far above what it needs, far below the 4 GiB file it must not read
MEMORY_LIMIT = 1 << 30


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def assert_clean(run) -> None:
    """No traceback, no internal error."""
    assert "INTERNALERROR" not in run.output and "Traceback" not in run.output, run.output


def test_a_4gib_module_yaml_is_refused_without_reading_it(lab):
    lab.module("in-sync")
    lab.serve("in-sync")
    huge = lab.modules_dir / "huge" / "module.yaml"
    huge.parent.mkdir()
    with open(huge, "wb") as handle:
        handle.truncate(4 << 30)  # sparse: no disk space, but reading it whole takes 4 GiB
    run = lab.start(preexec_fn=limit_memory).finish()
    assert run.rc == 2, run.output
    assert_clean(run)
    assert run.plan is not None and run.plan["modules"] == [], run.output
    [error] = run.plan["errors"]
    assert error["code"] == "MANIFEST_INVALID" and error["file"].endswith("huge/module.yaml"), error
    assert error["message"].endswith("is 4294967296 bytes; expected at most 256 KiB"), error
    assert run.commands == []


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_an_inventory_that_is_not_a_regular_file_is_inventory_invalid_at_once(lab, kind):
    lab.module("in-sync")
    lab.inventory.unlink()
    if kind == "fifo":
        os.mkfifo(lab.inventory)
    elif kind == "folder":
        lab.inventory.mkdir()
    else:
        lab.inventory.symlink_to(kind)
    run = lab.start().finish(timeout=30)
    assert run.rc == 2, run.output
    assert_clean(run)
    [error] = run.plan["errors"]
    assert error["code"] == "INVENTORY_INVALID" and error["file"].endswith("hosts.yaml"), error
    assert error["message"].endswith("not a regular file"), error
    assert run.commands == []
