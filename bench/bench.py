"""The benchmark: this suite against the floor and the naive way, on the lab over a slow link.

    .venv/bin/python bench/bench.py [--repeat 5] [--delay-ms 25]     (make bench)

Prints a table and writes bench/results.md (and its tables into docs/internals.md). Needs the lab
(make lab-up). It adds, and removes again: 200 containers (compose projects bench0 .. bench19) on
the lab's dockerd, three more lab sshd instances (hosts bench-a, bench-b, bench-c, each logging its
own docker commands), and a TCP delay proxy in front of each (bench/delayproxy.py), all stopped by pidfile.

N=200 is measured over paramiko:// (the default) and again over ssh:// (the system OpenSSH client, one
ControlMaster connection per host). `--only 200 --only "200 ssh://"` measures just those rows and prints
them without writing bench/results.md. `--cache-ab 20` measures what pytest's cache provider (on in
pytest.ini, for --lf/--ff/--sw) costs the N=200 run: 20 interleaved pairs with it and without it.

Two more sections: many hosts (`--only fleet`: 1, 10 and 50 more lab hosts, fleet00 .. fleet49, each
an sshd behind a delay proxy, 20 modules each, over both transports) and scale (`--only scale`:
bench/scale.py, N = 200, 1000, 5000 modules in sync and all drifting with docker stubbed, beside bare
pytest, with peak RSS per module).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(BENCH))
import labctl  # noqa: E402
import scale  # noqa: E402

RUN = BENCH / "run"
PYTHON = str(REPO / ".venv" / "bin" / "python")
HOSTS = ("bench-a", "bench-b", "bench-c")
#: the many-hosts rows: up to 50 lab hosts (an sshd and a delay proxy each) of FLEET_SIZE modules
FLEET_HOSTS = tuple(f"fleet{k:02d}" for k in range(50))
FLEET_SIZES = (1, 10, 50)
FLEET_SIZE = 20
#: the delay proxies this process started, by host
PROXIES: dict[str, subprocess.Popen[bytes]] = {}
PROJECT = "bench"
#: every bench container carries it, for the clean-up
BENCH_LABEL = "driftcheck.bench=1"
IMAGE = "lab/app:1"
MAX_N = 200
LOGIN = "Accepted publickey for driftlab"


def service(i: int) -> str:
    return f"svc-{i:03d}"


def project(i: int) -> str:
    """Ten containers a compose project, so every scenario (10, 50, 200, 3 x 50) declares whole
    projects and its orphans checks find nothing."""
    return f"{PROJECT}{i // 10}"


def container(i: int) -> str:
    return f"{project(i)}-{service(i)}-1"


# -- set-up and tear-down -----------------------------------------------------------------------


def make_containers() -> None:
    listed = labctl.docker("ps", "--all", "--filter", f"label={BENCH_LABEL}", "--format", "{{.Names}}").stdout
    have = set(listed.split())
    missing = [i for i in range(MAX_N) if container(i) not in have]
    for i in missing:
        labctl.docker("create", "--name", container(i), "--init", "--network", "none", "--label", BENCH_LABEL,
                      "--label", f"com.docker.compose.project={project(i)}",
                      "--label", f"com.docker.compose.service={service(i)}", IMAGE)
    names = [container(i) for i in range(MAX_N)]
    for start in range(0, MAX_N, 50):
        labctl.docker("start", *names[start:start + 50])
    print(f"bench: {MAX_N} containers running ({len(missing)} created)", flush=True)


def remove_containers() -> None:
    ids = labctl.docker("ps", "--all", "--quiet", "--filter", f"label={BENCH_LABEL}").stdout
    if ids.split():
        labctl.docker("rm", "--force", *ids.split())


def start_hosts(delay_ms: int, hosts: tuple[str, ...] = HOSTS) -> dict[str, int]:
    """An sshd per bench host, and a delay proxy in front of each; returns the proxied ports."""
    RUN.mkdir(parents=True, exist_ok=True)
    ports = {}
    key_type, key_b64 = (labctl.SSH / "host_ed25519.pub").read_text().split()[:2]
    known = []
    for host in hosts:
        sshd_port = labctl.start_sshd(f"sshd-{host}", command_log(host))
        proxy_port = labctl.free_port()
        pidfile = RUN / f"proxy-{host}.pid"
        labctl.stop_pid(pidfile, f"delay proxy for {host}")
        PROXIES[host] = subprocess.Popen([PYTHON, str(BENCH / "delayproxy.py"), str(proxy_port), str(sshd_port),
                                          str(delay_ms), str(pidfile)], start_new_session=True,
                                         stdin=subprocess.DEVNULL)
        labctl.wait_for(lambda p=proxy_port: labctl.listening(p), f"delay proxy for {host}")
        ports[host] = proxy_port
        known.append(f"[127.0.0.1]:{proxy_port} {key_type} {key_b64}")
    with open(RUN / "known_hosts", "a") as handle:
        handle.write("\n".join(known) + "\n")
    return ports


def stop_hosts(hosts: tuple[str, ...] = HOSTS) -> None:
    for host in hosts:
        proxy = PROXIES.pop(host, None)
        if proxy is not None:  # our child: reaped here, or stop_pid would wait 20 s on its zombie
            proxy.terminate()
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
            (RUN / f"proxy-{host}.pid").unlink(missing_ok=True)
        else:
            labctl.stop_pid(RUN / f"proxy-{host}.pid", f"delay proxy for {host}")
        labctl.stop_pid(labctl.RUN / f"sshd-{host}.pid", f"sshd-{host}")


def command_log(host: str) -> Path:
    return labctl.SHARED / f"docker-commands.{host}.log"  # the lab user writes it


def write_inventory(ports: dict[str, int], path: Path = RUN / "inventory.yaml", scheme: str = "paramiko") -> Path:
    lines = ["hosts:"]
    for host, port in ports.items():
        lines += [f"  {host}:", f"    connection: {scheme}://driftlab@127.0.0.1:{port}",
                  f"    identity_file: {labctl.SSH / 'client_ed25519'}",
                  f"    known_hosts: {RUN / 'known_hosts'}", "    timeout: 30"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_modules(name: str, layout: dict[str, range], prefix: bool = False) -> Path:
    """Modules for the containers of each host's range; prefix: module names carry the host (hosts of
    a fleet share the lab's containers)."""
    folder = RUN / f"modules-{name.replace(' ', '-').replace('/', '')}"
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    for host, indices in layout.items():
        for i in indices:
            module = f"{host}-{service(i)}" if prefix else service(i)
            (folder / module).mkdir(parents=True)
            (folder / module / "module.yaml").write_text(
                f"schema_version: 2\nname: {module}\nhost: {host}\ncompose:\n  project: {project(i)}\n"
                f"  service: {service(i)}\nimage:\n  ref: {IMAGE}\n")
    return folder


