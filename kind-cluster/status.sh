#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# One line per component of the kind cluster up.sh builds: OK, or NOT READY with what was found,
# what versions.env expects and the command to look with. Exit 0 when every line is OK.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KC_SCRIPT=./kind-cluster/status.sh

usage() {
  cat <<EOF
Usage: kind-cluster/status.sh [options]

Checks, one line each: the kind node (image, Ready), cert-manager, Istio or Kourier (whichever
the KnativeServing uses), the Knative Operator, Knative Serving (version from the
KnativeServing's status), the KServe controller (image and version), our ClusterServingRuntimes
and image on the node, the models PVC, and the ingress on 127.0.0.1. Versions are compared
with kind-cluster/versions.env. Exit status 0 when all are OK, 1 otherwise. Read-only.

Options:
  --name NAME   kind cluster name (default $KC_DEFAULT_NAME)
  --dry-run     print the commands it would run, run none
  -h, --help    this help
EOF
}

kc_parse_common_args "$@"

kc_preflight docker kind kubectl
k="kubectl --context $KC_CONTEXT"
bad=0

# result COMPONENT OK(1|0) FOUND EXPECTED INVESTIGATE: prints the component's line.
result() {
  if [ "$KC_DRY_RUN" = 1 ]; then
    printf '%-10s %-20s expects %s\n' "DRY-RUN" "$1" "$4"
  elif [ "$2" = 1 ]; then
    printf '%-10s %-20s %s\n' "OK" "$1" "$3"
  else
    bad=1
    printf '%-10s %-20s found %s; expected %s; investigate: %s\n' "NOT READY" "$1" "${3:-nothing}" "$4" "$5"
  fi
}

# available NS DEPLOYMENT: "available/desired" replicas ("" when there is no such Deployment).
available() {
  probe "${KUBECTL[@]}" -n "$1" get deployment "$2" -o 'jsonpath={.status.availableReplicas}/{.spec.replicas}'
}
# all_available STATE...: every "a/d" has a = d > 0.
all_available() {
  local s
  for s in "$@"; do
    case "$s" in */0 | /* | '') return 1 ;; esac
    [ "${s%/*}" = "${s#*/}" ] || return 1
  done
  return 0
}
# image_tag IMAGE: the tag of an image reference (a digest dropped), or "".
image_tag() {
  local ref="${1%%@*}"
  case "${ref##*/}" in *:*) printf '%s' "${ref##*:}" ;; esac
}
# image_of NS DEPLOYMENT [CONTAINER]: the container's image (default: the first container's).
image_of() {
  local sel='[0]'
  [ -z "${3:-}" ] || sel="[?(@.name==\"$3\")]"
  probe "${KUBECTL[@]}" -n "$1" get deployment "$2" -o "jsonpath={.spec.template.spec.containers$sel.image}"
}

# ---- the kind node -------------------------------------------------------------------------------
node_image="$(probe docker inspect --format '{{.Config.Image}}' "$KC_NAME-control-plane")"
node_ready="$(probe "${KUBECTL[@]}" get nodes -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}')"
ok=0
[ "$node_ready" = True ] && [ "$node_image" = "$KIND_NODE_IMAGE" ] && ok=1
result "kind node" "$ok" "node Ready=${node_ready:-?}, image ${node_image:-?}" \
  "cluster $KC_NAME, node Ready, image $KIND_NODE_IMAGE" \
  "kind get clusters; $k get nodes -o wide (create it: ./kind-cluster/up.sh --name $KC_NAME)"

# ---- cert-manager --------------------------------------------------------------------------------
a1="$(available cert-manager cert-manager)"
a2="$(available cert-manager cert-manager-webhook)"
a3="$(available cert-manager cert-manager-cainjector)"
v="$(image_tag "$(image_of cert-manager cert-manager)")"
ok=0
all_available "$a1" "$a2" "$a3" && [ "$v" = "$CERT_MANAGER_VERSION" ] && ok=1
result "cert-manager" "$ok" "${v:-?} (available: controller $a1, webhook $a2, cainjector $a3)" \
  "$CERT_MANAGER_VERSION, 3 Deployments available" "$k -n cert-manager get pods"

