#!/usr/bin/env bash
# Runs seeded simulation scenarios (sim/scenarios/*.toml) of the whole cluster in madsim.
#
#   scripts/sim.sh --scenario NAME --seed N
#   scripts/sim.sh --scenario NAME[,NAME...] --seeds A..B [--jobs J] [--check-determinism]
#                  [--release]
#   scripts/sim.sh --list
#
# One line per run (seed, verdict, ops, faults, simulated and wall seconds, violations
# per checker), then a summary. A failed run prints its violations, its log and the
# exact command that replays it. --check-determinism runs each seed twice in one process
# and once more in another, and fails if the trace hashes differ. Logs: target-madsim/sim-logs/SCENARIO-SEED.log (every drawn
# parameter, the fault log, the violations; SHALE_SIM_HISTORY=1 adds every op).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

scenarios=""
seeds=""
jobs=2
det=0
profile=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) scenarios="${2:?}"; shift 2 ;;
        --seed) seeds="${2:?}..${2:?}"; shift 2 ;;
        --seeds) seeds="${2:?}"; shift 2 ;;
        --jobs) jobs="${2:?}"; shift 2 ;;
        --check-determinism) det=1; shift ;;
        --release) profile=(--release); shift ;;
        --list)
            for f in sim/scenarios/*.toml; do basename "$f" .toml; done
            exit 0 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$scenarios" ] && [ -n "$seeds" ] || usage
case "$seeds" in
    *..*) first="${seeds%..*}"; last="${seeds#*..}" ;;
    *) usage ;;
esac
[[ "$first" =~ ^[0-9]+$ && "$last" =~ ^[0-9]+$ && "$first" -le "$last" ]] || {
    echo "--seeds wants A..B with A <= B" >&2; exit 2; }
IFS=',' read -r -a names <<< "$scenarios"
for n in "${names[@]}"; do
    if [ ! -f "sim/scenarios/$n.toml" ] && [ ! -f "sim/scenarios/planted/$n.toml" ]; then
        echo "no scenario $n (sim/scenarios/$n.toml); --list shows them" >&2
        exit 2
    fi
done

export RUSTFLAGS="--cfg madsim"
export CARGO_TARGET_DIR=target-madsim
build_log=$(mktemp)
if ! cargo test --ignore-rust-version "${profile[@]}" -p sim --test scenarios --no-run >"$build_log" 2>&1; then
    cat "$build_log" >&2
    exit 1
fi
bin=$(sed -n 's/.*Executable tests\/scenarios.rs (\(.*\))$/\1/p' "$build_log" | tail -1)
rm -f "$build_log"
[ -x "$bin" ] || { echo "could not find the scenarios test binary" >&2; exit 1; }

logs=target-madsim/sim-logs
mkdir -p "$logs"
# A private copy: a rebuild while the runs go on must not replace the binary under them.
copy="$logs/.scenarios-$$"
cp "$bin" "$copy"
trap 'rm -f "$copy"' EXIT
bin="$copy"
export SIM_BIN="$bin" SIM_LOGS="$logs" SIM_DET="$det"

run_one() {
    local name="$1" seed="$2"
    local log="$SIM_LOGS/$name-$seed.log"
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    SHALE_SIM_SCENARIO="$name" SHALE_SIM_SEED="$seed" SHALE_SIM_CHECK_DETERMINISM="$SIM_DET" \
        "$SIM_BIN" --exact run_from_env --nocapture --test-threads=1 >"$log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    local wall result
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    result=$(sed -n 's/^RESULT //p' "$log" | tail -1)
    [ -n "$result" ] || result="FAIL scenario=$name seed=$seed (no result: crashed or hung; see log)"
    if [ "$rc" -ne 0 ] && [ "${result#PASS}" != "$result" ]; then
        result="FAIL ${result#PASS } (exit $rc)"
    fi
    if [ "$SIM_DET" = 1 ] && [ "${result#PASS}" != "$result" ]; then
        # Also across processes (catches entropy and address-dependent behaviour that
        # two runs in one process can share).
        local other trace_a trace_b
        other=$(SHALE_SIM_SCENARIO="$name" SHALE_SIM_SEED="$seed" \
            "$SIM_BIN" --exact run_from_env --nocapture --test-threads=1 2>&1 |
            sed -n 's/^RESULT //p' | tail -1)
        trace_a=$(echo "$result" | grep -o 'trace=[0-9a-f]*')
        trace_b=$(echo "$other" | grep -o 'trace=[0-9a-f]*')
        if [ "$trace_a" != "$trace_b" ]; then
            result="FAIL ${result#PASS } NONDETERMINISTIC across processes: other-${trace_b:-none}"
        fi
    fi
    echo "$result wall=${wall}s"
    if [ "${result#PASS}" = "$result" ]; then
        grep -E '^VIOLATION|panicked' "$log" | head -20 | sed 's/^/    /'
        echo "    log: $log"
        echo "    replay: scripts/sim.sh --scenario $name --seed $seed$([ "$SIM_DET" = 1 ] && echo ' --check-determinism')"
    fi
}
export -f run_one

out=$(mktemp)
for n in "${names[@]}"; do
    for s in $(seq "$first" "$last"); do echo "$n $s"; done
done | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"' | tee "$out"

total=$(grep -c '^\(PASS\|FAIL\)' "$out" || true)
passed=$(grep -c '^PASS' "$out" || true)
failed=$((total - passed))
echo "summary: $total runs, $passed passed, $failed failed (scenarios: $scenarios; seeds $first..$last$([ "$det" = 1 ] && echo ', determinism checked'))"
if [ "$failed" -gt 0 ]; then
    echo "failed:"
    grep -o '^FAIL scenario=[^ ]* seed=[0-9]*' "$out" | while read -r _ sc sd; do
        echo "  scripts/sim.sh --scenario ${sc#scenario=} --seed ${sd#seed=}$([ "$det" = 1 ] && echo ' --check-determinism')"
    done
    rm -f "$out"
    exit 1
fi
rm -f "$out"
