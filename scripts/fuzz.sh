#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 600), one after another, niced (the
# machine may be shared), and print each target's final coverage (`cov:`, libFuzzer's count
# of covered edges) and speed (`exec/s`). For the long runs by hand; a crash stops that target,
# leaves its input in fuzz/artifacts/TARGET/ and is listed at the end (turn it into a
# regression test, as tests/fuzz_regressions.rs does).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (default: every target in fuzz/Cargo.toml)
# Needs: cargo-fuzz (`cargo install cargo-fuzz`); stable Rust works through RUSTC_BOOTSTRAP=1.
# The `unpack` target wants root (see fuzz/fuzz_targets/unpack.rs).
set -uo pipefail

secs=${1:-600}
shift || true
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/fuzz"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
RUSTC_BOOTSTRAP=1 nice cargo fuzz build -O || exit 1

failed=()
results=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="fuzz-$t.log"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== $t: ${secs}s (log: fuzz/$log)" >&2
  RUSTC_BOOTSTRAP=1 nice cargo fuzz run -O "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  eps=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$last")
  runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  results+=("$(printf '%-12s cov: %-6s exec/s: %-8s runs: %s' "$t" "${cov:-?}" "${eps:-?}" "${runs:-?}")")
  [ $rc -eq 0 ] || failed+=("$t (exit $rc; see fuzz/$log and fuzz/artifacts/$t/)")
done

printf '%s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
