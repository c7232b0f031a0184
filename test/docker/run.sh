#!/usr/bin/env bash
# End-to-end test of starnix-pager in Docker (npm run test:docker): the server in one container,
# its clients in others, talking over sockets in a shared volume; the ext4 image is mounted
# read-only into the clients only, so the server can read it only through the fd that a client
# sends it (CreatePager).
#
# Starts a Docker engine if none runs (installing Debian's docker.io if missing), builds the base
# and app images (docker/build-image.sh), makes an ext4 image with `mkfs.ext4 -d` from files of
# random content, and checks: each file read by a client container has the original's SHA-256;
# ls and stat see the files; a missing path fails cleanly; concurrent clients are served; a
# client killed in the middle of a read does not harm the server, its fds are released, and a
# new client is served; the seccomp alternative to the device works; without any uffd grant the
# client and the server say so; `docker stop` (SIGTERM) makes the server exit 0.
#
# Prints one line per check and "N passed, M failed" last; exits 1 on any failure. Every wait
# has a timeout, and the whole run is bounded by STARNIX_E2E_TIMEOUT seconds (default 900).
# Cleans up its containers, volume and files; stops the engine again if it started it
# (STARNIX_E2E_KEEP_DOCKERD=1 leaves it running).
set -uo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
run_id="e2e-$$-$RANDOM"
label="starnix-pager-e2e=$run_id"
# STARNIX_E2E_IMAGE=TAG tests an image built beforehand (no build step).
image_tag="${STARNIX_E2E_IMAGE:-starnix-pager:e2e}"
base_tag="starnix-pager-base:local"
svc_volume="starnix-pager-$run_id-svc"
server="starnix-pager-$run_id-server"
overall_timeout="${STARNIX_E2E_TIMEOUT:-900}"

passed=0
failed=0
work=""
started_dockerd_pid=""
watchdog_pid=""

say() { printf '%s\n' "$*"; }
pass() { passed=$((passed + 1)); say "ok   - $1"; }
fail() { failed=$((failed + 1)); say "FAIL - $1${2:+ ($2)}"; }
# check NAME COMMAND...: one check, passed when COMMAND succeeds.
check() { local check_name="$1"; shift; if "$@"; then pass "$check_name"; else fail "$check_name"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
  exec 7>&- 2>/dev/null || true
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    local ids
    ids="$(docker ps -aq --filter "label=$label" 2>/dev/null)"
    [ -n "$ids" ] && timeout -k 5 60 docker rm -f -v $ids >/dev/null 2>&1
    timeout -k 5 30 docker volume rm -f "$svc_volume" "$svc_volume-nogrant" >/dev/null 2>&1
  fi
  [ -n "$work" ] && rm -rf "$work"
  if [ -n "$started_dockerd_pid" ] && [ "${STARNIX_E2E_KEEP_DOCKERD:-0}" != 1 ]; then
    kill -TERM "$started_dockerd_pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$started_dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  [ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null
}

finish() {
  cleanup
  say "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
  exit 1
}
# A step without which nothing else can be checked: count it and stop.
fatal() { fail "$1" "${2:-}"; finish; }
trap 'say "interrupted"; failed=$((failed + 1)); finish' INT TERM

# The whole run is bounded: the watchdog interrupts it (and the trap cleans up).
# Its sleep holds none of our output open, so nothing lingers on a caller's pipe after the run.
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$overall_timeout" </dev/null >/dev/null 2>&1 &
  sleeper=$!
  wait "$sleeper"
  say "FAIL - the run exceeded ${overall_timeout}s"
  kill -TERM $$
) &
watchdog_pid=$!

# ---------------------------------------------------------------- the engine
ensure_docker() {
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { say "docker.io is missing and this is not root"; return 1; }
    say "# installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    local apt_log=/tmp/starnix-pager-apt.log
    { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq docker.io; } >"$apt_log" 2>&1 \
      || { tail -20 "$apt_log"; return 1; }
  fi
  timeout 20 docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || { say "no Docker engine runs and this is not root"; return 1; }
  local log=/tmp/starnix-pager-dockerd.log
  say "# starting dockerd (log: $log)"
  # Its own session, no terminal, no inherited pipes: it must not hold the caller's output open.
  setsid dockerd </dev/null >"$log" 2>&1 &
  started_dockerd_pid=$!
  for _ in $(seq 1 120); do
    timeout 5 docker info >/dev/null 2>&1 && return 0
    kill -0 "$started_dockerd_pid" 2>/dev/null || { tail -20 "$log"; return 1; }
    sleep 0.5
  done
  tail -20 "$log"
  return 1
}
t0="$(now)"
ensure_docker || fatal "a Docker engine runs"
pass "a Docker engine runs ($(docker version -f '{{.Server.Version}}' 2>/dev/null), ready in $(since "$t0")s)"
[ -c /dev/userfaultfd ] || fatal "the host has /dev/userfaultfd (Linux 6.1+)"

