"""Hostile host data: every Unicode line separator and control character, in every field the host
controls (names, labels, images, networks, mount sources), fed to the ps and inspect parsers and
through the checks into the plan. A line is split on "\\n" only (never str.splitlines(), which also
splits on U+0085, U+2028, \\x1c ...): one odd character in one label of an unrelated project must not
make every module of the host OBSERVATION_INVALID, and the plan keeps every value exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftcheck import allowlist
from driftcheck.codes import CODES
from driftcheck.compare import Observed, ProjectOnHost
from driftcheck.errors import ObservationError, one_line
from driftcheck.observe import HostObserver, parse_inspect, parse_listing
from driftcheck.printable import printable
from driftcheck.records import Output
from driftcheck.registry import BY_NAME
from driftcheck.summary import plain, summary_lines
from driftcheck.verdict import Change, Verdict
from tests.support.unit import calls, canned, make_module, plan_json

SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
REPO = Path(__file__).resolve().parents[2]

#: what str.splitlines() splits on (besides "\n"): each must stay inside its value
SEPARATORS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
#: C0 and C1 controls, DEL, and the bidi controls that reorder what a terminal shows
CONTROLS = ("".join(map(chr, range(0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
            + "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: escape sequences a hostile host would use: retitle the terminal, erase lines and forge rows
SEQUENCES = ["\x1b]0;pwned\x07", "\x1b[2K\x1b[1A", "\x1b[32min sync\x1b[0m", "\x9b2J", "\u202egnp.exe"]

def _terminal_safe(text: str) -> bool:
    """Nothing a terminal would obey: every character prints as itself (line breaks between lines aside)."""
    return all(line.isprintable() for line in text.split("\n"))


hostile_char = st.sampled_from(SEPARATORS + CONTROLS)
#: a value with at least one hostile character (so it never equals a clean name), and no "," (docker
#: joins a container's names with it; that is its own separator, not a line's)
hostile = st.builds(lambda a, h, b: a + h + b,
                    st.text(st.characters(blacklist_characters=",", blacklist_categories=["Cs"]), max_size=6),
                    st.one_of(hostile_char, st.sampled_from(SEQUENCES)),
                    st.text(st.one_of(hostile_char, st.characters(blacklist_characters=",",
                                                                  blacklist_categories=["Cs"])), max_size=6))

IMAGE_ID = "sha256:" + "a" * 64
HEADER = b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n"


def _id(number: int) -> str:
    return f"{number:064x}"


def _row(container: dict[str, Any]) -> bytes:
    labels = container["Config"]["Labels"]
    # ensure_ascii=False: U+0085, U+2028, DEL and the C1 controls raw, as docker's JSON leaves some of them
    return json.dumps([container["Id"], container["Name"].lstrip("/"), labels.get("com.docker.compose.project", ""),
                       labels.get("com.docker.compose.service", ""), "False", "running"],
                      ensure_ascii=False).encode() + b"\n"


def _container(number: int, name: str, project: str, service: str, **extra: Any) -> dict[str, Any]:
    return {"Id": _id(number), "Name": "/" + name, "Image": IMAGE_ID, "State": {"Status": "running"},
            "Config": {"Image": extra.get("image", "lab/app:1"), "Env": ["TZ=UTC"],
                       "Labels": {"com.docker.compose.project": project, "com.docker.compose.service": service,
                                  **extra.get("labels", {})}},
            "NetworkSettings": {"Networks": {n: {} for n in extra.get("networks", ["p_default"])}},
            "Mounts": extra.get("mounts", [{"Type": "volume", "Name": "p_data", "Destination": "/data", "RW": True}])}


world = st.fixed_dictionaries({
    # containers of an unrelated project, every field of theirs hostile
    "strangers": st.lists(st.tuples(hostile, hostile, hostile, hostile), max_size=3),
    # containers of the module's own project that no module claims: orphans, by hostile names
    "orphans": st.lists(hostile, max_size=2, unique=True),
    # the module's own container: a label no check reads, and optional hostile drift
    "label": hostile,
    "image": st.none() | hostile,
    "network": st.none() | hostile,
    "bind_source": st.none() | hostile,
})


def _host(w: dict[str, Any]) -> tuple[bytes, bytes]:
    mounts = [{"Type": "volume", "Name": "p_data", "Destination": "/data", "RW": True}]
    if w["bind_source"] is not None:
        mounts.append({"Type": "bind", "Source": "/srv/secret-" + w["bind_source"], "Destination": "/cfg",
                       "RW": True})
    mine = _container(1, "p-s-1", "p", "s", labels={"org.example.note": w["label"]},
                      image=w["image"] if w["image"] is not None else "lab/app:1",
                      networks=["p_default"] + ([w["network"]] if w["network"] is not None else []), mounts=mounts)
    others = [_container(10 + i, name, "q" + project, service, labels={"x": label})
              for i, (name, project, service, label) in enumerate(w["strangers"])]
    orphans = [_container(20 + i, name, "p", "o" + name) for i, name in enumerate(w["orphans"])]
    containers = [mine, *others, *orphans]
    ps = HEADER + b"".join(_row(c) for c in containers)
    return ps, json.dumps(containers, ensure_ascii=False).encode()


def _run(w: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The module's checks and its project's orphans check, as a run makes them, and the plan."""
    ps, inspect = _host(w)
    images = json.dumps([{"Id": IMAGE_ID, "RepoTags": ["lab/app:1"], "RepoDigests": []}]).encode()
    host = canned([(allowlist.PS_ARGV, Output(0, ps, b"")),
                   (allowlist.INSPECT_PREFIX, Output(0, inspect, b"")),
                   (allowlist.IMAGE_INSPECT_PREFIX, Output(0, images, b""))])
    module = make_module(compose={"project": "p", "service": "s"},
                         desired={"networks": ["p_default"], "mounts": ["p_data:/data"]})
    observer = HostObserver(host, [module.container_name], [module.image_ref or ""])
    entries, verdicts = [], []
    for check in ("exists", "labels", "state", "image", "networks", "mounts"):
        container = observer.containers().get(module.container_name)
        images_seen = observer.images() if check == "image" else {}
        verdict = BY_NAME[check].run(module, Observed(container, images_seen))
        verdicts.append(verdict)
        entries.append({"module": "m", "host": "h", "container": "p-s-1", "check": check,
                        "outcome": "failed" if verdict.changes else "passed", "error": None, **verdict.to_json()})
    scope = ProjectOnHost("h", "p", (module,))
    verdict = BY_NAME["orphans"].run(scope, Observed(None, {}, observer.listing()))
    verdicts.append(verdict)
    entries.append({"module": scope.pseudo_module, "host": "h", "container": None, "check": "orphans",
                    "outcome": "failed" if verdict.changes else "passed", "error": None, "pseudo": True,
                    **verdict.to_json()})
    assert len(calls(host)) == 3
    return plan_json(entries, pytest_status=1 if any(v.changes for v in verdicts) else 0), verdicts


