#!/usr/bin/env bash
# kind-cluster/ checked without Docker, kind, Helm or a cluster (none of which the project's CI
# machines have):
#  (a) shellcheck -x of every kind-cluster/*.sh and of this file: any finding fails;
#  (b) every script's --dry-run with docker, kind, helm and kubectl off PATH (they must not be
#      needed), then again with stubs of them that record any call (none may happen); the
#      union of version strings the dry-runs print must be exactly the set pinned in
#      kind-cluster/versions.env; the install order and the printed harness command;
#  (c) --help of each script exits 0 and mentions --dry-run; an unknown flag exits 2;
#  (d) the Dockerfile's structure (stages, pinned base, real CMake targets, models, user,
#      exec-form entrypoint) and the root .dockerignore;
#  (e) every YAML under kind-cluster/ parses, raw and rendered; the runtimes, the models Job, the
#      kind config and the runtime-comparison scenario are consistent with each other and the repo;
#  (f) with BIN_DIR holding a built harness: the scenario parses (`harness run` on an endpoint
#      target, where it is skipped for lack of a control plane).
#
# Usage: kind_scripts_test.sh REPO_ROOT [BIN_DIR]. Exit 0 pass, 1 fail, 77 skipped (no shellcheck
# or no python3 with PyYAML).
set -euo pipefail
root="$(cd "${1:?usage: kind_scripts_test.sh REPO_ROOT [BIN_DIR]}" && pwd)"
bin_dir="${2:-}"
kc="$root/kind-cluster"

if ! command -v shellcheck >/dev/null 2>&1; then
  echo "SKIPPED: shellcheck is not installed (Debian: apt-get install shellcheck)"
  exit 77
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "SKIPPED: python3 with PyYAML is not installed (Debian: apt-get install python3-yaml)"
  exit 77
fi

failed=0
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failed=1
}
pass() { printf 'ok    %s\n' "$*"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
scripts=(up.sh down.sh status.sh load-images.sh)

# ---- (a) shellcheck ---------------------------------------------------------------------------
if (cd "$root" && shellcheck -x kind-cluster/*.sh tests/kind/kind_scripts_test.sh) >"$work/shellcheck.txt" 2>&1; then
  pass "shellcheck -x kind-cluster/*.sh tests/kind/kind_scripts_test.sh"
else
  cat "$work/shellcheck.txt" >&2
  fail "shellcheck found the issues above"
fi
for s in "${scripts[@]}" bundle.sh; do
  [ -x "$kc/$s" ] || fail "kind-cluster/$s is not executable (chmod +x)"
done

# ---- (b) dry-runs without docker, kind, helm, kubectl -----------------------------------------
# PATH without those four: directories that hold one are replaced by a directory of links to
# everything else in them.
banned="docker kind helm kubectl"
stripped=""
i=0
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [ -d "$d" ] || continue
  has=0
  for b in $banned; do [ -e "$d/$b" ] && has=1; done
  if [ "$has" = 0 ]; then
    stripped="$stripped:$d"
    continue
  fi
  i=$((i + 1))
  farm="$work/path$i"
  mkdir -p "$farm"
  for f in "$d"/*; do
    name="${f##*/}"
    case " $banned " in *" $name "*) continue ;; esac
    [ -x "$f" ] && [ ! -e "$farm/$name" ] && ln -s "$f" "$farm/$name"
  done
  stripped="$stripped:$farm"
done
stripped="${stripped#:}"
for b in $banned; do
  if PATH="$stripped" command -v "$b" >/dev/null 2>&1; then
    fail "test setup: $b is still on the stripped PATH"
  fi
done
# Stubs that record any call, for the second round.
mkdir -p "$work/stubs"
for b in $banned; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 1\n' "$b" "$work" >"$work/stubs/$b"
  chmod +x "$work/stubs/$b"
done

