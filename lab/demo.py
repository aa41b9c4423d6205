"""make demo: introduce one deliberate drift in the lab, run the suite, show what it found.

Exits 0 when the suite showed exactly the drift it was meant to show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import labctl

REPO = labctl.REPO
#: the example platform the lab runs (modules/ is the user's own, empty in a fresh clone)
EXAMPLE_MODULES = REPO / "examples" / "modules"
#: how the demo runs the suite on the example platform against the lab, as a user would type it
SETTINGS = {"DRIFT_MODULES_DIR": EXAMPLE_MODULES.relative_to(REPO),
            "DRIFT_INVENTORY": labctl.INVENTORY.relative_to(REPO)}
PREFIX = " ".join(f"{name}={value}" for name, value in SETTINGS.items())


def main() -> int:
    print("demo: someone bumped uptime-kuma to tag 2 on the host, outside the repo ...", flush=True)
    labctl.compose("up", "--detach", "uptime-kuma", extra_env={"UPTIME_KUMA_TAG": "2"})
    env = {**os.environ, **{name: str(REPO / value) for name, value in SETTINGS.items()}}
    command = [sys.executable, "-m", "pytest"]
    print(f"demo: running the suite on the example platform: {PREFIX} .venv/bin/python -m pytest\n", flush=True)
    status = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    latest = REPO / "reports" / "latest"
    plan = json.loads((latest / "plan.json").read_text())
    found = {(c["module"], c["code"]) for c in plan["changes"]}
    print(f"\ndemo: the suite exited {status} (1 = drift); artifacts of this run in reports/{latest.readlink()}/:")
    for name in ("plan.json", "report.json", "junit.xml", "index.html"):
        print(f"  reports/latest/{name}")
    print(f"demo: run it yourself, one module: {PREFIX} .venv/bin/python -m pytest -k honcho-redis")
    print("demo: `make lab-up` converges the lab back to the repo's baseline.")
    if status == 1 and found == {("uptime-kuma", "IMAGE_TAG_MISMATCH")}:
        print("demo: OK, the deliberate drift was shown.")
        return 0
    print(f"demo: FAILED, expected exit 1 with only uptime-kuma IMAGE_TAG_MISMATCH, got {sorted(found)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
