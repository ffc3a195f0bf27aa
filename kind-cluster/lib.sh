# shellcheck shell=bash source-path=SCRIPTDIR
# Shared by kind-cluster/*.sh; sourced, not run. Versions (versions.env), settings, --dry-run,
# logging, waits that name the failing component and the next command, preflight checks.
#
# Written for bash 3.2 (macOS's /bin/bash) and POSIX sed/grep/awk as well as Linux: no
# associative arrays, no mapfile, no GNU-only options.
#
# The settings and state below are read by the scripts that source this file, not here:
# shellcheck disable=SC2034

KC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KH_ROOT="$(cd "$KC_DIR/.." && pwd)"
# shellcheck source=versions.env
. "$KC_DIR/versions.env"

# ---------------------------------------------------------------------------------------------
# Settings: not versions (the dry-run test compares versions.env only). Flags override the
# defaults.
KC_DEFAULT_NAME=kserve            # kind cluster name; the kube context is kind-<name>
KC_DEFAULT_HTTP_PORT=8080         # host port (127.0.0.1) of the ingress
KC_NODEPORT_HTTP=31080            # the ingress Service's nodePort = kind-config.yaml containerPort
KC_NODEPORT_SPARE=31081           # second mapping in kind-config.yaml, unused by default
KC_MODELS_PVC=kh-models           # PVC holding reference-impl/models (manifests/models.yaml)
KC_MODELS_NAMESPACE=default       # the PVC's namespace: where the scenarios' services run
KC_RUNTIMES="kh-xgboost kh-dense kh-xgboost-grpc kh-dense-grpc"  # manifests/runtimes.yaml

# Per-run state, set by the scripts' flag parsing and kc_set_cluster.
KC_DRY_RUN=0
KC_NAME="$KC_DEFAULT_NAME"
KC_CONTEXT="kind-$KC_DEFAULT_NAME"
KUBECTL=(kubectl --context "$KC_CONTEXT")
HELM=(helm --kube-context "$KC_CONTEXT")
KC_HINT=()

# Commands are echoed on fd 3 (the script's stdout), so that they show even from inside $(...).
exec 3>&1

# ---------------------------------------------------------------------------------------------
# Logging

kc_log() { printf '==> %s\n' "$*" >&2; }
kc_warn() { printf 'WARNING: %s\n' "$*" >&2; }
kc_die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# kc_usage_error MESSAGE: a bad flag; exit 2 as the harness does for bad input.
kc_usage_error() {
  printf 'ERROR: %s (see --help)\n' "$*" >&2
  exit 2
}

# kc_parse_common_args ARGS...: the options every script takes (--name, --dry-run, --help, which
# calls the script's `usage`); anything else is a usage error. For scripts with no others.
kc_parse_common_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) [ $# -ge 2 ] || kc_usage_error "--name needs a value"; kc_set_cluster "$2"; shift 2 ;;
      --name=*) kc_set_cluster "${1#*=}"; shift ;;
      --dry-run) KC_DRY_RUN=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) kc_usage_error "unknown argument: $1" ;;
    esac
  done
}

# kc_quote ARG: ARG as a shell word a reader can paste back (single quotes only when needed).
kc_quote() {
  case "$1" in
    '') printf "''" ;;
    *[!A-Za-z0-9_@%+=:,./-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
  esac
}

# kc_cmdline CMD...: "+ CMD..." with each word quoted as needed (no newline).
kc_cmdline() {
  local line="+" arg
  for arg in "$@"; do
    line="$line $(kc_quote "$arg")"
  done
  printf '%s' "$line"
}

# kc_show CMD...: prints the command line, as it would run.
kc_show() { printf '%s\n' "$(kc_cmdline "$@")" >&3; }

# ---------------------------------------------------------------------------------------------
# Running commands: everything that touches Docker, kind, Helm or the cluster goes through these,
# so that --dry-run prints the whole plan and runs none of it.

