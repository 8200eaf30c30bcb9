#!/usr/bin/env bash
# Runs `wisp demo` on a fresh machine: installs the Debian packages it needs (only those missing),
# then the launcher builds Wisp on first use and runs the demo. Arguments go to `wisp demo`
# (e.g. --duration 30s, --prometheus, --keep). Run as root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# maven: the build; iproute2 + util-linux: namespaces, veth, nsenter; curl, procps: to look around;
# wireguard-tools: `wg show` of the agents' WireGuard devices (the demo prints one).
packages=(maven iproute2 util-linux curl procps wireguard-tools)
for a in "$@"; do
  if [ "$a" = "--prometheus" ]; then packages+=(prometheus); fi
done
"$root/scripts/install-deps.sh" "${packages[@]}"
exec "$root/bin/wisp" demo "$@"
