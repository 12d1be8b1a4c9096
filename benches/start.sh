#!/usr/bin/env bash
# Start-to-exit time of `/bin/true` in a fresh box: foxbox against bwrap, runc and crun, measured
# in one run over the same busybox rootfs, medians over many runs, with ratios.
#
# Usage: benches/start.sh [RUNS]            (default 50; run it as the user you care about:
#                                            rootless is foxbox's main mode)
#        BENCH_AS=foxtest benches/start.sh   (as root: re-run everything as that user)
# Needs: cargo, python3, bwrap, runc, crun, unshare (util-linux), tar; BUSYBOX_TARBALL=PATH
# skips building the image with images/build-busybox.sh.
#
# Equivalence: every runtime gets new user, mount, pid, ipc, uts, cgroup and network
# namespaces. foxbox starts from its image store (the tarball imported once, untimed): it
# records the box, mounts its overlay root (the box's own upper dir), /sys, masked and
# read-only paths, sets capabilities and the default seccomp filter, and removes the box again
# (`run --rm`); bwrap binds the rootfs directly. `foxbox up` is measured twice more, with a spec
# naming the stored image and with one naming the tarball by path: the ratio shows what a
# tarball spec costs (its digest is remembered by the file's stamp, not re-read each start). runc and crun run
# rootless bundles (`runc spec --rootless`) over the rootfs directory. crun 1.8 refuses this
# kind of host's hybrid cgroup layout, so it runs inside `unshare -Urm` with an empty tmpfs over
# /sys/fs/cgroup/unified; that wrapper's own cost is measured too and shown.
set -euo pipefail

runs=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" = 0 ] && [ -n "${BENCH_AS:-}" ]; then
  work=$(mktemp -d /tmp/foxbox-bench-XXXXXX)
  chmod 755 "$work"
  (cd "$here" && cargo build --release --quiet)
  cp "$here/target/$(rustc --print host-tuple)/release/foxbox" "$work/foxbox"
  cp "$0" "$work/start.sh"
  bash "$here/images/build-busybox.sh" "$work/busybox.tar.gz" >/dev/null
  chown -R "$BENCH_AS" "$work"
  trap 'rm -rf "$work"' EXIT
  setpriv --reuid="$BENCH_AS" --regid="$(id -g "$BENCH_AS")" --init-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work" FOXBOX_BENCH_BIN="$work/foxbox" \
    BUSYBOX_TARBALL="$work/busybox.tar.gz" bash "$work/start.sh" "$runs"
  exit
fi

work=$(mktemp -d /tmp/foxbox-bench-run-XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -n "${FOXBOX_BENCH_BIN:-}" ]; then
  fox=$FOXBOX_BENCH_BIN
else
  (cd "$here" && cargo build --release --quiet)
  fox=$here/target/$(rustc --print host-tuple)/release/foxbox
fi
for t in bwrap runc crun unshare python3; do
  command -v "$t" >/dev/null || { echo "start.sh: $t is not installed" >&2; exit 1; }
done

# The rootfs, unpacked by this user so that the box's root owns its files.
tarball=${BUSYBOX_TARBALL:-$work/busybox.tar.gz}
[ -f "$tarball" ] || bash "$here/images/build-busybox.sh" "$tarball" >/dev/null
mkdir "$work/rootfs"
tar -xpf "$tarball" -C "$work/rootfs"

export XDG_RUNTIME_DIR=$work/xdg-run
mkdir -p "$XDG_RUNTIME_DIR"
export FOXBOX_ROOT=$work/foxbox-root
# foxbox starts boxes from its image store: import the same tarball once (not timed).
"$fox" --log-level error image import --name bench "$tarball" >/dev/null

uid=$(id -u) gid=$(id -g)
bundle() { # DIR HOST_UID HOST_GID
  mkdir -p "$1"
  python3 - "$1" "$work/rootfs" "$2" "$3" <<'PY'
import json, sys
d, rootfs, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user", "network", "cgroup")]
cfg = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
        "capabilities": {k: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
                             "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID",
                             "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
                         for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    },
    "root": {"path": rootfs, "readonly": False},
    "hostname": "bench",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "none", "source": "/sys",
         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
        "namespaces": ns,
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                        "/proc/scsi", "/sys/firmware"],
        "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}
