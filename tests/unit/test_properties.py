"""Properties (hypothesis): no host output crashes a run, and nothing is in sync unless proven.

The pipeline under test is the one the checks run: HostObserver (parsing, batching, errors) ->
compare (the four checks) -> build_plan, fed by a fake host whose every answer is generated:
well-formed, malformed, truncated, empty, failing, hanging or dropped.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftcheck import allowlist
from driftcheck.compare import Observed
from driftcheck.errors import ObservationError
from driftcheck.observe import HostObserver, parse_image_inspect, parse_inspect, parse_ps
from driftcheck.records import Output
from driftcheck.registry import BY_NAME
from tests.support.unit import calls, canned, make_module, plan_json

#: max_examples comes from the hypothesis profile (tests/conftest.py: 300 in make test's thorough one)
SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "s3cr3t-env-value-7f1c"

#: image refs and the canonical form an independent reader gives each (the oracle, not parse_ref)
CANONICAL = {
    "redis": "docker.io/library/redis:latest",
    "redis:latest": "docker.io/library/redis:latest",
    "library/redis": "docker.io/library/redis:latest",
    "docker.io/library/redis:latest": "docker.io/library/redis:latest",
    "redis:7.2": "docker.io/library/redis:7.2",
    "ghcr.io/acme/app:1": "ghcr.io/acme/app:1",
    "ghcr.io/acme/app:2": "ghcr.io/acme/app:2",
    "localhost:5000/app:1": "localhost:5000/app:1",
}
STATUSES = ["created", "running", "paused", "restarting", "removing", "exited", "dead"]
IMAGE_IDS = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
CONTAINER_ID = "c" * 64

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _only_observation_invalid(parse: Any, data: bytes) -> None:
    try:
        parse("h", data)
    except ObservationError as exc:
        assert exc.code == "OBSERVATION_INVALID"
        assert SECRET not in str(exc)


@SETTINGS
@given(st.binary(max_size=400))
def test_parsers_never_crash_on_bytes(data):
    for parse in (parse_ps, parse_inspect, parse_image_inspect):
        _only_observation_invalid(parse, data)


@SETTINGS
@given(json_values)
def test_parsers_never_crash_on_json_of_any_shape(value):
    data = json.dumps(value).encode()
    for parse in (parse_ps, parse_inspect, parse_image_inspect):
        _only_observation_invalid(parse, data)
        _only_observation_invalid(parse, data[: len(data) // 2])  # truncated


def test_deep_nesting_is_invalid_not_a_crash():
    for parse in (parse_ps, parse_inspect, parse_image_inspect):
        _only_observation_invalid(parse, b"[" * 200_000)


inspect_fields = st.fixed_dictionaries({
    "Name": st.one_of(st.just("/p-s-1"), json_values),
    "Id": st.one_of(st.just(CONTAINER_ID), json_values),
    "Image": st.one_of(st.sampled_from(IMAGE_IDS), json_values),
    "State": st.one_of(st.fixed_dictionaries({"Status": st.one_of(st.sampled_from(STATUSES), json_values)}),
                       json_values),
    "Config": st.one_of(st.fixed_dictionaries({
        "Image": st.one_of(st.sampled_from(sorted(CANONICAL)), json_values),
        "Labels": st.one_of(st.dictionaries(st.sampled_from(["com.docker.compose.project",
                                                             "com.docker.compose.service", "x"]),
                                            st.one_of(st.sampled_from(["p", "s"]), json_values)), json_values),
        "Env": st.just([f"TOKEN={SECRET}"]),
    }), json_values),
})


@SETTINGS
@given(st.lists(inspect_fields, max_size=3))
def test_inspect_records_of_any_field_type_parse_or_are_invalid(records):
    data = json.dumps(records).encode()
    try:
        found = parse_inspect("h", data)
    except ObservationError as exc:
        assert exc.code == "OBSERVATION_INVALID"
        return
    assert SECRET not in repr(found)
    for container in found.values():
        assert all(isinstance(v, str) for v in (container.name, container.id, container.status,
                                                 container.configured_image, container.image_id))


# -- the whole pipeline -------------------------------------------------------------------------

FAULTS = [None, None, None, "rc1", "rc127", "garbage", "empty", "truncated", "timeout", "dropped", "silent",
          "silent-empty-list"]


def faulty(output: Output, kind: str | None) -> Any:
    """An answer that may be faulty; a hang or a dropped connection raises as a runner does."""
    if kind == "timeout":
        return ObservationError("h", "TIMEOUT", "did not finish")
    if kind == "dropped":
        return ObservationError("h", "HOST_UNREACHABLE", "connection lost")
    return {
        None: output,
        "rc1": Output(1, b"", b"Error response from daemon: boom\n"),
        # exit 1 without a word: never "every object missing"
        "silent": Output(1, b"", b""),
        "silent-empty-list": Output(1, b"[]", b"\n"),
        "rc127": Output(127, b"", b"sh: docker: not found\n"),
        "garbage": Output(0, b'{"not": "json"', b""),
        "empty": Output(0, b"", b""),
        "truncated": Output(0, output.stdout[: len(output.stdout) // 2], b""),
    }[kind]


world = st.fixed_dictionaries({
    "state": st.sampled_from(["running", "stopped", "absent"]),
    "ref": st.sampled_from(sorted(CANONICAL)),
    "present": st.booleans(),
    "status": st.sampled_from(STATUSES),
    "project": st.sampled_from(["p", "q", None]),
    "service": st.sampled_from(["s", "t", None]),
    "configured": st.sampled_from(sorted(CANONICAL)),
    "image_id": st.sampled_from(IMAGE_IDS),
    "image_known": st.booleans(),
    "faults": st.fixed_dictionaries({c: st.sampled_from(FAULTS) for c in ("ps", "inspect", "image")}),
})


def host_answers(w: dict[str, Any]) -> list[tuple[tuple[str, ...], Output]]:
    labels = {k: v for k, v in (("com.docker.compose.project", w["project"]),
                                ("com.docker.compose.service", w["service"])) if v is not None}
    ps = b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n"
    if w["present"]:
        ps += json.dumps([CONTAINER_ID, "p-s-1", w["project"] or "", w["service"] or "", "False",
                          w["status"]]).encode() + b"\n"
    inspect = json.dumps([{
        "Id": CONTAINER_ID, "Name": "/p-s-1", "Image": w["image_id"], "State": {"Status": w["status"]},
        "Config": {"Image": w["configured"], "Labels": labels, "Env": [f"TOKEN={SECRET}"]},
    }]).encode()
    images = json.dumps([{"Id": w["image_id"], "RepoTags": [w["configured"]], "RepoDigests": []}]
                        if w["image_known"] else []).encode()
    unknown = f"Error: No such image: {w['image_id']}\n".encode()  # docker names what it was asked for
    return [
        (allowlist.PS_ARGV, Output(0, ps, b"")),
        (allowlist.INSPECT_PREFIX, Output(0, inspect, b"")),
        (allowlist.IMAGE_INSPECT_PREFIX, Output(0 if w["image_known"] else 1, images,
                                                b"" if w["image_known"] else unknown)),
    ]


def run_checks(w: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What the plugin does for one module: each check's verdict or error, then the plan."""
    module = make_module(compose={"project": "p", "service": "s"}, desired={"state": w["state"]},
                         image={"ref": w["ref"]} if w["state"] != "absent" else None)
    host = canned([(prefix, faulty(output, w["faults"].get(prefix[1]))) for prefix, output in host_answers(w)])
    observer = HostObserver(host, [module.container_name])
    checks = ["exists"] if module.state == "absent" else ["exists", "labels", "state", "image"]
    entries = []
    for check in checks:
        entry: dict[str, Any] = {"module": module.name, "host": "h", "container": module.container_name,
                                 "check": check, "changes": [], "warnings": [], "error": None}
        try:
            container = observer.containers().get(module.container_name)
            images = observer.images() if container and check == "image" else {}
            verdict = BY_NAME[check].run(module, Observed(container, images))
        except ObservationError as exc:
            entry.update(outcome="error", error={"code": exc.code, "message": exc.message})
        else:
            entry.update(outcome="failed" if verdict.changes else "passed", **verdict.to_json())
        entries.append(entry)
    return plan_json(entries), host


