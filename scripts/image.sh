#!/usr/bin/env bash
# Builds Wisp's container image as an OCI image archive without any container daemon: plain tar,
# gzip and sha256sum write the OCI image layout (index, manifest, config, three layers) and pack it.
#
#   scripts/image.sh [--quick] [--out DIR] [--cache DIR] [--rebuild-base]
#
# Layers, bottom up:
#   1. base: a Debian root file system (`debootstrap --variant=minbase` of the release this machine
#      runs, with libbpf1 for capture and iproute2's ip for the agent's routes), from the mirror
#      this machine's apt already uses; with --quick instead the few host programs bin/wisp and
#      the agent need and the shared libraries they and the JVM load
#      (seconds instead of minutes; what the test suite builds, not what a cluster should run).
#   2. java: a jlink'ed Java 25 runtime holding only the modules `jdeps` finds in Wisp's jars.
#   3. wisp: /opt/wisp/bin/wisp (the launcher), /opt/wisp/lib/*.jar.
# Output: DIR/oci (the image layout) and DIR/wisp-VERSION.oci.tar (`oci-archive`, what skopeo and
# podman read), named wisp/wisp:VERSION (the chart's image.repository and appVersion).
# Reproducible: every file's mtime is 1970-01-01T00:00:01Z, owners numeric (0, or 1337 for the
# wisp user's directories), entries sorted, gzip without names or times; the config's `created`
# and the revision label are the last commit's. The same inputs give the same digest. The base,
# the Java runtime, their layers and the third-party jars' module list are cached in DIR/cache
# (keyed by the release or the host's package list, the module list and the JDK), since
# debootstrap, jdeps and jlink take minutes on a loaded machine; --rebuild-base refreshes the base.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
out="$root/target/image"
cache=""
quick=0
rebuild_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --cache) cache=$2; shift ;;
    --rebuild-base) rebuild_base=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
cache=${cache:-$out/cache}
[ "$(id -u)" = 0 ] || { echo "image.sh: run as root (the layers' files must be owned by root and 1337)" >&2; exit 1; }
for c in tar gzip sha256sum jq; do
  command -v "$c" >/dev/null || { echo "image.sh: needs $c (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/wisp/Chart.yaml")
repository=wisp/wisp
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

# shellcheck source=lib/java.sh
. "$root/scripts/lib/java.sh"
java=$(WISP_JAVA=${WISP_JDK:+$WISP_JDK/bin/java} find_java jlink) || { echo "image.sh: WISP_JDK may name a JDK directory" >&2; exit 1; }
jdk=$(dirname "$(dirname "$java")")


work="$out/work"
rm -rf "$work" "$out/oci"
mkdir -p "$work" "$cache" "$out/oci/blobs/sha256"
started=$SECONDS
say() { echo "image.sh: [$((SECONDS - started)) s] $*" >&2; }

# One layer from a directory: a sorted tar with numeric owners and every mtime 1970-01-01T00:00:01Z
# (as Jib does: a layer's digest then depends on its content only, so an unchanged base or Java
# runtime keeps its digest from commit to commit), gzip'ed without a name or time. Sets
# layer_digest (the blob), layer_diff_id (the tar) and layer_size.
layer() {
  local dir=$1 tar="$work/layer.tar"
  tar --create --file "$tar" --directory "$dir" --sort=name --mtime=@1 --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --xattrs --xattrs-include='security.capability' .
  layer_diff_id=sha256:$(sha256sum "$tar" | cut -d' ' -f1)
  gzip -n -6 "$tar"
  local d
  d=$(sha256sum "$tar.gz" | cut -d' ' -f1)
  mv "$tar.gz" "$out/oci/blobs/sha256/$d"
  layer_digest=sha256:$d
  layer_size=$(stat -c %s "$out/oci/blobs/sha256/$d")
}

# A layer kept in the cache under KEY: reused when there (sets what layer sets), else status 1.
cached_layer() {
  [ -f "$cache/layer-$1.tar.gz" ] && [ -f "$cache/layer-$1.diff_id" ] || return 1
  local d
  d=$(sha256sum "$cache/layer-$1.tar.gz" | cut -d' ' -f1)
  cp "$cache/layer-$1.tar.gz" "$out/oci/blobs/sha256/$d"
  layer_digest=sha256:$d
  layer_diff_id=$(cat "$cache/layer-$1.diff_id")
  layer_size=$(stat -c %s "$out/oci/blobs/sha256/$d")
}

