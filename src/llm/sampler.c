/*
 * sampler.c — the sampling chain (see sampler.h for the order and meaning).
 *
 * Semantics follow llama.cpp's samplers (penalties, top_k, top_p, min_p,
 * temp) so that settings carry over; the random draw uses our own seeded
 * xoshiro256** generator, so a seed reproduces our text, not llama.cpp's.
 * Sorting is by logit descending with the token id as tie-break, so every
 * step is deterministic regardless of qsort's stability.
 */
#include <math.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "llm_internal.h"
#include "sampler.h"

struct sampler {
    int32_t n_vocab;
    sampler_token *cands;
    ghost_gen_params params;
    sampler_rng rng;
};

/* ---- random numbers ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sampler_rng_seed(sampler_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(sampler_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sampler_rng_uniform(sampler_rng *rng)
{
    return (double)(rng_next(rng) >> 11) * 0x1.0p-53;
}

/* ---- ordering ------------------------------------------------------------- */

/* true when a should come before b */
static bool better(const sampler_token *a, const sampler_token *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_tokens(const void *va, const void *vb)
{
    const sampler_token *a = va, *b = vb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static void sort_cands(sampler_cands *c)
{
    if (!c->sorted)
        qsort(c->data, c->n, sizeof *c->data, cmp_tokens);
    c->sorted = true;
}

static void swap_tok(sampler_token *a, sampler_token *b)
{
    sampler_token t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap (worst on top) of the k best seen so far: O(n log k), which for
 * the usual k = 40 over a 32k-150k vocabulary is far cheaper than a sort. */
static void heap_sift_down(sampler_token *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        swap_tok(&h[i], &h[w]);
        i = w;
    }
}

/* ---- stages --------------------------------------------------------------- */

void sampler_penalize(sampler_cands *c, const int32_t *last, size_t n_last, float penalty)
{
    if (penalty == 1.0f)
        return;
    for (size_t i = 0; i < n_last; i++) {
        const int32_t id = last[i];
        if (id < 0 || (size_t)id >= c->n)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = last[j] == id;
        if (seen)
            continue;
        float *l = &c->data[id].logit;
        *l = *l <= 0.0f ? *l * penalty : *l / penalty;
    }
    c->sorted = false;
}

void sampler_top_k(sampler_cands *c, int32_t k)
{
    if (k <= 0)
        return;
    if ((size_t)k >= c->n) {
        sort_cands(c);
        return;
    }
    if (!c->sorted) {
        sampler_token *h = c->data; /* the heap lives in the first k slots */
        for (size_t i = (size_t)k / 2; i-- > 0;)
            heap_sift_down(h, (size_t)k, i);
        for (size_t i = (size_t)k; i < c->n; i++) {
            if (better(&c->data[i], &h[0])) {
                swap_tok(&h[0], &c->data[i]);
                heap_sift_down(h, (size_t)k, 0);
            }
        }
    }
    c->n = (size_t)k;
    sort_cands(c);
}

void sampler_softmax(sampler_cands *c)
{
    sort_cands(c);
    if (c->n == 0)
        return;
    const float max = c->data[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        c->data[i].p = expf(c->data[i].logit - max);
        sum += c->data[i].p;
    }
    for (size_t i = 0; i < c->n; i++)
        c->data[i].p = (float)(c->data[i].p / sum);
}

void sampler_top_p(sampler_cands *c, float p)
{
    if (p >= 1.0f || c->n == 0)
        return;
    sampler_softmax(c);
    double cum = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        cum += c->data[i].p;
        if (cum >= p) {
            c->n = i + 1;
            return;
        }
    }
}

void sampler_min_p(sampler_cands *c, float p)
{
    if (p <= 0.0f || c->n == 0)
        return;
    /* p_i >= p * p_max  <=>  logit_i >= logit_max + log(p) */
    float max = c->data[0].logit;
    for (size_t i = 1; i < c->n; i++)
        max = fmaxf(max, c->data[i].logit);
    const float min_logit = max + logf(p);
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].logit >= min_logit)
            c->data[kept++] = c->data[i];
    c->n = kept; /* the best token always passes: kept >= 1 */
}

void sampler_temperature(sampler_cands *c, float t)
{
    if (c->n == 0)
        return;
    if (t <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < c->n; i++)
            if (better(&c->data[i], &c->data[best]))
                best = i;
        c->data[0] = c->data[best];
        c->n = 1;
        c->sorted = true;
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        c->data[i].logit /= t;
}

int32_t sampler_draw(sampler_cands *c, sampler_rng *rng)
{
    if (c->n == 0)
        return -1;
    sampler_softmax(c);
    const double r = sampler_rng_uniform(rng);
    double cum = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        cum += c->data[i].p;
        if (r < cum)
            return c->data[i].id;
    }
    return c->data[c->n - 1].id; /* r landed in the rounding slack of the sum */
}

/* ---- the chain ------------------------------------------------------------ */

sampler *sampler_create(int32_t n_vocab)
{
    sampler *s = calloc(1, sizeof *s);
    if (s != NULL && n_vocab > 0)
        s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (s == NULL || s->cands == NULL) {
        free(s);
        ghost_set_error(GHOST_ERR_NOMEM, "sampler: out of memory for %d candidates", n_vocab);
        return NULL;
    }
    s->n_vocab = n_vocab;
    s->params = ghost_default_gen_params();
    sampler_rng_seed(&s->rng, 0);
    return s;
}

void sampler_destroy(sampler *s)
{
    if (s == NULL)
        return;
    free(s->cands);
    free(s);
}

static uint64_t os_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts; /* no entropy source: the clock still varies per run */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
}

void sampler_start(sampler *s, const ghost_gen_params *p)
{
    s->params = *p;
    sampler_rng_seed(&s->rng, p->seed == GHOST_SEED_RANDOM ? os_seed() : p->seed);
}

int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history, size_t n_history)
{
    const ghost_gen_params *p = &s->params;
    sampler_cands c = {s->cands, (size_t)s->n_vocab, false};
    for (int32_t i = 0; i < s->n_vocab; i++)
        c.data[i] = (sampler_token){i, logits[i], 0.0f};

    size_t window = p->repeat_last_n < 0 ? n_history : (size_t)p->repeat_last_n;
    if (window > n_history)
        window = n_history;
    sampler_penalize(&c, history + (n_history - window), window, p->repeat_penalty);

    if (p->temperature <= 0.0f) {
        sampler_temperature(&c, 0.0f);
        return c.data[0].id;
    }
    sampler_top_k(&c, p->top_k);
    sampler_top_p(&c, p->top_p);
    sampler_min_p(&c, p->min_p);
    sampler_temperature(&c, p->temperature);
    return sampler_draw(&c, &s->rng);
}
