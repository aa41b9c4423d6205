"""The hostile-manifest corpus (fixtures/hostile), shared by the unit and the lab tests.

Each case is a module.yaml whose first line names the key its error must name (`-` for none);
its `name:` is NAME, set to the case's folder name when placed.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "hostile").glob("*.yaml"))


def place(case: Path, modules: Path) -> Path:
    """Put one case into modules/<case>/module.yaml, its name set to the folder's."""
    target = modules / case.stem / "module.yaml"
    target.parent.mkdir(parents=True)
    target.write_bytes(case.read_bytes().replace(b"NAME", case.stem.encode()))
    return target


def expected_key(case: Path) -> str | None:
    key = case.read_bytes().splitlines()[0].decode().removeprefix("# key: ")
    return None if key == "-" else key
