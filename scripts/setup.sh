#!/usr/bin/env bash
# Install what foxbox's tests and demo need on a fresh Debian machine (run as root; a no-op for
# packages already present). Not as root it only reports what is missing.
set -euo pipefail
pkgs=(busybox-static uidmap slirp4netns passt bubblewrap crun runc podman catatonit containerd skopeo docker-registry
  golang-github-containers-common debootstrap tmux util-linux iproute2 hyperfine qemu-system-x86
  openssl libseccomp-dev python3-jsonschema python3-junitparser)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages (install as root): ${missing[*]}" >&2
  else
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if [ "$(id -u)" = 0 ] && [ -e /dev/net/tun ]; then
  # Distributions ship it 0666; this machine has 0600, which keeps rootless pasta/slirp4netns out.
  chmod 0666 /dev/net/tun
fi
# The SARIF and JUnit tests read foxbox's output with Python's jsonschema and junitparser. The
# Debian packages serve /usr/bin/python3; a python3 found first on PATH (pyenv's, say) gets them
# from PyPI.
if ! python3 -c 'import jsonschema, junitparser' 2>/dev/null; then
  echo "setup: installing jsonschema and junitparser for $(command -v python3)" >&2
  python3 -m pip install --quiet --disable-pip-version-check jsonschema junitparser
fi
# The suite's short fuzz run (scripts/fuzz.sh) builds the targets with cargo-fuzz.
if ! command -v cargo-fuzz >/dev/null && [ -n "${FOXBOX_FUZZ_SECS:-15}" ] && [ "${FOXBOX_FUZZ_SECS:-15}" != 0 ]; then
  echo "setup: installing cargo-fuzz" >&2
  cargo install --quiet --locked cargo-fuzz
fi
