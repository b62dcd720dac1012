# One binary, one image, one cluster.  `make up` starts it, `make test` proves it.
# (`docker compose up --build` alone also works: both images build from their Dockerfiles.)
NODES   ?= 5
# Where compose publishes the Controller's dashboard: `make up DASHBOARD_PORT=9000`.
export DASHBOARD_PORT ?= 8080
export DASHBOARD_PUBLISH ?= 127.0.0.1
DURATION ?= 120
FUZZ_ITERS ?= 1000000
CARGO   ?= cargo
PYTHON  ?= python3
MUSL    := x86_64-unknown-linux-musl
BIN     := target/$(MUSL)/release/raft
WASM    := wasm32-unknown-unknown
# The playground is a crate of its own (playground/Cargo.toml); it builds into this target/.
PG       = --manifest-path playground/Cargo.toml
PG_PAGE := build/playground/playground.html
# Every Python script imports the toolkit (Controller/raftkit.py); the bench also the Docker harness,
# the swarm suite scripts/swarm.py. docker-compose 1.x is Python and runs with this PYTHONPATH too:
# no module in these folders may be named like one of its packages (so no scripts/compose.py).
export PYTHONPATH := $(CURDIR)/Controller:$(CURDIR)/tests/docker:$(CURDIR)/scripts

.PHONY: help build musl quick test check ruff unit python-test conformance docker-test local sim \
        up down logs status image base-images offline-images bench bench-auth bench-test chaos flood fuzz net-tools browser-tools \
        swarm-up swarm-down swarm-test multihost-test multihost-clean sim-adversary playground playground-test playground-fresh unit-fast

help:
	@echo "make up        build both images (compose), start a $(NODES)-node cluster, show the leader;"
	@echo "               the live dashboard: http://127.0.0.1:$(DASHBOARD_PORT)/"
	@echo "make quick     the inner loop, no Docker (about a minute): format, lints, unit, rules,"
	@echo "               simulator, Python units (make test adds processes, flood, browser, Docker)"
	@echo "make test      every test: format, lints, unit, loopback processes, Python controller, Docker"
	@echo "make local     $(NODES) nodes as plain processes on loopback (no Docker)"
	@echo "make sim       a long simulation campaign: make sim SEEDS=1000000 [START=0] [THREADS=n]"
	@echo "make sim-adversary  SEEDS=100000 runs of a replaying, forging adversary against a keyed cluster"
	@echo "make down | logs | status | image | bench | bench-auth (what a cluster key costs)"
	@echo "  bench        docs/BENCHMARKS.md whole: failovers, etcd 3.4 beside this project, containers"
	@echo "  up NODES=7   any cluster size (compose file in build/docker-compose.7.yml); down removes any size"
	@echo "  image        $(IMAGE) (FROM scratch + the static musl binary, < 1 MiB) and $(CONTROLLER_IMAGE)"
	@echo "  base-images  the Dockerfiles' FROM images: present, else pulled, else built here (offline-images)"
	@echo "  status       leader table as seen by every node (docker exec Node1 /raft status)"
	@echo "  docker-test  cluster scenarios in throwaway projects; skipped without a Docker daemon"
	@echo "make swarm-up  the cluster as a Docker Swarm stack (STACK=$(STACK)); swarm-down removes it"
	@echo "  swarm-test   a throwaway stack on this host's swarm (or a single-node one made for the test)"
	@echo "make multihost-test  a three-host swarm emulated in namespaces: host cut off, daemon stopped (root)"
	@echo "make chaos     random faults against a throwaway cluster for DURATION=$(DURATION) s, safety checked from the logs"
	@echo "make flood     100,000 hostile datagrams at one node of a loopback cluster (part of make test)"
	@echo "make fuzz      FUZZ_ITERS=$(FUZZ_ITERS) random inputs through the decoder and classifier"
	@echo "make offline-images  local stand-ins for the base images, no registry needed (REBUILD=1: again)"
	@echo "make playground  the browser playground, one file: $(PG_PAGE) (UPDATE=1: also the committed"
	@echo "               Controller/playground.html); playground-test runs its browser tests (docs/PLAYGROUND.md)"
	@echo "make build | musl | check | unit | python-test | conformance | bench-test | net-tools   the pieces of the above"
	@echo "  check        cargo fmt, clippy and ruff (Python lint, ruff.toml; installed from PyPI when missing)"
	@echo "  details: docs/CLUSTER.md, docs/SIMULATION.md, docs/BENCHMARKS.md"

# ---- build -------------------------------------------------------------------
# The binary the controller's tests run: release, or checked in `make quick`.
RAFT_PROFILE ?= release
build:
	$(CARGO) build --profile $(RAFT_PROFILE) --bin raft

