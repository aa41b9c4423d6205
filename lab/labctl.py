"""The local lab: a real dockerd + sshd on loopback, isolated from any daemon already running.

    python lab/labctl.py up      # start (idempotent) and converge to the baseline
    python lab/labctl.py down    # stop what `up` started, by pid, and nothing else
    python lab/labctl.py status
    python lab/labctl.py stacks-up     # deploy (or converge back) the corpus of fixtures/stacks
    python lab/labctl.py stacks-down   # remove it

Everything lives under lab/run/ (git-ignored): containerd and dockerd with their own roots and
pidfiles, logs, and inventory.yaml, which names the hosts of examples/modules. What the lab user
reads or runs lives in SHARED, a root-owned 0755 folder under /run named after the checkout: the
daemons' sockets, sshd's generated keys, authorized_keys and a known_hosts file, and the `docker`
wrapper first on the lab user's PATH that logs every command it is asked to run. So the lab works
from a checkout the lab user cannot reach (a clone under /root or `mktemp -d`, mode 700: sshd
reads authorized_keys as that user). `down` removes SHARED.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "lab" / "run"
#: the checkout's own name for what it starts on this machine (SHARED, the hidden host's namespace)
CHECKOUT_ID = hashlib.sha256(str(RUN).encode()).hexdigest()[:8]
#: What the lab user reads, runs or connects to, outside the checkout (see the module's docstring).
SHARED_ROOT = Path("/run/driftcheck-lab")
SHARED = SHARED_ROOT / CHECKOUT_ID
BIN = SHARED / "bin"
SSH = SHARED / "ssh"
FAULTS = SHARED / "faults"
DOCKER_SOCK = SHARED / "docker.sock"
CONTAINERD_SOCK = SHARED / "containerd.sock"
COMMAND_LOG = SHARED / "docker-commands.log"
INVENTORY = RUN / "inventory.yaml"
LAB_USER = "driftlab"
DOCKER_GROUP = "docker"
REAL_DOCKER = "/usr/bin/docker"
PROJECT = "home-platform"
COMPOSE_FILE = REPO / "lab" / "compose" / "home-platform.yaml"
#: The hosts of the example modules; all of them are this one lab machine.
LAB_HOSTS = ("rs2000",)
#: Every image ref the lab and its tests use; each is its own `docker import` (its own id).
IMAGES = (
    "redis:7.2-alpine", "redis:7.0-alpine", "postgres:16-alpine", "traefik:v3.1",
    "ghcr.io/gethomepage/homepage:v0.9.6", "louislam/uptime-kuma:1", "louislam/uptime-kuma:2",
    "restic/restic:0.16.4", "lab/app:1", "lab/app:2",
    # the corpus of compose stacks (fixtures/stacks, deployed by stacks_up)
    "prom/prometheus:v2.53.0", "grafana/grafana:11.1.0", "elasticsearch:8.14.3",
)


def log(message: str) -> None:
    print(f"lab: {message}", flush=True)


def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_HOST"] = f"unix://{DOCKER_SOCK}"
    env.pop("DOCKER_CONTEXT", None)
    env["LAB_SECRET"] = lab_secret()
    return env


def lab_secret() -> str:
    """A distinctive value planted in the lab containers' env; it must never appear in any output."""
    path = RUN / "secret"
    if not path.exists():
        RUN.mkdir(parents=True, exist_ok=True)
        path.write_text(f"labsecret-{secrets.token_hex(8)}\n")
    return path.read_text().strip()


def compose_bin() -> str:
    candidate = Path(sys.executable).parent / "docker-compose"
    return str(candidate) if candidate.exists() else shutil.which("docker-compose") or "docker-compose"