# Keeps the layer just made in the cache under KEY.
cache_layer() {
  cp "$out/oci/blobs/sha256/${layer_digest#sha256:}" "$cache/layer-$1.tar.gz"
  echo "$layer_diff_id" > "$cache/layer-$1.diff_id"
}

# A JSON document (the file $1) as a blob. Sets blob_digest and blob_size.
blob() {
  local f="$work/blob.json" d
  jq -cS . "$1" > "$f"
  d=$(sha256sum "$f" | cut -d' ' -f1)
  mv "$f" "$out/oci/blobs/sha256/$d"
  blob_digest=sha256:$d
  blob_size=$(stat -c %s "$out/oci/blobs/sha256/$d")
}

# Users and the few files every base needs: root, and wisp (1337) for the control plane.
etc_files() {
  local r=$1
  # Mount points a runtime fills (/proc, /sys, /dev).
  mkdir -p "$r/etc" "$r/tmp" "$r/var/lib/wisp" "$r/home/wisp" "$r/proc" "$r/sys" "$r/dev"
  grep -q '^wisp:' "$r/etc/passwd" 2>/dev/null || {
    [ -f "$r/etc/passwd" ] || echo 'root:x:0:0:root:/root:/bin/bash' > "$r/etc/passwd"
    [ -f "$r/etc/group" ] || echo 'root:x:0:' > "$r/etc/group"
    echo 'wisp:x:1337:1337:Wisp:/home/wisp:/usr/sbin/nologin' >> "$r/etc/passwd"
    echo 'wisp:x:1337:' >> "$r/etc/group"
  }
  chmod 1777 "$r/tmp"
  chown 1337:1337 "$r/var/lib/wisp" "$r/home/wisp"
}

# ---- layer 1: the base
# The programs bin/wisp and the node agent run (ip: the agent's routes and rules, e.g. the pods'
# transparent reply path), and the release base's packages; each is part of its base's cache key.
programs=(bash sh env cat dirname readlink sort ls sed grep find id ip)
packages=libbpf1,ca-certificates,iproute2
if [ "$quick" = 1 ]; then
  base_key=host-$({ cat /var/lib/dpkg/status; echo "${programs[*]}"; } | sha256sum | cut -c1-16)
else
  . /etc/os-release
  base_key=debian-${VERSION_CODENAME}-$(echo "$packages" | sha256sum | cut -c1-8)
fi
base_tar="$cache/base-$base_key.tar"
[ "$rebuild_base" = 1 ] && rm -f "$base_tar" "$cache/layer-base-$base_key".*
if cached_layer "base-$base_key"; then
  say "base: cached layer $base_key"
