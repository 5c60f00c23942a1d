/* The tind command-line tool: what its files share.
 *
 *   main.c      dispatch, argument parsing, help texts
 *   escape.c    printing and parsing keys and values (escapes, hex), errors
 *   json.c      a small streaming JSON writer
 *   db_cmds.c   commands on an open database: info, get, put, delete, scan,
 *               stats, verify
 *   compact.c   compact and its progress bar
 *   dump.c      dump and load (the format is in src/cli/README.md)
 *   file_cmds.c commands on files: table, journal, manifest
 *
 * Exit statuses: 0 success, 1 a data error (not found, corruption, busy, I/O),
 * 2 a usage error. Every failure prints one line on stderr. */
#ifndef TIND_CLI_H
#define TIND_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tind.h"

#define EXIT_DATA 1
#define EXIT_USAGE 2

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* A parsed command line: the positional arguments and the options given. */
#define CLI_MAX_ARGS 8
struct cli_args {
    const char *cmd;
    const char *pos[CLI_MAX_ARGS];
    int npos;
    int hex, json, help;
    int reverse, keys_only, entries, create, progress, no_progress;
    const char *prefix, *from, *to; /* escaped text (or hex with --hex) */
    uint64_t limit;                 /* 0: no limit */
    int has_limit;
};

/* One command: its name, the options it takes (a bit mask of CLI_OPT_*),
 * how many positional arguments, its handler and its help. */
enum {
    CLI_OPT_HEX = 1 << 0,
    CLI_OPT_JSON = 1 << 1,
    CLI_OPT_SCAN = 1 << 2,   /* --prefix --from --to --reverse --limit --keys-only */
    CLI_OPT_ENTRIES = 1 << 3,
    CLI_OPT_CREATE = 1 << 4,
    CLI_OPT_PROGRESS = 1 << 5,
};

/* ---- errors (escape.c) ----------------------------------------------------------- */

/* The command being run, for messages ("tind: get: ..."). */
extern const char *cli_cmd;
/* Prints "tind: CMD: message" on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* Prints "tind: CMD: message" on stderr; returns EXIT_DATA. */
int cli_data_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* Prints "tind: CMD: what: <last error> (TIND_CODE)" for a failed library
 * call, with the busy case spelled out; returns EXIT_DATA. */
int cli_lib_error(int rc, const char *what);
/* "TIND_BUSY" and so on. */
const char *cli_code_name(int rc);

/* ---- keys and values (escape.c) ---------------------------------------------------- */

/* Writes p[n] as text: printable ASCII as is except '\\' (written "\\\\"),
 * everything else as \xNN; or as lowercase hex when hex is set. */
void cli_print_bytes(FILE *f, const void *p, size_t n, int hex);
/* Parses text written that way (hex: pairs of hex digits; else \\, \xNN, \n,
 * \r, \t, \0 and plain bytes) into a malloc'd buffer *out of *n bytes (never
 * NULL). 0, or -1 with a message in err[cap] on a malformed escape. */
int cli_parse_bytes(const char *text, size_t len, int hex, uint8_t **out, size_t *n, char *err, size_t cap);

/* ---- JSON (json.c) ------------------------------------------------------------------ */

/* A streaming writer on stdout: objects and arrays nest, commas are placed. */
void json_begin_object(const char *key);   /* key NULL inside an array or at the top */
void json_end_object(void);
void json_begin_array(const char *key);
void json_end_array(void);
void json_str(const char *key, const char *s);
void json_bytes(const char *key, const void *p, size_t n, int hex); /* escaped text as a JSON string */
void json_u64(const char *key, uint64_t v);
void json_i64(const char *key, int64_t v);
void json_double(const char *key, double v);
void json_bool(const char *key, int v);
void json_null(const char *key);
/* Ends the document with a newline. */
void json_finish(void);

/* ---- database helpers (db_cmds.c) -------------------------------------------------- */

/* Opens DIR read-only or read-write; on failure prints the error and returns
 * EXIT_DATA (busy, not found, corruption named as such). */
int cli_open_db(const char *dir, int read_only, tind_db **db);
/* Opens an existing keyspace (create: create it when missing, read-write
 * only). Prints and returns EXIT_DATA when absent. */
int cli_open_keyspace(tind_db *db, const char *name, int create, tind_keyspace **ks);

/* ---- commands ------------------------------------------------------------------------ */

int cmd_info(const struct cli_args *a);
int cmd_get(const struct cli_args *a);
int cmd_put(const struct cli_args *a);
int cmd_delete(const struct cli_args *a);
int cmd_scan(const struct cli_args *a);
int cmd_stats(const struct cli_args *a);
int cmd_compact(const struct cli_args *a);
int cmd_verify(const struct cli_args *a);
int cmd_dump(const struct cli_args *a);
int cmd_load(const struct cli_args *a);
int cmd_table(const struct cli_args *a);
int cmd_journal(const struct cli_args *a);
int cmd_manifest(const struct cli_args *a);

#endif
