#!/bin/sh
# Runs the test binary given as $1 with the rest of the arguments, keeps its
# whole output in $TIND_TEST_LOG, and when it fails prints the failed tests
# and their assertions again at the end, where a log's tail shows them.
bin=$1
shift
log=${TIND_TEST_LOG:-build/test.log}
rcfile=$log.rc
{ "$bin" "$@" 2>&1; echo $? > "$rcfile"; } | tee "$log"
rc=$(cat "$rcfile")
rm -f "$rcfile"
if [ "$rc" -ne 0 ]; then
    echo "== failed tests (the whole output is in $log)"
    grep -E -A6 'Assertion Failed|Unexpected signal|Test timed out' "$log" | grep -E '^\[----\]|^--'
    grep -E '^\[FAIL\]' "$log"
fi
exit "$rc"
