#!/usr/bin/env bash
# Start a multi-process Shale cluster on 127.0.0.1, in the background:
# 3 `shale meta`, 16 `shale datanode` in 4 racks (they register themselves with the
# metadata plane), GATEWAYS `shale gateway` processes, and one access key.
#
#   scripts/cluster-up.sh [DIR]          # default DIR: ./shale-cluster
#   GATEWAYS=2 scripts/cluster-up.sh /tmp/c1
#   scripts/cluster-down.sh [DIR]
#
# DIR/config/*.toml  generated configs       DIR/data/   every node's data
# DIR/logs/*.log     one log per process     DIR/pids    "name pid" per line
# DIR/env            endpoint(s) and credentials, for `source`
#
# Binary: $SHALE_BIN if set, else target/release/shale when RELEASE=1, else the debug
# binary; the chosen profile is built first with `cargo build --ignore-rust-version`.
# Ports (env): META_PORT (7201..7203), DATA_PORT (7101..7116), S3_PORT (9000, 9001, ...).
# Credentials (env): ACCESS_KEY / SECRET_KEY (generated when unset). The key is created
# through `shale admin key create` when the binary has it, else the script fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-./shale-cluster}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
GATEWAYS=${GATEWAYS:-1}
META_PORT=${META_PORT:-7201}
DATA_PORT=${DATA_PORT:-7101}
S3_PORT=${S3_PORT:-9000}
NODES=16
RACKS=4
CLUSTER_ID=${CLUSTER_ID:-shale-local}
DISK_BYTES=${DISK_BYTES:-$((16 << 30))}

if [ -s "$DIR/pids" ]; then
  echo "$DIR/pids exists: a cluster may already run there (scripts/cluster-down.sh $DIR)" >&2
  exit 1
fi

if [ -n "${SHALE_BIN:-}" ]; then
  BIN=$SHALE_BIN
elif [ "${RELEASE:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release --ignore-rust-version -p shale --bin shale)
  BIN=$ROOT/target/release/shale
else
  (cd "$ROOT" && cargo build --ignore-rust-version -p shale --bin shale)
  BIN=$ROOT/target/debug/shale
fi
[ -x "$BIN" ] || { echo "no shale binary at $BIN" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $(seq "$META_PORT" $((META_PORT + 2))) $(seq "$DATA_PORT" $((DATA_PORT + NODES - 1))) \
         $(seq "$S3_PORT" $((S3_PORT + GATEWAYS - 1))); do
  port_free "$p" || { echo "port $p on 127.0.0.1 is in use" >&2; exit 1; }
done

mkdir -p "$DIR/config" "$DIR/logs" "$DIR/data"
: >"$DIR/pids"
META_LIST=""
MEMBERS=""
for i in 1 2 3; do
  addr="127.0.0.1:$((META_PORT + i - 1))"
  META_LIST="$META_LIST${META_LIST:+, }\"$addr\""
  MEMBERS="$MEMBERS[[members]]
node_id = $i
addr = \"$addr\"
"
done

start() { # name args...
  local name=$1; shift
  nohup "$BIN" "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$DIR/pids"
}

for i in 1 2 3; do
  cat >"$DIR/config/meta-$i.toml" <<EOF
cluster_id = "$CLUSTER_ID"
node_id = $i
listen = "127.0.0.1:$((META_PORT + i - 1))"
data_dir = "$DIR/data/meta-$i"
object_groups = 4

$MEMBERS
EOF
  start "meta-$i" meta --config "$DIR/config/meta-$i.toml"
done

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${secs}s waiting for $what (logs in $DIR/logs)" >&2
      return 1
    fi
    sleep 0.2
  done
}

META_ARGS=(--meta "$(echo "$META_LIST" | tr -d '" ')" --cluster-id "$CLUSTER_ID")
if ! "$BIN" admin --help >/dev/null 2>&1; then
  echo "this shale binary has no 'admin' subcommand: cannot create an access key" >&2
  "$ROOT/scripts/cluster-down.sh" "$DIR" >/dev/null || true
  exit 1
fi
# Data nodes and gateways fetch the group map at start: start them once meta serves.
wait_for "the metadata plane" 90 "$BIN" admin "${META_ARGS[@]}" key list

for i in $(seq 1 $NODES); do
  cat >"$DIR/config/datanode-$i.toml" <<EOF
node_id = $i
rack = "rack-$(( (i - 1) % RACKS ))"
listen = "127.0.0.1:$((DATA_PORT + i - 1))"
cluster_id = "$CLUSTER_ID"
meta = [$META_LIST]

[[disks]]
id = 0
path = "$DIR/data/datanode-$i/disk-0"
capacity_bytes = $DISK_BYTES
EOF
  start "datanode-$i" datanode --config "$DIR/config/datanode-$i.toml"
done

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
ACCESS_KEY=${ACCESS_KEY:-SHALE$(rand_hex 8 | tr "a-f" "A-F")}
SECRET_KEY=${SECRET_KEY:-$(rand_hex 20)}
wait_for "the access key" 60 "$BIN" admin "${META_ARGS[@]}" key create \
  --id "$ACCESS_KEY" --secret "$SECRET_KEY"

for g in $(seq 1 "$GATEWAYS"); do
  port=$((S3_PORT + g - 1))
  cat >"$DIR/config/gateway-$g.toml" <<EOF
cluster_id = "$CLUSTER_ID"
listen = "127.0.0.1:$port"
meta = [$META_LIST]
EOF
  start "gateway-$g" gateway --config "$DIR/config/gateway-$g.toml"
done
for g in $(seq 1 "$GATEWAYS"); do
  wait_for "gateway $g" 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((S3_PORT + g - 1))"
done

ENDPOINTS=""
for g in $(seq 1 "$GATEWAYS"); do
  ENDPOINTS="$ENDPOINTS${ENDPOINTS:+ }http://127.0.0.1:$((S3_PORT + g - 1))"
done
cat >"$DIR/env" <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1
export SHALE_ENDPOINTS="$ENDPOINTS"
export SHALE_META="$(echo "$META_LIST" | tr -d '" ')"
export SHALE_CLUSTER_ID=$CLUSTER_ID
EOF

echo "Shale cluster '$CLUSTER_ID' up in $DIR (binary $BIN)"
echo "  meta nodes:  $(echo "$META_LIST" | tr -d '"')"
echo "  data nodes:  $NODES in $RACKS racks, 127.0.0.1:$DATA_PORT-$((DATA_PORT + NODES - 1))"
for e in $ENDPOINTS; do echo "  S3 endpoint: $e"; done
echo "  access key id:     $ACCESS_KEY"
echo "  secret access key: $SECRET_KEY"
echo "  region:            us-east-1"
echo
echo "  source $DIR/env && aws --endpoint-url ${ENDPOINTS%% *} s3 ls"
echo "  stop: scripts/cluster-down.sh $DIR"
