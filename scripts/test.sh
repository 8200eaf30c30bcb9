#!/usr/bin/env bash
# Runs Wisp's whole test suite: installs what the tests need, then builds and verifies every module.
# Extra arguments go to Maven (e.g. -pl spiffe -am).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cd "$root"
exec ./mvnw -B verify "$@"
