#!/usr/bin/env bash
# The standard benchmark suite, run with `shale bench` (release build), printed as a
# markdown table (and saved with the raw JSON lines under target/bench/).
#
#   scripts/bench.sh                  # starts `shale dev` in a temp folder, runs, stops it
#   scripts/bench.sh --cluster        # the multi-process cluster (scripts/cluster-up.sh):
#                                     # the gateway's and data nodes' own peak RSS
#   scripts/bench.sh --endpoint URL --access-key AK --secret-key SK   # any S3 server
#   QUICK=1 scripts/bench.sh          # smaller counts (a minute instead of ~15)
#
# Steps: PUT then GET at 4 KiB, 1 MiB and 64 MiB with concurrency 1 and 16; LIST of
# 10,000 keys; one 1 GiB multipart upload (16 MiB parts, 4 in flight); with --cluster
# also 16 concurrent 256 MiB PUTs, to show the gateway's memory does not grow with
# object size. Each step reports the peak RSS of the server processes during that step
# (VmHWM, reset before the step through /proc/PID/clear_refs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=dev
ENDPOINT=""
AK=${AWS_ACCESS_KEY_ID:-}
SK=${AWS_SECRET_ACCESS_KEY:-}
while [ $# -gt 0 ]; do
  case $1 in
    --cluster) MODE=cluster ;;
    --endpoint) MODE=external; ENDPOINT=$2; shift ;;
    --access-key) AK=$2; shift ;;
    --secret-key) SK=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

(cd "$ROOT" && cargo build --release --ignore-rust-version -p shale --bin shale)
BIN=$ROOT/target/release/shale
OUT=$ROOT/target/bench
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
JSON=$OUT/bench-$STAMP.jsonl
: >"$JSON"
WORK=$(mktemp -d /tmp/shale-bench.XXXXXX)
PIDS=()      # server processes whose RSS is reported: "name:pid"
cleanup() {
  case $MODE in
    dev) [ -n "${DEV_PID:-}" ] && kill "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true ;;
    cluster) "$ROOT/scripts/cluster-down.sh" "$WORK/cluster" >/dev/null 2>&1 || true ;;
  esac
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case $MODE in
  dev)
    PORT=$(free_port)
    AK=BENCHKEY$RANDOM$RANDOM
    SK=benchsecret$RANDOM$RANDOM$RANDOM
    "$BIN" dev --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
      --base-port $((20000 + RANDOM % 20000)) --meta-port $((40100 + RANDOM % 10000)) \
      --access-key "$AK" --secret-key "$SK" >"$WORK/dev.log" 2>&1 &
    DEV_PID=$!
    ENDPOINT=http://127.0.0.1:$PORT
    for _ in $(seq 1 600); do
      grep -q "^Ready" "$WORK/dev.log" && break
      kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.log"; exit 1; }
      sleep 0.1
    done
    grep -q "^Ready" "$WORK/dev.log" || { echo "shale dev did not start"; cat "$WORK/dev.log"; exit 1; }
    PIDS=("dev:$DEV_PID")
    ;;
  cluster)
    SHALE_BIN=$BIN S3_PORT=$(free_port) META_PORT=$((40100 + RANDOM % 10000)) \
      DATA_PORT=$((20000 + RANDOM % 20000)) "$ROOT/scripts/cluster-up.sh" "$WORK/cluster" >/dev/null
    # shellcheck disable=SC1091
    . "$WORK/cluster/env"
    ENDPOINT=${SHALE_ENDPOINTS%% *}
    AK=$AWS_ACCESS_KEY_ID
    SK=$AWS_SECRET_ACCESS_KEY
    while read -r name pid; do
      case $name in gateway-1|meta-1|datanode-1) PIDS+=("$name:$pid") ;; esac
    done <"$WORK/cluster/pids"
    ;;
  external)
    [ -n "$AK" ] && [ -n "$SK" ] || { echo "--endpoint needs --access-key and --secret-key (or AWS_* env)" >&2; exit 2; }
    ;;
esac

reset_peaks() {
  for p in "${PIDS[@]}"; do echo 5 >"/proc/${p#*:}/clear_refs" 2>/dev/null || true; done
}
peaks() { # "name peakMiB ..." for the table
  local s=""
  for p in "${PIDS[@]}"; do
    local kb
    kb=$(awk '/^VmHWM/ {print $2}' "/proc/${p#*:}/status" 2>/dev/null || echo 0)
    s="$s${s:+, }${p%%:*} $((kb / 1024)) MiB"
  done
  echo "${s:--}"
}

if [ "${QUICK:-0}" = 1 ]; then Q=1; else Q=0; fi
n() { if [ $Q = 1 ]; then echo "$2"; else echo "$1"; fi; }

step() { # label, then shale bench arguments
  local label=$1; shift
  reset_peaks
  local bucket=bench-$(echo "$label" | tr -c 'a-z0-9' '-' | cut -c1-40)$RANDOM
  if ! AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK "$BIN" bench --endpoint "$ENDPOINT" \
      --bucket "$bucket" --json --quiet "$@" >"$WORK/step.json" 2>"$WORK/step.err"; then
    echo "step '$label' failed:" >&2
    cat "$WORK/step.err" "$WORK/step.json" >&2
    exit 1
  fi
  local rss
  rss=$(peaks)
  python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    r["step"] = sys.argv[1]
    r["peak_rss"] = sys.argv[2]
    print(json.dumps(r))
' "$label" "$rss" <"$WORK/step.json" >>"$JSON"
  echo "done: $label ($rss)" >&2
}

for c in 1 16; do
  step "4 KiB c=$c" --workload both --size 4KiB --concurrency $c --count "$(n $((c == 1 ? 1000 : 8000)) 200)"
  step "1 MiB c=$c" --workload both --size 1MiB --concurrency $c --count "$(n $((c == 1 ? 200 : 800)) 48)"
  step "64 MiB c=$c" --workload both --size 64MiB --concurrency $c --count "$(n $((c == 1 ? 8 : 32)) "$c")"
done
step "LIST 10,000 keys" --workload list --size 1 --keys "$(n 10000 2000)" --concurrency 1 --count 5
step "multipart 1 GiB" --workload multipart --size "$(n 1GiB 128MiB)" --part-size 16MiB \
  --part-concurrency 4 --concurrency 1 --count 1
if [ "$MODE" = cluster ]; then
  step "16 x 256 MiB PUT" --workload put --size "$(n 256MiB 64MiB)" --concurrency 16 --count 16
fi

python3 - "$JSON" "$MODE" "$ENDPOINT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"Target: {sys.argv[2]} ({sys.argv[3]}); raw results: {sys.argv[1]}\n")
print("| step | op | ops | op/s | MiB/s | p50 ms | p99 ms | max ms | client CPU/op | errors | peak RSS |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in rows:
    errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
    if r["corrupt"]:
        errs += f", CORRUPT {r['corrupt']}"
    cpu = "-" if r["client_cpu_us_per_op"] is None else f"{r['client_cpu_us_per_op']:.0f} µs"
    op = r["op"] + (" (fill)" if r["phase"] == "fill" else "")
    print(f"| {r['step']} | {op} | {r['ops']} | {r['ops_per_s']:.1f} | {r['mib_per_s']:.1f} | "
          f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {cpu} | {errs} | {r['peak_rss']} |")
EOF
