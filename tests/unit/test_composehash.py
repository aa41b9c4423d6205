"""composehash: the local `docker-compose config --hash` (no daemon, no socket), and its errors."""

from __future__ import annotations

import pytest

from driftcheck.composehash import ComposeError, compose_version, config_hash

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
