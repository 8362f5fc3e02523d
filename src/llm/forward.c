/*
 * forward.c — the transformer forward pass, top to bottom:
 *
 *   embed → for each layer:
 *       rmsnorm → q, k, v matmuls (+ bias) → RoPE → store k, v in the cache
 *       → grouped-query attention → output projection → residual
 *       → rmsnorm → SwiGLU feed-forward → residual
 *   → final rmsnorm → logits
 *
 * A call processes a batch of items (token, position, cache) as matrices:
 * each activation row is quantized once into the weight type's vec_dot_type
 * (as llama.cpp does), then weight rows are multiplied against all of the
 * batch's rows (quant gemm: one weight row stays in cache while the columns
 * stream), with rows split across the thread pool. Attention is split by
 * (item, head).
 *
 * Numerics follow ggml's CPU backend where they decide tokens: rmsnorm sums
 * squares in double and scales by 1/sqrtf(mean + eps); RoPE angles start at
 * the position and are multiplied by theta_scale = freq_base^(-2/n_rot) step
 * by step in float; with the F16 cache, q is rounded to F16 before q·k and
 * the softmax weights are rounded to F16 before weighting v (llama.cpp's
 * mul_mat converts its F32 operand to the F16 cache's type); softmax
 * subtracts the max and sums in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "model.h"

/* Below this many multiply-adds a matmul runs on the calling thread: waking
 * workers would cost more than the product. Counted in elements, not bytes,
 * so a 4-bit matrix is not kept single-threaded for its size. 512 Ki
 * measured best on the tiny models: TinyStories-656K's output matrix (2048 x
 * 128) stays on one thread at decode — threading it made -t 2 slower than
 * -t 1 — while its 128 x 128 layer matrices over a 128-token prompt split. */
#define PAR_MIN_MACS (512 * 1024)
/* The same for attention, in multiply-adds. */
#define PAR_MIN_ATTN (64 * 1024)
#define ALIGN        64

/* Quantized activations for one vec_dot_type. */
typedef struct act_buf {
    void *data;
    size_t cap;
} act_buf;

struct fwd_state {
    const ghost_model *m;
    const quant_kernels *kern;
    threadpool *pool;
    int32_t n_batch, n_ctx;
    int32_t q_dim, kv_dim, xb_dim;
    float *x;            /* [n_batch][n_embd] residual stream */
    float *xb;           /* [n_batch][xb_dim] normed input, then attention output */
    float *q, *k, *v;    /* [n_batch][q_dim / kv_dim] */
    float *hb, *hb2;     /* [n_batch][n_ff] */
    float *out;          /* [n_batch][n_embd] a projection before the residual add */
    float *rope;         /* [n_batch][n_rot] cos, sin pairs per item */
    fwd_item *out_items; /* [n_batch] the items that want logits, in order */
    act_buf act[3];      /* one per distinct vec_dot_type in a matmul group */
    uint8_t *att;        /* per thread: scores [n_ctx] + q in F16 [head_dim] */
    size_t att_stride;
};

/* ---- small helpers -------------------------------------------------------- */

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static void *alloc_aligned(size_t n)
{
    return aligned_alloc(ALIGN, align_up(n ? n : 1));
}

