"""observe: parsing and redaction at the observation boundary, batching on a fake host."""

from __future__ import annotations

import json

import pytest

from driftcheck import allowlist
from driftcheck.errors import ObservationError
from driftcheck.observe import HostObserver, _array_items, parse_inspect, parse_ps
from driftcheck.records import Output
from tests.support.unit import calls, canned

SECRET = "captured-secret-value-9d2e"


def test_redaction_drops_env_cmd_and_other_labels(captured_containers):
    assert SECRET.encode() in captured_containers
    observed = parse_inspect("lab", captured_containers)
    assert len(observed) == 21
    text = repr(observed)
    assert SECRET not in text and "sleep" not in text and "working_dir" not in text and "oneoff" not in text
    # Env value digests and mount sources are kept for the checks but never shown.
    assert not [d for c in observed.values() for _, d in c.env_digests if d in text]
    assert "/etc/hostname" not in text and "/work" not in text
    assert "APP_TOKEN" in text  # names are fine
    assert set(dict(observed["drift-lab-relabelled-1"].labels)) == {
        "com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.config-hash",
        "com.docker.compose.version", "com.docker.compose.project.working_dir",
        "com.docker.compose.project.config_files"}
    assert observed["drift-lab-relabelled-1"].label("com.docker.compose.service") == "impostor"


@pytest.mark.parametrize("garbage", [b"", b"{", b"[1]", b'[{"Id": 1}]', b"\xff\xfe", b'{"a": []}',
                                     b'[{"Id": "x", "Name": "/n", "State": {}, "Config": {}}]'])
def test_unexpected_inspect_output_is_observation_invalid(garbage):
    with pytest.raises(ObservationError) as info:
        parse_inspect("h", garbage)
    assert info.value.code == "OBSERVATION_INVALID"


def test_parse_ps_rows(tmp_path):
    from tests.support.unit import FIXTURES
    rows = parse_ps("h", (FIXTURES / "inspect" / "ps.jsonl").read_bytes())
    assert "drift-lab-in-sync-1" in rows and all(len(i) == 64 for i in rows.values())
    with pytest.raises(ObservationError):
        parse_ps("h", b"not json\n")


def test_one_ps_one_inspect_one_image_inspect_for_many_modules(captured_containers, captured_images):
    from tests.support.unit import FIXTURES
    fake = canned([
        (allowlist.PS_ARGV, Output(0, (FIXTURES / "inspect" / "ps.jsonl").read_bytes(), b"")),
        (allowlist.INSPECT_PREFIX, Output(0, captured_containers, b"")),
        (allowlist.IMAGE_INSPECT_PREFIX, Output(0, captured_images, b"")),
    ])
    observer = HostObserver(fake, ["drift-lab-in-sync-1", "drift-lab-wrong-tag-1", "drift-lab-missing-1"])
    for _ in range(5):
        containers = observer.containers()
        observer.images()
    assert [c[:2] for c in calls(fake)] == [("docker", "ps"), ("docker", "inspect"), ("docker", "image")]
    assert set(containers) == {"drift-lab-in-sync-1", "drift-lab-wrong-tag-1"}


def test_docker_failure_is_cached_not_retried():
    fake = canned([(allowlist.PS_ARGV, Output(1, b"", b"Cannot connect to the Docker daemon\n"))])
    observer = HostObserver(fake, ["a"])
    for _ in range(3):
        with pytest.raises(ObservationError) as info:
            observer.containers()
        assert info.value.code == "DOCKER_UNAVAILABLE" and "Cannot connect" in info.value.message
    assert len(calls(fake)) == 1


def test_missing_docker_cli():
    fake = canned([(allowlist.PS_ARGV, Output(127, b"", b"sh: docker: not found\n"))])
    with pytest.raises(ObservationError, match="not found"):
        HostObserver(fake, ["a"]).containers()


