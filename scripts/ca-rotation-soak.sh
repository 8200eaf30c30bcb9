#!/usr/bin/env bash
# Root rotation under continuous calls, the long version (issue 18): a two-node local mesh whose
# workload certificates live TTL, pod client calling pod server back to back for MINUTES while
# `wisp ca rotate` adds a root (at 1/5 of the run), switches to it (at 2/5) and retires the old one
# one and a half lifetimes later. It is CaRotationE2eTest with a longer plan; the test asserts zero
# failed calls, zero failed handshakes, both agents' certificates moving to the new root, and the old
# root's certificate refused after the retire.
#
#   scripts/ca-rotation-soak.sh [MINUTES] [TTL]      # default 10 minutes, 2m certificates
#
# As root (network namespaces); MVN_ARGS=-o builds offline. Figures: bench/results/ca-rotation.txt (calls, failures, handshake
# failures, renewals seen, handshakes, the time of each step, load average); the run's logs are the
# test's surefire output under e2e/target/surefire-reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
TTL=${2:-2m}
RESULTS=$PWD/bench/results/ca-rotation.txt
echo "== ca rotation soak: ${MINUTES} min of calls, ${TTL} certificates, $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
# Through the reactor (-am): Wisp's own modules are never installed into the local repository.
./mvnw -B -q ${MVN_ARGS:-} -pl e2e -am verify -Dtest=CaRotationE2eTest -Dsurefire.failIfNoSpecifiedTests=false \
    -Dwisp.rotation.minutes="$MINUTES" -Dwisp.rotation.ttl="$TTL" -Dwisp.rotation.results="$RESULTS"
echo "== passed; figures in $RESULTS:"
cat "$RESULTS"
