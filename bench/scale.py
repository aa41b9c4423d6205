"""The scale rows of the benchmark: N modules with docker taken out, beside bare pytest.

    .venv/bin/python bench/scale.py [--n 200 --n 1000 --n 5000] [--repeat 3]

Every host is `local://` and the `docker` first on PATH is bench/stubdocker.py, serving canned
JSON for N containers (each a copy of a captured lab container, fixtures/inspect). A fleet has
at most HOST_SIZE modules a host (so 5000 modules are 5 hosts; every host's `docker ps` lists the
whole fleet, since one stub serves them all), ten modules a compose project, four checks a module
(exists, labels, state, image) and one orphans check a project.

- in sync: every container runs as declared;
- all drift: every module's container is missing (each of its four checks fails,
  CONTAINER_MISSING), the case that took 18 minutes at N=5000 while pytest's failure summary
  rescanned every report per failure.

Bare pytest runs, in the same process set-up, as many trivial tests as the drift run has checks,
with the same ini options and plugins (bench/bare): pytest-json-report and junitxml write their
files, as they do in a drift run, and each side starts with a fresh cache. Peak RSS is the pytest process's maximum. CPU
is the process's user + system time: on a shared machine it moves far less than wall time.
bench/bench.py calls `measure_rows`; run alone, this prints the scale table.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RUN = BENCH / "run"
PYTHON = str(REPO / ".venv" / "bin" / "python")
TEMPLATE = REPO / "fixtures" / "inspect" / "drift-lab.containers.json"
IMAGES = REPO / "fixtures" / "inspect" / "drift-lab.images.json"
#: at most this many modules a host (the allowlist caps one command at 4000 arguments)
HOST_SIZE = 1000
IMAGE = "lab/app:1"
CHECKS_PER_MODULE = 4
CPU: list[float] = []


def module_name(i: int) -> str:
    return f"svc-{i:05d}"


def project(i: int) -> str:
    return f"scale{i // 10}"


def host_of(i: int) -> str:
    return f"stub{i // HOST_SIZE}"


def items(n: int) -> int:
    """The checks of a fleet of n modules: four a module, one orphans check a project."""
    return CHECKS_PER_MODULE * n + math.ceil(n / 10)


def write_fleet(n: int, drift: bool) -> Path:
    """bench/run/scale-<n>-<drift>/: modules/, hosts.yaml, stub/ (the docker stub's data), bin/docker."""
    folder = RUN / f"scale-{n}-{'drift' if drift else 'sync'}"
    if folder.exists():
        shutil.rmtree(folder)
    modules, stub, bin_dir = folder / "modules", folder / "stub", folder / "bin"
    for path in (modules, stub, bin_dir):
        path.mkdir(parents=True)
    hosts = sorted({host_of(i) for i in range(n)})
    (folder / "hosts.yaml").write_text("hosts:\n" + "".join(f"  {h}:\n    connection: local://\n    timeout: 60\n"
                                                          for h in hosts))
    for i in range(n):
        name = module_name(i)
        (modules / name).mkdir()
        (modules / name / "module.yaml").write_text(
            f"schema_version: 2\nname: {name}\nhost: {host_of(i)}\ncompose:\n  project: {project(i)}\n"
            f"  service: {name}\nimage:\n  ref: {IMAGE}\n")
    template = next(c for c in json.loads(TEMPLATE.read_text()) if c["Name"] == "/drift-lab-in-sync-1")
    rows = ["[CONTAINER ID,NAMES,project,service,oneoff,STATE]"]
    index: dict[str, list[int]] = {}
    with open(stub / "inspect.dat", "wb") as data:
        for i in range(0 if drift else n):  # all drift: every module's container is missing
            record = copy.deepcopy(template)
            name = f"{project(i)}-{module_name(i)}-1"
            record["Id"] = f"{i:064x}"
            record["Name"] = f"/{name}"
            record["Config"]["Labels"].update({"com.docker.compose.project": project(i),
                                               "com.docker.compose.service": module_name(i)})
            record["Config"]["Image"] = IMAGE
            text = json.dumps(record, indent=4).encode()
            index[record["Id"]] = [data.tell(), len(text)]
            data.write(text)
            rows.append(json.dumps([record["Id"], name, project(i), module_name(i), "", "running"],
                                   separators=(",", ":")))
    (stub / "inspect.idx").write_text(json.dumps(index))
    (stub / "ps.txt").write_text("\n".join(rows) + "\n")
    shutil.copy(IMAGES, stub / "images.json")
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable} -IS\n" + (BENCH / "stubdocker.py").read_text())
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, float, str]:
    """Run argv in the repo; return (wall seconds, exit status, peak RSS MiB, output).

    CPU seconds (user + system) of the process go to CPU[-1]: on a shared machine they vary less.
    """
    started = time.time()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    CPU.append(usage.ru_utime + usage.ru_stime)
    return time.time() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, output


