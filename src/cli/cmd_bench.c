/*
 * cmd_bench.c — `ghostflow bench`: llama-bench's measurements for our
 * engine, so the two tables compare line by line (bench/compare-llama.sh
 * puts them side by side).
 *
 *   ghostflow bench -m MODEL [-m MODEL ...] [-p 128] [-n 64] [-t 1,2] [-r 5]
 *                   [-o md|csv] [--no-bandwidth] [--kv-f32]
 *
 * For each model and thread count: pp<p> and tg<n> in tokens/s (mean ±
 * sample stddev over the repetitions, after one warm-up). With the memory
 * bandwidth probe (default), tg rows also say how close generation came to
 * the bandwidth limit: read bandwidth / weight bytes per token. The footer
 * gives the bandwidth and the peak RSS of the process.
 *
 * Exit codes: 0 done, 1 a model failed to load or run, 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "llm/model.h"
#include "llm/tools.h"

#define PROG        "ghostflow bench"
#define MAX_MODELS  16
#define MAX_THREADS 8
/* Below this many weight bytes per token the % of bandwidth is not shown. */
#define BW_MIN_WEIGHTS ((uint64_t)64 << 20)

typedef struct bench_opts {
    const char *models[MAX_MODELS];
    int n_models;
    int threads[MAX_THREADS];
    int n_threads;
    bench_params bp;
    bool csv, bandwidth;
} bench_opts;

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow bench -m MODEL [options]\n"
                 "\n"
                 "Measures prompt processing (pp: one batch of P tokens) and generation (tg: N\n"
                 "tokens one by one) like llama-bench: random tokens, empty cache per run, one\n"
                 "warm-up, mean +- stddev of tokens/s over the repetitions.\n"
                 "\n"
                 "options:\n"
                 "  -m, --model FILE       GGUF model (repeat for several)\n"
                 "  -p, --n-prompt P       prompt tokens, 0 = skip pp (default 128)\n"
                 "  -n, --n-gen N          generated tokens, 0 = skip tg (default 64)\n"
                 "  -t, --threads T[,T..]  thread counts (default 2)\n"
                 "  -r, --repetitions R    timed runs per test (default 5)\n"
                 "  -o, --output md|csv    table format (default md)\n"
                 "      --no-bandwidth     skip the memory bandwidth probe\n"
                 "      --kv-f32           F32 KV cache instead of F16\n"
                 "  -h, --help             this help\n");
}

