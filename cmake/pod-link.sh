#!/usr/bin/env bash
# Link launcher (CMake RULE_LAUNCH_LINK) for the executables that run as pods: modelserver and
# queue-proxy. A cold start waits for these processes to start, and most of their start-up is
# the dynamic loader resolving gRPC, Abseil, protobuf and OpenBLAS (70 shared objects). This
# runs the link it is given with those libraries' static archives (Debian ships them) in place
# of the shared ones, in one --start-group so their order does not matter; a library without an
# archive, or not named below, stays shared. Every other target links as CMake says.
set -euo pipefail

static_ok() {
  case "$1" in
    libgrpc++|libgrpc|libgpr|libupb|libaddress_sorting|libcares|libre2|libabsl_*|libprotobuf) return 0 ;;
    libspdlog|libfmt|libyaml-cpp|libssl|libcrypto|libz|libopenblas) return 0 ;;
  esac
  return 1
}

args=()
extra=()
out_seen=0
for a in "$@"; do
  case "$a" in
    /*/lib*.so|/*/lib*.so.*)
      base="${a%%.so*}"
      name="$(basename "$base")"
      if static_ok "$name" && [[ -f "$base.a" ]]; then
        a="$base.a"
        # OpenBLAS's archive needs the Fortran runtime its shared object brought in (named by
        # its soname: libgfortran5 comes with OpenBLAS, the unversioned -dev link may not).
        [[ "$name" == libopenblas ]] && extra+=(-l:libgfortran.so.5 -lpthread)
      fi
      ;;
    -lre2)
      a="-l:libre2.a"
      ;;
  esac
  args+=("$a")
  if [[ "$out_seen" == 1 ]]; then
    args+=(-Wl,--start-group)
    out_seen=2
  fi
  [[ "$a" == "-o" && "$out_seen" == 0 ]] && out_seen=1
done
[[ "$out_seen" == 2 ]] && args+=(-Wl,--end-group)
exec "${args[@]}" "${extra[@]}"
