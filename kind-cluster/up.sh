#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Creates a kind cluster with KServe in Knative ("Serverless") mode, installed as KServe's own
# quick-install and CI install it (order, charts, versions and waits as KServe v0.20.0's hack/setup scripts and CI have them),
# then our model server image, ClusterServingRuntimes and demo models, and prints the harness
# command. Idempotent: run it again to resume or repair (an existing cluster is reused, Helm
# releases are upgraded, manifests re-applied).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KC_SCRIPT=./kind-cluster/up.sh

usage() {
  cat <<EOF
Usage: kind-cluster/up.sh [options]

Creates (or reuses) the kind cluster NAME and installs, in this order: cert-manager, Istio and
its IngressClass (or nothing, with Kourier), the Knative Operator and KnativeServing, KServe
(CRDs, controller, runtimes); then builds and loads our model server image, applies our
ClusterServingRuntimes, fills the models PVC, and prints the harness command.
Versions: kind-cluster/versions.env.

Options:
  --name NAME                  kind cluster name (default $KC_DEFAULT_NAME; kube context kind-NAME)
  --network-layer istio|kourier
                               Knative's ingress (default istio). kourier: no Istio at all, KServe
                               with disableIstioVirtualHost (the lightest stack)
  --autoscaler short|default   Knative autoscaler settings in KnativeServing.spec.config.autoscaler:
                               short = stable-window 6s, scale-to-zero grace 6s, retention 0s,
                               scale to zero on, zero initial scale allowed (scale-to-zero tests
                               take seconds); default = Knative's own values (60s, 30s, 0s, on, off).
                               Default: short
  --http-port N                host port of the ingress on 127.0.0.1 (default $KC_DEFAULT_HTTP_PORT),
                               fixed when the cluster is created
  --skip-image                 do not build and load our image (it must already be on the node)
  --dry-run                    print every command, run none (no tool or cluster needed)
  -h, --help                   this help

Every step waits with a timeout and, on failure, names the component and the command to look
with. See kind-cluster/README.md.
EOF
}

network=istio
autoscaler=short
http_port="$KC_DEFAULT_HTTP_PORT"
skip_image=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || kc_usage_error "--name needs a value"; kc_set_cluster "$2"; shift 2 ;;
    --name=*) kc_set_cluster "${1#*=}"; shift ;;
    --network-layer) [ $# -ge 2 ] || kc_usage_error "--network-layer needs a value"; network="$2"; shift 2 ;;
    --network-layer=*) network="${1#*=}"; shift ;;
    --autoscaler) [ $# -ge 2 ] || kc_usage_error "--autoscaler needs a value"; autoscaler="$2"; shift 2 ;;
    --autoscaler=*) autoscaler="${1#*=}"; shift ;;
    --http-port) [ $# -ge 2 ] || kc_usage_error "--http-port needs a value"; http_port="$2"; shift 2 ;;
    --http-port=*) http_port="${1#*=}"; shift ;;
    --skip-image) skip_image=1; shift ;;
    --dry-run) KC_DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) kc_usage_error "unknown argument: $1" ;;
  esac
done
case "$network" in istio | kourier) ;; *) kc_usage_error "--network-layer must be istio or kourier, not '$network'" ;; esac
case "$http_port" in '' | *[!0-9]*) kc_usage_error "--http-port must be a number, not '$http_port'" ;; esac
if [ "$http_port" -lt 1 ] || [ "$http_port" -gt 65534 ]; then kc_usage_error "--http-port must be 1-65534"; fi

# Template values (kind-config.yaml, manifests/knative-serving.yaml).
KC_HTTP_PORT="$http_port"
KC_SPARE_PORT=$((http_port + 1))
case "$autoscaler" in
  short)
    # The recipe's short windows (kind.md §5; knative-extensions/kperf PR #338): 6s is the
    # smallest stable window Knative allows; the grace period must stay > 0.
    KC_AS_STABLE_WINDOW=6s KC_AS_GRACE=6s KC_AS_RETENTION=0s KC_AS_ZERO_INITIAL=true
    ;;
  default)
    # Knative's defaults (config-autoscaler's _example), written out so that switching back
    # from short restores them.
    KC_AS_STABLE_WINDOW=60s KC_AS_GRACE=30s KC_AS_RETENTION=0s KC_AS_ZERO_INITIAL=false
    ;;
  *) kc_usage_error "--autoscaler must be short or default, not '$autoscaler'" ;;
