#!/usr/bin/env bash
# Benchmark (not a test): maximum req/s of `harness load` (closed loop) against wrk and h2load
# (HTTP/1.1 mode) on the same nginx static target, with equal threads and connections. Prints
# each and the ratios to wrk (goal: harness >= 1.1x wrk).
#
# Usage: bench/loadgen_vs_wrk.sh [duration_s=10] [connections=32] [threads=1]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
duration="${1:-10}"
connections="${2:-32}"
threads="${3:-1}"
kh_install_packages wrk nginx-light nghttp2-client curl
kh_build kh_harness_main

work="$(mktemp -d)"
nginx_pid=""
cleanup() { [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port="$(kh_free_port)"
kh_start_nginx "$port" '{"predictions":[1,1]}'
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
