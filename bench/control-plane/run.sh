#!/usr/bin/env bash
# Control plane benchmark: 1,000 simulated agents over real gRPC against `wisp control-plane`
# (a separate JVM) with 10,000 workloads and 1,000 services; 20 policy changes.
# Usage: bench/control-plane/run.sh [--agents N] [--pods N] [--services N] [--changes N]
# Extra Maven flags (e.g. -o) through MVN_FLAGS. Results: bench/results/control-plane.txt
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
# shellcheck disable=SC2086
"$root/mvnw" -q -B -pl cli -am package -DskipTests -Dspotless.check.skip=true ${MVN_FLAGS:-}
# shellcheck source=../../scripts/lib/java.sh
. "$root/scripts/lib/java.sh"
java=$(find_java)
classpath="$root/cli/target/wisp-cli.jar:$root/cli/target/lib/*"
# BENCH_JAVA_OPTS: extra options for the agents' JVM; CP_JAVA_OPTS: for the control plane's (a profiler,
# a java.util.logging configuration for gRPC's own logs); CP_LOG: where the control plane's log goes.
# shellcheck disable=SC2086
exec "$java" -Xmx4g --enable-native-access=ALL-UNNAMED ${BENCH_JAVA_OPTS:-} -cp "$classpath" \
  "$root/bench/control-plane/ControlPlaneBench.java" \
  --java "$java" --classpath "$classpath" --out "$root/bench/results/control-plane.txt" "$@"
