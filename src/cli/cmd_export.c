/*
 * cmd_export.c — `ghostflow export`: the history in plain text, as JSON
 * Lines (one exchange object per line, the format of history --json) or as
 * Markdown (one section per conversation). The output is NOT encrypted: a
 * file given with -o is created with mode 0600.
 *
 *   ghostflow export [--format jsonl|markdown] [--conversation ID] [-o FILE]
 *                    [--db FILE] [--key-file FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "flow_cli.h"

#define PROG "ghostflow export"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ghostflow export [options]\n"
        "\n"
        "Writes the history in plain text (NOT encrypted), oldest first.\n"
        "\n"
        "options:\n"
        "  -f, --format FORMAT       jsonl (default) or markdown\n"
        "      --conversation ID     only this conversation\n"
        "  -o, --output FILE         write to FILE (mode 0600) instead of stdout\n" FLOW_CLI_DB_HELP
        "  -h, --help                this help\n");
}

typedef struct export_state {
    FILE *out;
    bool failed;
} export_state;

static int write_jsonl(const gf_exchange *e, void *ud)
{
    export_state *st = ud;
    cJSON *o = flow_cli_exchange_json(e);
    bool ok = o && flow_cli_print_json(PROG, st->out, o, true) && !cli_output_failed(st->out);
    cJSON_Delete(o);
    if (!ok) {
        st->failed = true;
        return 1;
    }
    return 0;
}

static int write_markdown(const gf_exchange *e, void *ud)
{
    export_state *st = ud;
    char when[40];
    fprintf(st->out, "**You** (%s)\n\n%s\n\n",
            flow_cli_local_time(e->created_at_ms, when, sizeof when), e->prompt);
    const char *model = e->model_name[0] ? e->model_name : "assistant";
    if (!e->answered) {
        fprintf(st->out, "**%s**: *(no answer: the program stopped during the generation)*\n\n",
                model);
    } else {
        fprintf(st->out, "**%s** (%s, %d tokens)\n\n%s\n\n", model,
                gf_finish_reason_name(e->finish_reason), e->completion_tokens, e->response);
        if (e->error)
            fprintf(st->out, "*error: %s*\n\n", e->error);
    }
    st->failed = cli_output_failed(st->out);
    return st->failed;
}

/* Conversation ids and titles, collected first: listing callbacks may not
 * call back into the service. */
typedef struct conv_item {
    int64_t id;
    char *title;
} conv_item;

typedef struct conv_list {
    conv_item *item;
    size_t n, cap;
    bool oom;
} conv_list;

static int collect_conversation(const gf_conversation *c, void *ud)
{
    conv_list *l = ud;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 16;
        conv_item *item = realloc(l->item, ncap * sizeof *item);
        if (!item) {
            l->oom = true;
            return 1;
        }
        l->item = item;
        l->cap = ncap;
    }
    char *title = strdup(c->title);
    if (!title) {
        l->oom = true;
        return 1;
    }
    l->item[l->n++] = (conv_item){c->id, title};
    return 0;
}

static int cmp_conv(const void *a, const void *b)
{
    int64_t x = ((const conv_item *)a)->id, y = ((const conv_item *)b)->id;
    return x < y ? -1 : x > y;
}

static gf_status export_markdown(gf_service *svc, int64_t only, export_state *st)
{
    conv_list l = {0};
    gf_status rc = gf_conversations(svc, 0, collect_conversation, &l);
    if (rc == GF_OK && l.oom)
        rc = GF_ERR_NOMEM;
    if (rc == GF_OK) {
        qsort(l.item, l.n, sizeof *l.item, cmp_conv); /* oldest conversation first */
        fprintf(st->out, "# ghostflow history\n\n");
    }
    for (size_t i = 0; rc == GF_OK && !st->failed && i < l.n; i++) {
        if (only && l.item[i].id != only)
            continue;
        fprintf(st->out, "## Conversation %lld%s%s\n\n", (long long)l.item[i].id,
                l.item[i].title[0] ? ": " : "", l.item[i].title);
        rc = gf_history(svc, l.item[i].id, 0, write_markdown, st);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.item[i].title);
    free(l.item);
    return rc;
}

enum { OPT_CONVERSATION = 256 };

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"conversation", required_argument, NULL, OPT_CONVERSATION},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    bool markdown = false;
    long conversation = 0;
    const char *output = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        switch (c) {
        case 'f':
            if (strcmp(optarg, "jsonl") == 0) {
                markdown = false;
            } else if (strcmp(optarg, "markdown") == 0 || strcmp(optarg, "md") == 0) {
                markdown = true;
            } else {
                cli_error(PROG, "--format: '%s' is not jsonl or markdown", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_CONVERSATION:
            if (cli_parse_int(PROG, "--conversation", optarg, 1, LONG_MAX, &conversation) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'o': output = optarg; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    int code;
    gf_service *svc = flow_cli_open_existing(PROG, argc, argv, optind, &db, true, &code);
    if (!svc)
        return code;
    export_state st = {stdout, false};
    if (output) {
        int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        st.out = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!st.out) {
            cli_error(PROG, "%s: %s", output, strerror(errno));
            if (fd >= 0)
                close(fd);
            gf_close(svc);
            return CLI_EXIT_FAILURE;
        }
    }
    gf_status rc = markdown ? export_markdown(svc, conversation, &st)
                            : gf_history(svc, conversation, 0, write_jsonl, &st);
    if (rc == GF_ERR_NOMEM)
        code = (cli_error(PROG, "out of memory"), CLI_EXIT_FAILURE);
    else if (rc != GF_OK)
        code = flow_cli_fail(PROG, svc, rc);
    else
        code = st.failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    if (output) /* stdout is checked by main */
        code = cli_output_close(PROG, st.out, output, code);
    gf_close(svc);
    return code;
}
