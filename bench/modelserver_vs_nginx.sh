#!/usr/bin/env bash
# Benchmark (not a test): V2 REST iris inference req/s of the modelserver against nginx returning
# a static body of the same size, one worker each, both loaded by wrk on loopback with the same
# threads and connections. Prints both figures and the ratio (goal >= 0.5x).
#
# Usage: bench/modelserver_vs_nginx.sh [duration_s=10] [connections=32] [wrk_threads=1]
# Needs: wrk, nginx-light (the script installs them when run as root).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-10}"
connections="${2:-32}"
threads="${3:-1}"
kh_install_packages wrk nginx-light curl
kh_build kh_modelserver_main

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
body='{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}],"id":"bench"}'
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

# The modelserver, one HTTP worker.
"$KH_BUILD_DIR/bin/modelserver" --model_name iris --model_dir "$KH_ROOT/reference-impl/models/xgboost-iris" \
  --http_port 0 --grpc_port 0 --workers 1 --port_file "$work/ports.json" >"$work/ms.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do grep -q "loaded and ready" "$work/ms.log" 2>/dev/null && break; sleep 0.05; done
ms_port="$(sed -E 's/.*"http_port": ([0-9]+).*/\1/' "$work/ports.json")"
response="$(curl -s -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$ms_port/v2/models/iris/infer")"
echo "modelserver response (${#response} bytes): $response"

# nginx, one worker, answering the same path with a static body of the same size.
ng_port="$(kh_free_port)"
kh_start_nginx "$ng_port" "$response"
pids+=("$nginx_pid")

run_wrk() {
  wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$work/post.lua" "$1" | tee "$work/wrk.out" >&2
  awk '/Requests\/sec/ {print $2}' "$work/wrk.out"
}
echo "== modelserver: wrk -t$threads -c$connections -d${duration}s" >&2
ms_rps="$(run_wrk "http://127.0.0.1:$ms_port/v2/models/iris/infer")"
echo "== nginx static body of the same size" >&2
ng_rps="$(run_wrk "http://127.0.0.1:$ng_port/v2/models/iris/infer")"
ratio="$(awk -v a="$ms_rps" -v b="$ng_rps" 'BEGIN { printf "%.2f", a / b }')"
echo "modelserver V2 REST iris: $ms_rps req/s; nginx static: $ng_rps req/s; ratio $ratio x (goal >= 0.5)"
