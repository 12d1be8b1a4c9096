#!/usr/bin/env bash
# Build benchmark, one run, foxbox and podman side by side over the same Debian base:
# copy a ~50 MB context of ~5,000 files, then three `run` steps that create, modify and delete
# files; the same recipe as a Foxfile.toml (foxbox) and as a Containerfile (podman build).
#   cold:    every step runs (`--no-cache` for both; the base image is stored beforehand);
#   no-op:   everything cached;
#   last:    one line changed in the last step: only that step runs (the output is checked).
# Medians of RUNS (default 3) per case, runs alternating which tool goes first; ratios are
# foxbox / podman.
#
# Usage: benches/build.sh [WORKDIR]   env: RUNS (3), FILES (5000), KEEP=1 keeps WORKDIR,
#        DEBIAN_TARBALL=PATH (else images/build-debian.sh makes one: root, about a minute)
# Run as root (podman and foxbox each with a store of their own under WORKDIR).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/foxbox-bench-build.XXXXXX")}
runs=${RUNS:-3}
files=${FILES:-5000}
mkdir -p "$work"
proot=$work/podman-root
prun=$work/podman-run
cleanup() {
  podman --root "$proot" --runroot "$prun" rmi -a -f >/dev/null 2>&1 || true
  [ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
for t in podman python3; do
  command -v "$t" >/dev/null || { echo "build.sh: $t is not installed" >&2; exit 1; }
done

echo "building foxbox (release)..." >&2
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
fox=$here/target/$(rustc --print host-tuple)/release/foxbox
export FOXBOX_ROOT=$work/foxbox-root
export XDG_RUNTIME_DIR=$work/xdg-run
mkdir -p "$XDG_RUNTIME_DIR"
# crun 1.8 refuses this kind of host's hybrid cgroup layout; runc is podman's other runtime.
# The ulimits: podman asks for more than this machine lets even root raise (runc then fails).
pod() { podman --runtime runc --root "$proot" --runroot "$prun" --storage-driver overlay "$@"; }

base=${DEBIAN_TARBALL:-$work/debian.tar.gz}
[ -f "$base" ] || bash "$here/images/build-debian.sh" "$base" >&2
"$fox" image import --name bench-debian "$base" >/dev/null
pod import -q "$base" localhost/bench-debian >/dev/null

ctx=$work/ctx
if [ ! -d "$ctx/data" ]; then
  echo "making $files files (~50 MB) in the context..." >&2
  python3 - "$ctx/data" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
per = 50_000_000 // n
for i in range(n):
    d = os.path.join(root, f"d{i % 50}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rnd.randbytes(per))
PY
fi

# The three steps; the last one's text takes a marker so that "last" changes one line.
step1='mkdir -p /opt/gen && for i in $(seq 1 500); do echo $i > /opt/gen/$i; done'
step2='for f in /app/data/d1/*; do echo changed >> $f; done && chmod -R go-w /opt/gen'
step3() { echo "rm -rf /app/data/d2 /usr/share/doc && echo $1 > /opt/last"; }

recipes() { # $1: the marker of the last step
  cat >"$ctx/Foxfile.toml" <<EOF
[build]
from = "bench-debian"
cmd = ["cat", "/opt/last"]

[[build.steps]]
copy = ["data"]
dest = "/app/data/"

[[build.steps]]
run = '$step1'

[[build.steps]]
run = '$step2'

[[build.steps]]
run = '$(step3 "$1")'
EOF
  cat >"$ctx/Containerfile" <<EOF
FROM localhost/bench-debian
COPY data /app/data/
RUN $step1
RUN $step2
RUN $(step3 "$1")
CMD ["cat", "/opt/last"]
EOF
  printf 'Foxfile.toml\nContainerfile\n' >"$ctx/.foxignore"
  cp "$ctx/.foxignore" "$ctx/.containerignore"
}

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
fox_build() { "$fox" build -f "$ctx/Foxfile.toml" -t bench-app:1 --progress plain "$@" "$ctx" >"$work/fox.log" 2>&1; }
pod_build() { pod build -q --layers --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 -f "$ctx/Containerfile" -t bench-app:1 "$@" "$ctx" >/dev/null; }
timed() { local t0; t0=$(now); "$@"; echo "$(now) - $t0" | bc -l; }

declare -A times
record() { times[$1]+="$2 "; }

marker=0
recipes "m$marker"
echo "warming both (untimed)..." >&2
fox_build
pod_build

for i in $(seq 1 "$runs"); do
  order=(fox pod)
  [ $((i % 2)) = 0 ] && order=(pod fox)
  for tool in "${order[@]}"; do
    record "cold-$tool" "$(timed "${tool}_build" --no-cache)"
  done
  for tool in "${order[@]}"; do
    record "noop-$tool" "$(timed "${tool}_build")"
  done
  marker=$((marker + 1))
  recipes "m$marker"
  for tool in "${order[@]}"; do
    record "last-$tool" "$(timed "${tool}_build")"
  done
  # Only the changed step ran, and what it made is what a box of the image prints.
  cached=$(grep -c '] CACHED$' "$work/fox.log" || true)
  [ "$cached" = 3 ] || { echo "foxbox ran more than the last step:" >&2; cat "$work/fox.log" >&2; exit 1; }
  got=$("$fox" run --rm bench-app:1)
  [ "$got" = "m$marker" ] || { echo "foxbox image prints '$got', not m$marker" >&2; exit 1; }
  got=$(pod run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 localhost/bench-app:1)
  [ "$got" = "m$marker" ] || { echo "podman image prints '$got', not m$marker" >&2; exit 1; }
done

printf '%-8s %12s %12s %8s\n' case "foxbox (s)" "podman (s)" ratio
for c in cold noop last; do
  f=$(tr ' ' '\n' <<<"${times[$c-fox]}" | grep . | median)
  p=$(tr ' ' '\n' <<<"${times[$c-pod]}" | grep . | median)
  printf '%-8s %12.3f %12.3f %8.3f\n' "$c" "$f" "$p" "$(echo "$f / $p" | bc -l)"
done
