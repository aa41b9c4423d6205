"""The naive way, for comparison only: testinfra's `host.docker(name)` for every property.

Each property is a new `docker inspect` over SSH: 4 checks x N modules = 4N round trips.
"""

from __future__ import annotations

import json
import os

import pytest

MODULES = json.loads(open(os.environ["BENCH_NAIVE_MODULES"]).read())
params = pytest.mark.parametrize("m", MODULES, ids=[m["name"] for m in MODULES])


@params
def test_exists(host, m):
    assert host.docker(m["container"]).id


@params
def test_labels(host, m):
    labels = host.docker(m["container"]).inspect()["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == m["project"]
    assert labels["com.docker.compose.service"] == m["service"]


@params
def test_state(host, m):
    assert host.docker(m["container"]).is_running


@params
def test_image(host, m):
    assert host.docker(m["container"]).inspect()["Config"]["Image"] == m["image"]
