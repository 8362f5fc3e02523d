/*
 * cmd_serve.c — `ghostflow serve`: the OpenAI-compatible HTTP server
 * (src/server/, docs/server.md), every exchange stored in the encrypted
 * history.
 *
 *   ghostflow serve -m MODEL [--db FILE] [--key-file FILE] [--host ADDR]
 *                   [--port N] [--parallel N] [--queue N] [--ctx N]
 *                   [-t THREADS] [-n N] [--timeout S] [--max-body BYTES]
 *                   [--read-timeout S] [--min-rate BYTES] [--max-conn-per-client N]
 *                   [--api-key KEY] [--host-allow LIST] [--cors-origin LIST]
 *
 * Binds 127.0.0.1 by default. Prints "listening on http://HOST:PORT" on
 * stdout once ready (with --port 0 the port is the one the system chose: tests
 * and scripts read it there). SIGINT or SIGTERM stop it: running generations
 * are cancelled and stored as such.
 */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "flow_cli.h"
#include "server/server.h"

#define PROG        "ghostflow serve"
#define API_KEY_ENV "GHOSTFLOW_API_KEY"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ghostflow serve -m MODEL [options]\n"
        "\n"
        "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions,\n"
        "/v1/models, /health, /metrics, /tokenize, /detokenize, chat page at /).\n"
        "Every request and answer is stored in the encrypted history.\n"
        "\n"
        "options:\n"
        "  -m, --model FILE          GGUF model (required)\n"
        "      --host ADDR           address to bind (default 127.0.0.1)\n"
        "      --port N              port (default 8080; 0 = any free port)\n"
        "      --parallel N          slots generating at once (default 1)\n"
        "      --queue N             requests waiting for a slot before 503 (default 64)\n"
        "  -c, --ctx N               context window per slot (default: the model's, at\n"
        "                            most 4096)\n"
        "  -t, --threads N           threads of the slots' shared forward batch (default: CPUs)\n"
        "  -n, --n-predict N         default max_tokens (default -1: until the end of\n"
        "                            the answer or of the context window)\n"
        "      --timeout S           whole-request limit in seconds (default 600; fractions\n"
        "                            allowed)\n"
        "      --max-body BYTES      largest request body (default 1048576)\n"
        "      --read-timeout S      a request's headers must arrive within S seconds, and\n"
        "                            its body by then at --min-rate; a kept-alive\n"
        "                            connection waits that long for its next request\n"
        "                            (default 10; fractions allowed)\n"
        "      --min-rate BYTES      body bytes per second required after --read-timeout\n"
        "                            (default 1024)\n"
        "      --max-conn-per-client N  connections one client address may hold (default\n"
        "                            parallel + queue + 32, of parallel + queue + 64 in\n"
        "                            all; 0 = no limit)\n"
        "      --db-cache KIB        the history database's page cache (default 512:\n"
        "                            bounds the server's memory as the history grows)\n"
        "      --api-key KEY         require \"Authorization: Bearer KEY\" (also from\n"
        "                            " API_KEY_ENV "; prefer the environment)\n"
        "      --host-allow LIST     more names the Host header may give, comma-separated\n"
        "                            (NAME = this port, NAME:PORT; '*' = any). Always\n"
        "                            allowed: the bound address, localhost, 127.0.0.1\n"
        "                            and [::1] with this port\n"
        "      --cors-origin LIST    web origins (scheme://host[:port]) whose pages may call\n"
        "                            the API, comma-separated ('*' = any); requests\n"
        "                            with another Origin than the server's own get "
        "403\n" FLOW_CLI_DB_HELP
        "      --list-routes         print every endpoint (METHOD PATH public|key) and exit\n"
        "  -h, --help                this help\n");
}

/* The route table, one "METHOD PATH public|key" line each: what the tests
 * walk to check the API key on every protected route. */
