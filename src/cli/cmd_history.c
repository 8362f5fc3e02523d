/*
 * cmd_history.c — `ghostflow history`: the stored exchanges, oldest first
 * (the last N, of one conversation or of all), or the list of conversations.
 *
 *   ghostflow history [--conversation ID] [--limit N] [--conversations] [--json]
 *                     [--db FILE] [--key-file FILE]
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "flow_cli.h"

#define PROG "ghostflow history"

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow history [options]\n"
                 "\n"
                 "Shows stored prompts with their answers, oldest first.\n"
                 "\n"
                 "options:\n"
                 "      --conversation ID     only this conversation\n"
                 "  -n, --limit N             the last N exchanges (default 20, 0 = all)\n"
                 "      --conversations       list conversations instead\n"
                 "      --json                JSON output\n" FLOW_CLI_DB_HELP
                 "  -h, --help                this help\n");
}

static int add_conversation(const gf_conversation *c, void *ud)
{
    flow_cli_listing *l = ud;
    char created[40], updated[40];
    l->count++;
    if (!l->json) {
        printf("%6lld  %s  %4lld exchanges  %s%s%s\n", (long long)c->id,
               flow_cli_local_time(c->updated_at_ms, updated, sizeof updated),
               (long long)c->n_exchanges, c->label ? "[" : "", c->label ? c->label : "",
               c->label ? "] " : "");
        if (c->title[0])
            printf("        %s\n", c->title);
        return cli_output_failed(stdout);
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "id", (double)c->id) &&
              (c->label ? cJSON_AddStringToObject(o, "label", c->label) != NULL
                        : cJSON_AddNullToObject(o, "label") != NULL) &&
              cJSON_AddStringToObject(o, "title", c->title) &&
              cJSON_AddStringToObject(
                  o, "created_at", flow_cli_iso_time(c->created_at_ms, created, sizeof created)) &&
              cJSON_AddStringToObject(
                  o, "updated_at", flow_cli_iso_time(c->updated_at_ms, updated, sizeof updated)) &&
              cJSON_AddNumberToObject(o, "exchanges", (double)c->n_exchanges) &&
              cJSON_AddItemToArray(l->array, o);
    if (!ok) {
        cJSON_Delete(o);
        l->oom = true;
        return 1;
    }
    return 0;
}

enum { OPT_CONVERSATION = 256, OPT_CONVERSATIONS, OPT_JSON };

int cmd_history(int argc, char **argv)
{
    static const struct option opts[] = {
        {"conversation", required_argument, NULL, OPT_CONVERSATION},
        {"conversations", no_argument, NULL, OPT_CONVERSATIONS},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    long conversation = 0, limit = 20;
    bool conversations = false;
    flow_cli_listing l = {.what = "exchanges"};
    int c;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        switch (c) {
        case OPT_CONVERSATION:
            if (cli_parse_int(PROG, "--conversation", optarg, 1, LONG_MAX, &conversation) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_CONVERSATIONS:
            conversations = true;
            l.what = "conversations";
            break;
        case 'n':
            if (cli_parse_int(PROG, "--limit", optarg, 0, LONG_MAX, &limit) != 0)
                return CLI_EXIT_USAGE;
            break;
        case OPT_JSON: l.json = true; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    int code;
    gf_service *svc = flow_cli_open_existing(PROG, argc, argv, optind, &db, true, &code);
    if (!svc)
        return code;
    if (flow_cli_listing_begin(PROG, &l) != 0) {
        gf_close(svc);
        return CLI_EXIT_FAILURE;
    }
    gf_status rc = conversations ? gf_conversations(svc, limit, add_conversation, &l)
                                 : gf_history(svc, conversation, limit, flow_cli_listing_add, &l);
    code = flow_cli_listing_end(PROG, svc, rc, &l);
    gf_close(svc);
    return code;
}