# ---------------------------------------------------------------- the images
if [ -n "${STARNIX_E2E_IMAGE:-}" ]; then
  docker image inspect "$image_tag" >/dev/null 2>&1 || fatal "the image $image_tag exists"
  say "# testing the prebuilt image $image_tag"
else
if [ ! -e "$repo/dist/src/cli/main.js" ]; then
  say "# dist/ has no CLI: building with tsc"
  (cd "$repo" && timeout 300 npx tsc -p . >/dev/null 2>&1)
fi
[ -e "$repo/dist/src/cli/main.js" ] || fatal "the project is built (dist/src/cli/main.js)" "run npm run build"
[ -e "$repo/build/Release/starnix_native.node" ] || fatal "the native addon is built" "run npm ci or npm run build:native"

t0="$(now)"
timeout 300 bash "$repo/docker/build-base.sh" --tag "$base_tag" "$repo/build/Release/starnix_native.node" \
  || fatal "the base image builds"
pass "the base image builds ($(since "$t0")s)"
t0="$(now)"
timeout 600 bash "$repo/docker/build-image.sh" --tag "$image_tag" --base-tag "$base_tag" \
  || fatal "the app image builds"
pass "the app image builds ($(since "$t0")s)"
fi

# ---------------------------------------------------------------- the test image
work="$(mktemp -d /tmp/starnix-pager-e2e.XXXXXX)"
files="$work/files"
mkdir -p "$files/dir/sub"
# Sizes around page boundaries, one of several MiB, one large enough to be killed mid-read.
declare -A sizes=(
  [empty]=0 [one-byte]=1 [page-minus-one]=4095 [page]=4096 [page-plus-one]=4097
  [odd-64k]=65537 [one-mib]=1048576 [dir/three-mib-odd]=3145745 [dir/sub/big]=25165829
)
for f in "${!sizes[@]}"; do head -c "${sizes[$f]}" /dev/urandom >"$files/$f"; done
img="$work/test.img"
timeout 60 mkfs.ext4 -q -F -L e2e -d "$files" "$img" 64M >/dev/null 2>&1 || fatal "mkfs.ext4 -d makes the test image"
chmod 0644 "$img"
big=/dir/sub/big
big_size="${sizes[dir/sub/big]}"

# ---------------------------------------------------------------- containers
# userfaultfd for both sides: the device, every capability dropped, no network (the sockets
# are files in the shared volume).
grant=(--device /dev/userfaultfd --cap-drop ALL --security-opt no-new-privileges)
common=(--network none --label "$label")

server_logs() { say "# server logs (last 30 lines):"; docker logs --tail 30 "$server" 2>&1 | sed 's/^/#   /'; }

# client NAME ARGS...: runs one client container (the image mounted read-only), its stdout to ours.
client_with() {
  local name="$1"; shift
  local -a opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  # -k: the docker CLI forwards a TERM to the container and may keep waiting; KILL ends it.
  timeout -k 10 120 docker run --rm --name "starnix-pager-$run_id-$name" "${common[@]}" "${opts[@]}" \
    -v "$svc_volume:/svc" -v "$img:/images/test.img:ro" "$image_tag" "$@"
  local rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    say "#   client $name timed out"
    timeout -k 5 60 docker rm -f "starnix-pager-$run_id-$name" >/dev/null 2>&1
  fi
  return "$rc"
}
client() { local name="$1"; shift; client_with "$name" "${grant[@]}" -- "$@"; }

running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

docker volume create --label "$label" "$svc_volume" >/dev/null || fatal "the service volume is created"
svc_dir="$(docker volume inspect -f '{{.Mountpoint}}' "$svc_volume")"

t0="$(now)"
docker run -d --name "$server" "${common[@]}" "${grant[@]}" -v "$svc_volume:/svc" "$image_tag" \
  serve --svc-dir /svc --log-level info >/dev/null || fatal "the server container starts"
manager_up=0
for _ in $(seq 1 60); do
  [ -S "$svc_dir/fuchsia.starnix.runner.Manager" ] && { manager_up=1; break; }
  running "$server" || break
  sleep 0.5
done
if [ "$manager_up" -eq 1 ]; then
  pass "the server serves fuchsia.starnix.runner.Manager in the shared volume ($(since "$t0")s)"
else
  server_logs; fatal "the server serves fuchsia.starnix.runner.Manager in the shared volume"
fi
for _ in $(seq 1 20); do [ -S "$svc_dir/starnix.pager.Mapper" ] && break; sleep 0.25; done
check "the server serves starnix.pager.Mapper in the shared volume" test -S "$svc_dir/starnix.pager.Mapper"
check "the server has no image mounted (only the service volume)" \
  test "$(docker inspect -f '{{range .Mounts}}{{.Destination}} {{end}}' "$server")" = "/svc "