esac
# kc_render reads them by name (${!name}); exported so that shellcheck sees them used.
export KC_HTTP_PORT KC_SPARE_PORT KC_AS_STABLE_WINDOW KC_AS_GRACE KC_AS_RETENTION KC_AS_ZERO_INITIAL
dry_flag=()
[ "$KC_DRY_RUN" = 1 ] && dry_flag=(--dry-run)
k="kubectl --context $KC_CONTEXT"  # for the hints

kc_log "kind cluster '$KC_NAME' (context $KC_CONTEXT): network layer $network, autoscaler $autoscaler, ingress 127.0.0.1:$http_port"
[ "$KC_DRY_RUN" = 1 ] && kc_log "--dry-run: printing the commands, running none"
kc_preflight docker kind kubectl helm
[ "$KC_DRY_RUN" = 1 ] || kc_check_inotify

# ---- 1. the kind cluster -----------------------------------------------------------------------
if probe kind get clusters | grep -qx "$KC_NAME"; then
  kc_log "Reusing kind cluster '$KC_NAME'"
  # The host port was fixed at creation; report the one in use.
  mapped="$(probe docker port "$KC_NAME-control-plane" "$KC_NODEPORT_HTTP/tcp" | head -n 1)"
  mapped="${mapped##*:}"
  if [ -n "$mapped" ] && [ "$mapped" != "$http_port" ]; then
    kc_warn "cluster '$KC_NAME' maps the ingress to 127.0.0.1:$mapped, not $http_port (fixed at creation; ./kind-cluster/down.sh --name $KC_NAME to recreate): using $mapped"
    http_port="$mapped"
  fi
else
  kc_log "Creating kind cluster '$KC_NAME' ($KIND_NODE_IMAGE)"
  hint "docker ps -a --filter name=$KC_NAME-control-plane" \
    "kind export logs --name $KC_NAME /tmp/kind-logs-$KC_NAME" \
    "a port in use? pick another: --http-port $((http_port + 1000)) (ports $http_port and $((http_port + 1)) on 127.0.0.1)"
  # Rendered first: a template error must stop here, not apply half a file.
  config="$(kc_render "$KC_DIR/kind-config.yaml")"
  run_stdin "$config" \
    kind create cluster --name "$KC_NAME" --config=- --wait 120s \
    || kc_fail "the kind cluster" "kind create cluster failed"
fi
hint "$k get nodes -o wide" "kubectl config get-contexts"
kc_wait "the Kubernetes node" "the node is not Ready within 120s" \
  --for=condition=Ready node --all --timeout=120s

# ---- 2. cert-manager (before KServe's webhooks) ---------------------------------------------------
kc_log "cert-manager $CERT_MANAGER_VERSION"
hint "$k -n cert-manager get pods" "helm --kube-context $KC_CONTEXT -n cert-manager status cert-manager"
try "cert-manager" helm repo add jetstack https://charts.jetstack.io --force-update
try "cert-manager" "${HELM[@]}" upgrade --install cert-manager jetstack/cert-manager \
  --namespace cert-manager --create-namespace --version "$CERT_MANAGER_VERSION" \
  --set crds.enabled=true --wait
kc_wait_pods "cert-manager" cert-manager "app in (cert-manager,webhook,cainjector)" 180

