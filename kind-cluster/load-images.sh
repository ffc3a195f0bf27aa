#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds our model server image from kind-cluster/Dockerfile (context: the repository root) and
# loads it into the kind cluster's node, where pods find it without a registry.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KC_SCRIPT=./kind-cluster/load-images.sh

usage() {
  cat <<EOF
Usage: kind-cluster/load-images.sh [options]

Builds $KH_IMAGE:$KH_IMAGE_TAG (kind-cluster/Dockerfile, from the repository root; the
base image and tag come from kind-cluster/versions.env) and loads it into the kind cluster with
\`kind load docker-image\`. up.sh runs this; run it alone after changing the model server.
The first build compiles the model server in the image (minutes); later ones reuse Docker's
layer cache.

Options:
  --name NAME   kind cluster name (default $KC_DEFAULT_NAME)
  --dry-run     print the commands, run none
  -h, --help    this help
EOF
}

kc_parse_common_args "$@"

kc_preflight docker kind
image="$KH_IMAGE:$KH_IMAGE_TAG"
case "$KH_IMAGE_TAG" in latest | '') kc_die "versions.env KH_IMAGE_TAG must be a fixed tag, not '$KH_IMAGE_TAG'" ;; esac

kc_log "Building $image (kind-cluster/Dockerfile, base $DEBIAN_IMAGE)"
cd "$KH_ROOT"
hint "docker build -f kind-cluster/Dockerfile --progress=plain --build-arg DEBIAN_IMAGE=$DEBIAN_IMAGE -t $image .   (the full log)" \
  "docker system df   (disk space)"
try "our image (docker build)" docker build -f kind-cluster/Dockerfile \
  --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$image" .

kc_log "Loading $image into kind cluster '$KC_NAME'"
hint "kind get clusters" "docker exec $KC_NAME-control-plane crictl images"
try "our image (kind load)" kind load docker-image "$image" --name "$KC_NAME"
