#!/usr/bin/env bash
# The node agent's AOT class cache (bin/wisp node-aot) measured at start: a standalone agent on loopback
# (no mesh, ephemeral ports, no root needed) started by bin/wisp with and without the cache, in turn,
# PAIRS times: milliseconds from process start to its "ready" line (polled every 50 ms), then VmRSS,
# RssAnon and RssFile (MiB) SETTLE seconds after ready, and the classes loaded (from class files + from the
# CDS/AOT archive).
# Usage: bench/hbone/aot-start.sh        (PAIRS=3 SETTLE=10; OUT=file also writes the table there)
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${PAIRS:-3}
SETTLE=${SETTLE:-10}
TMP=$(mktemp -d /tmp/wisp-aot.XXXXXX)
export WISP_AOT_DIR=$TMP/aot
PID=
trap '[ -z "$PID" ] || kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
train=$(bin/wisp node-aot)
echo "$train" >&2
JCMD=$(dirname "$(readlink -f "$(ls -d /usr/lib/jvm/*25*/bin/java | head -1)")")/jcmd
start() { # mode (aot | none): one agent, its row
  local mode=$1 n=$2 t0 ms
  echo 'resources: []' > "$TMP/state.yaml"
  rm -rf "$TMP/ca"
  t0=$(date +%s%N)
  if [ "$mode" = aot ]; then unset WISP_NO_AOT; else export WISP_NO_AOT=1; fi
  bin/wisp node --node aot-start --state "$TMP/state.yaml" --ca-dir "$TMP/ca" --bind 127.0.0.1 \
    --ports 0,0,0,0,0,0,0 --workers 1 --drain-timeout PT1S > "$TMP/agent.log" 2>&1 &
  PID=$!
  for _ in $(seq 2400); do grep -q 'node agent for aot-start ready' "$TMP/agent.log" && break
    kill -0 $PID 2>/dev/null || { echo "agent exited:" >&2; tail -20 "$TMP/agent.log" >&2; exit 1; }; sleep 0.05; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  sleep "$SETTLE" # the figure is for an agent SETTLE s after ready, not a condition to await
  printf '%-5s %4s %6s %8s %8s %8s %8s %11s  %s\n' "$mode" "$n" "$(cut -d' ' -f1 /proc/loadavg)" "$ms" \
    "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' /proc/$PID/status)" \
    "$(awk '/^RssAnon:/ { printf "%.1f", $2 / 1024 }' /proc/$PID/status)" \
    "$(awk '/^RssFile:/ { printf "%.1f", $2 / 1024 }' /proc/$PID/status)" \
    "$("$JCMD" $PID PerfCounter.print 2>/dev/null | awk -F= '/^java.cls.loadedClasses=/ { l = $2 } /^java.cls.sharedLoadedClasses=/ { s = $2 } END { print l "+" s }')" \
    "$(grep -c '\[aot\|\[cds' "$TMP/agent.log" || true) JVM warnings about the cache"
  kill -TERM $PID; wait $PID 2>/dev/null || true; PID=
}
{
  echo "AOT cache at start — $(date -u +%Y-%m-%dT%H:%MZ), bench/hbone/aot-start.sh, $(nproc) cores shared with other work"
  echo "$train"
  printf '%-5s %4s %6s %8s %8s %8s %8s %11s\n' cache pair load ready_ms RSS anon file "classes+cds"
  for n in $(seq "$PAIRS"); do start aot "$n"; start none "$n"; done
} | tee "${OUT:-/dev/null}"