def run(argv: list[str], env: dict[str, str] | None = None, check: bool = True,
        quiet: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"lab: {' '.join(argv[:4])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    if not quiet and done.stdout.strip() and os.environ.get("LAB_VERBOSE"):
        print(done.stdout)
    return done


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([REAL_DOCKER, *args], env=docker_env(), check=check, quiet=True)


def compose(*args: str, project: str = PROJECT, file: Path = COMPOSE_FILE,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**docker_env(), **(extra_env or {})}
    return run([compose_bin(), "-p", project, "-f", str(file), *args], env=env)


def pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def wait_for(predicate, what: str, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"lab: {what} did not come up within {seconds:g}s")


def start_daemon(argv: list[str], pidfile: Path, logfile: Path) -> int:
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def ensure_user() -> None:
    if run(["getent", "group", DOCKER_GROUP], check=False).returncode != 0:
        run(["groupadd", "--system", DOCKER_GROUP])
    try:
        pwd.getpwnam(LAB_USER)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/sh", "--groups", DOCKER_GROUP, LAB_USER])
    run(["usermod", "--append", "--groups", DOCKER_GROUP, LAB_USER])
    # useradd leaves the account locked ("!"); with UsePAM no, sshd refuses a locked account.
    run(["usermod", "--password", "*", LAB_USER])


def ensure_shared() -> None:
    """SHARED and its parent: root-owned, mode 0755, so the lab user can traverse them."""
    for folder in (SHARED_ROOT, SHARED):
        folder.mkdir(mode=0o755, exist_ok=True)
        os.chown(folder, 0, 0)
        folder.chmod(0o755)


def as_lab_user(*argv: str) -> bool:
    """Whether a command run as the lab user (its uid and groups, docker among them) succeeds."""
    account = pwd.getpwnam(LAB_USER)
    return subprocess.run(argv, user=account.pw_uid, group=account.pw_gid,
                          extra_groups=os.getgrouplist(LAB_USER, account.pw_gid), capture_output=True,
                          check=False).returncode == 0


def check_lab_user_access() -> None:
    """The lab user reaches what sshd reads as that user and what its sessions run; else say exactly why."""
    for path, test, what in ((SSH / "authorized_keys", "-r", "read"), (BIN / "docker", "-x", "run"),
                             (COMMAND_LOG, "-w", "write"), (DOCKER_SOCK, "-w", "connect to")):
        if as_lab_user("test", test, str(path)):
            continue
        blocked = next((f for f in reversed(path.parents) if not as_lab_user("test", "-x", str(f))), None)
        if blocked is not None:
            info = blocked.stat()
            fix = f"{blocked} (mode {info.st_mode & 0o7777:o}, uid {info.st_uid}) keeps it out; make it mode 755"
        elif not path.exists():
            fix = "it is missing; run make lab-down, then make lab-up"
        else:
            fix = f"its mode {path.stat().st_mode & 0o7777:o} or owner forbids it; run make lab-down, then make lab-up"
        raise SystemExit(f"lab: the lab user {LAB_USER} cannot {what} {path}, so every login to the lab would "
                         f"fail (sshd reads authorized_keys as {LAB_USER}): {fix}")


def start_docker() -> None:
    ensure_shared()
    for sub in ("containerd-root", "containerd-state", "docker-data", "docker-exec"):
        (RUN / sub).mkdir(parents=True, exist_ok=True)
    if pid_alive(RUN / "containerd.pid") is None:
        config = RUN / "containerd.toml"
        config.write_text(
            'version = 2\n'
            f'root = "{RUN / "containerd-root"}"\nstate = "{RUN / "containerd-state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{CONTAINERD_SOCK}"\n'
            f'[ttrpc]\n  address = "{CONTAINERD_SOCK}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
        )
        start_daemon(["containerd", "--config", str(config)], RUN / "containerd.pid", RUN / "containerd.log")
        wait_for(CONTAINERD_SOCK.exists, "containerd")
        log("containerd started")
    if pid_alive(RUN / "docker.pid") is None:
        DOCKER_SOCK.unlink(missing_ok=True)
        start_daemon([
            "dockerd", "--data-root", str(RUN / "docker-data"), "--exec-root", str(RUN / "docker-exec"),
            "--host", f"unix://{DOCKER_SOCK}", "--pidfile", str(RUN / "docker.pid"),
            "--containerd", str(CONTAINERD_SOCK), "--group", DOCKER_GROUP,
            "--bridge=none", "--iptables=false", "--ip6tables=false",
        ], RUN / "dockerd.pid-launcher", RUN / "dockerd.log")
        wait_for(lambda: docker("version", check=False).returncode == 0, "dockerd", 60)
        log("dockerd started")


def ensure_images() -> None:
    have = set(docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    missing = [ref for ref in IMAGES if ref not in have]
    if not missing:
        return
    root = RUN / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "sleep", "cat", "ls", "env", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    tarball = RUN / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(root, arcname=".")
    for ref in missing:
        docker("import", "--change", 'CMD ["/bin/sleep", "2147483647"]', str(tarball), ref)
    log(f"imported {len(missing)} image(s)")


def converge() -> None:
    """The baseline the example modules describe (undoes the demo's drift)."""
    compose("up", "--detach", "--remove-orphans", "--quiet-pull")
    compose("stop", "nightly-backup")
    docker("rm", "--force", f"{PROJECT}-legacy-wiki-1", check=False)
    wait_for_health(f"{PROJECT}-traefik-1", "healthy")


def wait_for_health(container: str, status: str, seconds: float = 30.0) -> None:
    """Wait until a container's healthcheck reports status (healthchecks run every second here)."""
    wait_for(lambda: docker("inspect", "--type", "container", "--format", "{{.State.Health.Status}}",
                            container, check=False).stdout.strip() == status, f"{container} {status}", seconds)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: Faults the lab's `docker` wrapper can inject: write one of these words into
#: lab/run/faults/<ps|inspect|image|all> (the docker subcommand it applies to, or every one).
FAULT_MODES = ("hang", "garbage", "empty", "truncate", "no-cli", "daemon-down", "denied", "drop", "drop-once",
               "silent", "name-one")
#: A socket path no daemon listens on ("daemon down") and one the lab user may not open.
NO_DAEMON_SOCK = FAULTS / "no-daemon.sock"
DENIED_SOCK = FAULTS / "denied.sock"


def write_docker_wrapper() -> None:
    ensure_shared()
    BIN.mkdir(parents=True, exist_ok=True)
    FAULTS.mkdir(parents=True, exist_ok=True)
    # The lab user removes a one-shot fault (drop-once) after it fired.
    shutil.chown(FAULTS, LAB_USER)
    os.chmod(FAULTS, 0o755)
    wrapper = BIN / "docker"
    wrapper.write_text(f"""#!/bin/sh
# The lab host's `docker`: logs each command it is asked to run (arguments separated by
# the unit separator, one command a line), then runs the real CLI.
# Tests inject a fault by writing a mode into {FAULTS}/<subcommand> or {FAULTS}/all.
log="${{LAB_COMMAND_LOG:-{COMMAND_LOG}}}"
for arg in "$@"; do printf '%s\\037' "$arg"; done >> "$log"; printf '\\n' >> "$log"
fault=""
for f in all "$1"; do
  if [ -e "{FAULTS}/$f" ]; then fault=$(cat "{FAULTS}/$f"); faultfile="{FAULTS}/$f"; fi
done
session_pid() {{
  # The SSH session process this command runs under (owned by the lab user).
  pid=$$
  while [ "$pid" -gt 1 ]; do
    pid=$(awk '/^PPid:/ {{print $2}}' /proc/$pid/status)
    case "$(cat /proc/$pid/comm)" in sshd*) echo "$pid"; return;; esac
  done
}}
case "$fault" in
  hang) exec sleep 120 ;;
  garbage) echo '{{"not": "json"'; exit 0 ;;
  empty) exit 0 ;;
  silent) exit 1 ;;
  name-one) for last in "$@"; do :; done; echo '[]'; echo "Error: No such object: $last" >&2; exit 1 ;;
  truncate) {REAL_DOCKER} "$@" | head -c 300; exit 0 ;;
  no-cli) exec /nonexistent/docker "$@" ;;
  daemon-down) export DOCKER_HOST=unix://{NO_DAEMON_SOCK} ;;
  denied) export DOCKER_HOST=unix://{DENIED_SOCK} ;;
  drop-once) rm -f "$faultfile"; kill -KILL "$(session_pid)"; exit 1 ;;
  drop) kill -KILL "$(session_pid)"; exit 1 ;;
esac
exec {REAL_DOCKER} "$@"
""")
    wrapper.chmod(0o755)
    if not COMMAND_LOG.exists():
        COMMAND_LOG.touch()
    shutil.chown(COMMAND_LOG, LAB_USER)
    COMMAND_LOG.chmod(0o644)


def sshd_config(name: str, port: int, command_log: Path, extra: str) -> Path:
    """SSH/<name>_config: a loopback sshd for the lab user with the lab's host key, its docker and command_log."""
    config = SSH / f"{name}_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {SSH / "host_ed25519"}
PidFile {RUN / f"{name}.pid"}
AuthorizedKeysFile {SSH / "authorized_keys"}
AllowUsers {LAB_USER}
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
X11Forwarding no
MaxStartups 100
SetEnv DOCKER_HOST=unix://{DOCKER_SOCK} PATH={BIN}:/usr/bin:/bin LAB_COMMAND_LOG={command_log}
{extra}""")
    return config


def start_sshd(instance: str = "sshd", command_log: Path = COMMAND_LOG, extra: str = "") -> int:
    """Start (once) an sshd on a free loopback port; another instance is another lab host.

    Every instance shares the host key and the lab user, and logs its docker commands to its
    own command_log, so commands are counted per host on the host's side. extra (opt-in) is added
    to the instance's sshd_config, e.g. `HostCertificate <file>` for a host certificate.
    """
    ensure_shared()
    SSH.mkdir(parents=True, exist_ok=True)
    SSH.chmod(0o755)
    host_key, client_key = SSH / "host_ed25519", SSH / "client_ed25519"
    if not host_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "driftlab-host", "-f", str(host_key)])
    if not client_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "driftlab-client", "-f", str(client_key)])
    user_ca = SSH / "user_ca"  # signs user certificates the lab's sshd trusts (TrustedUserCAKeys)
    if not user_ca.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "driftlab-user-ca", "-f", str(user_ca)])
    authorized = SSH / "authorized_keys"
    shutil.copy(f"{client_key}.pub", authorized)
    authorized.chmod(0o644)
    port_file = RUN / f"{instance}.port"
    pidfile = RUN / f"{instance}.pid"
    if pid_alive(pidfile) is not None and port_file.exists():
        return int(port_file.read_text())
    if not command_log.exists():
        command_log.touch()
    shutil.chown(command_log, LAB_USER)
    port = free_port()
    config = sshd_config(instance, port, command_log,
                         f"TrustedUserCAKeys {user_ca}.pub\nAllowTcpForwarding no\n{extra}")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    run(["/usr/sbin/sshd", "-f", str(config), "-E", str(RUN / f"{instance}.log")])
    wait_for(lambda: pid_alive(pidfile) is not None, instance)
    port_file.write_text(f"{port}\n")
    known = SSH / "known_hosts"
    key_type, key_b64 = Path(f"{host_key}.pub").read_text().split()[:2]
    lines = known.read_text().splitlines() if known.exists() and instance != "sshd" else []
    lines = [line for line in lines if not line.startswith(f"[127.0.0.1]:{port} ")]
    known.write_text("\n".join([*lines, f"[127.0.0.1]:{port} {key_type} {key_b64}"]) + "\n")
    log(f"{instance} started on 127.0.0.1:{port}")
    return port


def start_registry() -> int:
    """Debian's docker-registry on a free loopback port: pushing gives images real RepoDigests."""
    port_file, pidfile = RUN / "registry.port", RUN / "registry.pid"
    if pid_alive(pidfile) is not None and port_file.exists():
        return int(port_file.read_text())
    port = free_port()
    (RUN / "registry-data").mkdir(exist_ok=True)
    config = RUN / "registry.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {RUN / "registry-data"}
http:
  addr: 127.0.0.1:{port}
""")
    start_daemon(["docker-registry", "serve", str(config)], pidfile, RUN / "registry.log")
    wait_for(lambda: listening(port), "docker-registry")
    port_file.write_text(f"{port}\n")
    log(f"docker-registry started on 127.0.0.1:{port}")
    return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def push(image: str, repository: str) -> str:
    """Push a lab image to the lab registry as repository (127.0.0.1:<port>/...); its digest."""
    docker("tag", image, repository)
    docker("push", "--quiet", repository)
    digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", repository).stdout)
    for entry in digests:
        name, _, digest = entry.partition("@")
        if name == repository.rsplit(":", 1)[0]:
            return str(digest)
    raise SystemExit(f"lab: {repository} has no digest after the push")


def write_inventory(port: int) -> None:
    lines = ["# Written by lab/labctl.py up: the lab's inventory (git-ignored).", "hosts:"]
    for name in LAB_HOSTS:
        lines += [
            f"  {name}:",
            f"    connection: paramiko://{LAB_USER}@127.0.0.1:{port}",
            f"    identity_file: {SSH / 'client_ed25519'}",
            f"    known_hosts: {SSH / 'known_hosts'}",
            "    timeout: 10",
        ]
    INVENTORY.write_text("\n".join(lines) + "\n")


# -- the corpus of compose stacks (fixtures/stacks): deployed by stacks_up, not by `up` -----------------

#: The stacks' sources (tracked) and where the lab host "keeps" them: the containers' working_dir and
#: config_files labels point at STACKS/<project>, the copy drift helpers edit; stacks_up rewrites it.
STACKS_SOURCE = REPO / "fixtures" / "stacks"
STACKS = RUN / "stacks"
#: Every compose project of the corpus, one folder (and compose.yaml) each.
STACK_PROJECTS = ("shop", "edge", "monitoring", "search", "jobs")
#: The image the corpus pins by digest, pushed to the lab registry under these repositories;
#: the second push (lab/app:2 as corpus/api:2) is the digest a re-pin moves to.
PINNED = (("lab/app:1", "corpus/api:1"), ("lab/app:1", "corpus/whoami:1"), ("lab/app:2", "corpus/api:2"))
#: tags moved by retag() (a rebuilt image under the same tag), restored by stacks_up: ref -> old image id
RETAGGED = STACKS.parent / "stacks-retagged.json"


def stack_file(project: str) -> Path:
    """The deployed compose file of a corpus project (under lab/run/stacks)."""
    return STACKS / project / "compose.yaml"


def stack_compose(project: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose -p <project> -f lab/run/stacks/<project>/compose.yaml <args>` on the lab."""
    return compose(*args, project=project, file=stack_file(project))


def registry() -> str:
    """The lab registry as image refs name it: 127.0.0.1:<port>."""
    return f"127.0.0.1:{int((RUN / 'registry.port').read_text())}"


def stack_values() -> dict[str, str]:
    """The placeholders of the corpus' compose files: the registry and the digest of corpus/api:1."""
    reg = registry()
    digests = {repository: push(image, f"{reg}/{repository}") for image, repository in PINNED}
    return {"%LAB_REGISTRY%": reg, "%API_DIGEST%": digests["corpus/api:1"],
            "%API_DIGEST_2%": digests["corpus/api:2"]}


def render_stack(project: str, values: dict[str, str]) -> Path:
    """Copy fixtures/stacks/<project> to lab/run/stacks/<project> with the placeholders filled in."""
    target = STACKS / project
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(STACKS_SOURCE / project, target)
    text = (target / "compose.yaml").read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    (target / "compose.yaml").write_text(text)
    return target


def retag(ref: str, image: str) -> None:
    """A rebuilt image under the same tag: ref now names image; stacks_up moves it back."""
    moved = json.loads(RETAGGED.read_text()) if RETAGGED.exists() else {}
    if ref not in moved:
        moved[ref] = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
        RETAGGED.write_text(json.dumps(moved))
    docker("tag", image, ref)


def restore_tags() -> None:
    if RETAGGED.exists():
        for ref, image_id in json.loads(RETAGGED.read_text()).items():
            docker("tag", image_id, ref)
        RETAGGED.unlink()


def stacks_up(projects: tuple[str, ...] = STACK_PROJECTS) -> None:
    """Deploy the corpus, or converge it back to its baseline from any drift (idempotent).

    Each project is copied afresh from fixtures/stacks, taken down (its orphans, one-off containers
    and volumes with it) and brought up again with `up --detach --wait`: whatever a test changed
    (an edited file, a stopped, paused, scaled or reconnected container, a moved tag) is undone.
    """
    ensure_images()
    restore_tags()
    STACKS.mkdir(parents=True, exist_ok=True)
    values = stack_values()
    for project in projects:
        remove_stack(project)
        render_stack(project, values)
    failures: list[BaseException] = []

    def bring_up(project: str) -> None:
        try:
            stack_compose(project, "up", "--detach", "--wait", "--wait-timeout", "60", "--quiet-pull")
        except BaseException as exc:  # reported below, after every project was tried (SystemExit too)
            failures.append(exc)

    threads = [threading.Thread(target=bring_up, args=(project,)) for project in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def stacks_down(projects: tuple[str, ...] = STACK_PROJECTS) -> None:
    """Remove the corpus' containers, networks and volumes, and its deployed copies."""
    restore_tags()
    for project in projects:
        remove_stack(project)
        shutil.rmtree(STACKS / project, ignore_errors=True)


def remove_stack(project: str) -> None:
    """`down` a corpus project, and remove every container still labelled with it.

    `down --remove-orphans` removes one-off (`run`) containers but keeps a container that has the
    project label without a service of the file (a hand-made orphan): those go by label. Nor does
    `--volumes` remove an anonymous volume once Compose recreated its container (the new container
    mounts it by name): those go by name.
    """
    label = f"label=com.docker.compose.project={project}"
    containers = docker("ps", "--all", "--quiet", "--filter", label).stdout.split()
    anonymous = set()
    if containers:
        for line in docker("inspect", "--type", "container", "--format",
                           "{{range .Mounts}}{{.Type}} {{.Name}}\n{{end}}", *containers).stdout.splitlines():
            kind, _, name = line.partition(" ")
            if kind == "volume" and len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                anonymous.add(name)
    if stack_file(project).exists():
        stack_compose(project, "down", "--remove-orphans", "--volumes", "--timeout", "1")
    left = docker("ps", "--all", "--quiet", "--filter", label).stdout.split()
    if left:
        docker("rm", "--force", "--volumes", *left)
    still = set(docker("volume", "ls", "--quiet").stdout.split()) & anonymous
    if still:
        docker("volume", "rm", *sorted(still))


def up() -> None:
    if os.geteuid() != 0:
        raise SystemExit("lab: run as root (it starts dockerd and sshd)")
    RUN.mkdir(parents=True, exist_ok=True)
    RUN.chmod(0o755)
    ensure_user()
    start_docker()
    ensure_images()
    converge()
    write_docker_wrapper()
    port = start_sshd()
    check_lab_user_access()
    write_inventory(port)
    start_registry()
    log(f"up: inventory {INVENTORY.relative_to(REPO)}, DOCKER_HOST=unix://{DOCKER_SOCK}, the lab user's files in "
        f"{SHARED}")


def stop_pid(pidfile: Path, name: str, seconds: float = 20.0) -> None:
    pid = pid_alive(pidfile)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            # reap it if it is our child (it is not, normally)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    log(f"{name} stopped (pid {pid})")


def down() -> None:
    stop_hidden()
    for pidfile in sorted(RUN.glob("sshd*.pid")):
        stop_pid(pidfile, pidfile.stem)
    stop_pid(RUN / "registry.pid", "docker-registry")
    stop_pid(RUN / "docker.pid", "dockerd", 30)
    stop_pid(RUN / "containerd.pid", "containerd")
    if SHARED.is_dir():
        shutil.rmtree(SHARED)
        log(f"removed {SHARED}")
    try:
        SHARED_ROOT.rmdir()  # only when no other checkout's lab is up
    except OSError:
        pass


def status() -> int:
    rc = 0
    for name in ("containerd", "docker", "sshd", "registry"):
        pid = pid_alive(RUN / f"{name}.pid")
        print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
        rc |= pid is None
    return rc


# -- a host only a bastion reaches (ssh:// with ProxyJump) -------------------------------------------

#: The network namespace of the hidden host: only its loopback, so nothing in the root namespace reaches it.
#: Named after the checkout, so two checkouts' labs (each in a network namespace of its own) never share it.
HIDDEN_NETNS = "driftlab-hidden-" + CHECKOUT_ID
#: What the hidden host's `docker` logs (the same wrapper as the lab host's).
HIDDEN_COMMAND_LOG = SHARED / "hidden-commands.log"


def start_hidden() -> tuple[int, int]:
    """A target sshd inside HIDDEN_NETNS and a bastion sshd that alone reaches it; (bastion port, target port).

    The target listens on 127.0.0.1 of its own namespace. The bastion is `sshd -i` started inside that
    namespace for each connection accepted on a 127.0.0.1 port of the root namespace, so its forwards
    (ProxyJump's direct-tcpip) are the only way in. Both share the lab's host key and user; `down` stops them.
    """
    start_sshd()  # the keys and authorized_keys
    ports = RUN / "hidden.ports"
    if pid_alive(RUN / "sshd-hidden.pid") and pid_alive(RUN / "sshd-bastion.pid") and ports.exists():
        bastion, target = (int(p) for p in ports.read_text().split())
        return bastion, target
    if HIDDEN_NETNS not in run(["ip", "netns", "list"]).stdout.split():
        run(["ip", "netns", "add", HIDDEN_NETNS])
    run(["ip", "-n", HIDDEN_NETNS, "link", "set", "lo", "up"])
    if not HIDDEN_COMMAND_LOG.exists():
        HIDDEN_COMMAND_LOG.touch()
    shutil.chown(HIDDEN_COMMAND_LOG, LAB_USER)
    target = free_port()  # free here too, so nothing in the root namespace answers on it
    config = sshd_config("sshd-hidden", target, HIDDEN_COMMAND_LOG, "AllowTcpForwarding no\n")
    run(["ip", "netns", "exec", HIDDEN_NETNS, "/usr/sbin/sshd", "-f", str(config), "-E", str(RUN / "sshd-hidden.log")])
    wait_for(lambda: pid_alive(RUN / "sshd-hidden.pid") is not None, "the hidden sshd")
    bastion = free_port()
    bastion_config = sshd_config("sshd-bastion-inetd", bastion, COMMAND_LOG,
                                 f"AllowTcpForwarding yes\nPermitOpen 127.0.0.1:{target}\nLogLevel DEBUG1\n")
    sshd = ["ip", "netns", "exec", HIDDEN_NETNS, "/usr/sbin/sshd", "-i", "-f", str(bastion_config),
            "-E", str(RUN / "sshd-bastion.log")]
    listener = f"""
import signal, socket, subprocess
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", {bastion}))
server.listen(16)
while True:
    conn, _ = server.accept()
    subprocess.Popen({sshd!r}, stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL)
    conn.close()
"""
    start_daemon([sys.executable, "-c", listener], RUN / "sshd-bastion.pid", RUN / "sshd-bastion-listener.log")
    wait_for(lambda: listening(bastion), "the bastion")
    ports.write_text(f"{bastion} {target}\n")
    log(f"bastion on 127.0.0.1:{bastion}, hidden host on 127.0.0.1:{target} in netns {HIDDEN_NETNS}")
    return bastion, target


def stop_hidden() -> None:
    """Stop the bastion and the hidden host, and remove their namespace."""
    stop_pid(RUN / "sshd-bastion.pid", "bastion")
    stop_pid(RUN / "sshd-hidden.pid", "hidden sshd")
    (RUN / "hidden.ports").unlink(missing_ok=True)
    if HIDDEN_NETNS in run(["ip", "netns", "list"], check=False).stdout.split():
        run(["ip", "netns", "del", HIDDEN_NETNS], check=False)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "status":
        return status()
    elif command == "stacks-up":
        stacks_up()
    elif command == "stacks-down":
        stacks_down()
    else:
        print(__doc__)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