else
if [ ! -f "$base_tar" ]; then
  rootfs="$work/base"
  mkdir -p "$rootfs"
  if [ "$quick" = 1 ]; then
    say "base: host programs and their libraries"
    files=()
    for p in "${programs[@]}"; do files+=("$(readlink -f "$(command -v "$p")")"); done
    libbpf=$(ldconfig -p | sed -n 's/.*libbpf.so.1 .*=> //p' | head -1)
    [ -n "$libbpf" ] || { echo "image.sh: libbpf.so.1 missing on this host (apt-get install libbpf1)" >&2; exit 1; }
    files+=("$libbpf")
    # The JVM's own libraries (libjvm, libnet, …) load these from the host's libc package.
    for so in "$jdk"/lib/*.so "$jdk"/lib/server/libjvm.so "${files[@]}"; do
      { ldd "$so" 2>/dev/null || true; } | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
    done | sort -u > "$work/libs"
    # Debian 12 keeps /bin, /sbin, /lib and /lib64 as links into /usr: the same links here.
    mkdir -p "$rootfs/usr/bin" "$rootfs/usr/sbin" "$rootfs/usr/lib" "$rootfs/usr/lib64"
    for d in bin sbin lib lib64; do [ -L "/$d" ] && ln -sfn "$(readlink "/$d")" "$rootfs/$d"; done
    for f in "${files[@]}" $(cat "$work/libs") /lib/x86_64-linux-gnu/libnss_files.so.2 /etc/nsswitch.conf; do
      [ -e "$f" ] || continue
      real=$(readlink -f "$f")
      mkdir -p "$rootfs$(dirname "$real")"
      cp -L --preserve=mode "$f" "$rootfs$real"
      if [ "$real" != "$f" ] && [ ! -e "$rootfs$f" ]; then
        mkdir -p "$rootfs$(dirname "$f")"
        ln -s "$real" "$rootfs$f"
      fi
    done
    for p in "${programs[@]}"; do
      real=$(readlink -f "$(command -v "$p")")
      [ -e "$rootfs/usr/bin/$p" ] || ln -s "$real" "$rootfs/usr/bin/$p"
    done
  else
    command -v debootstrap >/dev/null || { echo "image.sh: needs debootstrap (apt-get install debootstrap), or use --quick" >&2; exit 1; }
    # The mirror this machine's apt already uses: no other source is written anywhere here.
    mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
    [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \([^ ]*\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1)
    [ -n "$mirror" ] || { echo "image.sh: no Debian mirror found in /etc/apt (set one there)" >&2; exit 1; }
    say "base: debootstrap --variant=minbase $VERSION_CODENAME ($packages)"
    debootstrap --variant=minbase --include="$packages" "$VERSION_CODENAME" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # What changes from run to run and nobody needs in an image.
    rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
      "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/run/* "$rootfs"/tmp/*
    : > "$rootfs/etc/machine-id"
  fi
  etc_files "$rootfs"
  tar --create --file "$base_tar.tmp" --directory "$rootfs" --sort=name --mtime="@$epoch" --numeric-owner \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$rootfs"
else
  say "base: cached $base_tar"
fi
mkdir -p "$work/base"
tar --extract --file "$base_tar" --directory "$work/base" --numeric-owner
layer "$work/base"
cache_layer "base-$base_key"
fi
base_digest=$layer_digest base_diff=$layer_diff_id base_size=$layer_size

# ---- layer 2: the Java runtime
jar="$root/cli/target/wisp-cli.jar"
if [ ! -f "$jar" ] || [ ! -d "$root/cli/target/lib" ]; then
  echo "image.sh: no build in $root/cli/target: run ./mvnw -B install -DskipTests first" >&2
  exit 1
fi
# jdeps over the third-party jars is the slow part (minutes on a loaded machine): cached by their
# names, which carry their versions; Wisp's own jars are analysed every time.
deps() {
  "$jdk/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps "$@" 2>/dev/null \
    | grep -E '^[a-z0-9.]+(,[a-z0-9.]+)*$' | tail -1
}
third=$(cd "$root/cli/target/lib" && ls | grep -v '^wisp-')
third_key=$(echo "$third $("$jdk/bin/java" -version 2>&1 | tr '\n' ' ')" | sha256sum | cut -c1-16)
if [ ! -f "$cache/modules-$third_key" ]; then
  say "java: jdeps over $(echo "$third" | wc -l) third-party jars"
  (cd "$root/cli/target/lib" && deps $third) > "$cache/modules-$third_key.tmp"
  mv "$cache/modules-$third_key.tmp" "$cache/modules-$third_key"
fi
say "java: jdeps over Wisp's jars"
modules="$(cat "$cache/modules-$third_key"),$(deps "$jar" "$root"/cli/target/lib/wisp-*.jar)"
modules="$modules,jdk.unsupported,jdk.naming.dns,jdk.crypto.ec,jdk.attach,jdk.jcmd"
modules=$(echo "$modules" | tr ',' '\n' | sort -u | paste -sd,)
jre_key=$(echo "$modules $("$jdk/bin/java" -version 2>&1 | tr '\n' ' ')" | sha256sum | cut -c1-16)
jre="$cache/java-$jre_key"
if [ ! -d "$jre" ]; then
  say "java: jlink $modules"
  rm -rf "$jre.tmp"
  "$jdk/bin/jlink" --add-modules "$modules" --output "$jre.tmp" --strip-debug --no-man-pages \
    --no-header-files --compress=zip-6 --generate-cds-archive >&2 2>"$work/jlink.log" \
    || { rm -rf "$jre.tmp"; "$jdk/bin/jlink" --add-modules "$modules" --output "$jre.tmp" --strip-debug \
      --no-man-pages --no-header-files --compress=zip-6 >&2; }
  mv "$jre.tmp" "$jre"
else
  say "java: cached $jre"
fi
if ! cached_layer "java-$jre_key"; then
  mkdir -p "$work/java/opt/wisp"
  cp -a "$jre" "$work/java/opt/wisp/java"
  layer "$work/java"
  cache_layer "java-$jre_key"
fi
java_digest=$layer_digest java_diff=$layer_diff_id java_size=$layer_size

# ---- layer 3: Wisp
say "wisp: launcher and jars"
w="$work/wisp"
mkdir -p "$w/opt/wisp/bin" "$w/opt/wisp/lib" "$w/usr/local/bin"
install -m 0755 "$root/bin/wisp" "$w/opt/wisp/bin/wisp"
install -m 0644 "$root/bin/node-jvm.options" "$w/opt/wisp/bin/node-jvm.options"
install -m 0644 "$jar" "$root"/cli/target/lib/*.jar "$w/opt/wisp/lib/"
ln -s /opt/wisp/bin/wisp "$w/usr/local/bin/wisp"
layer "$w"
wisp_digest=$layer_digest wisp_diff=$layer_diff_id wisp_size=$layer_size

# ---- config, manifest, index
jq -n --arg created "$created" --arg version "$version" --arg revision "$revision" \
  --arg b "$base_diff" --arg j "$java_diff" --arg w "$wisp_diff" --arg base "$base_key" --arg modules "$modules" '{
  architecture: "amd64", os: "linux", created: $created,
  config: {
    User: "1337:1337",
    Env: ["PATH=/opt/wisp/bin:/usr/local/bin:/usr/bin:/bin", "JAVA_HOME=/opt/wisp/java", "WISP_NO_BUILD=1"],
    Entrypoint: ["/opt/wisp/bin/wisp"], Cmd: ["--help"], WorkingDir: "/home/wisp",
    ExposedPorts: {"15008/tcp": {}, "15012/tcp": {}, "15020/tcp": {}, "15021/tcp": {}},
    Labels: {
      "org.opencontainers.image.title": "wisp",
      "org.opencontainers.image.description": "Wisp, a sidecarless service mesh: node agent, control plane, waypoint and CNI plugin (wisp COMMAND)",
      "org.opencontainers.image.version": $version, "org.opencontainers.image.revision": $revision,
      "dev.wisp.image.base": $base, "dev.wisp.image.java-modules": $modules }
  },
  rootfs: {type: "layers", diff_ids: [$b, $j, $w]},
  history: [{created: $created, created_by: ("base: " + $base)}, {created: $created, created_by: "jlink (scripts/image.sh)"},
            {created: $created, created_by: "wisp jars and bin/wisp (scripts/image.sh)"}]
}' > "$work/config.json"
blob "$work/config.json"
config_digest=$blob_digest config_size=$blob_size

gz=application/vnd.oci.image.layer.v1.tar+gzip
jq -n --arg cd "$config_digest" --argjson cs "$config_size" --arg gz "$gz" \
  --arg bd "$base_digest" --argjson bs "$base_size" --arg jd "$java_digest" --argjson js "$java_size" \
  --arg wd "$wisp_digest" --argjson ws "$wisp_size" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
  layers: [{mediaType: $gz, digest: $bd, size: $bs}, {mediaType: $gz, digest: $jd, size: $js},
           {mediaType: $gz, digest: $wd, size: $ws}]
}' > "$work/manifest.json"
blob "$work/manifest.json"
manifest_digest=$blob_digest manifest_size=$blob_size

jq -n --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg tag "$version" --arg name "$repository:$version" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
    platform: {architecture: "amd64", os: "linux"},
    annotations: {"org.opencontainers.image.ref.name": $tag, "dev.wisp.image.name": $name}}]
}' | jq -cS . > "$out/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci/oci-layout"

archive="$out/wisp-$version.oci.tar"
tar --create --file "$archive" --directory "$out/oci" --sort=name --mtime="@$epoch" --owner=0 --group=0 \
  --numeric-owner --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
rm -rf "$work"
say "done"
echo "image $repository:$version"
echo "manifest $manifest_digest"
echo "archive $archive $(stat -c %s "$archive") bytes"
echo "layers base $base_size java $java_size wisp $wisp_size bytes (gzip)"