# run CMD...: prints the command, then runs it unless --dry-run.
run() {
  kc_show "$@"
  [ "$KC_DRY_RUN" = 1 ] && return 0
  "$@"
}

# run_stdin TEXT CMD...: runs CMD with TEXT on its standard input (rendered manifests go to
# `kubectl apply -f -` this way, so nothing is written to disk); --dry-run prints TEXT too.
run_stdin() {
  local text="$1"
  shift
  printf "%s <<'EOF'\n%s\nEOF\n" "$(kc_cmdline "$@")" "$text" >&3
  [ "$KC_DRY_RUN" = 1 ] && return 0
  printf '%s\n' "$text" | "$@"
}

# probe CMD...: a read-only look at the cluster, its output on stdout. --dry-run prints the
# command and answers nothing (no cluster is probed); errors are silent (an empty answer).
probe() {
  if [ "$KC_DRY_RUN" = 1 ]; then
    kc_show "$@"
    return 0
  fi
  "$@" 2>/dev/null || true
}

# hint CMD...: the commands kc_fail suggests if the next step fails (one string each).
hint() { KC_HINT=("$@"); }

# kc_fail COMPONENT WHY: says what is not ready and what to run next (the last hint), exits 1.
kc_fail() {
  local h
  {
    printf '\nERROR: %s is not ready: %s\n' "$1" "$2"
    if [ "${#KC_HINT[@]}" -gt 0 ]; then
      printf 'Investigate with:\n'
      for h in "${KC_HINT[@]}"; do printf '  %s\n' "$h"; done
    fi
    printf 'Then run %s again: every step is idempotent and it picks up where it stopped.\n' \
      "${KC_SCRIPT:-the script}"
  } >&2
  exit 1
}

# try COMPONENT CMD...: run, and on failure kc_fail with the current hints.
try() {
  local what="$1"
  shift
  run "$@" || kc_fail "$what" "\`$(kc_cmdline "$@" | cut -c3-)\` failed"
}

# try_twice COMPONENT CMD...: as try, retrying once after 5 s (KServe's manage.kserve-helm.sh
# retries its install once: the webhook may not answer the first time).
try_twice() {
  local what="$1"
  shift
  if ! run "$@"; then
    kc_warn "$what: failed once; retrying in 5 s"
    sleep 5
    try "$what" "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# Waits, with the recipe's budgets (KServe's hack/setup scripts).

# kc_wait_pods COMPONENT NAMESPACE SELECTOR TIMEOUT_S: as wait_for_pods in KServe's
# hack/setup/common.sh: up to 60 s for a matching pod to appear, then all Ready within the timeout.
kc_wait_pods() {
  local what="$1" ns="$2" sel="$3" t="$4" waited=0
  kc_log "Waiting for $what: pods -l '$sel' in $ns Ready (up to ${t}s)"
  hint "kubectl --context $KC_CONTEXT -n $ns get pods -l '$sel'" \
    "kubectl --context $KC_CONTEXT -n $ns describe pods -l '$sel'" \
    "kubectl --context $KC_CONTEXT -n $ns get events --sort-by=.lastTimestamp"
  if [ "$KC_DRY_RUN" = 1 ]; then
    kc_show "${KUBECTL[@]}" -n "$ns" get pods -l "$sel" -o name
  else
    until [ -n "$("${KUBECTL[@]}" -n "$ns" get pods -l "$sel" -o name 2>/dev/null)" ]; do
      [ "$waited" -lt 60 ] || kc_fail "$what" "no pod matching -l '$sel' appeared in $ns within 60s"
      sleep 2
      waited=$((waited + 2))
    done
  fi
  run "${KUBECTL[@]}" -n "$ns" wait --for=condition=Ready pod -l "$sel" --timeout="${t}s" \
    || kc_fail "$what" "pods -l '$sel' in $ns not Ready within ${t}s"
}

# kc_wait COMPONENT WHY KUBECTL-WAIT-ARGS...: `kubectl wait ARGS`, kc_fail(COMPONENT, WHY) on a
# timeout. Set the hints first.
kc_wait() {
  local what="$1" why="$2"
  shift 2
  kc_log "Waiting for $what"
  run "${KUBECTL[@]}" wait "$@" || kc_fail "$what" "$why"
}

# ---------------------------------------------------------------------------------------------
# Templates

# kc_render FILE [BLOCK...]: FILE with every ${NAME} replaced by the shell variable NAME (which
# must be set and non-empty), each block between "# @if KEY" and "# @end KEY" lines kept only
# when KEY is among the BLOCKs, and comment lines dropped. POSIX sed only.
kc_render() {
  local file="$1" block name value
  shift
  [ -f "$file" ] || kc_die "template not found: $file"
  local keep=" $* "
  local args=()
  while read -r block; do
    [ -n "$block" ] || continue
    case "$keep" in
      *" $block "*) ;;
      *) args+=(-e "/^[[:space:]]*# @if ${block}[[:space:]]*\$/,/^[[:space:]]*# @end ${block}[[:space:]]*\$/d") ;;
    esac
  done <<EOF
