#!/usr/bin/env bash
# Runs in kind-cluster/Dockerfile's build stage: copies the given executables from BIN_DIR,
# stripped, into OUT/bin and every shared library they load into OUT/lib, except glibc's own,
# which the runtime stage's base image (the same Debian image) provides. The same ldd walk as
# bench/gpu_bundle.sh, without the bundled loader.
#
# Usage: bundle.sh BIN_DIR OUT EXECUTABLE...
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 BIN_DIR OUT EXECUTABLE..." >&2
  exit 2
fi
bin_dir="$1"
out="$2"
shift 2
mkdir -p "$out/bin" "$out/lib"
for exe in "$@"; do
  strip -o "$out/bin/$exe" "$bin_dir/$exe"
done
for exe in "$@"; do
  ldd "$out/bin/$exe"
done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    # glibc (and its loader): from the runtime image, which must match the build image.
    ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnsl.so.* | libnss_*.so.*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
echo "bundled: $* and $(find "$out/lib" -type f | wc -l) libraries into $out"
