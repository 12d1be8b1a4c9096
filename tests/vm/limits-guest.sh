#!/usr/bin/env bash
# Inside the cgroup v2 VM (started by tests/vm/cgroup-v2.sh; cwd: the shared work dir):
# run the cgroup library tests, the CLI limits tests and the OCI runtime's cgroup tests, each
# when given, and fail if any fails.
#
#   limits-guest.sh LIB_TEST_EXE CLI_TEST_EXE OCI_TEST_EXE [FILTER]   (an empty exe is skipped)
#
# Without FILTER the OCI runtime's test binary runs only its cgroup tests (OCI_TESTS).
set -uo pipefail
lib=$1 cli=$2 oci=$3 filter=${4:-}
OCI_TESTS="cgroups_resources_pause_resume_update_delete device_rules_deny_what_they_do_not_allow"
rc=0
if [ -n "$cli" ] || [ -n "$oci" ]; then
  # tests/common's scratch dir, with the image built on the host (the guest's /tmp is empty).
  mkdir -p /tmp/foxbox-tests && chmod 1777 /tmp/foxbox-tests
  cp busybox.tar.gz /tmp/foxbox-tests/busybox.tar.gz
fi
if [ -n "$lib" ]; then
  echo "== cgroup_limits (library) on cgroup v2"
  "$lib" $filter || rc=1
fi
if [ -n "$cli" ]; then
  echo "== limits_run (foxbox run/up/stats) on cgroup v2"
  "$cli" --test-threads=2 $filter || rc=1
fi
if [ -n "$oci" ]; then
  echo "== oci_runtime (cgroups, pause, update, eBPF device rules) on cgroup v2"
  "$oci" --test-threads=2 ${filter:-$OCI_TESTS} || rc=1
fi
exit $rc
