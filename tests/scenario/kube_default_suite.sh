#!/usr/bin/env bash
# The default suite through the kube target, as a user runs it against a cluster: refstack as the
# cluster (`refstack up`, its kubeconfig), the real kubectl, traffic through refstack's ingress,
# each scenario's config-autoscaler written into knative-serving/config-autoscaler, cold starts
# from the watched Pods and PodAutoscalers. Three scenarios are left out to keep CI within its
# time: they add nothing on this path (simulator-agreement, whose check the kube target skips;
# runtime-comparison and concurrency-backpressure, whose apply, loads and scale events the others
# exercise here); the embedded suite runs them.
# Usage: kube_default_suite.sh BIN_DIR SOURCE_DIR WORK_DIR. Exit 77 (skipped) without kubectl.
set -euo pipefail
bin="$1" src="$2" work="$3"
command -v kubectl >/dev/null || { echo "no kubectl on PATH: skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work/home"
cat > "$work/refstack.yaml" <<YAML
stateDir: $work/state
adminPort: 0
ingressPort: 0
grpcIngressPort: 0
autoscalerTickSeconds: 0.5
podGracePeriodSeconds: 3
YAML
cd "$src"
"$bin/refstack" up --config "$work/refstack.yaml" > "$work/refstack.log" 2>&1 &
rs=$!
trap 'kill $rs 2>/dev/null; wait $rs 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "refstack up:" "$work/refstack.log" && break
  kill -0 $rs 2>/dev/null || { cat "$work/refstack.log"; exit 1; }
  sleep 0.1
done
line=$(grep "refstack up:" "$work/refstack.log")
ingress=$(sed -E 's#.*ingress http://([0-9.]+:[0-9]+).*#\1#' <<<"$line")
grpc=$(sed -E 's#.* grpc [0-9.]+:([0-9]+).*#\1#' <<<"$line")
files=()
for f in "$src"/scenarios/*.yaml; do
  case "$(basename "$f")" in
    simulator-agreement.yaml | runtime-comparison.yaml | concurrency-backpressure.yaml) ;;
    *) files+=("$f") ;;
  esac
done
HOME="$work/home" "$bin/harness" run "${files[@]}" --target kube --kubeconfig "$work/state/kubeconfig" \
  --ingress "$ingress" --ingress-grpc-port "$grpc" --apply-autoscaler-config \
  --model-store file://reference-impl/models --out "$work/report"