@SETTINGS
@given(world)
def test_hostile_host_data_parses_and_the_plan_keeps_every_value_exactly(w):
    plan, _ = _run(w)
    codes = {m["module"]: sorted(c["code"] for c in m["changes"]) for m in plan["modules"]}
    expected = sorted(code for code, drift in (("IMAGE_TAG_MISMATCH", w["image"] is not None),
                                               ("NETWORKS_MISMATCH", w["network"] is not None),
                                               ("MOUNTS_MISMATCH", w["bind_source"] is not None)) if drift)
    # never OBSERVATION_INVALID, and exactly the drift the host shows: no more, no less
    assert plan["errors"] == [] and codes["m"] == expected, (w, plan)
    assert codes.get("orphans@h/p", []) == ["ORPHAN_CONTAINER"] * len(w["orphans"]), (w, plan)
    assert plan["exit_code"] == (1 if expected or w["orphans"] else 0)
    observed = {c["code"]: c["observed"] for c in plan["changes"] if c["code"] != "ORPHAN_CONTAINER"}
    if w["image"] is not None:
        assert observed["IMAGE_TAG_MISMATCH"] == w["image"]  # the exact value, not an escaped one
    if w["network"] is not None:
        assert w["network"] in observed["NETWORKS_MISMATCH"]
    assert sorted(c["observed"] for c in plan["changes"] if c["code"] == "ORPHAN_CONTAINER") == sorted(w["orphans"])
    # a bind mount's source is never shown; nor is a label no check reads
    text = json.dumps(plan, ensure_ascii=False)
    if w["bind_source"] is not None:
        assert "/srv/secret-" not in text
    assert "org.example.note" not in text


