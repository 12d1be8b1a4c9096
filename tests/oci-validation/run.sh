#!/usr/bin/env bash
# Run the OCI runtime conformance suite (opencontainers/runtime-tools, built by
# ../shared/testinfra/oci-validation/build.sh into a cache dir once) against foxbox as
# `foxbox-runc`, as root, and print a table: program, ok, not ok, verdict.
#
# Usage: tests/oci-validation/run.sh [FOXBOX_BINARY] [PROGRAM-GLOB]
# Env:   OCI_VALIDATION_INFRA  where build.sh lives (default: the first ../shared or
#                              ../../shared/testinfra/oci-validation above the repo)
#        OCI_VALIDATION_CACHE  the build dir (default: $FOXBOX_TEST_TMP/oci-validation)
#        OCI_VALIDATION_RUNTIME a different runtime to measure (e.g. /usr/sbin/runc)
# Exit:  0 when every program ran (failures are reported, not fatal); 2 when the suite is
#        missing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
infra=${OCI_VALIDATION_INFRA:-}
if [ -z "$infra" ]; then
  for d in "$repo/../shared" "$repo/../../shared"; do
    [ -x "$d/testinfra/oci-validation/build.sh" ] && infra=$(cd "$d/testinfra/oci-validation" && pwd) && break
  done
fi
if [ -z "$infra" ] || [ ! -f "$infra/build.sh" ]; then
  echo "oci-validation: no shared/testinfra/oci-validation found (set OCI_VALIDATION_INFRA)" >&2
  exit 2
fi
cache=${OCI_VALIDATION_CACHE:-${FOXBOX_TEST_TMP:-/tmp/foxbox-tests}/oci-validation}
bin=${1:-$repo/target/x86_64-unknown-linux-gnu/debug/foxbox}
glob=${2:-*}
if [ ! -x "$cache/runtimetest" ] || [ "$(find "$cache/validation" -name '*.t' 2>/dev/null | wc -l)" -lt 58 ]; then
  bash "$infra/build.sh" "$cache" >&2
fi
runtime=${OCI_VALIDATION_RUNTIME:-}
if [ -z "$runtime" ]; then
  mkdir -p "$cache/bin"
  ln -sf "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "$cache/bin/foxbox-runc"
  runtime=$cache/bin/foxbox-runc
fi
cd "$cache"
mkdir -p logs
pass=0; total=0
printf '%-44s %4s %7s  %s\n' program ok "not ok" verdict
for t in $(find validation -name '*.t' -path "validation/$glob" | sort); do
  name=${t#validation/}; name=${name%.t}
  log=logs/$(echo "$name" | tr / _).log
  # A relative cgroupsPath goes under the caller's own cgroup: where that is not the root of
  # the hierarchy (a harness's cgroup, like /process_api/... for memory here), the program would
  # make cgroups in a cgroup that is not ours. Skipped, with the reason.
  case $name in
    linux_cgroups_relative_*)
      ctrl=${name#linux_cgroups_relative_}; ctrl=${ctrl%%/*}
      case $ctrl in cpus) ctrl=cpu ;; network) ctrl=net_cls ;; esac
      own=$(awk -F: -v c="$ctrl" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
      if [ -n "$own" ] && [ "$own" != / ]; then
        total=$((total + 1))
        printf '%-44s %4s %7s  %s\n' "$name" - - "skip (the caller's $ctrl cgroup $own is not ours)"
        continue
      fi
      ;;
  esac
  before=$("$runtime" list -q 2>/dev/null || true)
  set +e
  timeout 120 env RUNTIME="$runtime" "$t" >"$log" 2>&1
  rc=$?
  set -e
  # A program that stops midway can leave its container (`start`'s last case leaves one
  # created, waiting at its gate, and never deletes it): remove those it made and whose
  # bundle it has removed already.
  for id in $("$runtime" list -q 2>/dev/null || true); do
    grep -qxF -- "$id" <<<"$before" && continue
    b=$("$runtime" state "$id" 2>/dev/null | sed -n 's/^ *"bundle": *"\(.*\)",*$/\1/p' || true)
    if [ -n "$b" ] && [ ! -e "$b" ]; then
      "$runtime" delete --force "$id" >/dev/null 2>&1 || true
    fi
  done
  ok=$(grep -c '^ok' "$log" || true)
  nok=$(grep -c '^not ok' "$log" || true)
  total=$((total + 1))
  # A program passes when it exits 0 with no `not ok`; one with no `ok` either (several print
  # only a plan, `1..0`, when all went well) also with no error diagnostic.
  if [ "$rc" = 0 ] && [ "$nok" = 0 ] && { [ "$ok" -gt 0 ] || ! grep -q '^ *"error":' "$log"; }; then
    verdict=pass; pass=$((pass + 1))
  elif [ "$rc" = 124 ]; then
    verdict=timeout
  else
    verdict="fail (exit $rc)"
  fi
  printf '%-44s %4s %7s  %s\n' "$name" "$ok" "$nok" "$verdict"
done
echo "passed $pass of $total programs (logs in $cache/logs)"