# ---- network layer: whichever the KnativeServing enables ---------------------------------------
kourier="$(probe "${KUBECTL[@]}" -n knative-serving get knativeserving knative-serving -o 'jsonpath={.spec.ingress.kourier.enabled}')"
if [ "$KC_DRY_RUN" = 1 ] || [ "$kourier" != true ]; then
  a1="$(available istio-system istiod)"
  a2="$(available istio-system istio-ingressgateway)"
  v="$(image_tag "$(image_of istio-system istiod)")"
  np="$(probe "${KUBECTL[@]}" -n istio-system get svc istio-ingressgateway -o 'jsonpath={.spec.ports[?(@.port==80)].nodePort}')"
  ok=0
  all_available "$a1" "$a2" && [ "$v" = "$ISTIO_VERSION" ] && [ "$np" = "$KC_NODEPORT_HTTP" ] && ok=1
  result "istio" "$ok" "${v:-?} (available: istiod $a1, gateway $a2; gateway nodePort ${np:-none})" \
    "$ISTIO_VERSION, istiod and istio-ingressgateway available, nodePort $KC_NODEPORT_HTTP" \
    "$k -n istio-system get pods,svc"
fi
if [ "$KC_DRY_RUN" = 1 ] || [ "$kourier" = true ]; then
  a1="$(available knative-serving 3scale-kourier-gateway)"
  a2="$(available knative-serving net-kourier-controller)"
  np="$(probe "${KUBECTL[@]}" -n knative-serving get svc kourier -o 'jsonpath={.spec.ports[?(@.port==80)].nodePort}')"
  ok=0
  all_available "$a1" "$a2" && [ "$np" = "$KC_NODEPORT_HTTP" ] && ok=1
  result "kourier" "$ok" "available: gateway $a1, controller $a2; nodePort ${np:-none}" \
    "the gateway and net-kourier-controller available, nodePort $KC_NODEPORT_HTTP" \
    "$k -n knative-serving get pods,svc -l 'app in (3scale-kourier-gateway,net-kourier-controller)'"
fi

# ---- Knative ---------------------------------------------------------------------------------------
a1="$(available knative-operator knative-operator)"
v="$(probe "${KUBECTL[@]}" -n knative-operator get deployment knative-operator -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/version}')"
ok=0
# The version label is read as the Operator's manifests set it (no "v"); unreadable is no failure.
all_available "$a1" && { [ -z "$v" ] || [ "v${v#v}" = "$KNATIVE_OPERATOR_VERSION" ]; } && ok=1
result "knative operator" "$ok" "${v:-version unknown} (available $a1)" \
  "$KNATIVE_OPERATOR_VERSION, available" "$k -n knative-operator get pods; $k -n knative-operator logs deploy/knative-operator --tail=50"

v="$(probe "${KUBECTL[@]}" -n knative-serving get knativeserving knative-serving -o 'jsonpath={.status.version}')"
r="$(probe "${KUBECTL[@]}" -n knative-serving get knativeserving knative-serving -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')"
ok=0
[ "$r" = True ] && [ "$v" = "$KNATIVE_SERVING_VERSION" ] && ok=1
result "knative serving" "$ok" "${v:-?} (KnativeServing Ready=${r:-?})" \
  "$KNATIVE_SERVING_VERSION, Ready" "$k -n knative-serving describe knativeserving knative-serving"

# ---- KServe ---------------------------------------------------------------------------------------
a1="$(available kserve kserve-controller-manager)"
img="$(image_of kserve kserve-controller-manager manager)"
v="$(image_tag "$img")"
ok=0
all_available "$a1" && [ "$v" = "$KSERVE_VERSION" ] && ok=1
result "kserve controller" "$ok" "${v:-?} (${img:-no image}, available $a1)" \
  "$KSERVE_VERSION, available" "$k -n kserve get pods; $k -n kserve logs deploy/kserve-controller-manager --tail=50"

