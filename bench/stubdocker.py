"""A fast stand-in `docker` CLI for the scale rows of the benchmark: canned answers for N containers.

Installed as `docker` first on PATH (bench/scale.py copies it with this interpreter in its #! line,
run with `-I -S`, so it starts fast). It serves what bench/scale.py rendered into $DOCKER_STUB_DIR:

- ps.txt: the whole `docker ps` answer (header and one row per container);
- inspect.dat, inspect.idx: every container's `docker inspect` record, rendered once, and
  {container id: [offset, length]} into inspect.dat; an inspect answers for the ids asked, in order;
- images.json: `docker image inspect` records (a list);
- counts: one line per command received (its kind), for the benchmark's commands per run.

Like tests/plugin/docker_stub.py (the plugin tests' stub, which also fakes faults), it answers only
the read-only commands driftcheck sends; anything else exits 125. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    folder = os.environ["DOCKER_STUB_DIR"]
    argv = sys.argv[1:]
    kind = "ps" if argv[:1] == ["ps"] else "inspect" if argv[:3] == ["inspect", "--type", "container"] else \
        "image" if argv[:2] == ["image", "inspect"] else "version" if argv[:1] == ["version"] else None
    with open(os.path.join(folder, "counts"), "a", encoding="utf-8") as log:
        log.write(f"{kind}\n")
    out = sys.stdout.buffer
    if kind == "ps":
        with open(os.path.join(folder, "ps.txt"), "rb") as handle:
            out.write(handle.read())
        return 0
    if kind == "version":
        out.write(b'"1.41"\n')
        return 0
    if kind == "inspect":
        with open(os.path.join(folder, "inspect.idx"), encoding="utf-8") as handle:
            index = json.load(handle)
        missing = [i for i in argv[4:] if i not in index]
        with open(os.path.join(folder, "inspect.dat"), "rb") as data:
            parts = []
            for wanted in argv[4:]:
                if wanted in index:
                    offset, length = index[wanted]
                    data.seek(offset)
                    parts.append(data.read(length))
        out.write(b"[\n" + b",\n".join(parts) + b"\n]\n")
        sys.stderr.write("".join(f"Error: No such container: {m}\n" for m in missing))
        return 1 if missing else 0
    if kind == "image":
        with open(os.path.join(folder, "images.json"), encoding="utf-8") as handle:
            images = json.load(handle)
        found = [i for i in images if i["Id"] in argv[3:] or any(t in argv[3:] for t in i["RepoTags"])]
        out.write(json.dumps(found, indent=4).encode() + b"\n")
        return 0
    sys.stderr.write(f"docker stub: not a command driftcheck may send: {argv!r}\n")
    return 125


if __name__ == "__main__":
    sys.exit(main())