# The static binary on the host (the benchmark runs it; the image compiles its own in
# Node/Dockerfile's builder stage); adds the musl target when it is missing.
musl:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL)
	$(CARGO) build --release --target $(MUSL)

# ---- tests -------------------------------------------------------------------
test: check unit python-test conformance bench-test flood playground-test docker-test

# The inner loop: everything but Docker, the flood and the fuzzer's long run; and whether the
# committed playground page is still a fresh build (any change to the library changes its wasm).
# The controller's tests run the binary of the profile the unit tests just built (no release build).
quick: check unit-fast
	@$(MAKE) --no-print-directory python-test bench-test playground-fresh RAFT_PROFILE=checked

# `make unit` but the loopback processes (tests/loopback.rs, which `make test` runs).
unit-fast:
	$(CARGO) test --profile checked --lib --test raft_rules --test sim --test json_properties --test fuzz

playground-fresh: playground
	$(PYTHON) tests/playground.py --committed

check: ruff
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) fmt $(PG) -- --check
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) clippy $(PG) --all-targets -- -D warnings
	$(PYTHON) -m ruff check --no-cache .

# The Python linter (rules in ruff.toml), from PyPI when missing; pinned so that a new release
# cannot fail `make check` on code that did not change.
RUFF_VERSION ?= 0.17.6
ruff:
	@$(PYTHON) -m ruff --version 2>/dev/null | grep -qx "ruff $(RUFF_VERSION)" || \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check "ruff==$(RUFF_VERSION)"

unit:
	$(CARGO) test --profile checked
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) test $(PG)

python-test: build
	RAFT_BIN=$(CURDIR)/target/$(RAFT_PROFILE)/raft $(PYTHON) -m unittest discover -s Controller -p 'test_*.py' -v

# The course-style controller scripts (Controller/conformance/) against 5 loopback processes.
conformance: build
	RAFT_BIN=$(CURDIR)/target/release/raft $(PYTHON) tests/conformance.py -v

# Skips (exit 0) when no Docker daemon answers, unless CI=true; see tests/docker/run.py.
# Then the network scenarios (tc in the containers' namespaces), 25 s of chaos, and the course's
# own flow (a fresh copy of the tree, `docker-compose up --build`, the Controller's scripts).
docker-test:
	$(PYTHON) -m unittest discover -s tests/docker -p 'test_*.py'
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image net-tools browser-tools; fi
	$(PYTHON) tests/docker/run.py
	$(PYTHON) tests/docker/keyed.py
	$(PYTHON) tests/docker/network.py
	$(PYTHON) tests/docker/chaos.py --duration 25 --nodes 5
	$(PYTHON) tests/docker/course.py
	$(PYTHON) tests/docker/stack.py
	$(PYTHON) tests/docker/dashboard.py
	@$(MAKE) --no-print-directory multihost-test

# Random faults for DURATION seconds; the node logs stay in build/chaos/.
chaos:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image net-tools; fi
	$(PYTHON) tests/docker/chaos.py --duration $(DURATION) --nodes $(NODES) --timeline docs/chaos-timeline.svg

# ---- the playground ------------------------------------------------------------
# The core and the simulator's world compiled to wasm and embedded in one HTML file (docs/
# PLAYGROUND.md). Adds the wasm target when it is missing; where it cannot be added, says so in
# one line and builds nothing (the playground tests then fail under CI=true). Paths are remapped
# so the module does not depend on where the tree is. UPDATE=1 also writes the committed copy,
# Controller/playground.html (the dashboard serves it at /playground; a test keeps it equal to a
# fresh build).
# The wasm is built through a symlink of a fixed name to this tree: cargo's and rustc's view of
# the paths (symbol hashes, file names in panic locations) is then the same whichever directory
# the checkout is in, so the committed page can be compared byte for byte. A lock keeps two
# checkouts from building through it at once; the link is removed afterwards.
PG_ROOT := /tmp/raft-playground-root
playground:
	@if ! rustup target list --installed 2>/dev/null | grep -qx $(WASM) && \
	    ! rustup target add $(WASM) >/dev/null 2>&1; then \
	  rm -f $(PG_PAGE); \
	  echo "playground: the $(WASM) target is missing and rustup cannot add it: the page was not built"; \
	  exit 0; fi; \
	set -e; \
	flock $(PG_ROOT).lock sh -c 'trap "rm -f $(PG_ROOT)" EXIT; ln -sfn "$(CURDIR)" $(PG_ROOT); \
	  cd $(PG_ROOT) && CARGO_TARGET_DIR="$(CURDIR)/target" RUSTFLAGS="--remap-path-prefix=$(PG_ROOT)=raft" \
	  $(CARGO) build --manifest-path $(PG_ROOT)/playground/Cargo.toml --release --lib --target $(WASM)'; \
	$(PYTHON) playground/build.py target/$(WASM)/release/playground.wasm $(PG_PAGE) \
	  --rustc "$$(rustc --version)" $(if $(filter 1,$(UPDATE)),--commit)