static void rmsnorm(float *y, const float *x, const float *w, int32_t n, float eps)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int32_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* cos/sin of every rotated pair at position pos, as ggml_rope_cache_init. */
static void rope_angles(const model_hparams *hp, int32_t pos, float *cs)
{
    const float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int32_t i = 0; i < hp->n_rot; i += 2) {
        const float t = hp->rope_freq_scale * theta;
        cs[i] = cosf(t);
        cs[i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

/* Rotates the first n_rot dimensions of each of n_heads heads in place. */
static void rope_apply(const model_hparams *hp, float *x, int32_t n_heads, const float *cs)
{
    const int32_t half = hp->n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hp->head_dim;
        for (int32_t i = 0; i < hp->n_rot; i += 2) {
            /* NORM: pairs (i, i+1); NEOX: pairs (i/2, i/2 + n_rot/2) */
            float *a = hp->rope_type == MODEL_ROPE_NEOX ? &v[i / 2] : &v[i];
            float *b = hp->rope_type == MODEL_ROPE_NEOX ? &v[i / 2 + half] : &v[i + 1];
            const float x0 = *a, x1 = *b, c = cs[i], s = cs[i + 1];
            *a = x0 * c - x1 * s;
            *b = x0 * s + x1 * c;
        }
    }
}

/* ---- matrix multiplication ------------------------------------------------ */

typedef struct mm_task {
    const model_matrix *w;
    const void *x; /* quantized activations, ncols rows of x_stride bytes */
    size_t x_stride;
    float *y; /* y[c * ldy + r] */
    size_t ldy;
} mm_task;

typedef struct mm_job {
    const quant_kernels *kern;
    mm_task t[3];
    int n_tasks;
    int32_t ncols;
} mm_job;

static void mm_worker(void *arg, int ith, int nth)
{
    const mm_job *job = arg;
    for (int i = 0; i < job->n_tasks; i++) {
        const mm_task *t = &job->t[i];
        const int64_t rows = t->w->n_out;
        /* whole 16-row chunks: threads never share a cache line of y, and
         * repacked matrices split at their groups of eight rows */
        const int64_t chunk = ((rows + nth - 1) / nth + 15) / 16 * 16;
        const int64_t r0 = chunk * ith, r1 = r0 + chunk < rows ? r0 + chunk : rows;
        if (r0 >= r1)
            continue;
        const quant_gemm_fn gemm = (t->w->x8 ? job->kern->gemm_x8 : job->kern->gemm)[t->w->type];
        gemm(t->w->n_in, (const char *)t->w->data + (size_t)r0 * t->w->row_bytes, t->w->row_bytes,
             r1 - r0, t->x, t->x_stride, job->ncols, t->y + r0, t->ldy);
    }
}

/* y_i = W_i · in for up to three matrices sharing their input (q/k/v,
 * gate/up): in has ncols rows of in_stride floats; each distinct
 * vec_dot_type is quantized once. y_i has rows of ldy[i] floats. */
static void matmul_group(fwd_state *s, const float *in, size_t in_stride, int32_t ncols,
                         const model_matrix *const *ws, float *const *ys, const size_t *ldy, int n)
{
    mm_job job = {.kern = s->kern, .n_tasks = n, .ncols = ncols};
    ggml_type done[3];
    int n_done = 0;
    size_t macs = 0;
    for (int i = 0; i < n; i++) {
        const model_matrix *w = ws[i];
        const ggml_type vdt = quant_info(w->type)->vec_dot_type;
        const size_t xs = quant_row_size(vdt, w->n_in);
        int slot = 0;
        while (slot < n_done && done[slot] != vdt)
            slot++;
        if (slot == n_done) {
            done[n_done++] = vdt;
            for (int32_t c = 0; c < ncols; c++)
                s->kern->quantize[vdt](in + (size_t)c * in_stride,
                                       (char *)s->act[slot].data + (size_t)c * xs, w->n_in);
        }
        job.t[i] = (mm_task){w, s->act[slot].data, xs, ys[i], ldy[i]};
        macs += (size_t)w->n_in * (size_t)w->n_out;
    }
    if (threadpool_size(s->pool) > 1 && macs * (size_t)ncols >= PAR_MIN_MACS)
        threadpool_run(s->pool, mm_worker, &job);
    else
        mm_worker(&job, 0, 1);
}

static void matmul(fwd_state *s, const float *in, size_t in_stride, int32_t ncols,
                   const model_matrix *w, float *y, size_t ldy)
{
    matmul_group(s, in, in_stride, ncols, &w, &y, &ldy, 1);
}

/* ---- attention ------------------------------------------------------------ */

typedef struct attn_job {
    fwd_state *s;
    const fwd_item *items;
    int32_t n, layer;
} attn_job;

/* The heads of one KV group of one item: softmax(q·K / sqrt(d)) · V over
 * positions 0..pos. The group's queries are contiguous, so one gemm over the
 * cached keys scores all of them while each key row is in cache (same bits
 * as one vec_dot per position), and the weighted sum of value rows runs in
 * the kernel set's wsum. */
static void attend_group(fwd_state *s, uint8_t *scratch, const fwd_item *it, int32_t t, int32_t g,
                         int32_t layer)
{
    const model_hparams *hp = &s->m->hp;
    const int32_t hd = hp->head_dim, gs = hp->n_head / hp->n_head_kv, npos = it->pos + 1;
    const kv_cache *kv = it->kv;
    const float *q = s->q + (size_t)t * s->q_dim + (size_t)g * gs * hd;
    float *out = s->xb + (size_t)t * s->xb_dim + (size_t)g * gs * hd;
    float *score = (float *)scratch; /* [gs][n_ctx] */
    void *qx = scratch + align_up((size_t)gs * s->n_ctx * sizeof(float));
    const ggml_type kt = kv->f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    const size_t elem = kv->f16 ? 2 : 4, off = (size_t)g * hd * elem;

    s->kern->quantize[kt](q, qx, (int64_t)gs * hd);
    s->kern->gemm[kt](hd, (const char *)kv_cache_k(kv, layer, 0) + off, kv->row_bytes, npos, qx,
                      (size_t)hd * elem, gs, score, (size_t)s->n_ctx);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int32_t h = 0; h < gs; h++) {
        float *sc = score + (size_t)h * s->n_ctx;
        float max = -INFINITY;
        for (int32_t j = 0; j < npos; j++) {
            sc[j] *= scale;
            max = sc[j] > max ? sc[j] : max;
        }
        double sum = 0.0;
        for (int32_t j = 0; j < npos; j++) {
            sc[j] = expf(sc[j] - max);
            sum += sc[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int32_t j = 0; j < npos; j++)
            sc[j] *= inv;
        s->kern->wsum[kt](hd, out + (size_t)h * hd, (const char *)kv_cache_v(kv, layer, 0) + off,
                          kv->row_bytes, sc, npos);
    }
}

static void attn_worker(void *arg, int ith, int nth)
{
    const attn_job *job = arg;
    fwd_state *s = job->s;
    const int32_t n_kv = s->m->hp.n_head_kv;
    uint8_t *scratch = s->att + (size_t)ith * s->att_stride;
    /* interleaved: later items attend to more positions */
    for (int32_t w = ith; w < job->n * n_kv; w += nth)
        attend_group(s, scratch, &job->items[w / n_kv], w / n_kv, w % n_kv, job->layer);
}

/* ---- the layers ----------------------------------------------------------- */

static void embed(fwd_state *s, const fwd_item *items, int32_t n)
{
    const model_matrix *e = &s->m->w.token_embd;
    const int32_t n_embd = s->m->hp.n_embd;
    for (int32_t t = 0; t < n; t++) {
        const void *row = (const char *)e->data + (size_t)items[t].token * e->row_bytes;
        quant_dequantize_row(e->type, row, s->x + (size_t)t * n_embd, n_embd);
    }
}

/* Moves the rows of the items that want logits to the front of q and x and
 * their items to s->out_items: in the last layer only these rows go on
 * (rows are independent, so the others' keys and values are all that was
 * needed of them). Returns how many there are. */
static int32_t keep_output_rows(fwd_state *s, const fwd_item *items, int32_t n)
{
    const int32_t e = s->m->hp.n_embd;
    int32_t k = 0;
    for (int32_t t = 0; t < n; t++) {
        if (items[t].logits == NULL)
            continue;
        if (k != t) {
            memcpy(s->q + (size_t)k * s->q_dim, s->q + (size_t)t * s->q_dim,
                   (size_t)s->q_dim * sizeof(float));
            memcpy(s->x + (size_t)k * e, s->x + (size_t)t * e, (size_t)e * sizeof(float));
        }
        s->out_items[k++] = items[t];
    }
    return k;
}

/* Returns the number of rows that leave the block: n, or in the last layer
 * those of the items that want logits (then moved to s->out_items). */
static int32_t attention_block(fwd_state *s, const fwd_item *items, int32_t n, int32_t il)
{
    const model_hparams *hp = &s->m->hp;
    const model_layer *L = &s->m->w.layers[il];
    const int32_t e = hp->n_embd;
    for (int32_t t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * s->xb_dim, s->x + (size_t)t * e, L->attn_norm, e, hp->rms_eps);

    const model_matrix *ws[3] = {&L->wq, &L->wk, &L->wv};
    float *ys[3] = {s->q, s->k, s->v};
    const size_t ldy[3] = {(size_t)s->q_dim, (size_t)s->kv_dim, (size_t)s->kv_dim};
    matmul_group(s, s->xb, (size_t)s->xb_dim, n, ws, ys, ldy, 3);

    for (int32_t t = 0; t < n; t++) {
        float *q = s->q + (size_t)t * s->q_dim, *k = s->k + (size_t)t * s->kv_dim,
              *v = s->v + (size_t)t * s->kv_dim;
        if (L->bq) {
            add_rows(q, L->bq, (size_t)s->q_dim);
            add_rows(k, L->bk, (size_t)s->kv_dim);
            add_rows(v, L->bv, (size_t)s->kv_dim);
        }
        const float *cs = s->rope + (size_t)t * hp->n_rot;
        rope_apply(hp, q, hp->n_head, cs);
        rope_apply(hp, k, hp->n_head_kv, cs);
        const kv_cache *kv = items[t].kv;
        kv_cache_store(kv, kv_cache_k(kv, il, items[t].pos), k, s->kv_dim);
        kv_cache_store(kv, kv_cache_v(kv, il, items[t].pos), v, s->kv_dim);
    }

    if (il == hp->n_layer - 1) {
        n = keep_output_rows(s, items, n);
        items = s->out_items;
        if (n == 0)
            return 0;
    }
    attn_job job = {s, items, n, il};
    size_t work = 0; /* multiply-adds of q·k and p·v */
    for (int32_t t = 0; t < n; t++)
        work += (size_t)(items[t].pos + 1) * (size_t)(2 * hp->n_head * hp->head_dim);
    if (threadpool_size(s->pool) > 1 && work >= PAR_MIN_ATTN)
        threadpool_run(s->pool, attn_worker, &job);
    else
        attn_worker(&job, 0, 1);

    matmul(s, s->xb, (size_t)s->xb_dim, n, &L->wo, s->out, (size_t)e);
    add_rows(s->x, s->out, (size_t)n * e);
    return n;
}

static void ffn_block(fwd_state *s, int32_t n, int32_t il)
{
    const model_hparams *hp = &s->m->hp;
    const model_layer *L = &s->m->w.layers[il];
    const int32_t e = hp->n_embd, ff = hp->n_ff;
    for (int32_t t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * s->xb_dim, s->x + (size_t)t * e, L->ffn_norm, e, hp->rms_eps);

    const model_matrix *ws[2] = {&L->ffn_gate, &L->ffn_up};
    float *ys[2] = {s->hb, s->hb2};
    const size_t ldy[2] = {(size_t)ff, (size_t)ff};
    matmul_group(s, s->xb, (size_t)s->xb_dim, n, ws, ys, ldy, 2);

    for (size_t i = 0; i < (size_t)n * ff; i++) {
        const float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i]; /* SiLU(gate) * up */
    }
    matmul(s, s->hb, (size_t)ff, n, &L->ffn_down, s->out, (size_t)e);
    add_rows(s->x, s->out, (size_t)n * e);
}

