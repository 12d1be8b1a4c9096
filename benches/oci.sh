#!/usr/bin/env bash
# foxbox as podman's OCI runtime against crun and runc: the time of
# `podman --runtime X run --rm busybox true`, all three in one run, alternating, medians,
# p10/p90 and the ratios foxbox/x.
#
# Usage (as root): benches/oci.sh [RUNS]    (default 20)
# Needs: podman (and conmon), crun, runc, unshare, python3, cargo; FOXBOX_BENCH_BIN=PATH skips
# the release build; BUSYBOX_TARBALL=PATH skips images/build-busybox.sh.
#
# podman runs rootful with a private --root/--runroot/--tmpdir and containers.conf under a temp
# dir (the host's podman state is not touched), `--network none`, the cgroupfs manager with a
# cgroup parent of the bench's own (removed afterwards), and `default_ulimits = []`: root on
# this kind of VM lacks CAP_SYS_RESOURCE, so podman's default nofile/nproc rlimits would fail.
# crun 1.8 refuses the hybrid cgroup layout, so it runs through a wrapper that hides the
# unified hierarchy in a mount namespace of its own (`unshare -m`); the wrapper's cost (one
# unshare and one sh per runtime call; podman and conmon call the runtime several times per `run`) is
# measured too and shown. Equivalence: foxbox-runc puts the container in no cgroup (it warns
# and goes on), runc and crun create and remove one per container.
set -euo pipefail

runs=${1:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "oci.sh: run it as root (rootful podman)" >&2; exit 1; }
for t in podman crun runc unshare python3; do
  command -v "$t" >/dev/null || { echo "oci.sh: $t is not installed" >&2; exit 1; }
done
if [ -n "${FOXBOX_BENCH_BIN:-}" ]; then
  fox=$FOXBOX_BENCH_BIN
else
  (cd "$here" && cargo build --release --quiet)
  fox=$here/target/$(rustc --print host-tuple)/release/foxbox
fi

work=$(mktemp -d /tmp/foxbox-bench-oci-XXXXXX)
cgparent=foxbox-bench-oci-$$
conf=$work/containers.conf
pm() {
  CONTAINERS_CONF=$conf podman --root "$work/root" --runroot "$work/run" --tmpdir "$work/tmp" "$@"
}
cleanup() {
  pm rm -af >/dev/null 2>&1 || true
  pm image rm -af >/dev/null 2>&1 || true
  { grep -o " $work[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  for h in /sys/fs/cgroup/*/"$cgparent" /sys/fs/cgroup/unified/"$cgparent"; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$conf"
ln -s "$fox" "$work/foxbox-runc"
cat >"$work/crun-wrap" <<'EOF'
#!/bin/sh
exec unshare -m sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null || true; exec crun "$@"' crun "$@"
EOF
# The same wrapper around runc: what the wrapper adds to crun's figure.
cat >"$work/runc-wrap" <<'EOF'
#!/bin/sh
exec unshare -m sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null || true; exec runc "$@"' runc "$@"
EOF
chmod +x "$work/crun-wrap" "$work/runc-wrap"

tarball=${BUSYBOX_TARBALL:-$work/busybox.tar.gz}
[ -f "$tarball" ] || bash "$here/images/build-busybox.sh" "$tarball" >/dev/null
pm import "$tarball" localhost/busybox:latest >/dev/null 2>&1
sync

python3 - "$runs" "$work" "$cgparent" "$conf" <<'PY'
import os, statistics, subprocess, sys, time

runs, work, cgparent, conf = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
base = ["podman", "--root", f"{work}/root", "--runroot", f"{work}/run", "--tmpdir",
        f"{work}/tmp"]
run = ["run", "--rm", "--network", "none", "--cgroup-parent", f"/{cgparent}",
       "localhost/busybox", "true"]
runtimes = {
    "foxbox-runc": f"{work}/foxbox-runc",
    "crun (wrapped)": f"{work}/crun-wrap",
    "runc": "runc",
    "(runc wrapped)": f"{work}/runc-wrap",
}
env = dict(os.environ, CONTAINERS_CONF=conf)

def once(name, rt):
    argv = base + ["--runtime", rt] + run
    t = time.perf_counter_ns()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter_ns() - t
    if r.returncode != 0:
        sys.exit(f"{name} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    return dt / 1e6

for name, rt in runtimes.items():  # warm caches, check each one works
    for _ in range(2):
        once(name, rt)
samples = {name: [] for name in runtimes}
for _ in range(runs):  # interleaved, so drift hits every runtime alike
    for name, rt in runtimes.items():
        samples[name].append(once(name, rt))

med = {k: statistics.median(v) for k, v in samples.items()}
load = os.getloadavg()[0]
print(f"podman run --rm busybox true, median of {runs} runs, {os.cpu_count()} cpus, "
      f"load {load:.1f}")
print(f"{'runtime':<18}{'median ms':>10}{'p10':>9}{'p90':>9}{'foxbox/x':>10}")
for k, v in samples.items():
    q = statistics.quantiles(v, n=10) if len(v) > 1 else [v[0]] * 9
    print(f"{k:<18}{med[k]:>10.1f}{q[0]:>9.1f}{q[-1]:>9.1f}"
          f"{med['foxbox-runc'] / med[k]:>10.2f}")
wrap = med["(runc wrapped)"] - med["runc"]
if wrap > 0:
    crun_net = med["crun (wrapped)"] - wrap
    print(f"the wrapper adds ~{wrap:.1f} ms per run; crun without it ~{crun_net:.1f} ms, "
          f"foxbox/that = {med['foxbox-runc'] / crun_net:.2f}")
else:  # below the noise: compare with crun as measured
    crun_net = med["crun (wrapped)"]
    print(f"the wrapper's cost is below the noise ({wrap:.1f} ms): crun taken as measured")
print(f"target foxbox <= crun: {'yes' if med['foxbox-runc'] <= crun_net else 'NO'}")
PY
