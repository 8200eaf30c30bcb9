#!/usr/bin/env bash
# Rebuilds the committed eBPF objects from their C sources.
#
#   bpf/build-bpf.sh
#
# For every src/{main,test}/bpf/NAME.bpf.c it writes src/{main,test}/resources/dev/wisp/bpf/NAME.bpf.o
# and NAME.bpf.o.sha256. The .sha256 record holds the SHA-256 of the source and of the object and
# the compiler flags; ObjectFreshnessTest fails when a source no longer matches its record, i.e.
# when someone edited a .bpf.c without running this script. (A byte-for-byte rebuild check would
# tie the test to one clang version; the source hash does not.)
set -euo pipefail
cd "$(dirname "$0")"

FLAGS="-O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu"
command -v clang >/dev/null || { echo "build-bpf: clang missing; run scripts/install-deps.sh" >&2; exit 1; }

for scope in main test; do
  for src in src/$scope/bpf/*.bpf.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    out=src/$scope/resources/dev/wisp/bpf
    mkdir -p "$out"
    # shellcheck disable=SC2086
    clang $FLAGS -c "$src" -o "$out/$name.o"
    # Debug info would carry this machine's paths; keep BTF (needed for .maps) and drop DWARF.
    llvm-strip -g "$out/$name.o"
    {
      echo "source-sha256 $(sha256sum "$src" | cut -d' ' -f1)"
      echo "object-sha256 $(sha256sum "$out/$name.o" | cut -d' ' -f1)"
      echo "flags $FLAGS"
    } >"$out/$name.o.sha256"
    echo "build-bpf: $src -> $out/$name.o"
  done
done