def test_empty_ps_is_invalid_not_an_empty_host():
    with pytest.raises(ObservationError) as info:
        parse_ps("h", b"")
    assert info.value.code == "OBSERVATION_INVALID"
    assert parse_ps("h", b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n") == {}


def test_ps_rows_carry_the_oneoff_label_and_the_state():
    from driftcheck.observe import parse_listing
    from tests.support.unit import FIXTURES
    listing = {c.name: c for c in parse_listing("h", (FIXTURES / "inspect" / "compose-shapes.ps.jsonl").read_bytes())}
    assert [(n, c.oneoff, c.state) for n, c in listing.items()] == [
        ("shapes-web-1", False, "running"), ("shapes-web-2", False, "exited"),
        ("shapes-web-run-0a1b2c3d4e5f", True, "running"), ("shapes-web-run-9f8e7d6c5b4a", True, "exited"),
        ("shapes-migrate-run-111111111111", True, "running"), ("buildkit", False, "running")]
    assert (listing["shapes-web-run-0a1b2c3d4e5f"].project, listing["shapes-web-run-0a1b2c3d4e5f"].service) == \
        ("shapes", "web")


@pytest.mark.parametrize("row", [
    '["' + "a" * 64 + '","n","p","s"]',  # the four columns of before: another docker ps format
    '["' + "a" * 64 + '","n","p","s","False"]',
    '["' + "a" * 64 + '","n","p","s","False","running","x"]',
    '["' + "a" * 64 + '","n","p","s",false,"running"]',
    '["' + "a" * 64 + '\\n","n","p","s","False","running"]',
])
def test_a_ps_row_of_another_shape_is_invalid(row):
    with pytest.raises(ObservationError) as info:
        parse_ps("h", b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n" + row.encode() + b"\n")
    assert info.value.code == "OBSERVATION_INVALID"


def test_compose_shapes_are_read_as_docker_shows_them():
    """Ephemeral ports (HostPort ""), anonymous volumes, secrets, dotted env names; tmpfs is skipped."""
    from tests.support.unit import FIXTURES
    [web] = parse_inspect("h", (FIXTURES / "inspect" / "compose-shapes.containers.json").read_bytes()).values()
    assert web.ports == ("0.0.0.0::8080/tcp", "127.0.0.1:18443:443/tcp", "127.0.0.1::53/udp")
    assert [(kind, destination, ro) for kind, _, destination, ro in web.mounts] == [
        ("bind", "/etc/nginx/conf.d", True), ("bind", "/run/secrets/db_password", True),
        ("volume", "/app/node_modules", False), ("volume", "/app/uploads", False)]
    assert web.env_names == ("PATH", "TZ", "discovery.type")
    assert "single-node" not in repr(web) and "db_password.txt" not in repr(web) and "shapes/nginx" not in repr(web)


@pytest.mark.parametrize(("stdout", "rc"), [(b"", 0), (b"[]", 0)])
def test_inspect_that_answers_for_fewer_containers_than_asked_is_invalid(stdout, rc):
    from tests.support.unit import FIXTURES
    fake = canned([
        (allowlist.PS_ARGV, Output(0, (FIXTURES / "inspect" / "ps.jsonl").read_bytes(), b"")),
        (allowlist.INSPECT_PREFIX, Output(rc, stdout, b"")),
    ])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, ["drift-lab-in-sync-1"]).containers()
    assert info.value.code == "OBSERVATION_INVALID"


def test_container_gone_between_ps_and_inspect_is_missing_not_an_error():
    from tests.support.unit import FIXTURES
    fake = canned([
        (allowlist.PS_ARGV, Output(0, (FIXTURES / "inspect" / "ps.jsonl").read_bytes(), b"")),
        # docker names the argument it was given: the full id
        (allowlist.INSPECT_PREFIX, Output(1, b"[]", b"Error: No such container: "
                                          b"5c8ba3d5f4bb7ae715f1c9e679c04f028446a75711da2f8ba8c28d4f6e6aff58\n")),
    ])
    assert HostObserver(fake, ["drift-lab-wrong-tag-1"]).containers() == {}


@pytest.mark.parametrize(("stderr", "shown", "hidden"), [
    (b"Cannot connect to the Docker daemon at tcp://admin:hunter2@10.0.0.5:2376. Is it running?\n",
     "tcp://***@10.0.0.5:2376", "hunter2"),
    (b"error: password=hunter2 rejected\nsecond line\n", "password=***", "hunter2"),
    (b"\x1b[31mred\x1b[0m and a very long line" + b"x" * 400, "?[31mred", "x" * 300),
])
def test_docker_unavailable_shows_the_first_stderr_line_redacted(stderr, shown, hidden):
    fake = canned([(allowlist.PS_ARGV, Output(1, b"", stderr))])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, ["a"]).containers()
    assert info.value.code == "DOCKER_UNAVAILABLE"
    assert shown in info.value.message and hidden not in info.value.message
    assert "second line" not in info.value.message and "\n" not in info.value.message


# -- a failed inspect counts as "missing" only when docker named each missing object ---------------

