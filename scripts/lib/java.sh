# shellcheck shell=bash
# Sourced by the scripts and benchmarks that run Java: the one place they find their JDK.
# (bin/wisp keeps its own search: it is installed alone in the container image, with nothing beside it.)

# find_java [TOOL]: prints the first java >= 25, WISP_JAVA first and then /usr/lib/jvm/*/bin/java
# newest first, whose bin directory also holds TOOL when one is named (e.g. jlink); when there is
# none, says so on stderr and fails.
find_java() {
  local c v
  for c in "${WISP_JAVA:-}" $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do
    [ -n "$c" ] && [ -x "$c" ] || continue
    [ -z "${1:-}" ] || [ -x "$(dirname "$c")/$1" ] || continue
    v=$("$c" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  echo "needs a JDK >= 25${1:+ with $1} under /usr/lib/jvm (or WISP_JAVA)" >&2
  return 1
}
