#!/usr/bin/env bash
# make fuzz-smoke: run each fuzz target for FUZZ_SECONDS from its seed
# corpus and print one line per target. Any crash, leak, sanitizer report
# or timeout fails the run; the target's log (and the input that did it,
# in $FUZZ_BUILD/artifacts/) tell what happened.
#
#   tests/fuzz/smoke.sh TARGET...
set -uo pipefail

build=${FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-12}
status=0

mkdir -p "$build/smoke" "$build/artifacts"
for t in "$@"; do
    log=$build/smoke/$t.log
    # New inputs go to a scratch directory: the seeds in the tree stay the
    # hand-made ones.
    scratch=$build/smoke/corpus-$t
    rm -rf "$scratch"
    mkdir -p "$scratch"
    "$build/fuzz-$t" -max_total_time="$seconds" -timeout=30 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t-" \
        "$scratch" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    # The last status line ("#N DONE cov: C ft: F ... exec/s: E ...").
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    eps=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$last")
    echo "fuzz-smoke: target=$t runs=${runs:-?} cov=${cov:-?} ft=${ft:-?}" \
         "exec/s=${eps:-?} seconds=$seconds"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz-smoke: target=$t FAILED (exit $rc); from $log:"
        grep -vE '^minivmm: ' "$log" | tail -n 40
        status=1
    fi
done
exit $status
