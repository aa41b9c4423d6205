"""summary: the terminal table of a run, from its plan alone."""

from __future__ import annotations

import locale

import pytest

from driftcheck.summary import arrow_for, plain, plural, summary_lines
from tests.support.unit import plan_json

TAG = {"code": "IMAGE_TAG_MISMATCH", "field": "image.ref", "desired": "a:1", "observed": "a:2"}
STATE = {"code": "NOT_RUNNING", "field": "state", "desired": "running", "observed": "exited"}
ORPHAN = {"code": "ORPHAN_CONTAINER", "field": "container", "desired": None, "observed": "p-x-1 (service x)"}
NOT_VERIFIED = {"code": "IMAGE_DIGEST_NOT_VERIFIED", "message": "no image.digest declared"}


def entry(module, check, outcome, changes=(), error=None, warnings=(), **extra):
    return {"module": module, "host": "h", "container": f"p-{module}-1", "check": check, "outcome": outcome,
            "changes": list(changes), "warnings": list(warnings), "error": error, **extra}


def plan_of(checks, pytest_status=1, previous=None):
    return plan_json(checks, [], pytest_status, previous)


def test_an_aligned_table_one_line_per_change_then_the_total():
    checks = [entry("a", "image", "passed", warnings=[NOT_VERIFIED]),
              entry("long-name", "image", "failed", [TAG]), entry("long-name", "state", "failed", [STATE]),
              entry("c", "state", "error", error={"code": "TIMEOUT", "message": "slow; retry"}),
              {**entry("orphans@h/p", "orphans", "failed", [ORPHAN]), "container": None, "pseudo": True},
              {**entry("orphans@h/q", "orphans", "passed"), "container": None, "pseudo": True}]
    plan = plan_of(checks, previous={"run_id": "old", "changes": [], "checked": {
        "long-name": ["image", "state"], "orphans@h/p": ["orphans"]}})
    lines = summary_lines(plan)
    texts = [plain(line) for line in lines]
    assert texts[:7] == [
        "MODULE       HOST  STATUS   CHANGES",
        "a            h     in sync  warning IMAGE_DIGEST_NOT_VERIFIED",
        "c            h     ERROR    TIMEOUT: slow; retry",
        "long-name    h     DRIFT    IMAGE_TAG_MISMATCH image.ref: a:1 → a:2",
        "                            NOT_RUNNING state: running → exited",
        "orphans@h/p  h     DRIFT    ORPHAN_CONTAINER container: (none) → p-x-1 (service x)",
        "since old: 3 new, 0 resolved, 0 unchanged",
    ]
    # only the status cell carries a colour
    assert [[c for _, c in line] for line in lines[1:4]] == [[None, "green", None], [None, "red", None],
                                                              [None, "yellow", None]]
    assert lines[4] == [(" " * 28 + "NOT_RUNNING state: running → exited", None)]
    assert not any("orphans@h/q" in t for t in texts)  # an orphans check with nothing found is not listed
    assert lines[-1] == [("4 modules: 1 in sync, 2 drift, 1 error, 1 warning; exit 2", "red")]


def test_the_total_is_green_when_in_sync_and_ignored_checks_are_listed():
    waived = entry("w", "ports", "skipped", ignored={"check": "ports", "reason": "PLAT-142", "until": "2026-12-31"})
    lines = summary_lines(plan_of([entry("w", "image", "passed"), waived], pytest_status=0))
    assert plain(lines[1]) == "w       h     in sync  ignored test_ports: PLAT-142 (until 2026-12-31)"
    assert lines[-1] == [("1 module: 1 in sync, 0 drift, 0 error, 0 warnings; exit 0", "green")]


def test_run_level_errors_without_modules_have_no_table():
    plan = plan_json([], [{"code": "MANIFEST_INVALID", "message": "expected the integer 2",
                           "file": "modules/a/module.yaml", "key": "schema_version"}], 2)
    texts = [plain(line) for line in summary_lines(plan)]
    assert texts == ["ERROR MANIFEST_INVALID: modules/a/module.yaml: schema_version: expected the integer 2",
                     "0 modules: 0 in sync, 0 drift, 0 error, 0 warnings; exit 2"]


AUTH = ("deploy@rs2000:22 refused the login (publickey); is the key in ssh-agent or named by identity_file, "
        "and the user right?")


def test_a_host_error_is_one_line_for_the_host_and_its_modules_show_only_the_code():
    error = {"code": "AUTH_FAILED", "message": AUTH}
    checks = [entry(name, check, "error", error=error) for name in ("a", "b", "c") for check in ("exists", "image")]
    checks.append(entry("d", "state", "error", error={"code": "COMPOSE_CONFIG_INVALID", "message": "its own"}))
    plan = plan_of(checks, pytest_status=1)
    plan["hosts"] = [{"host": "h", "commands": [], "seconds": 0.1, "error": error},
                     {"host": "ok", "commands": ["docker ps"], "seconds": 0.1, "error": None}]
    texts = [plain(line) for line in summary_lines(plan)]
    assert texts == [
        "MODULE  HOST  STATUS   CHANGES",
        "a       h     ERROR    AUTH_FAILED (host error)",
        "b       h     ERROR    AUTH_FAILED (host error)",
        "c       h     ERROR    AUTH_FAILED (host error)",
        "d       h     ERROR    COMPOSE_CONFIG_INVALID: its own",  # a module's own error keeps its message
        f"ERROR host h: AUTH_FAILED: {AUTH}",
        "4 modules: 0 in sync, 0 drift, 4 error, 0 warnings; exit 2",
    ]
    assert sum(text.count(AUTH) for text in texts) == 1
    assert summary_lines(plan)[5][0] == ("ERROR", "red")


def test_counts_are_pluralised():
    assert [plural(n, "module") for n in (0, 1, 2)] == ["0 modules", "1 module", "2 modules"]
    plan = plan_of([entry("a", "image", "passed", warnings=[NOT_VERIFIED])], pytest_status=0)
    assert plain(summary_lines(plan)[-1]) == "1 module: 1 in sync, 0 drift, 0 error, 1 warning; exit 0"


@pytest.mark.parametrize(("encoding", "charset", "arrow"), [
    ("utf-8", "UTF-8", "→"),
    ("utf-8", "ANSI_X3.4-1968", "->"),  # LC_ALL=C: Python's stdout is UTF-8, the terminal is not
    ("ascii", "UTF-8", "->"),  # PYTHONIOENCODING=ascii, or a pipe opened so
    ("latin-1", "ISO-8859-1", "->"),
    (None, "UTF-8", "->"),
])
def test_the_arrow_falls_back_to_ascii_where_the_terminal_cannot_show_it(monkeypatch, encoding, charset, arrow):
    monkeypatch.setattr(locale, "nl_langinfo", lambda item: charset)
    assert arrow_for(encoding) == arrow
    plan = plan_of([entry("a", "image", "failed", [TAG])])
    assert plain(summary_lines(plan, arrow_for(encoding))[1]).endswith(f"image.ref: a:1 {arrow} a:2")


def test_drift_the_earlier_run_did_not_check_is_counted_apart():
    plan = plan_of([entry("a", "image", "failed", [TAG]), entry("b", "image", "failed", [TAG])],
                   previous={"run_id": "old", "changes": [], "checked": {"a": ["image"]}})
    assert "since old: 1 new, 0 resolved, 0 unchanged, 1 not compared (that run did not check them)" in [
        plain(line) for line in summary_lines(plan)]
