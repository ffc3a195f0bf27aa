#!/usr/bin/env bash
# Benchmark (not a test): dynamic batching against none, on the CPU, in one run. A dense MLP
# made by `make_fixtures --large` (default 4 layers of 1024, FP32, not committed) is served
# twice by the modelserver, one worker each: unbatched, and with --max_batch_size 64
# --max_queue_delay_microseconds 500. `harness load` drives each at concurrency 1, 16 and 64
# (closed loop, V2 REST, one row per request). Writes reports/batching/batching.{json,md} with
# req/s and p99 of both and their ratios.
#
# Usage: bench/batching.sh [duration_s=8] [layers=4] [width=1024]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-8}"
layers="${2:-4}"
width="${3:-1024}"
kh_build kh_modelserver_main kh_harness_main kh_make_fixtures

kh_bench_workdir
pids=()
stop_servers() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_servers; kh_bench_cleanup' EXIT

"$KH_BUILD_DIR/reference-impl/runtimes/make_fixtures" --large "$work/models" "$layers" "$width" >/dev/null
model_dir="$work/models/dense-mlp-${layers}x${width}-fp32"
out_dir="$KH_ROOT/reports/batching"
mkdir -p "$out_dir"
results="$work/results.jsonl"
: >"$results"

# serve NAME [modelserver flags...]: starts one server; sets $port.
serve() {
  local name="$1"
  shift
  "$KH_BUILD_DIR/bin/modelserver" --model_name m --model_dir "$model_dir" --http_port 0 \
    --grpc_port 0 --workers 1 --device cpu --port_file "$work/$name.ports" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 400); do grep -q "loaded and ready" "$work/$name.log" 2>/dev/null && break; sleep 0.05; done
  grep -q "loaded and ready" "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
  port="$(sed -E 's/.*"http_port": ([0-9]+).*/\1/' "$work/$name.ports")"
}

# Alternating servers per concurrency, so that both see the same machine state.
for c in 1 16 64; do
  for mode in unbatched batched; do
    if [[ "$mode" == batched ]]; then
      serve "$mode-$c" --max_batch_size 64 --max_queue_delay_microseconds 500
    else
      serve "$mode-$c"
    fi
    echo "== $mode, concurrency $c (${duration}s)" >&2
    "$KH_BUILD_DIR/bin/harness" load --model m --target "http://127.0.0.1:$port" -c "$c" \
      -d "${duration}s" --warmup 2s --label "$mode c=$c" -o "$work/$mode-$c.json" >"$work/$mode-$c.txt" 2>&1 \
      || { cat "$work/$mode-$c.txt" >&2; exit 1; }
    tail -n 6 "$work/$mode-$c.txt" >&2
    metrics="$(curl -s "http://127.0.0.1:$port/metrics")"
    python3 - "$work/$mode-$c.json" "$mode" "$c" "$metrics" >>"$results" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
metrics = sys.argv[4]
def sample(name):
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
batches, requests = sample("kh_modelserver_batch_requests_count"), sample("kh_modelserver_batch_requests_sum")
print(json.dumps({
    "mode": sys.argv[2], "concurrency": int(sys.argv[3]),
    "req_per_s": run["summary"]["throughput"], "errors": run["summary"]["errors"],
    "p50_ms": run["latency"]["p50_ms"], "p99_ms": run["latency"]["p99_ms"],
    "mean_batch": (requests / batches) if batches else None}))
PY
    stop_servers
  done
done

python3 - "$results" "$out_dir" "$layers" "$width" "$duration" <<'PY'
import json, os, platform, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
out, layers, width, duration = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
by = {(r["mode"], r["concurrency"]): r for r in rows}
table = []
for c in (1, 16, 64):
    u, b = by[("unbatched", c)], by[("batched", c)]
    table.append({"concurrency": c, "unbatched": u, "batched": b,
                  "throughput_ratio": b["req_per_s"] / u["req_per_s"],
                  "p99_ratio": b["p99_ms"] / u["p99_ms"]})
doc = {"schema": "kserve-harness/batching-bench/v1",
       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
       "model": f"dense MLP {layers} layers of {width}, FP32, CPU (OpenBLAS, one thread)",
       "batching": "--max_batch_size 64 --max_queue_delay_microseconds 500",
       "duration_s": float(duration), "rows": table}
json.dump(doc, open(os.path.join(out, "batching.json"), "w"), indent=2)
lines = [f"# Dynamic batching against none ({doc['date']})", "",
         f"{doc['model']}; one modelserver worker; `harness load` closed loop, V2 REST, one row per request, {duration} s per run; batching: `{doc['batching']}`.", "",
         "| concurrency | unbatched req/s | batched req/s | req/s ratio | unbatched p99 ms | batched p99 ms | p99 ratio | mean batch |",
         "|---|---|---|---|---|---|---|---|"]
for t in table:
    u, b = t["unbatched"], t["batched"]
    lines.append(f"| {t['concurrency']} | {u['req_per_s']:.0f} | {b['req_per_s']:.0f} | {t['throughput_ratio']:.2f}x | "
                 f"{u['p99_ms']:.2f} | {b['p99_ms']:.2f} | {t['p99_ratio']:.2f}x | {b['mean_batch'] or 0:.1f} |")
open(os.path.join(out, "batching.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
