"""A new user's first hour (issue 17): the README's quick start, followed from a fresh clone to a checked host
(the lab's host standing in for the user's), and `make demo` from a clone under a private folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.checkout import fresh_clone, network_namespace, seed_venv, user_env
from tests.support.lab import labctl

#: the lab's compose project of the example platform; the lab host also runs other tests' projects
#: (drift-lab, the stacks corpus), so step 5 adopts this one, with the README's PROJECT= option
PROJECT = labctl.PROJECT
ADOPTED = {"homepage", "honcho-postgres", "honcho-redis", "nightly-backup", "traefik", "uptime-kuma"}


class User:
    """Commands typed in the clone by a user whose HOME is their own (inside a network namespace when
    enter is given); each must not show a traceback."""

    def __init__(self, clone: Path, home: Path, enter: list[str] | None = None):
        self.clone, self.home, self.enter = clone, home, enter or []
        self.env = user_env(home)

    def __call__(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.enter, *argv], cwd=self.clone, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
        return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def follow_the_quick_start(user: User, lab_inventory: Path, check_only: bool) -> None:
    """README.md, Quick start, steps 1 to 7, against the lab host that lab_inventory describes."""
    lab_host = yaml.safe_load(lab_inventory.read_text())["hosts"]["rs2000"]
    port = urlsplit(lab_host["connection"]).port
    lab_ssh = Path(lab_host["identity_file"]).parent
    ssh = user.home / ".ssh"
    # 1. On the server: the lab made its user (driftlab, in the docker group) and authorized the lab's key.
    # 2. The venv: seeded (seed_venv: no package index in the lab's namespace), so make venv has nothing to do.
    ok(user("make", "venv"))
    if check_only:
        tools = ok(user(".venv/bin/python", "-c", "import importlib.util as u; "
                        "print([m for m in ('hypothesis', 'mypy', 'ruff') if u.find_spec(m)])"))
        assert tools.strip() == "[]"  # a check needs none of the developer tools
    # A fresh clone has no key and no known_hosts yet: listing checks needs neither (the example platform's
    # inventory names both), and the user's own modules/ is empty.
    assert not ssh.exists()
    listed = ok(user(".venv/bin/python", "-m", "pytest", "--collect-only", "-q", "--modules-dir=examples/modules",
                     "--inventory=examples/hosts.yaml"))
    assert "checks/test_container.py::test_image[honcho-redis]" in listed and "error" not in listed.lower()
    assert sorted(p.name for p in (user.clone / "modules").iterdir()) == ["README.md"]
    ssh.mkdir(mode=0o700)
    shutil.copy(lab_host["identity_file"], ssh / "id_ed25519")  # "your key", which the server authorized
    (ssh / "id_ed25519").chmod(0o600)
    # 3. The host key, checked once: ssh reads ~/.ssh from the passwd entry, not HOME, so the user's
    # known_hosts is named; then its fingerprint is compared with the server's own.
    ok(user("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", "-i", str(ssh / "id_ed25519"), "-p", str(port),
            f"{labctl.LAB_USER}@127.0.0.1", "true"))
    learned = ok(user("ssh-keygen", "-l", "-f", str(ssh / "known_hosts"))).split()[1]
    assert learned == ok(user("ssh-keygen", "-l", "-f", str(lab_ssh / "host_ed25519.pub"))).split()[1]
    # 4. The inventory: the myhost entry gets the user and the server's address.
    inventory = user.clone / "hosts.yaml"
    text = inventory.read_text()
    assert list(yaml.safe_load(text)["hosts"]) == ["myhost"] and text.count("deploy@myhost.tail1234.ts.net:22") == 1
    inventory.write_text(text.replace("deploy@myhost.tail1234.ts.net:22", f"{labctl.LAB_USER}@127.0.0.1:{port}"))
    # 5. Adopt what runs: short names (nothing in modules/ takes them), each on host myhost.
    ok(user("make", "import", "HOST=myhost", f"PROJECT={PROJECT}"))
    modules = {p.parent.name: yaml.safe_load(p.read_text()) for p in (user.clone / "modules").glob("*/module.yaml")}
    assert set(modules) == ADOPTED
    assert {m["host"] for m in modules.values()} == {"myhost"}
    # 6. Validate, offline.
    validated = ok(user("make", "validate"))
    assert f"valid: {len(ADOPTED)} modules in modules, the inventory hosts.yaml" in validated
    # 7. Check: in sync, exit 0, and the run's page.
    checked = ok(user(".venv/bin/python", "-m", "pytest"))
    assert f"{len(ADOPTED)} modules: {len(ADOPTED)} in sync, 0 drift, 0 error" in checked, checked
    assert (user.clone / "reports" / "latest" / "index.html").is_file()


@pytest.mark.pins_transport
def test_the_quick_start_from_a_fresh_clone_ends_in_sync(lab, tmp_path):
    labctl.converge()
    clone = fresh_clone(tmp_path / "driftcheck")
    seed_venv(clone, dev=False)
    follow_the_quick_start(User(clone, tmp_path / "home"), labctl.INVENTORY, check_only=True)


@pytest.mark.pins_transport
def test_make_demo_and_the_quick_start_from_a_clone_under_a_private_folder(tmp_path):
    """sshd reads authorized_keys as the lab user, who cannot traverse a mode-700 folder: the lab keeps what
    that user reads outside the checkout. This clone's lab runs in a network namespace of its own (the
    example stack's ports would clash with the lab of make test), and is stopped and removed afterwards."""
    private = Path(tempfile.mkdtemp(prefix="dc-private-"))  # mode 700, as mktemp -d makes it
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        clone = fresh_clone(private / "driftcheck")
        seed_venv(clone, dev=True)  # make demo runs make setup: the developer tools too
        with network_namespace("dc-private") as enter:
            user = User(clone, tmp_path / "home", enter)
            try:
                demo = ok(user("make", "demo", timeout=600))
                assert "demo: OK, the deliberate drift was shown." in demo and "AUTH_FAILED" not in demo
                # the demo's own hint: one module of the example platform, in sync
                hint = next(line for line in demo.splitlines() if "pytest -k honcho-redis" in line)
                command = hint[hint.index("DRIFT_"):].split()
                settings = dict(word.split("=", 1) for word in command if "=" in word and not word.startswith("-"))
                assert settings == {"DRIFT_MODULES_DIR": "examples/modules",
                                    "DRIFT_INVENTORY": "lab/run/inventory.yaml"}, hint
                user.env.update(settings)
                one = ok(user(*command[len(settings):]))
                assert "1 modules: 1 in sync" in one or "1 module: 1 in sync" in one, one
                for name in settings:
                    del user.env[name]
                follow_the_quick_start(user, clone / "lab" / "run" / "inventory.yaml", check_only=False)
            finally:
                ok(user("make", "lab-down"))
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_lab_up_says_which_folder_keeps_the_lab_user_out(lab):
    """Should the lab user's folder become unreachable, lab-up stops and names the folder, its mode, and the fix."""
    labctl.check_lab_user_access()  # the running lab passes
    labctl.SHARED.chmod(0o700)
    try:
        with pytest.raises(SystemExit) as stopped:
            labctl.check_lab_user_access()
    finally:
        labctl.SHARED.chmod(0o755)
    assert str(stopped.value) == (
        f"lab: the lab user {labctl.LAB_USER} cannot read {labctl.SSH / 'authorized_keys'}, so every login to the lab "
        f"would fail (sshd reads authorized_keys as {labctl.LAB_USER}): {labctl.SHARED} (mode 700, uid 0) keeps it "
        "out; make it mode 755")
