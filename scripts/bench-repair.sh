#!/usr/bin/env bash
# Repair and scrub benchmark on a multi-process cluster on 127.0.0.1 (release build):
# 3 `shale meta`, 16 `shale datanode` in 4 racks, 1 `shale gateway`, all in a temp dir.
#
#   scripts/bench-repair.sh              # 2 GiB of 64 MiB objects (8+4)
#   QUICK=1 scripts/bench-repair.sh      # 256 MiB
#   GIB=4 scripts/bench-repair.sh        # more data
#
# Steps (each printed as a row of the results table at the end):
#  1. load: GIB GiB of 64 MiB objects through the gateway (`shale bench --workload put`);
#  2. repair, unbounded budget: kill -9 the data node holding the most fragments; time
#     until the detector marks it Down and Dead, until every stripe is back at k+m
#     healthy fragments off it (and every fragment is present on its node), bytes
#     rebuilt, rebuilt MiB/s, and the meta nodes' repair budget accounting
#     (`shale bench-repair repair`);
#  3. repair at REPAIR_LOW (default 20 MiB/s): the meta nodes restart with that
#     `repair_bytes_per_sec`, then the next fullest data node dies;
#  4. scrub at SCRUB_LOW and SCRUB_HIGH (default 8 and 64 MiB/s per data node): the
#     data nodes restart with `scrub_bytes_per_sec`, and the first scrub pass of every
#     node (60 s after its start) is measured from the Health rpc
#     (`shale bench-repair scrub`): bytes verified / pass duration vs the budget.
#
# Env knobs: GIB, QUICK, REPAIR_HIGH / REPAIR_LOW (bytes/s, per meta node), SCRUB_LOW /
# SCRUB_HIGH (bytes/s, per data node), DOWN_SECS / DEAD_SECS (detector), KEEP=1 (keep
# the temp dir and its logs). Results also go to target/bench/bench-repair-*.jsonl.
# Every process is stopped and the temp dir removed on exit; a failed step exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "${QUICK:-0}" = 1 ]; then GIB=${GIB:-0.25}; else GIB=${GIB:-2}; fi
REPAIR_HIGH=${REPAIR_HIGH:-$((64 << 30))}
REPAIR_LOW=${REPAIR_LOW:-$((20 << 20))}
SCRUB_LOW=${SCRUB_LOW:-$((8 << 20))}
SCRUB_HIGH=${SCRUB_HIGH:-$((64 << 20))}
DOWN_SECS=${DOWN_SECS:-12}
DEAD_SECS=${DEAD_SECS:-20}
NODES=16
RACKS=4
CLUSTER_ID=bench-repair
OBJECT_MIB=64
OBJECTS=$(python3 -c "import math; print(max(1, math.ceil($GIB * 1024 / $OBJECT_MIB)))")

if [ -n "${SHALE_BIN:-}" ]; then
  BIN=$SHALE_BIN
else
  (cd "$ROOT" && cargo build --release --ignore-rust-version -p shale --bin shale)
  BIN=$ROOT/target/release/shale
fi
OUT=$ROOT/target/bench
mkdir -p "$OUT"
JSON=$OUT/bench-repair-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: >"$JSON"
WORK=$(mktemp -d /tmp/shale-bench-repair.XXXXXX)
declare -A PID=()    # name -> pid of every process this script started