@SETTINGS
@given(world)
def test_hostile_host_data_never_reaches_the_terminal_raw(w):
    plan, verdicts = _run(w)
    terminal = [plain(line) for line in summary_lines(plan)] + [v.failure() for v in verdicts]
    assert all(_terminal_safe(text) for text in terminal), (w, terminal)
    # each hostile value the plan shows is on the terminal, escaped
    shown = "\n".join(terminal)
    for value in [w["image"], w["network"], *w["orphans"]]:
        if value is not None:
            assert printable(value) in shown, (value, shown)


@pytest.mark.parametrize("separator", list(SEPARATORS))
def test_one_separator_in_an_unrelated_label_leaves_the_listing_whole(separator):
    containers = [_container(1, "p-s-1", "p", "s"), _container(2, "other-1", f"q{separator}x", f"s{separator}")]
    listing = parse_listing("h", HEADER + b"".join(_row(c) for c in containers))
    assert [(c.name, c.project, c.service) for c in listing] == [
        ("p-s-1", "p", "s"), ("other-1", f"q{separator}x", f"s{separator}")]
    assert set(parse_inspect("h", json.dumps(containers, ensure_ascii=False).encode())) == {"p-s-1", "other-1"}


def test_a_foreign_error_line_ends_at_a_newline_only():
    assert one_line("first\x85half\u2028more\nsecond") == "first?half?more"


def test_nothing_in_driftcheck_splits_host_or_file_text_with_splitlines():
    # str.splitlines() splits on U+0085, U+2028, U+2029, \x1c-\x1e, \x0b, \x0c: split on "\n" only
    offenders = [f"{path.relative_to(REPO)}:{number}" for path in sorted((REPO / "driftcheck").rglob("*.py"))
                 for number, line in enumerate(path.read_text().split("\n"), 1)
                 if re.search(r"\.splitlines\(", line)]
    assert offenders == []


# -- escape sequences never reach a terminal raw --------------------------------------------------

PWN = "\x1b]0;pwned\x07"
ERASE = "\x1b[2K\x1b[1A"


@pytest.mark.parametrize(("raw", "shown"), [
    (PWN, "\\x1b]0;pwned\\x07"),
    (ERASE, "\\x1b[2K\\x1b[1A"),
    ("in\x9b2Jsync\x7f", "in\\x9b2Jsync\\x7f"),
    ("a\nb\rc\td\x85e\u2028f\u2029", "a\\x0ab\\x0dc\\x09d\\x85e\\u2028f\\u2029"),
    ("\u202egnp.exe\u2066x\u2069\u200f", "\\u202egnp.exe\\u2066x\\u2069\\u200f"),
    ("plain text, ünïcode and 🐳 stay", "plain text, ünïcode and 🐳 stay"),
    ("\U000e0001tag", "\\U000e0001tag"),
])
def test_printable_escapes_every_control_visibly_and_keeps_the_rest(raw, shown):
    assert printable(raw) == shown
    assert printable(shown) == shown and shown.isprintable()


@pytest.mark.parametrize("char", list(SEPARATORS + CONTROLS))
def test_printable_leaves_no_control_or_separator(char):
    assert printable(f"a{char}b").isprintable()


