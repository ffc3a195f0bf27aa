#!/usr/bin/env bash
# Benchmark (not a test): req/s and latency of V2 iris inferences through queue-proxy (keep-alive
# pool to the user container, stats, no breaker or CC as given) against straight to the same
# modelserver, loaded by `harness load` closed loop in one run. Prints both and the ratios.
#
# Usage: bench/queueproxy_vs_direct.sh [duration=5s] [concurrency=16] [container_concurrency=0]
# KH_BENCH_BUILD_DIR=<dir> uses binaries already built there instead of building build/release.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-5s}"
concurrency="${2:-16}"
cc="${3:-0}"
if [[ -n "${KH_BENCH_BUILD_DIR:-}" ]]; then
  KH_BUILD_DIR="$KH_BENCH_BUILD_DIR"
else
  kh_build kh_modelserver_main kh_queueproxy_main kh_harness_main
fi

work="$(mktemp -d)"
ms_pid=""; qp_pid=""
cleanup() {
  [[ -n "$qp_pid" ]] && kill -TERM "$qp_pid" 2>/dev/null && wait "$qp_pid" 2>/dev/null || true
  [[ -n "$ms_pid" ]] && kill -TERM "$ms_pid" 2>/dev/null && wait "$ms_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
wait_file() { for _ in $(seq 1 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; return 1; }

"$KH_BUILD_DIR/bin/modelserver" --model_name xgboost-iris --model_dir "$KH_ROOT/reference-impl/models/xgboost-iris" \
  --http_port 0 --grpc_port 0 --port_file "$work/ms.json" >"$work/ms.log" 2>&1 &
ms_pid=$!
wait_file "$work/ms.json"
user_port="$(port_of "$work/ms.json" http_port)"
"$KH_BUILD_DIR/bin/queue-proxy" --user_port "$user_port" --http_port 0 --admin_port 0 \
  --container_concurrency "$cc" --drain_quiet_period_ms 0 --port_file "$work/qp.json" >"$work/qp.log" 2>&1 &
qp_pid=$!
wait_file "$work/qp.json"
qp_port="$(port_of "$work/qp.json" http_port)"
for _ in $(seq 1 200); do
  curl -sf -H 'K-Network-Probe: queue' "http://127.0.0.1:$qp_port/healthz" >/dev/null && break; sleep 0.05
done

load=("$KH_BUILD_DIR/bin/harness" load --model xgboost-iris --protocol v2 -c "$concurrency" -d "$duration" --warmup 1s -q)
"${load[@]}" --target "http://127.0.0.1:$user_port" -o "$work/direct.json" >/dev/null
"${load[@]}" --target "http://127.0.0.1:$qp_port" -o "$work/qp.json.out" >/dev/null
"${load[@]}" --target "http://127.0.0.1:$user_port" -o "$work/direct2.json" >/dev/null
python3 - "$work/direct.json" "$work/qp.json.out" "$work/direct2.json" <<'PY'
import json, sys
d, q, d2 = (json.load(open(p)) for p in sys.argv[1:4])
def fig(r):
    return r["summary"]["throughput"], r["service_time"]["p50_ms"], r["service_time"]["p99_ms"]
dr, dp50, dp99 = fig(d); qr, qp50, qp99 = fig(q); d2r, d2p50, d2p99 = fig(d2)
# Direct runs before and after the proxied one: their mean is the baseline (drift on a shared box).
br, bp50 = (dr + d2r) / 2, (dp50 + d2p50) / 2
print(f"direct     : {dr:9.0f} req/s  p50 {dp50:.3f} ms  p99 {dp99:.3f} ms")
print(f"queue-proxy: {qr:9.0f} req/s  p50 {qp50:.3f} ms  p99 {qp99:.3f} ms")
print(f"direct (2) : {d2r:9.0f} req/s  p50 {d2p50:.3f} ms  p99 {d2p99:.3f} ms")
print(f"queue-proxy/direct req/s = {qr/br:.2f}x, added p50 = {(qp50-bp50)*1000:.0f} us")
PY
