#!/usr/bin/env bash
# Import benchmark, one run, peers measured side by side:
#   1. a large .tar.gz made here (12000 files, ~365 MB of tar, ~315 MB compressed):
#      `foxbox image import` against GNU `tar -xzf`, RUNS each, alternating which goes first;
#      the ratio is of the best runs (other load only ever adds time), medians shown too;
#   2. preparing a box rootfs from a small image (busybox) and from the large one: the two
#      should take the same time (nothing of the image is copied).
# Usage: benches/import.sh [WORKDIR]   env: FILES (12000), RUNS (5), KEEP=1 keeps WORKDIR
# Run as root or as an unprivileged user (each with their own store under WORKDIR).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/foxbox-bench.XXXXXX")}
files=${FILES:-12000}
runs=${RUNS:-5}
mkdir -p "$work"
cleanup() { [ "${KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

echo "building foxbox (release)..." >&2
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
fox=$here/target/$(rustc --print host-tuple)/release/foxbox

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
minimum() { sort -n | head -1; }

big=$work/big.tar.gz
if [ ! -f "$big" ]; then
  echo "making $files files (half random, half text) and packing them..." >&2
  python3 - "$work/tree" "$files" <<'PY'
import os, random, sys, base64
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, "usr", "lib", f"pkg{i % 200}", f"sub{i % 7}")
    os.makedirs(d, exist_ok=True)
    size = rnd.randint(1_000, 100_000)
    raw = rnd.randbytes(size // 2)
    # Half incompressible, half base64 text (compresses ~4:3): gzip still has work to do.
    data = raw[: size // 4] + base64.b64encode(raw[size // 4 :])
    with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
        f.write(data)
    if i % 50 == 0:
        os.symlink(f"f{i}.bin", os.path.join(d, f"link{i}"))
PY
  tar --numeric-owner --sort=name -C "$work/tree" -czf "$big" .
  rm -rf "$work/tree"
fi
unpacked=$(gzip -dc "$big" | wc -c)
echo "archive: $(du -m "$big" | cut -f1) MB compressed, $((unpacked / 1000000)) MB of tar, $files files" >&2

fox_times=()
tar_times=()
run_fox() {
  rm -rf "$work/store"
  sync
  local t0 t1
  t0=$(now)
  FOXBOX_ROOT=$work/store "$fox" image import --name big "$big" >/dev/null
  t1=$(now)
  fox_times+=("$(echo "$t1 - $t0" | bc)")
}
run_tar() {
  rm -rf "$work/tar-out"
  mkdir -p "$work/tar-out"
  sync
  local t0 t1
  t0=$(now)
  tar --numeric-owner -xzf "$big" -C "$work/tar-out"
  t1=$(now)
  tar_times+=("$(echo "$t1 - $t0" | bc)")
}
for i in $(seq "$runs"); do
  if [ $((i % 2)) = 1 ]; then run_fox; run_tar; else run_tar; run_fox; fi
done
rm -rf "$work/tar-out"
fox_best=$(printf '%s\n' "${fox_times[@]}" | minimum)
tar_best=$(printf '%s\n' "${tar_times[@]}" | minimum)
fox_med=$(printf '%s\n' "${fox_times[@]}" | median)
tar_med=$(printf '%s\n' "${tar_times[@]}" | median)
printf 'import   foxbox image import: best %6.2f s  median %6.2f s  (runs: %s)\n' "$fox_best" "$fox_med" "${fox_times[*]}"
printf 'import   tar -xzf:            best %6.2f s  median %6.2f s  (runs: %s)\n' "$tar_best" "$tar_med" "${tar_times[*]}"
printf 'import   ratio foxbox/tar (best): %5.2f   (<= 1.00: foxbox at least as fast)\n' "$(echo "$fox_best / $tar_best" | bc -l)"
printf 'import   ratio foxbox/tar (median): %5.2f\n' "$(echo "$fox_med / $tar_med" | bc -l)"

# Box rootfs: a small and a large image, in the same store.
small=$work/busybox.tar.gz
bash "$here/images/build-busybox.sh" "$small" >/dev/null
FOXBOX_ROOT=$work/store "$fox" image import --name small "$small" >/dev/null
prep() {
  local img=$1 out=()
  for i in $(seq 5); do
    local d=$work/boxes/$img-$i
    t0=$(now)
    FOXBOX_ROOT=$work/store "$fox" image prepare-rootfs "$img" "$d" >/dev/null
    t1=$(now)
    out+=("$(echo "$t1 - $t0" | bc)")
    FOXBOX_ROOT=$work/store "$fox" image remove-rootfs "$d"
  done
  printf '%s\n' "${out[@]}" | median
}
# The first call also probes overlayfs once per process: warm both the same way.
prep small >/dev/null
s=$(prep small)
l=$(prep big)
printf 'rootfs   small image (busybox): %6.3f s\n' "$s"
printf 'rootfs   large image (%s MB):   %6.3f s\n' "$((unpacked / 1000000))" "$l"
printf 'rootfs   ratio large/small:     %6.2f   (~1.00: cost independent of image size)\n' "$(echo "$l / $s" | bc -l)"