# ---- 3. Istio and its IngressClass (istio only) ---------------------------------------------------
if [ "$network" = istio ]; then
  kc_log "Istio $ISTIO_VERSION"
  hint "$k -n istio-system get pods" "helm --kube-context $KC_CONTEXT -n istio-system list"
  try "Istio" helm repo add istio https://istio-release.storage.googleapis.com/charts --force-update
  try "Istio (base)" "${HELM[@]}" upgrade --install istio-base istio/base \
    --namespace istio-system --create-namespace --version "$ISTIO_VERSION" \
    --set defaultRevision=default --wait
  # CI's small-cluster settings (test/scripts/gh-actions/setup-deps.sh ISTIOD_EXTRA_ARGS).
  try "Istio (istiod)" "${HELM[@]}" upgrade --install istiod istio/istiod \
    --namespace istio-system --version "$ISTIO_VERSION" \
    --set proxy.autoInject=disabled \
    --set pilot.env.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true \
    --set pilot.env.SUPPORT_GATEWAY_API_INFERENCE_EXTENSION=true \
    --set resources.requests.cpu=5m --set resources.requests.memory=32Mi \
    --set meshConfig.accessLogFile=/dev/stdout --wait
  # No --wait, as upstream: its LoadBalancer Service never gets an address on kind (the
  # pods are waited for below). ISTIO_GATEWAY_EXTRA_ARGS of CI.
  try "Istio (ingress gateway)" "${HELM[@]}" upgrade --install istio-ingressgateway istio/gateway \
    --namespace istio-system --version "$ISTIO_VERSION" \
    --set resources.requests.cpu=5m --set resources.requests.memory=32Mi \
    --set resources.limits.cpu=100m --set resources.limits.memory=128Mi
  kc_wait_pods "Istio (istiod)" istio-system app=istiod 600
  kc_wait_pods "Istio (ingress gateway)" istio-system app=istio-ingressgateway 600
  # kind has no LoadBalancer: the gateway's port 80 as NodePort 31080, which kind-config.yaml
  # maps to 127.0.0.1:<http-port> (KServe #820).
  hint "$k -n istio-system get svc istio-ingressgateway -o yaml"
  try "Istio (ingress gateway Service)" "${KUBECTL[@]}" -n istio-system patch svc istio-ingressgateway \
    -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$KC_NODEPORT_HTTP}]}}"
  hint "$k get ingressclass istio -o yaml"
  try "the istio IngressClass" "${KUBECTL[@]}" apply -f "$KC_DIR/manifests/istio-ingressclass.yaml"
fi

# ---- 4. Knative Operator and Knative Serving -----------------------------------------------------
kc_log "Knative Operator $KNATIVE_OPERATOR_VERSION, Knative Serving $KNATIVE_SERVING_VERSION ($network)"
hint "$k -n knative-operator get pods" "$k -n knative-operator logs deploy/knative-operator --tail=50"
try "the Knative Operator" "${HELM[@]}" upgrade --install knative-operator \
  --namespace knative-operator --create-namespace --wait \
  "https://github.com/knative/operator/releases/download/knative-$KNATIVE_OPERATOR_VERSION/knative-operator-$KNATIVE_OPERATOR_VERSION.tgz"
kc_wait_pods "the Knative Operator" knative-operator name=knative-operator 300
hint "$k -n knative-serving describe knativeserving knative-serving" "$k -n knative-serving get pods" \
  "$k -n knative-operator logs deploy/knative-operator --tail=100"
manifest="$(kc_render "$KC_DIR/manifests/knative-serving.yaml" "$network")"
run_stdin "$manifest" "${KUBECTL[@]}" apply -f - \
  || kc_fail "KnativeServing" "kubectl apply of manifests/knative-serving.yaml failed"
kc_wait "Knative Serving (KnativeServing knative-serving)" "not Ready within 300s" \
  --for=condition=Ready -n knative-serving KnativeServing knative-serving --timeout=300s
if [ "$network" = kourier ]; then
  # As for Istio's gateway: Kourier's port 80 as NodePort 31080 (kind-config.yaml). The
  # KnativeServing asks for a NodePort Service, so the Operator keeps the type.
  hint "$k -n knative-serving get svc kourier -o yaml" "$k -n knative-serving get pods -l app=3scale-kourier-gateway"
  try "Kourier (gateway Service)" "${KUBECTL[@]}" -n knative-serving patch svc kourier \
    -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$KC_NODEPORT_HTTP}]}}"
  kc_wait_pods "Kourier (gateway)" knative-serving app=3scale-kourier-gateway 300
fi

# ---- 5. KServe ------------------------------------------------------------------------------------
kc_log "KServe $KSERVE_VERSION"
hint "$k -n kserve get pods" "$k -n kserve logs deploy/kserve-controller-manager --tail=50" \
  "helm --kube-context $KC_CONTEXT -n kserve list"
try "KServe (CRDs)" "${HELM[@]}" upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
  --version "$KSERVE_VERSION" --namespace kserve --create-namespace --wait
kserve_args=(--set "kserve.version=$KSERVE_VERSION")
# Kourier: no Istio VirtualServices (CI's test-kourier job, with Helm).
if [ "$network" = kourier ]; then
  kserve_args+=(--set kserve.controller.gateway.disableIstioVirtualHost=true)
fi
try_twice "KServe (controller)" "${HELM[@]}" upgrade --install kserve-resources \
  oci://ghcr.io/kserve/charts/kserve-resources --version "$KSERVE_VERSION" --namespace kserve --wait \
  "${kserve_args[@]}"
kc_wait "KServe (kserve-controller-manager)" "the Deployment is not Available within 300s" \
  deployment/kserve-controller-manager -n kserve --for=condition=Available --timeout=300s
