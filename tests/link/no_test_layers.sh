#!/bin/sh
# Checks that what users link carries neither test environment
# (tests/support/fault_env.c, tests/support/powerloss_env.c): none of the
# given libraries and objects defines a symbol, global or file-local, that a
# test environment's object defines globally, or one with the environments'
# prefixes (file_fault_, file_pl_; fault_ and pl_, their file-local names).
# Usage: no_test_layers.sh ENV_OBJ... -- LIB... (archives, shared libraries,
# objects). Prints each symbol found, and where.
envs=
while [ $# -gt 0 ] && [ "$1" != -- ]; do envs="$envs $1"; shift; done
[ "$1" = -- ] && shift
[ -n "$envs" ] && [ $# -gt 0 ] || { echo "usage: no_test_layers.sh ENV_OBJ... -- LIB..." >&2; exit 2; }
names=$(nm -g --defined-only $envs | awk 'NF == 3 { print $3 }')
[ -n "$names" ] || { echo "no-test-layers: no symbols in$envs" >&2; exit 2; }
for lib in "$@"; do
    [ -e "$lib" ] || { echo "no-test-layers: $lib: missing" >&2; exit 2; }
done
for lib in "$@"; do
    # A shared library's dynamic table too, in case its full table is stripped.
    { nm --defined-only "$lib" 2>/dev/null; case $lib in *.so*) nm -D --defined-only "$lib";; esac; } |
        awk -v lib="$lib" 'NF >= 2 { print lib, $NF } END { print lib, "" }'
done | awk -v names="$names" '
BEGIN { n = split(names, v, "\n"); for (i = 1; i <= n; i++) env[v[i]] = 1 }
{ libs[$1] = 1 }
($2 in env) || $2 ~ /^(file_fault_|file_pl_|fault_|pl_)/ { print "no-test-layers: " $1 " defines " $2; bad = 1 }
END {
    if (bad) { print "no-test-layers: the test environments belong in tests/support, not in the library"; exit 1 }
    n = 0; for (l in libs) n++
    print "no-test-layers: ok (" n " files, no symbol of the fault or power-loss environment)"
}'
