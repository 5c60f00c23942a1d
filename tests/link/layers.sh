#!/bin/sh
# Checks the library's layering from its object files: which file calls or
# reads a global of which other (nm: a symbol one object leaves undefined
# and another defines).
#   - A file uses only files of its own layer or of layers below:
#       src/util/               (0)  utilities, the worker pool
#       journal/, lsm/          (1)  the journal and the LSM machinery; neither uses the other
#       compaction/             (2)  the strategies and the compactor
#       src/tree/               (3)  one keyspace's tree
#       src/ (the rest)         (4)  the database layer
#   - No circle among files, in any layer.
# Usage: layers.sh OBJDIR OBJ... (the build's obj/ folder, and the library's
# objects relative to it). Prints each breach.
objdir=${1:?usage: layers.sh OBJDIR OBJ...}
shift
cd "$objdir" || exit 2
objs="$*"
[ -n "$objs" ] || { echo "layers: no objects under $objdir" >&2; exit 2; }
for o in $objs; do
    f=${o%.o}
    nm "$o" | awk -v f="$f" '$2 ~ /^[TDBR]$/ { print "D", f, $3 } $1 == "U" { print "U", f, $2 }'
done | awk '
function rank(f) {
    if (f ~ /^src\/util\//) return 0
    if (f ~ /^journal\// || f ~ /^lsm\//) return 1
    if (f ~ /^compaction\//) return 2
    if (f ~ /^src\/tree\//) return 3
    return 4
}
function top(f) { sub(/\/.*/, "", f); return f }
# Depth-first search; colour 1: on the path, 2: done. path holds the path.
function visit(v, depth,    i, w) {
    colour[v] = 1
    path[depth] = v
    for (i = 1; i <= nout[v]; i++) {
        w = out[v, i]
        if (colour[w] == 1) {
            cyc = w
            for (k = depth; k >= 1 && path[k] != w; k--) cyc = path[k] " -> " cyc
            print "layers: circle: " w " -> " cyc
            bad = 1
        } else if (!colour[w]) visit(w, depth + 1)
    }
    colour[v] = 2
}
$1 == "D" { def[$3] = $2; next }
$1 == "U" { use[++nuse] = $2 " " $3 }
END {
    for (i = 1; i <= nuse; i++) {
        split(use[i], p, " ")
        a = p[1]; s = p[2]
        if (!(s in def) || def[s] == a) continue
        b = def[s]
        if (seen[a, b]++) continue
        out[a, ++nout[a]] = b
        nodes[a] = nodes[b] = 1
        if (rank(b) > rank(a)) { print "layers: " a " uses " b " (" s "), a higher layer"; bad = 1 }
        if (rank(a) == 1 && top(a) != top(b) && rank(b) == 1) { print "layers: " a " uses " b " (" s ")"; bad = 1 }
    }
    for (v in nodes) if (!colour[v]) visit(v, 1)
    if (bad) exit 1
    n = 0; for (v in nodes) n++
    print "layers: ok (" n " files, no use upward, no circle)"
}'