static int list_routes(void)
{
    size_t n;
    const srv_route *r = srv_routes(&n);
    for (size_t i = 0; i < n; i++)
        printf("%s %s %s\n", r[i].method, r[i].path, r[i].public ? "public" : "key");
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_PARALLEL,
    OPT_QUEUE,
    OPT_TIMEOUT,
    OPT_MAX_BODY,
    OPT_READ_TIMEOUT,
    OPT_MIN_RATE,
    OPT_MAX_PER_CLIENT,
    OPT_API_KEY,
    OPT_DB_CACHE,
    OPT_HOST_ALLOW,
    OPT_CORS_ORIGIN,
    OPT_LIST_ROUTES
};

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"parallel", required_argument, NULL, OPT_PARALLEL},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"ctx", required_argument, NULL, 'c'},
        {"ctx-size", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"n-predict", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"read-timeout", required_argument, NULL, OPT_READ_TIMEOUT},
        {"min-rate", required_argument, NULL, OPT_MIN_RATE},
        {"max-conn-per-client", required_argument, NULL, OPT_MAX_PER_CLIENT},
        {"api-key", required_argument, NULL, OPT_API_KEY},
        {"db-cache", required_argument, NULL, OPT_DB_CACHE},
        {"host-allow", required_argument, NULL, OPT_HOST_ALLOW},
        {"cors-origin", required_argument, NULL, OPT_CORS_ORIGIN},
        {"list-routes", no_argument, NULL, OPT_LIST_ROUTES},
        {"help", no_argument, NULL, 'h'},
        FLOW_CLI_DB_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    flow_cli_db db = {0};
    gf_config cfg = gf_default_config();
    /* The history only grows while a server runs; a cache of zqlite's
     * default size would keep growing memory with it for hours. A server
     * only appends, and 128 pages hold the right edges of every B-tree it
     * writes: a larger cache measured no faster (bench/serve/memory.sh). */
    cfg.db_cache_kib = 512;
    srv_config sc = {.host = "127.0.0.1",
                     .port = 8080,
                     .parallel = 1,
                     .queue = 64,
                     .timeout_ms = 600000,
                     .max_body = 1 << 20,
                     .read_timeout_ms = 10000,
                     .min_rate = 1024,
                     .max_per_client = -1}; /* -1: srv_start's default */
    sc.gen = ghost_default_gen_params();
    sc.gen.max_tokens = -1;
    sc.context_params = ghost_default_params();
    const char *api_key = getenv(API_KEY_ENV);
    long l, threads = 0;
    double secs;
    int c;
    while ((c = getopt_long(argc, argv, "m:c:t:n:h", opts, NULL)) != -1) {
        if (flow_cli_db_option(&db, c, optarg))
            continue;
        int bad = 0;
        switch (c) {
        case 'm': cfg.model_path = optarg; break;
        case OPT_HOST: sc.host = optarg; break;
        case OPT_PORT:
            bad = cli_parse_int(PROG, "--port", optarg, 0, 65535, &l);
            sc.port = (uint16_t)l;
            break;
        case OPT_PARALLEL:
            bad = cli_parse_int(PROG, "--parallel", optarg, 1, 256, &l);
            sc.parallel = (int)l;
            break;
        case OPT_QUEUE:
            bad = cli_parse_int(PROG, "--queue", optarg, 0, 100000, &l);
            sc.queue = (int)l;
            break;
        case 'c':
            bad = cli_parse_int(PROG, "--ctx", optarg, 16, 1L << 24, &l);
            sc.context_params.n_ctx = (int32_t)l;
            break;
        case 't': bad = cli_parse_int(PROG, "-t", optarg, 1, 1024, &threads); break;
        case 'n':
            bad = cli_parse_int(PROG, "-n", optarg, -1, INT32_MAX, &l);
            sc.gen.max_tokens = (int32_t)l;
            break;
        case OPT_TIMEOUT:
            bad = cli_parse_float(PROG, "--timeout", optarg, 0.001, 86400, &secs);
            sc.timeout_ms = (int)ceil(secs * 1000);
            break;
        case OPT_MAX_BODY:
            bad = cli_parse_int(PROG, "--max-body", optarg, 1024, 1L << 30, &l);
            sc.max_body = (size_t)l;
            break;
        case OPT_READ_TIMEOUT:
            bad = cli_parse_float(PROG, "--read-timeout", optarg, 0.01, 3600, &secs);
            sc.read_timeout_ms = (int)ceil(secs * 1000);
            break;
        case OPT_MIN_RATE:
            bad = cli_parse_int(PROG, "--min-rate", optarg, 0, 1L << 30, &l);
            sc.min_rate = (size_t)l;
            break;
        case OPT_MAX_PER_CLIENT:
            bad = cli_parse_int(PROG, "--max-conn-per-client", optarg, 0, 1000000, &l);
            sc.max_per_client = (int)l;
            break;
        case OPT_API_KEY: api_key = optarg; break;
        case OPT_HOST_ALLOW: sc.host_allow = optarg; break;
        case OPT_CORS_ORIGIN: sc.cors_origin = optarg; break;
        case OPT_DB_CACHE:
            bad = cli_parse_int(PROG, "--db-cache", optarg, 64, 1L << 24, &l);
            cfg.db_cache_kib = (int32_t)l;
            break;
        case OPT_LIST_ROUTES: return list_routes();
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    if (cli_check_model_only(PROG, usage, cfg.model_path, argc, argv) != 0)
        return CLI_EXIT_USAGE;
    /* The name lists are checked now, as usage errors, not after the model
     * and the database are loaded (srv_start builds the same gate). */
    srv_gate probe;
    char gate_err[256];
    if (srv_gate_init(&probe, sc.host, sc.port, sc.max_body, sc.host_allow, sc.cors_origin, NULL,
                      gate_err, sizeof gate_err) != 0) {
        cli_error(PROG, "%s", gate_err);
        return CLI_EXIT_USAGE;
    }
    srv_gate_free(&probe);
    if (!threads) /* the slots share one forward batch: it gets every CPU */
        threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    sc.context_params.n_threads = (int32_t)threads;
    sc.api_key = api_key;

    /* The service loads the model once and records; the server's slots
     * generate with their own contexts (pool.c). */
    cfg.n_contexts = 0;
    int code;
    gf_service *svc = flow_cli_open(PROG, &db, &cfg, &code);
    if (!svc)
        return code;
    char *path_copy = strdup(cfg.model_path);
    sc.model_id = path_copy ? basename(path_copy) : "model";

    /* Signals are taken by sigwait below: block them before any thread starts
     * so every server thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    srv_server *srv = srv_start(svc, &sc, err, sizeof err);
    if (!srv) {
        cli_error(PROG, "%s", err);
        free(path_copy);
        gf_close(svc);
        return CLI_EXIT_FAILURE;
    }
    const char *h = sc.host;
    printf("listening on http://%s%s%s:%u\n", strchr(h, ':') ? "[" : "", h,
           strchr(h, ':') ? "]" : "", srv_port(srv));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "%s: %s, stopping\n", PROG, sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_stop(srv);
    free(path_copy);
    gf_close(svc);
    return CLI_EXIT_OK;
}
