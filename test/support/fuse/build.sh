#!/usr/bin/env bash
# Builds the test FUSE file system (stallfs.c) with Debian's libfuse3-dev: build.sh [OUT]
# (default build-test/stallfs). Written to a temporary name and renamed, so concurrent builds by
# parallel test workers never run a half-written binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../../build-test/stallfs}"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
# shellcheck disable=SC2046
cc -O2 -Wall -Wextra -Werror -o "$tmp" "$here/stallfs.c" $(pkg-config --cflags --libs fuse3) -lpthread
mv -f "$tmp" "$out"