# name|command (relative to the repository root)
runs=(
  "up-istio|kind-cluster/up.sh --dry-run"
  "up-kourier|kind-cluster/up.sh --dry-run --network-layer kourier --autoscaler default --http-port 9080 --name other"
  "up-skip-image|kind-cluster/up.sh --dry-run --skip-image"
  "down|kind-cluster/down.sh --dry-run"
  "status|kind-cluster/status.sh --dry-run"
  "load-images|kind-cluster/load-images.sh --dry-run"
)
for entry in "${runs[@]}"; do
  name="${entry%%|*}"
  cmd="${entry#*|}"
  code=0
  # shellcheck disable=SC2086 # the command line is split on purpose
  (cd "$root" && PATH="$stripped" $cmd) >"$work/$name.out" 2>&1 || code=$?
  if [ "$code" = 0 ]; then
    pass "$cmd (docker, kind, helm, kubectl off PATH)"
  else
    cat "$work/$name.out" >&2
    fail "$cmd exited $code without docker, kind, helm and kubectl on PATH"
  fi
  rm -f "$work/calls"
  # shellcheck disable=SC2086
  (cd "$root" && PATH="$work/stubs:$stripped" $cmd) >/dev/null 2>&1 || true
  if [ -s "$work/calls" ]; then
    fail "$cmd ran, in --dry-run: $(tr '\n' ';' <"$work/calls")"
  fi
