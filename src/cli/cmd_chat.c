/*
 * cmd_chat.c — `ghostflow chat`: an interactive conversation with a model,
 * every prompt and answer stored in the encrypted history as it happens.
 *
 *   ghostflow chat -m MODEL [--db FILE] [--key-file FILE] [--conversation ID]
 *                  [-n N] [--temp T] [--seed S] [-c CTX] [-t THREADS]
 *
 * Answers stream as they are generated. Lines starting with '/' are
 * commands: /new, /history, /help, /quit. Ctrl-C cancels the answer being
 * generated (the partial answer is stored as "cancelled") and returns to the
 * prompt; at the prompt it discards the line. End of input quits. Line
 * editing and recall come from libedit when the build found it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GF_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "cli.h"
#include "flow_cli.h"

#define PROG "ghostflow chat"

/* Read by the SIGINT handler: set before it is installed, cleared after it
 * is removed. */
static gf_service *volatile chat_svc;
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    gf_service *svc = chat_svc;
    if (svc)
        gf_cancel_all(svc); /* async-signal-safe; reaches prompt processing too */
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow chat -m MODEL [options]\n"
                 "\n"
                 "Interactive chat; every exchange is stored in the encrypted history.\n"
                 "Commands: /new /history /help /quit. Ctrl-C cancels the current answer.\n"
                 "\n"
                 "options:\n"
                 "  -m, --model FILE          GGUF model (required)\n"
                 "      --conversation ID     continue a stored conversation\n"
                 "  -n, --n-predict N         answer length limit in tokens (default 512)\n"
                 "      --temp T              temperature, 0 = greedy (default 0.7)\n"
                 "      --seed S              random seed (default: random, stored)\n"
                 "  -c, --ctx-size N          context window (default: the model's, at most 4096)\n"
                 "  -t, --threads N           threads (default: online CPUs)\n" FLOW_CLI_DB_HELP
                 "  -h, --help                this help\n");
}

static void chat_help(void)
{
    printf("  /new       start a new conversation\n"
           "  /history   show this conversation so far\n"
           "  /help      this list\n"
           "  /quit      leave (end of input, Ctrl-D, too)\n"
           "  Ctrl-C     cancel the answer being written\n");
}

/* One input line without its newline (caller frees), or NULL at end of
 * input. A Ctrl-C at the prompt gives NULL with `interrupted` set. */
