#!/usr/bin/env bash
# Load and soak runs through a local mesh (as root): dev.wisp.local.load.LoadRun.
#   bench/soak/run.sh conns [key=value…]   10,000 connections (connections=) from two pods on node 1 to an
#                                          echo pod on node 2, through both agents, held 300 s (hold=), each
#                                          echoing 16 bytes every 5 s (period= ms); cluster ld10k, base 156
#   bench/soak/run.sh soak [key=value…]    one hour (hold=3600) of 500 held connections echoing, 20 short
#                                          connections a second (churn=), the AuthorizationPolicy rewritten
#                                          every 60 s (policy=), the control plane killed and restarted at
#                                          1800 s (restart=); cluster soak, base 158
# Every 10 s (sample=) each agent's RSS, heap after GC, direct memory, open fds and threads go to
# bench/results/soak-MODE.txt (CSV rows, '#' lines for the summary and slopes) and the plot to
# bench/results/soak-MODE.svg (out=, svg= to change). See ARCHITECTURE.md, "Load and soak".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:?usage: bench/soak/run.sh conns|soak [key=value…]}; shift
# The agents hold one socket per captured connection on node 1 and one per upstream connection on
# node 2, plus the pods' own: 10,000 connections need > 10,000 fds per agent and per pod process.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 16384 ] || { echo "need an fd limit of at least 16384 (ulimit -Hn is $(ulimit -Hn))" >&2; exit 1; }
bin/wisp --help > /dev/null # builds when sources changed
java=${WISP_JAVA:-$(ls -d /usr/lib/jvm/*/bin/java | sort -rV | head -1)}
# A private copy of the class path: the run's JVMs (this one, the agents, the pods') load classes
# lazily for an hour, and a build in this tree meanwhile would replace the jars under them.
cp_dir=$(mktemp -d /tmp/wisp-load-cp.XXXXXX)
trap 'rm -rf "$cp_dir"' EXIT
cp cli/target/wisp-cli.jar "$cp_dir/" && cp -r cli/target/lib "$cp_dir/lib"
"$java" --enable-native-access=ALL-UNNAMED -Xmx256m -cp "$cp_dir/wisp-cli.jar:$cp_dir/lib/*" \
  dev.wisp.local.load.LoadRun "$mode" "$@"
