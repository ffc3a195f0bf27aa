#!/usr/bin/env bash
# Benchmark (not a test): refstack's Kubernetes API as kubectl and watchers use it.
#  1. `kubectl get isvc` latency (20 runs; the whole command, as a user waits for it) with one
#     InferenceService, and the server-side list time (curl) with 100;
#  2. `kubectl apply` of the xgboost iris model to `kubectl wait --for=condition=Ready` (5 runs);
#  3. watch fan-out: 100 watches of the InferenceServices open, one change, time until each
#     watcher has it (p50 / max);
#  4. refstack's RSS with 100 InferenceServices applied and scaled to zero (initial-scale 0).
# Prints the figures and writes them as JSON to $work/kube_api.json (printed at the end).
#
# Usage: bench/kube_api.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kh_build kh_refstack_main
command -v kubectl >/dev/null || { echo "kube_api.sh: needs kubectl" >&2; exit 2; }
kh_bench_workdir
admin="$(kh_free_port)"; ingress="$(kh_free_port)"; grpc="$(kh_free_port)"
(cd "$KH_ROOT" && exec "$KH_BUILD_DIR/bin/refstack" up --state-dir "$work/state" --admin-port "$admin" \
  --ingress-port "$ingress" --grpc-port "$grpc" >"$work/refstack.log" 2>&1) &
pid=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null && break; sleep 0.05; done
export KUBECONFIG="$work/state/kubeconfig" HOME="$work/home"
mkdir -p "$HOME"
cd "$KH_ROOT"
ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# 2. apply -> Ready, five services one after the other.
ready_ms=()
for i in 1 2 3 4 5; do
  sed "s/name: xgboost-iris/name: iris-$i/" reference-impl/manifests/xgboost-iris.yaml >"$work/iris-$i.yaml"
  t0=$(ms)
  kubectl apply -f "$work/iris-$i.yaml" >/dev/null
  kubectl wait --for=condition=Ready "isvc/iris-$i" --timeout=60s >/dev/null
  ready_ms+=($(( ($(ms) - t0) / 1000000 )))
done
kubectl delete isvc iris-2 iris-3 iris-4 iris-5 >/dev/null

# 1. get isvc, one service; the first run fills kubectl's discovery cache.
kubectl get isvc >/dev/null
get_ms=()
for _ in $(seq 1 20); do
  t0=$(ms); kubectl get isvc >/dev/null; get_ms+=($(( ($(ms) - t0) / 1000000 )))
done

# 4. 100 services scaled to zero from the start (Knative: allow-zero-initial-scale, initial-scale 0).
cat >"$work/config.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: knative-serving}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-autoscaler, namespace: knative-serving}
data: {allow-zero-initial-scale: "true"}
YAML
kubectl apply -f "$work/config.yaml" >/dev/null
kubectl delete isvc iris-1 >/dev/null
for i in $(seq 1 100); do
  cat <<YAML
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: zero-$i
  annotations: {autoscaling.knative.dev/initial-scale: "0"}
spec:
  predictor:
    minReplicas: 0
    model:
      modelFormat: {name: xgboost}
      storageUri: file://reference-impl/models/xgboost-iris
YAML
done >"$work/zero.yaml"
kubectl apply -f "$work/zero.yaml" >/dev/null
for _ in $(seq 1 600); do
  n=$(kubectl get isvc -o json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] if (i.get("status") or {}).get("observedGeneration") == 1))')
  [[ "$n" == 100 ]] && break
  sleep 0.1
done
pods=$(kubectl get pods -o name -l serving.kserve.io/inferenceservice | grep -c zero- || true)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
list_ms=()
for _ in $(seq 1 20); do
  t0=$(ms); curl -s "http://127.0.0.1:$admin/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices" >/dev/null
  list_ms+=($(( ($(ms) - t0) / 1000 )))  # microseconds
done
get100_ms=()
for _ in $(seq 1 10); do
  t0=$(ms); kubectl get isvc >/dev/null; get100_ms+=($(( ($(ms) - t0) / 1000000 )))
done

# 3. watch fan-out: 100 watches, one annotation change, each watcher's delay.
fanout=$(python3 - "$admin" <<'PY'
import http.client, json, subprocess, sys, threading, time
port = int(sys.argv[1])
path = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", path); rv = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]
got, opened = [], threading.Barrier(101)
def watch():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"{path}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dzero-1")
    resp = conn.getresponse()
    opened.wait()
    while True:
        line = resp.readline()
        if not line: return
        if json.loads(line)["type"] == "MODIFIED":
            got.append(time.monotonic()); return
threads = [threading.Thread(target=watch) for _ in range(100)]
for t in threads: t.start()
opened.wait(); time.sleep(0.5)
t0 = time.monotonic()
subprocess.run(["kubectl", "annotate", "isvc", "zero-1", "bench=1", "--overwrite"], check=True, capture_output=True)
for t in threads: t.join(30)
d = sorted((g - t0) * 1000 for g in got)
print(json.dumps({"watchers": 100, "received": len(d), "p50_ms": round(d[len(d)//2], 1), "max_ms": round(d[-1], 1)}))
PY
)

printf '%s\n' "${get_ms[@]}" | median >"$work/get"; printf '%s\n' "${ready_ms[@]}" | median >"$work/ready"
printf '%s\n' "${list_ms[@]}" | median >"$work/list"; printf '%s\n' "${get100_ms[@]}" | median >"$work/get100"
cat <<EOF | tee "$work/kube_api.json"
{"kubectl_get_isvc_ms_p50": $(cat "$work/get"), "kubectl_get_isvc_100_ms_p50": $(cat "$work/get100"),
 "list_100_isvc_server_us_p50": $(cat "$work/list"),
 "apply_to_ready_ms_p50": $(cat "$work/ready"), "apply_to_ready_ms": [$(IFS=,; echo "${ready_ms[*]}")],
 "watch_fanout": $fanout,
 "rss_100_isvc_at_zero_mb": $(( rss_kb / 1024 )), "pods_at_zero": $pods}
EOF
