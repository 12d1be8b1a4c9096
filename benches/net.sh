#!/usr/bin/env bash
# Throughput of a forwarded port: `foxbox run --network pasta|slirp4netns -p` beside podman's
# rootless port forward and plain host loopback, all in this run on this machine. A file of BENCH_MB MB is fetched with curl from a busybox httpd
# in the box through 127.0.0.1:PORT. Prints MB/s per setup and ratios against podman.
#
#   benches/net.sh            as root: runs the measurements as the unprivileged FOXUSER (rootless)
#   FOXUSER=foxtest BENCH_MB=300 ROUNDS=3 benches/net.sh
#
# The foxbox binary is the debug build: the bytes go through pasta or slirp4netns, never through
# foxbox itself, so its build profile does not matter here.
set -uo pipefail
FOXUSER=${FOXUSER:-foxtest}
BENCH_MB=${BENCH_MB:-300}
ROUNDS=${ROUNDS:-3}
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SELF")/.." && pwd)"

die() { echo "net.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ as the user (rootless)
user_main() {
  local exe=$1 tarball=$2
  W=$(mktemp -d /tmp/foxnetbench.XXXXXX)
  chmod 755 "$W"
  mkdir -p "$W/www"
  # Real bytes, not a sparse file: nothing on the way may shortcut zeros.
  head -c $((BENCH_MB * 1048576)) /dev/urandom >"$W/www/big"
  BYTES=$(stat -c %s "$W/www/big")
  PIDS=()
  trap cleanup EXIT
  port=$((24000 + RANDOM % 5000))

  declare -gA RESULT
  measure baseline host_loopback
  measure foxbox-pasta box pasta "$exe" "$tarball"
  measure foxbox-slirp4netns box slirp4netns "$exe" "$tarball"
  measure podman podman "$tarball"
  measure podman-slirp-hostfwd podman "$tarball" slirp4netns:port_handler=slirp4netns

  echo
  printf '%-22s %10s\n' setup "MB/s (best of $ROUNDS)"
  for k in baseline foxbox-pasta foxbox-slirp4netns podman podman-slirp-hostfwd; do
    printf '%-22s %10s\n' "$k" "${RESULT[$k]:-n/a}"
  done
  echo
  ratio foxbox-pasta podman
  ratio foxbox-slirp4netns podman
  ratio foxbox-slirp4netns podman-slirp-hostfwd
  ratio foxbox-pasta foxbox-slirp4netns
  ratio foxbox-pasta baseline
}

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${PODMAN_HOME:-}" ]; then
    pm rm -f foxnetbench >/dev/null 2>&1
    pm system reset -f >/dev/null 2>&1
  fi
  # The box store holds files of the user's subordinate ids: remove it from inside a namespace
  # that maps them.
  [ -d "$W/fox" ] && unshare --user --map-root-user --map-auto rm -rf "$W/fox" 2>/dev/null
  rm -rf "$W" ${PODMAN_RUN:+"$PODMAN_RUN"} 2>/dev/null
}

# best-of-ROUNDS MB/s of fetching big through 127.0.0.1:$1
fetch() {
  local p=$1 best=0 out size t mbps
  for _ in $(seq "$ROUNDS"); do
    out=$(curl -s -m 300 -o /dev/null -w '%{size_download} %{time_total}' "http://127.0.0.1:$p/big") || { echo 0; return; }
    read -r size t <<<"$out"
    [ "$size" = "$BYTES" ] || { echo "short read: $size of $BYTES bytes" >&2; echo 0; return; }
    mbps=$(awk -v b="$size" -v t="$t" 'BEGIN{printf "%.0f", b/1048576/t}')
    [ "$mbps" -gt "$best" ] && best=$mbps
  done
  echo "$best"
}

wait_http() {
  for _ in $(seq 200); do
    curl -s -m 1 -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  return 1
}

