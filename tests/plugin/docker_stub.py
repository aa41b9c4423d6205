"""A stand-in `docker` CLI for the plugin tests: canned answers from JSON fixtures, every argv logged.

Installed as `docker` first on PATH (conftest.py copies it with this interpreter in its #! line).
Everything it serves lives in the folder named by $DOCKER_STUB_DIR, which a test may change
between two runs:

- containers.json: `docker inspect` records (a list), the whole host: `docker ps` lists these
- images.json: `docker image inspect` records (a list)
- scenario.json (optional), the switches:
  - "remove": [container name, ...]: gone from ps and inspect (a container removed)
  - "vanish": [container name, ...]: listed by ps, gone by inspect (removed between the two)
  - "retag": {"repo:tag": "sha256:<image id>"}: the tag now names that image (a tag moved)
  - "fail": {"ps" | "inspect" | "image" | "version" | "all": {"rc": 1, "stderr": "...", "stdout": ""}}
- log.jsonl: one JSON array (the argv after `docker`) appended per call

Only the read-only commands driftcheck may send are understood; anything else exits 125.
Standard library only, so it starts fast (`python -I -S`).
"""

from __future__ import annotations

import json
import os
import sys

PS_HEADER = "[CONTAINER ID,NAMES,project,service,oneoff,STATE]"
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
ONEOFF = "com.docker.compose.oneoff"


def load(folder: str, name: str, default: object) -> object:
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def log(folder: str, argv: list[str]) -> None:
    line = (json.dumps(argv) + "\n").encode("utf-8")
    fd = os.open(os.path.join(folder, "log.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def finish(rc: int, stdout: str = "", stderr: str = "") -> None:
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(rc)


def normal_tag(ref: str) -> str:
    return ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"


def kind_of(argv: list[str]) -> str | None:
    if argv[:3] == ["ps", "--all", "--no-trunc"] and len(argv) == 5 and argv[3] == "--format" \
            and argv[4].startswith("table "):
        return "ps"
    if argv[:4] == ["inspect", "--type", "container", "--"] and len(argv) > 4:
        return "inspect"
    if argv[:3] == ["image", "inspect", "--"] and len(argv) > 3:
        return "image"
    if argv[:2] == ["version", "--format"] and len(argv) == 3:
        return "version"
    return None


def main() -> None:
    folder = os.environ["DOCKER_STUB_DIR"]
    argv = sys.argv[1:]
    log(folder, argv)
    kind = kind_of(argv)
    if kind is None:
        finish(125, stderr=f"docker stub: not a command driftcheck may send: {argv!r}\n")
    scenario = load(folder, "scenario.json", {})
    assert isinstance(scenario, dict)
    fail = scenario.get("fail", {})
    fault = fail.get(kind) or fail.get("all")
    if fault:
        finish(int(fault.get("rc", 1)), fault.get("stdout", ""), fault.get("stderr", ""))
    removed = set(scenario.get("remove", []))
    containers = [c for c in load(folder, "containers.json", []) if c["Name"].lstrip("/") not in removed]
    if kind == "version":
        finish(0, '"1.41"\n')
    if kind == "ps":
        rows = [PS_HEADER]
        for c in containers:
            labels = c["Config"].get("Labels") or {}
            rows.append(json.dumps([c["Id"], c["Name"].lstrip("/"), labels.get(PROJECT, ""), labels.get(SERVICE, ""),
                                    labels.get(ONEOFF, ""), c["State"]["Status"]], separators=(",", ":")))
        finish(0, "\n".join(rows) + "\n")
    found: list[object] = []
    missing: list[str] = []
    if kind == "inspect":
        vanished = set(scenario.get("vanish", []))
        by_id = {c["Id"]: c for c in containers if c["Name"].lstrip("/") not in vanished}
        for wanted in argv[4:]:
            if wanted in by_id:
                found.append(by_id[wanted])
            else:
                missing.append(wanted)
    else:
        images = load(folder, "images.json", [])
        for ref, image_id in scenario.get("retag", {}).items():
            for image in images:
                tags = [t for t in image.get("RepoTags") or [] if t != ref]
                image["RepoTags"] = [*tags, ref] if image["Id"] == image_id else tags
        for wanted in argv[3:]:
            match = [i for i in images if i["Id"] == wanted or normal_tag(wanted) in (i.get("RepoTags") or [])]
            if match:
                found.append(match[0])
            else:
                missing.append(wanted)
    finish(1 if missing else 0, json.dumps(found, indent=4) + "\n",
           "".join(f"Error: No such object: {m}\n" for m in missing))


if __name__ == "__main__":
    main()
