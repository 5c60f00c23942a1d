/* tind: look inside a tind database and work on it from the shell.
 * Dispatch, argument parsing and the help texts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/cli.h"

struct command {
    const char *name;
    int (*run)(const struct cli_args *a);
    int opts;          /* CLI_OPT_* it accepts */
    int min_pos, max_pos;
    const char *usage; /* after "tind " */
    const char *help;  /* what it does and prints; options */
};

static const struct command commands[] = {
    {"info", cmd_info, CLI_OPT_JSON, 1, 1, "info DIR [--json]",
     "Shows the database: its format version, last sequence number, journals, disk usage\n"
     "and, per keyspace, its options, tables and bytes per level and memtable size.\n"
     "Opens the database read-only.\n"},
    {"get", cmd_get, CLI_OPT_HEX | CLI_OPT_JSON, 3, 3, "get DIR KEYSPACE KEY [--hex] [--json]",
     "Prints the value of KEY. Exits 1 when the key has no value.\n"
     "Opens the database read-only.\n"},
    {"put", cmd_put, CLI_OPT_HEX | CLI_OPT_CREATE, 4, 4, "put DIR KEYSPACE KEY VALUE [--hex] [--create]",
     "Writes KEY -> VALUE and syncs the journal. --create creates the keyspace (and the\n"
     "database) when missing; without it a missing one is an error.\n"},
    {"delete", cmd_delete, CLI_OPT_HEX, 3, 3, "delete DIR KEYSPACE KEY [--hex]",
     "Deletes KEY (deleting an absent key succeeds) and syncs the journal.\n"},
    {"scan", cmd_scan, CLI_OPT_HEX | CLI_OPT_JSON | CLI_OPT_SCAN, 2, 2,
     "scan DIR KEYSPACE [--prefix P] [--from A] [--to B] [--reverse] [--limit N] [--keys-only] [--hex] [--json]",
     "Prints the live keys in order, one \"KEY<TAB>VALUE\" line each (escaped).\n"
     "  --prefix P   only keys that start with P\n"
     "  --from A     from key A (inclusive)\n"
     "  --to B       up to key B (exclusive)\n"
     "  --reverse    last key first\n"
     "  --limit N    at most N keys\n"
     "  --keys-only  keys without values\n"
     "Opens the database read-only.\n"},
    {"dump", cmd_dump, 0, 2, 3, "dump DIR KEYSPACE [FILE]",
     "Writes every live key and value of the keyspace to FILE (default: standard output) in\n"
     "the tind dump format (src/cli/README.md; man tind), which holds any bytes.\n"
     "Opens the database read-only.\n"},
    {"load", cmd_load, CLI_OPT_CREATE, 2, 3, "load DIR KEYSPACE [FILE] [--create]",
     "Reads a dump from FILE (default: standard input) and writes its keys into the keyspace\n"
     "(keys already there and not in the dump stay). The whole dump is checked before\n"
     "anything is written. --create creates the keyspace (and the database) when missing.\n"},
    {"table", cmd_table, CLI_OPT_HEX | CLI_OPT_JSON | CLI_OPT_ENTRIES, 1, 1, "table FILE [--entries] [--hex] [--json]",
     "Shows a table file: footer, properties, index, bloom filter (size, bits per key,\n"
     "probes) and each data block's size and compression ratio. --entries lists every\n"
     "entry with its sequence number and kind. Reads the file alone: no lock is taken.\n"},
    {"journal", cmd_journal, CLI_OPT_HEX | CLI_OPT_JSON | CLI_OPT_ENTRIES, 1, 1,
     "journal FILE [--entries] [--hex] [--json]",
     "Shows a journal file: its header, then each record's offset, size, checksum, type,\n"
     "sequence numbers, operation count and keyspaces. --entries lists every operation.\n"
     "Exits 1 at a damaged record, naming its offset. Reads the file alone.\n"},
    {"manifest", cmd_manifest, CLI_OPT_HEX | CLI_OPT_JSON, 2, 2, "manifest DIR KEYSPACE [--hex] [--json]",
     "Shows a keyspace's manifest: every record kept in it (the snapshot that starts it and\n"
     "the edits since), then the current version, level by level. KEYSPACE is a name or\n"
     "a keyspace number. Reads the files alone: no lock is taken.\n"},
    {"verify", cmd_verify, CLI_OPT_JSON, 1, 1, "verify DIR [--json]",
     "Checks every checksum of every file (tables, manifests, options, journals) and the\n"
     "manifests' invariants. Exits 1 on any damage, naming the file and offset.\n"
     "Opens the database read-only.\n"},
    {"compact", cmd_compact, CLI_OPT_PROGRESS, 1, 2, "compact DIR [KEYSPACE] [--progress|--no-progress]",
     "Compacts one keyspace, or every keyspace, into one sorted run each. On a terminal a\n"
     "progress bar on stderr shows the bytes written of the bytes to merge; --progress\n"
     "draws it anywhere, --no-progress never.\n"},
    {"stats", cmd_stats, CLI_OPT_JSON, 1, 1, "stats DIR [--json]",
     "Shows the database's statistics: per keyspace its tables, pending compaction bytes,\n"
     "compaction, flush and stall counters, and the block cache's. The counters count since\n"
     "the database was opened, which this command does itself (read-only): they show what\n"
     "opening it took, while the shape (tables, bytes, pending work) is the database's.\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char common_help[] =
    "Keys and values are printed as text: printable ASCII as is, a backslash as \\\\ and any\n"
    "other byte as \\xNN; --hex prints (and reads) them as hex digits instead. Arguments\n"
    "accept the same escapes, plus \\n \\r \\t \\0. --json prints one JSON document.\n"
    "Exit status: 0 success, 1 a data error (not found, corruption, busy, I/O), 2 a usage error.\n";

static void print_usage(FILE *f)
{
    fprintf(f, "usage: tind COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  tind %s\n", commands[i].usage);
    fprintf(f, "  tind help [COMMAND]\n  tind version\n\n%s", common_help);
    fprintf(f, "Run 'tind COMMAND --help' for a command's details, 'man tind' for the formats.\n");
}

static void print_command_help(const struct command *c)
{
    printf("usage: tind %s\n\n%s\n%s", c->usage, c->help, common_help);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* The value of an option: "--name=value" or "--name value". */
static int option_value(int argc, char **argv, int *i, const char *arg, size_t nlen, const char **out)
{
    if (arg[nlen] == '=') {
        *out = arg + nlen + 1;
        return 0;
    }
    if (*i + 1 >= argc) return cli_usage_error("option %.*s needs a value", (int)nlen, arg);
    *out = argv[++*i];
    return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long r = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = r;
    return 0;
}

/* Parses the arguments after the command name into a. */
static int parse_args(const struct command *c, int argc, char **argv, struct cli_args *a)
{
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == 0) {
            if (a->npos >= CLI_MAX_ARGS || a->npos >= c->max_pos)
                return cli_usage_error("too many arguments (usage: tind %s)", c->usage);
            a->pos[a->npos++] = s;
            continue;
        }
        if (!strcmp(s, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            a->help = 1;
            continue;
        }
        size_t nlen = strcspn(s, "=");
#define IS(name) (nlen == strlen(name) && !strncmp(s, name, nlen))
#define FLAG(name, bit, field)                                                                   \
    if (IS(name) && (c->opts & (bit))) {                                                         \
        if (s[nlen]) return cli_usage_error("option %s takes no value", name);                   \
        a->field = 1;                                                                            \
        continue;                                                                                \
    }
        FLAG("--hex", CLI_OPT_HEX, hex)
        FLAG("--json", CLI_OPT_JSON, json)
        FLAG("--reverse", CLI_OPT_SCAN, reverse)
        FLAG("--keys-only", CLI_OPT_SCAN, keys_only)
        FLAG("--entries", CLI_OPT_ENTRIES, entries)
        FLAG("--create", CLI_OPT_CREATE, create)
        FLAG("--progress", CLI_OPT_PROGRESS, progress)
        FLAG("--no-progress", CLI_OPT_PROGRESS, no_progress)
#undef FLAG
        if ((c->opts & CLI_OPT_SCAN) && (IS("--prefix") || IS("--from") || IS("--to") || IS("--limit"))) {
            const char *v = NULL;
            if (option_value(argc, argv, &i, s, nlen, &v)) return EXIT_USAGE;
            if (IS("--prefix")) a->prefix = v;
            else if (IS("--from")) a->from = v;
            else if (IS("--to")) a->to = v;
            else if (parse_u64(v, &a->limit)) return cli_usage_error("--limit %s is not a number", v);
            else a->has_limit = 1;
            continue;
        }
#undef IS
        return cli_usage_error("unknown option %s (usage: tind %s)", s, c->usage);
    }
    if (a->help) return 0;
    if (a->npos < c->min_pos) return cli_usage_error("missing arguments (usage: tind %s)", c->usage);
    if (a->progress && a->no_progress) return cli_usage_error("--progress and --no-progress contradict");
    if (a->prefix && !*a->prefix) return cli_usage_error("--prefix needs at least one byte");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        if (argc > 3) {
            cli_cmd = "help";
            return cli_usage_error("usage: tind help [COMMAND]");
        }
        if (argc == 3) {
            const struct command *c = find_command(argv[2]);
            cli_cmd = "help";
            if (!c) return cli_usage_error("no command named %s (run 'tind help')", argv[2]);
            print_command_help(c);
            return 0;
        }
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(name, "version") || !strcmp(name, "--version")) {
        printf("tind %s\n", tind_version());
        return 0;
    }
    const struct command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "tind: no command named %s (run 'tind help')\n", name);
        return EXIT_USAGE;
    }
    cli_cmd = c->name;
    struct cli_args a;
    memset(&a, 0, sizeof a);
    a.cmd = c->name;
    int rc = parse_args(c, argc - 2, argv + 2, &a);
    if (rc) return rc;
    if (a.help) {
        print_command_help(c);
        return 0;
    }
    rc = c->run(&a);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == 0) rc = cli_data_error("writing the output failed: %s", strerror(errno));
    }
    return rc;
}
