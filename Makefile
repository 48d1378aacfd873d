# The commands a contributor needs. `make test` is what CI runs (through .ci/run).

CARGO ?= cargo

.PHONY: build test lint fmt run run3 bench clean fuzz-quick

TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

# The binaries, plus rk-server-failpoints: rk-server with the crash points the
# fault-injection tests arm (control-plane/src/failpoint.rs). It is built first and
# copied aside, because both builds write target/debug/rk-server.
build:
	$(CARGO) build -p rk-control-plane --bin rk-server --features failpoints
	cp $(TARGET_DIR)/debug/rk-server $(TARGET_DIR)/debug/rk-server-failpoints
	$(CARGO) build --workspace --bins

# Every test: unit tests, simulated-network consensus tests, and multi-process
# tests that start real rk-server replicas and use etcd-client and etcdctl.
test: build
	$(CARGO) nextest run --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p rk-control-plane --features failpoints --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# A single-replica cluster on 127.0.0.1:2379 (data in ./rk-1.data).
run:
	$(CARGO) run --release --bin rk-server -- --log-level info

# Three replicas on one machine (Ctrl-C stops all three).
run3:
	$(CARGO) build --release --bin rk-server
	trap 'kill 0' INT TERM; \
	for i in 1 2 3; do \
	  target/release/rk-server --id $$i --data-dir rk-$$i.data \
	    --listen 127.0.0.1:$$((2377 + 2 * $$i)) --peer-listen 127.0.0.1:$$((2378 + 2 * $$i)) \
	    --peers 1=127.0.0.1:2380,2=127.0.0.1:2382,3=127.0.0.1:2384 \
	    --encryption-key-file rk-secrets.key --pki-dir rk-pki --log-level info & \
	done; wait

# The store benchmark against a 3-member etcd cluster (see BENCHMARKS.md).
bench:
	$(CARGO) build --release -p rk-control-plane --bin rk-server
	$(CARGO) build --release -p rk-tests --bin store-bench
	RK_BIN_DIR=target/release target/release/store-bench

clean:
	$(CARGO) clean

# A short run of every fuzz target (libFuzzer via cargo-fuzz; needs RUSTC_BOOTSTRAP
# because the instrumentation flags are nightly-only). FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 20
fuzz-quick:
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd control-plane/fuzz && for t in decode patch raft_wire; do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
