/*
 * cmd_run.c — `ghostflow run`: generate a continuation of a prompt with a
 * GGUF model, streaming the text to stdout as it forms.
 *
 *   ghostflow run -m MODEL [-n N] [--temp T] [--seed S] [--top-k K]
 *                 [--top-p P] [--min-p P] [--repeat-penalty R] [-t THREADS]
 *                 [-c CTX] "prompt"        ("-" reads the prompt from stdin)
 *
 * stderr gets the load time, resident memory after load, and prompt and
 * generation speeds. Ctrl-C stops the generation (the text so far stays).
 * Exit codes: 0 done, 1 model or generation failure, 2 usage error.
 */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "flow_cli.h"
#include "ghostllm.h"

#define PROG "ghostflow run"

static ghost_context *volatile running_ctx;

static void on_sigint(int sig)
{
    (void)sig;
    ghost_context *ctx = running_ctx;
    if (ctx != NULL)
        ghost_context_cancel(ctx); /* async-signal-safe */
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ghostflow run -m MODEL [options] PROMPT\n"
            "\n"
            "Generates a continuation of PROMPT (\"-\" reads it from stdin) and streams it to\n"
            "stdout; timings go to stderr.\n"
            "\n"
            "options:\n"
            "  -m, --model FILE          GGUF model (required)\n"
            "  -n, --n-predict N         tokens to generate at most, -1 = until the context\n"
            "                            is full (default 2048)\n"
            "  -c, --ctx-size N          context window in tokens (default: the model's, at\n"
            "                            most 4096)\n"
            "  -t, --threads N           threads (default: online CPUs)\n"
            "      --temp T              temperature, 0 = greedy (default 0.7)\n"
            "      --seed S              random seed (default: random)\n"
            "      --top-k K             0 = off (default 40)\n"
            "      --top-p P             1 = off (default 0.95)\n"
            "      --min-p P             0 = off (default 0.05)\n"
            "      --repeat-penalty R    1 = off (default 1.0)\n"
            "  -h, --help                this help\n"
            "With --db, the prompt and the answer are also stored in that encrypted\n"
            "history database (created if missing):\n" FLOW_CLI_DB_HELP);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Resident set size in MiB from /proc/self/status, or -1. */
static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    double kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib / 1024.0;
}

/* The whole of stdin as a NUL-terminated string (caller frees), or NULL. */
static char *read_stdin(void)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len - 1, stdin);
        if (feof(stdin) || ferror(stdin))
            break;
        char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf == NULL || ferror(stdin)) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int on_piece(const char *piece, size_t len, void *user_data)
{
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return cli_output_failed(stdout); /* nobody can read the rest: stop (main says why) */
}

static double per_second(int n, double ms)
{
    return ms > 0 ? n * 1000.0 / ms : 0.0;
}

