#!/usr/bin/env bash
# Waypoint (L7) benchmark, issue 13 (not a test; ~15 minutes): the same fixed-rate HTTP/1.1 and h2c
# load, 1 KiB answers, coordinated omission corrected, through four paths of one local mesh (cluster
# bwpb, base 202): (a) direct pod to pod, (b) the waypoint path (client agent -> wisp waypoint -> server
# agent, HBONE mTLS both legs), (c) haproxy in HTTP mode and (d) nginx as a reverse proxy, both run in the
# waypoint's own pod so the route is the same. Per path and protocol: p50/p99/p99.9 at a low rate, CPU
# per 1,000 requests (proxy processes from /proc/PID/stat, whole machine from /proc/stat), the proxies'
# RSS, and the maximum rate whose p99 stays under a bound the same for every path (2x the highest
# low-rate p99) with its requests per second per proxy core.
#
# The measuring code is the e2e class WaypointBenchE2eTest (one piece of code for the suite's short
# version and the benchmark), run here with longer phases and its report written to the results file.
#
# Usage (root: network namespaces, eBPF):
#   bench/waypoint/run.sh            full run, writes bench/results/waypoint.txt (OUT=...; cluster CLUSTER,
#                                    default bwpb, on address base BASE, default 202; WAYPOINT_JVM="-XX:..."
#                                    adds options to the waypoint's JVM, e.g. -XX:TieredStopAtLevel=4 for C2;
#                                    PATHS=waypoint,haproxy-mtls PROTOS=h1 measures only those, ~6 minutes;
#                                    WARM=60 warms each path 60 s, not 10, before the low-rate measure: C2's time;
#                                    RATE=200 sets the low rate, 500 req/s unless told)
#   bench/waypoint/run.sh --quick    the suite's version (cluster bwpa on base 198 unless CLUSTER/BASE; a second at 50 then 100 req/s),
#                                    which fails unless every path answered every request with 200
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "waypoint bench: needs root (network namespaces, eBPF)" >&2; exit 1; }
scripts/install-deps.sh haproxy nginx-light || exit 1
OUT=${OUT:-bench/results/waypoint.txt}
TMP=$(mktemp -d /tmp/wisp-bwp.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
MVN=(./mvnw -o -B -q -pl e2e -am verify -Dtest=WaypointBenchE2eTest -Dsurefire.failIfNoSpecifiedTests=false
  -Dspotless.check.skip=true)
if [ "${1:-}" = --quick ]; then
  "${MVN[@]}" ${BASE:+-Dwisp.bwp.base="$BASE"} ${CLUSTER:+-Dwisp.bwp.cluster="$CLUSTER"}
  exit $?
fi
"${MVN[@]}" -Dwisp.bwp.base="${BASE:-202}" -Dwisp.bwp.cluster="${CLUSTER:-bwpb}" -Dwisp.bwp.report="$TMP/report.txt" \
  ${WAYPOINT_JVM:+-Dwisp.waypoint.jvm="$WAYPOINT_JVM"} ${PATHS:+-Dwisp.bwp.paths="$PATHS"} \
  ${PROTOS:+-Dwisp.bwp.protos="$PROTOS"} ${WARM:+-Dwisp.bwp.warm="$WARM"} \
  ${RATE:+-Dwisp.bwp.rate="$RATE"} > "$TMP/mvn.log" 2>&1
rc=$?
if [ ! -s "$TMP/report.txt" ]; then
  echo "no figures: the run failed before its report; last lines of its log:" >&2
  tail -40 "$TMP/mvn.log" >&2
  exit 1
fi
{
  echo "bench/waypoint/run.sh at commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)'), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "waypoint JVM: the local mesh's command (Serial GC, -Xmx256m, C1 only)${WAYPOINT_JVM:+, then $WAYPOINT_JVM}"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); kernel $(uname -r); $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  cat "$TMP/report.txt"
} > "$OUT"
cat "$OUT"
[ $rc = 0 ] || { echo "(the run's assertions failed: see above and $TMP/mvn.log)" >&2; trap - EXIT; exit $rc; }
