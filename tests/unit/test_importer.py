"""importer: which services are undeclared, what their module.yaml says, and the names they get."""

from __future__ import annotations

from driftcheck.importer import Service, manifest_for, module_name, undeclared
from driftcheck.records import ContainerObservation
from tests.support.unit import make_module


def container(name, project="home-platform", service="app", **kw):
    labels = (("com.docker.compose.project", project), ("com.docker.compose.service", service))
    return ContainerObservation(name=name, id="a" * 64, status=kw.pop("status", "running"),
                                configured_image=kw.pop("image", "lab/app:1"), image_id="sha256:" + "b" * 64,
                                labels=labels, **kw)


def test_services_claimed_by_labels_or_by_name_are_declared_already():
    observed = {c.name: c for c in [
        container("home-platform-app-1"), container("home-platform-app-2"),
        container("home-platform-db-1", service="db"), container("custom-name", service="web"),
        container("home-platform-new-1", service="new")]}
    modules = [make_module(name="db", compose={"project": "home-platform", "service": "db"}),
               make_module(name="web", compose={"project": "home-platform", "service": "other",
                                                "container_name": "custom-name"}),
               make_module(name="elsewhere", host="other-host", compose={"project": "home-platform", "service": "new"})]
    found = undeclared(observed, modules, "h")
    assert [(s.service, len(s.containers)) for s in found] == [("app", 2), ("new", 1)]


def test_the_manifest_is_what_runs():
    first = container("home-platform-app-1", restart_policy="unless-stopped", health="healthy",
                      ports=("0.0.0.0:8080:80/tcp", ":::8080:80/tcp", "fe80::1:9000:9000/udp"),
                      networks=("home-platform_default",))
    data = manifest_for(Service("home-platform", "app", (first, container("home-platform-app-2"))), "app",
                        "rs2000", "2026-11-27")
    assert data is not None
    assert data["compose"] == {"project": "home-platform", "service": "app"}
    assert data["desired"] == {"state": "running", "replicas": 2, "restart_policy": "unless-stopped",
                               "ports": ["0.0.0.0:8080:80/tcp", "[fe80::1]:9000:9000/udp"],
                               "networks": ["home-platform_default"], "health": "healthy"}
    assert data["image"] == {"ref": "lab/app:1"}
    stopped = manifest_for(Service("p", "s", (container("renamed", status="exited",
                                                       image="lab/app@sha256:" + "c" * 64),)), "s", "h", "d")
    assert stopped is not None and stopped["compose"]["container_name"] == "renamed"
    assert stopped["desired"] == {"state": "stopped"} and stopped["image"]["digest_pinned_in_compose"] is True
    assert manifest_for(Service("p", "s", (container("x", image="sha256:" + "d" * 64),)), "s", "h", "d") is None


def test_names_are_valid_free_and_never_reserved():
    assert module_name(Service("home-platform", "Web_UI", ()), set()) == "web-ui"
    assert module_name(Service("home-platform", "web", ()), {"web"}) == "home-platform-web"
    assert module_name(Service("home-platform", "web", ()), {"web", "home-platform-web"}) == "home-platform-web-2"
    assert module_name(Service("p", "and", ()), set()) == "p-and"