try "KServe (runtimes)" "${HELM[@]}" upgrade --install kserve-runtime-configs \
  oci://ghcr.io/kserve/charts/kserve-runtime-configs --version "$KSERVE_VERSION" --namespace kserve --wait \
  --set "kserve.version=$KSERVE_VERSION" --set kserve.servingruntime.enabled=true \
  --set kserve.llmisvcConfigs.enabled=false
kc_wait "KServe (pods in kserve)" "its running pods are not all Ready within 180s" \
  --for=condition=Ready pods --field-selector=status.phase=Running --all -n kserve --timeout=180s

# ---- 6. our model server image, runtimes and models --------------------------------------------
if [ "$skip_image" = 0 ]; then
  hint "docker images $KH_IMAGE" "docker exec $KC_NAME-control-plane crictl images | grep ${KH_IMAGE#*/}"
  "$KC_DIR/load-images.sh" --name "$KC_NAME" ${dry_flag[@]+"${dry_flag[@]}"} \
    || kc_fail "our image $KH_IMAGE:$KH_IMAGE_TAG" "./kind-cluster/load-images.sh failed"
else
  kc_log "--skip-image: expecting $KH_IMAGE:$KH_IMAGE_TAG on the node already"
fi
kc_log "ClusterServingRuntimes $KC_RUNTIMES"
hint "$k get clusterservingruntimes" "$k -n kserve logs deploy/kserve-controller-manager --tail=50"
manifest="$(kc_render "$KC_DIR/manifests/runtimes.yaml")"
run_stdin "$manifest" "${KUBECTL[@]}" apply -f - \
  || kc_fail "our ClusterServingRuntimes" "kubectl apply of manifests/runtimes.yaml failed"

kc_log "Models PVC $KC_MODELS_PVC (filled from the image by Job kh-models-fill)"
hint "$k -n $KC_MODELS_NAMESPACE get pvc $KC_MODELS_PVC" "$k -n $KC_MODELS_NAMESPACE describe job kh-models-fill" \
  "$k -n $KC_MODELS_NAMESPACE logs job/kh-models-fill" \
  "is the image on the node? ./kind-cluster/load-images.sh --name $KC_NAME"
# A Job's template cannot change: a new image tag needs a new Job. Copying again is harmless.
try "the models Job" "${KUBECTL[@]}" -n "$KC_MODELS_NAMESPACE" delete job kh-models-fill --ignore-not-found --wait=true
manifest="$(kc_render "$KC_DIR/manifests/models.yaml")"
run_stdin "$manifest" "${KUBECTL[@]}" apply -f - \
  || kc_fail "the models PVC" "kubectl apply of manifests/models.yaml failed"
kc_wait "the models PVC (Job kh-models-fill)" "the Job did not complete within 180s" \
  -n "$KC_MODELS_NAMESPACE" --for=condition=complete job/kh-models-fill --timeout=180s

# ---- done ---------------------------------------------------------------------------------------
if [ "$network" = kourier ]; then
  host_shape="<isvc>-predictor.<namespace>.example.com"
else
  host_shape="<isvc>.<namespace>.example.com"
fi
if [ "$KC_DRY_RUN" = 1 ]; then
  printf '\n# --dry-run: nothing was run. A real run ends with:\n'
fi
cat <<EOF

kind cluster '$KC_NAME' is ready: KServe $KSERVE_VERSION on Knative Serving $KNATIVE_SERVING_VERSION ($network), autoscaler $autoscaler.
  kube context:  $KC_CONTEXT
  ingress:       127.0.0.1:$http_port (HTTP and gRPC; Host header $host_shape)
  models:        pvc://$KC_MODELS_PVC/<dir> in namespace $KC_MODELS_NAMESPACE (xgboost-iris, xgboost-regressor, dense-iris, dense-fp16)
  runtimes:      $KC_RUNTIMES (image $KH_IMAGE:$KH_IMAGE_TAG)

Run the default suite against it (build the harness first: ./scripts/run builds it, or
cmake --preset release && cmake --build build/release --target kh_harness_main):
  build/release/bin/harness run --suite scenarios --target kube --context $KC_CONTEXT --ingress 127.0.0.1:$http_port --model-store pvc://$KC_MODELS_PVC --apply-autoscaler-config
Check it:     ./kind-cluster/status.sh --name $KC_NAME
Remove it:    ./kind-cluster/down.sh --name $KC_NAME
EOF
