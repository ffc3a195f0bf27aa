#!/usr/bin/env bash
# Benchmark (not a test): req/s and latency of V1 iris predictions along refstack's path, loaded
# by `harness load` closed loop in one run: straight to the modelserver, through the pod's
# queue-proxy, and the full path (ingress with the activator in the path + queue-proxy).
# Prints each and the ratios to direct.
#
# Usage: bench/ingress_vs_direct.sh [duration=5s] [concurrency=16]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-5s}"
concurrency="${2:-16}"
kh_build kh_refstack_main kh_harness_main

kh_bench_workdir
kh_start_refstack
(cd "$KH_ROOT" && "${rs[@]}" apply -f reference-impl/manifests/xgboost-iris.yaml)
for _ in $(seq 1 200); do "${rs[@]}" get isvc xgboost-iris | grep -q ' True ' && break; sleep 0.05; done
# The pod's traffic port is its queue-proxy; the model server's own port is its --http_port.
pod_port="$("${rs[@]}" events | grep -o 'ready on port [0-9]*' | tail -1 | awk '{print $4}')"
user_port="$(grep -ho -- '--http_port=[0-9]*' /proc/[0-9]*/cmdline 2>/dev/null | tr -d '\0' | grep -v '{{' | tail -1 | cut -d= -f2 || true)"
[[ -z "$user_port" ]] && user_port="$(tr '\0' ' ' < /proc/$(pgrep -n -f 'modelserver --model_name=xgboost-iris')/cmdline | grep -o -- '--http_port=[0-9]*' | cut -d= -f2)"
load=("$KH_BUILD_DIR/bin/harness" load --model xgboost-iris --protocol v1 -c "$concurrency" -d "$duration" --warmup 1s -q)
"${load[@]}" --target "http://127.0.0.1:$user_port" -o "$work/direct.json" >/dev/null
"${load[@]}" --target "http://127.0.0.1:$pod_port" -o "$work/qp.json" >/dev/null
"${load[@]}" --target "http://127.0.0.1:$ingress" -H "Host: xgboost-iris-default.example.com" -o "$work/ingress.json" >/dev/null
python3 - "$work/direct.json" "$work/qp.json" "$work/ingress.json" <<'PY'
import json, sys
d, q, i = (json.load(open(p)) for p in sys.argv[1:4])
def fig(r):
    return r["summary"]["throughput"], r["service_time"]["p50_ms"], r["service_time"]["p99_ms"]
dr, dp50, dp99 = fig(d)
for name, r in (("direct to modelserver", d), ("via queue-proxy", q), ("full path (ingress)", i)):
    rr, p50, p99 = fig(r)
    print(f"{name:22s}: {rr:9.0f} req/s ({rr/dr:.2f}x)  p50 {p50:.3f} ms (+{(p50-dp50)*1000:.0f} us)  p99 {p99:.3f} ms")
PY
