#!/usr/bin/env bash
# Builds the base image of starnix-pager from this machine's own files: no image registry is
# reachable here, so nothing is pulled. The root filesystem holds the machine's `node` binary,
# the shared libraries that `ldd` lists for it (and for any extra ELF files named on the
# command line, e.g. the native addon), the dynamic loader, a minimal /etc/passwd and /etc/group,
# and a sticky /tmp. It is imported with `docker import`.
#
#   docker/build-base.sh [--tag TAG] [--force] [EXTRA_ELF...]
#
# The image carries a label with a digest of everything copied in; when an image with that tag
# and digest already exists, nothing is rebuilt (pass --force to rebuild anyway).
set -euo pipefail

tag="starnix-pager-base:local"
force=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

node_bin="$(readlink -f "$(command -v node)")"
[ -x "$node_bin" ] || { echo "build-base: no node binary found on PATH" >&2; exit 1; }

# Every shared library that node and the extra ELF files load, resolved to real files.
libs_of() {
  # ldd lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  ldd "$1" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }'
}
mapfile -t libs < <( { libs_of "$node_bin"; for f in "${extra[@]}"; do libs_of "$f"; done; } | sort -u)
if ldd "$node_bin" | grep -q 'not found'; then
  echo "build-base: ldd reports missing libraries for $node_bin" >&2; exit 1
fi

# The digest covers the node binary and every library, so a changed machine rebuilds the base.
digest="$(sha256sum "$node_bin" "${libs[@]}" | sha256sum | cut -c1-16)"
if [ "$force" -eq 0 ] && existing="$(docker image inspect -f '{{index .Config.Labels "starnix-pager.base-digest"}}' "$tag" 2>/dev/null)" \
   && [ "$existing" = "$digest" ]; then
  echo "build-base: $tag is up to date (digest $digest)"
  exit 0
fi

root="$(mktemp -d /tmp/starnix-pager-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{usr/bin,etc,tmp,root,proc,sys,dev,app,svc,images}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$node_bin" "$root/usr/bin/node"
for lib in "${libs[@]}"; do
  # Keep each library at the path the loader was told about (e.g. /lib/x86_64-linux-gnu/...,
  # /lib64/ld-linux-x86-64.so.2): the loader's built-in search path finds them without a cache.
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  # Also under its real name, should a library be reached through a symlink elsewhere.
  real="$(readlink -f "$lib")"
  if [ "$real" != "$lib" ]; then mkdir -p "$root$(dirname "$real")"; cp -L "$real" "$root$real"; fi
done

# uid 0 is used by default in the image (see docker/README.md: /dev/userfaultfd is root-only
# on most hosts); `pager` is there for hosts that grant the device to a group.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
pager:x:10001:10001:starnix-pager:/tmp:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
pager:x:10001:
nogroup:x:65534:
EOF

node_version="$("$node_bin" --version)"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . \
  | docker import \
      --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
      --change "LABEL starnix-pager.base-digest=$digest" \
      --change "LABEL starnix-pager.node-version=$node_version" \
      --change 'WORKDIR /app' \
      - "$tag" >/dev/null
echo "build-base: built $tag (node $node_version, ${#libs[@]} libraries, digest $digest)"
