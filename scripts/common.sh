# Shared by scripts/run and scripts/test: install missing Debian packages, configure, build.
# Sourced, not run.

KH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KH_BUILD_DIR="$KH_ROOT/build/release"

# Everything the build, the tests and the benchmarks use; all Debian 12 packages.
KH_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libboost-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libxgboost-dev xgboost libopenblas-dev libssl-dev openssl
  chromium
  python3-kubernetes
  # tests/kind: shellcheck of kind-cluster/*.sh, PyYAML for its manifests (skipped without them)
  shellcheck python3-yaml
)

kh_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# kh_install_packages [extra packages...]: installs what is missing (apt-get when root),
# otherwise prints the exact command and fails.
kh_install_packages() {
  local missing=()
  local pkg
  local wanted=("${KH_PACKAGES[@]}" "$@")
  # The tests drive refstack with the real kubectl: the machine's, else Debian's.
  if ! command -v kubectl >/dev/null 2>&1; then wanted+=(kubernetes-client); fi
  for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${missing[*]}" >&2
    echo "Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  kh_log "Installing ${#missing[@]} Debian package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# kh_build [targets...]: configures the release preset and builds (everything by default).
kh_build() {
  cd "$KH_ROOT"
  if [ ! -f "$KH_BUILD_DIR/build.ninja" ]; then
    # KH_DEBUG_INFO=0 (CI sets it) leaves out -g: a fifth less compile time, much smaller links,
    # the same code. Keep debug info for profiling (callgrind, perf annotate).
    local flags=()
    if [ "${KH_DEBUG_INFO:-1}" = 0 ]; then
      flags+=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG")
    fi
    kh_log "Configuring (cmake --preset release${flags:+ ${flags[*]}})"
    cmake --preset release "${flags[@]}" >/dev/null
  fi
  local jobs
  jobs="$(nproc 2>/dev/null || echo 2)"
  kh_log "Building with $jobs job(s)"
  if [ $# -gt 0 ]; then
    cmake --build "$KH_BUILD_DIR" -j "$jobs" --target "$@"
  else
    cmake --build "$KH_BUILD_DIR" -j "$jobs"
  fi
}
