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

kc_parse_common_args "$@"

kc_preflight docker kind
kc_log "Deleting kind cluster '$KC_NAME'"
hint "kind get clusters" "docker ps -a --filter name=$KC_NAME-control-plane"
try "kind delete cluster" kind delete cluster --name "$KC_NAME"
