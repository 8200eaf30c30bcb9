#!/usr/bin/env bash
# The launcher's class path as one directory instead of 109 jars, for measuring what the jars cost a
# node agent (issue 12, bench/results/agent-memory-gc.txt). A JVM keeps, for every jar its class
# loader has opened, the jar's whole central directory on the Java heap for the process's life
# (java.util.zip.ZipFile's Source: the directory's bytes and an index of its entries), and a lookup
# that misses (a ServiceLoader scan, an optional-class probe) opens every jar on the path: the agent
# holds ~4.7 MB of central directories, most of them of jars it loads no class from. A directory on
# the class path has no such index.
# Unpacks the jars named by the launcher jar's Class-Path, in class-path order with the first copy of a
# file winning (as the class loader would pick it), drops signatures and manifests, and joins each
# META-INF/services file across the jars (ServiceLoader reads every copy on a path). Multi-release
# entries (META-INF/versions/N) are unpacked but a directory does not select them: the base classes
# load, as on a JDK that ignores them. Writes OUT/wisp-cli.jar, a launcher whose Class-Path is
# OUT/classes/ (run.sh: WISP_JAR=OUT/wisp-cli.jar; memory.sh: a set with that env).
# Usage: bench/hbone/flat-classpath.sh [launcher jar] [OUT]   (defaults: cli/target/wisp-cli.jar, /tmp/wisp-flat)
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$(readlink -f "${1:-cli/target/wisp-cli.jar}")
OUT=${2:-/tmp/wisp-flat}
JAVA_HOME=${JAVA_HOME:-$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -1)}
[ -f "$SRC" ] || { echo "no launcher jar $SRC (build first)" >&2; exit 1; }
manifest() { unzip -p "$SRC" META-INF/MANIFEST.MF | tr -d '\r' | awk '/^ / { v = v substr($0, 2); next } { if (k) print k v; k = ""; v = "" } /^[A-Za-z-]+: / { k = substr($0, 1, index($0, ":") + 1); v = substr($0, index($0, ":") + 2) } END { if (k) print k v }'; }
main=$(manifest | sed -n 's/^Main-Class: //p')
read -r -a jars <<< "$(manifest | sed -n 's/^Class-Path: //p')"
rm -rf "$OUT"; mkdir -p "$OUT/classes" "$OUT/services"
dir=$(dirname "$SRC")
for j in "$SRC" "${jars[@]/#/$dir/}"; do
  [ -f "$j" ] || { echo "missing $j" >&2; exit 1; }
  # -n: never overwrite, so the first jar on the path wins
  unzip -qq -n "$j" -d "$OUT/classes" -x 'META-INF/*.SF' 'META-INF/*.RSA' 'META-INF/*.DSA' 'META-INF/*.EC' \
    'META-INF/MANIFEST.MF' 'META-INF/services/*' 'module-info.class' 'META-INF/versions/*/module-info.class' || [ $? = 11 ]
  unzip -Z1 "$j" | grep '^META-INF/services/[^/]\+$' | while read -r s; do
    { unzip -p "$j" "$s"; echo; } >> "$OUT/services/${s##*/}"
  done || true
done
mkdir -p "$OUT/classes/META-INF/services"
for s in "$OUT"/services/*; do [ -f "$s" ] && cp "$s" "$OUT/classes/META-INF/services/"; done
rm -rf "$OUT/services"
netty=$(printf '%s\n' "${jars[@]}" | grep -o 'netty-transport-[0-9][^j]*Final' | head -1 || true)
printf 'Manifest-Version: 1.0\nMain-Class: %s\nClass-Path: classes/\nFlattened-Netty: %s\n' "$main" "$netty" > "$OUT/MANIFEST.MF"
"$JAVA_HOME/bin/jar" cfm "$OUT/wisp-cli.jar" "$OUT/MANIFEST.MF"
echo "$OUT/wisp-cli.jar: $(find "$OUT/classes" -name '*.class' | wc -l) classes from $((${#jars[@]} + 1)) jars, $(du -sh "$OUT/classes" | cut -f1)"
