#!/usr/bin/env bash
# The robustness report (#15): runs every attack and fault test we have and writes
# reports/robustness.md: each one's outcome, the fuzz smoke of every target, and the libFuzzer
# execution counts bench/fuzz.sh has reached (reports/fuzz/runs.jsonl).
#
# Usage: bench/robustness.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
kh_build
out="$KH_ROOT/reports"
mkdir -p "$out"
junit="$(mktemp)"
trap 'rm -f "$junit"' EXIT

# The tests that each stand for an attack or a fault (name regex -> what it shows).
selection='^(FaultSuite\.|Limits\.|ManifestTypes\.|ManifestYaml\.|fuzz\.|ModelServerBatching\.AFullQueue|RefstackAdminTest\.(BearerToken|AnUnwritableStateFile|AStalledModelDownload|BadInput)|ModelServer\.(OversizedBody|StalledHeaders|Sigterm)|JsonText\.|ParseJson\.NestingIsLimited|V2RequestErrors\.ABodyNested|kubeapi\.ApiHandlerTest\.BadInput|PassthroughTransformer\.ASlowPredictor|.*Sigkill|.*SIGKILL|.*Killed)'
kh_log "Running the robustness tests"
(cd "$KH_BUILD_DIR" && ctest -R "$selection" -j "$(nproc)" --output-junit "$junit" >/dev/null) || true

python3 - "$junit" "$out/fuzz/runs.jsonl" "$out/robustness.md" <<'PY'
import json, os, sys, datetime, xml.etree.ElementTree as ET
junit, runs_path, out = sys.argv[1:4]
cases = []
for tc in ET.parse(junit).getroot().iter("testcase"):
    status = tc.get("status", "run")
    failed = tc.find("failure") is not None or status == "fail"
    skipped = status in ("notrun", "disabled") or tc.find("skipped") is not None
    cases.append((tc.get("name"), "failed" if failed else "skipped" if skipped else "passed", float(tc.get("time", 0))))
explain = {
    "Limits.": "HTTP abuse (kh::http, every listener)",
    "ManifestTypes.": "mistyped manifest fields (found by fuzzing and by review)",
    "JsonText.": "JSON from outside: bytes that are not UTF-8, nesting a million deep, mistyped fields",
    "ParseJson.": "JSON from outside: bytes that are not UTF-8, nesting a million deep, mistyped fields",
    "V2RequestErrors.": "JSON from outside: bytes that are not UTF-8, nesting a million deep, mistyped fields",
    "kubeapi.ApiHandlerTest.": "JSON from outside: bytes that are not UTF-8, nesting a million deep, mistyped fields",
    "RefstackAdminTest.BadInput": "JSON from outside: bytes that are not UTF-8, nesting a million deep, mistyped fields",
    "PassthroughTransformer.": "a slow predictor behind the transformer holds only its own requests",
    "ManifestYaml.": "YAML that stalls the parser, alias bombs, deep nesting (found by fuzzing)",
    "fuzz.": "fuzz smoke: corpus replay + 2 s of seeded mutations",
    "ModelServerBatching.": "batch queue overflow: 503 / UNAVAILABLE",
    "RefstackAdminTest.BearerToken": "admin API bearer token",
    "RefstackAdminTest.AnUnwritable": "state directory unwritable or full",
    "RefstackAdminTest.AStalled": "storage download that stalls",
    "RefstackCli.": "refstack SIGKILLed under load and restarted on its state directory",
    "ModelServer.": "model server limits and graceful drain",
    "FaultSuite.": "fault suite (scenarios/faults): pods killed, hung, never answering, queues overflowing",
}
def group(name):
    for k, v in explain.items():
        if name.startswith(k):
            return v
    return "faults"
lines = [f"# Robustness report ({datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')})", "",
         "Written by `bench/robustness.sh`. Each row is a test that performs the attack or fault against the real",
         "component (processes on loopback) and fails if the component misbehaves.", "",
         "| group | test | outcome | seconds |", "|---|---|---|---|"]
for name, outcome, t in sorted(cases, key=lambda c: (group(c[0]), c[0])):
    lines.append(f"| {group(name)} | `{name}` | {outcome} | {t:.1f} |")
passed = sum(1 for c in cases if c[1] == "passed")
lines += ["", f"{passed} of {len(cases)} passed.", "", "## libFuzzer (ASan + UBSan), `bench/fuzz.sh TARGET EXECS`", ""]
targets = ["v2_json", "binary_extension", "v1_json", "proto_convert", "safetensors", "dense_config",
           "manifest", "scenario", "http_request", "gjson_graph"]
runs = {}
if os.path.exists(runs_path):
    for l in open(runs_path):
        if l.strip():
            r = json.loads(l)
            runs.setdefault(r["target"], []).append(r)
# Runs of one target share its corpus (reports/fuzz/corpus/TARGET), so a later run goes on from
# where the earlier stopped: the count that matters is the executions since the last crash. Exit
# 72 is libFuzzer's for an interrupted run (SIGINT), not a crash.
def crashed(r):
    return r["exit"] not in (0, 72)
lines += ["| target | executions since the last crash | runs | seconds | exec/s | crashes found (all runs) |",
          "|---|---|---|---|---|---|"]
for t in targets:
    rs = runs.get(t, [])
    if not rs:
        lines.append(f"| {t} | not run yet | | | | |")
        continue
    last_crash = max((i for i, r in enumerate(rs) if crashed(r)), default=-1)
    clean = rs[last_crash + 1:]
    execs = sum(r["executions"] for r in clean)
    secs = sum(r["seconds"] for r in clean)
    rate = f"{int(execs / secs):,}" if secs else ""
    crashes = sum(1 for r in rs if crashed(r))
    lines.append(f"| {t} | {execs:,} | {len(clean)} | {secs:.0f} | {rate} | {crashes} |")
lines += ["", "The goal is 10,000,000 executions per target with 0 crashes; targets below it have not had that run yet.",
          "A crash found earlier was fixed before the runs counted here (each fix has its own regression test)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
kh_log "wrote reports/robustness.md"
