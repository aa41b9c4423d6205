"""composehash: the local `docker-compose config --hash` (no daemon, no socket), and its errors."""

from __future__ import annotations

import pytest

from driftcheck.composehash import ComposeError, compose_version, config_hash, local_compose

COMPOSE = "services:\n  app:\n    image: lab/app:1\n    environment:\n      MODE: ${MODE:-unset}\n"


def test_hash_of_a_service_and_the_local_version(tmp_path):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    value = config_hash(tmp_path / "compose.yaml", "p", "app")
    assert len(value) == 64 and int(value, 16) >= 0
    assert compose_version()[0].isdigit()  # 2.40.3, as the container label writes it


def test_variables_come_from_the_folders_env_file_only(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "b" / ".env").write_text("MODE=green\n")
    monkeypatch.setenv("MODE", "green")  # the operator's shell must not matter
    plain, with_env = config_hash(tmp_path / "a" / "compose.yaml", "p", "app"), \
        config_hash(tmp_path / "b" / "compose.yaml", "p", "app")
    assert plain != with_env


@pytest.mark.parametrize(("text", "service"), [("services: [\n", "app"), (COMPOSE, "other")])
def test_a_file_that_does_not_give_a_hash_is_compose_config_invalid(tmp_path, text, service):
    (tmp_path / "compose.yaml").write_text(text)
    with pytest.raises(ComposeError) as info:
        config_hash(tmp_path / "compose.yaml", "p", service)
    assert info.value.code == "COMPOSE_CONFIG_INVALID" and "\n" not in str(info.value)


RELATIVE = ("services:\n  web:\n    image: lab/app:1\n    volumes: ['./conf:/etc/conf:ro']\n"
            "  side:\n    image: lab/app:1\n    network_mode: 'service:web'\n")


def test_relative_paths_resolve_against_the_hosts_working_directory(tmp_path):
    """The module folder is not where Compose ran: the working_dir label decides, as on the host."""
    (tmp_path / "module").mkdir()
    (tmp_path / "host").mkdir()
    (tmp_path / "module" / "compose.yaml").write_text(RELATIVE)
    (tmp_path / "host" / "compose.yaml").write_text(RELATIVE)
    on_host = config_hash(tmp_path / "host" / "compose.yaml", "p", "web")
    assert config_hash(tmp_path / "module" / "compose.yaml", "p", "web") != on_host
    assert local_compose(tmp_path / "module" / "compose.yaml", "p", "web", str(tmp_path / "host")).hash == on_host


def test_the_network_mode_of_a_service_is_reported(tmp_path):
    (tmp_path / "compose.yaml").write_text(RELATIVE)
    assert local_compose(tmp_path / "compose.yaml", "p", "side").network_mode == "service:web"
    assert local_compose(tmp_path / "compose.yaml", "p", "web").network_mode == ""


def test_an_env_file_is_hashed_as_up_resolves_it(tmp_path):
    """`up` reads env_file into the environment before hashing: a changed value is a changed hash."""
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: lab/app:1\n    env_file: [app.env]\n")
    (tmp_path / "app.env").write_text("MODE=blue\n")
    blue = config_hash(tmp_path / "compose.yaml", "p", "app")
    (tmp_path / "app.env").write_text("MODE=green\n")
    from driftcheck import composehash

    composehash._rendered.cache_clear()
    assert config_hash(tmp_path / "compose.yaml", "p", "app") != blue


def test_a_service_on_another_services_network_is_hashed_with_that_containers_id(tmp_path):
    (tmp_path / "compose.yaml").write_text(RELATIVE)
    unresolved = local_compose(tmp_path / "compose.yaml", "p", "side")
    resolved = local_compose(tmp_path / "compose.yaml", "p", "side", None, "container:" + "a" * 64)
    assert resolved.network_mode == "container:" + "a" * 64 and resolved.hash != unresolved.hash


