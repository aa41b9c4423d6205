"""Issue 13: the corpus of real Compose stacks (fixtures/stacks) against the lab, with imported modules.

The modules are exactly what `make import` wrote for the corpus' projects (no hand edits). Drift is
caused the way an operator causes it: an edited compose file and `docker-compose up -d`, `--scale`,
`docker update`, `stop`, `pause`, `rm`, `network connect`, `run`, a rebuilt tag. Drifts go in two
batches, each on other modules, so two runs of the suite check them all; each batch restores the
baseline (labctl.stacks_up) before its result is read.

A drift made by editing the compose file also changes the config Compose hashes: with the compose
file copied into each module (COMPOSE_FILES_FLAG), CONFIG_HASH_MISMATCH is true drift beside the
drift's own code (EDITED). Runtime drifts (docker CLI) leave the config hash alone: exactly their code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import labctl
import pytest
import yaml

from driftcheck.compare import RESTART_LOOP_THRESHOLD
from tests.support.lab import (
    INVENTORY,
    SuiteRun,
    container_id,
    edit_stack,
    logged_commands,
    make,
    modules_by_service,
    restart_count,
    run_suite,
)

# ---------------------------------------------------------------------------------------------------
#: The make-import variable that copies each service's compose file into its module folder
#: (compose.file). The import engineer names it: change it here, and only here.
COMPOSE_FILES_FLAG = "COMPOSE_FILES=copy"
# ---------------------------------------------------------------------------------------------------

HOST = "rs2000"
PROJECTS = labctl.STACK_PROJECTS
#: every service the corpus starts (jobs' `migrate` is under a profile: never started, never a module)
SERVICES = {
    ("shop", "web"), ("shop", "db"), ("shop", "cache"),
    ("edge", "traefik"), ("edge", "whoami"),
    ("monitoring", "prometheus"), ("monitoring", "grafana"),
    ("search", "elasticsearch"), ("search", "exporter"),
    ("jobs", "api"), ("jobs", "worker"), ("jobs", "scheduler"),
}
#: services with a healthcheck (import declares health: healthy for them)
HEALTHCHECKED = {("shop", "web"), ("shop", "db"), ("shop", "cache"), ("monitoring", "grafana"),
                 ("search", "elasticsearch")}
#: what an edited compose file adds to a drift's own code (see the module docstring)
EDITED = {"CONFIG_HASH_MISMATCH"} if COMPOSE_FILES_FLAG.endswith("=copy") else set()
#: the warnings an in-sync corpus may carry (no declared digest to prove on unpushed images)
ALLOWED_WARNINGS = {"IMAGE_DIGEST_NOT_VERIFIED"}

Target = tuple[str, str] | str  # (project, service), or a pseudo-module such as orphans@rs2000/edge


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(lab: Path) -> Iterator[None]:
    """The corpus deployed with real docker-compose (lab/run/stacks/<project>), removed afterwards."""
    labctl.stacks_up()
    yield
    labctl.stacks_down()


@pytest.fixture(scope="module")
def imported(corpus: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`make import` of the corpus' projects, as a user types it: plain, and with ENV_DIGESTS=1."""
    base = tmp_path_factory.mktemp("stacks-import")
    folders = {}
    for kind, extra in (("plain", ()), ("digests", ("ENV_DIGESTS=1",))):
        modules = base / kind
        modules.mkdir()
        done = make("import", f"HOST={HOST}", f"INVENTORY={INVENTORY}", f"MODULES_DIR={modules}",
                    f"PROJECT={','.join(PROJECTS)}", COMPOSE_FILES_FLAG, *extra)
        assert done.returncode == 0, f"make import ({kind}) exit {done.returncode}:\n{done.stdout}{done.stderr}"
        folders[kind] = modules
    return folders


def suite(tmp_path: Path, modules: Path, *args: str) -> SuiteRun:
    """A run of the suite on modules, its host-side commands recorded; never more than three."""
    labctl.COMMAND_LOG.write_text("")
    run = run_suite(tmp_path, *args, modules=modules)
    run.commands = logged_commands()
    assert run.plan is not None, run.output
    assert 1 <= len(run.commands) <= 3, run.commands
    return run


def found(run: SuiteRun) -> dict[str, set[str]]:
    return {module: set(codes) for module, codes in run.codes().items()}


def warning_codes(run: SuiteRun) -> dict[str, set[str]]:
    assert run.plan is not None
    return {m["module"]: {w["code"] for w in m["warnings"]} for m in run.plan["modules"]}


def module_of(names: dict[tuple[str, str], str], target: Target) -> str:
    return target if isinstance(target, str) else names[target]


# -- import and in sync ----------------------------------------------------------------------------


