/*
 * zqlite_main.c — the `zqlite` shell: sqlite3's command-line shell for
 * encrypted databases.
 *
 *   zqlite [options] DB [SQL...]
 *
 * SQL comes from the arguments or, without them, from stdin (a prompt when
 * stdin is a terminal). Rows print like sqlite3's list mode: columns joined
 * by '|', NULL as an empty string. The key comes from $ZQLITE_KEY,
 * --key-file, or a no-echo prompt — never from the command line. Lines that
 * start with '.' (outside a statement) are dot-commands: .tables .schema
 * .rekey .export-plain .import-plain .quit .help.
 *
 * Output that cannot be written (a full disk, /dev/full) ends the session:
 * the results of what follows would be lost too. Exit status: 0 success,
 * 1 a statement or command failed or the output could not be written,
 * 2 usage error, 3 wrong key.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_key.h"
#include "zqlite.h"

#define PROG "zqlite"

typedef struct shell {
    zqlite_db *db;
    const char *path;
    const char *key_file;
    const char *separator;
    bool header;
    bool bail;
    bool quit;
    int failures;
    zqlite_open_options opts;
} shell;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zqlite [options] DB [SQL...]\n"
            "Runs SQL on an encrypted (or, with --plain, ordinary) SQLite database.\n"
            "SQL comes from the arguments, else from stdin.\n"
            "\n"
            "The key is read from $ZQLITE_KEY, else from --key-file, else prompted for\n"
            "without echo. \"x'<64 hex digits>'\" is a raw 256-bit key; anything else is a\n"
            "passphrase (Argon2id).\n"
            "\n"
            "options:\n"
            "  -k, --key-file FILE    read the key from the first line of FILE\n"
            "  -p, --plain            open an unencrypted SQLite database (no key)\n"
            "      --header           print column names before the rows\n"
            "  -s, --separator SEP    column separator (default '|')\n"
            "  -b, --bail             stop at the first error\n"
            "      --kdf-ops N        Argon2id passes for a new database (default 3, at most %u)\n"
            "      --kdf-mem MIB      Argon2id memory in MiB for a new database (default 64, at "
            "most %u)\n"
            "      --page-size N      page size of a new database (default 4096)\n"
            "  -h, --help             this help\n"
            "  -V, --version          print the version\n"
            "\n"
            "dot-commands (on a line of their own):\n"
            "  .tables                list tables and views\n"
            "  .schema [NAME]         print CREATE statements\n"
            "  .rekey                 re-encrypt under a new key ($ZQLITE_NEW_KEY or prompt)\n"
            "  .export-plain FILE     write an unencrypted copy to FILE\n"
            "  .import-plain FILE     copy a plain SQLite database into this (empty) one\n"
            "  .quit                  exit\n"
            "  .help                  list dot-commands\n"
            "\n"
            "exit status: 0 ok, 1 an error, 2 usage error, 3 wrong key\n",
            (unsigned)ZQLITE_KDF_MAX_OPSLIMIT, (unsigned)(ZQLITE_KDF_MAX_MEMLIMIT >> 20));
}

static void report(shell *sh)
{
    cli_error(PROG, "%s", zqlite_errmsg(sh->db));
    sh->failures++;
    if (sh->bail)
        sh->quit = true;
}

/* After writing rows: true when stdout has failed, which ends the session
 * (main's cli_output_close says why). */
static bool output_lost(shell *sh)
{
    if (!cli_output_failed(stdout))
        return false;
    sh->failures++;
    sh->quit = true;
    return true;
}

/* ---- running SQL ----------------------------------------------------------- */

static void print_row(shell *sh, zqlite_stmt *st, int n, bool names)
{
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(sh->separator, stdout);
        if (names) {
            fputs(zqlite_column_name(st, i), stdout);
        } else if (zqlite_column_type(st, i) != ZQLITE_NULL) {
            /* Text and blobs byte for byte, numbers as SQLite renders them. */
            const char *t = zqlite_column_text(st, i);
            fwrite(t, 1, zqlite_column_bytes(st, i), stdout);
        }
    }
    fputc('\n', stdout);
}

static void run_sql(shell *sh, const char *sql)
{
    const char *tail = sql;
    while (!sh->quit && tail && *tail) {
        zqlite_stmt *st = zqlite_prepare_next(sh->db, tail, &tail);
        if (!st) {
            if (zqlite_errcode(sh->db) != ZQLITE_OK)
                report(sh);
            return;
        }
        int n = zqlite_column_count(st), rc, rows = 0;
        bool lost = false;
        while (!lost && (rc = zqlite_step(st)) == ZQLITE_ROW) {
            if (sh->header && rows++ == 0)
                print_row(sh, st, n, true);
            print_row(sh, st, n, false);
            lost = output_lost(sh);
        }
        if (!lost && rc != ZQLITE_DONE)
            report(sh);
        zqlite_finalize(st);
        if (lost || rc != ZQLITE_DONE)
            return;
    }
}