done
cat "$work"/*.out >"$work/all-dry-runs.txt"

# The version strings printed, against versions.env.
if python3 - "$kc/versions.env" "$work/all-dry-runs.txt" <<'PY'; then
import re, sys

# A version-looking token: digits with at least one dot (v optional), not right after a digit or
# a dot: v1.21.1, 1.27.1, 12.13, 0.1.0 (of 0.1.0-kind). Exclusions, by one rule each:
#  - four dotted numbers without a "v" are IPv4 addresses (127.0.0.1, 0.0.0.0);
#  - resource quantities and durations (5m, 128Mi, 600s) have no dot, so never match.
# Image digests are tokens too: sha256:<64 hex>.
VERSION = re.compile(r'(?<![0-9.])v?[0-9]+(?:\.[0-9]+)+')
DIGEST = re.compile(r'sha256:[0-9a-f]{64}')
IPV4 = re.compile(r'^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$')

def tokens(text):
    found = set(DIGEST.findall(text))
    for t in VERSION.findall(DIGEST.sub(' ', text)):
        if not IPV4.match(t):
            found.add(t)
    return found

env_path, out_path = sys.argv[1], sys.argv[2]
values = {}
ok = True
for n, line in enumerate(open(env_path), 1):
    line = line.rstrip('\n')
    if not line.strip() or line.lstrip().startswith('#'):
        continue
    m = re.fullmatch(r'([A-Z][A-Z0-9_]*)=([^\s\'"$`\\]+)', line)
    if not m:
        print(f'FAIL: versions.env:{n}: not a plain NAME=value line: {line!r}', file=sys.stderr)
        ok = False
        continue
    values[m.group(1)] = m.group(2)
for need in ('KIND_VERSION', 'KIND_NODE_IMAGE', 'KUBECTL_VERSION', 'HELM_VERSION', 'CERT_MANAGER_VERSION',
             'ISTIO_VERSION', 'KNATIVE_OPERATOR_VERSION', 'KNATIVE_SERVING_VERSION', 'KSERVE_VERSION',
             'KH_IMAGE', 'KH_IMAGE_TAG', 'DEBIAN_IMAGE'):
    if need not in values:
        print(f'FAIL: versions.env has no {need}', file=sys.stderr)
        ok = False
if values.get('KH_IMAGE_TAG', 'latest') in ('latest', ''):
    print('FAIL: versions.env KH_IMAGE_TAG must be a fixed tag, not latest', file=sys.stderr)
    ok = False
if not re.fullmatch(r'debian:[0-9][0-9.]*-slim(@sha256:[0-9a-f]{64})?', values.get('DEBIAN_IMAGE', '')):
    print('FAIL: versions.env DEBIAN_IMAGE must be debian:<point release>-slim[@sha256:<digest>]', file=sys.stderr)
    ok = False
if not re.fullmatch(r'kindest/node:v[0-9.]+@sha256:[0-9a-f]{64}', values.get('KIND_NODE_IMAGE', '')):
    print('FAIL: versions.env KIND_NODE_IMAGE must be pinned by tag and digest', file=sys.stderr)
    ok = False

out = open(out_path).read()
pinned = set()
for v in values.values():
    pinned |= tokens(v)
printed = tokens(out)
for name, v in sorted(values.items()):
    if v not in out:
        print(f'FAIL: versions.env {name}={v} is never printed by the dry-runs (unused pin?)', file=sys.stderr)
        ok = False
for t in sorted(pinned - printed):
    print(f'FAIL: pinned version {t} is not printed by any dry-run', file=sys.stderr)
    ok = False
for t in sorted(printed - pinned):
    lines = [l.strip() for l in out.splitlines() if t in l][:3]
    print(f'FAIL: the dry-runs print version {t}, which versions.env does not pin: {lines}', file=sys.stderr)
    ok = False
if ok:
    print(f'ok    dry-run versions = versions.env: {", ".join(sorted(pinned))}')
sys.exit(0 if ok else 1)
PY
  :
else
  fail "the dry-runs' versions differ from versions.env (above)"
fi

# What the default dry-run installs, in the recipe's order.
order=(
  "kind create cluster --name kserve --config=-"
  "upgrade --install cert-manager jetstack/cert-manager"
  "upgrade --install istio-base istio/base"
  "upgrade --install istiod istio/istiod"
  "upgrade --install istio-ingressgateway istio/gateway"
  "patch svc istio-ingressgateway"
  "apply -f $kc/manifests/istio-ingressclass.yaml"
  "upgrade --install knative-operator"
  "kind: KnativeServing"
  "wait --for=condition=Ready -n knative-serving KnativeServing knative-serving"
  "upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd"
  "upgrade --install kserve-resources oci://ghcr.io/kserve/charts/kserve-resources"
  "wait deployment/kserve-controller-manager -n kserve --for=condition=Available"
  "upgrade --install kserve-runtime-configs oci://ghcr.io/kserve/charts/kserve-runtime-configs"
  "docker build -f kind-cluster/Dockerfile"
  "kind load docker-image"
  "kind: ClusterServingRuntime"
  "kind: PersistentVolumeClaim"
  "--for=condition=complete job/kh-models-fill"
  "build/release/bin/harness run --suite scenarios --target kube --context kind-kserve --ingress 127.0.0.1:8080 --model-store pvc://kh-models --apply-autoscaler-config"
)
last=0
for p in "${order[@]}"; do
  n="$(grep -nF -- "$p" "$work/up-istio.out" | head -n 1 | cut -d: -f1)"
  if [ -z "$n" ]; then
    fail "up.sh --dry-run does not print: $p"
  elif [ "$n" -le "$last" ]; then
    fail "up.sh --dry-run prints '$p' out of the recipe's order (line $n)"
  else
    last="$n"
  fi
done
pass "up.sh --dry-run: install steps in the recipe's order, then the harness command"
grep -q 'nodePort":31080' "$work/up-istio.out" || fail "up.sh does not patch the gateway to nodePort 31080"
grep -q 'stable-window: "6s"' "$work/up-istio.out" || fail "--autoscaler short (default) is not stable-window 6s"
grep -q 'localhost:5001' "$work/up-istio.out" || fail "registries-skipping-tag-resolving lacks the local registries"

# Kourier: no Istio at all; Kourier enabled and exposed; KServe without VirtualServices.
k="$work/up-kourier.out"
if grep -Eq 'istio/(base|istiod|gateway)|istio-ingressclass|net-istio' "$k"; then
  fail "up.sh --network-layer kourier still installs Istio pieces"
fi
for p in "kourier:" "ingress-class: \"kourier.ingress.networking.knative.dev\"" \
  "kserve.controller.gateway.disableIstioVirtualHost=true" "patch svc kourier" \
  'stable-window: "60s"' "allow-zero-initial-scale: \"false\"" "hostPort: 9080" "hostPort: 9081" \
  "--context kind-other --ingress 127.0.0.1:9080"; do
  grep -qF -- "$p" "$k" || fail "up.sh --network-layer kourier --autoscaler default --http-port 9080 --name other does not print: $p"
done
pass "up.sh --network-layer kourier: no Istio, Kourier NodePort, disableIstioVirtualHost"
grep -q "docker build" "$work/up-skip-image.out" && fail "up.sh --skip-image still builds the image"
grep -qx "+ kind delete cluster --name kserve" "$work/down.out" || fail "down.sh --dry-run does not print kind delete cluster"

# ---- (c) --help and bad flags -------------------------------------------------------------------
for s in "${scripts[@]}"; do
  if out="$(PATH="$stripped" "$kc/$s" --help 2>&1)"; then
    case "$out" in
      *--dry-run*) pass "$s --help" ;;
      *) fail "$s --help does not mention --dry-run" ;;
    esac
  else
    fail "$s --help exits non-zero"
  fi
  code=0
  PATH="$stripped" "$kc/$s" --no-such-flag >/dev/null 2>&1 || code=$?
  [ "$code" = 2 ] || fail "$s --no-such-flag exits $code, not 2"
done

# ---- (d) Dockerfile and .dockerignore ------------------------------------------------------------
if python3 - "$root" <<'PY'; then
import json, os, re, sys

root = sys.argv[1]
errors = []
text = open(os.path.join(root, 'kind-cluster/Dockerfile')).read()
# Instructions, continuation lines joined, comments dropped.
logical, cur = [], ''
for raw in text.splitlines():
    if raw.lstrip().startswith('#') and not cur:
        continue
    cur += raw.rstrip('\\').rstrip() + ' ' if raw.rstrip().endswith('\\') else raw
    if not raw.rstrip().endswith('\\'):
        if cur.strip():
            logical.append(cur.strip())
        cur = ''
instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if ' ' in l else '') for l in logical]

env = dict(re.findall(r'^([A-Z][A-Z0-9_]*)=(\S+)$', open(os.path.join(root, 'kind-cluster/versions.env')).read(), re.M))
args = {a.split('=', 1)[0]: a.split('=', 1)[1] if '=' in a else None for k, a in instr if k == 'ARG'}
if args.get('DEBIAN_IMAGE') != env.get('DEBIAN_IMAGE'):
    errors.append(f"ARG DEBIAN_IMAGE default {args.get('DEBIAN_IMAGE')!r} is not versions.env's {env.get('DEBIAN_IMAGE')!r}")
froms = [a for k, a in instr if k == 'FROM']
if len(froms) < 2:
    errors.append(f'{len(froms)} FROM line(s): a build stage and a runtime stage are expected')
for f in froms:
    image = f.split()[0]
    if image != '${DEBIAN_IMAGE}':
        errors.append(f'FROM {f}: every stage must start from the pinned ${{DEBIAN_IMAGE}}')
    if ':latest' in f:
        errors.append(f'FROM {f}: :latest')
if ':latest' in text:
    errors.append('the Dockerfile mentions :latest')

# CMake executable targets and their output names.
targets = {}
for dirpath, _, files in os.walk(root):
    if '/build' in dirpath or '/.git' in dirpath:
        continue
    for fn in files:
        if fn != 'CMakeLists.txt':
            continue
        cm = open(os.path.join(dirpath, fn)).read()
        for t in re.findall(r'add_executable\(\s*([A-Za-z0-9_]+)', cm):
            m = re.search(r'set_target_properties\(\s*' + t + r'\s+PROPERTIES\s+OUTPUT_NAME\s+([A-Za-z0-9_-]+)', cm)
            targets[t] = m.group(1) if m else t
run = ' '.join(a for k, a in instr if k == 'RUN')
m = re.search(r'--target((?:\s+[A-Za-z0-9_]+)+)', run)
built = m.group(1).split() if m else []
if not built:
    errors.append('no `cmake --build ... --target` in the Dockerfile')
for t in built:
    if t not in targets:
        errors.append(f'--target {t} is not an add_executable target in the repository')
bundled = []
for k, a in instr:
    m = re.search(r'kind-cluster/bundle\.sh\s+(\S+)\s+(\S+)((?:\s+[A-Za-z0-9_-]+)+?)\s*(?:&&|$)', a) if k == 'RUN' else None
    if m:
        bundled = m.group(3).split()
if sorted(bundled) != sorted(targets.get(t, '?') for t in built):
    errors.append(f'bundle.sh copies {bundled}, but the targets built produce {[targets.get(t) for t in built]}')
if '-DKH_WITH_CUDA=OFF' not in run or '--preset release' not in run:
    errors.append('the build is not `cmake --preset release -DKH_WITH_CUDA=OFF`')
copies = [a for k, a in instr if k == 'COPY']
if not any(re.match(r'reference-impl/models/?\s', c) for c in copies):
    errors.append('no COPY of reference-impl/models into the image')
elif not os.path.isdir(os.path.join(root, 'reference-impl/models')):
    errors.append('reference-impl/models does not exist')
users = [a.strip() for k, a in instr if k == 'USER']
if not users or users[-1].split(':')[0] in ('root', '0'):
    errors.append(f'the final USER must be non-root (got {users[-1] if users else "none"})')
entry = [a for k, a in instr if k == 'ENTRYPOINT']
try:
    ep = json.loads(entry[-1]) if entry else None
except ValueError:
    ep = None
if not isinstance(ep, list) or not ep:
    errors.append('ENTRYPOINT must be exec form (a JSON array)')
elif ep[0] not in ('/opt/kserve-harness/bin/' + b for b in bundled):
    errors.append(f'ENTRYPOINT {ep[0]} is not one of the bundled executables')
expose = ' '.join(a for k, a in instr if k == 'EXPOSE').split()
if sorted(expose) != ['8080', '8081']:
    errors.append(f'EXPOSE {expose}, expected 8080 8081')
# Every package the build stage leaves out is in scripts/common.sh's list.
common = open(os.path.join(root, 'scripts/common.sh')).read()
pkgs = re.search(r'KH_PACKAGES=\((.*?)\n\)', common, re.S).group(1)
pkgs = set(w for line in pkgs.splitlines() for w in line.split('#')[0].split())
m = re.search(r'case "\$p" in\s+([a-z0-9| .+-]+)\)', run)
for p in (m.group(1).replace('|', ' ').split() if m else []):
    if p not in pkgs:
        errors.append(f'the Dockerfile leaves out {p}, which scripts/common.sh KH_PACKAGES does not hold')

ignore = [l.strip() for l in open(os.path.join(root, '.dockerignore')) if l.strip() and not l.startswith('#')]
for need in ('.git', 'build', 'reports'):
    if need not in ignore:
        errors.append(f'.dockerignore does not exclude {need}')
for keep in ('reference-impl', 'scripts', 'cmake', 'CMakeLists.txt', 'CMakePresets.json', 'common', 'fuzz', 'harness'):
    if keep in ignore or keep + '/' in ignore:
        errors.append(f'.dockerignore excludes {keep}, which the image build needs')
if '!kind-cluster/bundle.sh' not in ignore:
    errors.append('.dockerignore must keep kind-cluster/bundle.sh')

for e in errors:
    print('FAIL: Dockerfile: ' + e, file=sys.stderr)
if not errors:
    print(f'ok    Dockerfile: {len(froms)} stages from ${{DEBIAN_IMAGE}}, targets {built} -> {bundled}, user {users[-1]}, entrypoint {ep}')
sys.exit(1 if errors else 0)
PY
  :
else
  fail "Dockerfile structure (above)"
fi

# ---- (e) YAML: raw and rendered ----------------------------------------------------------------
render() {
  # render TEMPLATE [BLOCK...]: through lib.sh's kc_render, with up.sh's default settings.
  bash -c 'set -euo pipefail
    source "$1/kind-cluster/lib.sh"
    KC_HTTP_PORT=8080 KC_SPARE_PORT=8081
    KC_AS_STABLE_WINDOW=6s KC_AS_GRACE=6s KC_AS_RETENTION=0s KC_AS_ZERO_INITIAL=true
    kc_render "${@:2}"' _ "$root" "$@"
}
mkdir -p "$work/rendered"
for t in kind-config.yaml manifests/runtimes.yaml manifests/models.yaml manifests/istio-ingressclass.yaml; do
  render "$kc/$t" >"$work/rendered/$(basename "$t")" || fail "rendering $t"
done
render "$kc/manifests/knative-serving.yaml" istio >"$work/rendered/knative-serving-istio.yaml" || fail "rendering knative-serving.yaml (istio)"
render "$kc/manifests/knative-serving.yaml" kourier >"$work/rendered/knative-serving-kourier.yaml" || fail "rendering knative-serving.yaml (kourier)"
nodeport="$(bash -c 'source "$1/kind-cluster/lib.sh"; echo "$KC_NODEPORT_HTTP"' _ "$root")"

if python3 - "$root" "$work/rendered" "$nodeport" <<'PY'; then
import glob, os, re, sys
import yaml

root, rendered, nodeport = sys.argv[1], sys.argv[2], int(sys.argv[3])
kc = os.path.join(root, 'kind-cluster')
errors = []

def load(path):
    try:
        return [d for d in yaml.safe_load_all(open(path)) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f'{os.path.relpath(path, root)}: does not parse: {e}')
        return []

raw = sorted(glob.glob(os.path.join(kc, '**', '*.yaml'), recursive=True))
for p in raw:
    load(p)
docs = {os.path.basename(p): load(p) for p in glob.glob(os.path.join(rendered, '*.yaml'))}
for name, text in ((n, open(os.path.join(rendered, n)).read()) for n in docs):
    if re.search(r'\$\{', text):
        errors.append(f'rendered {name} still holds a ${{...}} placeholder')

env = dict(re.findall(r'^([A-Z][A-Z0-9_]*)=(\S+)$', open(os.path.join(kc, 'versions.env')).read(), re.M))
image = env['KH_IMAGE'] + ':' + env['KH_IMAGE_TAG']

# ClusterServingRuntimes.
runtimes = {d['metadata']['name']: d for d in docs.get('runtimes.yaml', []) if d.get('kind') == 'ClusterServingRuntime'}
if sorted(runtimes) != sorted(['kh-xgboost', 'kh-dense', 'kh-xgboost-grpc', 'kh-dense-grpc']):
    errors.append(f'runtimes.yaml defines {sorted(runtimes)}')
for name, d in runtimes.items():
    spec = d['spec']
    for c in spec['containers']:
        if c.get('name') != 'kserve-container':
            errors.append(f'{name}: container {c.get("name")!r}, KServe needs kserve-container')
        img = c.get('image', '')
        if img.endswith(':latest') or ':' not in img.rsplit('/', 1)[-1]:
            errors.append(f'{name}: image {img!r} is latest or untagged')
        if img != image:
            errors.append(f'{name}: image {img!r}, expected {image!r} (versions.env)')
        args = c.get('args', [])
        for want in ('--model_name={{.Name}}', '--model_dir=/mnt/models', '--http_port=8080', '--host=0.0.0.0'):
            if want not in args:
                errors.append(f'{name}: args lack {want}')
        ports = c.get('ports', [])
        grpc = name.endswith('-grpc')
        want_ports = [{'name': 'h2c', 'containerPort': 8081, 'protocol': 'TCP'}] if grpc else [{'containerPort': 8080, 'protocol': 'TCP'}]
        if ports != want_ports:
            errors.append(f'{name}: ports {ports}, expected {want_ports} (Knative exposes one port)')
        if grpc and '--grpc_port=8081' not in args:
            errors.append(f'{name}: no --grpc_port=8081')
        probe = c.get('readinessProbe', {}).get('httpGet', {})
        if probe.get('path') != '/v2/health/ready' or probe.get('port') != 8080:
            errors.append(f'{name}: readiness probe {probe}, expected GET /v2/health/ready on 8080')
        res = c.get('resources', {})
        if not res.get('requests') or not res.get('limits'):
            errors.append(f'{name}: no resource requests and limits (KServe defaults to 1 CPU / 2Gi)')
    for f in spec['supportedModelFormats']:
        if name.endswith('-grpc') and f.get('autoSelect'):
            errors.append(f'{name}: gRPC variants must not be auto-selected')
    if name == 'kh-xgboost':
        prio = [f.get('priority') for f in spec['supportedModelFormats'] if f['name'] == 'xgboost']
        if prio != [2]:
            errors.append(f'kh-xgboost: xgboost priority {prio}, expected 2 (above kserve-xgbserver\'s 1)')
# The modelserver serves the probe path and the flags the runtimes pass.
main_cc = open(os.path.join(root, 'reference-impl/modelserver/src/main.cc')).read()
for flag in ('--model_name', '--model_dir', '--http_port', '--grpc_port', '--host', '--runtime'):
    if f'"{flag}"' not in main_cc:
        errors.append(f'the runtimes pass {flag}, which reference-impl/modelserver/src/main.cc does not define')
if '"/health/ready"' not in open(os.path.join(root, 'reference-impl/modelserver/src/rest_handler.cc')).read():
    errors.append('the modelserver does not serve /v2/health/ready')

# Models PVC and Job.
models = {d['kind']: d for d in docs.get('models.yaml', [])}
pvc, job = models.get('PersistentVolumeClaim'), models.get('Job')
if not pvc or pvc['metadata']['name'] != 'kh-models' or pvc['spec'].get('storageClassName') != 'standard':
    errors.append('models.yaml: no PVC kh-models on StorageClass standard')
if not job:
    errors.append('models.yaml: no Job')
else:
    c = job['spec']['template']['spec']['containers'][0]
    if c['image'] != image:
        errors.append(f'models Job image {c["image"]!r}, expected {image!r}')
    if c.get('command', [None])[0] != 'cp' or '/opt/kserve-harness/models/.' not in c.get('command', []):
        errors.append(f'models Job command {c.get("command")}: expected cp -r /opt/kserve-harness/models/. ...')

# kind config: the mapped containerPort is the nodePort up.sh patches.
kind = docs.get('kind-config.yaml', [{}])[0]
maps = kind.get('nodes', [{}])[0].get('extraPortMappings', [])
if not maps or maps[0].get('containerPort') != nodeport or maps[0].get('hostPort') != 8080 or maps[0].get('listenAddress') != '127.0.0.1':
    errors.append(f'kind-config.yaml first mapping {maps[:1]}, expected containerPort {nodeport} -> 127.0.0.1:8080')
if kind.get('nodes', [{}])[0].get('image') != env['KIND_NODE_IMAGE']:
    errors.append('kind-config.yaml does not use versions.env KIND_NODE_IMAGE')

# KnativeServing: version, local registries, the network layer's pieces.
for layer in ('istio', 'kourier'):
    ks = [d for d in docs.get(f'knative-serving-{layer}.yaml', []) if d.get('kind') == 'KnativeServing']
    if len(ks) != 1:
        errors.append(f'knative-serving.yaml ({layer}): {len(ks)} KnativeServing documents')
        continue
    spec = ks[0]['spec']
    if spec.get('version') != env['KNATIVE_SERVING_VERSION']:
        errors.append(f'KnativeServing ({layer}) version {spec.get("version")!r}')
    skip = spec['config']['deployment']['registries-skipping-tag-resolving'].split(',')
    for reg in ('nvcr.io', 'index.docker.io', 'kind.local', 'ko.local', 'dev.local', 'localhost:5001'):
        if reg not in skip:
            errors.append(f'KnativeServing ({layer}): {reg} not in registries-skipping-tag-resolving')
    if set(spec['config'].get('autoscaler', {})) != {'stable-window', 'scale-to-zero-grace-period',
                                                      'scale-to-zero-pod-retention-period', 'enable-scale-to-zero',
                                                      'allow-zero-initial-scale'}:
        errors.append(f'KnativeServing ({layer}): autoscaler keys {sorted(spec["config"].get("autoscaler", {}))}')
    workloads = {w['name'] for w in spec.get('workloads', [])}
    kourier = spec.get('ingress', {}).get('kourier', {}).get('enabled') is True
    if (layer == 'kourier') != kourier:
        errors.append(f'KnativeServing ({layer}): ingress.kourier.enabled is {kourier}')
    if layer == 'kourier' and (spec['config'].get('network', {}).get('ingress-class') != 'kourier.ingress.networking.knative.dev'
                               or 'net-istio-controller' in workloads or '3scale-kourier-gateway' not in workloads):
        errors.append('KnativeServing (kourier): ingress-class or workloads wrong')
    if layer == 'istio' and ('network' in spec['config'] or 'net-istio-controller' not in workloads or 'net-kourier-controller' in workloads):
        errors.append('KnativeServing (istio): network config or workloads wrong')

# The runtime-comparison scenario: files it names exist, runtimes exist, models exist.
sc_dir = os.path.join(kc, 'scenarios')
for sc_path in glob.glob(os.path.join(sc_dir, '*.yaml')):
    sc = yaml.safe_load(open(sc_path))
    rel = os.path.relpath(sc_path, root)
    for m in sc.get('manifests', []):
        mp = os.path.join(sc_dir, m)
        if not os.path.isfile(mp):
            errors.append(f'{rel}: manifest {m} does not exist')
            continue
        for isvc in (d for d in load(mp) if d.get('kind') == 'InferenceService'):
            model = isvc['spec']['predictor']['model']
            rt = model.get('runtime')
            if rt not in runtimes and rt != 'kserve-xgbserver':
                errors.append(f'{m}: runtime {rt!r} is neither ours nor kserve-xgbserver')
            uri = model.get('storageUri', '')
            mm = re.fullmatch(r'pvc://kh-models/([A-Za-z0-9_-]+)', uri)
            if not mm or not os.path.isdir(os.path.join(root, 'reference-impl/models', mm.group(1))):
                errors.append(f'{m}: storageUri {uri!r} is not pvc://kh-models/<a reference-impl/models dir>')
    for step in sc.get('steps', []):
        load_step = step.get('load') if isinstance(step, dict) else None
        if isinstance(load_step, dict) and 'input' in load_step:
            if not os.path.isfile(os.path.join(sc_dir, load_step['input'])):
                errors.append(f'{rel}: load input {load_step["input"]} does not exist')

for e in errors:
    print('FAIL: ' + e, file=sys.stderr)
if not errors:
    print(f'ok    {len(raw)} YAML files parse; rendered runtimes, models, kind config, KnativeServing (istio, kourier) and the scenario are consistent')
sys.exit(1 if errors else 0)
PY
  :
else
  fail "manifests (above)"
fi

# ---- (f) the scenario through the harness's own parser, when it is built ----------------------
if [ -n "$bin_dir" ] && [ -x "$bin_dir/harness" ]; then
  if (cd "$root" && "$bin_dir/harness" run kind-cluster/scenarios/runtime-comparison.yaml \
    --target endpoint http://127.0.0.1:9 --model x --out "$work/report") >"$work/harness.txt" 2>&1; then
    pass "harness parses kind-cluster/scenarios/runtime-comparison.yaml"
  else
    cat "$work/harness.txt" >&2
    fail "harness run refuses kind-cluster/scenarios/runtime-comparison.yaml"
  fi
else
  echo "note  no harness in '${bin_dir:-}': the scenario was checked as YAML only"
fi

if [ "$failed" != 0 ]; then
  echo "kind-cluster checks FAILED" >&2
  exit 1
fi
echo "kind-cluster checks passed"
