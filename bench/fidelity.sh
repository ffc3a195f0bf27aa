#!/usr/bin/env bash
# Fidelity check (not a test, not in CI): `harness conform` against KServe's own Python model
# server, so that the suite's REF cases are checked against the server they describe and its
# SPEC failures are known departures of KServe. KServe's xgbserver and sklearnserver are not on
# PyPI (they ship as images), so the servers here are KServe's own ModelServer (PyPI `kserve`,
# REST V1/V2 and gRPC) with a model class written here that loads and predicts as those servers
# do (get_predict_input, predict, get_predict_response). Everything Python lives in a throwaway
# virtualenv under the work directory.
#
# Then real clients nobody here wrote (KServe's InferenceRESTClient and InferenceGRPCClient,
# Triton's tritonclient.http and .grpc) make every call they offer for a V2 model against our
# modelserver directly and through refstack's ingress (Host header; gRPC `host` metadata, as
# KServe's e2e clients send).
#
# Usage: bench/fidelity.sh [kserve_version=0.21.0]
# Prints the failing cases per KServe server and one line per client check; exits 1 when a REF
# case fails against KServe (a case that misdescribes KServe) or a client check fails against
# ours. KH_FIDELITY_VENV=DIR reuses a virtualenv (installing takes minutes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
version="${1:-0.21.0}"
kh_build kh_harness_main kh_modelserver_main kh_refstack_main
kh_bench_workdir
servers=()
stop_servers() {
  for p in "${servers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_servers; kh_bench_cleanup' EXIT

venv="${KH_FIDELITY_VENV:-$work/venv}"
if [ ! -x "$venv/bin/python" ]; then
  kh_log "Installing kserve==$version, tritonclient, xgboost and scikit-learn into $venv (minutes)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kserve==$version" xgboost scikit-learn "tritonclient[http,grpc]"
fi
py="$venv/bin/python"

# Models: iris as KServe's samples train it, saved where each server loads it from.
mkdir -p "$work/xgboost" "$work/sklearn"
"$py" - "$work" <<'PY'
import sys, os
import joblib, xgboost as xgb
from sklearn import svm
from sklearn.datasets import load_iris
work = sys.argv[1]
iris = load_iris()
booster = xgb.train({"max_depth": 6, "eta": 0.1, "num_class": 3, "objective": "multi:softmax"},
                    xgb.DMatrix(iris.data, label=iris.target))
booster.save_model(os.path.join(work, "xgboost", "model.json"))
joblib.dump(svm.SVC(gamma="scale").fit(iris.data, iris.target), os.path.join(work, "sklearn", "model.joblib"))
PY

# One KServe ModelServer per framework (bench/kserve_model_server.py).
cp "$(dirname "${BASH_SOURCE[0]}")/kserve_model_server.py" "$work/serve.py"

status=0
run_against() {  # run_against NAME FRAMEWORK
  local name="$1" framework="$2" http grpc
  http="$(kh_free_port)"; grpc="$(kh_free_port)"
  "$py" "$work/serve.py" --framework "$framework" --model_dir "$work/$framework" --model_name "$name" \
    --http_port "$http" --grpc_port "$grpc" --workers 1 >"$work/$name.log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  if ! curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null; then
    echo "KServe's server ($framework) did not start:" >&2; tail -20 "$work/$name.log" >&2; return 1
  fi
  kh_log "harness conform against KServe $version ModelServer ($framework, model $name)"
  set +e
  "$KH_BUILD_DIR/bin/harness" conform --target "http://127.0.0.1:$http" --grpc "127.0.0.1:$grpc" \
    --model "$name" --json "$work/$name.json" >"$work/$name.txt" 2>&1
  set -e
  "$py" - "$work/$name.json" "$name" <<'PY' || status=1
import json, sys
doc = json.load(open(sys.argv[1]))
name = sys.argv[2]
print(f"\n{name}: {doc['summary']}")
if doc["summary"].get("notice"):
    print("  note:", doc["summary"]["notice"])
bad = 0
for c in doc["cases"]:
    if c["result"] == "FAIL":
        kind = "REF case fails against KServe (the case is wrong)" if c["tag"] == "REF" else "KServe departs from the spec"
        if c["tag"] == "REF":
            bad += 1
        print(f"  FAIL {c['id']:<40} [{c['tag']} {c['level']} {c['protocol']}] {kind}: {c['detail'][:160]}")
sys.exit(1 if bad else 0)
PY
}
run_against iris xgboost
run_against sklearn-iris sklearn
stop_servers
servers=()

# Real clients against ours.
cp "$(dirname "${BASH_SOURCE[0]}")/fidelity_clients.py" "$work/clients.py"
clients() {  # clients HTTP_URL GRPC_ADDR MODEL [HOST]
  local family
  for family in kserve triton; do
    "$py" "$work/clients.py" "$family" "$@" 2>/dev/null || status=1
  done
}
"$KH_BUILD_DIR/bin/modelserver" --model_name iris --model_dir "$KH_ROOT/reference-impl/models/xgboost-iris" \
  --http_port 0 --grpc_port 0 --port_file "$work/ports.json" >"$work/ms.log" 2>&1 &
servers+=($!)
for _ in $(seq 1 200); do grep -q "loaded and ready" "$work/ms.log" 2>/dev/null && break; sleep 0.05; done
ms_http="$(sed -E 's/.*"http_port": ([0-9]+).*/\1/' "$work/ports.json")"
ms_grpc="$(sed -E 's/.*"grpc_port": ([0-9]+).*/\1/' "$work/ports.json")"
kh_log "Real clients against our modelserver"
clients "http://127.0.0.1:$ms_http" "127.0.0.1:$ms_grpc" iris

kh_start_refstack
cat >"$work/iris-v2.yaml" <<YAML
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor:
    model:
      modelFormat: {name: xgboost}
      protocolVersion: v2
      storageUri: file://reference-impl/models/xgboost-iris
YAML
(cd "$KH_ROOT" && "${rs[@]}" apply -f "$work/iris-v2.yaml" >/dev/null)
for _ in $(seq 1 600); do
  "${rs[@]}" get isvc iris -o json 2>/dev/null | "$py" -c '
import json, sys
o = json.load(sys.stdin)
sys.exit(0 if any(c.get("type") == "Ready" and c.get("status") == "True" for c in o.get("status", {}).get("conditions", [])) else 1)' && break
  sleep 0.1
done
kh_log "Real clients through refstack's ingress (Host iris-default.example.com)"
clients "http://127.0.0.1:$ingress" "127.0.0.1:$grpc" iris iris-default.example.com
exit "$status"