static char *read_line(bool tty)
{
#ifdef GF_HAVE_LIBEDIT
    if (tty) {
        char *line = readline("> ");
        if (line && *line)
            add_history(line);
        return line;
    }
#endif
    if (tty) {
        fputs("> ", stdout);
        fflush(stdout);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        clearerr(stdin);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    return line;
}

static int on_piece(const char *piece, size_t len, void *user_data)
{
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return interrupted != 0 || cli_output_failed(stdout);
}

static int print_exchange(const gf_exchange *e, void *user_data)
{
    (void)user_data;
    flow_cli_print_exchange(stdout, e);
    return cli_output_failed(stdout);
}

/* One exchange; returns false when the history can no longer be written. */
static bool ask(gf_service *svc, int64_t *conversation, const char *prompt,
                const ghost_gen_params *gen)
{
    gf_result *res = NULL;
    interrupted = 0;
    gf_status rc = gf_process_prompt(svc, *conversation, prompt, gen, on_piece, NULL, &res);
    if (res)
        *conversation = res->conversation_id;
    fputc('\n', stdout);
    bool ok = true;
    if (rc == GF_ERR_CANCELLED)
        printf("[cancelled — the partial answer is stored]\n");
    else if (rc == GF_ERR_DATABASE || rc == GF_ERR_BUSY || rc == GF_ERR_NOMEM)
        ok = (flow_cli_fail(PROG, svc, rc), false);
    else if (rc != GF_OK)
        flow_cli_fail(PROG, svc, rc);
    gf_free_result(res);
    interrupted = 0;
    return ok;
}

static int chat_loop(gf_service *svc, int64_t conversation, const ghost_gen_params *gen)
{
    bool tty = isatty(STDIN_FILENO);
    for (;;) {
        interrupted = 0;
        char *line = read_line(tty);
        if (!line) {
            if (interrupted) { /* Ctrl-C at the prompt: a fresh line */
                fputc('\n', stdout);
                continue;
            }
            if (tty)
                fputc('\n', stdout);
            return CLI_EXIT_OK;
        }
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        bool go_on = true;
        if (*s == '\0') {
            /* nothing to send */
        } else if (strcmp(s, "/quit") == 0 || strcmp(s, "/exit") == 0) {
            go_on = false;
        } else if (strcmp(s, "/new") == 0) {
            conversation = GF_NEW_CONVERSATION;
            printf("(new conversation)\n");
        } else if (strcmp(s, "/help") == 0) {
            chat_help();
        } else if (strcmp(s, "/history") == 0) {
            if (conversation == GF_NEW_CONVERSATION) {
                printf("(nothing yet in this conversation)\n");
            } else {
                gf_status rc = gf_history(svc, conversation, 0, print_exchange, NULL);
                if (rc != GF_OK)
                    flow_cli_fail(PROG, svc, rc);
            }
        } else if (s[0] == '/') {
            printf("unknown command %s (try /help)\n", s);
        } else if (!ask(svc, &conversation, s, gen)) {
            free(line);
            return CLI_EXIT_FAILURE;
        }
        free(line);
        fflush(stdout);
        if (cli_output_failed(stdout))
            return CLI_EXIT_FAILURE; /* main says why */
        if (!go_on)
            return CLI_EXIT_OK;
    }
}

enum { OPT_CONVERSATION = 256, OPT_TEMP, OPT_SEED };

int cmd_chat(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"conversation", required_argument, NULL, OPT_CONVERSATION},
        {"n-predict", required_argument, NULL, 'n'},
        {"temp", required_argument, NULL, OPT_TEMP},
        {"seed", required_argument, NULL, OPT_SEED},
        {"ctx-size", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    gf_config cfg = gf_default_config();
    cfg.gen.max_tokens = 512;
    long conversation = 0, l;
    double d;
    int c;
    while ((c = getopt_long(argc, argv, "m:n:c:t:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        int bad = 0;
        switch (c) {
        case 'm': cfg.model_path = optarg; break;
        case OPT_CONVERSATION:
            bad = cli_parse_int(PROG, "--conversation", optarg, 1, LONG_MAX, &conversation);
            break;
        case 'n':
            bad = cli_parse_int(PROG, "-n", optarg, 1, INT32_MAX, &l);
            cfg.gen.max_tokens = (int32_t)l;
            break;
        case OPT_TEMP:
            bad = cli_parse_float(PROG, "--temp", optarg, 0, 100, &d);
            cfg.gen.temperature = (float)d;
            break;
        case OPT_SEED:
            bad = cli_parse_int(PROG, "--seed", optarg, 0, LONG_MAX, &l);
            cfg.gen.seed = (uint64_t)l;
            break;
        case 'c':
            bad = cli_parse_int(PROG, "-c", optarg, 16, 1L << 24, &l);
            cfg.context_params.n_ctx = (int32_t)l;
            break;
        case 't':
            bad = cli_parse_int(PROG, "-t", optarg, 1, 1024, &l);
            cfg.context_params.n_threads = (int32_t)l;
            break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    if (cli_check_model_only(PROG, usage, cfg.model_path, argc, argv) != 0)
        return CLI_EXIT_USAGE;
    int code;
    gf_service *svc = flow_cli_open(PROG, &db, &cfg, &code);
    if (!svc)
        return code;
    ghost_model_info info;
    if (ghost_model_get_info(gf_service_model(svc), &info) == GHOST_OK)
        printf("ghostflow chat — %s%s. /help for commands, /quit to leave.\n", info.name,
               info.chat_template ? "" : " (no chat template: plain continuation)");

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a Ctrl-C must interrupt a blocked read */
    chat_svc = svc;
    sigaction(SIGINT, &sa, &old);
    code = chat_loop(svc, conversation, &cfg.gen);
    sigaction(SIGINT, &old, NULL);
    chat_svc = NULL;
    gf_close(svc);
    return code;
}