stop() { # names...: SIGTERM, wait up to 20 s, then SIGKILL
  local n p
  for n in "$@"; do
    p=${PID[$n]:-}
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for n in "$@"; do
    p=${PID[$n]:-}
    [ -z "$p" ] && continue
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "PID[$n]"
  done
}
cleanup() {
  local rc=$?
  set +e
  stop "${!PID[@]}"
  if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    if [ $rc -ne 0 ]; then
      echo "FAILED (exit $rc); last log lines:" >&2
      for f in "$WORK"/logs/*.log; do echo "--- $f" >&2; tail -n 5 "$f" >&2; done
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BASE=0
for _ in $(seq 1 50); do
  b=$((20000 + RANDOM % 10000))
  ok=1
  for p in $(seq "$b" $((b + NODES + 4))); do port_free "$p" || { ok=0; break; }; done
  if [ $ok = 1 ]; then BASE=$b; break; fi
done
[ "$BASE" != 0 ] || { echo "no free port block" >&2; exit 1; }
META_LIST=""
MEMBERS=""
for i in 1 2 3; do
  META_LIST="$META_LIST${META_LIST:+, }\"127.0.0.1:$((BASE + i - 1))\""
  MEMBERS="$MEMBERS[[members]]
node_id = $i
addr = \"127.0.0.1:$((BASE + i - 1))\"
"
done
export SHALE_META=127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))
export SHALE_CLUSTER_ID=$CLUSTER_ID
S3_PORT=$((BASE + 3 + NODES))
mkdir -p "$WORK/config" "$WORK/logs" "$WORK/data"

start() { # name args...
  local name=$1; shift
  "$BIN" "$@" >>"$WORK/logs/$name.log" 2>&1 </dev/null &
  PID[$name]=$!
}

meta_config() { # budget
  for i in 1 2 3; do
    cat >"$WORK/config/meta-$i.toml" <<EOF
cluster_id = "$CLUSTER_ID"
node_id = $i
listen = "127.0.0.1:$((BASE + i - 1))"
data_dir = "$WORK/data/meta-$i"
object_groups = 4

$MEMBERS
[maintain]
down_after_secs = $DOWN_SECS
dead_after_secs = $DEAD_SECS
detector_tick_ms = 200
repair_tick_ms = 300
gc_delay_secs = 1
gc_tick_ms = 300
repair_bytes_per_sec = $1
EOF
  done
}

datanode_config() { # scrub_bytes_per_sec scrub_interval_secs
  for i in $(seq 1 $NODES); do
    cat >"$WORK/config/datanode-$i.toml" <<EOF
node_id = $i
rack = "rack-$(((i - 1) % RACKS))"
listen = "127.0.0.1:$((BASE + 2 + i))"
cluster_id = "$CLUSTER_ID"
meta = [$META_LIST]
scrub_bytes_per_sec = $1
scrub_interval_secs = $2

[[disks]]
id = 0
path = "$WORK/data/datanode-$i/disk-0"
capacity_bytes = $((8 << 30))
EOF
  done
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.3
  done
}
admin() { "$BIN" admin --meta "$SHALE_META" --cluster-id "$CLUSTER_ID" "$@"; }
nodes_up() { "$BIN" bench-repair up --at-least "$1"; }

start_metas() { for i in 1 2 3; do start "meta-$i" meta --config "$WORK/config/meta-$i.toml"; done; }
start_datanodes() { # ids...
  for i in "$@"; do start "datanode-$i" datanode --config "$WORK/config/datanode-$i.toml"; done
}
ALIVE=$(seq 1 $NODES)   # data nodes not killed

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
record() { # step json
  python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r["step"]=sys.argv[1]; r["load"]=sys.argv[3]; print(json.dumps(r))' \
    "$1" "$2" "$(load_avg)" >>"$JSON"
}

echo "== cluster: 3 meta, $NODES data nodes in $RACKS racks, 1 gateway ($WORK); load $(load_avg)" >&2
meta_config "$REPAIR_HIGH"
datanode_config $((64 << 10)) 31536000   # scrub out of the way during the repair runs
start_metas
wait_for "the metadata plane" 120 admin key list
# shellcheck disable=SC2086
start_datanodes $ALIVE
wait_for "$NODES data nodes Up" 120 nodes_up $NODES
AK=BENCHREPAIR$RANDOM$RANDOM
SK=benchrepairsecret$RANDOM$RANDOM$RANDOM
wait_for "an access key" 60 admin key create --id "$AK" --secret "$SK"
cat >"$WORK/config/gateway.toml" <<EOF
cluster_id = "$CLUSTER_ID"
listen = "127.0.0.1:$S3_PORT"
meta = [$META_LIST]
EOF
start gateway gateway --config "$WORK/config/gateway.toml"
wait_for "the gateway" 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3_PORT"

echo "== load: $OBJECTS x $OBJECT_MIB MiB" >&2
t=$SECONDS
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK "$BIN" bench --endpoint "http://127.0.0.1:$S3_PORT" \
  --bucket bench-repair --workload put --size ${OBJECT_MIB}MiB --concurrency 4 \
  --count "$OBJECTS" --keys "$OBJECTS" --json --quiet >"$WORK/load.json"
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["errors"] or r["corrupt"]:
        sys.exit("load failed: " + l)
    print(json.dumps({"objects": r["ops"], "mib_s": r["mib_per_s"]}))
' "$WORK/load.json" >"$WORK/load.row"
record load "$(cat "$WORK/load.row")"
echo "   loaded in $((SECONDS - t)) s: $(cat "$WORK/load.row")" >&2

repair_run() { # label budget
  local victim held bytes
  read -r victim held bytes < <("$BIN" bench-repair victim)
  echo "== repair ($1): kill -9 data node $victim ($held fragments, $((bytes >> 20)) MiB); load $(load_avg)" >&2
  local line
  line=$("$BIN" bench-repair repair --victim "$victim" --pid "${PID[datanode-$victim]}" --budget "$2")
  wait "${PID[datanode-$victim]}" 2>/dev/null || true
  unset "PID[datanode-$victim]"
  ALIVE=$(for i in $ALIVE; do [ "$i" = "$victim" ] || echo "$i"; done)
  record "repair $1" "$line"
  echo "   $line" >&2
}

repair_run "unbounded" "$REPAIR_HIGH"

echo "== meta nodes restart with repair_bytes_per_sec = $REPAIR_LOW" >&2
stop meta-1 meta-2 meta-3
meta_config "$REPAIR_LOW"
start_metas
wait_for "the metadata plane" 120 admin key list
# shellcheck disable=SC2086
wait_for "the data nodes Up" 120 nodes_up "$(echo $ALIVE | wc -w)"
repair_run "$((REPAIR_LOW >> 20)) MiB/s" "$REPAIR_LOW"

scrub_run() { # budget
  echo "== scrub at $(($1 >> 20)) MiB/s per data node: restart the data nodes, wait for their first pass" >&2
  local names=()
  for i in $ALIVE; do names+=("datanode-$i"); done
  stop "${names[@]}"
  datanode_config "$1" 60
  local since
  since=$(date +%s%3N)
  # shellcheck disable=SC2086
  start_datanodes $ALIVE
  local line
  line=$("$BIN" bench-repair scrub --since-ms "$since")
  record "scrub $(($1 >> 20)) MiB/s" "$line"
  echo "   $line" >&2
}
scrub_run "$SCRUB_LOW"
scrub_run "$SCRUB_HIGH"

python3 - "$JSON" "$GIB" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nRepair and scrub, {sys.argv[2]} GiB of 64 MiB objects (8+4); raw: {sys.argv[1]}\n")
print("| step | load avg | down s | dead s | full redundancy s | rebuilt MiB | repair window s | rebuilt MiB/s | budget / meta node MiB/s | leaders | read+write MiB/s per leader (max) | achieved / budget | achieved / bucket bound |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["step"].startswith("repair"):
        lead = max(r["per_leader"], key=lambda x: x["ratio"]) if r["per_leader"] else {"budget_mib_s": 0, "ratio": 0}
        print(f"| {r['step']} | {r['load']} | {r['down_s']} | {r['dead_s']} | {r['full_s']} | {r['rebuilt_mib']} | "
              f"{r['repair_s']} | {r['rebuilt_mib_s']} | {r['budget_mib_s']:.0f} | {r['leaders']} | "
              f"{lead['budget_mib_s']} | {r['max_leader_ratio']} | {r['max_leader_bucket_ratio']} |")
print()
print("| step | load avg | data nodes | budget / node MiB/s | verified MiB | span s | aggregate MiB/s | aggregate / (nodes x budget) | per node: achieved / budget, min / median / max | per node: achieved / bucket bound, min / median / max |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
for r in rows:
    if r["step"].startswith("scrub"):
        print(f"| {r['step']} | {r['load']} | {r['nodes']} | {r['budget_mib_s']:.0f} | {r['total_mib']} | {r['span_s']} | "
              f"{r['aggregate_mib_s']} | {r['aggregate_ratio']} | {r['node_ratio_min']} / {r['node_ratio_median']} / {r['node_ratio_max']} | "
              f"{r['node_bucket_ratio_min']} / {r['node_bucket_ratio_median']} / {r['node_bucket_ratio_max']} |")
for r in rows:
    if r["step"] == "load":
        print(f"\nload: {r['objects']} objects at {r['mib_s']:.0f} MiB/s (load avg {r['load']})")
EOF
