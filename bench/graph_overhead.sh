#!/usr/bin/env bash
# Benchmark (not a test): what an InferenceGraph adds. V1 iris predictions loaded by
# `harness load` closed loop in one run, all through refstack's ingress: the ISVC called directly,
# a one-step Sequence, a three-step Sequence and an Ensemble of three (each graph is a router
# pod behind its queue-proxy, whose steps go back through the ingress to the ISVC). Prints
# req/s, p50 and p99 of each and the ratio to the direct call.
#
# Usage: bench/graph_overhead.sh [duration=5s] [concurrency=8]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-5s}"
concurrency="${2:-8}"
kh_build kh_refstack_main kh_harness_main

kh_bench_workdir
kh_start_refstack
cat > "$work/graphs.yaml" <<'YAML'
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: seq1}
spec:
  nodes:
    root:
      routerType: Sequence
      steps: [{serviceName: xgboost-iris}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: seq3}
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - {serviceName: xgboost-iris}
        - {serviceName: xgboost-iris, data: $request}
        - {serviceName: xgboost-iris, data: $request}
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: ens3}
spec:
  nodes:
    root:
      routerType: Ensemble
      steps:
        - {name: a, serviceName: xgboost-iris}
        - {name: b, serviceName: xgboost-iris}
        - {name: c, serviceName: xgboost-iris}
YAML
(cd "$KH_ROOT" && "${rs[@]}" apply -f reference-impl/manifests/xgboost-iris.yaml)
"${rs[@]}" apply -f "$work/graphs.yaml"
ready() { "${rs[@]}" get "$1" "$2" -o json 2>/dev/null | python3 -c '
import json, sys
o = json.load(sys.stdin)
sys.exit(0 if any(c.get("type") == "Ready" and c.get("status") == "True" for c in o.get("status", {}).get("conditions", [])) else 1)'; }
for _ in $(seq 1 400); do
  ready isvc xgboost-iris && ready ig seq1 && ready ig seq3 && ready ig ens3 && break
  sleep 0.05
done
# A graph answers every path, so the request comes from a file (no metadata to read first).
load=("$KH_BUILD_DIR/bin/harness" load --model xgboost-iris --protocol v1 --input "$KH_ROOT/scenarios/requests/iris-v1.json"
      -c "$concurrency" -d "$duration" --warmup 1s -q --target "http://127.0.0.1:$ingress")
"${load[@]}" -H "Host: xgboost-iris-default.example.com" -o "$work/direct.json" >/dev/null
for g in seq1 seq3 ens3; do
  "${load[@]}" -H "Host: $g-default.example.com" -o "$work/$g.json" >/dev/null
done
python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
runs = [("ISVC through the ingress", "direct"), ("one-step Sequence", "seq1"),
        ("three-step Sequence", "seq3"), ("Ensemble of three", "ens3")]
def fig(name):
    r = json.load(open(os.path.join(w, name + ".json")))
    return r["summary"]["throughput"], r["service_time"]["p50_ms"], r["service_time"]["p99_ms"]
dr, dp50, dp99 = fig("direct")
for label, name in runs:
    rr, p50, p99 = fig(name)
    print(f"{label:26s}: {rr:8.0f} req/s ({rr/dr:.2f}x)  p50 {p50:.3f} ms (+{(p50-dp50)*1000:.0f} us)  "
          f"p99 {p99:.3f} ms (+{(p99-dp99)*1000:.0f} us)")
PY