static void output_logits(fwd_state *s, const fwd_item *items, int32_t n)
{
    const model_hparams *hp = &s->m->hp;
    for (int32_t t = 0; t < n; t++) {
        if (items[t].logits == NULL)
            continue;
        rmsnorm(s->xb, s->x + (size_t)t * hp->n_embd, s->m->w.output_norm, hp->n_embd, hp->rms_eps);
        matmul(s, s->xb, (size_t)s->xb_dim, 1, &s->m->w.output, items[t].logits,
               (size_t)hp->n_vocab);
    }
}

static ghost_status check_items(const fwd_state *s, const fwd_item *items, int32_t n)
{
    const model_hparams *hp = &s->m->hp;
    if (n < 1 || n > s->n_batch)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "batch of %d items (want 1..%d)", n,
                               s->n_batch);
    for (int32_t t = 0; t < n; t++) {
        const fwd_item *it = &items[t];
        if (it->token < 0 || it->token >= hp->n_vocab)
            return ghost_set_error(GHOST_ERR_BAD_INPUT,
                                   "token id %d out of range (vocabulary of %d)", it->token,
                                   hp->n_vocab);
        if (it->kv == NULL || it->kv->n_layer != hp->n_layer || it->kv->kv_dim != s->kv_dim ||
            it->pos < 0 || it->pos >= it->kv->n_ctx || it->pos >= s->n_ctx)
            return ghost_set_error(GHOST_ERR_BAD_INPUT, "position %d outside the context window",
                                   it->pos);
    }
    return GHOST_OK;
}