def test_validation_needs_only_the_file_not_the_files_it_names(tmp_path):
    """A copied compose file names an env_file that lives on the host: validation still passes."""
    from driftcheck.composehash import check_defines

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: lab/app:1\n    env_file: [web.env]\n")
    check_defines(tmp_path / "compose.yaml", "p", "web")
    with pytest.raises(ComposeError, match="no service 'db'"):
        check_defines(tmp_path / "compose.yaml", "p", "db")
    (tmp_path / "compose.yaml").write_text("services: [\n")
    with pytest.raises(ComposeError):
        check_defines(tmp_path / "compose.yaml", "p", "web")


def test_a_profiled_service_is_defined_and_hashed(tmp_path):
    """A service under profiles: that the host started (--profile) is the module's service all the same."""
    from driftcheck.composehash import check_defines

    (tmp_path / "compose.yaml").write_text("services:\n  tool:\n    image: lab/app:1\n    profiles: [tools]\n")
    check_defines(tmp_path / "compose.yaml", "p", "tool")
    assert len(local_compose(tmp_path / "compose.yaml", "p", "tool").hash) == 64


def test_interpolation_never_reads_a_dotenv_at_the_hosts_path(tmp_path):
    """With the host's working_dir, only the module's .env counts: a .env lying at that path here does not."""
    (tmp_path / "module").mkdir()
    (tmp_path / "host").mkdir()
    text = "services:\n  app:\n    image: lab/app:${TAG:-1}\n"
    (tmp_path / "module" / "compose.yaml").write_text(text)
    (tmp_path / "host" / ".env").write_text("TAG=2\n")
    from driftcheck import composehash

    def hashed(dotenv: str) -> str:
        (tmp_path / "module" / ".env").write_text(dotenv)
        composehash._rendered.cache_clear()
        return local_compose(tmp_path / "module" / "compose.yaml", "p", "app", str(tmp_path / "host")).hash

    unset, one, two = hashed(""), hashed("TAG=1\n"), hashed("TAG=2\n")
    assert unset == one != two  # the host folder's TAG=2 was not read


def test_an_error_never_quotes_what_compose_could_not_read(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: lab/app:1\n    env_file: [app.env]\n")
    (tmp_path / "app.env").write_text("PASSWORD=hunter2${oops\n")
    with pytest.raises(ComposeError) as info:
        local_compose(tmp_path / "compose.yaml", "p", "app", str(tmp_path))
    assert "hunter2" not in str(info.value) and info.value.code == "COMPOSE_CONFIG_INVALID"


def test_a_compose_that_prints_no_version_is_an_error_never_every_hash_not_comparable(tmp_path, monkeypatch):
    # An empty version (exit 0, no output) made every config-hash check CONFIG_HASH_NOT_COMPARABLE, a
    # warning: a changed compose file was never CONFIG_HASH_MISMATCH.
    from driftcheck import composehash

    silent = tmp_path / "docker-compose"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    monkeypatch.setattr(composehash, "compose_binary", lambda: str(silent))
    composehash.compose_version.cache_clear()
    try:
        with pytest.raises(ComposeError, match="printed no version"):
            composehash.compose_version()
    finally:
        composehash.compose_version.cache_clear()


def test_a_rehash_with_the_containers_network_that_prints_nothing_is_an_error(tmp_path, monkeypatch):
    # The hash of a `network_mode: service:X` service is computed again with the observed
    # container:<id>; when that second call printed nothing, the first hash (with service:X, never the
    # container's) was compared as if it were Compose's.
    from driftcheck import composehash

    (tmp_path / "compose.yaml").write_text(RELATIVE)
    real = composehash._hash_of

    def silent_for_one_service(rendered, project, project_dir, service, cwd):
        return real(rendered, project, project_dir, service, cwd) if service == "*" else {}

    monkeypatch.setattr(composehash, "_hash_of", silent_for_one_service)
    composehash._rendered.cache_clear()
    with pytest.raises(ComposeError, match="printed no hash"):
        local_compose(tmp_path / "compose.yaml", "p", "side", None, "container:" + "a" * 64)
    composehash._rendered.cache_clear()
