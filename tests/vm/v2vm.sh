#!/usr/bin/env bash
# Run a command inside a throwaway QEMU VM whose kernel has only cgroup v2 (mounted at
# /sys/fs/cgroup, every controller enabled at the root), print its output and exit with its
# exit status. Nothing is installed on the host: the Debian kernel is fetched with
# `apt-get download` and unpacked with `dpkg -x` into a cache directory.
#
#   tests/vm/v2vm.sh prepare                      fetch the kernel, build the initramfs (cached)
#   tests/vm/v2vm.sh [OPTIONS] [--] CMD [ARGS...]  run CMD as root in the VM
#
# The host's / is shared read-only over virtio-9p and the guest switch_roots into it (so host
# binaries, cargo test executables included, run as they are); /tmp, /run and /var/tmp are
# guest tmpfs; the working directory (--workdir, default $PWD) is shared read-write at the same
# path and is CMD's cwd.
#
# Options: --workdir DIR  -e K=V (repeatable)  --mem MB (1024)  --cpus N (2)  --timeout S (600)
#          --verbose (the whole serial console)
# Env:     FOXBOX_VM_CACHE (/var/tmp/foxbox-vm)  FOXBOX_VM_KERNEL_PKG (linux-image-amd64's dep)
#          FOXBOX_VM_ACCEL=auto|kvm|tcg (auto: kvm only when it can boot a stock kernel)
# Exit:    CMD's status; 124 the VM timed out; 125 the VM did not boot or run CMD.
#
# Needs: qemu-system-x86 (qemu-system-x86_64), busybox-static, python3, apt-get, dpkg.
set -uo pipefail
CACHE="${FOXBOX_VM_CACHE:-/var/tmp/foxbox-vm}"
# No overlay: the guest's stores are on tmpfs, which before Linux 6.6 has no user.* xattrs,
# so a box's overlay (userxattr, in its user namespace) cannot mount there; without the
# module foxbox falls back to copying the image, as on any host without overlayfs.
MODULES="9p 9pnet_virtio virtio_pci"
# Bumped whenever the guest's init changes, so a cached initramfs is rebuilt.
INIT_VERSION=2

die() { echo "v2vm: $*" >&2; exit 125; }

need() { for c in "$@"; do command -v "$c" >/dev/null || die "missing $c (apt-get install qemu-system-x86 busybox-static)"; done; }

