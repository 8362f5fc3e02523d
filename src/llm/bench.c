/*
 * bench.c — timing for `ghostflow bench`, measured the way llama-bench
 * measures so the two tables compare:
 *
 *   pp<N>  one batch of N random tokens into an empty KV cache (only the last
 *          token's logits are computed), t/s = N / time
 *   tg<N>  N random tokens decoded one at a time from an empty cache, each
 *          with its logits, t/s = N / time
 *
 * One untimed warm-up (a whole pp, one tg token) pages the weights in and
 * starts the threads; the mean and sample standard deviation of t/s are over
 * the timed repetitions. Tokens are random so that EOS or sampling can never
 * shorten a run.
 *
 * The bandwidth probe streams a buffer much larger than the caches: reading
 * is what decoding does with the weights, so read bandwidth divided by the
 * weight bytes per token is the generation speed limit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_internal.h"
#include "model.h"
#include "threadpool.h"
#include "tools.h"

/* Prompt tokens per forward_batch call, like llama.cpp's default ubatch. */
#define BENCH_UBATCH 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rng_next(uint64_t *s)
{
    /* xorshift64*: any fixed sequence will do, it only has to avoid one token */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

typedef struct bench_run {
    const ghost_model *m;
    fwd_state *fs;
    kv_cache kv;
    fwd_item *items;
    float *logits;
    uint64_t rng;
} bench_run;

static ghost_status run_prompt(bench_run *b, int32_t n)
{
    for (int32_t done = 0; done < n;) {
        int32_t k = n - done < BENCH_UBATCH ? n - done : BENCH_UBATCH;
        for (int32_t i = 0; i < k; i++)
            b->items[i] = (fwd_item){(int32_t)(rng_next(&b->rng) % (uint32_t)b->m->hp.n_vocab),
                                     done + i, &b->kv, NULL};
        if (done + k == n)
            b->items[k - 1].logits = b->logits;
        ghost_status st = forward_batch(b->fs, b->items, k);
        if (st != GHOST_OK)
            return st;
        done += k;
    }
    return GHOST_OK;
}

static ghost_status run_gen(bench_run *b, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        fwd_item it = {(int32_t)(rng_next(&b->rng) % (uint32_t)b->m->hp.n_vocab), i, &b->kv,
                       b->logits};
        ghost_status st = forward_batch(b->fs, &it, 1);
        if (st != GHOST_OK)
            return st;
    }
    return GHOST_OK;
}

typedef ghost_status (*bench_step)(bench_run *b, int32_t n);

/* Warm-up with warm tokens, then reps timed runs of n tokens. */
static ghost_status measure(bench_run *b, bench_step step, int32_t n, int32_t warm, int32_t reps,
                            bench_stat *out)
{
    memset(out, 0, sizeof *out);
    if (n <= 0)
        return GHOST_OK;
    ghost_status st = step(b, warm);
    if (st != GHOST_OK)
        return st;
    double sum = 0, sum2 = 0, ms = 0;
    for (int32_t r = 0; r < reps; r++) {
        double t0 = now_s();
        st = step(b, n);
        double dt = now_s() - t0;
        if (st != GHOST_OK)
            return st;
        double tps = (double)n / dt;
        sum += tps;
        sum2 += tps * tps;
        ms += dt * 1e3;
    }
    out->mean = sum / reps;
    out->mean_ms = ms / reps;
    out->stddev = reps > 1 ? sqrt(fmax(0.0, (sum2 - sum * sum / reps) / (reps - 1))) : 0.0;
    return GHOST_OK;
}

ghost_status bench_model(const ghost_model *m, const bench_params *p, bench_result *r)
{
    if (m == NULL || p == NULL || r == NULL || p->n_prompt < 0 || p->n_gen < 0 ||
        p->n_threads < 1 || p->reps < 1)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "bench: need a model, n_prompt/n_gen >= 0, threads and reps >= 1");
    memset(r, 0, sizeof *r);
    int32_t n_ctx = p->n_prompt > p->n_gen ? p->n_prompt : p->n_gen;
    if (n_ctx < 1)
        n_ctx = 1;
    int32_t n_batch = p->n_prompt < BENCH_UBATCH ? p->n_prompt : BENCH_UBATCH;
    if (n_batch < 1)
        n_batch = 1;
    bench_run b = {.m = m, .rng = 0x9E3779B97F4A7C15ULL};
    ghost_status st = kv_cache_init(&b.kv, &m->hp, n_ctx, p->kv_f16);
    if (st != GHOST_OK)
        return st;
    b.items = calloc((size_t)n_batch, sizeof *b.items);
    b.logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    if (b.items == NULL || b.logits == NULL) {
        st = ghost_set_error(GHOST_ERR_NOMEM, "bench: out of memory");
        goto out;
    }
    b.fs = fwd_state_create(m, n_batch, n_ctx, p->n_threads);
    if (b.fs == NULL) {
        st = ghost_thread_errcode() != GHOST_OK ? ghost_thread_errcode() : GHOST_ERR_NOMEM;
        goto out;
    }
    st = measure(&b, run_prompt, p->n_prompt, p->n_prompt, p->reps, &r->pp);
    if (st == GHOST_OK)
        st = measure(&b, run_gen, p->n_gen, 1, p->reps, &r->tg);
