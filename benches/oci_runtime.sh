#!/usr/bin/env bash
# podman --runtime X run --rm busybox true, for X = foxbox-runc, runc and crun (each where it
# runs here), N times each interleaved; prints each one's median and its ratio to foxbox's.
# Root; podman's files go to a private root under a temp dir.
# Usage: benches/oci_runtime.sh [N] [FOXBOX_BINARY]
set -euo pipefail
n=${1:-15}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${2:-$repo/target/x86_64-unknown-linux-gnu/debug/foxbox}
work=$(mktemp -d)
trap 'podman --root "$work/root" --runroot "$work/run" system reset -f >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
ln -s "$bin" "$work/foxbox-runc"
po() { podman --root "$work/root" --runroot "$work/run" --tmpdir "$work/tmp" "$@"; }
tar=${BUSYBOX_TAR:-${FOXBOX_TEST_TMP:-/tmp/foxbox-tests}/busybox.tar.gz}
[ -f "$tar" ] || bash "$repo/images/build-busybox.sh" "$tar" >/dev/null
po import "$tar" localhost/busybox:latest >/dev/null
runtimes=("$work/foxbox-runc")
for r in runc crun; do
  p=$(command -v $r || true)
  [ -n "$p" ] && po --runtime "$p" run --rm --network none localhost/busybox true >/dev/null 2>&1 && runtimes+=("$p")
done
declare -A times
for ((i = 0; i < n; i++)); do
  for r in "${runtimes[@]}"; do
    s=$(date +%s%N)
    po --runtime "$r" run --rm --network none localhost/busybox true >/dev/null 2>&1
    e=$(date +%s%N)
    times[$r]+="$(((e - s) / 1000000)) "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${times[${runtimes[0]}]}" | median)
printf '%-14s %10s %8s\n' runtime "median ms" ratio
for r in "${runtimes[@]}"; do
  m=$(echo "${times[$r]}" | median)
  printf '%-14s %10s %8s\n' "$(basename "$r")" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
done
