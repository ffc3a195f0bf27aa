#!/usr/bin/env bash
# Benchmark (not a test): cold start of the xgboost iris model through refstack, scale from zero
# to the first byte, over N cycles (default 50): 10 InferenceServices with minReplicas 0 and a
# 6 s window go to zero, then each gets one request, one at a time, 0.3 s apart so that each cold
# start has the machine to itself (the last pod has finished starting); repeated N/10 rounds. Prints
# p50/p99/max of refstack's cold-start events (arrival -> first byte) and of the client's
# latency, and the median breakdown.
#
# Usage: bench/cold_start.sh [cycles=50]
# KH_COLD_START_JSON=FILE also writes the figures as JSON there (bench/peers.sh reads it);
# KH_BENCH_BUILD_DIR=DIR uses binaries already built there instead of building build/release.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cycles="${1:-50}"
if [[ -n "${KH_BENCH_BUILD_DIR:-}" ]]; then
  KH_BUILD_DIR="$KH_BENCH_BUILD_DIR"
else
  kh_build kh_refstack_main
fi
kh_bench_workdir
admin="$(kh_free_port)"; ingress="$(kh_free_port)"; grpc="$(kh_free_port)"
cat >"$work/config.yaml" <<YAML
autoscaler:
  scale-to-zero-grace-period: 1s
autoscalerTickSeconds: 1
drainQuietPeriodSeconds: 0.1
YAML
(cd "$KH_ROOT" && exec "$KH_BUILD_DIR/bin/refstack" up --config "$work/config.yaml" --state-dir "$work/state" \
  --admin-port "$admin" --ingress-port "$ingress" --grpc-port "$grpc" >"$work/refstack.log" 2>&1) &
pid=$!
rs=("$KH_BUILD_DIR/bin/refstack" --admin "127.0.0.1:$admin")
for _ in $(seq 1 100); do "${rs[@]}" get isvc >/dev/null 2>&1 && break; sleep 0.05; done
services=10
for i in $(seq 1 $services); do
  cat <<YAML
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: cold-$i
  annotations:
    autoscaling.knative.dev/window: "6s"
spec:
  predictor:
    minReplicas: 0
    model:
      modelFormat: {name: xgboost}
      storageUri: file://$KH_ROOT/reference-impl/models/xgboost-iris
YAML
done >"$work/services.yaml"
"${rs[@]}" apply -f "$work/services.yaml" >/dev/null
rounds=$(( (cycles + services - 1) / services ))
: >"$work/client.txt"
for round in $(seq 1 $rounds); do
  # Wait until every service is at zero pods.
  for _ in $(seq 1 300); do
    "${rs[@]}" get isvc -o wide | grep -qE '=[0-9]+/[1-9]' || break
    sleep 0.2
  done
  for i in $(seq 1 $services); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Host: cold-$i-default.example.com" \
      -d '{"instances":[[6.8,2.8,4.8,1.4]]}' "http://127.0.0.1:$ingress/v1/models/cold-$i:predict" >>"$work/client.txt"
    sleep 0.3
  done
  echo "round $round/$rounds done" >&2
done
"${rs[@]}" events | grep '"coldstart"' >"$work/cold.jsonl" || true
python3 - "$work/cold.jsonl" "$work/client.txt" "${KH_COLD_START_JSON:-}" <<'PY'
import json, sys, statistics
events = [json.loads(l) for l in open(sys.argv[1])]
client = sorted(float(x) * 1000 for x in open(sys.argv[2]) if x.strip())
def pct(xs, p):
    xs = sorted(xs); k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]
totals = [e["total_ms"] for e in events]
print(f"cold starts recorded: {len(totals)}")
print(f"refstack arrival->first byte: p50 {pct(totals,50):.1f} ms  p99 {pct(totals,99):.1f} ms  max {max(totals):.1f} ms")
print(f"client (curl) total:          p50 {pct(client,50):.1f} ms  p99 {pct(client,99):.1f} ms  max {max(client):.1f} ms")
breakdown = {}
for step in ["buffered_ms", "pod_spawned_ms", "process_started_ms", "model_loaded_ms", "ready_ms", "forwarded_ms", "first_byte_ms"]:
    vals = [e["breakdown"][step] for e in events if e["breakdown"].get(step) is not None]
    if vals:
        breakdown[step] = statistics.median(vals)
        print(f"  median {step:15s} {breakdown[step]:8.2f} ms")
if sys.argv[3]:
    json.dump({"count": len(totals), "p50_ms": pct(totals, 50), "p99_ms": pct(totals, 99), "max_ms": max(totals),
               "client_p50_ms": pct(client, 50), "client_p99_ms": pct(client, 99),
               "median_breakdown_ms": breakdown}, open(sys.argv[3], "w"), indent=2)
PY
