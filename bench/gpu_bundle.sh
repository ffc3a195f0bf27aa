#!/usr/bin/env bash
# Packs what bench/gpu_check.sh runs on a GPU machine that has the CUDA toolkit but none of our
# Debian libraries: modelserver, harness, make_fixtures, runtimes_test and the CUDA plugin,
# stripped, with every shared library they load (glibc and its loader included, so the host's
# glibc version does not matter) except CUDA's own (cuBLAS and the driver come from that
# machine). Writes build/gpu-bundle.tar.xz (carry it to the device machine); prints its size.
#
# Usage: bench/gpu_bundle.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
kh_build kh_modelserver_main kh_harness_main kh_make_fixtures runtimes_test kh_dense_cuda
plugin="$KH_BUILD_DIR/bin/libkh_dense_cuda.so"
[[ -f "$plugin" ]] || { echo "no CUDA plugin in $KH_BUILD_DIR/bin: configure with the CUDA toolkit installed" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
b="$stage/gpu-bundle"
mkdir -p "$b/bin" "$b/lib"
for exe in bin/modelserver bin/harness reference-impl/runtimes/make_fixtures tests/runtimes/runtimes_test; do
  strip -o "$b/bin/$(basename "$exe")" "$KH_BUILD_DIR/$exe"
done
strip -o "$b/lib/libkh_dense_cuda.so" "$plugin"
# Every library the programs and the plugin load, CUDA's excepted.
for f in "$b"/bin/* "$plugin"; do
  ldd "$f" | awk '/=> \// {print $3} /^\s*\/lib64\/ld-linux/ {print $1}'
done | sort -u | grep -Ev '/(libcublas|libcublasLt|libcuda|libcudart)\.' | while read -r lib; do
  cp -L "$lib" "$b/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$b/lib/"
# Each program runs through the bundled loader; CUDA's libraries come from the toolkit there.
for exe in modelserver harness make_fixtures runtimes_test; do
  cat >"$b/$exe" <<SH
#!/bin/sh
here="\$(cd "\$(dirname "\$0")" && pwd)"
export KH_DENSE_CUDA_PLUGIN="\${KH_DENSE_CUDA_PLUGIN:-\$here/lib/libkh_dense_cuda.so}"
cuda="\${CUDA_HOME:-/usr/local/cuda}"
exec "\$here/lib/ld-linux-x86-64.so.2" --library-path "\$here/lib:\$cuda/lib64:\$cuda/lib:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64" "\$here/bin/$exe" "\$@"
SH
  chmod +x "$b/$exe"
done
mkdir -p "$KH_ROOT/build"
tar -C "$stage" -cJf "$KH_ROOT/build/gpu-bundle.tar.xz" gpu-bundle
kh_log "build/gpu-bundle.tar.xz: $(du -h "$KH_ROOT/build/gpu-bundle.tar.xz" | cut -f1) ($(du -sh "$b" | cut -f1) unpacked)"
