#!/usr/bin/env bash
# Ingress throughput and latency against nginx as a reverse proxy to the same backend,
# measured with wrk in one run (Debian packages `nginx` or `nginx-light`, and `wrk`).
#
# The backend is an nginx answering a short text on $BACKEND_IP:18080 ($BACKEND_IP is
# added to `lo` for the run: the API refuses loopback endpoint addresses). In front
# of it, on this host:
#   - nginx as a reverse proxy (keep-alive upstream, X-Forwarded-For) on 127.0.0.1:18081;
#   - rk: one rk-server (--insecure-dev) and one rk-agent (process runtime, proxy off)
#     serving Ingress on 127.0.0.1:18082, its default backend a selector-less Service
#     whose Endpoints are the backend.
# wrk runs $SECONDS_ s against the backend directly, then each proxy, same settings.
#
#   cargo build --release -p rk-control-plane -p rk-node-agent --bins && sudo tests/ingress-bench.sh
#   SERVER=target/debug/rk-server AGENT=target/debug/rk-agent tests/ingress-bench.sh
set -euo pipefail
SERVER=${SERVER:-target/release/rk-server}
AGENT=${AGENT:-target/release/rk-agent}
SECONDS_=${SECONDS_:-15}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
BACKEND_IP=${BACKEND_IP:-10.203.0.1}
API=127.0.0.1:13379
for tool in nginx wrk curl ip; do
  command -v $tool >/dev/null || { echo "$tool is missing (apt-get install nginx-light wrk curl iproute2)" >&2; exit 1; }
done
for bin in "$SERVER" "$AGENT"; do
  [ -x "$bin" ] || { echo "$bin is missing: build it first" >&2; exit 1; }
done

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip addr del "$BACKEND_IP/32" dev lo 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip addr add "$BACKEND_IP/32" dev lo

cat >"$dir/backend.conf" <<EOF
worker_processes auto;
daemon off;
pid $dir/backend.pid;
error_log $dir/backend.err;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen $BACKEND_IP:18080; location / { return 200 "hello from the backend\n"; } }
}
EOF
cat >"$dir/proxy.conf" <<EOF
worker_processes auto;
daemon off;
pid $dir/proxy.pid;
error_log $dir/proxy.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server $BACKEND_IP:18080; keepalive 128; }
  server {
    listen 127.0.0.1:18081;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
nginx -p "$dir" -c "$dir/backend.conf" & pids+=($!)
nginx -p "$dir" -c "$dir/proxy.conf" & pids+=($!)

"$SERVER" --insecure-dev --data-dir "$dir/server" --listen $API --peer-listen 127.0.0.1:13380 \
  >"$dir/server.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf http://$API/readyz >/dev/null && break; sleep 0.1; done
"$AGENT" --server http://$API --name bench-node --runtime process --node-ip 127.0.0.1 \
  --listen 127.0.0.1:13250 --data-dir "$dir/agent" --proxy-mode off \
  --ingress-listen 127.0.0.1:18082 >"$dir/agent.log" 2>&1 & pids+=($!)

post() { curl -sf -X POST -H 'Content-Type: application/json' "http://$API$1" -d "$2" >/dev/null; }
post /api/v1/namespaces/default/services '{"metadata":{"name":"web"},"spec":{"ports":[{"port":80,"targetPort":18080}]}}'
post /api/v1/namespaces/default/endpoints \
  "{\"metadata\":{\"name\":\"web\"},\"subsets\":[{\"addresses\":[{\"ip\":\"$BACKEND_IP\"}],\"ports\":[{\"port\":18080}]}]}"
post /apis/networking.k8s.io/v1/namespaces/default/ingresses \
  '{"metadata":{"name":"web"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}'
for addr in "$BACKEND_IP:18080" 127.0.0.1:18081 127.0.0.1:18082; do
  for _ in $(seq 200); do
    [ "$(curl -s "http://$addr/" 2>/dev/null)" = "hello from the backend" ] && break
    sleep 0.1
  done
  [ "$(curl -s "http://$addr/")" = "hello from the backend" ] || { echo "$addr does not answer; logs in $dir" >&2; trap - EXIT; exit 1; }
done

echo "machine: $(nproc) cores, $(uname -r); nginx $(nginx -v 2>&1 | sed 's/.*\///'); rk: $SERVER, $AGENT"
echo "wrk -t$THREADS -c$CONNS -d${SECONDS_}s --latency"
for target in "backend directly|$BACKEND_IP:18080" "nginx proxy|127.0.0.1:18081" "rk ingress|127.0.0.1:18082"; do
  name=${target%%|*}
  addr=${target#*|}
  echo "== $name ($addr)"
  wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_}s" --latency "http://$addr/" | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
done
