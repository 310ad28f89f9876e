#!/usr/bin/env bash
# The long run of tests/no_panic.rs, by hand: CASES inputs per target
# (default 250000; four targets, a million inputs in all) in release
# mode. Prints, per target, the inputs tried, how many were accepted and
# the time; exits non-zero at the first panic, with the input that caused
# it.
#
#   bash bench/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-250000}"
start=$(date +%s)
OSCI_FUZZ_CASES="$cases" cargo test --release --quiet --test no_panic -- --nocapture --test-threads=2 2>&1 |
    grep -E "inputs|panicked|failed|minimal failing input" || true
status=${PIPESTATUS[0]}
echo "total: $((cases * 4)) inputs in $(( $(date +%s) - start ))s, exit $status"
exit "$status"
