#!/usr/bin/env bash
# Build a small busybox rootfs tarball from Debian's busybox-static, without internet.
# Usage: images/build-busybox.sh [OUT.tar.gz]   (default: images/busybox.tar.gz)
set -euo pipefail
out=${1:-"$(dirname "$0")/busybox.tar.gz"}
bb=${BUSYBOX:-/bin/busybox}
if ! "$bb" --list >/dev/null 2>&1 || ! file_is_static=$(ldd "$bb" 2>&1) || [[ $file_is_static != *"not a dynamic"* && $file_is_static != *"statically linked"* ]]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq busybox-static >/dev/null
  else
    echo "build-busybox: need a static busybox at $bb (apt-get install busybox-static)" >&2
    exit 1
  fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,home,var/tmp,var/log,run}
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"
cp "$bb" "$r/bin/busybox"
chmod 0755 "$r/bin/busybox"
# One link per applet at the path busybox itself names, relative so the tree works anywhere.
"$r/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  dir=$(dirname "$applet")
  mkdir -p "$r/$dir"
  case "$dir" in
    bin) target=busybox ;;
    sbin) target=../bin/busybox ;;
    usr/bin | usr/sbin) target=../../bin/busybox ;;
    *) target=/bin/busybox ;;
  esac
  ln -sf "$target" "$r/$applet"
done
ln -s /run "$r/var/run"
cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
fox:x:1000:1000:fox:/home/fox:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
wheel:x:10:fox
fox:x:1000:
nogroup:x:65534:
G
mkdir -p "$r/home/fox"
echo "busybox" >"$r/etc/foxbox-image"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
case "$out" in
  *.tar.gz | *.tgz) tar --numeric-owner --owner=0 --group=0 --sort=name -C "$r" -czf "$tmp" . ;;
  *) tar --numeric-owner --owner=0 --group=0 --sort=name -C "$r" -cf "$tmp" . ;;
esac
mv "$tmp" "$out"
echo "$out"
