#!/usr/bin/env bash
# Benchmark (not a test): maximum req/s of `harness load` (closed loop) against wrk and h2load
# (HTTP/1.1 mode) on the same nginx static target, with equal threads and connections. Prints
# each and the ratios to wrk (goal: harness >= 1.1x wrk).
#
# Usage: bench/loadgen_vs_wrk.sh [duration_s=10] [connections=32] [threads=1]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
duration="${1:-10}"
connections="${2:-32}"
threads="${3:-1}"
kh_install_packages wrk nginx-light nghttp2-client curl
kh_build kh_harness_main

work="$(mktemp -d)"
ngpid=""
cleanup() { [ -n "$ngpid" ] && kill -TERM "$ngpid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() {
  local p
  while true; do
    p=$(shuf -i 20000-60000 -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
port="$(free_port)"
cat >"$work/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$port; location / { default_type application/json; return 200 '{"predictions":[1,1]}'; } }
}
NGX
nginx -c "$work/nginx.conf" &
ngpid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
if ! curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "nginx did not start:" >&2
  cat "$work/nginx.err" >&2 || true
  exit 1
fi
url="http://127.0.0.1:$port/v1/models/m:predict"

wrk_rps="$(wrk -t"$threads" -c"$connections" -d"${duration}s" "$url" | awk '/Requests\/sec/ {print $2}')"
h2_rps="$(h2load --h1 -t"$threads" -c"$connections" -D "$duration" "$url" | awk '/^finished in/ {print $4}')"
kh_rps="$("$KH_BUILD_DIR/bin/harness" load --target "http://127.0.0.1:$port" --model m --input <(echo '{"instances":[[1,2,3,4]]}') \
  --protocol v1 -c "$connections" -t "$threads" -d "${duration}s" --warmup 1s -q -o "$work/run.json" >/dev/null; \
  sed -n 's/.*"throughput": \([0-9.]*\).*/\1/p' "$work/run.json" | head -1)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "nginx static target, $threads thread(s), $connections connections, ${duration}s:"
echo "  wrk            $wrk_rps req/s"
echo "  h2load --h1    $h2_rps req/s ($(ratio "$h2_rps" "$wrk_rps")x wrk)"
echo "  harness load   $kh_rps req/s ($(ratio "$kh_rps" "$wrk_rps")x wrk; goal >= 1.1)"
