#!/usr/bin/env bash
# Metadata-plane benchmark on three real `shale meta` processes on 127.0.0.1 (release
# build): commits/s and barrier reads/s through MetaClient (the gateway's path) for one
# object group and for four, at concurrency 1 and 64, and a 10,000-key listing.
#
#   scripts/bench-meta.sh            # prints a markdown table per group count
#
# Each run gets fresh folders under a temp dir (removed at the end) and free ports.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
(cd "$ROOT" && cargo build --release --ignore-rust-version -p shale --bin shale)
BIN=$ROOT/target/release/shale
WORK=$(mktemp -d /tmp/shale-bench-meta.XXXXXX)
PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop; rm -rf "$WORK"' EXIT

for groups in 1 4; do
  base=$((41000 + RANDOM % 20000))
  members=""
  seeds=""
  for i in 1 2 3; do
    members="$members[[members]]
node_id = $i
addr = \"127.0.0.1:$((base + i))\"
"
    seeds="$seeds${seeds:+,}127.0.0.1:$((base + i))"
  done
  for i in 1 2 3; do
    cat >"$WORK/meta-$groups-$i.toml" <<CONF
cluster_id = "bench-meta"
node_id = $i
listen = "127.0.0.1:$((base + i))"
data_dir = "$WORK/data-$groups-$i"
object_groups = $groups

$members
CONF
    "$BIN" meta --config "$WORK/meta-$groups-$i.toml" >"$WORK/meta-$groups-$i.log" 2>&1 &
    PIDS+=($!)
  done
  echo "== $groups object group(s), 3 meta processes (logs in $WORK)" >&2
  "$BIN" bench-meta --meta "$seeds" --cluster-id bench-meta --groups "$groups" \
    --concurrency 1,64 --commits "${COMMITS:-3000}" --reads "${READS:-10000}" \
    --list-keys "$([ "$groups" = 1 ] && echo 10000 || echo 0)"
  echo
  stop
done
