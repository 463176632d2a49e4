#!/usr/bin/env bash
# Runs each fuzz target for a bounded time: first every input of its committed corpus
# (Tests/Fuzz/corpus/<target>/, read only), then new inputs, kept in the build folder.
# Prints one line per target with the inputs executed; fails on the first crash, leak or hang,
# leaving the input under <build>/artifacts/ for a regression test.
#   run.sh BUILD_DIR SECONDS TARGET...
set -euo pipefail
build=$1 seconds=$2
shift 2
status=0
for target in "$@"; do
    work="$build/corpus/$target" log="$build/logs/$target.log"
    mkdir -p "$work" "$build/artifacts" "$build/logs" "Tests/Fuzz/corpus/$target"
    # -timeout: a deadlock (a callback re-entering a held lock) shows as a hang.
    if "$build/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
        "$work" "Tests/Fuzz/corpus/$target" >"$log" 2>&1; then
        executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        corpus=$(find "$work" "Tests/Fuzz/corpus/$target" -type f | wc -l)
        echo "fuzz $target: $executed inputs executed in ${seconds}s (corpus $corpus)"
    else
        echo "fuzz $target: FAILED, see $log" >&2
        grep -E -A40 '^(==[0-9]+==ERROR|SUMMARY|ALARM|.*deadly signal)' "$log" | head -60 >&2 || tail -40 "$log" >&2
        status=1
    fi
done
exit $status