$(sed -n 's/^[[:space:]]*# @if \([A-Za-z0-9_-]*\)[[:space:]]*$/\1/p' "$file" | sort -u)
EOF
  # Then every comment line (markers included): the rendered text is for kubectl and kind.
  args+=(-e '/^[[:space:]]*#/d')
  while read -r name; do
    [ -n "$name" ] || continue
    value="${!name:-}"
    [ -n "$value" ] || kc_die "$file: placeholder \${$name} has no value"
    case "$value" in
      *'|'* | *'&'* | *\\*) kc_die "$file: the value of $name holds | & or \\: $value" ;;
    esac
    args+=(-e "s|\\\${$name}|$value|g")
  done <<EOF
$(grep -o '[$][{][A-Z][A-Z0-9_]*[}]' "$file" | sort -u | sed 's/^[$][{]\(.*\)[}]$/\1/')
EOF
  sed "${args[@]}" "$file"
}

# ---------------------------------------------------------------------------------------------
# Cluster identity

# kc_set_cluster NAME: the kind cluster, its kube context (kind-NAME) and the kubectl/helm
# commands bound to that context (never the current context: another cluster stays untouched).
kc_set_cluster() {
  case "$1" in
    '' | *[!a-z0-9-]*) kc_usage_error "--name must be lower-case letters, digits and '-': '$1'" ;;
  esac
  KC_NAME="$1"
  KC_CONTEXT="kind-$KC_NAME"
  KUBECTL=(kubectl --context "$KC_CONTEXT")
  HELM=(helm --kube-context "$KC_CONTEXT")
}

# ---------------------------------------------------------------------------------------------
# Preflight (skipped by --dry-run, which needs none of these tools)

# kc_version_ge A B: true when version A >= B (vX.Y.Z, the "v" optional).
kc_version_ge() {
  local a="${1#v}" b="${2#v}" i x y
  a="${a%%[!0-9.]*}"
  b="${b%%[!0-9.]*}"
  for i in 1 2 3; do
    x="$(printf '%s' "$a" | cut -d. -f"$i")"
    y="$(printf '%s' "$b" | cut -d. -f"$i")"
    x="${x:-0}"
    y="${y:-0}"
    [ "$x" -gt "$y" ] && return 0
    [ "$x" -lt "$y" ] && return 1
  done
  return 0
}

# kc_minor vX.Y.Z: Y.
kc_minor() { printf '%s' "${1#v}" | cut -d. -f2; }

kc_install_hint() {
  local os arch
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  arch="$(uname -m)"
  case "$arch" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; esac
  case "$1" in
    docker) printf '%s' "Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop; \`docker info\` must answer" ;;
    kind) printf '%s' "curl -Lo kind https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$os-$arch && chmod +x kind && sudo mv kind /usr/local/bin/ (or: go install sigs.k8s.io/kind@$KIND_VERSION)" ;;
    kubectl) printf '%s' "curl -LO https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$os/$arch/kubectl && chmod +x kubectl && sudo mv kubectl /usr/local/bin/" ;;
    helm) printf '%s' "curl -fsSL https://get.helm.sh/helm-$HELM_VERSION-$os-$arch.tar.gz | tar -xz && sudo mv $os-$arch/helm /usr/local/bin/" ;;
  esac
}

