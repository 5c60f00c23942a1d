/* The tind command-line tool, run as a subprocess ($TIND_CLI, default
 * build/tind) against databases made here: outputs, exit statuses, JSON
 * well-formedness, dump/load round trips, corruption found by verify, a
 * database in use reported as busy. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/ks_options.h"
#include "tests/support/expect.h"
#include "tests/support/testutil.h"
#include "tind.h"

static char *g_dir;
static char g_db[1024];

static void cli_setup(void)
{
    g_dir = tu_mkdtemp("cli");
    cr_assert_not_null(g_dir);
    snprintf(g_db, sizeof g_db, "%s/db", g_dir);
}

static void cli_teardown(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
}

TestSuite(cli, .init = cli_setup, .fini = cli_teardown, .timeout = 120);

/* ---- running the tool ------------------------------------------------------------------ */

struct run {
    int status;   /* exit status; -1 when killed */
    char *out, *err;
    size_t outlen, errlen;
};

static const char *cli_path(void)
{
    const char *p = getenv("TIND_CLI");
    return p && *p ? p : "build/tind";
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    size_t cap = 4096, len = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while ((got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) b = realloc(b, (cap *= 2) + 1);
    }
    fclose(f);
    b[len] = 0;
    if (n) *n = len;
    return b;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Runs the tool with argv (NULL-terminated), stdin from `in` (NULL: /dev/null). */
static struct run run_argv(const char *in, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = cli_path();
    for (; *args && n < 31; args++) argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(access(cli_path(), X_OK), 0, "the tool %s is not built (TIND_CLI)", cli_path());
    char outp[PATH_MAX], errp[PATH_MAX];
    snprintf(outp, sizeof outp, "%s/stdout", g_dir);
    snprintf(errp, sizeof errp, "%s/stderr", g_dir);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int i = open(in ? in : "/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || i < 0) _exit(127);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    struct run r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(outp, &r.outlen);
    r.err = slurp(errp, &r.errlen);
    return r;
}

#define RUN(...) run_argv(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define RUN_IN(in, ...) run_argv(in, (const char *const[]){__VA_ARGS__, NULL})

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Exit status `want`; on failures exactly one line on stderr. */
static void expect_status(const struct run *r, int want, const char *what)
{
    cr_assert_eq(r->status, want, "%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r->status, want, r->out,
                 r->err);
    if (want != 0) {
        cr_assert_eq(count_lines(r->err), 1u, "%s: stderr should be one line: %s", what, r->err);
        cr_assert(!strncmp(r->err, "tind: ", 6), "%s: stderr: %s", what, r->err);
    }
}

static void expect_has(const char *hay, const char *needle, const char *what)
{
    cr_assert_not_null(strstr(hay, needle), "%s: no \"%s\" in:\n%s", what, needle, hay);
}

/* Runs the tool with the arguments, expects exit status `want` and, when
 * `needle` is not NULL, needle in its stdout (want 0) or stderr (else). */
static void check_run(int want, const char *what, const char *needle, const char *const *args)
{
    struct run r = run_argv(NULL, args);
    expect_status(&r, want, what);
    if (needle) expect_has(want == 0 ? r.out : r.err, needle, what);
    run_free(&r);
}

#define CHECK_RUN(want, what, needle, ...) check_run(want, what, needle, (const char *const[]){__VA_ARGS__, NULL})

/* ---- a JSON checker -------------------------------------------------------------------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p != '"') return NULL;
    for (p++; *p && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = json_string(json_ws(p)))) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value(p))) return NULL;
            p = json_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"') return json_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    const char *s = p;
    if (*p == '-') p++;
    while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-') p++;
    return p > s ? p : NULL;
}

static void expect_json(const struct run *r, const char *what)
{
    const char *end = json_value(r->out);
    cr_assert_not_null(end, "%s: not JSON:\n%s", what, r->out);
    cr_assert_eq(*json_ws(end), 0, "%s: trailing text after the JSON document:\n%s", what, r->out);
}

/* ---- databases ------------------------------------------------------------------------ */

/* "main": key000..key199 -> val<i> in a table, key200..key249 in the
 * journal only, key000..key004 deleted (in the journal); "bin": a few
 * binary keys; "empty": nothing. */
static void make_db(void)
{
    tind_db *db;
    tind_keyspace *ks, *bin, *empty;
    EXPECT_OK(tind_open(g_db, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "main", NULL, &ks));
    EXPECT_OK(tind_keyspace_open(db, "bin", NULL, &bin));
    EXPECT_OK(tind_keyspace_open(db, "empty", NULL, &empty));
    char k[32], v[32];
    for (int i = 0; i < 250; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        snprintf(v, sizeof v, "val%d", i);
        EXPECT_OK(tind_put(ks, k, strlen(k), v, strlen(v)));
        if (i == 199) EXPECT_OK(tind_keyspace_flush(ks));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        EXPECT_OK(tind_delete(ks, k, strlen(k)));
    }
    EXPECT_OK(tind_put(bin, "\x00\xff", 2, "a\nb\tc\\d", 7));
    EXPECT_OK(tind_put(bin, "plain", 5, "", 0));
    EXPECT_OK(tind_keyspace_flush(bin));
    EXPECT_OK(tind_close(db));
}

/* The path of the first table file of keyspace number id. */
static void first_table(unsigned id, char *out, size_t cap)
{
    char dir[PATH_MAX / 2];
    snprintf(dir, sizeof dir, "%s/keyspaces/%u", g_db, id);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tbl")) {
            snprintf(out, cap, "%s/%.64s", dir, de->d_name);
            break;
        }
    closedir(d);
    cr_assert(out[0], "no table in %s", dir);
}

static void newest_journal(char *out, size_t cap)
{
    char dir[PATH_MAX / 2], best[256] = "";
    snprintf(dir, sizeof dir, "%s/journals", g_db);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".jnl") && strcmp(de->d_name, best) > 0) snprintf(best, sizeof best, "%.64s", de->d_name);
    closedir(d);
    snprintf(out, cap, "%s/%.64s", dir, best);
}

