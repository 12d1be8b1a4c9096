#!/usr/bin/env bash
# Inside the cgroup v2 VM (started by tests/vm/cgroup-v2.sh; cwd: the shared work dir):
# run the cgroup library tests and the CLI limits tests, each when given, and fail if either
# fails.
#
#   limits-guest.sh LIB_TEST_EXE CLI_TEST_EXE [FILTER]     (an empty exe is skipped)
set -uo pipefail
lib=$1 cli=$2 filter=${3:-}
rc=0
if [ -n "$lib" ]; then
  echo "== cgroup_limits (library) on cgroup v2"
  "$lib" $filter || rc=1
fi
if [ -n "$cli" ]; then
  echo "== limits_run (foxbox run/up/stats) on cgroup v2"
  # tests/common's scratch dir, with the image built on the host (the guest's /tmp is empty).
  mkdir -p /tmp/foxbox-tests && chmod 1777 /tmp/foxbox-tests
  cp busybox.tar.gz /tmp/foxbox-tests/busybox.tar.gz
  "$cli" --test-threads=2 $filter || rc=1
fi
exit $rc