PS = b"[CONTAINER ID,NAMES,project,service,oneoff,STATE]\n"
C_ID, C_NAME = "c" * 64, "p-s-1"
IMAGE_ID = "sha256:" + "a" * 64


def _ps(*rows: tuple[str, str]) -> bytes:
    return PS + b"".join(f'["{i}","{n}","p","s","False","running"]\n'.encode() for i, n in rows)


def _container(container_id: str = C_ID, name: str = C_NAME, image: str = IMAGE_ID) -> dict[str, object]:
    return {"Id": container_id, "Name": "/" + name, "Image": image, "State": {"Status": "running"},
            "Config": {"Image": "lab/app:1", "Labels": {"com.docker.compose.project": "p",
                                                        "com.docker.compose.service": "s"}}}


def _inspect(*containers: dict[str, object]) -> bytes:
    import json
    return json.dumps(list(containers)).encode()


def _images(*ids: str, tags: tuple[str, ...] = ("lab/app:1",)) -> bytes:
    import json
    return json.dumps([{"Id": i, "RepoTags": list(tags), "RepoDigests": []} for i in ids]).encode()


SILENT = [b"", b"\n", b"   \n\n"]


@pytest.mark.parametrize("stderr", SILENT)
@pytest.mark.parametrize("stdout", [b"", b"[]"])
def test_an_inspect_that_fails_without_a_word_is_an_error_never_every_container_missing(stderr, stdout):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(1, stdout, stderr))])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, [C_NAME]).containers()
    assert info.value.code == "DOCKER_UNAVAILABLE"
    assert "exit status 1" in info.value.message


def test_a_silent_failed_inspect_never_makes_an_absent_module_in_sync_nor_a_present_one_missing():
    from driftcheck.compare import Observed
    from driftcheck.registry import BY_NAME
    from tests.support.unit import make_module

    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(1, b"", b""))])
    observer = HostObserver(fake, [C_NAME])
    for desired in ({"state": "absent"}, {"state": "running"}):
        module = make_module(compose={"project": "p", "service": "s"}, desired=desired,
                             image=None if desired["state"] == "absent" else {"ref": "lab/app:1"})
        with pytest.raises(ObservationError) as info:
            BY_NAME["exists"].run(module, Observed(observer.containers().get(module.container_name)))
        assert info.value.code == "DOCKER_UNAVAILABLE"


@pytest.mark.parametrize("stderr", SILENT)
def test_an_image_inspect_that_fails_without_a_word_is_an_error_never_image_not_observed(stderr):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(0, _inspect(_container()), b"")),
                   (allowlist.IMAGE_INSPECT_PREFIX, Output(1, b"[]", stderr))])
    observer = HostObserver(fake, [C_NAME])
    assert set(observer.containers()) == {C_NAME}
    with pytest.raises(ObservationError) as info:
        observer.images()
    assert info.value.code == "DOCKER_UNAVAILABLE"


OTHER_ID = "d" * 64


@pytest.mark.parametrize("stderr", [
    f"Error: No such container: {OTHER_ID}\n".encode(),  # docker 20.10
    f"Error response from daemon: No such container: {OTHER_ID}\n".encode(),  # docker 28
    f"Error: No such object: {OTHER_ID}\n".encode(),
])
def test_a_container_docker_names_as_missing_is_missing(stderr):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME), (OTHER_ID, "p-s-2")), b"")),
                   (allowlist.INSPECT_PREFIX, Output(1, _inspect(_container()), stderr))])
    assert set(HostObserver(fake, [C_NAME, "p-s-2"]).containers()) == {C_NAME}


@pytest.mark.parametrize(("stdout", "stderr", "code"), [
    # one of the two missing is named, the other left out without a word
    (b"[]", f"Error: No such container: {OTHER_ID}\n".encode(), "OBSERVATION_INVALID"),
    # named: an object nobody asked about (a short id, another container)
    (b"[]", f"Error: No such container: {C_ID[:12]}\nError: No such container: {OTHER_ID}\n".encode(),
     "OBSERVATION_INVALID"),
    # a "no such" line beside another complaint: docker failed for another reason too
    (b"[]", f"Error: No such container: {C_ID}\nError: No such container: {OTHER_ID}\n"
            "Error response from daemon: i/o timeout\n".encode(), "DOCKER_UNAVAILABLE"),
    # the wrong kind of object
    (b"[]", f"Error: No such image: {C_ID}\nError: No such image: {OTHER_ID}\n".encode(), "DOCKER_UNAVAILABLE"),
    # exit 2, or a signal: never "missing"
])
def test_a_failed_inspect_that_does_not_name_each_missing_container_is_an_error(stdout, stderr, code):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME), (OTHER_ID, "p-s-2")), b"")),
                   (allowlist.INSPECT_PREFIX, Output(1, stdout, stderr))])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, [C_NAME, "p-s-2"]).containers()
    assert info.value.code == code


