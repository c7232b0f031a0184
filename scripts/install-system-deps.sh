#!/usr/bin/env bash
# Debian packages the project uses: e2fsprogs (mkfs.ext4 -d, debugfs: images and the
# test oracle), fuse2fs (a benchmark contender), util-linux (losetup), fuse3 + libfuse3-dev + pkg-config (the test FUSE file system,
# test/support/fuse/, built from C at test time), protobuf-compiler (protoc: generates
# src/gen/perfetto and decodes traces in the tests), gcc's sanitizer runtimes libasan8, libubsan1,
# libtsan2 (npm run test:sanitize / test:tsan). Installs only what is missing; needs root (or sudo).
set -euo pipefail
need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v debugfs   >/dev/null || need+=(e2fsprogs)
command -v fuse2fs   >/dev/null || need+=(fuse2fs)
command -v losetup   >/dev/null || need+=(util-linux)
command -v protoc    >/dev/null || need+=(protobuf-compiler)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v pkg-config  >/dev/null || need+=(pkg-config)
[ -f /usr/include/fuse3/fuse.h ] || need+=(libfuse3-dev)
libs="$(ldconfig -p)"
grep -q 'libasan\.so\.8 ' <<<"$libs"  || need+=(libasan8)
grep -q 'libubsan\.so\.1 ' <<<"$libs" || need+=(libubsan1)
grep -q 'libtsan\.so\.2 ' <<<"$libs"  || need+=(libtsan2)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