def suite(folder: Path, *args: str) -> tuple[float, int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFT_", "DOCKER_"))}
    env.update(DRIFT_INVENTORY=str(folder / "hosts.yaml"), DRIFT_MODULES_DIR=str(folder / "modules"),
               DRIFT_REPORTS_DIR=str(folder / "reports"), DOCKER_STUB_DIR=str(folder / "stub"),
               PATH=f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    # A cache of its own, fresh each run as bare pytest's: the checkout's would carry one row's
    # failures into the next.
    shutil.rmtree(folder / "cache", ignore_errors=True)
    result = timed([PYTHON, "-m", "pytest", "-q", "-o", f"cache_dir={folder / 'cache'}", *args], env)
    shutil.rmtree(folder / "reports", ignore_errors=True)
    return result


def bare(count: int, *args: str) -> tuple[float, int, float, str]:
    """count trivial tests with the suite's ini options and the plugins a drift run turns on: its
    report.json and junit.xml written to files, its cache fresh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
    env["BENCH_BARE_ITEMS"] = str(count)
    out = RUN / "bare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result = timed([PYTHON, "-m", "pytest", "-q", "-c", str(BENCH / "bare" / "pytest.ini"), "-o",
                    f"cache_dir={out / 'cache'}", "--json-report", f"--json-report-file={out / 'report.json'}",
                    f"--junitxml={out / 'junit.xml'}", str(BENCH / "bare"), *args], env)
    shutil.rmtree(out, ignore_errors=True)
    return result


def measure(n: int, drift: bool, repeat: int) -> dict[str, Any]:
    """One scale row: the suite and bare pytest, alternated, medians of `repeat`."""
    folder = write_fleet(n, drift)
    expected = 1 if drift else 0
    walls, cpus, peaks, bare_walls, bare_cpus, bare_peaks = [], [], [], [], [], []
    suite(folder)  # warm the page cache
    for _ in range(repeat):
        wall, rc, peak, output = suite(folder)
        assert rc == expected, f"N={n} drift={drift}: exit {rc}\n{output[-3000:]}"
        walls.append(wall)
        cpus.append(CPU[-1])
        peaks.append(peak)
        wall, rc, peak, output = bare(items(n))
        assert rc == 0, output[-3000:]
        bare_walls.append(wall)
        bare_cpus.append(CPU[-1])
        bare_peaks.append(peak)
    shutil.rmtree(folder)
    row = {"n": n, "drift": drift, "items": items(n), "hosts": math.ceil(n / HOST_SIZE), "repeat": repeat,
           "wall": statistics.median(walls), "cpu": statistics.median(cpus), "peak": max(peaks),
           "bare": statistics.median(bare_walls), "bare_cpu": statistics.median(bare_cpus),
           "bare_peak": max(bare_peaks)}
    print(f"scale: N={n} {'all drift' if drift else 'in sync'}: {row['wall']:.2f}s ({row['cpu']:.2f}s CPU), "
          f"bare {row['bare']:.2f}s ({row['bare_cpu']:.2f}s CPU), peak {row['peak']:.0f} MiB", flush=True)
    return row


def measure_rows(sizes: list[int], repeat: int, big_repeat: int, sync_only: tuple[int, ...] = (2000,)
                 ) -> list[dict[str, Any]]:
    """Every size in sync and all drift (sync_only sizes in sync only: goal 2 is N=2000 in sync);
    sizes over 1000 get big_repeat runs."""
    rows = []
    for n in sorted({*sizes, *sync_only}):
        for drift in (False,) if n in sync_only and n not in sizes else (False, True):
            rows.append(measure(n, drift, repeat if n <= 1000 else big_repeat))
    return rows


def render_rows(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| N | drift | checks | hosts | runs | suite s | suite CPU s | bare pytest s | bare CPU s | suite ÷ bare "
           "| CPU ÷ bare CPU | peak MiB | peak KiB/module | bare peak MiB | bare peak KiB/module |",
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['n']} | {'all (CONTAINER_MISSING)' if r['drift'] else 'none'} | {r['items']} | {r['hosts']} "
                   f"| {r['repeat']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['bare']:.2f} | {r['bare_cpu']:.2f} | "
                   f"{r['wall'] / r['bare']:.2f} | {r['cpu'] / r['bare_cpu']:.2f} | {r['peak']:.0f} | "
                   f"{r['peak'] * 1024 / r['n']:.0f} | {r['bare_peak']:.0f} | {r['bare_peak'] * 1024 / r['n']:.0f} |")
    return out


def goals(rows: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """The scale goals of issue 16 that these rows measure: (goal, met on wall time, measured)."""
    by = {(r["n"], r["drift"]): r for r in rows}
    found = []
    top = max(r["n"] for r in rows)
    if (top, True) in by and (top, False) in by:
        sync, drift = by[(top, False)], by[(top, True)]
        found.append((f"N={top}: all drift <= 1.5 x in sync", drift["wall"] <= 1.5 * sync["wall"],
                      f"{drift['wall']:.2f}s / {sync['wall']:.2f}s = {drift['wall'] / sync['wall']:.2f} "
                      f"(CPU {drift['cpu']:.2f}s / {sync['cpu']:.2f}s = {drift['cpu'] / sync['cpu']:.2f})"))
    mid = 2000 if (2000, False) in by else max((r["n"] for r in rows if r["n"] <= 2000 and not r["drift"]), default=0)
    if (mid, False) in by:
        r = by[(mid, False)]
        found.append((f"N={mid} in sync: suite <= 1.3 x bare pytest", r["wall"] <= 1.3 * r["bare"],
                      f"{r['wall']:.2f}s / {r['bare']:.2f}s = {r['wall'] / r['bare']:.2f} "
                      f"(CPU {r['cpu']:.2f}s / {r['bare_cpu']:.2f}s = {r['cpu'] / r['bare_cpu']:.2f})"))
    for drift in (False, True):
        if (top, drift) in by:
            r = by[(top, drift)]
            per = r["peak"] * 1024 / r["n"]
            found.append((f"N={top} {'all drift' if drift else 'in sync'}: peak RSS <= 50 KiB per module",
                          per <= 50, f"{r['peak']:.0f} MiB / {top} = {per:.0f} KiB; bare pytest with the same "
                          f"plugins: {r['bare_peak'] * 1024 / top:.0f} KiB"))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="fleet sizes (default 200, 1000, 5000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-repeat", type=int, default=1, help="runs for sizes over 1000")
    parser.add_argument("--drift", choices=("both", "sync", "drift"), default="both")
    args = parser.parse_args()
    rows = []
    for n in args.n or [200, 1000, 2000, 5000]:
        for drift in {"both": (False, True), "sync": (False,), "drift": (True,)}[args.drift]:
            rows.append(measure(n, drift, args.repeat if n <= 1000 else args.big_repeat))
    print("\n".join(render_rows(rows)))
    for goal, ok, measured in goals(rows):
        print(f"{goal}: {'met' if ok else 'NOT met'} ({measured})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