static int parse_threads(bench_opts *o, const char *arg)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", arg);
    o->n_threads = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (o->n_threads == MAX_THREADS) {
            cli_error(PROG, "--threads: at most %d values", MAX_THREADS);
            return -1;
        }
        if (cli_parse_int(PROG, "--threads", tok, 1, 256, &v) != 0)
            return -1;
        o->threads[o->n_threads++] = (int)v;
    }
    if (o->n_threads == 0) {
        cli_error(PROG, "--threads: no value in '%s'", arg);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"n-prompt", required_argument, NULL, 'p'},
        {"n-gen", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"repetitions", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"no-bandwidth", no_argument, NULL, 'B'},
        {"kv-f32", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (bench_opts){.threads = {2},
                      .n_threads = 1,
                      .bandwidth = true,
                      .bp = {.n_prompt = 128, .n_gen = 64, .reps = 5, .kv_f16 = true}};
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:n:t:r:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (o->n_models == MAX_MODELS) {
                cli_error(PROG, "at most %d models", MAX_MODELS);
                return CLI_EXIT_USAGE;
            }
            o->models[o->n_models++] = optarg;
            break;
        case 'p':
        case 'n':
            if (cli_parse_int(PROG, c == 'p' ? "--n-prompt" : "--n-gen", optarg, 0, 65536, &v) != 0)
                return CLI_EXIT_USAGE;
            *(c == 'p' ? &o->bp.n_prompt : &o->bp.n_gen) = (int32_t)v;
            break;
        case 't':
            if (parse_threads(o, optarg) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'r':
            if (cli_parse_int(PROG, "--repetitions", optarg, 1, 1000, &v) != 0)
                return CLI_EXIT_USAGE;
            o->bp.reps = (int32_t)v;
            break;
        case 'o':
            if (strcmp(optarg, "md") != 0 && strcmp(optarg, "csv") != 0) {
                cli_error(PROG, "--output: '%s' is not md or csv", optarg);
                return CLI_EXIT_USAGE;
            }
            o->csv = strcmp(optarg, "csv") == 0;
            break;
        case 'B': o->bandwidth = false; break;
        case 'K': o->bp.kv_f16 = false; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_error(PROG, "unexpected argument '%s' (see --help)", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (o->n_models == 0) {
        cli_error(PROG, "no model: give one with -m (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (o->bp.n_prompt == 0 && o->bp.n_gen == 0) {
        cli_error(PROG, "nothing to measure: -p and -n are both 0");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static void print_header(const bench_opts *o)
{
    if (o->csv) {
        printf("model,size_bytes,params,isa,n_threads,test,n_prompt,n_gen,avg_ts,stddev_ts,"
               "avg_ms,weight_bytes_per_token,read_gbs,bw_limit_ts,bw_pct\n");
        return;
    }
    printf("| %-30s | %10s | %8s | %-11s | %7s | %7s | %18s | %6s |\n", "model", "size", "params",
           "isa", "threads", "test", "t/s", "% bw");
    printf("| %.30s | %.9s: | %.7s: | %.11s | %.6s: | %.6s: | %.17s: | %.5s: |\n",
           "------------------------------", "----------", "--------", "-----------", "-------",
           "-------", "------------------", "------");
}

/* One table row: a pp or tg test. limit_ts > 0 adds the bandwidth share. */
static void print_row(const bench_opts *o, const char *model, const ghost_model_info *info,
                      const char *isa, int threads, bool pp, const bench_stat *s, uint64_t wbytes,
                      double read_gbs, double limit_ts)
{
    char test[32];
    snprintf(test, sizeof test, "%s%d", pp ? "pp" : "tg", pp ? o->bp.n_prompt : o->bp.n_gen);
    /* weights that fit in the caches are not read from memory: no limit applies */
    double pct = !pp && limit_ts > 0 && wbytes >= BW_MIN_WEIGHTS ? 100.0 * s->mean / limit_ts : 0.0;
    if (o->csv) {
        printf("%s,%llu,%llu,%s,%d,%s,%d,%d,%.4f,%.4f,%.4f,%llu,%.3f,%.3f,%.2f\n", model,
               (unsigned long long)info->file_size, (unsigned long long)info->n_params, isa,
               threads, test, pp ? o->bp.n_prompt : 0, pp ? 0 : o->bp.n_gen, s->mean, s->stddev,
               s->mean_ms, (unsigned long long)wbytes, read_gbs, pp ? 0.0 : limit_ts, pct);
        return;
    }
    char size[32], params[32], ts[48], bw[16] = "";
    snprintf(size, sizeof size, "%.2f MiB", (double)info->file_size / (1024.0 * 1024.0));
    if (info->n_params >= 1000000000ull)
        snprintf(params, sizeof params, "%.2f B", (double)info->n_params / 1e9);
    else
        snprintf(params, sizeof params, "%.2f M", (double)info->n_params / 1e6);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", s->mean, s->stddev);
    if (pct > 0)
        snprintf(bw, sizeof bw, "%.0f %%", pct);
    /* "±" is two bytes but one column: pad by one more */
    printf("| %-30.30s | %10s | %8s | %-11s | %7d | %7s | %19s | %6s |\n", model, size, params, isa,
           threads, test, ts, bw);
}

typedef struct model_result {
    const char *path;
    ghost_model_info info; /* strings unused after the model is freed */
    uint64_t wbytes;
    bench_result r[MAX_THREADS];
} model_result;

static int bench_one(const bench_opts *o, const char *path, model_result *mr)
{
    ghost_model *m = ghost_model_load(path);
    if (m == NULL) {
        cli_error(PROG, "%s", ghost_errmsg(NULL));
        return CLI_EXIT_FAILURE;
    }
    mr->path = path;
    ghost_model_get_info(m, &mr->info);
    mr->wbytes = bench_weight_bytes_per_token(m);
    for (int i = 0; i < o->n_threads; i++) {
        bench_params bp = o->bp;
        bp.n_threads = o->threads[i];
        if (bench_model(m, &bp, &mr->r[i]) != GHOST_OK) {
            cli_error(PROG, "%s: %s", path, ghost_errmsg(NULL));
            ghost_model_free(m);
            return CLI_EXIT_FAILURE;
        }
    }
    ghost_model_free(m);
    return CLI_EXIT_OK;
}

static void print_model(const bench_opts *o, const model_result *mr, const char *isa,
                        const bench_bandwidth *bw)
{
    for (int i = 0; i < o->n_threads; i++) {
        double read = o->bandwidth ? bw[i].read_gbs : 0.0;
        double limit = read > 0 ? read * 1e9 / (double)mr->wbytes : 0.0;
        if (o->bp.n_prompt > 0)
            print_row(o, base_name(mr->path), &mr->info, isa, o->threads[i], true, &mr->r[i].pp,
                      mr->wbytes, read, limit);
        if (o->bp.n_gen > 0)
            print_row(o, base_name(mr->path), &mr->info, isa, o->threads[i], false, &mr->r[i].tg,
                      mr->wbytes, read, limit);
    }
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    const quant_kernels *k = quant_kernels_best();
    char isa[16];
    snprintf(isa, sizeof isa, "%s%s", quant_isa_name(k->isa), k->has_vnni ? "+vnni" : "");
    static model_result results[MAX_MODELS];
    for (int i = 0; i < o.n_models; i++) {
        if ((rc = bench_one(&o, o.models[i], &results[i])) != CLI_EXIT_OK)
            return rc;
        fprintf(stderr, "%s: measured %s\n", PROG, o.models[i]);
    }
    /* peak RSS before the bandwidth probe's buffers count */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    bench_bandwidth bw[MAX_THREADS] = {{0, 0}};
    for (int i = 0; o.bandwidth && i < o.n_threads; i++) {
        /* 256 MiB per buffer: far past any last-level cache */
        if (bench_memory_bandwidth(o.threads[i], (size_t)256 << 20, &bw[i]) != GHOST_OK) {
            cli_error(PROG, "bandwidth probe: %s", ghost_errmsg(NULL));
            return CLI_EXIT_FAILURE;
        }
    }
    print_header(&o);
    for (int i = 0; i < o.n_models; i++)
        print_model(&o, &results[i], isa, bw);
    FILE *foot = o.csv ? stderr : stdout;
    if (!o.csv)
        fputc('\n', foot);
    for (int i = 0; i < o.n_models; i++)
        fprintf(foot, "%s: %.1f MB of weights read per generated token\n",
                base_name(results[i].path), (double)results[i].wbytes / 1e6);
    for (int i = 0; o.bandwidth && i < o.n_threads; i++)
        fprintf(foot, "memory bandwidth, %d thread%s: read %.1f GB/s, copy %.1f GB/s\n",
                o.threads[i], o.threads[i] == 1 ? "" : "s", bw[i].read_gbs, bw[i].copy_gbs);
    fprintf(foot, "peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return CLI_EXIT_OK;
}