/* ---- dot-commands ---------------------------------------------------------- */

static void dot_query(shell *sh, const char *sql, const char *arg)
{
    zqlite_stmt *st = zqlite_prepare_statement(sh->db, sql);
    if (!st) {
        report(sh);
        return;
    }
    if (arg && zqlite_bind_text(st, 1, arg, -1) != ZQLITE_OK)
        report(sh);
    int rc;
    bool lost = false;
    while (!lost && (rc = zqlite_step(st)) == ZQLITE_ROW) {
        printf("%s\n", zqlite_column_text(st, 0));
        lost = output_lost(sh);
    }
    if (!lost && rc != ZQLITE_DONE)
        report(sh);
    zqlite_finalize(st);
}

static void dot_rekey(shell *sh)
{
    char *key = NULL;
    size_t len = 0;
    if (cli_key_read(PROG, "ZQLITE_NEW_KEY", NULL, "New passphrase: ", true, &key, &len) != 0) {
        sh->failures++;
        return;
    }
    if (zqlite_rekey(sh->db, key, len, &sh->opts) != ZQLITE_OK)
        report(sh);
    cli_key_free(key, len);
}

static void dot_command(shell *sh, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r\n", &save);
    char *arg = strtok_r(NULL, " \t\r\n", &save);
    char *extra = strtok_r(NULL, " \t\r\n", &save);
    bool wants_file = strcmp(cmd, ".export-plain") == 0 || strcmp(cmd, ".import-plain") == 0;
    if ((wants_file && (!arg || extra)) || (!wants_file && strcmp(cmd, ".schema") != 0 && arg) ||
        (strcmp(cmd, ".schema") == 0 && extra)) {
        cli_error(PROG, "%s: wrong arguments (see .help)", cmd);
        sh->failures++;
        return;
    }
    if (strcmp(cmd, ".quit") == 0 || strcmp(cmd, ".exit") == 0)
        sh->quit = true;
    else if (strcmp(cmd, ".help") == 0)
        usage(stdout);
    else if (strcmp(cmd, ".tables") == 0)
        dot_query(sh,
                  "SELECT name FROM sqlite_schema WHERE type IN ('table','view') "
                  "AND name NOT LIKE 'sqlite_%' ORDER BY 1",
                  NULL);
    else if (strcmp(cmd, ".schema") == 0)
        dot_query(sh,
                  arg ? "SELECT sql || ';' FROM sqlite_schema WHERE sql IS NOT NULL "
                        "AND (name = ?1 OR tbl_name = ?1) ORDER BY rowid"
                      : "SELECT sql || ';' FROM sqlite_schema WHERE sql IS NOT NULL "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
                  arg);
    else if (strcmp(cmd, ".rekey") == 0)
        dot_rekey(sh);
    else if (strcmp(cmd, ".export-plain") == 0) {
        if (zqlite_export_plain(sh->db, arg) != ZQLITE_OK)
            report(sh);
    } else if (strcmp(cmd, ".import-plain") == 0) {
        if (zqlite_import_plain(sh->db, arg) != ZQLITE_OK)
            report(sh);
    } else {
        cli_error(PROG, "unknown command '%s' (see .help)", cmd);
        sh->failures++;
        if (sh->bail)
            sh->quit = true;
    }
}

/* ---- input ----------------------------------------------------------------- */

/* Reads stdin line by line: dot-commands when no statement is pending, SQL
 * run whenever the buffer holds complete statements. */
static void run_stdin(shell *sh)
{
    bool interactive = isatty(STDIN_FILENO);
    char *line = NULL, *buf = NULL;
    size_t line_cap = 0, len = 0, cap = 0;
    ssize_t n;
    for (;;) {
        if (interactive) {
            fputs(len ? "   ...> " : "zqlite> ", stdout);
            fflush(stdout);
        }
        if ((n = getline(&line, &line_cap, stdin)) < 0 || sh->quit)
            break;
        if (len == 0 && line[strspn(line, " \t")] == '.') {
            dot_command(sh, line + strspn(line, " \t"));
            if (sh->quit)
                break;
            continue;
        }
        if (len + (size_t)n + 1 > cap) {
            size_t ncap = (len + (size_t)n + 1) * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                cli_error(PROG, "out of memory reading stdin");
                sh->failures++;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, line, (size_t)n + 1);
        len += (size_t)n;
        if (zqlite_complete(buf)) {
            run_sql(sh, buf);
            len = 0;
            if (sh->quit)
                break;
        }
    }
    if (len && buf[strspn(buf, " \t\r\n")] && !sh->quit)
        run_sql(sh, buf); /* a last statement without ';' */
    free(line);
    free(buf);
}