# The page from file:// in headless Chromium: a leader, a failover, PreVote on a rejoin, every
# scenario file, an exported session replayed natively, the same traces as the native build,
# screenshots in build/playground/.
playground-test: playground browser-tools
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) build $(PG) --release --example native
	$(PYTHON) tests/playground.py

# Headless Chromium and its WebDriver for the dashboard's browser test (Debian's packages).
browser-tools:
	@(command -v chromium >/dev/null && command -v chromedriver >/dev/null) || \
	  (apt-get update && apt-get install -y chromium chromium-driver)

# tc (iproute2) and nsenter for the link faults; a fresh machine may lack them.
net-tools:
	@command -v tc >/dev/null || (apt-get update && apt-get install -y iproute2)
	@command -v nsenter >/dev/null || (apt-get update && apt-get install -y util-linux)

# Five loopback processes, 100,000 malformed/oversized/forged datagrams at one of them; the
# checked build, so an overflow or a broken invariant kills the node instead of passing unseen.
flood:
	$(CARGO) build --profile checked
	$(PYTHON) tests/flood.py --bin target/checked/raft
	$(PYTHON) tests/flood.py --bin target/checked/raft --key

# The decoder and classifier on FUZZ_ITERS random inputs (an ignored test, optimised build).
fuzz:
	FUZZ_ITERS=$(FUZZ_ITERS) $(CARGO) test --profile checked --test fuzz -- --ignored --nocapture

# ---- simulation --------------------------------------------------------------
# A long deterministic-simulation campaign: `make sim SEEDS=1000000 START=0`. Cluster sizes mix
# 5, 7 and 9 unless SIM_NODES is set (4 and 6 too); SIM_CAMPAIGN=stops runs the planned-stop
# campaign (sizes 4, 5, 6, 7, 9). THREADS defaults to every core. A failing seed prints its
# replay command. `make unit` already runs 10,000 seeds. Same profile as `make unit`: the core's
# own debug assertions stay on.
SEEDS   ?= 100000
START   ?= 0
sim:
	SIM_SEEDS=$(SEEDS) SIM_START=$(START) $(if $(THREADS),SIM_THREADS=$(THREADS)) \
	  $(CARGO) test --profile checked --test sim campaign_long -- --ignored --nocapture

# The adversary of tests/sim/adversary.rs against a keyed cluster, SEEDS runs (default 100,000;
# `make unit` runs 1,000): no injected datagram may reach a core, and crash-free runs must be
# identical step for step to the same seed without the adversary. The checked profile (debug
# assertions, overflow checks) at opt-level 3, in its own target folder: SHA-256 at the size-
# optimised level of the image would double the time.
sim-adversary:
	CARGO_PROFILE_CHECKED_OPT_LEVEL=3 CARGO_TARGET_DIR=target/sim-fast \
	SIM_SEEDS=$(SEEDS) SIM_START=$(START) $(if $(THREADS),SIM_THREADS=$(THREADS)) \
	  $(CARGO) test --profile checked --test sim adversary_long -- --ignored --nocapture

# ---- run ---------------------------------------------------------------------
local: build
	$(PYTHON) scripts/local.py $(NODES)

# ---- docker ------------------------------------------------------------------
# `docker compose` (v2) when it exists, else docker-compose 1.x.  One cluster at a time
# (containers Node1..NodeN and Controller), always under the project name compose itself gives
# the root docker-compose.yml, so plain `docker compose logs` etc. work there too.
COMPOSE   = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
IMAGE    ?= raft-node:latest
CONTROLLER_IMAGE ?= raft-controller:latest
PROJECT  ?= $(shell basename "$(CURDIR)" | tr A-Z a-z | tr -cd 'a-z0-9_-')
CFILE    := $(if $(filter 5,$(NODES)),docker-compose.yml,build/docker-compose.$(NODES).yml)
# The committed 5-node file is used as it is (a test keeps it equal to the generator's output),
# so edits to it, such as a course controller in place of ours, survive `make up`.
GENERATE  = $(if $(filter 5,$(NODES)),true,mkdir -p build && $(PYTHON) scripts/compose_file.py --nodes $(NODES) --image $(IMAGE) -o $(CFILE))
# Ask the cluster through Node1's container: it has the binary and PEERS whatever the controller is.
STATUS    = docker exec Node1 /raft status

# The base images the Dockerfiles' FROM lines name. Without a registry (no pull), a local
# stand-in is built under the same name, once (scripts/base_images.py says so in one line).
base-images:
	@$(PYTHON) scripts/base_images.py

