#!/usr/bin/env bash
# The long run of tests/no_panic.rs, by hand: CASES inputs per target
# (default 200000; five targets, a million inputs in all), optimised but
# with overflow checks and debug assertions on, so that what would wrap
# silently in a release build is caught as the panic it is in a test.
# Prints, per target, the inputs tried, how many were accepted and
# the time; exits non-zero at the first panic, with the input that caused
# it.
#
#   bash bench/fuzz.sh [CASES]
set -uo pipefail
cd "$(dirname "$0")/.."
cases="${1:-200000}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$(date +%s)
OSCI_FUZZ_CASES="$cases" \
    CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
    cargo test --release --quiet --test no_panic -- --nocapture --test-threads=2 >"$log" 2>&1
status=$?
grep -E "inputs|panicked|minimal failing input|FAILED" "$log"
targets=$(grep -c "inputs (" "$log")
echo "total: $((cases * targets)) inputs in $(( $(date +%s) - start ))s, exit $status"
exit "$status"
