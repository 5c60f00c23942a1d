/* dump and load: a keyspace as text (the format is in src/cli/README.md).
 *
 *   dump   := "tind-dump 1\n" "keyspace " NAME "\n" line* "end " COUNT "\n"
 *   line   := escaped_key "\t" escaped_value "\n"
 *
 * Escaping (cli_print_bytes) turns every tab, newline and other byte outside
 * printable ASCII into \xNN and a backslash into \\, so a line's only tab is
 * the separator and its only newline the end; any bytes round-trip. COUNT
 * (decimal) is the number of lines: a dump cut short has no end line. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/cli.h"

#define DUMP_MAGIC "tind-dump 1"
#define LOAD_BATCH_OPS 1000
#define LOAD_BATCH_BYTES (4u << 20)

int cmd_dump(const struct cli_args *a)
{
    tind_db *db;
    tind_keyspace *ks;
    int rc = cli_open_db(a->pos[0], 1, &db);
    if (rc) return rc;
    if ((rc = cli_open_keyspace(db, a->pos[1], 0, &ks)) != 0) {
        tind_close(db);
        return rc;
    }
    FILE *out = stdout;
    if (a->npos > 2 && !(out = fopen(a->pos[2], "wb"))) {
        rc = cli_data_error("%s: %s", a->pos[2], strerror(errno));
        tind_close(db);
        return rc;
    }
    tind_iter *it;
    int lrc = tind_iter_open(ks, NULL, NULL, &it);
    if (lrc) {
        rc = cli_lib_error(lrc, "opening an iterator");
    } else {
        uint64_t count = 0;
        fprintf(out, "%s\nkeyspace %s\n", DUMP_MAGIC, a->pos[1]);
        for (tind_iter_seek_first(it); tind_iter_valid(it); tind_iter_next(it)) {
            size_t kl, vl;
            const void *k = tind_iter_key(it, &kl), *v = tind_iter_value(it, &vl);
            cli_print_bytes(out, k, kl, 0);
            putc('\t', out);
            cli_print_bytes(out, v, vl, 0);
            putc('\n', out);
            count++;
        }
        if ((lrc = tind_iter_status(it)) != TIND_OK) rc = cli_lib_error(lrc, "dump");
        else fprintf(out, "end %" PRIu64 "\n", count);
        tind_iter_close(it);
    }
    if (out != stdout && fclose(out) != 0 && rc == 0) rc = cli_data_error("%s: %s", a->pos[2], strerror(errno));
    tind_close(db);
    return rc;
}

/* ---- load ---------------------------------------------------------------------------- */

struct loader {
    FILE *in;
    const char *name; /* for messages */
    char *line;
    size_t cap;
    uint64_t lineno;
};

/* The next line without its newline: length, or -1 at the end of input. A
 * last line without a newline is a truncated dump. */
static ssize_t next_line(struct loader *l, int *unterminated)
{
    ssize_t n = getline(&l->line, &l->cap, l->in);
    *unterminated = 0;
    if (n < 0) return -1;
    l->lineno++;
    if (n > 0 && l->line[n - 1] == '\n') l->line[--n] = 0;
    else *unterminated = 1;
    return n;
}

/* One pass over the dump: checks it whole, and when b is set writes its
 * entries to ks in batches. Returns 0 or an exit status (message printed). */
