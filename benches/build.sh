#!/usr/bin/env bash
# Build benchmark, one run, peers side by side: the same recipe as a Foxfile.toml and as a
# Containerfile over the Debian image (copy a ~50 MB context of 5000 files, then three RUN
# steps that create, modify and delete files), built by `foxbox build` (both front ends) and by
# `podman build`, medians of RUNS:
#   cold:   nothing cached (foxbox: `image prune` of its build cache; podman: --no-cache);
#   no-op:  everything cached;
#   last:   a one-line change in the last step: only that step runs (counted and printed).
# Usage: benches/build.sh [WORKDIR]   env: RUNS (3), DEBIAN (a Debian rootfs .tar.gz; default
# $FOXBOX_TEST_TMP/debian.tar.gz, as images/build-debian.sh makes it), FOX (a foxbox binary;
# default: a release build), KEEP=1 keeps WORKDIR. As root. podman runs with its own storage
# under WORKDIR (overlay, else vfs) and `--isolation chroot` (this VM refuses crun its
# rlimits, so podman cannot run OCI containers here).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/foxbox-bench-build.XXXXXX")}
runs=${RUNS:-3}
debian=${DEBIAN:-${FOXBOX_TEST_TMP:-/tmp/foxbox-tests}/debian.tar.gz}
mkdir -p "$work"
cleanup() { [ "${KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
[ -f "$debian" ] || { echo "no Debian rootfs at $debian (images/build-debian.sh makes one)" >&2; exit 1; }

if [ -z "${FOX:-}" ]; then
  echo "building foxbox (release)..." >&2
  cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  FOX=$here/target/$(rustc --print host-tuple)/release/foxbox
fi
export XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fox() { "$FOX" "$@"; }
driver=overlay
pm() { podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver "$driver" "$@"; }

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "importing Debian into foxbox and podman..." >&2
fox --log-level error image import --name debian-bench "$debian" >/dev/null
if ! pm import -q "$debian" debian-bench >/dev/null 2>&1; then
  driver=vfs
  rm -rf "$work/podman"
  pm import -q "$debian" debian-bench >/dev/null
fi

ctx=$work/ctx
echo "making the context (5000 files, ~50 MB)..." >&2
python3 - "$ctx/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(16)
for i in range(5000):
    d = os.path.join(root, f"d{i % 50}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(5_000, 15_000)))
PY

create='mkdir -p /gen && for i in $(seq 1 300); do echo $i > /gen/f$i; done'
modify='sed -i s/1/one/ /gen/f1 && echo changed >> /etc/issue && chmod 600 /gen/f3'
last() { echo "rm -rf /gen/f2* /usr/share/doc && echo last-$1 > /last"; }
write_recipes() {
  cat > "$ctx/Foxfile.toml" <<TOML
[build]
from = "debian-bench"
[[build.steps]]
copy = "data/"
dest = "/data/"
[[build.steps]]
run = '$create'
[[build.steps]]
run = '$modify'
[[build.steps]]
run = '$(last "$1")'
TOML
  cat > "$ctx/Containerfile" <<DOCKER
FROM debian-bench
COPY data/ /data/
RUN $create
RUN $modify
RUN $(last "$1")
DOCKER
}

secs() { echo "$(now) - $1" | bc; }
t_fox() {
  local s; s=$(now)
  fox build --progress plain -f "$ctx/$1" -t "bench:$2" "$ctx" >/dev/null 2>"$work/fox.err"
  secs "$s"
}
t_podman() {
  local s; s=$(now)
  pm build --isolation chroot "$@" -t bench:podman "$ctx" >"$work/podman.out" 2>&1
  secs "$s"
}
fresh() { fox image rm bench:toml bench:cf >/dev/null 2>&1 || true; fox image prune -q; }

declare -A cold noop lastch
write_recipes 0
for _ in $(seq 1 "$runs"); do
  fresh; cold[toml]+="$(t_fox Foxfile.toml toml) "
  fresh; cold[cf]+="$(t_fox Containerfile cf) "
  cold[podman]+="$(t_podman --no-cache) "
done
for _ in $(seq 1 "$runs"); do
  noop[toml]+="$(t_fox Foxfile.toml toml) "
  noop[cf]+="$(t_fox Containerfile cf) "
  noop[podman]+="$(t_podman) "
done
ran_fox=; ran_podman=
for i in $(seq 1 "$runs"); do
  write_recipes "$i"
  lastch[toml]+="$(t_fox Foxfile.toml toml) "
  ran_fox+="$(grep -c '] done in' "$work/fox.err" || true) "
  lastch[cf]+="$(t_fox Containerfile cf) "
  lastch[podman]+="$(t_podman) "
  ran_podman+="$(( $(grep -c '^STEP' "$work/podman.out" || true) - 1 - $(grep -c 'Using cache' "$work/podman.out" || true) )) "
done

med() { tr ' ' '\n' | grep -v '^$' | median; }
ms() { awk -v s="$1" 'BEGIN { printf "%8.0f", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%8.2f", a / b }'; }
echo
echo "build benchmark: $(date -u +%F), $(nproc) cpus, load $(cut -d' ' -f1 /proc/loadavg), podman $(podman --version | awk '{print $3}') ($driver, chroot), runs=$runs, medians in ms"
printf '%-24s %8s %8s %8s\n' "" cold no-op last
for k in toml cf podman; do
  case $k in toml) name="foxbox (Foxfile.toml)" ;; cf) name="foxbox (Containerfile)" ;; *) name="podman build" ;; esac
  printf '%-24s %s %s %s\n' "$name" "$(ms "$(echo "${cold[$k]}" | med)")" \
    "$(ms "$(echo "${noop[$k]}" | med)")" "$(ms "$(echo "${lastch[$k]}" | med)")"
done
for k in toml cf; do
  printf '%-24s %s %s %s\n' "foxbox/podman ($k)" \
    "$(ratio "$(echo "${cold[$k]}" | med)" "$(echo "${cold[podman]}" | med)")" \
    "$(ratio "$(echo "${noop[$k]}" | med)" "$(echo "${noop[podman]}" | med)")" \
    "$(ratio "$(echo "${lastch[$k]}" | med)" "$(echo "${lastch[podman]}" | med)")"
done
echo "steps run on a last-step change (of 4): foxbox $ran_fox; podman $ran_podman"
