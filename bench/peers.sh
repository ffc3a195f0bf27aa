#!/usr/bin/env bash
# Benchmark (not a test): our proxies, load generator, model server and cold start against real
# peers, in one run, medians of alternating runs, CPU per request from /proc. Prints markdown
# tables of the figures and ratios and writes them to reports/peers/peers.{json,md}. What each
# section measures: bench/peers.py's docstring.
#
# Usage: bench/peers.sh [peers.py options]   e.g. --duration 5 --reps 3 --sections hops,loaders
#   (sections: hops, loaders (with gRPC), modelserver, coldstart; all by default; about 15 minutes)
# Installs (as root): nginx, HAProxy, wrk and h2load from Debian; into a throwaway virtualenv from
# PyPI: KServe's server (kserve 0.21.0, xgboost) and Triton's perf_analyzer. perf_analyzer left
# PyPI's tritonclient wheels after 2.60, and those from 2.51 on need glibc 2.38 (Debian 12 has
# 2.36), so it comes from tritonclient 2.50.0, with the CUDA 12 runtime it links (PyPI
# nvidia-cuda-runtime-cu12; no GPU is used). KH_PEERS_VENV=DIR reuses a virtualenv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
kh_install_packages wrk nginx-light haproxy nghttp2-client libb64-0d curl python3-venv
if [[ -n "${KH_BENCH_BUILD_DIR:-}" ]]; then
  KH_BUILD_DIR="$KH_BENCH_BUILD_DIR"
else
  kh_build kh_modelserver_main kh_queueproxy_main kh_harness_main kh_refstack_main
fi

venv="${KH_PEERS_VENV:-}"
cleanup_venv=""
if [[ -z "$venv" ]]; then
  venv="$(mktemp -d)"
  cleanup_venv="$venv"
fi
trap '[[ -n "$cleanup_venv" ]] && rm -rf "$cleanup_venv"' EXIT
if [[ ! -x "$venv/kserve/bin/python" ]]; then
  kh_log "Installing kserve==0.21.0 and xgboost into $venv/kserve (minutes)"
  python3 -m venv "$venv/kserve"
  "$venv/kserve/bin/pip" install -q "kserve==0.21.0" xgboost
fi
if [[ ! -x "$venv/triton/bin/perf_analyzer" ]]; then
  kh_log "Installing perf_analyzer (tritonclient 2.50.0) into $venv/triton"
  python3 -m venv "$venv/triton"
  "$venv/triton/bin/pip" install -q "tritonclient[grpc]==2.50.0" nvidia-cuda-runtime-cu12
fi
pa_libs="$(dirname "$(find -L "$venv/triton" -name 'libcudart.so.12' | head -1)")"

python3 "$KH_ROOT/bench/peers.py" --root "$KH_ROOT" --build-dir "$KH_BUILD_DIR" --out "$KH_ROOT/reports/peers" \
  --perf-analyzer "$venv/triton/bin/perf_analyzer" --perf-analyzer-libs "$pa_libs" \
  --python "$venv/kserve/bin/python" "$@"