ghost_status forward_batch(fwd_state *s, const fwd_item *items, int32_t n)
{
    ghost_status st = check_items(s, items, n);
    if (st != GHOST_OK)
        return st;
    const model_hparams *hp = &s->m->hp;
    for (int32_t t = 0; t < n; t++)
        rope_angles(hp, items[t].pos, s->rope + (size_t)t * hp->n_rot);
    embed(s, items, n);
    int32_t rows = n;
    for (int32_t il = 0; il < hp->n_layer && rows > 0; il++) {
        rows = attention_block(s, items, rows, il);
        if (rows > 0)
            ffn_block(s, rows, il);
    }
    output_logits(s, s->out_items, rows);
    return GHOST_OK;
}

/* ---- scratch -------------------------------------------------------------- */

/* Bytes of the largest quantized activation row any of the model's matrices needs. */
static size_t max_act_row(const ghost_model *m)
{
    const model_matrix *o = &m->w.output;
    size_t best = quant_row_size(quant_info(o->type)->vec_dot_type, o->n_in);
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const model_layer *L = &m->w.layers[il];
        const model_matrix *lw[] = {&L->wq,       &L->wk,     &L->wv,      &L->wo,
                                    &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0]; i++) {
            size_t r = quant_row_size(quant_info(lw[i]->type)->vec_dot_type, lw[i]->n_in);
            if (r > best)
                best = r;
        }
    }
    return best;
}

