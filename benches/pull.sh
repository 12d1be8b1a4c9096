#!/usr/bin/env bash
# Pull time of a large local image: `foxbox pull` into a fresh image store (download, verify,
# unpack every layer, record the image) next to `skopeo copy docker://... oci:DIR` (download
# and verify only) and, when podman is installed, `podman pull` into a fresh store (which
# unpacks too), all from the same docker-registry on 127.0.0.1, N runs each.
#
#   benches/pull.sh [LAYERS=6] [MB_PER_LAYER=100] [RUNS=3]
#
# Needs docker-registry, skopeo, gzip, sha256sum (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
layers=${1:-6}
mb=${2:-100}
runs=${3:-3}
work=$(mktemp -d /tmp/foxbox-bench-pull.XXXXXX)
regpid=
cleanup() {
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q
fox=$PWD/target/$(rustc --print host-tuple)/release/foxbox

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/storage"
cat >"$work/config.yml" <<CFG
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
CFG
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

# An OCI layout with $layers gzip layers of ~$mb MB each, from the machine's own libraries
# (realistic compressibility; each layer different).
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
blob() { # file -> prints digest hex, moves file into blobs
  local h; h=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$oci/blobs/sha256/$h"
  echo "$h"
}
mapfile -t files < <(find /usr/lib /usr/bin /usr/share -type f -size +4k 2>/dev/null | sort)
ldescs=""
diffs=""
idx=0
for i in $(seq 1 "$layers"); do
  d=$work/layer$i
  mkdir -p "$d/data"
  # Round-robin over the file list so every layer gets different content.
  : >"$d/data/blob"
  while [ "$(stat -c %s "$d/data/blob")" -lt $((mb * 1024 * 1024)) ] && [ $idx -lt ${#files[@]} ]; do
    cat "${files[$idx]}" >>"$d/data/blob" 2>/dev/null || true
    idx=$((idx + 1))
  done
  truncate -s $((mb * 1024 * 1024)) "$d/data/blob"
  tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$work/l$i.tar" data
  diff=$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)
  gzip -1 -n "$work/l$i.tar"
  size=$(stat -c %s "$work/l$i.tar.gz")
  h=$(blob "$work/l$i.tar.gz")
  rm -rf "$d"
  ldescs+="${ldescs:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$h\",\"size\":$size}"
  diffs+="${diffs:+,}\"sha256:$diff\""
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" >"$work/config.json"
csize=$(stat -c %s "$work/config.json")
ch=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$ch" "$csize" "$ldescs" >"$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json")
mh=$(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"big"}}]}' \
  "$mh" "$msize" >"$oci/index.json"
total=$(du -sm "$oci/blobs" | cut -f1)
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$oci:big" "docker://127.0.0.1:$port/big:1"
rm -rf "$oci"
echo "image: $layers layers, ${total} MB compressed, ${mb} MB each uncompressed; $runs runs each"

now() { date +%s.%N; }
podman=
if command -v podman >/dev/null; then podman=podman; fi
pod() { # a podman of its own, in the work dir, that leaves nothing behind
  "$podman" --root "$work/pod/root" --runroot "$work/pod/run" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend none "$@"
}
fox_times=()
sk_times=()
pod_times=()
secs() { awk -v a="$1" -v b="$2" 'BEGIN {print b - a}'; }
for r in $(seq 1 "$runs"); do
  rm -rf "$work/fox" "$work/sk"
  sync
  t0=$(now)
  FOXBOX_ROOT=$work/fox "$fox" pull -q "127.0.0.1:$port/big:1" >/dev/null
  t1=$(now)
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/big:1" "oci:$work/sk:big"
  t2=$(now)
  fox_times+=("$(secs "$t0" "$t1")")
  sk_times+=("$(secs "$t1" "$t2")")
  line=$(printf 'run %d: foxbox pull %.2fs  skopeo copy %.2fs' "$r" "${fox_times[-1]}" "${sk_times[-1]}")
  if [ -n "$podman" ]; then
    [ -d "$work/pod" ] && { pod system reset -f >/dev/null 2>&1 || true; rm -rf "$work/pod"; }
    sync
    t3=$(now)
    pod pull -q --tls-verify=false "127.0.0.1:$port/big:1" >/dev/null
    t4=$(now)
    pod_times+=("$(secs "$t3" "$t4")")
    line+=$(printf '  podman pull %.2fs' "${pod_times[-1]}")
  fi
  echo "$line"
  rm -rf "$work/fox" "$work/sk"
done
[ -d "$work/pod" ] && { pod system reset -f >/dev/null 2>&1 || true; rm -rf "$work/pod"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
fm=$(median "${fox_times[@]}")
sm=$(median "${sk_times[@]}")
printf 'median: foxbox pull %.2fs (download + unpack), skopeo copy %.2fs (download only): ratio foxbox/skopeo = %s\n' \
  "$fm" "$sm" "$(ratio "$fm" "$sm")"
if [ -n "$podman" ]; then
  pm=$(median "${pod_times[@]}")
  printf 'median: podman pull %.2fs (download + unpack): ratio foxbox/podman = %s\n' "$pm" "$(ratio "$fm" "$pm")"
fi
