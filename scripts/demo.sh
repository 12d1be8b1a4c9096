#!/usr/bin/env bash
# The demo, end to end: set up, build, make the busybox image, and run the demo box.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release
[ -f images/busybox.tar.gz ] || bash images/build-busybox.sh images/busybox.tar.gz
fox=./target/$(rustc --print host-tuple)/release/foxbox
"$fox" check specs/hello.toml
"$fox" up specs/hello.toml --rm