static int load_pass(struct loader *l, tind_db *db, tind_keyspace *ks, uint64_t *entries)
{
    int unterminated, rc = 0;
    l->lineno = 0;
    ssize_t n = next_line(l, &unterminated);
    if (n < 0 || strcmp(l->line, DUMP_MAGIC) != 0 || unterminated)
        return cli_data_error("%s line 1: not a tind dump (expected \"%s\")", l->name, DUMP_MAGIC);
    n = next_line(l, &unterminated);
    if (n < 0 || strncmp(l->line, "keyspace ", 9) != 0 || unterminated)
        return cli_data_error("%s line 2: expected \"keyspace NAME\"", l->name);
    tind_batch *b = NULL;
    if (ks && tind_batch_new(&b) != TIND_OK) return cli_data_error("out of memory");
    size_t batch_bytes = 0;
    uint64_t count = 0;
    int ended = 0;
    char err[200];
    while ((n = next_line(l, &unterminated)) >= 0) {
        if (unterminated) {
            rc = cli_data_error("%s line %" PRIu64 ": the dump is cut short (no newline)", l->name, l->lineno);
            break;
        }
        if (ended) {
            rc = cli_data_error("%s line %" PRIu64 ": data after the end line", l->name, l->lineno);
            break;
        }
        if (!strncmp(l->line, "end ", 4)) {
            char *end;
            errno = 0;
            unsigned long long want = strtoull(l->line + 4, &end, 10);
            if (errno || *end || end == l->line + 4 || want != count) {
                rc = cli_data_error("%s line %" PRIu64 ": the end line says %s entries, the dump has %" PRIu64, l->name,
                                    l->lineno, l->line + 4, count);
                break;
            }
            ended = 1;
            continue;
        }
        char *tab = memchr(l->line, '\t', (size_t)n);
        if (!tab) {
            rc = cli_data_error("%s line %" PRIu64 ": no tab between key and value", l->name, l->lineno);
            break;
        }
        uint8_t *key = NULL, *val = NULL;
        size_t kl, vl;
        if (cli_parse_bytes(l->line, (size_t)(tab - l->line), 0, &key, &kl, err, sizeof err) ||
            cli_parse_bytes(tab + 1, (size_t)(n - (tab + 1 - l->line)), 0, &val, &vl, err, sizeof err)) {
            free(key);
            rc = cli_data_error("%s line %" PRIu64 ": %s", l->name, l->lineno, err);
            break;
        }
        if (kl == 0 || kl > TIND_MAX_KEY_BYTES) {
            free(key);
            free(val);
            rc = cli_data_error("%s line %" PRIu64 ": a key of %zu bytes (keys are 1 to %u)", l->name, l->lineno, kl,
                                TIND_MAX_KEY_BYTES);
            break;
        }
        int lrc = TIND_OK;
        if (b) {
            lrc = tind_batch_put(b, ks, key, kl, val, vl);
            batch_bytes += kl + vl;
            if (lrc == TIND_OK && (tind_batch_count(b) >= LOAD_BATCH_OPS || batch_bytes >= LOAD_BATCH_BYTES)) {
                lrc = tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED);
                tind_batch_clear(b);
                batch_bytes = 0;
            }
        }
        free(key);
        free(val);
        if (lrc) {
            rc = cli_lib_error(lrc, "load");
            break;
        }
        count++;
    }
    if (rc == 0 && ferror(l->in)) rc = cli_data_error("%s: %s", l->name, strerror(errno));
    if (rc == 0 && !ended) rc = cli_data_error("%s: the dump is cut short (no end line)", l->name);
    if (rc == 0 && b && tind_batch_count(b) > 0) {
        int lrc = tind_batch_commit(db, b, TIND_DURABILITY_BUFFERED);
        if (lrc) rc = cli_lib_error(lrc, "load");
    }
    tind_batch_free(b);
    *entries = count;
    return rc;
}

int cmd_load(const struct cli_args *a)
{
    struct loader l = {0};
    l.name = a->npos > 2 ? a->pos[2] : "standard input";
    int rc = 0;
    if (a->npos > 2) {
        if (!(l.in = fopen(a->pos[2], "rb"))) return cli_data_error("%s: %s", a->pos[2], strerror(errno));
    } else {
        /* Two passes need a seekable input: copy a pipe to a temporary file. */
        l.in = stdin;
        if (fseeko(stdin, 0, SEEK_SET) != 0) {
            FILE *tmp = tmpfile();
            if (!tmp) return cli_data_error("a temporary file: %s", strerror(errno));
            char buf[65536];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
                if (fwrite(buf, 1, n, tmp) != n) break;
            if (ferror(stdin) || ferror(tmp)) {
                fclose(tmp);
                return cli_data_error("copying standard input: %s", strerror(errno));
            }
            l.in = tmp;
        }
    }
    uint64_t entries = 0;
    /* First pass: check everything, write nothing. */
    if ((rc = load_pass(&l, NULL, NULL, &entries)) == 0) {
        tind_options o;
        tind_options_init(&o);
        o.create_if_missing = a->create;
        tind_db *db = NULL;
        tind_keyspace *ks;
        int lrc = tind_open(a->pos[0], &o, &db);
        if (lrc == TIND_NOT_FOUND)
            rc = cli_data_error("%s: no tind database there (TIND_NOT_FOUND; --create makes one)", a->pos[0]);
        else if (lrc)
            rc = cli_lib_error(lrc, a->pos[0]);
        else if ((rc = cli_open_keyspace(db, a->pos[1], a->create, &ks)) == 0) {
            rewind(l.in);
            rc = load_pass(&l, db, ks, &entries);
            int prc = rc ? TIND_OK : tind_persist(db, TIND_DURABILITY_SYNC_DATA);
            if (prc) rc = cli_lib_error(prc, "syncing the journal");
        }
        if (db) {
            int crc = tind_close(db);
            if (crc && !rc) rc = cli_lib_error(crc, "closing");
        }
        if (rc == 0) printf("loaded %" PRIu64 " entries into %s\n", entries, a->pos[1]);
    }
    free(l.line);
    if (l.in != stdin) fclose(l.in);
    return rc;
}