prepare() {
  need apt-get apt-cache dpkg python3 qemu-system-x86_64
  local busybox; busybox=$(command -v busybox) || die "missing busybox (apt-get install busybox-static)"
  ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: the initramfs needs busybox-static"
  mkdir -p "$CACHE"
  if [ ! -s "$CACHE/vmlinux" ] || [ ! -s "$CACHE/kver" ]; then
    local pkg="${FOXBOX_VM_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}"
    [ -n "$pkg" ] || die "cannot tell which kernel package linux-image-amd64 depends on (apt-get update?)"
    echo "v2vm: fetching $pkg with apt-get download (nothing is installed)" >&2
    rm -rf "$CACHE/dl" "$CACHE/kroot"; mkdir -p "$CACHE/dl"
    (cd "$CACHE/dl" && apt-get download "$pkg" 2>&1 >/dev/null | grep -v 'unsandboxed' >&2; exit "${PIPESTATUS[0]}") || die "apt-get download $pkg failed"
    dpkg -x "$CACHE"/dl/*.deb "$CACHE/kroot" || die "dpkg -x failed"
    rm -rf "$CACHE/dl"
    local vz; vz=$(ls "$CACHE"/kroot/boot/vmlinuz-* 2>/dev/null | head -1)
    [ -n "$vz" ] || die "no vmlinuz in $pkg"
    # An uncompressed ELF vmlinux boots through PVH directly: under software emulation the
    # kernel's own decompressor costs seconds.
    python3 - "$vz" "$CACHE/vmlinux.tmp" <<'EOF' || die "cannot extract vmlinux from $vz"
import sys, lzma, zlib
data = open(sys.argv[1], 'rb').read()
for magic, dec in ((b'\xfd7zXZ\x00', lambda b: lzma.LZMADecompressor().decompress(b)),
                   (b'\x1f\x8b\x08\x00', lambda b: zlib.decompressobj(31).decompress(b))):
    at = data.find(magic)
    while at >= 0:
        try:
            out = dec(data[at:])
        except Exception:
            out = b''
        if out[:4] == b'\x7fELF':
            open(sys.argv[2], 'wb').write(out)
            sys.exit(0)
        at = data.find(magic, at + 1)
sys.exit(1)
EOF
    mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
    basename "$vz" | sed 's/^vmlinuz-//' > "$CACHE/kver"
  fi
  local kver; kver=$(cat "$CACHE/kver")
  local ir="$CACHE/ir"; rm -rf "$ir"
  mkdir -p "$ir"/{bin,proc,sys,dev,host,payload,mods}
  cp "$busybox" "$ir/bin/busybox"
  # Modules the guest needs, dependencies first, decompressed; resolved from each module's
  # own `depends=` (no kmod needed on the host).
  python3 - "$CACHE/kroot/lib/modules/$kver" "$ir/mods" $MODULES <<'EOF' || die "cannot collect kernel modules"
import lzma, os, sys
root, out, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
def norm(n): return n.replace('-', '_')
paths = {}
for d, _, fs in os.walk(root):
    for f in fs:
        for ext in ('.ko', '.ko.xz'):
            if f.endswith(ext):
                paths[norm(f[:-len(ext)])] = os.path.join(d, f)
builtin = set()
try:
    for l in open(os.path.join(root, 'modules.builtin')):
        builtin.add(norm(os.path.basename(l.strip()).rsplit('.ko', 1)[0]))
except OSError:
    pass
def load(n):
    p = paths[n]
    data = open(p, 'rb').read()
    return lzma.decompress(data) if p.endswith('.xz') else data
order = []
def visit(n):
    n = norm(n)
    if n in order or n in builtin:
        return
    if n not in paths:
        sys.exit('no module ' + n)
    data = load(n)
    at = data.find(b'\0depends=')
    deps = data[at + 9:data.index(b'\0', at + 1)].decode() if at >= 0 else ''
    for dep in filter(None, deps.split(',')):
        visit(dep)
    open(os.path.join(out, n + '.ko'), 'wb').write(data)
    order.append(n)
for w in wanted:
    visit(w)
open(os.path.join(out, 'order'), 'w').write(''.join(n + '.ko\n' for n in order))
EOF
  cat > "$ir/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || echo "v2vm-guest: cannot mount cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "v2vm-guest: cannot enable $c"
done
for m in $(cat /mods/order); do insmod /mods/$m 2>/dev/null; done
. /payload/env
O=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $O,ro,cache=loose hostroot /host || { echo "v2vm-guest: cannot mount the host root"; echo FOXVM-RC=125; poweroff -f; }
mount --move /proc /host/proc; mount --move /sys /host/sys; mount --move /dev /host/dev
# The caller's directory (a checkout, with its build) stays visible even when it lives under
# one of the directories the guest gives a tmpfs of its own.
mkdir -p /keep && mount --bind "/host$V2VM_KEEP" /keep
for d in /tmp /run /var/tmp; do [ -d /host$d ] && mount -t tmpfs -o mode=1777 tmpfs /host$d; done
mkdir -p "/host$V2VM_KEEP" 2>/dev/null && mount --move /keep "/host$V2VM_KEEP"
mkdir -p "/host$V2VM_WORKDIR" 2>/dev/null
mount -t 9p -o $O,cache=mmap work "/host$V2VM_WORKDIR" || echo "v2vm-guest: cannot mount the work dir"
mkdir -p /host/run/v2vm && cp /bin/busybox /payload/run.sh /host/run/v2vm/
cat > /host/run/v2vm/stage2 <<'EOS'
B=/run/v2vm/busybox
echo FOXVM-START
$B sh /run/v2vm/run.sh
rc=$?
$B sync
echo "FOXVM-RC=$rc"
$B poweroff -f
EOS
# switch_root, not chroot: a chrooted process may not unshare(CLONE_NEWUSER).
exec switch_root /host /run/v2vm/busybox sh /run/v2vm/stage2
EOF
  chmod +x "$ir/init"
  (cd "$ir" && find . | newc) > "$CACHE/base.cpio" || die "cpio failed"
  echo "$MODULES $INIT_VERSION" > "$CACHE/modules"
  echo "v2vm: ready: kernel $kver, modules $(tr '\n' ' ' < "$ir/mods/order")" >&2
}

# An initramfs archive of the paths on stdin (cpio(1), or busybox's when it is not installed).
newc() {
  if command -v cpio >/dev/null; then cpio -o -H newc 2>/dev/null; else busybox cpio -o -H newc 2>/dev/null; fi
}

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

run() {
  local workdir="$PWD" mem=1024 cpus=2 timeout=600 verbose=0 envs=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --workdir) workdir=$(readlink -f "$2") || die "no dir $2"; shift 2 ;;
      -e) envs+=("$2"); shift 2 ;;
      --mem) mem=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      --verbose) verbose=1; shift ;;
      --) shift; break ;;
      -*) die "unknown option $1" ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || die "no command"
  [ -d "$workdir" ] || die "no dir $workdir"
  # Rebuilt when missing or made with another module list.
  { [ -s "$CACHE/base.cpio" ] && [ -s "$CACHE/vmlinux" ] && [ "$(cat "$CACHE/modules" 2>/dev/null)" = "$MODULES $INIT_VERSION" ]; } || prepare
  local t; t=$(mktemp -d "${TMPDIR:-/tmp}/foxbox-v2vm.XXXXXX") || die "mktemp"
  trap 'rm -rf "$t"' RETURN
  mkdir -p "$t/p/payload"
  echo "V2VM_WORKDIR=$(q "$workdir")" > "$t/p/payload/env"
  echo "V2VM_KEEP=$(q "$PWD")" >> "$t/p/payload/env"
  {
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb"
    for e in "${envs[@]}"; do echo "export $(q "$e")"; done
    echo "cd $(q "$workdir") || exit 127"
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(q "$a")"; done
    echo
  } > "$t/p/payload/run.sh"
  (cd "$t/p" && find . | newc) > "$t/payload.cpio" || die "cpio failed"
  cat "$CACHE/base.cpio" "$t/payload.cpio" > "$t/initrd"

  local accel="${FOXBOX_VM_ACCEL:-auto}"
  if [ "$accel" = auto ]; then
    # kvm_pvm (this kind of cloud VM) hangs stock guest kernels: emulate there.
    if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then accel=kvm; else accel=tcg; fi
  fi
  local qa
  if [ "$accel" = kvm ]; then qa=(-enable-kvm -cpu host); else qa=(-accel tcg,thread=multi -cpu max); fi
  local bios=(); [ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
  local cmdline="console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
  cmdline+=" cryptomgr.notests mitigations=off nokaslr no_timer_check tsc=reliable i8042.noaux i8042.nopnp"
  [ $verbose = 1 ] || cmdline+=" quiet loglevel=1"
  local t0; t0=$(date +%s.%N)
  timeout --foreground -k 5 "$timeout" qemu-system-x86_64 "${qa[@]}" -M pc "${bios[@]}" -m "$mem" -smp "$cpus" \
    -nodefaults -nographic -serial mon:stdio -no-reboot -nic none \
    -kernel "$CACHE/vmlinux" -initrd "$t/initrd" -append "$cmdline" \
    -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
    -fsdev local,id=w,path="$workdir",security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=w,mount_tag=work \
    </dev/null > "$t/console" 2> "$t/qemu.err"
  local qrc=$?
  local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  tr -d '\r' < "$t/console" > "$t/console.txt"
  if [ $verbose = 1 ]; then cat "$t/console.txt"; cat "$t/qemu.err" >&2
  else awk '/^FOXVM-START$/{on=1; next} /^FOXVM-RC=[0-9]+$/{on=0} on' "$t/console.txt"; fi
  local rc; rc=$(grep -a -E '^FOXVM-RC=[0-9]+$' "$t/console.txt" | tail -1 | cut -d= -f2)
  echo "v2vm: accel=$accel ${secs}s rc=${rc:-none}" >&2
  [ -n "$rc" ] && return "$rc"
  if [ $qrc = 124 ]; then echo "v2vm: timed out after ${timeout}s" >&2; tail -20 "$t/console.txt" >&2; return 124; fi
  echo "v2vm: the VM failed (qemu exit $qrc)" >&2; tail -30 "$t/console.txt" >&2; cat "$t/qemu.err" >&2
  return 125
}

case "${1:-}" in
  prepare) rm -f "$CACHE/base.cpio"; prepare ;;
  ""|-h|--help) sed -n '2,22p' "$0"; exit 2 ;;
  *) run "$@"; exit $? ;;
esac
