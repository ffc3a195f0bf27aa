#!/usr/bin/env bash
# The prepared GPU check (#13), for a machine with an NVIDIA GPU and the CUDA toolkit (nvcc,
# cmake, ninja) but none of our Debian libraries. In about 4 minutes on an H100/H200:
#  1. builds the CUDA backend standalone (reference-impl/runtimes/cuda, from the toolkit alone);
#  2. dense_cuda_check: the GPU against a CPU reference on seeded networks, every activation,
#     FP32/FP16/BF16, chunked batches, 8 threads on 2 streams;
#  3. the GPU tests of runtimes_test (GPU against CPU on the committed dense models);
#  4. dense_cuda_bench: throughput against batch size, and the network's FLOP/s against cuBLAS
#     GEMM alone on the same shapes (FP32 and FP16, 4 layers of 4096);
#  5. p99 at a fixed rate, and req/s at concurrency 64, with and without dynamic batching: the
#     modelserver with --device cuda on `make_fixtures --large` 4x4096 FP16.
# Steps 3 and 5 run our own programs from build/gpu-bundle.tar.xz (bench/gpu_bundle.sh makes it
# here; carry it), or from build/release when run on the development machine.
#
# Without a GPU (a dry run on a CPU-only machine) everything still builds and runs: the GPU
# programs report "skipped" with CUDA's reason, and step 5 runs on the CPU with a small model.
#
# Writes every figure to one file: $KH_GPU_CHECK_OUT (default reports/gpu/gpu_check.json).
# Exit status: 0 passed (or skipped without a GPU), 1 a check failed.
#
# Usage: bench/gpu_check.sh            (on the device machine: KH_GPU_CHECK_OUT=$OUT/gpu_check.json)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${KH_GPU_CHECK_OUT:-$root/reports/gpu/gpu_check.json}"
mkdir -p "$(dirname "$out")"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS
log() { printf '==> [%3ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
results="$work/results.jsonl"
: >"$results"
record() { printf '%s\n' "$1" >>"$results"; }   # one JSON object per line
failed=0
have_py=0
command -v python3 >/dev/null 2>&1 && [[ -z "${KH_NO_PYTHON:-}" ]] && have_py=1   # else raw JSON lines

gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu=1
  nvidia-smi -L >&2
fi
export PATH="$PATH:/usr/local/cuda/bin"
record "{\"step\": \"machine\", \"gpu\": $gpu, \"gpu_name\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)\", \"nvcc\": \"$(nvcc --version 2>/dev/null | tail -1)\", \"cpus\": $(nproc)}"

# 1. Build, standalone.
arch="${KH_CUDA_ARCHS:-$([[ $gpu == 1 ]] && echo native || echo 90)}"
log "building the CUDA backend standalone (CUDA architectures: $arch)"
build="$work/cuda-build"
configure() {
  cmake -S "$root/reference-impl/runtimes/cuda" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$1" >"$work/cmake.log" 2>&1
}
# "native" needs CMake 3.24 and a visible GPU; H100 and H200 are sm_90 either way.
if ! configure "$arch" && [[ "$arch" == native ]]; then
  log "configure with native architectures failed; retrying with 90"
  rm -rf "$build"
  arch=90
  configure "$arch"
fi
if [[ -f "$build/build.ninja" ]] && ninja -C "$build" >"$work/ninja.log" 2>&1; then
  record "{\"step\": \"build\", \"ok\": true, \"seconds\": $((SECONDS - started))}"
else
  cat "$work/cmake.log" "$work/ninja.log" >&2
  record '{"step": "build", "ok": false}'
  failed=1
fi

# 2. GPU against the CPU reference.
if [[ -x "$build/dense_cuda_check" ]]; then
  log "dense_cuda_check"
  "$build/dense_cuda_check" | tee "$work/check.txt" >&2
  rc=${PIPESTATUS[0]}
  outcome=$([[ $rc == 0 ]] && echo passed || { [[ $rc == 77 ]] && echo skipped || echo failed; })
  [[ $outcome == failed ]] && failed=1
  lines='[]'
  [[ $have_py == 1 ]] && lines="$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().splitlines()))' "$work/check.txt")"
  record "{\"step\": \"dense_cuda_check\", \"outcome\": \"$outcome\", \"lines\": $lines}"
fi

# Our programs: the bundle when carried, else this checkout's build.
bundle=""
if [[ -f "$root/build/gpu-bundle.tar.xz" ]]; then
  tar -C "$work" -xJf "$root/build/gpu-bundle.tar.xz" && bundle="$work/gpu-bundle"
  ms="$bundle/modelserver"; harness="$bundle/harness"; fixtures="$bundle/make_fixtures"; rtest="$bundle/runtimes_test"
elif [[ -x "$root/build/release/bin/modelserver" ]]; then
  b="$root/build/release"
  ms="$b/bin/modelserver"; harness="$b/bin/harness"; fixtures="$b/reference-impl/runtimes/make_fixtures"; rtest="$b/tests/runtimes/runtimes_test"
  # Prefer the plugin just built, as on the GPU machine.
  [[ -f "$build/libkh_dense_cuda.so" ]] && export KH_DENSE_CUDA_PLUGIN="$build/libkh_dense_cuda.so"
else
  ms=""
  log "no build/gpu-bundle.tar.xz and no build/release: steps 3 and 5 skipped (run bench/gpu_bundle.sh and carry its output)"
  record '{"step": "programs", "outcome": "skipped", "reason": "no build/gpu-bundle.tar.xz and no build/release"}'
fi

# 3. The GPU tests of our test suite.
if [[ -n "$ms" ]]; then
  log "runtimes_test, device tests"
  KH_SOURCE_DIR="$root" "$rtest" --gtest_filter='DenseDevice*' >"$work/gtest.txt" 2>&1
  rc=$?
  tail -n 12 "$work/gtest.txt" >&2
  [[ $rc != 0 ]] && failed=1
  skipped=$(grep -c '^\[  SKIPPED \] DenseDevice.*ms)$' "$work/gtest.txt")
  record "{\"step\": \"gtest_device\", \"ok\": $([[ $rc == 0 ]] && echo true || echo false), \"skipped\": $skipped}"
fi

# 4. Throughput against batch size; FLOP/s against cuBLAS GEMM alone.
if [[ -x "$build/dense_cuda_bench" ]]; then
  for precision in fp32 fp16; do
    log "dense_cuda_bench 4 x 4096 $precision"
    "$build/dense_cuda_bench" 4 4096 "$precision" 1,8,64,256,1024 >"$work/bench-$precision.jsonl" 2>"$work/bench.err"
    rc=$?
    if [[ $rc == 0 ]]; then
      while read -r line; do record "{\"step\": \"dense_cuda_bench\", \"result\": $line}"; echo "$line" >&2; done <"$work/bench-$precision.jsonl"
    elif [[ $rc == 77 ]]; then
      record "{\"step\": \"dense_cuda_bench\", \"outcome\": \"skipped\", \"reason\": \"$(head -1 "$work/bench-$precision.jsonl")\"}"
      break
    else
      cat "$work/bench.err" >&2
      failed=1
    fi
  done
fi

# 5. p99 at a fixed rate and req/s at concurrency 64, with and without dynamic batching.
if [[ -n "$ms" ]]; then
  if [[ $gpu == 1 ]]; then
    device=cuda; layers=4; width=4096; precision=fp16; rate=2000; seconds=12; workers=8
  else
    device=cpu; layers=2; width=256; precision=fp32; rate=200; seconds=3; workers=1
  fi
  "$fixtures" --large "$work/models" "$layers" "$width" >/dev/null
  model="$work/models/dense-mlp-${layers}x${width}-$precision"
  for mode in unbatched batched; do
    flags=(--device "$device" --workers "$workers")
    [[ $mode == batched ]] && flags+=(--max_batch_size 64 --max_queue_delay_microseconds 500)
    "$ms" --model_name m --model_dir "$model" --http_port 0 --grpc_port 0 --port_file "$work/ports.json" \
      "${flags[@]}" >"$work/ms-$mode.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 600); do grep -q -E "loaded and ready|failed to load" "$work/ms-$mode.log" && break; sleep 0.1; done
    if ! grep -q "loaded and ready" "$work/ms-$mode.log"; then
      cat "$work/ms-$mode.log" >&2
      record "{\"step\": \"latency\", \"mode\": \"$mode\", \"ok\": false}"
      failed=1
      kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
      continue
    fi
    port="$(sed -E 's/.*"http_port": ([0-9]+).*/\1/' "$work/ports.json")"
    for load in "--rate $rate" "-c 64"; do
      log "$mode, $device, $load"
      # shellcheck disable=SC2086  # $load is two words on purpose
      "$harness" load --model m --target "http://127.0.0.1:$port" --protocol v2-binary $load -d "${seconds}s" \
        --warmup 2s -o "$work/load.json" >"$work/load.txt" 2>&1 || { cat "$work/load.txt" >&2; failed=1; }
      grep -E "requests|latency" "$work/load.txt" >&2
      metrics="$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null || true)"
      if [[ $have_py == 0 ]]; then
        record "{\"step\": \"latency\", \"mode\": \"$mode\", \"device\": \"$device\", \"load\": \"$load\", \"run\": $(tr -d '\n' <"$work/load.json")}"
        continue
      fi
      python3 - "$work/load.json" "$mode" "$device" "$load" "$layers" "$width" "$precision" "$metrics" >>"$results" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
def sample(name):
    for line in sys.argv[8].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
b, r = sample("kh_modelserver_batch_requests_count"), sample("kh_modelserver_batch_requests_sum")
print(json.dumps({"step": "latency", "mode": sys.argv[2], "device": sys.argv[3], "load": sys.argv[4],
                  "model": f"{sys.argv[5]}x{sys.argv[6]} {sys.argv[7]}",
                  "req_per_s": run["summary"]["throughput"], "errors": run["summary"]["errors"],
                  "p50_ms": run["latency"]["p50_ms"], "p99_ms": run["latency"]["p99_ms"],
                  "mean_batch_requests": (r / b) if b else None}))
PY
    done
    kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
  done
fi

if [[ $have_py == 0 ]]; then
  cp "$results" "$out"
  log "wrote $out as JSON lines (no python3 here) ($([[ $failed == 0 ]] && echo passed || echo FAILED))"
  exit "$failed"
fi
python3 - "$results" "$out" "$failed" "$((SECONDS - started))" <<'PY'
import json, sys, datetime
steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
doc = {"schema": "kserve-harness/gpu-check/v1",
       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "passed": sys.argv[3] == "0", "seconds": int(sys.argv[4]), "steps": steps}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
PY
log "wrote $out ($([[ $failed == 0 ]] && echo passed || echo FAILED))"
exit "$failed"