json.dump(cfg, open(d + "/config.json", "w"), indent=1)
PY
}
bundle "$work/runc-bundle" "$uid" "$gid"
# Inside `unshare -Ur` the caller is uid/gid 0, so the bundle maps that.
bundle "$work/crun-bundle" 0 0
# The set-up above (image, rootfs, bundles) left megabytes of dirty pages: write them out now,
# or their writeback lands on whichever runs measure a disk write (foxbox records its boxes,
# fsynced; runc and crun write state files).
printf '[box]\nimage = "bench"\ncommand = ["/bin/true"]\n' >"$work/stored.toml"
printf '[box]\nimage = "%s"\ncommand = ["/bin/true"]\n' "$tarball" >"$work/tarball.toml"
sync
# A tarball's digest is remembered once its ctime is 2 s old (src/image/tarball_digest.rs).
sleep 2

python3 - "$runs" "$fox" "$work" <<'PY'
import os, statistics, subprocess, sys, time

runs, fox, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rootfs = f"{work}/rootfs"
cgfix = "mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null || true"
n = [0]

def nxt():
    n[0] += 1
    return f"b{os.getpid()}-{n[0]}"

tools = {
    "foxbox": lambda: [fox, "--log-level", "error", "run", "--rm", "bench", "/bin/true"],
    "foxbox up (stored image)": lambda: [fox, "--log-level", "error", "up", "--rm",
                                         f"{work}/stored.toml"],
    "foxbox up (tarball path)": lambda: [fox, "--log-level", "error", "up", "--rm",
                                         f"{work}/tarball.toml"],
    "bwrap": lambda: ["bwrap", "--unshare-all", "--bind", rootfs, "/", "--proc", "/proc",
                      "--dev", "/dev", "--new-session", "--die-with-parent", "/bin/true"],
    "runc": lambda: ["runc", "--root", f"{work}/runc-state", "run", "-b",
                     f"{work}/runc-bundle", nxt()],
    "crun": lambda: ["unshare", "-Urm", "sh", "-c",
                     f"{cgfix}; exec crun --root {work}/crun-state run -b {work}/crun-bundle {nxt()}"],
    "(crun's unshare wrapper)": lambda: ["unshare", "-Urm", "sh", "-c", f"{cgfix}; exec true"],
}

retried = {name: 0 for name in tools}

def once(name, argv):
    # A peer that fails now and then (runc here, rarely: "could not ensure we are a cloned
    # binary: EBUSY") is run again, at most twice, and the retries are reported; foxbox is not.
    for attempt in range(1 if name.startswith("foxbox") else 3):
        t = time.perf_counter_ns()
        r = subprocess.run(argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        dt = time.perf_counter_ns() - t
        if r.returncode == 0:
            return dt / 1e6
        retried[name] += 1
    sys.exit(f"{name} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")

for name, argv in tools.items():  # warm caches, check each one works
    for _ in range(3):
        once(name, argv)
samples = {name: [] for name in tools}
for _ in range(runs):  # interleaved, so drift hits every tool alike
    for name, argv in tools.items():
        samples[name].append(once(name, argv))

med = {k: statistics.median(v) for k, v in samples.items()}
uid = os.getuid()
print(f"start-to-exit of /bin/true, median of {runs} runs, uid {uid}, {os.cpu_count()} cpus")
print(f"{'runtime':<26}{'median ms':>10}{'p10':>8}{'p90':>8}{'foxbox/x':>10}")
for k, v in samples.items():
    q = statistics.quantiles(v, n=10)
    print(f"{k:<26}{med[k]:>10.2f}{q[0]:>8.2f}{q[-1]:>8.2f}{med['foxbox'] / med[k]:>10.2f}")
for k, n in retried.items():
    if n:
        print(f"({k} failed and was run again {n} time(s))")
tar_ratio = med["foxbox up (tarball path)"] / med["foxbox up (stored image)"]
print(f"tarball spec / stored image spec = {tar_ratio:.2f}")
crun_net = med["crun"] - med["(crun's unshare wrapper)"]
print(f"crun without its wrapper ~{crun_net:.2f} ms; foxbox/that = {med['foxbox'] / crun_net:.2f}")
ok_bwrap = med["foxbox"] <= 1.5 * med["bwrap"]
ok_crun = med["foxbox"] < med["crun"]
print(f"target: within 1.5x of bwrap: {'yes' if ok_bwrap else 'NO'}; faster than crun: "
      f"{'yes' if ok_crun else 'NO'}")
PY
