"""pytest habits that hold in a drift run: options written with a space or `=`, --lf/--ff/--sw
(pytest's cache is on), -x/--maxfail said to have stopped the run, no run folder for a run that
checked nothing, and a pytest started above the checkout told what to run."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from driftcheck.options import OPTIONS

from .harness import HOST, RUN_TIMEOUT


def drift_setup(lab):
    lab.module("in-sync")
    lab.module("wrong-tag")
    lab.serve("in-sync", "wrong-tag")


def both_forms(flag, value):
    return {"space": [flag, value], "equals": [f"{flag}={value}"]}


#: for each option: a value (inside the project: see the next test), and what the run shows for it
def option_cases(lab):
    alt_modules = lab.root / "alt-modules"
    (alt_modules / "in-sync").mkdir(parents=True)
    shutil.copy(lab.modules_dir / "in-sync" / "module.yaml", alt_modules / "in-sync" / "module.yaml")
    alt_inventory = lab.root / "alt-hosts.yaml"
    alt_inventory.write_text(yaml.safe_dump({"hosts": {HOST: {"connection": "gopher://x"}}}))
    alt_reports = lab.root / "alt-reports"
    return {
        "modules_dir": ("alt-modules", lambda run: run.statuses()["in-sync"] == "in_sync" and
                        "wrong-tag" not in run.statuses()),
        "inventory": (str(alt_inventory), lambda run: run.rc == 2 and run.plan is not None and
                      [e["file"] for e in run.plan["errors"]] == ["alt-hosts.yaml"]),
        "plan_out": ("out.json", lambda run: run.plan == json.loads((lab.root / "out.json").read_text())),
        "reports_dir": ("alt-reports", lambda run: run.run_dir is None and
                        json.loads((alt_reports / "latest" / "plan.json").read_text())["exit_code"] == 1),
        "compare_with": ("latest", lambda run: run.plan is not None and "since" in run.plan),
        "strict_images": (None, lambda run: run.plan is not None and not run.plan["warnings"] and
                          "IMAGE_DIGEST_NOT_VERIFIED" in {c["code"] for c in run.plan["changes"]}),
        "format": ("json", lambda run: json.loads(run.stdout)["exit_code"] == 1),
        # read, and refused: the value's own error names it (a valid one changes nothing a stub shows)
        "keep_runs": ("1", lambda run: run.run_dir is not None and lab.run_dirs() == {run.run_dir}),
        "compose_budget": ("-1", lambda run: run.rc == 4 and "--compose-budget / DRIFT_COMPOSE_BUDGET=-1" in
                           run.stderr),
        "max_connections": ("0", lambda run: run.rc == 4 and "--max-connections / DRIFT_MAX_CONNECTIONS=0" in
                            run.stderr),
    }


@pytest.mark.parametrize("form", ["space", "equals"])
def test_every_option_works_written_with_a_space_or_an_equals_sign(lab, form):
    drift_setup(lab)
    assert lab.run().rc == 1  # a run for --compare-with=latest
    cases = option_cases(lab)
    assert set(cases) == {o.dest for o in OPTIONS}, "a new option needs its case here"
    for option in OPTIONS:
        value, shows = cases[option.dest]
        args = [option.flag] if value is None else both_forms(option.flag, value)[form]
        run = lab.run(*args)
        assert "unrecognized arguments" not in run.stderr, run.output
        assert shows(run), f"{args}: the option did not take effect\n{run.output}"


def test_a_path_outside_the_project_written_with_a_space_is_taken_by_pytest(lab, tmp_path_factory):
    """pytest looks for pytest.ini from the paths on its command line before it reads that file (and
    so before any plugin it names, or an entry point, is loaded): an existing folder outside the
    project, after an option and a space, makes it miss the project's pytest.ini. The README says
    to write such paths with `=`; this pins the reason, so the README changes when pytest does."""
    drift_setup(lab)
    outside = tmp_path_factory.mktemp("outside-reports")
    run = lab.run("--reports-dir", str(outside))
    assert run.rc == 4 and "unrecognized arguments: " in run.stderr and "inifile: None" in run.stderr, run.output
    run = lab.run(f"--reports-dir={outside}")
    assert run.rc == 1 and (outside / "latest" / "plan.json").is_file(), run.output


def test_last_failed_and_failed_first_rerun_the_drift(lab):
    drift_setup(lab)
    first = lab.run()
    assert first.rc == 1 and first.outcomes == {"passed": 8, "failed": 1, "deselected": 8}, first.output
    again = lab.run("--lf")
    assert again.rc == 1, again.output
    assert again.outcomes == {"failed": 1} and "rerun previous 1 failure" in again.stdout, again.output
    assert again.statuses() == {"wrong-tag": "drift"}
    first_first = lab.run("--ff")
    assert first_first.outcomes == first.outcomes, first_first.output
    assert "checks/test_container.py F" in first_first.stdout, "--ff runs the failed check first"


def test_stepwise_stops_at_the_drift_and_says_so_then_continues_from_it(lab):
    drift_setup(lab)
    run = lab.run("--sw")
    assert run.rc == 2 and run.plan is not None, run.output
    assert [e["code"] for e in run.plan["errors"] if e["module"] is None] == ["NOT_CHECKED"], run.plan["errors"]
    assert "ERROR NOT_CHECKED: --sw stopped the run at a failure" in run.stdout, run.output
    again = lab.run("--sw")
    assert "already passed items" in again.stdout, again.output
    # it starts at the check that failed: the passed ones before it are deselected, not in the plan
    assert again.plan is not None and again.outcomes["failed"] == 1, again.output
    assert "in-sync" not in again.statuses() and again.statuses()["wrong-tag"] == "drift", again.output


@pytest.mark.parametrize(("args", "named"), [(["-x"], "-x"), (["--maxfail=1"], "-x"),
                                             (["--maxfail", "2"], "--maxfail=2"), (["--maxfail=3"], None)])
def test_x_and_maxfail_say_they_stopped_the_run(lab, args, named):
    lab.module("in-sync")
    lab.module("stopped")
    lab.module("wrong-tag")
    lab.serve("in-sync", "stopped", "wrong-tag")  # two failing checks: test_state[stopped], test_image[wrong-tag]
    run = lab.run(*args)
    plan = run.plan
    assert plan is not None, run.output
    stopped = [e for e in plan["errors"] if e["module"] is None]
    if named is None:  # --maxfail=3 is never reached: every check ran
        assert (run.rc, stopped) == (1, []), run.output
        return
    assert run.rc == 2, run.output
    assert [e["code"] for e in stopped] == ["NOT_CHECKED"], plan["errors"]
    assert stopped[0]["message"].startswith(f"{named} stopped the run at a failure: "), stopped
    assert f"run without {named} to check everything" in stopped[0]["message"]
    not_run = [m for m in plan["modules"] if m["error"] and m["error"]["code"] == "NOT_CHECKED"]
    assert not_run and all(m["error"]["message"].endswith(f"stopped by {named}") for m in not_run), not_run
    assert "run it again" not in run.stdout, "the summary blames the run's end, not the option"
    assert f"ERROR NOT_CHECKED: {named} stopped the run at a failure" in run.stdout


@pytest.mark.parametrize("args", [["-k", "nomatch"], ["-m", "tier9"]], ids=["k-typo", "m-typo"])
def test_an_empty_selection_writes_no_run_folder(lab, args):
    drift_setup(lab)
    plan_out = lab.root / "plan-out.json"
    run = lab.run(*args, f"--plan-out={plan_out}")
    assert run.rc == 2, run.output
    assert run.run_dir is None and not lab.reports.exists(), "a run that checked nothing wrote a run folder"
    assert json.loads(plan_out.read_text())["errors"][0]["code"] == "NO_MODULES_SELECTED"
    assert "no run folder written: nothing was checked (NO_MODULES_SELECTED)" in run.stdout
    assert "generated xml file" not in run.stdout
    assert run.commands == []


def test_a_usage_error_writes_no_run_folder(lab):
    drift_setup(lab)
    run = lab.run("-k", "(", "--drift-format=json")
    assert run.rc == 4, run.output
    assert "Wrong expression passed to '-k'" in run.stderr
    assert run.run_dir is None and not lab.reports.exists(), run.output
    printed = json.loads(run.stdout)
    assert (printed["exit_code"], printed["modules"]) == (4, []), printed
    assert "no run folder written: nothing was checked (a usage error)" in run.stderr


def test_pytest_started_above_the_checkout_is_told_what_to_run(lab, pytester, monkeypatch):
    drift_setup(lab)
    outer = lab.root / "outer"
    checkout = outer / "dc"
    checkout.mkdir(parents=True)
    for name in ("pytest.ini", "conftest.py", "hosts.yaml"):
        shutil.copy(lab.root / name, checkout / name)
    for name in ("checks", "modules"):
        shutil.copytree(lab.root / name, checkout / name)
    for own in ("tests", "bench"):  # the project's own tests: never collected by a drift run
        (checkout / own).mkdir()
        (checkout / own / f"test_{own}.py").write_text("def test_own():\n    raise AssertionError('collected')\n")
    monkeypatch.chdir(outer)
    above = pytester.runpytest_subprocess(timeout=RUN_TIMEOUT)
    output = "\n".join(above.outlines + above.errlines)
    assert above.ret == 2, output
    assert f"{checkout} is a driftcheck checkout, but pytest started outside it" in output
    assert f"cd {checkout} && .venv/bin/python -m pytest" in output and f"pytest {checkout}" in output
    assert "test_own" not in output and "Traceback" not in output and "pytest_plugins" not in output
    named = pytester.runpytest_subprocess("dc", timeout=RUN_TIMEOUT)
    assert named.ret == 1, "\n".join(named.outlines + named.errlines)
    assert (checkout / "reports" / "latest" / "plan.json").is_file()
