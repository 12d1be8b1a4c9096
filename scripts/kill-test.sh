#!/usr/bin/env bash
# The long version of tests/kill_random.rs: SIGKILL of run -d, run --rm, supervisors, rm -f,
# volume rm and image import at random moments, ROUNDS rounds per user (root and the
# unprivileged user when run as root), each followed by the checks that nothing leaked.
#   scripts/kill-test.sh [ROUNDS [SEED]]      (defaults: 300, random; the seed is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-300}
seed=${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "kill test: $rounds rounds per user, seed $seed (replay: $0 $rounds $seed)"
FOXBOX_KILL_ROUNDS=$rounds FOXBOX_KILL_SEED=$seed \
  cargo test --test kill_random -- --nocapture --test-threads=1