offline-images:
	@$(PYTHON) scripts/base_images.py --offline $(if $(REBUILD),--rebuild)

# The images the Docker suites run (compose builds the same two from the same Dockerfiles).
# The node's builder stage compiles the binary: no host toolchain, layers cached.
image: base-images
	docker build -q -f Node/Dockerfile -t $(IMAGE) .
	docker build -q -t $(CONTROLLER_IMAGE) Controller
	@docker image ls --format 'image {{.Repository}}:{{.Tag}} {{.Size}}' $(IMAGE)
	@docker image ls --format 'image {{.Repository}}:{{.Tag}} {{.Size}}' $(CONTROLLER_IMAGE)

# Build both images through compose, start detached, then wait (at most 20 s) until every
# node names the same leader.
up: base-images
	@$(GENERATE)
	$(COMPOSE) -p $(PROJECT) -f $(CFILE) up -d --build
	@for i in $$(seq 40); do $(STATUS) >/dev/null 2>&1 && break; sleep 0.5; done
	$(STATUS)
	@echo "dashboard: http://$(DASHBOARD_PUBLISH):$(DASHBOARD_PORT)/"

# Containers, network and volumes (the sweep also catches those of another cluster size).
down:
	@$(GENERATE)
	$(COMPOSE) -p $(PROJECT) -f $(CFILE) down -v --remove-orphans
	@docker volume ls -q --filter label=com.docker.compose.project=$(PROJECT) | xargs -r docker volume rm

logs:
	@$(GENERATE)
	$(COMPOSE) -p $(PROJECT) -f $(CFILE) logs --tail=100

status:
	$(STATUS)

# ---- swarm -------------------------------------------------------------------
# A stack on the swarm this host manages (a single-node one on loopback is made when there is
# none). No registry: every host of the swarm needs the image already (see README).
STACK    ?= raft
SFILE    := $(if $(filter 5,$(NODES)),docker-stack.yml,build/docker-stack.$(NODES).yml)
SGENERATE = $(if $(filter 5,$(NODES)),true,mkdir -p build && $(PYTHON) scripts/compose_file.py --swarm --nodes $(NODES) --image $(IMAGE) -o $(SFILE))

swarm-up: image
	@$(SGENERATE)
	$(PYTHON) scripts/swarm.py up --stack $(STACK) --file $(SFILE) --nodes $(NODES)

swarm-down:
	$(PYTHON) scripts/swarm.py down --stack $(STACK)

swarm-test:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	RAFT_IMAGE=$(IMAGE) $(PYTHON) tests/docker/stack.py

# Three extra dockerd's in network namespaces of their own form a swarm, the stack is deployed
# across them with swarm-up, and hosts are cut off and stopped (tests/docker/multihost.py; root).
# The node image is built here, tagged $(MH_IMAGE) so that other builds of $(IMAGE) do not change
# what is tested, and saved to a file the test loads into its own daemons. Skipped where the
# machine lacks what it needs, failed under CI=true. multihost-clean removes what a killed run left.
MH_IMAGE ?= raft-node:multihost
MH_TAR   := build/multihost/node-image.tar
multihost-test:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory base-images net-tools; fi
	@if docker info >/dev/null 2>&1; then mkdir -p build/multihost \
	  && docker build -q -f Node/Dockerfile -t $(MH_IMAGE) . && docker save -o $(MH_TAR) $(MH_IMAGE); \
	  else rm -f $(MH_TAR); fi
	$(PYTHON) tests/docker/multihost.py --image-tar $(MH_TAR) $(if $(RUNS),--runs $(RUNS))

multihost-clean:
	$(PYTHON) tests/docker/multihost.py --cleanup

# ---- benchmarks ----------------------------------------------------------------
# Writes docs/BENCHMARKS.md whole (with failover.svg and timeline.svg) and every measured value
# to build/bench/bench.json: local failovers, etcd 3.4 beside this project in the same run (Debian's
# etcd-server and strace are installed when missing), the containers and a Swarm rolling update
# (under the Docker lock, BENCH_DOCKER_LOCK). About 45 minutes; BENCH_QUICK=1: a smoke run of a
# minute or two into build/bench; BENCH_TRIALS=N, BENCH_ONLY=..., BENCH_BIN=... (bench/bench.py).
# `python3 bench/report.py` renders the report again from the JSON without measuring.
bench: build musl
	$(PYTHON) bench/bench.py

# Failover p50/p99 (TRIALS of SHUTDOWN and of kill -9, default 100), idle CPU and memory, with and
# without CLUSTER_KEY, on five local processes (about 8 minutes).
TRIALS ?= 100
bench-auth: build
	$(PYTHON) bench/auth_cost.py --trials $(TRIALS)

bench-test:
	$(PYTHON) -m unittest discover -s bench -v
