#!/usr/bin/env bash
# The cgroup tests on a pure cgroup v2 kernel, in one throwaway VM (tests/vm/v2vm.sh), as root
# with FOXBOX_CGROUP_EXPECT=v2 (so they also assert memory, cpu and pids are on v2):
#   - tests/cgroup_limits.rs: the cgroup library (root and a delegated `foxtest`);
#   - tests/limits_run.rs: the same limits through the real binary (`foxbox run`/`up`/`stats`,
#     root and a delegated `foxtest`);
#   - tests/oci_runtime.rs, its cgroup tests (`foxbox oci`: resources in the v2 files, pause,
#     resume, update, delete; device rules as an eBPF device program, denying a node);
# all via tests/vm/limits-guest.sh. Builds the test binaries on the host; exits non-zero when
# any fails (124/125: the VM timed out / did not boot).
#
#   tests/vm/cgroup-v2.sh [lib|cli|oci|all (default)] [FILTER]
#
# The CLI and OCI tests run as root only by default (the VM is emulated: each box start costs
# seconds); FOXBOX_LIMITS_WHO= (empty) runs the unprivileged user's variants too.
#
# Run as root (the tests delegate cgroups to the unprivileged `foxtest`, created here when
# missing: the VM sees the host's /etc read-only). Needs qemu-system-x86 and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "cgroup-v2.sh: run as root" >&2; exit 1; }
which=${1:-all}
filter=${2:-}
id foxtest >/dev/null 2>&1 || useradd --create-home --shell /bin/sh foxtest
# tests/common's second user, made here for the same reason.
id foxtest-nosub >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh foxtest-nosub

# The executable of an integration test target, built on the host.
test_exe() {
  cargo test --test "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}

work=$(mktemp -d /var/tmp/foxbox-cgv2.XXXXXX)
trap 'rm -rf "$work"' EXIT
lib="" cli="" oci=""
if [ "$which" = all ] || [ "$which" = lib ]; then
  lib=$(test_exe cgroup_limits)
  [ -n "$lib" ] || { echo "cgroup-v2.sh: cannot build cgroup_limits" >&2; cargo test --test cgroup_limits --no-run; exit 1; }
fi
if [ "$which" = all ] || [ "$which" = cli ]; then
  cli=$(test_exe limits_run)
  [ -n "$cli" ] || { echo "cgroup-v2.sh: cannot build limits_run" >&2; cargo test --test limits_run --no-run; exit 1; }
fi
if [ "$which" = all ] || [ "$which" = oci ]; then
  oci=$(test_exe oci_runtime)
  [ -n "$oci" ] || { echo "cgroup-v2.sh: cannot build oci_runtime" >&2; cargo test --test oci_runtime --no-run; exit 1; }
fi
if [ -n "$cli" ] || [ -n "$oci" ]; then
  # The foxbox binary the CLI and OCI tests run (their CARGO_BIN_EXE_foxbox), and the test
  # image, which the guest cannot build (its /tmp is its own).
  cargo build --bin foxbox 2>/dev/null || cargo build --bin foxbox
  bash images/build-busybox.sh "$work/busybox.tar.gz" >/dev/null
fi
rc=0
tests/vm/v2vm.sh --workdir "$work" --timeout "${FOXBOX_VM_TIMEOUT:-600}" \
  -e FOXBOX_CGROUP_EXPECT=v2 -e RUST_BACKTRACE=1 -e FOXBOX_LIMITS_WHO="${FOXBOX_LIMITS_WHO-root}" -- \
  bash "$PWD/tests/vm/limits-guest.sh" "$lib" "$cli" "$oci" "$filter" || rc=$?
exit $rc