out:
    fwd_state_destroy(b.fs);
    free(b.items);
    free(b.logits);
    kv_cache_free(&b.kv);
    return st;
}

static uint64_t matrix_bytes(const model_matrix *w)
{
    return (uint64_t)w->row_bytes * (uint64_t)w->n_out;
}

uint64_t bench_weight_bytes_per_token(const ghost_model *m)
{
    const model_hparams *hp = &m->hp;
    uint64_t n = matrix_bytes(&m->w.output) + m->w.token_embd.row_bytes;
    n += (uint64_t)(2 * hp->n_layer + 1) * (uint64_t)hp->n_embd * sizeof(float); /* norms */
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *L = &m->w.layers[il];
        const model_matrix *ws[] = {&L->wq,       &L->wk,     &L->wv,      &L->wo,
                                    &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            n += matrix_bytes(ws[i]);
    }
    return n;
}

/* ---- memory bandwidth ---------------------------------------------------------- */

typedef uint64_t v2u64 __attribute__((vector_size(16)));

typedef struct bw_job {
    uint8_t *src, *dst;
    size_t bytes;      /* per buffer, a multiple of 64 * n_threads */
    int mode;          /* 0 = fill, 1 = read, 2 = copy */
    uint64_t sink[64]; /* per-thread result, so the reads cannot be elided */
} bw_job;

static void bw_worker(void *arg, int ith, int nth)
{
    bw_job *j = arg;
    size_t share = j->bytes / (size_t)nth;
    uint8_t *s = j->src + share * (size_t)ith;
    uint8_t *d = j->dst + share * (size_t)ith;
    switch (j->mode) {
    case 0:
        /* first touch from the thread that will read: pages land near it */
        memset(s, 1 + ith, share);
        memset(d, 0, share);
        break;
    case 1: {
        /* four independent accumulators of 16 bytes keep two loads per cycle in
         * flight with plain SSE2, enough to saturate memory */
        v2u64 a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < share; i += 64) {
            v2u64 x0, x1, x2, x3;
            memcpy(&x0, s + i, 16);
            memcpy(&x1, s + i + 16, 16);
            memcpy(&x2, s + i + 32, 16);
            memcpy(&x3, s + i + 48, 16);
            a0 += x0;
            a1 ^= x1;
            a2 += x2;
            a3 ^= x3;
        }
        v2u64 a = a0 + a1 + a2 + a3;
        if (ith < 64)
            j->sink[ith] = a[0] ^ a[1];
        break;
    }
    default: memcpy(d, s, share); break;
    }
}

ghost_status bench_memory_bandwidth(int n_threads, size_t bytes, bench_bandwidth *out)
{
    if (n_threads < 1 || out == NULL)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "bandwidth: need threads >= 1");
    memset(out, 0, sizeof *out);
    if (bytes < ((size_t)64 << 20))
        bytes = (size_t)64 << 20;
    size_t unit = (size_t)64 * (size_t)n_threads;
    bytes = bytes / unit * unit;
    threadpool *pool = threadpool_create(n_threads);
    if (pool == NULL)
        return ghost_thread_errcode() != GHOST_OK ? ghost_thread_errcode() : GHOST_ERR_NOMEM;
    bw_job j = {.bytes = bytes};
    j.src = aligned_alloc(64, bytes);
    j.dst = aligned_alloc(64, bytes);
    ghost_status st = GHOST_OK;
    if (j.src == NULL || j.dst == NULL) {
        st = ghost_set_error(GHOST_ERR_NOMEM, "bandwidth: out of memory for 2 x %zu bytes", bytes);
        goto out;
    }
    j.mode = 0;
    threadpool_run(pool, bw_worker, &j);
    for (int mode = 1; mode <= 2; mode++) {
        double best = 0;
        j.mode = mode;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            threadpool_run(pool, bw_worker, &j);
            double dt = now_s() - t0;
            double gbs = (double)bytes * (mode == 2 ? 2.0 : 1.0) / dt / 1e9;
            if (gbs > best)
                best = gbs;
        }
        if (mode == 1)
            out->read_gbs = best;
        else
            out->copy_gbs = best;
    }
out:
    free(j.src);
    free(j.dst);
    threadpool_destroy(pool);
    return st;
}
