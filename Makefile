# Everyday verbs. Each target installs what it needs on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
STACK ?= EcrFleetAuth

DIST := dist
# The Node.js package.json pins (npm ships it as a package): the CDK CLI and jsii run on it.
NODE_MAJOR := 22
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# The CDK CLI must never phone home, in every target. cdk.json turns off telemetry ("cli-telemetry":
# false in its context), notices and version reporting, but the check for a newer CLI version (a
# request to registry.npmjs.org, once a day, when stdout is a terminal) is turned off only by
# CDK_DISABLE_VERSION_CHECK in the environment (aws-cdk's lib/cli/display-version.js), so it is
# exported here, and the telemetry switch with it (lib/cli/telemetry/collect-telemetry.js: "1" or
# "true").
export CDK_DISABLE_CLI_TELEMETRY := 1
export CDK_DISABLE_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

CDK_FLAGS := --no-notices --no-version-reporting
SHELL_SOURCES = $(shell git ls-files '*.sh' .ci/run 2>/dev/null)
AGENT_SOURCES = $(shell git ls-files 'agent/*.py' 2>/dev/null)

.PHONY: help deps runtime-deps system-deps lint format test synth deploy diff dist props demo bench docs clean invoke

help:
	@echo "make test    - install everything, lint, run the whole test suite"
	@echo "make synth   - cdk synth -> cdk.out/<stack>.template.json, one per stack (offline)"
	@echo "make deploy  - cdk deploy with the context in cdk.json (-c overrides via CDK_CONTEXT)"
	@echo "make dist    - $(DIST)/: the wheel (the construct library), and for use without CDK the"
	@echo "              CloudFormation template with its assets and parameters, and the SSM document"
	@echo "make props   - write infra/props.py and the props reference from the settings table"
	@echo "make demo    - remediate a local simulated fleet end to end and print the reports"
	@echo "make bench   - benchmarks (not part of make test; BENCH=agent|runner|emulator|new_instances|organization;"
	@echo "              options after a name: BENCH=\"new_instances --seed 2 --instances 2000\", --help)"
	@echo "make docs    - build the documentation site into site/ (mkdocs build --strict; make test runs it too)"
	@echo "make lint    - ruff, mypy, shellcheck and vermin (make test runs it first)"
	@echo "make format  - ruff format + autofix"
	@echo "make deps    - install the development toolchain only (.venv, node_modules, Debian packages)"
	@echo "make diff    - cdk diff against the deployed stacks (CDK_CONTEXT as for deploy)"
	@echo "make invoke  - invoke the deployed runner: ACTION=check DRY_RUN=1 INSTANCES=i-... VIA=runner|state-machine"
	@echo "make clean   - remove what builds and tests leave (cdk.out, site, dist, caches)"

# What synth and deploy need: the CDK app's runtime requirements only.
$(VENV)/.runtime: requirements.txt constraints.txt pyproject.toml setup.cfg setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

# The development toolchain on top: tests, linters, emulators.
$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@node -e 'if (+process.versions.node.split(".")[0] < $(NODE_MAJOR)) { console.error("Node.js $(NODE_MAJOR)+ is needed (this is " + process.version + "): npm ci installs it on Linux x64/arm64; elsewhere put Node.js $(NODE_MAJOR)+ on PATH"); process.exit(1) }'
	touch $@

system-deps:
	@missing=$$(grep -v '^#' system-packages.txt | xargs -r -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages (install them as root): $$missing" >&2; \
	  fi; \
	fi

runtime-deps: $(VENV)/.runtime node_modules/.installed

deps: $(VENV)/.installed node_modules/.installed system-deps

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	shellcheck $(SHELL_SOURCES)
	$(BIN)/vermin --no-tips --violations --target=3.6- $(AGENT_SOURCES)

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# Offline by construction: without credentials the CLI looks up no account (no STS call).
OFFLINE := env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# One template per stack, named after the stack (stackName, -c regions=...: one per region): the
# old ones are removed first, so what is listed is what this synth wrote.
synth: runtime-deps
	rm -f cdk.out/*.template.json
	$(OFFLINE) $(CDK) synth $(CDK_FLAGS) --quiet $(CDK_CONTEXT)
	@shopt -s nullglob; templates=(cdk.out/*.template.json); \
	if [ $${#templates[@]} = 0 ]; then echo "cdk synth wrote no template into cdk.out/" >&2; exit 1; fi; \
	printf 'wrote %s\n' "$${templates[@]}"

deploy: runtime-deps
	$(CDK) deploy $(CDK_FLAGS) --all $(CDK_CONTEXT)

diff: runtime-deps
	$(CDK) diff $(CDK_FLAGS) --all $(CDK_CONTEXT)

# The templates first, with cdk.json's settings and CDK_CONTEXT's -c overrides as for synth: a bad
# setting stops here with synth's message, dist/ untouched. Then the wheel, built from the working
# tree (setup.py copies the runner's asset, the agent and the pins into it); build/ is setuptools'
# scratch space and the old wheels are removed, so no stale file can ship.
dist: runtime-deps
	$(OFFLINE) $(PY) -m tools.dist $(DIST) $(CDK_CONTEXT)
	rm -rf build $(DIST)/*.whl
	$(BIN)/pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir $(DIST) .
	rm -rf build

props: runtime-deps
	$(PY) -m tools.generate_props

demo: deps
	$(PY) -m demo.fleet_demo

bench: deps
	$(PY) -m bench $(BENCH)

# The strict build fails on a broken link or anchor, a page missing from the nav, an unknown
# generated part; tests/test_docs.py runs the same build in make test.
docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf cdk.out site $(DIST) build .pytest_cache .mypy_cache .ruff_cache

# make invoke ACTION=check DRY_RUN=1 INSTANCES=i-0123456789abcdef0 [VIA=runner|state-machine] (uses your AWS
# credentials; an organization-wide run goes through the stack's state machine when it has one).
# make exits 2 on any failure ("Error N" shows the tool's own status); scripts that want the
# tool's statuses (0-4, docs/operating/invoking.md) run: $(PY) -m tools.invoke_runner --help
invoke: $(VENV)/.installed
	$(PY) -m tools.invoke_runner --stack $(STACK) $(if $(ACTION),--action $(ACTION)) \
	  $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) $(if $(INSTANCES),--instances $(INSTANCES)) \
	  $(if $(REGION),--region $(REGION)) $(if $(VIA),--via $(VIA))
