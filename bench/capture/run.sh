#!/usr/bin/env bash
# Capture benchmark (not a test): connection setup and request latency with (a) no capture,
# (b) Wisp's eBPF redirect, (c) iptables REDIRECT to the same listener, in network namespaces and
# cgroups it creates and removes. Needs root. Writes bench/results/capture.txt.
#
#   bench/capture/run.sh [connections] [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "capture bench: needs root (netns, cgroups, eBPF, iptables)" >&2; exit 1; }
cp_file=$(mktemp)
trap 'rm -f "$cp_file"' EXIT
./mvnw -o -q -pl bpf -am test-compile dependency:build-classpath \
  -Dmdep.outputFile="$cp_file" -Dmdep.includeScope=test >/dev/null
java_bin=$(ls -d /usr/lib/jvm/*25*/bin/java 2>/dev/null | head -1)
[ -x "$java_bin" ] || { echo "capture bench: no JDK 25 under /usr/lib/jvm" >&2; exit 1; }
"$java_bin" --enable-native-access=ALL-UNNAMED -Dlogback.configurationFile=bench/capture/logback.xml \
  -cp "e2e/target/test-classes:$(cat "$cp_file")" \
  dev.wisp.e2e.CaptureBench bench/results/capture.txt "${1:-2000}" "${2:-10000}" "${3:-3}"
