#!/bin/sh
# Checks the library's layering from its sources: no file of a lower layer
# includes a header of a higher one (ranks as in layers.sh; include/tind.h,
# the public header with the status codes, is below every layer), and
# journal/ and lsm/ include nothing of each other.
# Usage: includes.sh FILE... (the library's .c and .h files, relative to the
# repository root). Prints each breach.
[ $# -gt 0 ] || { echo "includes: no files" >&2; exit 2; }
for f in "$@"; do
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r h; do
        echo "$f $h"
    done
done | awk '
function rank(f) {
    if (f == "tind.h" || f ~ /^include\//) return -1
    if (f ~ /^src\/util\// || f ~ /^src\/workers/) return 0
    if (f ~ /^journal\// || f ~ /^lsm\//) return 1
    if (f ~ /^compaction\//) return 2
    if (f ~ /^src\/tree\//) return 3
    return 4
}
function top(f) { sub(/\/.*/, "", f); return f }
{
    a = $1; h = $2; n++
    if (rank(h) > rank(a)) { print "includes: " a " includes " h ", a higher layer"; bad = 1 }
    else if (rank(a) == 1 && rank(h) == 1 && top(a) != top(h)) { print "includes: " a " includes " h; bad = 1 }
}
END {
    if (bad) exit 1
    print "includes: ok (" n " includes, none upward)"
}'