# -- measurements -------------------------------------------------------------------------------


def counts(hosts: list[str]) -> dict[str, tuple[int, int]]:
    """(docker commands, SSH logins) each host has logged so far."""
    result = {}
    for host in hosts:
        log = command_log(host)
        commands = len([line for line in log.read_text().split("\n") if line]) if log.exists() else 0
        logins = (labctl.RUN / f"sshd-{host}.log").read_text().count(LOGIN)
        result[host] = (commands, logins)
    return result


def suite_env(inventory: Path, modules: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
    env.update(DRIFT_INVENTORY=str(inventory), DRIFT_MODULES_DIR=str(modules),
               DRIFT_REPORTS_DIR=str(RUN / "reports"), PYTHONPATH=str(BENCH),
               BENCH_PHASES=str(RUN / "phases.json"))
    return env


def run_suite(inventory: Path, modules: Path, hosts: list[str], *args: str) -> dict[str, Any]:
    before = counts(hosts)
    started = time.time()
    wall, rc, peak, output = scale.timed([PYTHON, "-m", "pytest", "-p", "phases", "-q", *args],
                                   suite_env(inventory, modules))
    after = counts(hosts)
    phases = json.loads((RUN / "phases.json").read_text())
    spans = phases["commands"]
    observation = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    return {
        "rc": rc, "wall": wall, "peak": peak, "output": output, "cpu": scale.CPU[-1],
        "startup": phases["sessionstart"] - started,
        "collection": phases["collected"] - phases["sessionstart"],
        "observation": observation,
        "report": phases["end"] - phases["collected"] - observation,
        "commands": max(after[h][0] - before[h][0] for h in hosts),
        "connections": max(after[h][1] - before[h][1] for h in hosts),
    }


def floor(ports: dict[str, int], layout: dict[str, range]) -> float:
    """One OpenSSH connection and one `docker inspect` of every container, per host, hosts in parallel."""
    def one(host: str) -> None:
        names = [container(i) for i in layout[host]]
        subprocess.run(["ssh", "-q", "-p", str(ports[host]), "-i", str(labctl.SSH / "client_ed25519"),
                        "-o", f"UserKnownHostsFile={RUN / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                        "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                        "driftlab@127.0.0.1", "docker", "inspect", "--type", "container", "--", *names],
                       check=True, stdout=subprocess.DEVNULL)
    started = time.time()
    with ThreadPoolExecutor(len(layout)) as pool:
        list(pool.map(one, layout))
    return time.time() - started


def naive(ports: dict[str, int], n: int) -> tuple[float, int]:
    host = HOSTS[0]
    modules = [{"name": service(i), "container": container(i), "project": project(i), "service": service(i),
                "image": IMAGE} for i in range(n)]
    (RUN / "naive-modules.json").write_text(json.dumps(modules))
    env = dict(os.environ, BENCH_NAIVE_MODULES=str(RUN / "naive-modules.json"))
    before = counts([host])[host][0]
    wall, rc, _, output = scale.timed(
        [PYTHON, "-m", "pytest", "-c", str(BENCH / "naive" / "pytest.ini"), str(BENCH / "naive"),
         f"--hosts=paramiko://driftlab@127.0.0.1:{ports[host]}",
         f"--ssh-identity-file={labctl.SSH / 'client_ed25519'}"], env)
    assert rc == 0, output[-2000:]
    return wall, counts([host])[host][0] - before


def median_of(repeat: int, measure: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    runs = [measure() for _ in range(repeat)]
    for run in runs:
        assert run["rc"] == 0, run["output"][-3000:]
    result = {key: statistics.median(r[key] for r in runs) for key in
              ("wall", "startup", "collection", "observation", "report", "peak", "cpu")}
    result["commands"] = max(r["commands"] for r in runs)
    result["connections"] = max(r["connections"] for r in runs)
    return result


# -- the table ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delay-ms", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="leave the bench containers in place")
    parser.add_argument("--only", action="append", metavar="ROW",
                        help='measure only this row (10, 50, 200, 3x50, "200 ssh://", or a whole section: scale, '
                             "fleet; repeatable) and print it, without writing bench/results.md")
    parser.add_argument("--cache-ab", type=int, metavar="PAIRS",
                        help="only measure pytest's cache provider: PAIRS interleaved N=200 runs with and without it")
    parser.add_argument("--scale-repeat", type=int, default=3, help="runs of each scale row up to N=1000")
    parser.add_argument("--scale-big-repeat", type=int, default=1, help="runs of each scale row over N=1000")
    parser.add_argument("--fleet-repeat", type=int, default=3, help="runs of each many-hosts row")
    args = parser.parse_args()
    only = set(args.only or ())
    if only and only <= {"scale"}:
        print("\n".join(scale.render_rows(measure_scale(args))))
        return 0
    assert labctl.status() == 0, "the lab is not up: run `make lab-up`"
    make_containers()
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / "known_hosts").unlink(missing_ok=True)
    fleet = not args.cache_ab and (not only or "fleet" in only)
    try:
        ports = start_hosts(args.delay_ms)
        if args.cache_ab:
            return cache_ab(args.cache_ab, ports)
        if fleet:
            ports.update(start_hosts(args.delay_ms, FLEET_HOSTS))
        return measure(args, ports)
    finally:
        stop_hosts()
        if fleet:
            stop_hosts(FLEET_HOSTS)
        if not args.keep:
            remove_containers()


def cache_ab(pairs: int, ports: dict[str, int]) -> int:
    """What pytest's cache provider costs the N=200 run, in CPU seconds of the pytest process (user +
    sys: the machine's load moves wall time by seconds, CPU time far less), interleaved pairs."""
    env = suite_env(write_inventory(ports), write_modules("200", {HOSTS[0]: range(200)}))
    env.pop("BENCH_PHASES")

    def cpu(*args: str) -> float:
        _, rc, _, output = scale.timed([PYTHON, "-m", "pytest", "-q", *args], env)
        assert rc == 0, output[-3000:]
        return scale.CPU[-1]

    cpu()  # warm the page cache and the lab
    on, off = [], []
    for _ in range(pairs):
        on.append(cpu())
        off.append(cpu("-p", "no:cacheprovider"))
    paired = [a - b for a, b in zip(on, off, strict=True)]
    print(f"cache provider, N=200, {pairs} pairs: CPU s median {statistics.median(on):.3f} with, "
          f"{statistics.median(off):.3f} without; paired difference median {statistics.median(paired) * 1000:.0f} ms, "
          f"mean {statistics.mean(paired) * 1000:.0f} ms")
    return 0


def measure_scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The scale rows (bench/scale.py): docker stubbed, every host local://."""
    return scale.measure_rows([200, 1000, 5000], args.scale_repeat, args.scale_big_repeat)


def measure_fleet(args: argparse.Namespace, ports: dict[str, int], inventories: dict[str, Path]
                  ) -> list[dict[str, Any]]:
    """H lab hosts of FLEET_SIZE modules each, per transport; the hosts share the lab's containers.

    Beside each row, the floor for H hosts on this machine: one OpenSSH connection and one `docker
    inspect` per host, all hosts at once. Every host's sshd and docker CLI run on this machine's
    cores, so the floor itself grows with H; observation ÷ floor is what the suite adds to it."""
    rows = []
    floors: dict[int, float] = {}
    for transport in ("paramiko://", "ssh://"):
        for size in FLEET_SIZES:
            hosts = list(FLEET_HOSTS[:size])
            layout = {host: range(FLEET_SIZE * k % MAX_N, FLEET_SIZE * k % MAX_N + FLEET_SIZE)
                      for k, host in enumerate(hosts)}
            if size not in floors:
                floor(ports, layout)  # warm
                floors[size] = statistics.median(floor(ports, layout) for _ in range(args.fleet_repeat))
            modules = write_modules(f"fleet-{size}", layout, prefix=True)
            inventory = inventories[transport]
            run_suite(inventory, modules, hosts)  # warm the page cache and the lab
            row = median_of(args.fleet_repeat, lambda i=inventory, m=modules, h=hosts: run_suite(i, m, h))
            row.update(name=f"H={size} {transport}", transport=transport, n=size * FLEET_SIZE, hosts=size,
                       floor=floors[size])
            rows.append(row)
            print(f"bench: {row['name']} done: observation {row['observation']:.2f}s (floor {row['floor']:.2f}s), "
                  f"wall {row['wall']:.2f}s",
                  flush=True)
    return rows


def measure(args: argparse.Namespace, ports: dict[str, int]) -> int:
    only = set(args.only or ())
    inventories = {"paramiko://": write_inventory(ports),
                   "ssh://": write_inventory(ports, RUN / "inventory-ssh.yaml", scheme="ssh")}
    scenarios = [(f"{n}", {HOSTS[0]: range(n)}, "paramiko://") for n in (10, 50, 200)]
    scenarios.append(("3x50", {h: range(50 * k, 50 * (k + 1)) for k, h in enumerate(HOSTS)}, "paramiko://"))
    scenarios.append(("200 ssh://", {HOSTS[0]: range(200)}, "ssh://"))  # the same run, over the OpenSSH client
    if only:
        scenarios = [s for s in scenarios if s[0] in only]
    rows = []
    for name, layout, transport in scenarios:
        inventory = inventories[transport]
        modules = write_modules(name.split()[0], layout)
        hosts = list(layout)
        run_suite(inventory, modules, hosts)  # warm the page cache and the lab
        suite = median_of(args.repeat, lambda i=inventory, m=modules, h=hosts: run_suite(i, m, h))
        floors = [floor(ports, layout) for _ in range(args.repeat)]
        suite["floor"] = statistics.median(floors)
        suite.update(name=name, transport=transport, n=sum(len(r) for r in layout.values()), hosts=len(hosts))
        rows.append(suite)
        print(f"bench: {name} done: wall {suite['wall']:.2f}s", flush=True)
    fleet_rows = measure_fleet(args, ports, inventories) if not only or "fleet" in only else []
    scale_rows = measure_scale(args) if not only or "scale" in only else []
    if only:
        print("\n".join([*render_rows(rows), "", *render_fleet(fleet_rows), "", *scale.render_rows(scale_rows)]))
        return 0
    inventory = inventories["paramiko://"]
    collect_200 = statistics.median(
        scale.timed([PYTHON, "-m", "pytest", "--collect-only", "-q"],
              suite_env(inventory, RUN / "modules-200"))[0] for _ in range(args.repeat))
    unreachable = dict(ports, **{HOSTS[0]: labctl.free_port()})  # a port nothing listens on
    refused = write_inventory(unreachable, RUN / "inventory-refused.yaml")
    refused_200 = statistics.median(
        scale.timed([PYTHON, "-m", "pytest", "-q"], suite_env(refused, RUN / "modules-200"))[0]
        for _ in range(args.repeat))
    naive_wall, naive_commands = naive(ports, 200)
    single = {r["name"]: r for r in rows}
    table = render(rows, args, naive_wall, naive_commands, collect_200, single, refused_200)
    table += render_scale_sections(fleet_rows, scale_rows, args)
    print(table)
    (BENCH / "results.md").write_text(table)
    INTERNALS.write_text(with_tables(INTERNALS.read_text(encoding="utf-8"), table), encoding="utf-8")
    README.write_text(with_goals(README.read_text(encoding="utf-8"), table), encoding="utf-8")
    return 0


#: docs/internals.md shows the tables of bench/results.md between these markers
INTERNALS = REPO / "docs" / "internals.md"
BEGIN, END = "<!-- bench tables: written by make bench (bench/bench.py) -->", "<!-- end of bench tables -->"


def with_tables(text: str, results: str) -> str:
    """text with its bench block replaced by the results' tables: from the main table's header to the
    end (the many-hosts and scale sections included)."""
    lines = results.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| N |"))
    last = len(lines) - 1
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n" + "\n".join(lines[first:last + 1]) + f"\n{END}{tail}"


#: the README shows the scale goals of bench/results.md, each with its first measurement, between these
README = REPO / "README.md"
GOALS_BEGIN, GOALS_END = "<!-- bench goals: written by make bench (bench/bench.py) -->", "<!-- end of bench goals -->"
GOALS_HEADER = "| goal (fleet scale) | met | measured |"


def with_goals(text: str, results: str) -> str:
    """text with its goals block replaced by the results' scale goals, each measurement up to its first
    `;` or ` (` (the README is short; docs/internals.md has them whole)."""
    lines = results.splitlines()
    first = lines.index(GOALS_HEADER)
    rows = [line for line in lines[first + 2:] if line.startswith("| ")]
    short = []
    for row in rows:
        goal, met, measured = (cell.strip() for cell in row.strip("|").split(" | ", 2))
        short.append(f"| {goal} | {met} | {measured.split(';')[0].split(' (')[0]} |")
    head, _, rest = text.partition(GOALS_BEGIN)
    _, _, tail = rest.partition(GOALS_END)
    return f"{head}{GOALS_BEGIN}\n" + "\n".join([GOALS_HEADER, lines[first + 1], *short]) + f"\n{GOALS_END}{tail}"


def render_fleet(rows: list[dict[str, Any]]) -> list[str]:
    """The many-hosts table: observation against one host of the same transport."""
    if not rows:
        return []
    one = {r["transport"]: r for r in rows if r["hosts"] == 1}
    out = ["| hosts | transport | modules | wall s | suite CPU s | observation s | one host's observation s | ratio | "
           "floor s, H hosts at once | observation ÷ floor | commands/host | connections/host | peak MiB |",
           "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        base = one[r["transport"]]["observation"]
        out.append(f"| {r['hosts']} | {r['transport']} | {r['n']} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                   f"{r['observation']:.2f} | {base:.2f} | {r['observation'] / base:.2f} | {r['floor']:.2f} | "
                   f"{r['observation'] / r['floor']:.2f} | {r['commands']} | {r['connections']} | {r['peak']:.0f} |")
    return out


def fleet_goals(rows: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    goals = []
    for transport in ("paramiko://", "ssh://"):
        mine = {r["hosts"]: r for r in rows if r["transport"] == transport}
        if 1 in mine and max(mine) > 1:
            top, one = mine[max(mine)], mine[1]
            goals.append((f"{top['hosts']} hosts x {FLEET_SIZE} over {transport}: observation <= 1.5 x one host's",
                          top["observation"] <= 1.5 * one["observation"],
                          f"{top['observation']:.2f}s / {one['observation']:.2f}s = "
                          f"{top['observation'] / one['observation']:.2f}; the floor's own: {top['floor']:.2f}s / "
                          f"{one['floor']:.2f}s = {top['floor'] / one['floor']:.2f} (observation ÷ floor "
                          f"{one['observation'] / one['floor']:.2f} for one host, "
                          f"{top['observation'] / top['floor']:.2f} for {top['hosts']})"))
    return goals


def render_scale_sections(fleet_rows: list[dict[str, Any]], scale_rows: list[dict[str, Any]],
                          args: argparse.Namespace) -> str:
    out = ["", "### Many hosts (the lab)", "",
           f"Up to {len(FLEET_HOSTS)} lab hosts, each its own sshd behind its own delay proxy ({args.delay_ms} ms "
           f"each way), {FLEET_SIZE} modules a host (the hosts share the lab's dockerd and its containers); "
           f"medians of {args.fleet_repeat}. Every host, sshd and `docker` CLI runs on this one machine, so the "
           "server side of 50 hosts competes with the client for the same cores. Suite CPU is the suite process's "
           "user + system time with its reaped children (the ssh clients of ssh://). The floor is one OpenSSH "
           "connection and one `docker inspect` per host, all H hosts at once: on one machine it grows with H too.",
           "",
           *render_fleet(fleet_rows), "",
           "### Scale (docker stubbed)", "",
           f"Every host `local://`, a stub `docker` (bench/stubdocker.py) serving canned JSON; at most "
           f"{scale.HOST_SIZE} modules a host (every host's `docker ps` lists the whole fleet: one stub serves "
           f"them all). N = 200, 1000, 5000 in sync and all drifting, and N = 2000 in sync (goal 2). Medians "
           f"of {args.scale_repeat} runs up to N=1000 and of {args.scale_big_repeat} above (the big rows take the "
           "longest); bare pytest is measured in the same run, alternating with the suite. CPU is the "
           "process's user + system time, which a busy shared machine moves far less than wall time; each "
           "goal is marked on wall time, as the issue states it, with the CPU ratio beside it.", "",
           *scale.render_rows(scale_rows), ""]
    goals = fleet_goals(fleet_rows) + scale.goals(scale_rows)
    out += [GOALS_HEADER, "| --- | --- | --- |"]
    out += [f"| {goal} | {'yes' if ok else 'NO'} | {measured} |" for goal, ok, measured in goals]
    return "\n".join(out) + "\n"


def render_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The main table's header and one line per measured row."""
    out = [
        "| N | hosts | transport | wall s | start-up | collection | observation | compare + report | commands/host "
        "| connections/host | floor s | observation ÷ floor | run − floor | peak MiB |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(f"| {r['n']} | {r['hosts']} | {r['transport']} | {r['wall']:.2f} | {r['startup']:.2f} | "
                   f"{r['collection']:.2f} | {r['observation']:.2f} | {r['report']:.2f} | {r['commands']} | "
                   f"{r['connections']} | {r['floor']:.2f} | {r['observation'] / r['floor']:.2f} | "
                   f"{r['wall'] - r['floor']:.2f} | {r['peak']:.0f} |")
    return out


def render(rows: list[dict[str, Any]], args: argparse.Namespace, naive_wall: float, naive_commands: int,
           collect_200: float, single: dict[str, dict[str, Any]], refused_200: float) -> str:
    out = [
        "# driftcheck benchmark",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"lab over a TCP delay proxy adding {args.delay_ms} ms each way; medians of {args.repeat} runs "
        "(`make bench`, `bench/bench.py`).",
        "",
        *render_rows(rows),
    ]
    n200, n50, three, ssh200 = single["200"], single["50"], single["3x50"], single["200 ssh://"]
    goals = [
        ("remote commands per host <= 3, whatever N", all(r["commands"] <= 3 for r in rows),
         ", ".join(str(r["commands"]) for r in rows)),
        ("SSH connections per host = 1, whatever N", all(r["connections"] == 1 for r in rows),
         ", ".join(str(r["connections"]) for r in rows)),
        ("N=200: observation <= 1.5 x floor", n200["observation"] <= 1.5 * n200["floor"],
         f"{n200['observation']:.2f}s / {n200['floor']:.2f}s = {n200['observation'] / n200['floor']:.2f}"),
        ("N=200: whole run <= floor + 1.5 s", n200["wall"] <= n200["floor"] + 1.5,
         f"{n200['wall']:.2f}s vs {n200['floor'] + 1.5:.2f}s"),
        ("N=200: naive / this >= 20", naive_wall / n200["wall"] >= 20,
         f"{naive_wall:.1f}s / {n200['wall']:.2f}s = {naive_wall / n200['wall']:.0f} "
         f"(naive: {naive_commands} remote commands, one run)"),
        ("3 hosts x 50 take about the slowest host, not the sum",
         three["observation"] <= 1.5 * n50["observation"],
         f"observation {three['observation']:.2f}s for 3 hosts vs {n50['observation']:.2f}s for one "
         f"(sum would be {3 * n50['observation']:.2f}s)"),
        ("pytest --collect-only with 200 modules < 1 s", collect_200 < 1.0, f"{collect_200:.2f}s (whole process)"),
        ("N=200 over ssh://: the commands and connections per host of paramiko://",
         (ssh200["commands"], ssh200["connections"]) == (n200["commands"], n200["connections"]),
         f"{ssh200['commands']} commands, {ssh200['connections']} connection; wall {ssh200['wall']:.2f}s vs "
         f"{n200['wall']:.2f}s over paramiko:// ({ssh200['wall'] - n200['wall']:+.2f}s)"),
    ]
    out += ["", "| goal | met | measured |", "| --- | --- | --- |"]
    out += [f"| {goal} | {'yes' if ok else 'NO'} | {measured} |" for goal, ok, measured in goals]
    out += ["", f"N=200 on a host that refuses the connection: {refused_200:.2f}s for the whole run, every "
            "check reported as an error (HOST_UNREACHABLE).", ""]
    out += ["Columns: wall is the whole `pytest` process; start-up is process start to session start "
            "(imports, manifests, inventory); collection is parametrization of every check; observation "
            "is the first remote command's start to the last one's end (connect included); compare + "
            "report is the rest up to pytest's exit hooks (checks, plan, report.json, junit.xml). "
            "Commands and connections are counted on the host's side (the lab's docker wrapper log, "
            "sshd's log); transport is the hosts' `connection:` scheme (ssh:// is the system OpenSSH client). "
            "The floor is one OpenSSH connection running one `docker inspect` of every "
            "container, hosts in parallel. Peak is the suite process's maximum RSS.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
