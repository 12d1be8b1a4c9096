#!/usr/bin/env bash
# Memory held by a detached box's supervisor, beside podman's conmon (when podman can run a
# container here) and a plain `sleep` process, all measured in this run on this machine, each
# supervising/being a box running `sleep`.
#
# Usage: benches/supervisor_rss.sh          (builds the release binary; FOXBOX_BENCH_BIN=PATH
#                                           uses that one; BUSYBOX_TARBALL=PATH skips building
#                                           the image)
# Columns (kB): RSS (/proc/PID/status VmRSS: every mapped page, shared ones included), anon
# (RssAnon: its own heap and stacks), PSS (shared pages split among their users), private
# (Private_Clean + Private_Dirty: what ending the process would free).
# conmon runs under podman with its own throwaway store, runc and no default ulimits (crun and
# podman's default RLIMIT_NOFILE do not work on this host, see shared/testinfra).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/foxbox-rss-XXXXXX)
chmod 755 "$work"
cleanup() {
  if [ -n "${fox:-}" ]; then FOXBOX_ROOT="$work/fox" "$fox" rm -f rss >/dev/null 2>&1 || true; fi
  if [ -n "${pm_cid:-}" ]; then $P rm -f -t 0 "$pm_cid" >/dev/null 2>&1 || true; fi
  if [ -n "${sleep_pid:-}" ]; then kill "$sleep_pid" 2>/dev/null || true; fi
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

if [ -n "${FOXBOX_BENCH_BIN:-}" ]; then
  fox=$FOXBOX_BENCH_BIN
else
  (cd "$here" && cargo build --release --quiet)
  fox=$here/target/$(rustc --print host-tuple)/release/foxbox
fi
tarball=${BUSYBOX_TARBALL:-$work/busybox.tar.gz}
[ -f "$tarball" ] || bash "$here/images/build-busybox.sh" "$tarball" >/dev/null

# kB: rss anon pss private
measure() {
  local pid=$1
  local rss anon
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
  awk -v rss="$rss" -v anon="$anon" '
    /^Pss:/ {pss=$2} /^Private_Clean:/ {pc=$2} /^Private_Dirty:/ {pd=$2}
    END {print rss, anon, pss, pc + pd}' "/proc/$pid/smaps_rollup"
}

row() { printf '%-22s %8s %8s %8s %8s\n' "$@"; }

export FOXBOX_ROOT=$work/fox
"$fox" image import --name busybox "$tarball" >/dev/null
"$fox" run -d --name rss busybox sleep 100000 >/dev/null
sup=$("$fox" inspect rss | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["SupervisorPid"])')
sleep 1 # let it settle into its wait
read -r f_rss f_anon f_pss f_priv < <(measure "$sup")

sleep 100000 &
sleep_pid=$!
sleep 0.2
read -r s_rss s_anon s_pss s_priv < <(measure "$sleep_pid")

conmon=""
if command -v podman >/dev/null && command -v conmon >/dev/null; then
  printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"
  export CONTAINERS_CONF=$work/containers.conf
  P="podman --root $work/pm-root --runroot $work/pm-run --storage-driver vfs \
     --cgroup-manager cgroupfs --events-backend file --runtime runc"
  if $P import "$tarball" localhost/foxbox-rss >/dev/null 2>&1 &&
    pm_cid=$($P run -d --net none localhost/foxbox-rss sleep 100000 2>/dev/null); then
    cpid=$($P inspect --format '{{.State.ConmonPid}}' "$pm_cid")
    sleep 1
    read -r c_rss c_anon c_pss c_priv < <(measure "$cpid")
    conmon=yes
  else
    echo "(podman could not run a container here: conmon not measured)"
  fi
else
  echo "(conmon/podman not installed: conmon not measured)"
fi

echo "supervisor memory, kB ($(uname -r), $(id -un))"
row "process" "RSS" "anon" "PSS" "private"
row "foxbox supervisor" "$f_rss" "$f_anon" "$f_pss" "$f_priv"
[ -n "$conmon" ] && row "conmon $(conmon --version | awk 'NR==1 {print $3}')" "$c_rss" "$c_anon" "$c_pss" "$c_priv"
row "sleep (baseline)" "$s_rss" "$s_anon" "$s_pss" "$s_priv"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if [ -n "$conmon" ]; then
  echo "foxbox/conmon: RSS $(ratio "$f_rss" "$c_rss")x, PSS $(ratio "$f_pss" "$c_pss")x, private $(ratio "$f_priv" "$c_priv")x"
fi
echo "foxbox/sleep:  RSS $(ratio "$f_rss" "$s_rss")x, PSS $(ratio "$f_pss" "$s_pss")x, private $(ratio "$f_priv" "$s_priv")x"
