#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deletes the kind cluster (its node container, and with it everything installed and the models
# PVC). Our image stays in the local Docker engine for the next up.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KC_SCRIPT=./kind-cluster/down.sh

usage() {
  cat <<EOF
Usage: kind-cluster/down.sh [options]

Deletes the kind cluster NAME (\`kind delete cluster\`) and its kube context kind-NAME.

Options:
  --name NAME   kind cluster name (default $KC_DEFAULT_NAME)
  --dry-run     print the command, run none
  -h, --help    this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || kc_usage_error "--name needs a value"; kc_set_cluster "$2"; shift 2 ;;
    --name=*) kc_set_cluster "${1#*=}"; shift ;;
    --dry-run) KC_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) kc_usage_error "unknown argument: $1" ;;
  esac
done

kc_preflight docker kind
kc_log "Deleting kind cluster '$KC_NAME'"
hint "kind get clusters" "docker ps -a --filter name=$KC_NAME-control-plane"
try "kind delete cluster" kind delete cluster --name "$KC_NAME"
