#!/usr/bin/env bash
# Stop a cluster started by scripts/cluster-up.sh: SIGTERM every process listed in
# DIR/pids (gateways first, then data nodes, then meta nodes), wait up to 20 s, then
# SIGKILL what is left. Data, configs and logs stay in DIR (PURGE=1 removes DIR).
#
#   scripts/cluster-down.sh [DIR]        # default DIR: ./shale-cluster
set -euo pipefail

DIR=${1:-./shale-cluster}
PIDS="$DIR/pids"
if [ ! -f "$PIDS" ]; then
  echo "no $PIDS: nothing to stop" >&2
  exit 0
fi

alive() { kill -0 "$1" 2>/dev/null; }
# Only processes that are still our shale processes (pids can be reused).
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q "shale"; }

for kind in gateway datanode meta; do
  while read -r name pid; do
    case "$name" in "$kind"-*) ;; *) continue ;; esac
    if alive "$pid" && ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done <"$PIDS"
done

deadline=$((SECONDS + 20))
while read -r name pid; do
  while alive "$pid" && ours "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if alive "$pid" && ours "$pid"; then
    echo "$name ($pid) did not stop in time: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done <"$PIDS"

rm -f "$PIDS"
echo "stopped the cluster in $DIR"
if [ "${PURGE:-0}" = 1 ]; then
  rm -rf "$DIR"
  echo "removed $DIR"
fi
