#!/bin/sh
# Draws the charts of a multi-engine run (make bench-peers) from its own results
# files, with gnuplot:
#   OUT/<config>-ops.png              ops/s per workload, a bar per engine (log scale)
#   OUT/<config>-<workload>-time.png  ops/s over time during fillrandom and overwrite,
#                                     a line per engine (the --sample-ms samples)
# DB/results.index lists the results files ("<config> <engine> <path>", tab-separated,
# in run order); the data files gnuplot reads are written beside the PNGs.
#
#   bench/charts.sh DB OUT
#
# Without gnuplot it says so and exits 0: the tables are the run's result, the charts
# a view of them.
set -eu
db=${1:?usage: charts.sh DB OUT}
out=${2:?usage: charts.sh DB OUT}
index=$db/results.index
time_workloads="fillrandom overwrite"

if ! command -v gnuplot >/dev/null 2>&1; then
    echo "charts: gnuplot is not installed (apt-get install gnuplot-nox): no charts drawn"
    exit 0
fi
if [ ! -r "$index" ]; then
    echo "charts: $index is missing: no multi-engine run to draw" >&2
    exit 1
fi
mkdir -p "$out"
# pngcairo draws smoother text; plain png is the fallback of a gnuplot built without it.
if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then term="pngcairo size 1400,720 font 'sans,10'"
else term="png size 1400,720"; fi

configs=$(cut -f1 "$index" | awk '!seen[$0]++')
drawn=""
for cfg in $configs; do
    engines=$(awk -F'\t' -v c="$cfg" '$1 == c { print $2 }' "$index")
    files=$(awk -F'\t' -v c="$cfg" '$1 == c { print $3 }' "$index")
    keys=$(awk -F'\t' '$1 == "N" { print $2; exit }' $files 2>/dev/null || true)
    what="$cfg, ${keys:-?} keys"

    # ops/s: a row per workload row (in the order the run printed them), a column
    # per engine, "-" where an engine has no such row.
    dat=$out/$cfg-ops.dat
    # shellcheck disable=SC2086
    awk -F'\t' -v engines="$engines" '
        BEGIN { n = split(engines, eng, "\n") }
        FNR == 1 { col++ }
        $1 == "W" {
            if (!($2 in seen)) { seen[$2] = 1; rows[++nrows] = $2 }
            v[$2, col] = $3
        }
        END {
            printf "workload"
            for (c = 1; c <= n; c++) printf " \"%s\"", eng[c]
            printf "\n"
            for (r = 1; r <= nrows; r++) {
                printf "\"%s\"", rows[r]
                for (c = 1; c <= n; c++) printf " %s", ((rows[r], c) in v && v[rows[r], c] > 0) ? v[rows[r], c] : "-"
                printf "\n"
            }
        }' $files >"$dat"
    ncols=$(echo "$engines" | wc -l)
    png=$out/$cfg-ops.png
    gnuplot <<EOF
set terminal $term
set output '$png'
set title "ops/s per workload ($what; higher is better, log scale)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set format y "%.0s%c"
set grid ytics
set xtics rotate by -40 scale 0 nomirror
set key top right
set bmargin 9
set rmargin 8
plot for [i=2:$((ncols + 1))] '$dat' using i:xtic(1) title columnheader(i)
EOF
    drawn="$drawn $png"

    # ops/s over time: one data file per engine, "seconds ops/s".
    for wl in $time_workloads; do
        plot=""
        for e in $engines; do
            f=$(awk -F'\t' -v c="$cfg" -v e="$e" '$1 == c && $2 == e { print $3 }' "$index")
            tdat=$out/$cfg-$wl-$e.dat
            awk -F'\t' -v w="$wl" '$1 == "T" && $2 == w { print $3, $4 }' "$f" >"$tdat" 2>/dev/null || true
            if [ -s "$tdat" ]; then
                plot="$plot${plot:+, }'$tdat' using 1:(\$2 / 1000) with lines lw 1.5 title '$e'"
            fi
        done
        [ -n "$plot" ] || continue
        png=$out/$cfg-$wl-time.png
        gnuplot <<EOF
set terminal $term
set output '$png'
set title "$wl: ops/s over time ($what)"
set xlabel "seconds since the workload started"
set ylabel "thousand ops/s"
set format y "%g"
set yrange [0:*]
set grid
set key top right
plot $plot
EOF
        drawn="$drawn $png"
    done
done
echo "charts:"
for p in $drawn; do echo "  $p"; done