def matches(w: dict[str, Any]) -> bool:
    """The oracle: does the host, as generated, match the module? (independent of compare)"""
    if w["state"] == "absent":
        return not w["present"]
    if not w["present"] or (w["project"], w["service"]) != ("p", "s"):
        return False
    if w["state"] == "running" and w["status"] != "running":
        return False
    if w["state"] == "stopped" and w["status"] in ("running", "paused", "restarting"):
        return False
    return CANONICAL[w["ref"]] == CANONICAL[w["configured"]]


def needed(w: dict[str, Any]) -> set[str]:
    """The commands whose answers the module's verdict depends on."""
    if not w["present"]:
        return {"ps"}
    return {"ps", "inspect"} | ({"image"} if w["state"] != "absent" else set())


@SETTINGS
@given(world)
def test_in_sync_only_when_every_check_was_observed_and_matched(w):
    plan, host = run_checks(w)
    [module] = plan["modules"]
    # A header-only `docker ps` cut short is still the honest "no container": not a fault.
    honest_cut = w["faults"]["ps"] == "truncated" and not w["present"]
    faulty = {c for c in needed(w) if w["faults"][c] is not None and not (c == "ps" and honest_cut)}
    if module["status"] == "in_sync":
        assert matches(w), (w, plan)
        assert not faulty, (w, plan)
        assert plan["exit_code"] == 0
    if not faulty:
        # With honest answers the verdict is exactly the oracle's: no false drift either.
        assert module["status"] != "error", (w, plan)
        assert (module["status"] == "in_sync") == matches(w), (w, plan)
    if "ps" in faulty:
        assert module["status"] == "error"
    assert SECRET not in json.dumps(plan)
    # At most one of each command, whatever happened.
    assert len(calls(host)) == len({c[1] for c in calls(host)}) <= 3


@SETTINGS
@given(st.lists(st.fixed_dictionaries({
    "check": st.sampled_from(["exists", "labels", "state", "image"]),
    "outcome": st.sampled_from(["passed", "failed", "error", "skipped", "not_run"]),
    "changes": st.sampled_from([[], [{"code": "NOT_RUNNING", "field": "desired.state", "desired": "running",
                                      "observed": "exited"}]]),
    "error": st.sampled_from([None, {"code": "TIMEOUT", "message": "slow; retry"}]),
}), min_size=1, max_size=6))
def test_plan_is_in_sync_only_when_every_check_passed(entries):
    checks = [{"module": "m", "host": "h", "container": "c", "warnings": [], **e} for e in entries]
    plan = plan_json(checks)
    [module] = plan["modules"]
    all_passed = all(e["outcome"] == "passed" and not e["changes"] and e["error"] is None for e in entries)
    assert (module["status"] == "in_sync") == all_passed
    assert plan["exit_code"] == {"in_sync": 0, "drift": 1, "error": 2}[module["status"]]