measure() {
  local name=$1 kind=$2
  port=$((port + 1))
  case "$kind" in
    host_loopback)
      busybox httpd -f -p "127.0.0.1:$port" -h "$W/www" & PIDS+=($!)
      wait_http "$port" || { echo "$name: httpd did not come up"; return; }
      RESULT[$name]=$(fetch "$port")
      kill "${PIDS[-1]}"
      ;;
    box)
      local mode=$3 exe=$4 tarball=$5 cli
      # A short store root: slirp4netns's API socket lives under it (at most 107 bytes).
      FOXBOX_ROOT="$W/fox" "$exe" run --rm --name "foxnetbench-$mode" --network "$mode" \
        -p "127.0.0.1:$port:80" -v "$W/www:/www:ro" "$tarball" httpd -f -p 80 -h /www \
        >"$W/$mode.out" 2>&1 &
      cli=$!
      PIDS+=($cli)
      if ! wait_http "$port"; then
        echo "$name: forward did not answer: $(cat "$W/$mode.out")"
        return
      fi
      RESULT[$name]=$(fetch "$port")
      FOXBOX_ROOT="$W/fox" "$exe" kill "foxnetbench-$mode" >/dev/null
      wait "$cli" 2>/dev/null
      ;;
    podman)
      local tarball=$3 network=${4:-}
      PODMAN_HOME="$W/podman"
      mkdir -p "$PODMAN_HOME/home"
      # Short: podman puts slirp4netns's API socket (at most 107 bytes) under it.
      [ -n "${PODMAN_RUN:-}" ] || PODMAN_RUN=$(mktemp -d /tmp/fpm.XXXXXX)
      if ! command -v podman >/dev/null; then echo "podman: not installed"; return; fi
      local err
      if ! pm image exists foxnetbench-busybox && ! err=$(pm import "$tarball" foxnetbench-busybox 2>&1); then
        echo "podman: cannot import the busybox image: $err"; return
      fi
      # runc: Debian's crun 1.8 refuses this host's hybrid cgroup layout; cgroupfs: no systemd
      # user session here. `podman`: podman 4.3's rootless default, slirp4netns with rootlessport
      # (a proxy that connects from inside the box's namespace) forwarding the port;
      # `podman-slirp-hostfwd`: slirp4netns forwarding it itself, as foxbox does.
      if ! err=$(pm run -d --name foxnetbench ${network:+--network "$network"} -p "127.0.0.1:$port:80" -v "$W/www:/www:ro" \
        foxnetbench-busybox httpd -f -p 80 -h /www 2>&1); then
        echo "podman: rootless podman cannot run a box here: $err"; return
      fi
      wait_http "$port" || { echo "podman: forward did not answer"; return; }
      RESULT[$name]=$(fetch "$port")
      echo "$name: $(podman --version), network ${network:-default ($(pm inspect -f '{{.HostConfig.NetworkMode}}' foxnetbench 2>/dev/null), rootlessport)}"
      pm rm -f foxnetbench >/dev/null 2>&1
      ;;
  esac
  echo "$name: ${RESULT[$name]:-n/a} MB/s"
}

pm() {
  HOME="$PODMAN_HOME/home" XDG_RUNTIME_DIR="$PODMAN_RUN" \
    podman --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"
}

ratio() {
  local a=${RESULT[$1]:-} b=${RESULT[$2]:-}
  if [ -n "$a" ] && [ -n "$b" ] && [ "$b" != 0 ]; then
    awk -v a="$a" -v b="$b" -v n1="$1" -v n2="$2" 'BEGIN{printf "%-20s / %-20s = %.2f\n", n1, n2, a/b}'
  else
    printf '%-20s / %-20s = n/a\n' "$1" "$2"
  fi
}

# ------------------------------------------------------------------ entry
if [ "${1:-}" = __user ]; then
  user_main "$2" "$3"
  exit $?
fi

command -v curl >/dev/null || die "needs curl"
command -v busybox >/dev/null || die "needs busybox (busybox-static)"
if [ "$(id -u)" = 0 ]; then
  bash "$REPO/scripts/setup.sh" || die "setup failed"
  id "$FOXUSER" >/dev/null 2>&1 || die "no user $FOXUSER (the test harness creates foxtest)"
fi
cd "$REPO" || exit 1
cargo build --quiet --bin foxbox || die "cannot build foxbox"
exe="$REPO/target/$(rustc --print host-tuple)/debug/foxbox"
share=$(mktemp -d /tmp/foxnetbench-bin.XXXXXX)
chmod 755 "$share"
cp "$exe" "$share/foxbox"
bash images/build-busybox.sh "$share/busybox.tar.gz" >/dev/null || die "cannot build the busybox image"
chmod 644 "$share/busybox.tar.gz"
trap 'rm -rf "$share"' EXIT
echo "net.sh: ${BENCH_MB} MB per fetch, best of ${ROUNDS}; pasta $(dpkg-query -W -f='${Version}' passt 2>/dev/null), $(slirp4netns --version | head -1)"
if [ "$(id -u)" = 0 ]; then
  echo "net.sh: measuring rootless, as $FOXUSER"
  setpriv --reuid="$(id -u "$FOXUSER")" --regid="$(id -g "$FOXUSER")" --init-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 BENCH_MB="$BENCH_MB" ROUNDS="$ROUNDS" \
    bash "$SELF" __user "$share/foxbox" "$share/busybox.tar.gz"
else
  bash "$SELF" __user "$share/foxbox" "$share/busybox.tar.gz"
fi
