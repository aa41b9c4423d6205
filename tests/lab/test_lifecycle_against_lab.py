"""A run's lifecycle against the real lab (issue 15): full disks, signals at start-up and after the plan.

Each disk is a small tmpfs this test mounts under its own temp folder, fills and unmounts; each signal
is a real one, sent to the suite running as a user runs it (a subprocess from the repository).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import (
    EXAMPLE_MODULES,
    REPO,
    add_module,
    labctl,
    logged_commands,
    openssh_leftovers,
    run_suite,
    sshd_log_count,
    write_ssh_inventory,
)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs under tmp_path, filled up; unmounted afterwards."""
    folder = tmp_path / "full"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        with open(folder / "filler", "wb") as handle:
            try:
                handle.write(b"\0" * (256 * 1024))
            except OSError:
                pass
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("scheme", ["paramiko", "ssh"])
def test_a_full_tmpdir_changes_nothing(lab, command_log, tmp_path, full_disk, scheme):
    # The run needs no TMPDIR space: junit.xml goes into the run's own partial folder (it once went to
    # TMPDIR and a full one crashed the run); ssh://'s control socket folder takes no data blocks.
    inventory = write_ssh_inventory(tmp_path / "hosts.yaml") if scheme == "ssh" else None
    run = run_suite(tmp_path, inventory=inventory, env={"TMPDIR": str(full_disk)})
    assert run.rc == 0, run.output
    assert "7 modules: 7 in sync" in run.output and run.plan is not None and run.plan["exit_code"] == 0
    assert [p.name for p in full_disk.iterdir()] == ["filler"]
    assert openssh_leftovers(full_disk) == []


def test_a_full_reports_disk_still_writes_the_plan_to_plan_out(lab, command_log, tmp_path, full_disk):
    plan_out = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, "-m", "pytest", f"--reports-dir={full_disk}", f"--plan-out={plan_out}",
                           f"--inventory={labctl.INVENTORY}", f"--modules-dir={EXAMPLE_MODULES}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert "ARTIFACTS_NOT_WRITTEN" in output and "No space left on device" in output
    assert "generated xml file" not in output
    assert "7 modules: 7 in sync" in output
    plan = json.loads(plan_out.read_text())
    assert plan["exit_code"] == 2 and plan["summary"]["in_sync"] == 7
    assert [e["code"] for e in plan["errors"]] == ["ARTIFACTS_NOT_WRITTEN"]
    assert [p.name for p in full_disk.iterdir()] == ["filler"]


class Started:
    """The suite as a user starts it, its output going to files (a pipe nobody reads would stall it)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
        base = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--reports-dir={tmp_path / 'reports'}",
                                          f"--inventory={labctl.INVENTORY}", f"--modules-dir={EXAMPLE_MODULES}", *args],
                                         cwd=REPO, stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL, text=True, env={**base, **(env or {})})

    def finish(self, timeout: float) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout)
        return rc, self.out.read_text(), self.err.read_text()


@pytest.mark.parametrize("phase", ["startup", "load"])
def test_sigterm_before_collection_contacts_no_host(lab, command_log, tmp_path, phase):
    marker = tmp_path / "reached"
    connections = sshd_log_count("Connection from")
    started = Started(tmp_path, "-p", "tests.plugin.phases", env={
        "STALL_AT": phase, "STALL_MARKER": str(marker), "STALL_SECONDS": "2" if phase == "startup" else "60"})
    deadline = time.monotonic() + 60
    while not marker.exists() and started.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), started.finish(10)
    started.proc.send_signal(signal.SIGTERM)
    rc, out, err = started.finish(30)
    assert rc == 2, out + err  # not -15 (exit 143)
    [run_dir] = [p for p in (tmp_path / "reports").iterdir()
                 if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    plan = json.loads((run_dir / "plan.json").read_text())
    assert [e["code"] for e in plan["errors"]] == ["INTERRUPTED"] and "SIGTERM" in plan["errors"][0]["message"]
    assert plan["modules"] == [] and plan["hosts"] == []
    assert logged_commands() == [] and sshd_log_count("Connection from") == connections


def test_sigterm_during_a_long_summary_ends_the_run_at_once(lab, command_log, tmp_path):
    # 1000 modules whose containers do not exist: 4000 failing checks, whose FAILURES section in the
    # style the user asked for (--tb=short) takes pytest minutes to print (its per-failure rescan is
    # quadratic; a drift run's own --tb=line prints it in a second). The signal used to be ignored
    # for all of it (2000 modules: 231 s); now it ends the run at once, with the decided exit 1.
    modules = tmp_path / "modules"
    modules.mkdir()
    for number in range(1000):
        add_module(modules, f"gone-{number}", "rs2000")
    reports = tmp_path / "reports"
    started = Started(tmp_path, f"--modules-dir={modules}", "--tb=short")
    deadline = time.monotonic() + 240
    while not (reports / "latest").exists() and started.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (reports / "latest").exists(), "the plan was never written"
    time.sleep(1)
    assert started.proc.poll() is None, "the run ended before the signal: nothing was proven"
    started.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    rc, out, err = started.finish(300)
    took = time.monotonic() - sent
    assert took < 5, f"the run went on for {took:.1f} s after SIGTERM"
    assert rc == 1, err[-2000:]
    plan = json.loads((reports / "latest" / "plan.json").read_text())
    # every gone-N module drifts (and the lab's own containers are orphans of home-platform)
    assert plan["exit_code"] == 1 and sum(m["status"] == "drift" for m in plan["modules"]
                                          if m["module"].startswith("gone-")) == 1000
    assert "driftcheck: SIGTERM after the plan was written: stopped at once, exit 1 as the plan says" in err
    assert not re.search(r"=+ \d+ failed", out), "pytest's summary ran to its end: the signal changed nothing"