# ---------------------------------------------------------------- reads
sha_of_file() { sha256sum "$1" | cut -d' ' -f1; }
# cat_matches NAME PATH [grant options...]: a client's cat of PATH gives the original's bytes.
cat_matches() {
  local name="$1" path="$2"; shift 2
  local out="$work/out-$name" rc
  if [ $# -gt 0 ]; then client_with "$name" "$@" -- cat --svc-dir /svc /images/test.img "$path" >"$out"
  else client "$name" cat --svc-dir /svc /images/test.img "$path" >"$out"; fi
  rc=$?
  if [ "$rc" -ne 0 ]; then say "#   $path: exit $rc"; return 1; fi
  local want got
  want="$(sha_of_file "$files$path")"; got="$(sha_of_file "$out")"
  [ "$want" = "$got" ] || { say "#   $path: sha256 $got, want $want ($(stat -c %s "$out") of $(stat -c %s "$files$path") bytes)"; return 1; }
}
t0="$(now)"
i=0
for f in $(printf '%s\n' "${!sizes[@]}" | sort); do
  i=$((i + 1))
  check "cat /$f: SHA-256 matches (${sizes[$f]} bytes)" cat_matches "cat$i" "/$f"
done
say "# $i sequential reads in $(since "$t0")s"

ls_lists() {
  local path="$1"; shift
  local out
  out="$(client ls ls /images/test.img "$path")" || { say "#   ls $path failed"; return 1; }
  local entry
  for entry in "$@"; do
    grep -qw -- "$entry" <<<"$out" || { say "#   ls $path: no $entry in:"; say "$out" | sed 's/^/#   /'; return 1; }
  done
}
check "ls / lists the root's entries" ls_lists / empty one-byte page page-minus-one page-plus-one odd-64k one-mib dir
check "ls /dir/sub lists big" ls_lists /dir/sub big
stat_says_size() {
  local out
  out="$(client stat stat /images/test.img "$big")" || { say "#   stat $big failed"; return 1; }
  grep -qw "$big_size" <<<"$out" || { say "#   stat $big: no size $big_size in:"; say "$out" | sed 's/^/#   /'; return 1; }
}
check "stat $big reports its size" stat_says_size
missing_fails() {
  local out="$work/out-missing" rc
  client missing cat --svc-dir /svc /images/test.img /no/such/file >"$out" 2>"$work/err-missing"
  rc=$?
  [ "$rc" -eq 1 ] && [ ! -s "$out" ] || { say "#   exit $rc, $(stat -c %s "$out") bytes on stdout"; return 1; }
}
check "cat of a missing path exits 1 with nothing on stdout" missing_fails

concurrent_reads() {
  local pids=() ok=0
  for n in 1 2 3; do cat_matches "conc$n" "$big" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || ok=1; done
  return "$ok"
}
check "3 concurrent clients read $big, each SHA-256 matches" concurrent_reads

# ---------------------------------------------------------------- the server's open fds
# Every client brings an image fd, a uffd and its connections; the server must let them all go
# when the client goes, however it goes. The count after the first clients is the baseline
# (the server opens some fds of its own on first use).
server_fds() { local pid; pid="$(docker inspect -f '{{.State.Pid}}' "$server")" && ls "/proc/$pid/fd" | wc -l; }
# fds_settle_to N: waits up to 10 s for the server's fd count to come down to N.
fds_settle_to() {
  local n
  for _ in $(seq 1 40); do n="$(server_fds)" && [ "$n" -le "$1" ] && return 0; sleep 0.25; done
  say "#   the server holds $n fds, $1 before"; return 1
}
sleep 1
baseline_fds="$(server_fds)"
say "# the server holds $baseline_fds fds after the first clients"

# ---------------------------------------------------------------- a client killed mid-read
# The client's stdout goes to a FIFO that this script holds open but stops reading after
# 1 MiB: the pipe and the engine's attach stream fill up, and the client blocks in the middle
# of the file with its mapping registered with the server. It is killed there. The engine only
# finishes a kill once the container's output is drained, so the FIFO is closed (the docker CLI
# then fails its write and detaches) while `docker kill` is under way; exit code 137 then
# shows the client died of the kill and did not finish.
kill_mid_read() {
  local fifo="$work/kill.fifo" name="starnix-pager-$run_id-victim" head_bytes=1048576
  mkfifo "$fifo"
  exec 7<>"$fifo"
  # 7<&-: the CLI must not hold a read end of its own FIFO, or it would never see EPIPE.
  timeout -k 10 120 docker run --name "$name" "${common[@]}" "${grant[@]}" \
    -v "$svc_volume:/svc" -v "$img:/images/test.img:ro" "$image_tag" \
    cat --svc-dir /svc /images/test.img "$big" >"$fifo" 2>"$work/err-victim" 7<&- &
  local cli_pid=$!
  timeout 60 head -c "$head_bytes" <&7 >"$work/partial"
  local got
  got="$(stat -c %s "$work/partial")"
  sleep 0.5
  if [ "$got" -ne "$head_bytes" ] || ! running "$name"; then
    say "#   the client was not mid-read: $got bytes received, running=$(running "$name" && echo yes || echo no)"
    exec 7>&-; wait "$cli_pid"; return 1
  fi
  cmp -s -n "$head_bytes" "$work/partial" "$files$big" || { say "#   the first MiB differs"; exec 7>&-; return 1; }
  say "#   the server holds $(server_fds) fds while the client is mid-read"
  timeout -k 5 60 docker kill "$name" >/dev/null 7<&- &
  local kill_pid=$!
  sleep 1
  exec 7>&-
  wait "$kill_pid" || { say "#   docker kill failed"; return 1; }
  timeout 30 tail --pid="$cli_pid" -f /dev/null
  wait "$cli_pid" 2>/dev/null
  local code
  code="$(docker inspect -f '{{.State.ExitCode}}' "$name" 2>/dev/null)"
  timeout -k 5 60 docker rm -f "$name" >/dev/null 2>&1
  [ "$code" = 137 ] || { say "#   the client's exit code is $code, not 137 (killed)"; return 1; }
}
check "a client is killed (docker kill) in the middle of reading $big" kill_mid_read
sleep 1
check "the server still runs after the client's death" running "$server"
check "a new client after the kill reads $big, SHA-256 matches" cat_matches after-kill "$big"
check "a new client after the kill reads /one-mib, SHA-256 matches" cat_matches after-kill2 /one-mib
check "the server's fds come back to $baseline_fds after the killed client and the next ones" fds_settle_to "$baseline_fds"

# ---------------------------------------------------------------- the other way to get a uffd
# Without the device: the userfaultfd(2) syscall, allowed by an unconfined seccomp profile.
# With CAP_SYS_PTRACE it gives a full uffd; without it (vm.unprivileged_userfaultfd=0) only a
# user-mode-only one, which serves the CLI's reads too (they fault in user mode).
check "a client without the device (seccomp=unconfined, SYS_PTRACE) reads /dir/three-mib-odd" \
  cat_matches seccomp /dir/three-mib-odd --security-opt seccomp=unconfined --cap-drop ALL --cap-add SYS_PTRACE
check "a client without the device (seccomp=unconfined, no capability) reads /odd-64k" \
  cat_matches seccomp-nocap /odd-64k --security-opt seccomp=unconfined --cap-drop ALL
nogrant_client_says_so() {
  local out="$work/out-nogrant" err="$work/err-nogrant" rc
  client_with nogrant-client --cap-drop ALL -- cat --svc-dir /svc /images/test.img /one-mib >"$out" 2>"$err"
  rc=$?
  [ "$rc" -eq 1 ] && [ ! -s "$out" ] && grep -qi userfaultfd "$err" \
    || { say "#   exit $rc, $(stat -c %s "$out") bytes on stdout, stderr: $(head -c 300 "$err")"; return 1; }
}
check "a client without a uffd grant exits 1 and names userfaultfd" nogrant_client_says_so

# ---------------------------------------------------------------- no grant at all
nogrant_says_so() {
  local name="starnix-pager-$run_id-nogrant" logs
  docker volume create --label "$label" "$svc_volume-nogrant" >/dev/null || return 1
  docker run -d --name "$name" "${common[@]}" --cap-drop ALL -v "$svc_volume-nogrant:/svc" "$image_tag" \
    serve --svc-dir /svc >/dev/null || return 1
  for _ in $(seq 1 40); do
    logs="$(docker logs "$name" 2>&1)"
    grep -qi userfaultfd <<<"$logs" && break
    running "$name" || break
    sleep 0.25
  done
  docker rm -f "$name" >/dev/null 2>&1
  grep -qi userfaultfd <<<"$logs" || { say "#   server logs without the grant:"; say "$logs" | sed 's/^/#   /' | tail -10; return 1; }
}
check "a server without a uffd grant says so at start-up" nogrant_says_so

# ---------------------------------------------------------------- SIGTERM
t0="$(now)"
timeout -k 5 60 docker stop -t 20 "$server" >/dev/null
stop_s="$(since "$t0")"
code="$(docker inspect -f '{{.State.ExitCode}}' "$server" 2>/dev/null)"
if [ "$code" = 0 ]; then pass "docker stop (SIGTERM): the server exits 0 (${stop_s}s)"
else server_logs; fail "docker stop (SIGTERM): the server exits 0" "exit code $code after ${stop_s}s"; fi

finish
