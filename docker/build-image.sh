#!/usr/bin/env bash
# Builds the starnix-pager image from the project's built output.
#
#   docker/build-image.sh [--tag TAG] [--base-tag TAG]
#
# Needs: a running Docker engine, `npm run build` done (dist/) and the native addon built
# (build/Release/starnix_native.node). Builds the base first when it is missing or stale
# (docker/build-base.sh), stages a small build context (never the whole repository, whose
# node_modules hold the dev dependencies) and builds docker/Dockerfile on it.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
tag="starnix-pager:local"
base_tag="starnix-pager-base:local"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --base-tag) base_tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

addon="$repo/build/Release/starnix_native.node"
for need in "$repo/dist/src" "$addon" "$repo/bin/starnix-pager" "$repo/package.json" "$repo/package-lock.json"; do
  [ -e "$need" ] || { echo "build-image: missing $need (run npm ci && npm run build)" >&2; exit 1; }
done

bash "$repo/docker/build-base.sh" --tag "$base_tag" "$addon"

ctx="$(mktemp -d /tmp/starnix-pager-ctx.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
app="$ctx/app"
mkdir -p "$app/build/Release" "$app/dist"
cp "$repo/package.json" "$repo/package-lock.json" "$app/"
cp "$addon" "$app/build/Release/"
cp -r "$repo/bin" "$app/bin"
# Only the compiled sources: dist/ also holds compiled tests and tools the image does not run.
cp -r "$repo/dist/src" "$app/dist/src"

# Runtime dependencies only (winston and its tree). --ignore-scripts: the package's own install
# script would rebuild the addon, which is already built and copied above.
(cd "$app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
rm -f "$app/package-lock.json"

# The classic builder: the Debian engine has no BuildKit plugin, and the build needs none.
log="$ctx/build.log"
if ! DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$base_tag" -f "$repo/docker/Dockerfile" -t "$tag" "$ctx" >"$log" 2>&1; then
  cat "$log" >&2; echo "build-image: docker build failed" >&2; exit 1
fi
echo "build-image: built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