static void flip_bit(const char *path, long off, int bit)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    fputc(c ^ (1 << bit), f);
    fclose(f);
}

/* ---- usage ------------------------------------------------------------------------------- */

Test(cli, help_and_usage_errors)
{
    struct run r = RUN("help");
    expect_status(&r, 0, "help");
    expect_has(r.out, "usage: tind COMMAND", "help");
    expect_has(r.out, "tind scan DIR KEYSPACE", "help");
    run_free(&r);
    static const char *cmds[] = {"info", "get", "put", "delete", "scan", "dump", "load", "table",
                                 "journal", "manifest", "verify", "compact", "stats"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        r = RUN(cmds[i], "--help");
        expect_status(&r, 0, cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: tind %s", cmds[i]);
        expect_has(r.out, want, cmds[i]);
        run_free(&r);
        r = RUN("help", cmds[i]);
        expect_status(&r, 0, cmds[i]);
        expect_has(r.out, want, cmds[i]);
        run_free(&r);
    }
    CHECK_RUN(0, "version", tind_version(), "version");

    r = run_argv(NULL, (const char *const[]){NULL});
    cr_assert_eq(r.status, 2);
    run_free(&r);
    struct {
        const char *args[6];
        const char *msg;
    } bad[] = {
        {{"frobnicate"}, "no command named frobnicate"},
        {{"help", "frobnicate"}, "no command named frobnicate"},
        {{"get", "d", "ks"}, "missing arguments"},
        {{"get", "d", "ks", "k", "extra"}, "too many arguments"},
        {{"scan", "d", "ks", "--bogus"}, "unknown option --bogus"},
        {{"scan", "d", "ks", "--limit", "x"}, "--limit x is not a number"},
        {{"scan", "d", "ks", "--limit"}, "needs a value"},
        {{"info", "d", "--hex"}, "unknown option --hex"},
        {{"get", "d", "ks", "a\\q"}, "unknown escape"},
        {{"get", "d", "ks", "a\\x4"}, "needs two hex digits"},
        {{"get", "d", "ks", "abc", "--hex"}, "odd number of hex digits"},
        {{"get", "d", "ks", ""}, "empty"},
        {{"compact", "d", "--progress", "--no-progress"}, "contradict"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = run_argv(NULL, bad[i].args);
        expect_status(&r, 2, bad[i].args[0]);
        expect_has(r.err, bad[i].msg, bad[i].args[0]);
        cr_assert_eq(r.outlen, 0u);
        run_free(&r);
    }
}

/* ---- info, stats ---------------------------------------------------------------------- */

Test(cli, info_text_and_json)
{
    make_db();
    struct run r = RUN("info", g_db);
    expect_status(&r, 0, "info");
    expect_has(r.out, "format        1", "info");
    expect_has(r.out, "sequence      257", "info");
    expect_has(r.out, "keyspaces     3", "info");
    expect_has(r.out, "keyspace main (id 1)", "info");
    expect_has(r.out, "keyspace bin (id 2)", "info");
    expect_has(r.out, "compaction=leveled", "info");
    expect_has(r.out, "memtable    55 entries", "info");
    expect_has(r.out, "level 0     1 tables", "info");
    expect_has(r.out, "disk usage", "info");
    run_free(&r);
    r = RUN("info", g_db, "--json");
    expect_status(&r, 0, "info --json");
    expect_json(&r, "info --json");
    expect_has(r.out, "\"last_sequence\": 257", "info --json");
    expect_has(r.out, "\"name\": \"main\"", "info --json");
    expect_has(r.out, "\"memtable_entries\": 55", "info --json");
    run_free(&r);

    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/none", g_dir);
    CHECK_RUN(1, "info on nothing", "no tind database there", "info", missing);
    struct stat st;
    cr_assert_neq(stat(missing, &st), 0, "info created %s", missing);
}

/* info prints the options from their table: every field, text and JSON. */
#define EXPECT_OPTION_SHOWN(name, type, coding, tag, def, lo, hi, why, names)                                \
    expect_has(text.out, " " #name "=", "info");                                                             \
    expect_has(json.out, "\"" #name "\": ", "info --json");

Test(cli, info_shows_every_keyspace_option)
{
    make_db();
    struct run text = RUN("info", g_db), json = RUN("info", g_db, "--json");
    expect_status(&text, 0, "info");
    expect_status(&json, 0, "info --json");
    expect_json(&json, "info --json");
    KS_OPTIONS(EXPECT_OPTION_SHOWN)
    expect_has(text.out, " compression=lz4,lz4,lz4,lz4,lz4,lz4,lz4", "info");
    run_free(&text);
    run_free(&json);
}

Test(cli, stats_text_and_json)
{
    make_db();
    struct run r = RUN("stats", g_db);
    expect_status(&r, 0, "stats");
    expect_has(r.out, "keyspace main", "stats");
    expect_has(r.out, "cache ", "stats");
    expect_has(r.out, "stalls", "stats");
    run_free(&r);
    r = RUN("stats", g_db, "--json");
    expect_status(&r, 0, "stats --json");
    expect_json(&r, "stats --json");
    expect_has(r.out, "\"keyspace_stats\"", "stats --json");
    expect_has(r.out, "\"hits\"", "stats --json");
    run_free(&r);
}

/* ---- get, put, delete, scan ------------------------------------------------------------- */

Test(cli, get_put_delete)
{
    make_db();
    struct run r = RUN("get", g_db, "main", "key010");
    expect_status(&r, 0, "get");
    cr_assert_str_eq(r.out, "val10\n");
    run_free(&r);
    CHECK_RUN(1, "get of a deleted key", "not found", "get", g_db, "main", "key001");
    CHECK_RUN(1, "get in a missing keyspace", "no keyspace named nosuch", "get", g_db, "nosuch", "k");
    r = RUN("get", g_db, "bin", "\\x00\\xff");
    expect_status(&r, 0, "get binary");
    cr_assert_str_eq(r.out, "a\\x0ab\\x09c\\\\d\n");
    run_free(&r);
    r = RUN("get", g_db, "bin", "00ff", "--hex");
    expect_status(&r, 0, "get --hex");
    cr_assert_str_eq(r.out, "610a6209635c64\n");
    run_free(&r);
    r = RUN("get", g_db, "bin", "plain", "--json");
    expect_status(&r, 0, "get --json");
    expect_json(&r, "get --json");
    expect_has(r.out, "\"value\": \"\"", "get --json");
    run_free(&r);

    r = RUN("put", g_db, "main", "new\\n", "v\\x00\\\\");
    expect_status(&r, 0, "put");
    cr_assert_eq(r.outlen, 0u);
    run_free(&r);
    r = RUN("get", g_db, "main", "new\\x0a");
    expect_status(&r, 0, "get after put");
    cr_assert_str_eq(r.out, "v\\x00\\\\\n");
    run_free(&r);
    CHECK_RUN(1, "put into a missing keyspace", "no keyspace named other", "put", g_db, "other", "k", "v");
    CHECK_RUN(0, "put --create --hex", NULL, "put", g_db, "other", "6b", "7676", "--create", "--hex");
    r = RUN("get", g_db, "other", "k");
    cr_assert_str_eq(r.out, "vv\n");
    run_free(&r);
    CHECK_RUN(0, "delete", NULL, "delete", g_db, "main", "key010");
    CHECK_RUN(1, "get after delete", NULL, "get", g_db, "main", "key010");
    CHECK_RUN(0, "delete of an absent key", NULL, "delete", g_db, "main", "never-there");

    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/none", g_dir);
    CHECK_RUN(1, "put without a database", "--create", "put", missing, "ks", "k", "v");
}

Test(cli, scan_bounds_and_formats)
{
    make_db();
    struct run r = RUN("scan", g_db, "main", "--prefix", "key01", "--limit", "3");
    expect_status(&r, 0, "scan --prefix");
    cr_assert_str_eq(r.out, "key010\tval10\nkey011\tval11\nkey012\tval12\n");
    run_free(&r);
    r = RUN("scan", g_db, "main", "--from", "key247", "--keys-only");
    expect_status(&r, 0, "scan --from");
    cr_assert_str_eq(r.out, "key247\nkey248\nkey249\n");
    run_free(&r);
    r = RUN("scan", g_db, "main", "--to", "key007", "--reverse");
    expect_status(&r, 0, "scan --to --reverse");
    cr_assert_str_eq(r.out, "key006\tval6\nkey005\tval5\n");
    run_free(&r);
    r = RUN("scan", g_db, "main", "--prefix=key1", "--from=key150", "--to=key152");
    expect_status(&r, 0, "scan prefix and range");
    cr_assert_str_eq(r.out, "key150\tval150\nkey151\tval151\n");
    run_free(&r);
    r = RUN("scan", g_db, "main");
    expect_status(&r, 0, "scan all");
    cr_assert_eq(count_lines(r.out), 245u);
    run_free(&r);
    r = RUN("scan", g_db, "bin", "--hex");
    expect_status(&r, 0, "scan --hex");
    cr_assert_str_eq(r.out, "00ff\t610a6209635c64\n706c61696e\t\n");
    run_free(&r);
    r = RUN("scan", g_db, "bin", "--json");
    expect_status(&r, 0, "scan --json");
    expect_json(&r, "scan --json");
    expect_has(r.out, "\"key\": \"\\\\x00\\\\xff\"", "scan --json");
    expect_has(r.out, "\"count\": 2", "scan --json");
    run_free(&r);
    r = RUN("scan", g_db, "empty", "--json");
    expect_status(&r, 0, "scan of an empty keyspace");
    expect_json(&r, "scan empty");
    expect_has(r.out, "\"count\": 0", "scan empty");
    run_free(&r);
    r = RUN("scan", g_db, "main", "--prefix", "zzz");
    expect_status(&r, 0, "scan with nothing to show");
    cr_assert_eq(r.outlen, 0u);
    run_free(&r);
}

/* ---- dump and load ------------------------------------------------------------------------ */

static void put_raw(tind_keyspace *ks, const void *k, size_t kl, const void *v, size_t vl)
{
    EXPECT_OK(tind_put(ks, k, kl, v, vl));
}

/* Every key and value of ks equals those of other's keyspace, in order. */
static void expect_same_keyspace(tind_keyspace *a, tind_keyspace *b)
{
    tind_iter *ia, *ib;
    EXPECT_OK(tind_iter_open(a, NULL, NULL, &ia));
    EXPECT_OK(tind_iter_open(b, NULL, NULL, &ib));
    tind_iter_seek_first(ia);
    tind_iter_seek_first(ib);
    size_t n = 0;
    while (tind_iter_valid(ia) && tind_iter_valid(ib)) {
        size_t kal, kbl, val, vbl;
        const void *ka = tind_iter_key(ia, &kal), *kb = tind_iter_key(ib, &kbl);
        const void *va = tind_iter_value(ia, &val), *vb = tind_iter_value(ib, &vbl);
        cr_assert(kal == kbl && !memcmp(ka, kb, kal), "key %zu differs: %s vs %s", n, tu_hex(ka, kal), tu_hex(kb, kbl));
        cr_assert(val == vbl && !memcmp(va, vb, val), "value of %s differs", tu_hex(ka, kal));
        tind_iter_next(ia);
        tind_iter_next(ib);
        n++;
    }
    cr_assert(!tind_iter_valid(ia) && !tind_iter_valid(ib), "one keyspace has more keys (after %zu)", n);
    tind_iter_close(ia);
    tind_iter_close(ib);
}

Test(cli, dump_then_load_reproduces_any_bytes)
{
    tind_db *db;
    tind_keyspace *ks;
    EXPECT_OK(tind_open(g_db, NULL, &db));
    EXPECT_OK(tind_keyspace_open(db, "src", NULL, &ks));
    static uint8_t big[65535], all[256];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof all; i++) all[i] = (uint8_t)i;
    put_raw(ks, big, sizeof big, "64k key", 7);
    put_raw(ks, "\x00", 1, "", 0);
    put_raw(ks, "\xff\xff", 2, "\xff", 1);
    put_raw(ks, "nl\n", 3, "a\nb\r\n", 5);
    put_raw(ks, "tab\t", 4, "\t", 1);
    put_raw(ks, "back\\slash", 10, "\\x41", 4);
    put_raw(ks, "all", 3, all, sizeof all);
    put_raw(ks, "end", 3, "end 1", 5); /* looks like the end line once escaped? no: it is a key line */
    EXPECT_OK(tind_keyspace_flush(ks));
    put_raw(ks, "journal-only", 12, big, 1000);
    EXPECT_OK(tind_close(db));

    char d1[PATH_MAX], d2[PATH_MAX], db2[PATH_MAX], db3[PATH_MAX];
    snprintf(d1, sizeof d1, "%s/one.dump", g_dir);
    snprintf(d2, sizeof d2, "%s/two.dump", g_dir);
    snprintf(db2, sizeof db2, "%s/db2", g_dir);
    snprintf(db3, sizeof db3, "%s/db3", g_dir);
    CHECK_RUN(0, "dump", NULL, "dump", g_db, "src", d1);
    CHECK_RUN(1, "load without --create", NULL, "load", db2, "copy", d1);
    CHECK_RUN(0, "load", "loaded 9 entries into copy", "load", db2, "copy", d1, "--create");
    CHECK_RUN(0, "dump of the copy", NULL, "dump", db2, "copy", d2);
    size_t n1, n2;
    char *b1 = slurp(d1, &n1), *b2 = slurp(d2, &n2);
    /* The header names the keyspace: compare what follows it. */
    const char *p1 = strstr(b1, "\n") + 1, *p2 = strstr(b2, "\n") + 1;
    p1 = strstr(p1, "\n") + 1;
    p2 = strstr(p2, "\n") + 1;
    cr_assert_eq(n1 - (size_t)(p1 - b1), n2 - (size_t)(p2 - b2), "the dumps differ in length");
    cr_assert_eq(memcmp(p1, p2, n1 - (size_t)(p1 - b1)), 0, "the dumps differ");
    cr_assert(!strncmp(b1, "tind-dump 1\nkeyspace src\n", 25), "header: %.40s", b1);
    expect_has(b1, "\\x00\t\n", "the empty value");
    expect_has(b1, "\nend 9\n", "the end line");
    free(b1);
    free(b2);

    /* Through standard input, into a third database. */
    struct run r = RUN_IN(d1, "load", db3, "copy", "--create");
    expect_status(&r, 0, "load from stdin");
    run_free(&r);
    tind_db *a, *b, *c;
    tind_keyspace *ka, *kb, *kc;
    tind_options o;
    tind_options_init(&o);
    o.read_only = 1;
    EXPECT_OK(tind_open(g_db, &o, &a));
    EXPECT_OK(tind_open(db2, &o, &b));
    EXPECT_OK(tind_open(db3, &o, &c));
    EXPECT_OK(tind_keyspace_open(a, "src", NULL, &ka));
    EXPECT_OK(tind_keyspace_open(b, "copy", NULL, &kb));
    EXPECT_OK(tind_keyspace_open(c, "copy", NULL, &kc));
    expect_same_keyspace(ka, kb);
    expect_same_keyspace(ka, kc);
    EXPECT_OK(tind_close(a));
    EXPECT_OK(tind_close(b));
    EXPECT_OK(tind_close(c));
}

Test(cli, load_refuses_a_damaged_dump_and_writes_nothing)
{
    make_db();
    char good[PATH_MAX], bad[PATH_MAX], db2[PATH_MAX];
    snprintf(good, sizeof good, "%s/good.dump", g_dir);
    snprintf(bad, sizeof bad, "%s/bad.dump", g_dir);
    snprintf(db2, sizeof db2, "%s/db2", g_dir);
    CHECK_RUN(0, "dump", NULL, "dump", g_db, "main", good);
    size_t n;
    char *text = slurp(good, &n);
    /* Cut the end line off. */
    char *end = strstr(text, "\nend ");
    cr_assert_not_null(end);
    FILE *f = fopen(bad, "wb");
    fwrite(text, 1, (size_t)(end - text) + 1, f);
    fclose(f);
    CHECK_RUN(1, "load of a cut dump", "cut short", "load", db2, "copy", bad, "--create");
    /* A bad escape on line 5. */
    write_file(bad, "tind-dump 1\nkeyspace x\na\tb\nc\td\ne\\q\tf\nend 3\n");
    CHECK_RUN(1, "load with a bad escape", "line 5", "load", db2, "copy", bad, "--create");
    write_file(bad, "tind-dump 1\nkeyspace x\na\tb\nend 2\n");
    CHECK_RUN(1, "load with a wrong count", NULL, "load", db2, "copy", bad, "--create");
    write_file(bad, "hello\n");
    CHECK_RUN(1, "load of something else", "not a tind dump", "load", db2, "copy", bad, "--create");
    free(text);
    struct stat st;
    cr_assert_neq(stat(db2, &st), 0, "a refused load created the database");
}

/* ---- table, journal, manifest --------------------------------------------------------------- */

Test(cli, table_shows_blocks_filter_and_entries)
{
    make_db();
    char t[PATH_MAX];
    first_table(1, t, sizeof t);
    struct run r = RUN("table", t);
    expect_status(&r, 0, "table");
    expect_has(r.out, "entries       200 (0 tombstones)", "table");
    expect_has(r.out, "bloom filter", "table");
    expect_has(r.out, "bits per key", "table");
    expect_has(r.out, "footer        format 2", "table");
    expect_has(r.out, "bits per key, blocked (64-byte lines)", "table");
    expect_has(r.out, "ratio", "table");
    expect_has(r.out, "keys          key000 .. key199", "table");
    run_free(&r);
    r = RUN("table", t, "--entries");
    expect_status(&r, 0, "table --entries");
    expect_has(r.out, "key000\t1\tput\tval0\n", "table --entries");
    expect_has(r.out, "key199\t200\tput\tval199\n", "table --entries");
    run_free(&r);
    r = RUN("table", t, "--entries", "--json");
    expect_status(&r, 0, "table --json");
    expect_json(&r, "table --json");
    expect_has(r.out, "\"bits_per_key\"", "table --json");
    expect_has(r.out, "\"kind\": \"put\"", "table --json");
    run_free(&r);
    flip_bit(t, 100, 3);
    CHECK_RUN(1, "table with a flipped bit", t, "table", t);
}

Test(cli, journal_shows_records_and_damage)
{
    make_db();
    char j[PATH_MAX];
    newest_journal(j, sizeof j);
    struct run r = RUN("journal", j);
    expect_status(&r, 0, "journal");
    expect_has(r.out, "header        number", "journal");
    expect_has(r.out, "batch", "journal");
    expect_has(r.out, "251..251", "journal");
    run_free(&r);
    r = RUN("journal", j, "--entries");
    expect_status(&r, 0, "journal --entries");
    expect_has(r.out, "251\tdelete\t1\tkey000\n", "journal --entries");
    expect_has(r.out, "\tput\t2\t\\x00\\xff\ta\\x0ab\\x09c\\\\d\n", "journal --entries");
    run_free(&r);
    r = RUN("journal", j, "--json", "--entries");
    expect_status(&r, 0, "journal --json");
    expect_json(&r, "journal --json");
    expect_has(r.out, "\"type\": \"batch\"", "journal --json");
    run_free(&r);
    /* Damage a record in the middle: found, named by offset, not a torn tail. */
    struct stat st;
    cr_assert_eq(stat(j, &st), 0);
    flip_bit(j, (long)st.st_size / 2, 0);
    r = RUN("journal", j);
    expect_status(&r, 1, "journal with a flipped bit");
    expect_has(r.err, j, "journal with a flipped bit");
    expect_has(r.err, "offset", "journal with a flipped bit");
    run_free(&r);
}

Test(cli, manifest_shows_history_and_current_version)
{
    make_db();
    struct run r = RUN("manifest", g_db, "main");
    expect_status(&r, 0, "manifest");
    expect_has(r.out, "record at 0: snapshot", "manifest");
    expect_has(r.out, "edit", "manifest");
    expect_has(r.out, "current version (2 records, flushed up to 200)", "manifest");
    expect_has(r.out, "level 0: 1 tables", "manifest");
    run_free(&r);
    r = RUN("manifest", g_db, "2", "--json");
    expect_status(&r, 0, "manifest by number --json");
    expect_json(&r, "manifest --json");
    expect_has(r.out, "\"current\"", "manifest --json");
    run_free(&r);
    CHECK_RUN(1, "manifest of a missing keyspace", NULL, "manifest", g_db, "nosuch");
}

/* ---- verify, busy, read-only ------------------------------------------------------------------- */

Test(cli, verify_finds_a_flipped_bit)
{
    make_db();
    struct run r = RUN("verify", g_db);
    expect_status(&r, 0, "verify");
    expect_has(r.out, "0 problems", "verify");
    expect_has(r.out, "checked 3 keyspaces, 2 tables", "verify");
    run_free(&r);
    r = RUN("verify", g_db, "--json");
    expect_status(&r, 0, "verify --json");
    expect_json(&r, "verify --json");
    expect_has(r.out, "\"ok\": true", "verify --json");
    run_free(&r);

    char t[PATH_MAX];
    first_table(1, t, sizeof t);
    flip_bit(t, 60, 5); /* inside the first data block */
    r = RUN("verify", g_db);
    expect_status(&r, 1, "verify after a flipped bit");
    expect_has(r.err, t, "verify names the file");
    expect_has(r.err, "offset 0", "verify names the offset");
    expect_has(r.err, "TIND_CORRUPTION", "verify");
    run_free(&r);
    r = RUN("verify", g_db, "--json");
    cr_assert_eq(r.status, 1);
    expect_json(&r, "verify --json after damage");
    expect_has(r.out, "\"ok\": false", "verify --json after damage");
    run_free(&r);
}

Test(cli, database_in_use_is_busy_not_corrupt)
{
    make_db();
    tind_db *db;
    EXPECT_OK(tind_open(g_db, NULL, &db));
    const char *cmds[][6] = {{"info", g_db}, {"get", g_db, "main", "key100"}, {"scan", g_db, "main"},
                             {"verify", g_db}, {"put", g_db, "main", "k", "v"}, {"compact", g_db}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct run r = run_argv(NULL, cmds[i]);
        expect_status(&r, 1, cmds[i][0]);
        expect_has(r.err, "TIND_BUSY", cmds[i][0]);
        expect_has(r.err, "in use by another process", cmds[i][0]);
        run_free(&r);
    }
    /* The file commands take no lock. */
    CHECK_RUN(0, "manifest beside a writer", NULL, "manifest", g_db, "main");
    EXPECT_OK(tind_close(db));
}

struct fileinfo {
    char name[PATH_MAX];
    long long size, mtime;
};

static size_t list_files(const char *dir, struct fileinfo *out, size_t n, size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        cr_assert_lt(n, cap);
        snprintf(out[n].name, sizeof out[n].name, "%s/%.200s", dir, de->d_name);
        struct stat st;
        cr_assert_eq(lstat(out[n].name, &st), 0);
        out[n].size = S_ISDIR(st.st_mode) ? 0 : (long long)st.st_size;
        out[n].mtime = S_ISDIR(st.st_mode) ? 0 : (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        n++;
        if (S_ISDIR(st.st_mode)) n = list_files(out[n - 1].name, out, n, cap);
    }
    closedir(d);
    return n;
}

Test(cli, read_commands_change_nothing)
{
    make_db();
    static struct fileinfo before[256], after[256];
    size_t nb = list_files(g_db, before, 0, 256);
    const char *cmds[][5] = {{"info", g_db}, {"get", g_db, "main", "key100"}, {"scan", g_db, "main"},
                             {"verify", g_db}, {"stats", g_db},         {"manifest", g_db, "main"}};
    char dump[PATH_MAX];
    snprintf(dump, sizeof dump, "%s/x.dump", g_dir);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct run r = run_argv(NULL, cmds[i]);
        expect_status(&r, 0, cmds[i][0]);
        run_free(&r);
    }
    CHECK_RUN(0, "dump", NULL, "dump", g_db, "main", dump);
    size_t na = list_files(g_db, after, 0, 256);
    cr_assert_eq(na, nb, "files before %zu, after %zu", nb, na);
    for (size_t i = 0; i < na; i++) {
        cr_assert_str_eq(before[i].name, after[i].name);
        cr_assert_eq(before[i].size, after[i].size, "%s changed size", after[i].name);
        cr_assert_eq(before[i].mtime, after[i].mtime, "%s was modified", after[i].name);
    }
}

/* ---- compact -------------------------------------------------------------------------------- */

Test(cli, compact_with_and_without_progress)
{
    make_db();
    struct run r = RUN("compact", g_db, "main", "--progress");
    expect_status(&r, 0, "compact --progress");
    expect_has(r.out, "compacted main:", "compact");
    expect_has(r.err, "100%", "compact --progress");
    expect_has(r.err, "to merge", "compact --progress");
    run_free(&r);
    r = RUN("info", g_db, "--json");
    expect_status(&r, 0, "info after compact");
    /* main's tables all went to the last level, its memtable flushed first. */
    expect_has(r.out, "\"level\": 6,\n          \"tables\": 1", "info after compact");
    run_free(&r);
    r = RUN("compact", g_db, "--no-progress");
    expect_status(&r, 0, "compact every keyspace");
    cr_assert_eq(r.errlen, 0u, "stderr: %s", r.err);
    expect_has(r.out, "compacted bin:", "compact all");
    expect_has(r.out, "compacted empty:", "compact all");
    run_free(&r);
    r = RUN("scan", g_db, "main", "--keys-only");
    expect_status(&r, 0, "scan after compact");
    cr_assert_eq(count_lines(r.out), 245u);
    run_free(&r);
    CHECK_RUN(1, "compact of a missing keyspace", NULL, "compact", g_db, "nosuch");
    CHECK_RUN(0, "verify after compact", NULL, "verify", g_db);
}