# ---- ours: runtimes, image on the node, models ------------------------------------------------------
want="$KH_IMAGE:$KH_IMAGE_TAG"
found=""
ok=1
for rt in $KC_RUNTIMES kserve-xgbserver; do
  img="$(probe "${KUBECTL[@]}" get clusterservingruntime "$rt" -o 'jsonpath={.spec.containers[0].image}')"
  found="$found $rt=${img:-missing}"
  case "$rt" in
    kserve-xgbserver) [ -n "$img" ] || ok=0 ;;
    *) [ "$img" = "$want" ] || ok=0 ;;
  esac
done
result "runtimes" "$ok" "${found# }" "$KC_RUNTIMES with image $want, and KServe's kserve-xgbserver" \
  "$k get clusterservingruntimes (apply again: ./kind-cluster/up.sh --name $KC_NAME)"

loaded="$(probe docker exec "$KC_NAME-control-plane" crictl images)"
ok=0
printf '%s\n' "$loaded" | grep -Eq "(^|/)${KH_IMAGE}[[:space:]]+${KH_IMAGE_TAG}[[:space:]]" && ok=1
result "image on the node" "$ok" "$want loaded" "$want in the node's containerd" \
  "docker exec $KC_NAME-control-plane crictl images (load it: ./kind-cluster/load-images.sh --name $KC_NAME)"

pvc="$(probe "${KUBECTL[@]}" -n "$KC_MODELS_NAMESPACE" get pvc "$KC_MODELS_PVC" -o 'jsonpath={.status.phase}')"
job="$(probe "${KUBECTL[@]}" -n "$KC_MODELS_NAMESPACE" get job kh-models-fill -o 'jsonpath={.status.succeeded}')"
ok=0
[ "$pvc" = Bound ] && [ "$job" = 1 ] && ok=1
result "models PVC" "$ok" "pvc://$KC_MODELS_PVC ${pvc:-missing}, Job kh-models-fill succeeded=${job:-0}" \
  "PVC $KC_MODELS_PVC Bound, Job kh-models-fill succeeded" \
  "$k -n $KC_MODELS_NAMESPACE describe pvc $KC_MODELS_PVC; $k -n $KC_MODELS_NAMESPACE logs job/kh-models-fill"

# ---- the ingress from this machine --------------------------------------------------------------
port="$(probe docker port "$KC_NAME-control-plane" "$KC_NODEPORT_HTTP/tcp" | head -n 1)"
port="${port##*:}"
if [ "$KC_DRY_RUN" = 1 ]; then
  kc_show curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:<port>/"
  result "ingress" 0 "" "an HTTP answer (404 for an unknown Host) on 127.0.0.1:<port>" ""
elif ! command -v curl >/dev/null 2>&1; then
  printf '%-10s %-20s %s\n' "UNKNOWN" "ingress" "127.0.0.1:${port:-?} not checked: no curl on PATH"
else
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:${port:-0}/" || true)"
  ok=0
  [ -n "$port" ] && [ "${code:-000}" != 000 ] && ok=1
  result "ingress" "$ok" "127.0.0.1:${port:-?} answers HTTP $code" "an HTTP answer on the mapped port" \
    "docker port $KC_NAME-control-plane; $k -n istio-system get svc istio-ingressgateway (or -n knative-serving svc kourier)"
fi

if [ "$KC_DRY_RUN" = 0 ] && [ "$bad" = 0 ] && [ -n "$port" ]; then
  printf '\nReady. Run the default suite:\n  build/release/bin/harness run --suite scenarios --target kube --context %s --ingress 127.0.0.1:%s --model-store pvc://%s --apply-autoscaler-config\n' \
    "$KC_CONTEXT" "$port" "$KC_MODELS_PVC"
fi
exit "$bad"
