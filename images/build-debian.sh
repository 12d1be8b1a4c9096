#!/usr/bin/env bash
# Build a Debian minbase rootfs tarball with debootstrap (about a minute; needs root and the
# Debian mirror apt already uses on this machine).
# Usage: images/build-debian.sh [OUT.tar.gz]   (default: images/debian.tar.gz)
# Env: SUITE (default: this host's release, else bookworm), MIRROR (default: apt's first URI).
set -euo pipefail
out=${1:-"$(dirname "$0")/debian.tar.gz"}
if [ "$(id -u)" != 0 ]; then
  echo "build-debian: debootstrap needs root" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  apt-get install -y -qq debootstrap >/dev/null
fi
suite=${SUITE:-$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null)}
suite=${suite:-bookworm}
mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
  # The mirror apt uses here: deb822 sources first, then the one-line format.
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "build-debian: no Debian mirror found in apt's sources; set MIRROR" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
# The build tree lives beside the output (a directory of the project's by default), not in /tmp.
work=$(mktemp -d "$(dirname "$out")/.debian-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}
r=$work/rootfs
# Downloaded packages and logs are not part of an image.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/*
echo "debian-$suite" >"$r/etc/foxbox-image"
tmp="$out.tmp.$$"
# Numeric owners: the image's ids, whatever this host's /etc/passwd says.
tar --numeric-owner --sort=name -C "$r" -czf "$tmp" .
mv "$tmp" "$out"
echo "$out"
