#!/usr/bin/env bash
# The native addon under the sanitizers: `npm run test:sanitize` (AddressSanitizer +
# UndefinedBehaviorSanitizer) and `npm run test:tsan` (ThreadSanitizer). See docs/hardening.md.
#
#   1. builds the addon with -fsanitize=... into build-sanitize/<variant>/ (build/Release, which
#      the ordinary tests load, is not touched; objects are rebuilt only when their source changed);
#   2. runs the jest suites that drive native code with the sanitizer runtime preloaded
#      (LD_PRELOAD, inherited by every child process a test starts: servers, peers, the CLI) and
#      the sanitized addon chosen by STARNIX_PAGER_NATIVE (src/native.ts);
#   3. every process writes its reports to a file of its own in a fresh log directory, and
#      scripts/sanitizer_reports.js fails the run on any report with a frame in native/.
#
# Usage: scripts/test_sanitize.sh address|thread [jest arguments, default: the native suites]
# Run it through npm (npm run test:sanitize / test:tsan): node-gyp and its configuration come
# from npm. Needs gcc's sanitizer runtimes (libasan8, libubsan1, libtsan2: install-system-deps.sh).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
variant="${1:?usage: test_sanitize.sh address|thread [jest args]}"
shift

# The suites that exercise native code: the pager threads, channels, mappings, the servers, and
# the CLI serving and reading images (cli/images, cli/map). Not ext4/fidl/codegen: TypeScript
# only. Not hostile/fuzz_decoder (a million messages through the TypeScript decoder), nor
# cli/habits and cli/output (the CLI's usage texts and exit codes: dozens of process starts, each
# slowed by the runtime, through the same native paths as cli/images).
default_suites=(test/pager test/transport test/hostile test/server test/cli
  --testPathIgnorePatterns /test/hostile/fuzz_decoder.test.ts /test/cli/habits.test.ts /test/cli/output.test.ts)

case "$variant" in
  address) runtimes=(libasan.so libubsan.so) ;;
  thread) runtimes=(libtsan.so) ;;
  *) echo "test_sanitize.sh: unknown variant '$variant' (address or thread)" >&2; exit 2 ;;
esac

preload=""
for lib in "${runtimes[@]}"; do
  path="$(realpath "$(gcc -print-file-name="$lib")" 2>/dev/null || true)"
  if [ ! -f "$path" ]; then
    echo "test_sanitize.sh: gcc's $lib is missing (run scripts/install-system-deps.sh)" >&2
    exit 1
  fi
  preload="${preload:+$preload }$path"
done

if ! command -v node-gyp >/dev/null; then
  echo "test_sanitize.sh: node-gyp is not on PATH: run it as npm run test:sanitize (or test:tsan)" >&2
  exit 2
fi

# 1. The sanitized build: a binding.gyp that includes the project's with the variant set.
build="$repo/build-sanitize/$variant"
mkdir -p "$build"
printf '{ "variables": { "sanitize": "%s" }, "includes": ["../../binding.gyp"] }\n' "$variant" >"$build/binding.gyp"
echo "test_sanitize.sh: building the addon with -fsanitize=$variant in $build" >&2
started=$(date +%s)
if ! (cd "$build" && node-gyp configure && node-gyp build) >"$build/build.log" 2>&1; then
  cat "$build/build.log" >&2
  echo "test_sanitize.sh: the $variant build failed" >&2
  exit 1
fi
echo "test_sanitize.sh: built in $(($(date +%s) - started)) s" >&2
npm run build >/dev/null

# 2. The run.
logs="$(mktemp -d /tmp/starnix-sanitize-"$variant".XXXXXX)"
chmod 1777 "$logs" # tests start some children under other uids
supp="$repo/scripts/sanitizer"
export STARNIX_PAGER_NATIVE="$build/build/Release/starnix_native.node"
export LD_PRELOAD="$preload"
# detect_leaks=0: Node and the tools the tests start (mkfs.ext4, debugfs) leave memory to the
# exit on purpose and LSan would turn that into failing exit codes; the addon's lifetimes are
# covered by the tests that count fds and Shmem. handle_sigbus=0: the addon handles SIGBUS
# itself (a poisoned page is an EIO, native/mapping.cc); ASan must leave that handler alone.
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=0:handle_sigbus=0:allow_user_segv_handler=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:suppressions=$supp/ubsan.supp"
# exitcode=0: a race report must not change a child's exit status (tests check those); the
# reports themselves fail the run below.
export TSAN_OPTIONS="log_path=$logs/tsan:exitcode=0:history_size=4:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
if [ $# -eq 0 ]; then set -- "${default_suites[@]}"; fi
echo "test_sanitize.sh: jest $* (reports in $logs)" >&2
started=$(date +%s)
jest_status=0
npx jest --ci "$@" || jest_status=$?
elapsed=$(($(date +%s) - started))
unset LD_PRELOAD

# 3. The verdict.
report_status=0
node "$repo/scripts/sanitizer_reports.js" "$logs" || report_status=$?
echo "test_sanitize.sh: $variant: jest exit $jest_status in ${elapsed} s, reports exit $report_status (logs in $logs)" >&2
# STARNIX_SANITIZE_VERDICT=reports (CI): only the reports decide. The runtime slows every process
# two to three times, and a test's own deadline (a server start in 10 s, an exit in 5 s) can then
# fail on a loaded machine without any fault in the code; npm test, run before, judges the tests.
# A memory error still fails: ASan writes its report before it aborts the process.
if [ "${STARNIX_SANITIZE_VERDICT:-}" = reports ]; then
  [ "$jest_status" -eq 0 ] || echo "test_sanitize.sh: jest failed (exit $jest_status), not counted: STARNIX_SANITIZE_VERDICT=reports" >&2
  [ "$report_status" -eq 0 ]
else
  [ "$jest_status" -eq 0 ] && [ "$report_status" -eq 0 ]
fi
