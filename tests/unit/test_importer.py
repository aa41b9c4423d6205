"""importer and adoption: which services are adopted, what their module.yaml says, their names, how they are written."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import yaml

from driftcheck import importer
from driftcheck.adoption import Name, Service, compose_services, manifest_for, module_names, undeclared
from driftcheck.errors import ManifestError, ObservationError
from driftcheck.importer import HostView, ImportOptions, adopt, run, write_module
from driftcheck.manifest import load_module_file
from driftcheck.records import ContainerObservation, ListedContainer
from tests.support.unit import make_module

DIGEST = "sha256:" + "c" * 64


def container(name: str, project: str = "home-platform", service: str = "app", files: str | None = None,
              **kw: object) -> ContainerObservation:
    labels = [("com.docker.compose.project", project), ("com.docker.compose.service", service)]
    if files is not None:
        labels.append(("com.docker.compose.project.config_files", files))
    kw.setdefault("networks", (f"{project}_default",))
    return ContainerObservation(name=name, id=f"{abs(hash(name)):064x}"[-64:], status=kw.pop("status", "running"),
                                configured_image=kw.pop("image", "lab/app:1"), image_id="sha256:" + "b" * 64,
                                labels=tuple(labels), **kw)  # type: ignore[arg-type]


def view(*containers: ContainerObservation, oneoff: tuple[str, ...] = ()) -> HostView:
    listing = tuple(ListedContainer(id=c.id, name=c.name, project=c.label("com.docker.compose.project") or "",
                                    service=c.label("com.docker.compose.service") or "", oneoff=c.name in oneoff)
                    for c in containers)
    return HostView({c.name: c for c in containers}, listing, ("docker ps --all", "docker inspect --type container"))


def service(*containers: ContainerObservation) -> Service:
    first = containers[0]
    return Service(first.label("com.docker.compose.project") or "", first.label("com.docker.compose.service") or "",
                   containers)


class Say(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self)


def do_import(tmp_path: Path, host_view: HostView, modules: list | None = None, **options: object) -> tuple[int, Say]:
    say = Say()
    status = adopt("rs2000", host_view, modules or [], tmp_path / "modules", ImportOptions(**options),  # type: ignore[arg-type]
                   lambda p: str(p.relative_to(tmp_path)), say)
    return status, say


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- which services ------------------------------------------------------------------------------------------


def test_services_claimed_by_labels_or_by_name_are_declared_already_and_one_offs_never_count():
    observed = view(container("home-platform-app-1"), container("home-platform-app-2"),
                    container("home-platform-app-run-0f3a", service="app"),
                    container("home-platform-db-1", service="db"), container("custom-name", service="web"),
                    container("home-platform-new-1", service="new"),
                    container("home-platform-migrate-run-1b2c", service="migrate"),
                    oneoff=("home-platform-app-run-0f3a", "home-platform-migrate-run-1b2c"))
    modules = [make_module(name="db", compose={"project": "home-platform", "service": "db"}),
               make_module(name="web", compose={"project": "home-platform", "service": "other",
                                                "container_name": "custom-name"}),
               make_module(name="elsewhere", host="other-host", compose={"project": "home-platform", "service": "new"})]
    services = compose_services(observed.containers, {c.name for c in observed.listing if c.oneoff})
    assert "migrate" not in {s.service for s in services}  # only one-offs: not a service to adopt
    found = undeclared(services, modules, "h")
    assert [(s.service, [c.name for c in s.containers]) for s in found] == [
        ("app", ["home-platform-app-1", "home-platform-app-2"]), ("new", ["home-platform-new-1"])]


# --- what a module declares ----------------------------------------------------------------------------------


def test_a_bare_container_still_declares_every_key_a_check_compares():
    data = manifest_for(service(container("home-platform-app-1", networks=())), "app", "rs2000", "2026-11-27")
    assert data is not None
    assert data["compose"] == {"project": "home-platform", "service": "app"}
    # 1 replica, restart "no" and no ports are declared too: a later --scale, restart: always or port is drift
    assert data["desired"] == {"state": "running", "replicas": 1, "restart_policy": "no", "ports": [],
                               "networks": [], "env_keys": [], "env_keys_complete": True, "mounts": []}
    assert data["image"] == {"ref": "lab/app:1"}


def test_the_manifest_is_what_runs():
    first = container(
        "home-platform-app-1", restart_policy="unless-stopped", health="healthy",
        ports=("0.0.0.0:8080:80/tcp", ":::8080:80/tcp", "fe80::1:9000:9000/udp", "0.0.0.0::81/tcp", "::::81/tcp"),
        networks=("home-platform_default", "proxy"), env_names=("TZ", "discovery.type"),
        env_digests=(("TZ", DIGEST), ("discovery.type", DIGEST)),
        mounts=(("volume", "home-platform_data", "/data", False), ("volume", "f" * 64, "/app/node_modules", False),
                ("bind", "/srv/app/conf", "/etc/app", True), ("bind", "/srv/app/secrets/db", "/run/secrets/db", True)))
    data = manifest_for(service(first, container("home-platform-app-2")), "app", "rs2000", "2026-11-27")
    assert data is not None
    assert data["desired"] == {
        "state": "running", "replicas": 2, "restart_policy": "unless-stopped", "health": "healthy",
        "ports": ["0.0.0.0:8080:80/tcp", "0.0.0.0::81/tcp", "[fe80::1]:9000:9000/udp"],
        "networks": ["home-platform_default", "proxy"], "env_keys": ["TZ", "discovery.type"], "env_keys_complete": True,
        "mounts": ["/app/node_modules", "/srv/app/conf:/etc/app:ro", "home-platform_data:/data", "secret:db"]}
    assert "env_digests" not in data["desired"] and DIGEST not in str(data)  # only when asked for
    asked = manifest_for(service(first), "app", "rs2000", "2026-11-27", env_digests=True)
    assert asked is not None and asked["desired"]["env_digests"] == {"TZ": DIGEST, "discovery.type": DIGEST}


@pytest.mark.parametrize(("status", "health", "state", "declared_health"), [
    ("running", "healthy", "running", True), ("running", "starting", "running", False),
    ("restarting", None, "running", False), ("paused", "healthy", "running", True),
    ("exited", "healthy", "stopped", False), ("created", None, "stopped", False)])
def test_state_and_health(status, health, state, declared_health):
    data = manifest_for(service(container("home-platform-app-1", status=status, health=health)), "app", "h", "d")
    assert data is not None and data["desired"]["state"] == state
    assert ("health" in data["desired"]) is declared_health


def test_a_digest_pinned_by_compose_is_declared_and_a_bare_image_id_is_not_a_reference():
    renamed = container("renamed", status="exited", image=f"lab/app:1@{DIGEST}")
    data = manifest_for(service(renamed), "s", "h", "d", compose_file="compose.yaml")
    assert data is not None
    assert data["compose"] == {"project": "home-platform", "service": "app", "container_name": "renamed",
                               "file": "compose.yaml"}
    assert data["image"] == {"ref": f"lab/app:1@{DIGEST}", "digest": DIGEST, "digest_pinned_in_compose": True}
    assert manifest_for(service(container("x", image="sha256:" + "d" * 64)), "s", "h", "d") is None


# --- names ---------------------------------------------------------------------------------------------------


def test_the_bare_service_name_when_unambiguous_else_project_service_whatever_the_order():
    on_host = [("gitea", "db"), ("gitea", "server"), ("nextcloud", "db"), ("nextcloud", "app"), ("mon", "web_ui"),
               ("mon", "Web-UI"), ("p", "and"), ("elk", "kibana")]
    wanted = on_host[:-1]  # elk/kibana is declared already
    taken = {"app", "nextcloud-app"}  # modules or folders
    expected = {
        ("gitea", "db"): "gitea-db", ("nextcloud", "db"): "nextcloud-db", ("gitea", "server"): "server",
        ("nextcloud", "app"): "nextcloud-app-2", ("mon", "Web-UI"): "mon-web-ui", ("mon", "web_ui"): "mon-web-ui-2",
        ("p", "and"): "p-and"}
    shuffler = random.Random(13)
    for _ in range(50):
        order, host_order = wanted[:], on_host[:]
        shuffler.shuffle(order)
        shuffler.shuffle(host_order)
        assert {k: n.name for k, n in module_names(order, host_order, taken).items()} == expected
    names = module_names(wanted, on_host, taken)
    assert names[("gitea", "server")] == Name("server")
    assert names[("gitea", "db")].reason == "db would be ambiguous on this host (also nextcloud/db)"
    assert names[("mon", "web_ui")].reason == ("web-ui would be ambiguous on this host (also mon/Web-UI), and "
                                               "mon-web-ui is taken too")
    assert names[("nextcloud", "app")].reason == ("a module or folder named app exists already, and "
                                                  "nextcloud-app is taken too")
    assert names[("p", "and")].reason == "'and' is not a valid module name"
    # a service declared already on the host still makes its name ambiguous for another project's
    assert module_names([("other", "kibana")], [("elk", "kibana"), ("other", "kibana")], set())[
        ("other", "kibana")].name == "other-kibana"


# --- writing ---------------------------------------------------------------------------------------------------


def test_import_writes_modules_a_run_accepts_and_says_which_got_the_long_form(tmp_path):
    server = container("gitea-server-1", "gitea", "server", ports=("0.0.0.0::3000/tcp",))
    status, said = do_import(tmp_path, view(container("gitea-db-1", "gitea", "db"),
                                            container("nextcloud-db-1", "nextcloud", "db"), server))
    assert status == 0, said.text
    assert files_under(tmp_path / "modules") == ["gitea-db", "gitea-db/module.yaml", "nextcloud-db",
                                                 "nextcloud-db/module.yaml", "server", "server/module.yaml"]
    for folder in ("gitea-db", "nextcloud-db", "server"):
        path = tmp_path / "modules" / folder / "module.yaml"
        assert load_module_file(path, str(path)).name == folder
        assert oct(path.parent.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    assert yaml.safe_load((tmp_path / "modules/server/module.yaml").read_text())["desired"]["ports"] == [
        "0.0.0.0::3000/tcp"]
    assert "         named gitea-db, not db: db would be ambiguous on this host (also nextcloud/db)" in said
    assert "3 module(s) written, 0 compose service(s) already declared, on host rs2000" in said
    # no config_files label: nothing to copy, and it says so
    assert "compose.file not set: its container has no com.docker.compose.project.config_files label" in said.text


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_module_that_does_not_validate_leaves_nothing_and_exit_2_names_the_files_written(tmp_path):
    status, said = do_import(tmp_path, view(container("p-good-1", "p", "good"),
                                            container("p-odd-1", "p", "odd", networks=("not a network!",))))
    assert status == 2
    assert files_under(tmp_path / "modules") == ["good", "good/module.yaml"]  # no odd/, no hidden temp folder
    error = "ERROR    p/odd: its module does not validate, nothing written for it:"
    assert any(line.startswith(error) for line in said)
    assert said[-1] == "exit 2 after writing 1 file(s), each complete and kept: modules/good/module.yaml"


def test_a_failed_import_leaves_no_empty_modules_folder(tmp_path):
    status, said = do_import(tmp_path, view(container("p-odd-1", "p", "odd", networks=("not a network!",))))
    assert status == 2 and not (tmp_path / "modules").exists()
    assert not any(line.startswith("exit 2 after writing") for line in said)


def test_write_module_never_overwrites_and_cleans_up_after_itself(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "keep").write_text("mine")
    with pytest.raises(FileExistsError):
        write_module(tmp_path, "app", {"module.yaml": b"anything"}, str)
    text = b"schema_version: 2\nname: app\nhost: h\ncompose: {project: p, service: app}\nimage: {ref: 'lab/app:1'}\n"
    with pytest.raises(ManifestError):
        write_module(tmp_path, "new", {"module.yaml": text}, str)  # name: app in folder new
    assert files_under(tmp_path) == ["app", "app/keep"]
    assert write_module(tmp_path, "app-2", {"module.yaml": text.replace(b"name: app", b"name: app-2")}, str).name == \
        "app-2"


def test_a_taken_name_is_never_overwritten_and_a_second_import_adds_nothing(tmp_path):
    modules = tmp_path / "modules"
    (modules / "db").mkdir(parents=True)
    (modules / "db" / "notes.txt").write_text("not a module yet")
    host = view(container("gitea-db-1", "gitea", "db"))
    status, said = do_import(tmp_path, host)
    assert status == 0 and "         named gitea-db, not db: a module or folder named db exists already" in said
    assert (modules / "db" / "notes.txt").read_text() == "not a module yet"
    claimed = [load_module_file(modules / "gitea-db" / "module.yaml", "x")]
    status, said = do_import(tmp_path, host, claimed)
    assert status == 0 and "0 module(s) written, 1 compose service(s) already declared, on host rs2000" in said


def test_one_offs_never_count_as_replicas_nor_become_modules(tmp_path):
    status, said = do_import(tmp_path, view(container("p-app-1", "p", "app"), container("p-app-run-1", "p", "app"),
                                            container("p-migrate-run-2", "p", "migrate"),
                                            oneoff=("p-app-run-1", "p-migrate-run-2")))
    assert status == 0
    assert files_under(tmp_path / "modules") == ["app", "app/module.yaml"]
    assert yaml.safe_load((tmp_path / "modules/app/module.yaml").read_text())["desired"]["replicas"] == 1
    assert "skipped  p/migrate: only one-off containers (docker compose run), not a module" in said


def test_project_limits_the_import_and_an_unknown_project_writes_nothing(tmp_path):
    host = view(container("gitea-db-1", "gitea", "db"), container("nextcloud-db-1", "nextcloud", "db"),
                container("mon-grafana-1", "mon", "grafana"))
    status, said = do_import(tmp_path, host, projects=frozenset({"nope", "gitea"}))
    assert status == 2 and not (tmp_path / "modules").exists()
    assert said == ["ERROR: PROJECT=nope: no such compose project on host rs2000 (projects there: gitea, mon, "
                    "nextcloud); nothing written"]
    status, said = do_import(tmp_path, host, projects=frozenset({"gitea", "mon"}))
    assert status == 0
    # nextcloud/db is not imported, yet it makes db ambiguous on this host: the name never depends on the filter
    assert files_under(tmp_path / "modules") == ["gitea-db", "gitea-db/module.yaml", "grafana", "grafana/module.yaml"]
    assert "2 module(s) written, 0 compose service(s) already declared, on host rs2000 (projects gitea, mon)" in said


# --- compose.file ----------------------------------------------------------------------------------------------


def test_compose_files_are_copied_unless_asked_not_to(tmp_path):
    source = tmp_path / "srv" / "compose.yaml"
    source.parent.mkdir()
    source.write_text("x-lab: &lab\n  init: true\nservices:\n  app:\n    <<: *lab\n    image: lab/app:1\n"
                      "    ports: !reset []\n")
    host = view(container("p-app-1", "p", "app", files=str(source)))
    status, said = do_import(tmp_path, host, copy_compose_files=False)
    assert status == 0 and files_under(tmp_path / "modules") == ["app", "app/module.yaml"]
    assert any(line.startswith(f"compose.file not set (COMPOSE_FILES=no): Compose read {source} on the host.")
               for line in said), said.text
    status, said = do_import(tmp_path / "again", host)
    assert status == 0, said.text
    folder = tmp_path / "again" / "modules" / "app"
    assert (folder / "compose.yaml").read_bytes() == source.read_bytes()
    assert load_module_file(folder / "module.yaml", "x").compose_file == str(folder / "compose.yaml")
    assert f"         compose.file: compose.yaml, a copy of {source}" in said
    assert said[0].startswith("wrote    modules/app/module.yaml, modules/app/compose.yaml  (p/app, lab/app:1,")


@pytest.mark.parametrize(("files", "why"), [
    ("/srv/a/compose.yaml,/srv/a/compose.override.yaml",
     "project p was deployed from 2 files (/srv/a/compose.yaml, /srv/a/compose.override.yaml); none copied"),
    ("/nowhere/compose.yaml", "/nowhere/compose.yaml cannot be read on this machine (No such file or directory)"),
    ("{other}", "does not define service app"),
    ("{garbage}", "cannot be read on this machine"),
    ("{folder}", "cannot be read on this machine (not an absolute path to a regular file of at most 1 MiB)"),
    (None, "its container has no com.docker.compose.project.config_files label")])
def test_a_compose_file_that_cannot_be_copied_is_named_and_the_module_is_written_without_it(tmp_path, files, why):
    (tmp_path / "other.yaml").write_text("services:\n  web: {image: x}\n")
    (tmp_path / "garbage.yaml").write_text("services: [\n")
    if files is not None:
        files = files.format(other=tmp_path / "other.yaml", garbage=tmp_path / "garbage.yaml", folder=tmp_path)
    status, said = do_import(tmp_path, view(container("p-app-1", "p", "app", files=files)), copy_compose_files=True)
    assert status == 0 and files_under(tmp_path / "modules") == ["app", "app/module.yaml"]
    assert "file" not in yaml.safe_load((tmp_path / "modules/app/module.yaml").read_text())["compose"]
    assert any(line.startswith("         compose.file not set: ") and why in line for line in said), said.text


# --- the command ---------------------------------------------------------------------------------------------


def test_run_reads_the_inventory_observes_once_and_reports_the_commands(tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  rs2000:\n    connection: local://\n")
    seen = []

    def observe(config):
        seen.append(config.name)
        return view(container("p-app-1", "p", "app"))

    said = Say()
    assert run("rs2000", inventory, tmp_path / "modules", str, said, observe=observe) == 0
    assert seen == ["rs2000"] and said[-1] == "commands sent: 2 (docker ps --all; docker inspect --type container)"

    def unreachable(config):
        raise ObservationError("rs2000", "HOST_UNREACHABLE", "connection refused")

    said = Say()
    assert run("rs2000", inventory, tmp_path / "other", str, said, observe=unreachable) == 2
    assert said == ["ERROR HOST_UNREACHABLE: connection refused"] and not (tmp_path / "other").exists()


def test_the_command_line(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(importer, "run", lambda host, inventory, modules, show, say, options: calls.append(
        (host, options)) or 0)
    assert importer.main(["--host=rs2000", "--project=gitea,mon", "--project", "elk", "--env-digests",
                          "--compose-files=copy"]) == 0
    assert calls[-1] == ("rs2000", ImportOptions(frozenset({"gitea", "mon", "elk"}), True, True))
    assert importer.main(["--host=rs2000"]) == 0
    assert calls[-1] == ("rs2000", ImportOptions(None, False, True))
    assert importer.main(["--host=rs2000", "--project=Not Valid"]) == 2
    assert "PROJECT=Not Valid: expected compose project names" in capsys.readouterr().err
    assert importer.main([]) == 2 and len(calls) == 2


def test_a_copy_that_would_not_give_the_containers_config_hash_is_not_set(tmp_path):
    """A compose file needing the host's ${VAR}s would be a CONFIG_HASH_MISMATCH right after import."""
    import dataclasses

    from driftcheck.composehash import compose_version, local_compose

    source = tmp_path / "srv" / "compose.yaml"
    source.parent.mkdir()
    source.write_text("services:\n  app:\n    image: lab/app:${TAG:-1}\n")
    real = local_compose(source, "p", "app", str(source.parent)).hash
    base = container("p-app-1", "p", "app", files=str(source))
    labels = (*base.labels, ("com.docker.compose.project.working_dir", str(source.parent)),
              ("com.docker.compose.version", compose_version()))
    matching = dataclasses.replace(base, labels=(*labels, ("com.docker.compose.config-hash", real)))
    status, said = do_import(tmp_path / "a", view(matching))
    assert status == 0 and (tmp_path / "a/modules/app/compose.yaml").exists(), said.text
    other = dataclasses.replace(base, labels=(*labels, ("com.docker.compose.config-hash", "0" * 64)))
    status, said = do_import(tmp_path / "b", view(other))
    assert status == 0 and files_under(tmp_path / "b/modules") == ["app", "app/module.yaml"]
    assert any("does not give the container's config hash here" in line for line in said), said.text


def test_a_container_that_looped_is_said_to_be_drift_at_once(tmp_path):
    status, said = do_import(tmp_path, view(container("p-app-1", "p", "app", restart_count=9)))
    assert status == 0 and any("RESTART_LOOP at once: it restarted 9 times" in line for line in said), said.text
