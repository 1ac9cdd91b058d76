#!/usr/bin/env bash
# Runs every test: each unit-test binary, then each end-to-end test, and the
# fuzz targets over their seed corpora when FUZZ_DIR is set. Prints one line
# per test file and a closing "N passed, N failed" line; exits non-zero when
# any failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
: "${TIDINGS_BIN:=$root/tidings}"
: "${UNIT_DIR:=$root/build/tests}"
export TIDINGS_BIN
export PY=/usr/bin/python3
pass=0; fail=0; failed=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/tidings-tests.XXXXXX")

run() { # name, command...
    local name=$1; shift
    local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-40s %3ss\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL %-40s %3ss\n' "$name" $((SECONDS - t0))
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

for t in "$UNIT_DIR"/test_*; do
    [ -x "$t" ] || continue
    run "unit/$(basename "$t")" "$t"
done

for t in "$here"/e2e/test_*; do
    [ -x "$t" ] || continue
    if [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]]; then continue; fi
    run "e2e/$(basename "$t")" "$t"
done

if [ -n "${FUZZ_DIR:-}" ] && [ -d "$FUZZ_DIR" ]; then
    for f in "$FUZZ_DIR"/fuzz_*; do
        [ -x "$f" ] || continue
        n=$(basename "$f")
        corpus="$root/fuzz/corpus/${n#fuzz_}"
        mkdir -p "$logdir/corpus-$n"
        # A short bounded run from the seeds: catches crashes the seeds
        # or their near mutations reach, in a few seconds.
        run "fuzz/$n" "$f" -max_total_time=5 -max_len=65536 "$logdir/corpus-$n" "$corpus"
    done
fi

[ "$fail" -eq 0 ] && rm -rf "$logdir"
echo
[ "$fail" -gt 0 ] && printf 'failed: %s (logs in %s)\n' "${failed[*]}" "$logdir"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
