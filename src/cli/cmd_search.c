/*
 * cmd_search.c — `ghostflow search TEXT`: stored exchanges whose prompt or
 * answer contains every word of TEXT (full-text search with FTS5, or a
 * substring match when this system's SQLite has no FTS5 — said on stderr).
 *
 *   ghostflow search [--limit N] [--json] [--db FILE] [--key-file FILE] TEXT...
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flow_cli.h"

#define PROG "ghostflow search"

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow search [options] TEXT...\n"
                 "\n"
                 "Finds stored exchanges whose prompt or answer contains every word of TEXT\n"
                 "(words match as prefixes: 'elep' finds 'elephant'), best match first.\n"
                 "\n"
                 "options:\n"
                 "  -n, --limit N             at most N results (default 20, 0 = all)\n"
                 "      --json                JSON output\n" FLOW_CLI_DB_HELP
                 "  -h, --help                this help\n");
}

/* The remaining arguments joined by spaces (caller frees), or NULL. */
static char *join_args(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

enum { OPT_JSON = 256 };

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    flow_cli_listing l = {.what = "exchanges"};
    long limit = 20;
    int c;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        switch (c) {
        case 'n':
            if (cli_parse_int(PROG, "--limit", optarg, 0, LONG_MAX, &limit) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: l.json = true; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    if (optind >= argc) {
        cli_error(PROG, "missing TEXT to search for");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *text = join_args(argc - optind, argv + optind);
    if (!text) {
        cli_error(PROG, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    gf_config cfg = gf_default_config();
    cfg.create = false;
    cfg.read_only = true; /* read-only media, other users' files */
    int code;
    gf_service *svc = flow_cli_open(PROG, &db, &cfg, &code);
    if (!svc) {
        free(text);
        return code;
    }
    if (!gf_service_has_fts(svc))
        fprintf(stderr,
                "%s: note: this system's SQLite has no FTS5; using a slower substring"
                " match (ASCII-only case folding)\n",
                PROG);
    code = CLI_EXIT_FAILURE;
    if (flow_cli_listing_begin(PROG, &l) == 0) {
        gf_status rc = gf_search(svc, text, limit, flow_cli_listing_add, &l);
        code = flow_cli_listing_end(PROG, svc, rc, &l);
    }
    gf_close(svc);
    free(text);
    return code;
}
