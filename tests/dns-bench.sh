#!/usr/bin/env bash
# Cluster DNS throughput with dnsperf (Debian package `dnsperf`).
#
# Starts one rk-server with DNS on 127.0.0.1:$PORT, creates $SERVICES Services,
# then runs dnsperf for $SECONDS_ seconds over a query file of their A and SRV names
# (plus one NXDOMAIN name in ten) and prints dnsperf's report.
#
#   cargo build --release -p rk-control-plane --bins && tests/dns-bench.sh
#   BIN=target/debug/rk-server tests/dns-bench.sh     # another build
set -euo pipefail
BIN=${BIN:-target/release/rk-server}
PORT=${PORT:-1053}
SERVICES=${SERVICES:-200}
SECONDS_=${SECONDS_:-20}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
API=127.0.0.1:12379
command -v dnsperf >/dev/null || { echo "dnsperf is missing: apt-get install dnsperf" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: build it first" >&2; exit 1; }

dir=$(mktemp -d)
"$BIN" --insecure-dev --data-dir "$dir/data" --listen $API --peer-listen 127.0.0.1:12380 \
  --dns-listen 127.0.0.1:$PORT --dns-upstream none >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT

for _ in $(seq 100); do
  curl -sf http://$API/api/v1/namespaces/default >/dev/null && break
  sleep 0.1
done
for i in $(seq 1 "$SERVICES"); do
  curl -sf -X POST -H 'Content-Type: application/json' http://$API/api/v1/namespaces/default/services \
    -d "{\"metadata\":{\"name\":\"svc-$i\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}" >/dev/null
done
# Wait until the last one resolves.
for _ in $(seq 100); do
  [ -n "$(dig +short @127.0.0.1 -p $PORT svc-$SERVICES.default.svc.cluster.local A)" ] && break
  sleep 0.1
done

queries="$dir/queries"
for i in $(seq 1 "$SERVICES"); do
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local A"
  echo "svc-$i.default.svc.cluster.local AAAA"
  echo "_http._tcp.svc-$i.default.svc.cluster.local SRV"
  echo "svc-$i.default.svc.cluster.local SRV"
  echo "missing-$i.default.svc.cluster.local A"
done >"$queries"
echo "machine: $(nproc) cores, $(uname -r); rk-server: $BIN; $SERVICES Services"
dnsperf -s 127.0.0.1 -p $PORT -d "$queries" -l "$SECONDS_" -c "$CLIENTS" -q "$OUTSTANDING" -T 1
