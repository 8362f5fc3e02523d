/*
 * cmd_rekey.c — `ghostflow rekey`: re-encrypts the history under a new
 * passphrase. The current one comes as for every command (--key-file,
 * GHOSTFLOW_KEY, prompt); the new one from --new-key-file, else
 * GHOSTFLOW_NEW_KEY, else a no-echo prompt asked twice. Crash-safe: an
 * interruption leaves either passphrase working.
 *
 *   ghostflow rekey [--db FILE] [--key-file FILE] [--new-key-file FILE]
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "cli_key.h"
#include "flow_cli.h"

#define PROG "ghostflow rekey"

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow rekey [options]\n"
                 "\n"
                 "Re-encrypts the history database under a new passphrase.\n"
                 "\n"
                 "options:\n"
                 "      --new-key-file FILE   read the new passphrase from FILE (else\n"
                 "                            GHOSTFLOW_NEW_KEY, else a prompt, asked "
                 "twice)\n" FLOW_CLI_DB_HELP "  -h, --help                this help\n");
}

enum { OPT_NEW_KEY_FILE = 256 };

int cmd_rekey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"new-key-file", required_argument, NULL, OPT_NEW_KEY_FILE},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    const char *new_key_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        switch (c) {
        case OPT_NEW_KEY_FILE: new_key_file = optarg; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    int code;
    gf_service *svc = flow_cli_open_existing(PROG, argc, argv, optind, &db, false, &code);
    if (!svc)
        return code;
    char *key = NULL;
    size_t key_len = 0;
    code = CLI_EXIT_FAILURE;
    if (cli_key_read(PROG, new_key_file ? NULL : "GHOSTFLOW_NEW_KEY", new_key_file,
                     "New passphrase: ", true, &key, &key_len) == 0) {
        gf_status rc = gf_rekey(svc, key, key_len);
        cli_key_free(key, key_len);
        if (rc == GF_OK) {
            fprintf(stderr, "%s: the history is now encrypted under the new passphrase\n", PROG);
            code = CLI_EXIT_OK;
        } else {
            code = flow_cli_fail(PROG, svc, rc);
        }
    }
    gf_close(svc);
    return code;
}
