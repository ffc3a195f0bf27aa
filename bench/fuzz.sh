#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer for a
# given number of executions, and prints the count, the speed and any crash.
#
# The first run configures build/fuzz with clang (Debian's clang and libclang-rt-14-dev, which
# it installs as root) and -fsanitize=fuzzer-no-link,address,undefined for every library, then
# builds only what the target needs. New inputs libFuzzer finds go to reports/fuzz/corpus/TARGET
# (the committed seeds in fuzz/corpus/TARGET are only read); a crash leaves its input as
# reports/fuzz/crash-TARGET-* and the script exits 1. Each run appends a JSON line to
# reports/fuzz/runs.jsonl (target, executions, seconds, exec/s, crashes), which
# bench/robustness.sh reports.
#
# KH_FUZZ_JOBS=N runs N fuzzer processes at once on the same corpus (libFuzzer's -jobs/-workers;
# each reloads the corpus to pick up what the others find), EXECS split among them: one per core.
# When one job crashes the others are interrupted, so the run ends then with every job's count.
#
# Usage: [KH_FUZZ_JOBS=N] bench/fuzz.sh TARGET [EXECS=1000000] [libFuzzer flags...]
#        bench/fuzz.sh --list
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
targets=(v2_json binary_extension v1_json proto_convert safetensors dense_config manifest scenario http_request gjson_graph)
if [[ "${1:-}" == --list || $# -lt 1 ]]; then
  printf '%s\n' "${targets[@]}"
  [[ $# -lt 1 ]] && { echo "usage: bench/fuzz.sh TARGET [EXECS] [libFuzzer flags...]" >&2; exit 2; }
  exit 0
fi
target="$1"
execs="${2:-1000000}"
shift $(( $# >= 2 ? 2 : 1 ))
[[ " ${targets[*]} " == *" $target "* ]] || { echo "unknown fuzz target '$target' (bench/fuzz.sh --list)" >&2; exit 2; }

kh_install_packages clang libclang-rt-14-dev
build="$KH_ROOT/build/fuzz"
if [[ ! -f "$build/build.ninja" ]]; then
  san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -gline-tables-only"
  kh_log "Configuring build/fuzz (clang, $san)"
  CC=clang CXX=clang++ cmake -S "$KH_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DKH_FUZZ=ON -DKH_BUILD_TESTS=OFF -DKH_BUILD_BENCH=OFF -DKH_WITH_CUDA=OFF -DKH_STATIC_POD_LINK=OFF \
    -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" >/dev/null
fi
kh_log "Building ${target}_fuzz"
ninja -C "$build" -j "$(nproc)" "${target}_fuzz" >/dev/null

out="$KH_ROOT/reports/fuzz"
mkdir -p "$out/corpus/$target"
# http_request: the server frees a connection on its own thread, after the input has returned, so
# libFuzzer's per-input malloc/free count is nearly always unbalanced and it ran a full
# LeakSanitizer scan after almost every input (80% of the time: 1,000 exec/s instead of 4,000).
# libFuzzer's per-input leak check is off for that target alone (-detect_leaks=0, as libFuzzer's
# docs advise for targets whose frees land after the input); ASan's memory checks all stay on.
target_flags=()
[[ "$target" == http_request ]] && target_flags=(-detect_leaks=0)
# Inputs up to 64 KiB, except the YAML files (scenarios, manifests): the largest shipped one is
# 2 KiB, and at 64 KiB libFuzzer's inputs grew to 15 KiB and the runs slowed to a third (yaml-cpp
# under ASan), for nothing a real file has. 8 KiB is twice libFuzzer's own default of 4 KiB.
max_len=65536
[[ "$target" == scenario || "$target" == manifest ]] && max_len=8192
# ASan keeps the stack of every allocation in a depot that is never freed. yaml-cpp's recursive
# descent makes nearly every input's stacks new, so at 30 frames (the default) the depot grew by
# 1.2 KB an execution and its lookup took half the time (perf) after a million executions. Eight
# frames still name the allocation site in a report; a reproducer rerun shows the full stacks.
export ASAN_OPTIONS="malloc_context_size=8${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
jobs="${KH_FUZZ_JOBS:-1}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "KH_FUZZ_JOBS must be a positive integer, not '$jobs'" >&2; exit 2; }
job_flags=()
# libFuzzer writes each job's output to fuzz-JOB.log in the working directory, then copies it into
# its own output when the job ends; the jobs run from a scratch directory so nothing lands elsewhere.
jobs_dir="$out/jobs-$target"
rm -rf "$jobs_dir" && mkdir -p "$jobs_dir"
(( jobs > 1 )) && job_flags=(-jobs="$jobs" -workers="$jobs")
kh_log "Fuzzing $target for $execs executions${job_flags:+ in $jobs processes}"
start_ns=$(date +%s%N)
watcher=
if (( jobs > 1 )); then
  # libFuzzer's parent waits for every job to finish its runs even after one has crashed, which in
  # a long run can be hours. A crash leaves its artifact at once, so when one appears the other
  # jobs (this run's: their working directory is $jobs_dir) are interrupted, as Ctrl-C would: they
  # exit 72 with their counts, and the crashed job's code is the run's status. Only the fuzzer
  # processes are signalled, not the shells libFuzzer starts them through, or a job's count would
  # be read before it was written. The watcher ends with this script.
  touch "$jobs_dir/.started"
  (
    fuzzer="^$build/fuzz/${target}_fuzz -runs="
    while kill -0 $$ 2>/dev/null && [[ -d "$jobs_dir" ]]; do
      if [[ -n "$(find "$out" -maxdepth 1 -name "crash-$target-*" -not -name "crash-$target-slow-unit-*" \
                  -newer "$jobs_dir/.started" -print -quit 2>/dev/null)" ]]; then
        for pid in $(pgrep -f -- "$fuzzer"); do
          if [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$jobs_dir" ]]; then kill -INT "$pid" 2>/dev/null || true; fi
        done
        echo "a job crashed: the other jobs were interrupted" >&2
        break
      fi
      sleep 1
    done
  ) &
  watcher=$!
fi
set +e
(cd "$jobs_dir" && exec "$build/fuzz/${target}_fuzz" "${job_flags[@]}" -runs="$(( (execs + jobs - 1) / jobs ))" -print_final_stats=1 -max_len="$max_len" -timeout=10 \
  -artifact_prefix="$out/crash-$target-" "${target_flags[@]}" "$@" "$out/corpus/$target" "$KH_ROOT/fuzz/corpus/$target" \
  >"$out/$target.log" 2>&1)
rc=$?
if [[ -n "$watcher" ]]; then kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; fi
set -e
rm -rf "$jobs_dir"
if (( jobs > 1 )); then
  # The parent exits 1 if any job did not exit 0. An interrupted job (SIGINT) exits 72, which is
  # not a crash: the run's status is a job's other non-zero code, else 72 if any job was
  # interrupted or never reported, else 0.
  rc=$(grep -oE 'Job [0-9]+ exited with exit code -?[0-9]+' "$out/$target.log" | awk -v jobs="$jobs" '
    { n++ } $NF != 0 && $NF != 72 { bad = $NF } $NF == 72 { interrupted = 1 }
    END { print (bad != "") ? bad : (interrupted || n < jobs) ? 72 : 0 }' || true)
fi
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
done_execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out/$target.log" | grep -oE '[0-9]+$' | awk '{ n += $1 } END { print n + 0 }' || true)
# A slow unit (an input that took longer than libFuzzer's -report_slow_units, 10 s) is written
# beside the crashes but is a note, not a failure: a timeout is its own artifact and exit code.
crashes=$(find "$out" -maxdepth 1 -name "crash-$target-*" -not -name "crash-$target-slow-unit-*" | wc -l)
rate=$(( done_execs * 1000 / (elapsed_ms > 0 ? elapsed_ms : 1) ))
printf '{"target": "%s", "executions": %s, "seconds": %d.%03d, "exec_per_s": %s, "exit": %d, "crash_files": %d, "date": "%s"}\n' \
  "$target" "$done_execs" $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$rate" "$rc" "$crashes" "$(date -u +%FT%TZ)" >>"$out/runs.jsonl"
echo "$target: $done_execs executions in $((elapsed_ms / 1000)) s ($rate/s), libFuzzer exit $rc, crash files: $crashes"
if [[ $rc != 0 ]]; then
  grep -E "ERROR|SUMMARY|fuzz property|Test unit written" "$out/$target.log" | head -20 >&2
  echo "log: $out/$target.log" >&2
  exit 1
fi