def test_import_adopts_every_corpus_service_and_guards_it(imported):
    """Every started service of the corpus' projects, nothing else, each with every checkable key."""
    for kind, modules in imported.items():
        names = modules_by_service(modules)
        assert set(names) == SERVICES, kind  # PROJECT= filter: no home-platform module; no profile service
        for (project, service), name in names.items():
            folder = modules / name
            data = yaml.safe_load((folder / "module.yaml").read_text())
            desired = data["desired"]
            where = f"{kind}/{name}"
            for key in ("replicas", "restart_policy", "ports", "networks", "mounts", "env_keys"):
                assert key in desired, f"{where}: import did not write desired.{key}"
            assert ("env_digests" in desired) == (kind == "digests"), where
            assert (desired.get("health") == "healthy") == ((project, service) in HEALTHCHECKED), where
            assert data["compose"].get("file"), f"{where}: compose.file not written"
            assert (folder / data["compose"]["file"]).is_file(), where
        shapes = {key: yaml.safe_load((modules / names[key] / "module.yaml").read_text())
                  for key in (("jobs", "worker"), ("edge", "traefik"), ("edge", "whoami"), ("shop", "web"),
                              ("search", "elasticsearch"), ("search", "exporter"), ("jobs", "api"),
                              ("shop", "cache"))}
        assert shapes[("jobs", "worker")]["desired"]["replicas"] == 2
        assert shapes[("edge", "whoami")]["desired"]["ports"] == []
        assert shapes[("edge", "whoami")]["desired"]["restart_policy"] == "no"
        assert shapes[("shop", "cache")]["desired"]["restart_policy"] == "unless-stopped"
        traefik_ports = shapes[("edge", "traefik")]["desired"]["ports"]
        assert "127.0.0.1:18380:80/tcp" in traefik_ports
        assert [p for p in traefik_ports if p.endswith("8080/tcp")], traefik_ports  # the ephemeral one
        web_mounts = shapes[("shop", "web")]["desired"]["mounts"]
        assert "/app/node_modules" in web_mounts and "secret:db_password" in web_mounts, web_mounts
        assert "shop_uploads:/app/uploads" in web_mounts, web_mounts
        assert "discovery.type" in shapes[("search", "elasticsearch")]["desired"]["env_keys"]
        assert shapes[("search", "exporter")]["desired"]["networks"] == []
        api = shapes[("jobs", "api")]["image"]
        assert "@sha256:" in api["ref"] and api.get("digest_pinned_in_compose") is True, api