# kc_preflight TOOL...: each tool present (with an install hint when not), Docker's engine
# answering, and kind/kubectl/helm versions against versions.env (warnings only). --dry-run
# says what it would check.
kc_preflight() {
  local tool missing=0 v
  if [ "$KC_DRY_RUN" = 1 ]; then
    local what=""
    for tool in "$@"; do
      case "$tool" in
        docker) what="$what, docker (its engine answering)" ;;
        kind) what="$what, kind $KIND_VERSION" ;;
        kubectl) what="$what, kubectl $KUBECTL_VERSION (or within one minor version of the node)" ;;
        helm) what="$what, helm $HELM_VERSION or newer" ;;
        *) what="$what, $tool" ;;
      esac
    done
    printf '# preflight, skipped by --dry-run: %s\n' "${what#, }" >&3
    return 0
  fi
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      printf 'ERROR: %s is not installed. Install it with:\n  %s\n' "$tool" "$(kc_install_hint "$tool")" >&2
      missing=1
    fi
  done
  [ "$missing" = 0 ] || exit 1
  for tool in "$@"; do
    case "$tool" in
      docker)
        docker info >/dev/null 2>&1 \
          || kc_die "docker is installed but its engine does not answer (\`docker info\` failed): start Docker, or check that this user may use it"
        ;;
      kind)
        v="$(kind version 2>/dev/null | awk '{print $2}')"
        [ "$v" = "$KIND_VERSION" ] \
          || kc_warn "kind is ${v:-unknown}; the node image is pinned for kind $KIND_VERSION: $(kc_install_hint kind)"
        ;;
      kubectl)
        v="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\(v[0-9][^"]*\)".*/\1/p' | head -n 1)"
        local node_minor want
        want="${KIND_NODE_IMAGE#*:}"
        node_minor="$(kc_minor "${want%%@*}")"
        if [ -z "$v" ]; then
          kc_warn "cannot read kubectl's version; $KUBECTL_VERSION is recommended"
        elif [ "$(kc_minor "$v")" -lt $((node_minor - 1)) ] || [ "$(kc_minor "$v")" -gt $((node_minor + 1)) ]; then
          kc_warn "kubectl $v is more than one minor version from the node's: $(kc_install_hint kubectl)"
        fi
        ;;
      helm)
        v="$(helm version --template '{{.Version}}' 2>/dev/null || true)"
        kc_version_ge "${v:-v0}" "$HELM_VERSION" \
          || kc_warn "helm is ${v:-unknown}, older than the expected $HELM_VERSION: $(kc_install_hint helm)"
        ;;
    esac
  done
}

# kc_check_inotify: kind's known issue "Pod errors due to too many open files": raise the host's
# inotify limits (Linux; Docker Desktop's VM has its own).
kc_check_inotify() {
  [ "$(uname -s)" = Linux ] || return 0
  local watches instances
  watches="$(cat /proc/sys/fs/inotify/max_user_watches 2>/dev/null || echo 0)"
  instances="$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)"
  if [ "$watches" -lt 524288 ] || [ "$instances" -lt 512 ]; then
    kc_warn "inotify limits are low (max_user_watches=$watches, max_user_instances=$instances): pods may fail with \"too many open files\". Fix:
    sudo sysctl -w fs.inotify.max_user_watches=524288
    sudo sysctl -w fs.inotify.max_user_instances=512
  and keep it across reboots:
    printf 'fs.inotify.max_user_watches=524288\\nfs.inotify.max_user_instances=512\\n' | sudo tee /etc/sysctl.d/99-kind.conf"
  fi
}