fwd_state *fwd_state_create(const ghost_model *m, int32_t n_batch, int32_t n_ctx, int n_threads)
{
    const model_hparams *hp = &m->hp;
    fwd_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto nomem;
    s->m = m;
    s->kern = m->kern; /* the set the weights were laid out for */
    s->n_batch = n_batch;
    s->n_ctx = n_ctx;
    s->q_dim = hp->n_head * hp->head_dim;
    s->kv_dim = hp->n_head_kv * hp->head_dim;
    s->xb_dim = s->q_dim > hp->n_embd ? s->q_dim : hp->n_embd;
    const size_t B = (size_t)n_batch;
    s->x = alloc_aligned(B * hp->n_embd * sizeof(float));
    s->xb = alloc_aligned(B * s->xb_dim * sizeof(float));
    s->q = alloc_aligned(B * s->q_dim * sizeof(float));
    s->k = alloc_aligned(B * s->kv_dim * sizeof(float));
    s->v = alloc_aligned(B * s->kv_dim * sizeof(float));
    s->hb = alloc_aligned(B * hp->n_ff * sizeof(float));
    s->hb2 = alloc_aligned(B * hp->n_ff * sizeof(float));
    s->out = alloc_aligned(B * hp->n_embd * sizeof(float));
    s->rope = alloc_aligned(B * hp->n_rot * sizeof(float));
    s->out_items = calloc(B, sizeof *s->out_items);
    const size_t act = B * max_act_row(m);
    for (int i = 0; i < 3; i++)
        s->act[i] = (act_buf){alloc_aligned(act), act};
    const size_t group = (size_t)(hp->n_head / hp->n_head_kv);
    s->att_stride = align_up(group * (size_t)n_ctx * sizeof(float)) +
                    align_up(group * (size_t)hp->head_dim * 4);
    if (!s->x || !s->xb || !s->q || !s->k || !s->v || !s->hb || !s->hb2 || !s->out || !s->rope ||
        !s->out_items || !s->act[0].data || !s->act[1].data || !s->act[2].data)
        goto nomem;
    s->pool = threadpool_create(n_threads);
    if (s->pool == NULL) {
        fwd_state_destroy(s);
        return NULL;
    }
    s->att = alloc_aligned(s->att_stride * (size_t)n_threads);
    if (s->att == NULL)
        goto nomem;
    return s;
nomem:
    fwd_state_destroy(s);
    ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the activations of %d tokens", n_batch);
    return NULL;
}

void fwd_state_destroy(fwd_state *s)
{
    if (s == NULL)
        return;
    threadpool_destroy(s->pool);
    float *fs[] = {s->x, s->xb, s->q, s->k, s->v, s->hb, s->hb2, s->out, s->rope};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        free(fs[i]);
    for (int i = 0; i < 3; i++)
        free(s->act[i].data);
    free(s->att);
    free(s->out_items);
    free(s);
}

int32_t fwd_state_batch(const fwd_state *s)
{
    return s->n_batch;
}