@pytest.fixture(scope="module")
def in_sync_runs(imported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    return {kind: suite(tmp_path_factory.mktemp(f"in-sync-{kind}"), modules) for kind, modules in imported.items()}


def test_imported_corpus_is_in_sync(imported, in_sync_runs):
    for kind, run in in_sync_runs.items():
        assert run.rc == 0, f"{kind}:\n{run.output}"
        assert run.statuses() == dict.fromkeys(modules_by_service(imported[kind]).values(), "in_sync"), kind


def test_config_hash_is_compared_on_every_service(in_sync_runs):
    """compose.file in sync everywhere: relative binds, env_file and network_mode service: included,
    compared (never left as CONFIG_HASH_NOT_COMPARABLE) on containers made by this Compose."""
    for kind, run in in_sync_runs.items():
        extra = {m: codes - ALLOWED_WARNINGS for m, codes in warning_codes(run).items() if codes - ALLOWED_WARNINGS}
        assert extra == {}, kind


def test_in_sync_again_after_down_and_up(imported, tmp_path):
    """A plain redeploy: new containers, new anonymous volumes, same modules, still in sync."""
    def anonymous_volume() -> str:
        mounts = json.loads(labctl.docker("inspect", "--type", "container", "--format", "{{json .Mounts}}",
                                          "shop-web-1").stdout)
        return next(m["Name"] for m in mounts if m["Destination"] == "/app/node_modules")

    before = anonymous_volume(), container_id("search-elasticsearch-1")
    for project in PROJECTS:
        labctl.stack_compose(project, "down", "--timeout", "1")
    for project in PROJECTS:
        labctl.stack_compose(project, "up", "--detach", "--wait", "--wait-timeout", "60")
    after = anonymous_volume(), container_id("search-elasticsearch-1")
    assert before[0] != after[0] and before[1] != after[1]
    labctl.docker("volume", "rm", before[0])  # `down` without --volumes leaves it behind, as on a real host
    run = suite(tmp_path, imported["digests"])
    assert run.rc == 0, run.output
    assert set(run.statuses().values()) == {"in_sync"}


def test_a_one_off_run_is_a_warning_not_drift(imported, tmp_path):
    """`docker-compose run -d worker`: not a replica (worker declares 2), not an orphan, a warning."""
    try:
        labctl.stack_compose("jobs", "run", "--detach", "worker")
        run = suite(tmp_path, imported["digests"])
        assert run.rc == 0, run.output
        assert set(run.statuses().values()) == {"in_sync"}
        worker = modules_by_service(imported["digests"])[("jobs", "worker")]
        assert "ONEOFF_RUNNING" in warning_codes(run)[worker], run.plan
    finally:
        oneoff = labctl.docker("ps", "--all", "--quiet", "--filter", "label=com.docker.compose.oneoff=True",
                               "--filter", "label=com.docker.compose.project=jobs").stdout.split()
        if oneoff:
            labctl.docker("rm", "--force", *oneoff)


# -- drift, batch A: image, ports, env, scale up, restart policy, stop, pause, rm, orphan -----------

BATCH_A: dict[str, tuple[Target, set[str]]] = {
    "tag-bump": (("shop", "web"), {"IMAGE_TAG_MISMATCH"} | EDITED),
    "digest-repin": (("jobs", "api"), {"IMAGE_DIGEST_MISMATCH"} | EDITED),
    "extra-port": (("edge", "whoami"), {"PORTS_MISMATCH"} | EDITED),
    "env-value-changed": (("monitoring", "grafana"), {"ENV_VALUE_MISMATCH"} | EDITED),
    # An added variable is no missing one (ENV_KEY_MISSING) and has no digest to differ: imported
    # modules declare their env_keys complete, so a name they do not list is drift of its own.
    "env-key-added": (("shop", "db"), {"ENV_KEY_UNEXPECTED"} | EDITED),
    "scale-up": (("jobs", "worker"), {"REPLICAS_MISMATCH"}),
    "restart-policy-to-no": (("shop", "cache"), {"RESTART_POLICY_MISMATCH"}),
    "stop": (("edge", "traefik"), {"NOT_RUNNING"}),
    "pause": (("monitoring", "prometheus"), {"NOT_RUNNING"}),
    "rm": (("search", "exporter"), {"CONTAINER_MISSING"}),
    "labelled-orphan": (f"orphans@{HOST}/edge", {"ORPHAN_CONTAINER"}),
}


def apply_batch_a() -> None:
    values = labctl.stack_values()
    pinned, repinned = values["%API_DIGEST%"], values["%API_DIGEST_2%"]
    # edits of the deployed compose files, then `up -d` (first: a later `up` would undo runtime drift)
    edit_stack("shop", "image: lab/app:1", "image: lab/app:2")
    edit_stack("shop", "      PGDATA:", "      PGTZ: UTC\n      PGDATA:")
    labctl.stack_compose("shop", "up", "--detach", "--wait", "--wait-timeout", "60")
    edit_stack("jobs", f"/corpus/api:1@{pinned}", f"/corpus/api:1@{repinned}")
    labctl.stack_compose("jobs", "up", "--detach", "--wait", "--wait-timeout", "60", "--scale", "worker=3")
    edit_stack("edge", '      traefik.http.services.whoami.loadbalancer.server.port: "80"\n',
               '      traefik.http.services.whoami.loadbalancer.server.port: "80"\n'
               '    ports:\n      - "127.0.0.1:18381:80"\n')
    labctl.stack_compose("edge", "up", "--detach", "--wait", "--wait-timeout", "60")
    edit_stack("monitoring", "GF_SERVER_ROOT_URL: http://grafana.localhost/",
               "GF_SERVER_ROOT_URL: https://grafana.example.org/")
    labctl.stack_compose("monitoring", "up", "--detach", "--wait", "--wait-timeout", "60")
    # runtime drift
    labctl.docker("update", "--restart", "no", "shop-cache-1")
    labctl.docker("stop", "--time", "1", "edge-traefik-1")
    labctl.docker("pause", "monitoring-prometheus-1")
    labctl.docker("rm", "--force", "search-exporter-1")
    labctl.docker("run", "--detach", "--init", "--name", "edge-old-api-1",
                  "--label", "com.docker.compose.project=edge", "--label", "com.docker.compose.service=old-api",
                  "lab/app:1")


# -- drift, batch B: volume rename, scale down, restart policy, network, stale, unhealthy, loop ------

BATCH_B: dict[str, tuple[Target, set[str]]] = {
    "volume-renamed": (("shop", "db"), {"MOUNTS_MISMATCH"} | EDITED),
    "scale-down": (("jobs", "worker"), {"REPLICAS_MISMATCH"}),
    "restart-policy-from-no": (("edge", "whoami"), {"RESTART_POLICY_MISMATCH"}),
    "network-connect": (("edge", "traefik"), {"NETWORKS_MISMATCH"}),
    "rebuilt-same-tag": (("monitoring", "grafana"), {"IMAGE_STALE"}),
    "failing-healthcheck": (("shop", "web"), {"UNHEALTHY"}),
    # State.Status is "restarting" between its short runs (also NOT_RUNNING), "running" for an instant.
    "restart-loop": (("jobs", "scheduler"), {"RESTART_LOOP"}),
}


def apply_batch_b() -> None:
    edit_stack("shop", "      - db-data:/var/lib/postgresql/data", "      - db-data-v2:/var/lib/postgresql/data")
    edit_stack("shop", "  db-data:\n", "  db-data-v2:\n")
    labctl.stack_compose("shop", "up", "--detach", "--wait", "--wait-timeout", "60")
    labctl.stack_compose("jobs", "up", "--detach", "--wait", "--wait-timeout", "60", "--scale", "worker=1")
    labctl.docker("update", "--restart", "always", "edge-whoami-1")
    labctl.docker("network", "connect", "shop_default", "edge-traefik-1")
    labctl.retag("grafana/grafana:11.1.0", "lab/app:2")
    labctl.docker("exec", "shop-web-1", "/bin/sh", "-c", "> /unhealthy")
    labctl.docker("exec", "jobs-scheduler-1", "/bin/sh", "-c", "> /crash")
    labctl.wait_for_health("shop-web-1", "unhealthy")
    labctl.wait_for(lambda: restart_count("jobs-scheduler-1") > RESTART_LOOP_THRESHOLD,
                    "jobs-scheduler-1 restarting in a loop", 60)


def drift_run(apply: Callable[[], None], imported: dict[str, Path], tmp_path: Path) -> SuiteRun:
    try:
        apply()
        return suite(tmp_path, imported["digests"])
    finally:
        labctl.stacks_up()  # the baseline again, whatever happened


@pytest.fixture(scope="module")
def batch_a(imported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return drift_run(apply_batch_a, imported, tmp_path_factory.mktemp("batch-a"))


@pytest.fixture(scope="module")
def batch_b(imported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return drift_run(apply_batch_b, imported, tmp_path_factory.mktemp("batch-b"))


def expected(imported: dict[str, Path], batch: dict[str, tuple[Target, set[str]]]) -> dict[str, set[str]]:
    names = modules_by_service(imported["digests"])
    want: dict[str, set[str]] = {name: set() for name in names.values()}
    for target, codes in batch.values():
        want[module_of(names, target)] = set(codes)
    return want


def loop_tolerant(got: dict[str, set[str]], module: str) -> dict[str, set[str]]:
    """A module caught restarting also shows NOT_RUNNING (its state): accept both instants."""
    if got.get(module) == {"NOT_RUNNING", "RESTART_LOOP"}:
        got[module] = {"RESTART_LOOP"}
    return got


@pytest.mark.parametrize("drift", list(BATCH_A))
def test_batch_a_drift_gives_exactly_its_code_on_its_module(drift, batch_a, imported):
    target, codes = BATCH_A[drift]
    module = module_of(modules_by_service(imported["digests"]), target)
    assert found(batch_a).get(module) == codes, batch_a.plan


def test_batch_a_nothing_else_drifts_exit_1_and_three_commands(batch_a, imported):
    assert batch_a.rc == 1, batch_a.output
    assert found(batch_a) == expected(imported, BATCH_A)


@pytest.mark.parametrize("drift", list(BATCH_B))
def test_batch_b_drift_gives_exactly_its_code_on_its_module(drift, batch_b, imported):
    target, codes = BATCH_B[drift]
    module = module_of(modules_by_service(imported["digests"]), target)
    assert loop_tolerant(found(batch_b), module).get(module) == codes, batch_b.plan


def test_batch_b_nothing_else_drifts_exit_1_and_three_commands(batch_b, imported):
    assert batch_b.rc == 1, batch_b.output
    scheduler = modules_by_service(imported["digests"])[("jobs", "scheduler")]
    assert loop_tolerant(found(batch_b), scheduler) == expected(imported, BATCH_B)


def test_mounts_mismatch_names_only_what_is_missing_and_extra(batch_b, imported):
    """The renamed volume: the old one missing, the new one extra; the unchanged secret not listed."""
    db = modules_by_service(imported["digests"])[("shop", "db")]
    assert batch_b.plan is not None
    changes = [c for m in batch_b.plan["modules"] if m["module"] == db for c in m["changes"]
               if c["code"] == "MOUNTS_MISMATCH"]
    assert len(changes) == 1, changes
    text = json.dumps(changes[0])
    assert "shop_db-data:/var/lib/postgresql/data" in text and "shop_db-data-v2:/var/lib/postgresql/data" in text
    assert "secret:db_password" not in text and "db_password.txt" not in text, text
