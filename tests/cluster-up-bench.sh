#!/usr/bin/env bash
# Times `rkctl cluster up --replicas 3 --nodes 3 --wait` (process driver, or
# DRIVER=docker) from the command's start to its exit, which is when every node is
# Ready, then `cluster down`; RUNS times (default 10), in a temporary state
# directory and kubeconfig. With DRIVER=docker, run one `up` first if the image
# rk-cluster:local may be missing or stale (its build is not what is measured).
# Prints each run and the min / median / max.
#
#   cargo build --release --workspace --bins
#   RK_BIN_DIR=target/release tests/cluster-up-bench.sh
#
# RK_BIN_DIR (default target/release) must hold rkctl, rk-server and rk-agent.
set -euo pipefail

bin=${RK_BIN_DIR:-target/release}
runs=${RUNS:-10}
replicas=${REPLICAS:-3}
nodes=${NODES:-3}
driver=${DRIVER:-process}
for b in rkctl rk-server rk-agent; do
  [[ -x "$bin/$b" ]] || { echo "error: $bin/$b is missing; build with cargo build --release --workspace --bins or set RK_BIN_DIR" >&2; exit 1; }
done

work=$(mktemp -d)
export RK_STATE_DIR="$work/state" KUBECONFIG="$work/kubeconfig" RK_BIN_DIR="$bin"
cleanup() { "$bin/rkctl" cluster down --name bench >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

now() { date +%s.%N; }
ups=()
for i in $(seq "$runs"); do
  t0=$(now)
  if ! "$bin/rkctl" cluster up --name bench --driver "$driver" --replicas "$replicas" --nodes "$nodes" --wait 60s >"$work/up.out" 2>&1; then
    cat "$work/up.out" >&2
    exit 1
  fi
  t1=$(now)
  "$bin/rkctl" cluster down --name bench >/dev/null 2>&1
  t2=$(now)
  up=$(echo "$t1 - $t0" | bc -l)
  down=$(echo "$t2 - $t1" | bc -l)
  printf 'run %2d: up to all %d nodes Ready %.3f s, down %.3f s\n' "$i" "$nodes" "$up" "$down"
  ups+=("$up")
done
sorted=($(printf '%s\n' "${ups[@]}" | sort -n))
n=${#sorted[@]}
printf 'cluster up (%s driver, %d replicas, %d nodes, --wait): min %.3f s, median %.3f s, max %.3f s over %d runs\n' \
  "$driver" "$replicas" "$nodes" "${sorted[0]}" "${sorted[$((n / 2))]}" "${sorted[$((n - 1))]}" "$n"
