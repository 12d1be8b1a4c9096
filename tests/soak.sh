#!/usr/bin/env bash
# Soak test: for SECONDS, 4 clients per user (root, and the unprivileged user `foxtest` when run
# as root; the caller alone otherwise) start detached boxes, exec into them and into a box that
# lives the whole run, read their logs, stop and remove them, until MAX boxes were started per
# user. Afterwards: no box process, zombie, mount, cgroup, network helper or foxbox process left
# (but for the rootless env's user-namespace holder, whose record is in its runtime dir), the
# long-lived box's supervisor has as many fds as at the start, no supervisor's count only grew
# (sampled each second), the store uses what it used before, and `system check` is
# clean. Prints the numbers.
#
#   tests/soak.sh [SECONDS [MAX]]      (defaults: 1200 s, 200 boxes per user)
#
# FOXBOX_BIN (default: target's debug foxbox), FOXBOX_BUSYBOX (a busybox rootfs tarball; default:
# built by images/build-busybox.sh) and FOXBOX_TEST_TMP (scratch, default /tmp/foxbox-tests).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1200}
max=${2:-200}
scratch=${FOXBOX_TEST_TMP:-/tmp/foxbox-tests}
mkdir -p "$scratch" && chmod 1777 "$scratch"
work=$(mktemp -d "$scratch/soak-XXXXXX")
chmod 755 "$work"
built=${FOXBOX_BIN:-$( (ls -t target/*/debug/foxbox target/debug/foxbox 2>/dev/null || true) | head -1)}
bin=$work/foxbox
cp "$built" "$bin" && chmod 755 "$bin"
tar=${FOXBOX_BUSYBOX:-$scratch/busybox.tar.gz}
[ -e "$tar" ] || bash images/build-busybox.sh "$tar"
chmod 644 "$tar"
tag=soak$$
cgparent=foxbox-$tag
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

users=(root)
if [ "$(id -u)" = 0 ] && id foxtest >/dev/null 2>&1; then users+=(foxtest); fi
[ "$(id -u)" = 0 ] || users=("$(id -un)")

# fb USER ARGS...: foxbox as USER in USER's env under $work/USER.
fb() {
  local u=$1
  shift
  local d=$work/$u
  local pre=()
  if [ "$(id -u)" = 0 ] && [ "$u" != root ]; then
    pre=(setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups --)
  fi
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$d/home" \
    XDG_DATA_HOME="$d/data" XDG_CONFIG_HOME="$d/config" XDG_CACHE_HOME="$d/cache" \
    XDG_RUNTIME_DIR="$d/runtime" USER="$u" LOGNAME="$u" LANG=C.UTF-8 \
    "${pre[@]}" "$bin" "$@" </dev/null
}

# Host pids of live processes whose command line contains $1 (a fixed string).
procs_with() {
  local p
  for p in $(pgrep -f -- "$(printf '%s' "$1" | sed 's/[.[\*^$]/\\&/g')" || true); do
    [ "$p" = "$$" ] && continue
    grep -qs '^State:.*Z' "/proc/$p/status" || echo "$p"
  done
  true
}

# Zombies whose parent runs this test's foxbox binary.
zombies() {
  local p ppid
  ps -eo pid=,ppid=,stat= | awk '$3 ~ /^Z/ {print $1, $2}' | while read -r p ppid; do
    if { tr '\0' ' ' <"/proc/$ppid/cmdline"; } 2>/dev/null | grep -qF -- "$bin"; then echo "$p"; fi
  done
}

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
supervisor_of() { fb "$1" inspect "$2" | jq -r '.[0].State.SupervisorPid // empty'; }
store_bytes() { du -sb "$work/$1/data/foxbox" | cut -f1; }

run_args() {
  # Root's boxes get a pids limit (so a cgroup) below a parent of this test's own.
  if [ "$1" = root ] && [ "$(id -u)" = 0 ]; then
    echo --pids-limit 64 --cgroup-parent "$cgparent"
  fi
}

# client USER N: start/exec/logs/stop/rm boxes until time is up or MAX were started.
client() {
  local u=$1 n=$2 i=0 b net started execs logs
  local count=$work/$u/count
  while [ "$(date +%s)" -lt "$deadline" ]; do
    started=$(flock "$count.lock" sh -c "n=\$(cat $count); [ \$n -ge $max ] && echo full || { echo \$((n+1)) > $count; echo ok; }")
    [ "$started" = ok ] || break
    i=$((i + 1))
    b=$tag-$n-$i
    net=()
    [ "$n" = 0 ] && net=(--network pasta)
    # shellcheck disable=SC2046
    if ! fb "$u" run -d --name "$b" "${net[@]}" $(run_args "$u") busybox \
      sh -c "echo hello-$b; while :; do echo tick; sleep 0.3; done; : $tag" >/dev/null; then
      echo "client $u/$n: run -d $b failed" >>"$work/errors"
      continue
    fi
    execs=0
    for _ in 1 2 3; do
      if [ "$(fb "$u" exec "$b" echo in-box)" = in-box ]; then execs=$((execs + 1)); fi
      if [ "$(fb "$u" exec "$tag-anchor" echo in-anchor)" = in-anchor ]; then execs=$((execs + 1)); fi
    done
    echo "$execs" >>"$work/$u/execs"
    # Read whole first: grep -q would close the pipe early.
    logs=$(fb "$u" logs "$b")
    grep -q "hello-$b" <<<"$logs" || echo "client $u/$n: logs of $b lack its first line" >>"$work/errors"
    fb "$u" stop -t 1 "$b" >/dev/null || echo "client $u/$n: stop $b failed" >>"$work/errors"
    fb "$u" rm "$b" >/dev/null || echo "client $u/$n: rm $b failed" >>"$work/errors"
  done
}

deadline=$(($(date +%s) + secs))
declare -A anchor_sup anchor_fd0 disk0
for u in "${users[@]}"; do
  for s in home data config cache runtime; do mkdir -p "$work/$u/$s"; done
  chmod 700 "$work/$u/runtime"
  echo 0 >"$work/$u/count"
  : >"$work/$u/execs" && : >"$work/$u/count.lock"
  [ "$u" = root ] || chown -R "$u:" "$work/$u"
  fb "$u" image import --name busybox "$tar" >/dev/null
  disk0[$u]=$(store_bytes "$u")
  # shellcheck disable=SC2046
  # With a network helper, as a quarter of the boxes have: the most fds a supervisor holds.
  fb "$u" run -d --name "$tag-anchor" --network pasta $(run_args "$u") busybox sh -c "sleep 100000; : $tag" >/dev/null
  anchor_sup[$u]=$(supervisor_of "$u" "$tag-anchor")
  anchor_fd0[$u]=$(fds "${anchor_sup[$u]}")
done

# Sample every supervisor's fd count (first and largest seen), and zombies, while it runs.
sampler() {
  local p f
  while [ -e "$work/clients-running" ]; do
    for p in $(procs_with "$tag"); do
      # A box's supervisor is the parent of its pid 1.
      local ppid
      ppid=$(awk '/^PPid:/{print $2}' "/proc/$p/status" 2>/dev/null) || continue
      [ -n "$ppid" ] || continue
      { tr '\0' ' ' <"/proc/$ppid/cmdline"; } 2>/dev/null | grep -qF -- "$bin" || continue
      f=$(fds "$ppid")
      echo "$ppid $f" >>"$work/fd-samples"
    done
    zombies >>"$work/zombie-samples" || true
    sleep 1
  done
}
: >"$work/fd-samples" && : >"$work/zombie-samples" && : >"$work/errors"
touch "$work/clients-running"
sampler &
sampler_pid=$!
t0=$(date +%s)
pids=()
for u in "${users[@]}"; do
  for n in 0 1 2 3; do
    client "$u" "$n" &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done
rm -f "$work/clients-running"
wait "$sampler_pid" || true
t1=$(date +%s)

echo "soak: ${users[*]}, $((t1 - t0)) s, 4 clients each"
for u in "${users[@]}"; do
  started=$(cat "$work/$u/count")
  execs=$(awk '{s+=$1} END {print s+0}' "$work/$u/execs")
  fd1=$(fds "${anchor_sup[$u]}")
  echo "  $u: boxes started $started, execs $execs, long-lived supervisor fds ${anchor_fd0[$u]} -> $fd1"
  [ "$fd1" = "${anchor_fd0[$u]}" ] || fail "$u: the long-lived box's supervisor went from ${anchor_fd0[$u]} to $fd1 fds"
  [ "$started" -gt 0 ] || fail "$u: no box started"
  fb "$u" rm -f "$tag-anchor" >/dev/null || fail "$u: rm -f anchor"
done
# Per supervisor: first and largest count seen.
read -r maxfd grew < <(awk '{ if (!($1 in first)) first[$1]=$2; if ($2>max) max=$2; if ($2-first[$1]>g) g=$2-first[$1] } END { print max+0, g+0 }' "$work/fd-samples")
echo "  supervisors sampled: $(cut -d' ' -f1 "$work/fd-samples" | sort -u | wc -l), max fds $maxfd, largest rise of one $grew"
# A leak grows and stays: fail on a supervisor sampled 3 times or more (after its first sample)
# whose count only ever rose and ended higher. A single high sample is a moment's fd (a stop, an exec being handed
# over); a first sample during set-up reads low. The long-lived ones, exec'd into thousands of
# times, must end with what they began with (checked above).
leaky=$(awk '!($1 in seen) { seen[$1]=1; next }  # the first sample may be mid-set-up
             { if (!($1 in n)) { first[$1]=$2; up[$1]=1 } else if ($2 < last[$1]) up[$1]=0;
               last[$1]=$2; n[$1]++ }
             END { for (p in n) if (n[p] >= 3 && up[p] && last[p] > first[p]) print p": "first[p]"->"last[p] }' "$work/fd-samples")
[ -z "$leaky" ] || fail "supervisors whose fds only grew: $leaky"
if [ -s "$work/errors" ]; then
  fail "client errors: $(sort "$work/errors" | uniq -c | head -20)"
fi
z=$(sort -u "$work/zombie-samples" | wc -l)
echo "  zombies of foxbox processes seen while running: $z"

# Everything gone.
sleep 1
left=$(procs_with "$tag")
[ -z "$left" ] || fail "box processes left: $left"
[ -z "$(zombies)" ] || fail "zombies left: $(zombies)"
ours=$(procs_with "$bin")
for p in $ours; do
  # The rootless env's user-namespace holder lives on, recorded in its runtime dir.
  if grep -rqs "$p" "$work"/*/runtime/ "$work"/*/data/foxbox/run/ 2>/dev/null; then continue; fi
  fail "foxbox process left: $p $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null)"
done
helpers=$(for p in $(procs_with "$work"); do
  if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qE '^(pasta|slirp4netns)'; then echo "$p"; fi
done)
[ -z "$helpers" ] || fail "network helpers left: $helpers"
mounts=$(grep -cF "$work" /proc/self/mountinfo || true)
[ "$mounts" = 0 ] || fail "$mounts mounts left under $work"
for h in /sys/fs/cgroup/*/"$cgparent" /sys/fs/cgroup/"$cgparent"; do
  [ -d "$h" ] || continue
  n=$(find "$h" -mindepth 1 -type d | wc -l)
  [ "$n" = 0 ] || fail "$n cgroups left in $h"
  rmdir "$h" 2>/dev/null || true
done
for u in "${users[@]}"; do
  d1=$(store_bytes "$u")
  echo "  $u: store bytes before ${disk0[$u]}, after $d1"
  # Directories a first box makes (names, mountpoint, volumes) may stay: a few kB at most.
  [ "$d1" -le $((disk0[$u] + 65536)) ] || fail "$u: store grew from ${disk0[$u]} to $d1 bytes"
  c=$(fb "$u" system check) || fail "$u: system check: $c"
done

# User-namespace holders: at most the one of each rootless env, recorded; it ends with its record.
holders=$(procs_with "__foxbox-userns-holder $work")
echo "  user-namespace holders left: $(echo "$holders" | grep -c . || true) (the rootless env's own)"
for p in $holders; do
  rec=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | tail -1)
  [ -e "$rec" ] || fail "holder $p without its record $rec"
done
[ "$(echo "$holders" | grep -c . || true)" -le "$((${#users[@]} - 1))" ] || fail "holders left: $holders"

if [ "$failed" = 0 ]; then
  rm -rf "$work" 2>/dev/null || true
  for _ in $(seq 50); do
    [ -z "$(procs_with "__foxbox-userns-holder $work")" ] && break
    sleep 0.2
  done
  [ -z "$(procs_with "__foxbox-userns-holder $work")" ] || fail "a holder outlived its record"
fi
if [ "$failed" = 0 ]; then
  echo "soak: OK"
else
  echo "soak: FAILED (kept $work)"
fi
exit "$failed"