static int open_db(shell *sh, bool plain)
{
    if (plain) {
        sh->db = zqlite_open_v2(sh->path, NULL, 0, &sh->opts);
    } else {
        char *key = NULL;
        size_t len = 0;
        bool is_new = access(sh->path, F_OK) != 0 && strcmp(sh->path, ":memory:") != 0;
        if (cli_key_read(PROG, "ZQLITE_KEY", sh->key_file,
                         is_new ? "New database passphrase: " : "Passphrase: ", is_new, &key,
                         &len) != 0)
            return CLI_EXIT_FAILURE;
        sh->db = zqlite_open_v2(sh->path, key, len, &sh->opts);
        cli_key_free(key, len);
    }
    if (sh->db)
        return CLI_EXIT_OK;
    cli_error(PROG, "%s", zqlite_errmsg(NULL));
    return zqlite_errcode(NULL) == ZQLITE_WRONG_KEY ? CLI_EXIT_WRONG_KEY : CLI_EXIT_FAILURE;
}

static int shell_main(int argc, char **argv)
{
    enum { OPT_HEADER = 256, OPT_KDF_OPS, OPT_KDF_MEM, OPT_PAGE_SIZE };
    static const struct option longopts[] = {{"key-file", required_argument, NULL, 'k'},
                                             {"plain", no_argument, NULL, 'p'},
                                             {"header", no_argument, NULL, OPT_HEADER},
                                             {"separator", required_argument, NULL, 's'},
                                             {"bail", no_argument, NULL, 'b'},
                                             {"kdf-ops", required_argument, NULL, OPT_KDF_OPS},
                                             {"kdf-mem", required_argument, NULL, OPT_KDF_MEM},
                                             {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    shell sh = {.separator = "|", .opts = zqlite_default_open_options()};
    bool plain = false;
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "+k:ps:bhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': sh.key_file = optarg; break;
        case 'p': plain = true; break;
        case OPT_HEADER: sh.header = true; break;
        case 's': sh.separator = optarg; break;
        case 'b': sh.bail = true; break;
        case OPT_KDF_OPS:
            if (cli_parse_int(PROG, "--kdf-ops", optarg, 1, ZQLITE_KDF_MAX_OPSLIMIT, &v) != 0)
                return CLI_EXIT_USAGE;
            sh.opts.kdf_opslimit = (uint64_t)v;
            break;
        case OPT_KDF_MEM:
            if (cli_parse_int(PROG, "--kdf-mem", optarg, 1, ZQLITE_KDF_MAX_MEMLIMIT >> 20, &v) != 0)
                return CLI_EXIT_USAGE;
            sh.opts.kdf_memlimit = (size_t)v * 1024 * 1024;
            break;
        case OPT_PAGE_SIZE:
            if (cli_parse_int(PROG, "--page-size", optarg, 512, 65536, &v) != 0)
                return CLI_EXIT_USAGE;
            if (v & (v - 1)) {
                cli_error(PROG, "--page-size: %ld is not a power of two", v);
                return CLI_EXIT_USAGE;
            }
            sh.opts.page_size = (int)v;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case 'V': printf("zqlite %s\n", zqlite_version()); return CLI_EXIT_OK;
        default: fprintf(stderr, "Try 'zqlite --help'.\n"); return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error(PROG, "missing DB argument");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (plain && sh.key_file) {
        cli_error(PROG, "--plain and --key-file exclude each other");
        return CLI_EXIT_USAGE;
    }
    sh.path = argv[optind++];
    int rc = open_db(&sh, plain);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (optind < argc) {
        for (int i = optind; i < argc && !sh.quit; i++) {
            char *arg = argv[i];
            if (arg[strspn(arg, " \t")] == '.') {
                char *copy = strdup(arg);
                if (!copy) {
                    cli_error(PROG, "out of memory");
                    sh.failures++;
                    break;
                }
                dot_command(&sh, copy + strspn(copy, " \t"));
                free(copy);
            } else {
                run_sql(&sh, arg);
            }
        }
    } else {
        run_stdin(&sh);
    }
    if (zqlite_close(sh.db) != ZQLITE_OK) {
        cli_error(PROG, "%s: close failed", sh.path);
        sh.failures++;
    }
    return sh.failures ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    return cli_output_close(PROG, stdout, "output", shell_main(argc, argv));
}
