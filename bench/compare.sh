#!/bin/sh
# Runs two tind-bench binaries in turn, ROUNDS times each (base, new, base,
# new, ...) on fresh databases with the same flags, and prints for every
# workload the median ops/s of each and their ratio (new / base), so that a
# change is measured against its base in one run on the same machine state.
# Usage: compare.sh BASE_BIN NEW_BIN ROUNDS DBDIR [tind-bench flags...]
set -eu
[ $# -ge 4 ] || { echo "usage: compare.sh BASE_BIN NEW_BIN ROUNDS DBDIR [flags...]" >&2; exit 2; }
base=$1 new=$2 rounds=$3 dir=$4
shift 4
mkdir -p "$dir"
out="$dir/compare.$$"
: > "$out"
i=1
while [ "$i" -le "$rounds" ]; do
    for side in base new; do
        eval bin=\$$side
        rm -rf "$dir/db"
        "$bin" --db="$dir/db" "$@" > "$dir/run.txt" 2>&1 || { cat "$dir/run.txt" >&2; exit 1; }
        # "name [#k] [(n threads)]  N ops  T s  R ops/s ...": the name is
        # everything before the count, the rate the field before "ops/s".
        awk -v side="$side" '
            / ops\/s/ {
                name = ""; rate = ""
                for (k = 1; k <= NF; k++) {
                    if ($(k + 1) == "ops" && name == "") { name = $1; for (m = 2; m < k; m++) name = name "_" $m }
                    if ($(k + 1) == "ops/s") rate = $k
                }
                if (name != "" && rate != "") print side, name, rate
            }' "$dir/run.txt" >> "$out"
    done
    i=$((i + 1))
done
rm -rf "$dir/db"
awk -v rounds="$rounds" '
function median(side, name,    n, k, j, t, a) {
    n = cnt[side, name]
    for (k = 1; k <= n; k++) a[k] = val[side, name, k]
    for (k = 2; k <= n; k++) for (j = k; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    if (!(($2) in seen)) { seen[$2] = 1; order[++nn] = $2 }
    val[$1, $2, ++cnt[$1, $2]] = $3
}
END {
    printf "%-28s %14s %14s %8s   (median of %d runs each, alternating)\n", "workload", "base ops/s", "new ops/s", "new/base", rounds
    for (k = 1; k <= nn; k++) {
        w = order[k]
        if (!cnt["base", w] || !cnt["new", w]) continue
        b = median("base", w); n = median("new", w)
        printf "%-28s %14.0f %14.0f %8.3f\n", w, b, n, (b > 0 ? n / b : 0)
    }
}' "$out"
rm -f "$out" "$dir/run.txt"
