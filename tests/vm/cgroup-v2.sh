#!/usr/bin/env bash
# The cgroup tests (tests/cgroup_limits.rs) on a pure cgroup v2 kernel: builds the test binary
# on the host and runs it as root inside a throwaway VM (tests/vm/v2vm.sh) with
# FOXBOX_CGROUP_EXPECT=v2, so that it also asserts memory, cpu and pids are on v2. Exits with
# the test's status (124/125: the VM timed out / did not boot).
#
#   tests/vm/cgroup-v2.sh [SCENARIO-FILTER]
#
# Run as root (the tests delegate cgroups to the unprivileged `foxtest`, created here when
# missing: the VM sees the host's /etc read-only). Needs qemu-system-x86 and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "cgroup-v2.sh: run as root" >&2; exit 1; }
id foxtest >/dev/null 2>&1 || useradd --create-home --shell /bin/sh foxtest
exe=$(cargo test --test cgroup_limits --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cgroup_limits":
        print(m["executable"])')
[ -n "$exe" ] || { echo "cgroup-v2.sh: cannot build the test binary" >&2; cargo test --test cgroup_limits --no-run; exit 1; }
work=$(mktemp -d /var/tmp/foxbox-cgv2.XXXXXX)
trap 'rm -rf "$work"' EXIT
exec tests/vm/v2vm.sh --workdir "$work" --timeout "${FOXBOX_VM_TIMEOUT:-600}" \
  -e FOXBOX_CGROUP_EXPECT=v2 -e RUST_BACKTRACE=1 -- "$exe" "$@"
