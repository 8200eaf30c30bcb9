#!/usr/bin/env bash
# Control plane benchmark: 1,000 simulated agents over real gRPC against `wisp control-plane`
# (a separate JVM) with 10,000 workloads and 1,000 services; 20 policy changes.
# Usage: bench/control-plane/run.sh [--agents N] [--pods N] [--services N] [--changes N]
# Extra Maven flags (e.g. -o) through MVN_FLAGS. Results: bench/results/control-plane.txt
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
# shellcheck disable=SC2086
"$root/mvnw" -q -B -pl cli -am package -DskipTests -Dspotless.check.skip=true ${MVN_FLAGS:-}
java=""
for c in "${WISP_JAVA:-}" $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do
  [ -n "$c" ] && [ -x "$c" ] || continue
  v=$("$c" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then java=$c; break; fi
done
[ -n "$java" ] || { echo "needs a JDK >= 25 under /usr/lib/jvm (or WISP_JAVA)" >&2; exit 1; }
classpath="$root/cli/target/wisp-cli.jar:$root/cli/target/lib/*"
exec "$java" -Xmx4g --enable-native-access=ALL-UNNAMED -cp "$classpath" \
  "$root/bench/control-plane/ControlPlaneBench.java" \
  --java "$java" --classpath "$classpath" --out "$root/bench/results/control-plane.txt" "$@"
