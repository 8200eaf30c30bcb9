#!/usr/bin/env bash
# Installs the Debian packages that Wisp's demo and tests use, only those missing.
#   scripts/install-deps.sh          everything the test suite needs
#   scripts/install-deps.sh PKG...   only these (scripts/demo.sh names what the demo needs)
set -euo pipefail

packages=(
  maven openssl curl procps iproute2 iputils-ping nftables iptables netcat-openbsd   # build, namespaces, loss emulation
  clang llvm libbpf-dev linux-libc-dev bpftool                          # eBPF programs
  wireguard-tools wireguard-go                                          # WireGuard interop peers
  iperf3 haproxy bc nghttp2-client prometheus                             # benchmarks' peers, Prometheus
  chromium                                                              # the live mesh page's headless browser test
)

if [ $# -gt 0 ]; then
  packages=("$@")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