def test_the_summary_shows_host_and_file_values_escaped_and_the_plan_keeps_them():
    hostile_change = {"code": "SERVICE_LABEL_MISMATCH", "field": "compose.service", "desired": "s",
                      "observed": f"s{ERASE}"}
    checks = [
        {"module": "m", "host": "h", "container": "p-s-1", "check": "labels", "outcome": "failed",
         "changes": [hostile_change], "warnings": [], "error": None},
        {"module": "n", "host": "h", "container": "p-n-1", "check": "state", "outcome": "error", "changes": [],
         "warnings": [], "error": {"code": "DOCKER_UNAVAILABLE", "message": f"docker said {PWN}; try again"}},
        {"module": "w", "host": "h", "container": "p-w-1", "check": "ports", "outcome": "skipped", "changes": [],
         "warnings": [], "error": None, "ignored": {"check": "ports", "reason": f"PLAT-1{ERASE}", "until": None}},
    ]
    # a tampered --compare-with plan: its run id (its modules and codes show only when they match this run's)
    previous = {"run_id": PWN, "changes": [{"module": f"gone{ERASE}", "code": f"X{PWN}", "field": "f"}]}
    plan = plan_json(checks, [{"code": "MANIFEST_INVALID", "message": f"unknown key {PWN}", "file": f"m{ERASE}/y",
                               "key": f"k{PWN}"}], pytest_status=1, previous=previous)
    assert plan["since"]["run_id"] == PWN and plan["changes"][0]["observed"] == f"s{ERASE}"  # exact in the plan
    text = "\n".join(plain(line) for line in summary_lines(plan))
    assert _terminal_safe(text), text
    for escaped in ("since \\x1b]0;pwned\\x07:", "s\\x1b[2K\\x1b[1A", "docker said \\x1b]0;pwned\\x07",
                    "PLAT-1\\x1b[2K", "m\\x1b[2K\\x1b[1A/y: k\\x1b]0;pwned\\x07: unknown key"):
        assert escaped in text, (escaped, text)


def test_a_checks_failure_lines_are_escaped_one_line_per_change():
    verdict = Verdict((Change(CODES["IMAGE_TAG_MISMATCH"], "image.ref", "lab/app:1", f"lab/app:1{PWN}"),
                       Change(CODES["ORPHAN_CONTAINER"], "container", None, "x", f"service o{ERASE}; no module")))
    lines = verdict.failure().split("\n")
    assert lines == ["IMAGE_TAG_MISMATCH image.ref: desired lab/app:1, observed lab/app:1\\x1b]0;pwned\\x07",
                     "ORPHAN_CONTAINER container: desired (none), observed x (service o\\x1b[2K\\x1b[1A; no module)"]


def test_import_says_host_values_escaped(tmp_path):
    from driftcheck.importer import HostView, run
    from driftcheck.records import ContainerObservation, ListedContainer

    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  rs2000:\n    connection: local://\n")
    labels = (("com.docker.compose.project", "p"), ("com.docker.compose.service", "app"),
              ("com.docker.compose.project.config_files", f"/srv/{PWN}{ERASE}/compose.yaml"))
    app = ContainerObservation("p-app-1", "1" * 64, "running", "lab/app:1", IMAGE_ID, labels)
    weird = ContainerObservation("p-odd-1", "2" * 64, "running", f"not a ref{PWN}", IMAGE_ID,
                                 (("com.docker.compose.project", "p"), ("com.docker.compose.service", "odd")))
    listing = tuple(ListedContainer(c.id, c.name, "p", c.label("com.docker.compose.service") or "")
                    for c in (app, weird))
    said: list[str] = []
    status = run("rs2000", inventory, tmp_path / "modules", str, said.append,
                 observe=lambda config: HostView({c.name: c for c in (app, weird)}, listing, ("docker ps",)))
    assert status == 0, said
    assert all(line.isprintable() for line in said), said
    assert any("/srv/\\x1b]0;pwned\\x07\\x1b[2K\\x1b[1A/compose.yaml" in line for line in said), said
    assert any("not a ref\\x1b]0;pwned\\x07" in line for line in said), said

    def unreachable(config):
        raise ObservationError("rs2000", "HOST_UNREACHABLE", f"ssh said {ERASE}")

    said = []
    assert run("rs2000", inventory, tmp_path / "other", str, said.append, observe=unreachable) == 2
    assert said == ["ERROR HOST_UNREACHABLE: ssh said \\x1b[2K\\x1b[1A"]

