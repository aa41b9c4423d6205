"""The terminal summary of a drift run: a host's error said once, and an arrow the terminal can show."""

from __future__ import annotations

from .harness import HOST


def drift_setup(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")


def test_one_host_error_is_one_line(lab):
    """A host whose login fails fails every check of its modules: its message is printed once."""
    drift_setup(lab)
    message = "Permission denied (publickey) for deploy@stubhost"
    lab.set_scenario(fail={"ps": {"rc": 1, "stderr": message + "\n"}})
    run = lab.run()
    assert run.rc == 2, run.output
    assert run.stdout.count(message) == 1, run.output
    assert f"ERROR host {HOST}: DOCKER_UNAVAILABLE: " in run.stdout
    rows = [line for line in run.stdout.splitlines() if line.startswith(("in-sync ", "wrong-tag ", "orphans@"))]
    assert len(rows) == 3 and all(row.endswith("ERROR    DOCKER_UNAVAILABLE (host error)") for row in rows), rows
    setup_errors = [line for line in run.stdout.splitlines() if line.startswith("DOCKER_UNAVAILABLE: ")]
    assert len(setup_errors) == 9 and all("see the host's error in the driftcheck summary" in line and
                                          len(line) < 110 for line in setup_errors), setup_errors
    # the plan keeps the whole message for every module (SPEC §9: one error per affected module)
    assert run.plan is not None
    assert all(message in e["message"] for e in run.plan["errors"])


def test_ascii_arrow_under_lc_all_c(lab, monkeypatch):
    drift_setup(lab)
    monkeypatch.setenv("LC_ALL", "C")
    run = lab.run()
    assert run.rc == 1, run.output
    assert "image.ref: lab/app:1 -> lab/app:2" in run.stdout and "→" not in run.stdout, run.output
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    assert "image.ref: lab/app:1 → lab/app:2" in lab.run().stdout
