#!/usr/bin/env bash
# Capture benchmark (not a test): connection setup and request latency of an unmodified client in
# one pod talking to a server in a pod of another node, (a) directly and (b) through the real mesh:
# eBPF capture and the two `wisp node --capture` agents of a LocalMesh (as `wisp cluster up` runs
# them), carrying it over HBONE. The mesh's namespaces, cgroups and processes are created and
# removed by the benchmark (cluster "capbench"). Needs root. Writes bench/results/capture.txt.
#
#   bench/capture/run.sh [connections] [requests] [rounds]      (defaults 2000 10000 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "capture bench: needs root (netns, cgroups, eBPF)" >&2; exit 1; }
java_bin=${WISP_JAVA:-$(ls -d /usr/lib/jvm/*25*/bin/java 2>/dev/null | head -1)}
[ -x "$java_bin" ] || { echo "capture bench: no JDK 25 under /usr/lib/jvm" >&2; exit 1; }
if [ ! -f cli/target/wisp-cli.jar ] || [ -n "$(find */src -newer cli/target/wisp-cli.jar -name '*.java' -path '*/main/*' | head -1)" ]; then
  ./mvnw -q -o -pl cli -am package -DskipTests -Dspotless.check.skip=true
fi
exec "$java_bin" --enable-native-access=ALL-UNNAMED -Dlogback.configurationFile=bench/capture/logback.xml \
  -cp "cli/target/wisp-cli.jar:cli/target/lib/*" bench/capture/CaptureBench.java \
  bench/results/capture.txt "${1:-2000}" "${2:-10000}" "${3:-3}"