@pytest.mark.parametrize("rc", [2, 125, 137, -9])
def test_only_exit_1_can_mean_missing(rc):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(rc, b"[]", f"Error: No such container: {C_ID}\n".encode()))])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, [C_NAME]).containers()
    assert info.value.code == "DOCKER_UNAVAILABLE"


@pytest.mark.parametrize("stderr", [
    f"Error: No such image: {IMAGE_ID}\nError: No such image: lab/app:1\n".encode(),  # docker 20.10
    (f"Error response from daemon: no such image: {IMAGE_ID}: No such image: {IMAGE_ID}\n"  # docker 28
     "Error response from daemon: no such image: lab/app:1: No such image: lab/app:1\n").encode(),
])
def test_an_image_docker_names_as_missing_is_image_not_observed(stderr):
    from driftcheck.compare import Observed
    from driftcheck.registry import BY_NAME
    from tests.support.unit import make_module

    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(0, _inspect(_container()), b"")),
                   (allowlist.IMAGE_INSPECT_PREFIX, Output(1, b"[]", stderr))])
    observer = HostObserver(fake, [C_NAME], refs=["lab/app:1"])
    assert observer.images() == {}
    module = make_module(compose={"project": "p", "service": "s"})
    verdict = BY_NAME["image"].run(module, Observed(observer.containers()[C_NAME], observer.images()))
    assert [w.code for w in verdict.warnings] == ["IMAGE_NOT_OBSERVED", "IMAGE_DIGEST_NOT_VERIFIED"]
    assert not verdict.changes


@pytest.mark.parametrize(("stdout", "stderr"), [
    # a declared tag (lab/app:1) left out without a word: IMAGE_STALE could not be seen
    (_images(IMAGE_ID, tags=("lab/app:0",)), b"Error: No such image: lab/app:2\n"),
    # the running image left out without a word
    (b"[]", b"Error: No such image: lab/app:1\nError: No such image: lab/app:2\n"),
    # named: a tag nobody asked about
    (b"[]", f"Error: No such image: {IMAGE_ID}\nError: No such image: lab/app:1\nError: No such image: "
            "lab/app:2\nError: No such image: lab/app:3\n".encode()),
])
def test_an_image_inspect_that_leaves_an_object_out_without_naming_it_is_invalid(stdout, stderr):
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(0, _inspect(_container()), b"")),
                   (allowlist.IMAGE_INSPECT_PREFIX, Output(1, stdout, stderr))])
    with pytest.raises(ObservationError) as info:
        HostObserver(fake, [C_NAME], refs=["lab/app:1", "lab/app:2"]).images()
    assert info.value.code == "OBSERVATION_INVALID"


def test_a_declared_tag_found_by_its_repo_tags_and_another_named_missing_is_an_observation():
    fake = canned([(allowlist.PS_ARGV, Output(0, _ps((C_ID, C_NAME)), b"")),
                   (allowlist.INSPECT_PREFIX, Output(0, _inspect(_container()), b"")),
                   (allowlist.IMAGE_INSPECT_PREFIX, Output(1, _images(IMAGE_ID, tags=("lab/app:1",)),
                                                           b"Error: No such image: docker.io/lab/app:2\n"))])
    images = HostObserver(fake, [C_NAME], refs=["docker.io/lab/app:1", "docker.io/lab/app:2"]).images()
    assert set(images) == {IMAGE_ID}


@pytest.mark.parametrize("text", ["[]", " [ ]\n", '[1, {"a": [2, "]"]} ,3]\n', "[1,]", "[1 2]", "[1] x", "{}", "", "[",
                                  '[{"a": 1}]]', "[[]]", "[null]"])
def test_inspect_items_are_read_one_at_a_time_as_json_would_read_the_list(text):
    """parse_inspect reads a fleet's `docker inspect` item by item (issue 16: memory), with json's rules."""
    try:
        expected = json.loads(text)
    except ValueError:
        expected = ValueError
    try:
        got = list(_array_items(text))
    except ValueError:
        got = ValueError
    assert got == (expected if isinstance(expected, list) else ValueError)