enum { OPT_TEMP = 256, OPT_SEED, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT_PENALTY };

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"n-predict", required_argument, NULL, 'n'},
        {"ctx-size", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"temp", required_argument, NULL, OPT_TEMP},
        {"seed", required_argument, NULL, OPT_SEED},
        {"top-k", required_argument, NULL, OPT_TOP_K},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"min-p", required_argument, NULL, OPT_MIN_P},
        {"repeat-penalty", required_argument, NULL, OPT_REPEAT_PENALTY},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0}; /* --db: store the exchange */
    const char *model_path = NULL;
    ghost_params params = ghost_default_params();
    ghost_gen_params *gp = &params.gen;
    long l;
    double d;
    int c;
    while ((c = getopt_long(argc, argv, "m:n:c:t:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        int bad = 0;
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'n':
            bad = cli_parse_int(PROG, "-n", optarg, -1, INT32_MAX, &l);
            gp->max_tokens = (int32_t)l;
            break;
        case 'c':
            bad = cli_parse_int(PROG, "-c", optarg, 1, 1L << 24, &l);
            params.n_ctx = (int32_t)l;
            break;
        case 't':
            bad = cli_parse_int(PROG, "-t", optarg, 1, 1024, &l);
            params.n_threads = (int32_t)l;
            break;
        case OPT_TEMP:
            bad = cli_parse_float(PROG, "--temp", optarg, 0, 100, &d);
            gp->temperature = (float)d;
            break;
        case OPT_SEED:
            bad = cli_parse_int(PROG, "--seed", optarg, 0, __LONG_MAX__, &l);
            gp->seed = (uint64_t)l;
            break;
        case OPT_TOP_K:
            bad = cli_parse_int(PROG, "--top-k", optarg, 0, INT32_MAX, &l);
            gp->top_k = (int32_t)l;
            break;
        case OPT_TOP_P:
            bad = cli_parse_float(PROG, "--top-p", optarg, 1e-6, 1, &d);
            gp->top_p = (float)d;
            break;
        case OPT_MIN_P:
            bad = cli_parse_float(PROG, "--min-p", optarg, 0, 1, &d);
            gp->min_p = (float)d;
            break;
        case OPT_REPEAT_PENALTY:
            bad = cli_parse_float(PROG, "--repeat-penalty", optarg, 1e-3, 100, &d);
            gp->repeat_penalty = (float)d;
            break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    if (model_path == NULL) {
        cli_error(PROG, "-m MODEL is required");
        return CLI_EXIT_USAGE;
    }
    if (optind + 1 != argc) {
        cli_error(PROG, optind == argc ? "a PROMPT argument is required (\"-\" reads stdin)"
                                       : "expected one PROMPT argument (quote it)");
        return CLI_EXIT_USAGE;
    }
    char *from_stdin = NULL;
    const char *prompt = argv[optind];
    if (strcmp(prompt, "-") == 0) {
        if ((prompt = from_stdin = read_stdin()) == NULL) {
            cli_error(PROG, "cannot read the prompt from stdin");
            return CLI_EXIT_FAILURE;
        }
    }

    const double t0 = now_ms();
    ghost_model *model = ghost_model_load(model_path);
    if (model == NULL) {
        cli_error(PROG, "%s", ghost_errmsg(NULL));
        free(from_stdin);
        return CLI_EXIT_FAILURE;
    }
    ghost_context *ctx = ghost_context_new(model, &params);
    if (ctx == NULL) {
        cli_error(PROG, "%s", ghost_errmsg(NULL));
        ghost_model_free(model);
        free(from_stdin);
        return CLI_EXIT_FAILURE;
    }
    fprintf(stderr, "load: %.1f ms, resident %.1f MiB\n", now_ms() - t0, rss_mib());

    gf_service *svc = NULL;
    int64_t conversation = 0, prompt_id = 0;
    if (db.db_path) {
        /* A concrete seed, so the stored exchange can be replayed. */
        while (gp->seed == GHOST_SEED_RANDOM)
            randombytes_buf(&gp->seed, sizeof gp->seed);
        gf_config cfg = gf_default_config();
        cfg.model_path = model_path;
        cfg.model = model;
        cfg.n_contexts = 0; /* this command generates; the service only records */
        int code;
        svc = flow_cli_open(PROG, &db, &cfg, &code);
        gf_status st =
            svc ? gf_log_prompt(svc, GF_NEW_CONVERSATION, prompt, gp, &conversation, &prompt_id)
                : GF_OK;
        if (!svc || st != GF_OK) {
            if (svc)
                code = flow_cli_fail(PROG, svc, st);
            gf_close(svc);
            ghost_free_context(ctx);
            ghost_model_free(model);
            free(from_stdin);
            return code;
        }
    }

    running_ctx = ctx;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    ghost_response *r = ghost_generate_ex(ctx, prompt, gp, on_piece, NULL);
    sigaction(SIGINT, &old, NULL);
    running_ctx = NULL;

    int rc = CLI_EXIT_OK;
    if (r == NULL) {
        cli_error(PROG, "out of memory");
        rc = CLI_EXIT_FAILURE;
    } else {
        if (r->completion_tokens > 0)
            fputc('\n', stdout);
        fflush(stdout); /* the text ends before the statistics, even in one pipe */
        fprintf(stderr, "prompt: %d tokens (%d cached) in %.1f ms, %.1f t/s\n", r->prompt_tokens,
                r->cached_tokens, r->prompt_ms,
                per_second(r->prompt_tokens - r->cached_tokens, r->prompt_ms));
        fprintf(stderr, "generation: %d tokens in %.1f ms, %.1f t/s\n", r->completion_tokens,
                r->generation_ms, per_second(r->completion_tokens, r->generation_ms));
        if (r->error_code != GHOST_OK && r->error_code != GHOST_ERR_CANCELLED) {
            cli_error(PROG, "%s",
                      r->error_message ? r->error_message : ghost_strerror(r->error_code));
            rc = CLI_EXIT_FAILURE;
        }
    }
    if (svc && r) {
        gf_status st = gf_log_response(svc, prompt_id, r);
        if (st != GF_OK)
            rc = flow_cli_fail(PROG, svc, st);
        else
            fprintf(stderr, "stored: conversation %lld, exchange %lld\n", (long long)conversation,
                    (long long)prompt_id);
    }
    gf_close(svc);
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(model);
    free(from_stdin);
    return rc;
}
