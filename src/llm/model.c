/*
 * model.c — from a validated GGUF file to a model ready for forward.c.
 *
 * Reads the hyper-parameters under llama.cpp's key names
 * ("{arch}.embedding_length", "{arch}.attention.head_count_kv", ...) with
 * llama.cpp's defaults, checks them against each other, then takes a view of
 * every tensor the architecture needs, checking its type (one we have
 * kernels for) and its exact shape. Weights stay in the map; only 1-D tensors
 * (norms, biases) stored in a type other than F32 are converted, once.
 *
 * Supported architectures: llama (RMSNorm, RoPE on adjacent pairs, GQA,
 * SwiGLU, optional tied output) and qwen2 (the same plus QKV biases, RoPE on
 * split halves — llama.cpp's NEOX ordering).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llm_internal.h"
#include "model.h"
#include "threadpool.h"
#include "tokenizer.h"

#define SUPPORTED_ARCHS "llama, qwen2"

typedef struct arch_desc {
    const char *name;
    model_arch arch;
    model_rope_type rope;
    bool qkv_bias_required;
} arch_desc;

static const arch_desc archs[] = {
    {"llama", MODEL_ARCH_LLAMA, MODEL_ROPE_NORM, false},
    {"qwen2", MODEL_ARCH_QWEN2, MODEL_ROPE_NEOX, true},
};

/* NUL-terminated copy of a GGUF string. */
static char *str_dup(gguf_str s)
{
    char *c = malloc(s.len + 1);
    if (c != NULL) {
        memcpy(c, s.ptr, s.len);
        c[s.len] = '\0';
    }
    return c;
}

/* ---- hyper-parameters ----------------------------------------------------- */

/* "{arch}.{suffix}" as a positive int32; def < 0 makes the key required. */
static ghost_status get_int(const gguf_file *f, const char *arch, const char *suffix, int64_t def,
                            int64_t max, int32_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (gguf_find_kv(f, key) == NULL) {
        if (def < 0)
            return ghost_set_error(GHOST_ERR_FORMAT, "missing key '%s'", key);
        *out = (int32_t)def;
        return GHOST_OK;
    }
    uint32_t v;
    if (!gguf_get_u32(f, key, &v))
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "key '%s': expected a non-negative integer (per-layer arrays are "
                               "not supported)",
                               key);
    if (v < 1 || v > max)
        return ghost_set_error(GHOST_ERR_FORMAT, "key '%s': %u is out of range (1..%lld)", key, v,
                               (long long)max);
    *out = (int32_t)v;
    return GHOST_OK;
}

static ghost_status get_float(const gguf_file *f, const char *arch, const char *suffix,
                              bool required, float def, float *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (gguf_find_kv(f, key) == NULL) {
        if (required)
            return ghost_set_error(GHOST_ERR_FORMAT, "missing key '%s'", key);
        *out = def;
        return GHOST_OK;
    }
    if (!gguf_get_f32(f, key, out))
        return ghost_set_error(GHOST_ERR_FORMAT, "key '%s': expected a float", key);
    if (!isfinite(*out) || *out < 0.0f)
        return ghost_set_error(GHOST_ERR_FORMAT, "key '%s': %g is out of range", key, *out);
    return GHOST_OK;
}

static ghost_status read_rope_scaling(const gguf_file *f, const char *arch, model_hparams *hp)
{
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    gguf_str type = {"linear", 6}; /* llama.cpp's default when the key is absent */
    if (gguf_find_kv(f, key) != NULL && !gguf_get_str(f, key, &type))
        return ghost_set_error(GHOST_ERR_FORMAT, "key '%s': expected a string", key);
    if (!gguf_str_eq(type, "none") && !gguf_str_eq(type, "linear"))
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "key '%s': RoPE scaling '%.*s' is not supported (supported: none, "
                               "linear)",
                               key, (int)(type.len > 64 ? 64 : type.len), type.ptr);
    float factor = 0.0f;
    ghost_status st = get_float(f, arch, "rope.scaling.factor", false, 0.0f, &factor);
    if (st == GHOST_OK && factor == 0.0f) /* the older key llama.cpp still reads */
        st = get_float(f, arch, "rope.scale_linear", false, 0.0f, &factor);
    if (st != GHOST_OK)
        return st;
    hp->rope_freq_scale = factor == 0.0f || gguf_str_eq(type, "none") ? 1.0f : 1.0f / factor;
    return GHOST_OK;
}

static ghost_status read_hparams(const gguf_file *f, const arch_desc *ad, model_hparams *hp)
{
    const char *a = ad->name;
    memset(hp, 0, sizeof *hp);
    hp->arch = ad->arch;
    hp->rope_type = ad->rope;
    ghost_status st;
    if ((st = get_int(f, a, "context_length", -1, INT32_MAX, &hp->n_ctx_train)) ||
        (st = get_int(f, a, "embedding_length", -1, 1 << 20, &hp->n_embd)) ||
        (st = get_int(f, a, "block_count", -1, 4096, &hp->n_layer)) ||
        (st = get_int(f, a, "feed_forward_length", -1, 1 << 22, &hp->n_ff)) ||
        (st = get_int(f, a, "attention.head_count", -1, hp->n_embd, &hp->n_head)) ||
        (st = get_int(f, a, "attention.head_count_kv", hp->n_head, hp->n_head, &hp->n_head_kv)))
        return st;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.key_length", a);
    if (gguf_find_kv(f, key) == NULL && hp->n_embd % hp->n_head != 0)
        return ghost_set_error(
            GHOST_ERR_FORMAT, "%s.embedding_length %d is not a multiple of attention.head_count %d",
            a, hp->n_embd, hp->n_head);
    if ((st = get_int(f, a, "attention.key_length", hp->n_embd / hp->n_head, 1 << 16,
                      &hp->head_dim)))
        return st;
    int32_t value_length;
    if ((st = get_int(f, a, "attention.value_length", hp->head_dim, 1 << 16, &value_length)))
        return st;
    if (value_length != hp->head_dim)
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "%s.attention.value_length %d differs from key_length %d", a,
                               value_length, hp->head_dim);
    if ((st = get_int(f, a, "rope.dimension_count", hp->head_dim, hp->head_dim, &hp->n_rot)))
        return st;
    if (hp->n_head % hp->n_head_kv != 0)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "%s.attention.head_count %d is not a multiple of head_count_kv %d",
                               a, hp->n_head, hp->n_head_kv);
    if (hp->n_rot % 2 != 0)
        return ghost_set_error(GHOST_ERR_FORMAT, "%s.rope.dimension_count %d is odd", a, hp->n_rot);
    if ((st = get_float(f, a, "attention.layer_norm_rms_epsilon", true, 0.0f, &hp->rms_eps)) ||
        (st = get_float(f, a, "rope.freq_base", false, 10000.0f, &hp->rope_freq_base)))
        return st;
    if (hp->rope_freq_base <= 0.0f)
        return ghost_set_error(GHOST_ERR_FORMAT, "%s.rope.freq_base must be positive", a);
    return read_rope_scaling(f, a, hp);
}

/* ---- tensors -------------------------------------------------------------- */

typedef struct loader {
    ghost_model *m;
    const quant_kernels *kernels;
    size_t copies_used, copies_cap;
} loader;

static ghost_status find_tensor(const loader *ld, const char *name, bool required,
                                const gguf_tensor **out)
{
    *out = gguf_find_tensor(ld->m->gguf, name);
    if (*out == NULL && required)
        return ghost_set_error(GHOST_ERR_FORMAT, "missing tensor '%s'", name);
    return GHOST_OK;
}

static ghost_status check_shape(const gguf_tensor *t, int64_t ne0, int64_t ne1)
{
    const int64_t want_dims = ne1 == 1 ? 1 : 2;
    if ((int64_t)t->n_dims > want_dims || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 ||
        t->ne[3] != 1)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "tensor '%s': shape [%lld, %lld, %lld, %lld] but the model needs "
                               "[%lld, %lld]",
                               t->name, (long long)t->ne[0], (long long)t->ne[1],
                               (long long)t->ne[2], (long long)t->ne[3], (long long)ne0,
                               (long long)ne1);
    return GHOST_OK;
}

/* A matrix of n_out rows of n_in; a missing optional one leaves data NULL. */
static ghost_status get_matrix(const loader *ld, const char *name, int64_t n_in, int64_t n_out,
                               bool required, model_matrix *out)
{
    memset(out, 0, sizeof *out);
    const gguf_tensor *t;
    ghost_status st = find_tensor(ld, name, required, &t);
    if (st != GHOST_OK || t == NULL)
        return st;
    if ((st = check_shape(t, n_in, n_out)))
        return st;
    const quant_type_info *qi = quant_info(t->type);
    if (qi == NULL || !qi->is_weight_type || ld->kernels->vec_dot[t->type] == NULL ||
        ld->kernels->quantize[qi->vec_dot_type] == NULL)
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "tensor '%s': type %s is not supported for weights (supported: %s)",
                               name, qi ? qi->name : "unknown", quant_supported_list());
    if (n_in % qi->block_size != 0)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "tensor '%s': row length %lld is not a multiple of the %s block "
                               "size %lld",
                               name, (long long)n_in, qi->name, (long long)qi->block_size);
    *out = (model_matrix){
        t->data, (ggml_type)t->type, n_in, n_out, quant_row_size((ggml_type)t->type, n_in), false};
    return GHOST_OK;
}

/* A vector of n floats, copied (converted when not F32). Copied even when
 * F32: with the matrices repacked, touching the map at run time would map
 * back the neighbouring pages that repack_weights dropped (the page cache
 * maps whole large folios around a fault). */
static ghost_status get_vector(loader *ld, const char *name, int64_t n, bool required,
                               const float **out)
{
    *out = NULL;
    const gguf_tensor *t;
    ghost_status st = find_tensor(ld, name, required, &t);
    if (st != GHOST_OK || t == NULL)
        return st;
    if ((st = check_shape(t, n, 1)))
        return st;
    const quant_type_info *qi = quant_info(t->type);
    if (qi == NULL || n % qi->block_size != 0)
        return ghost_set_error(GHOST_ERR_UNSUPPORTED, "tensor '%s': type %s is not supported here",
                               name, qi ? qi->name : "unknown");
    if (ld->m->f32_copies == NULL) {
        ld->m->f32_copies = malloc(ld->copies_cap * sizeof(float));
        if (ld->m->f32_copies == NULL)
            return ghost_set_error(GHOST_ERR_NOMEM, "out of memory converting '%s'", name);
    }
    if (ld->copies_used + (size_t)n > ld->copies_cap)
        return ghost_set_error(GHOST_ERR_INTERNAL, "tensor '%s': no room to convert", name);
    float *dst = ld->m->f32_copies + ld->copies_used;
    quant_dequantize_row((ggml_type)t->type, t->data, dst, n);
    ld->copies_used += (size_t)n;
    *out = dst;
    return GHOST_OK;
}

static ghost_status load_layer(loader *ld, int il, model_layer *L, bool need_bias)
{
    const model_hparams *hp = &ld->m->hp;
    const int64_t e = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim,
                  kv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    char nm[96];
    ghost_status st = GHOST_OK;
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d.%s", il, s), nm)
    if ((st = get_vector(ld, NAME("attn_norm.weight"), e, true, &L->attn_norm)) ||
        (st = get_matrix(ld, NAME("attn_q.weight"), e, q, true, &L->wq)) ||
        (st = get_matrix(ld, NAME("attn_k.weight"), e, kv, true, &L->wk)) ||
        (st = get_matrix(ld, NAME("attn_v.weight"), e, kv, true, &L->wv)) ||
        (st = get_matrix(ld, NAME("attn_output.weight"), q, e, true, &L->wo)) ||
        (st = get_vector(ld, NAME("attn_q.bias"), q, need_bias, &L->bq)) ||
        (st = get_vector(ld, NAME("attn_k.bias"), kv, need_bias, &L->bk)) ||
        (st = get_vector(ld, NAME("attn_v.bias"), kv, need_bias, &L->bv)) ||
        (st = get_vector(ld, NAME("ffn_norm.weight"), e, true, &L->ffn_norm)) ||
        (st = get_matrix(ld, NAME("ffn_gate.weight"), e, ff, true, &L->ffn_gate)) ||
        (st = get_matrix(ld, NAME("ffn_up.weight"), e, ff, true, &L->ffn_up)) ||
        (st = get_matrix(ld, NAME("ffn_down.weight"), ff, e, true, &L->ffn_down)))
        return st;
#undef NAME
    return GHOST_OK;
}

static ghost_status load_weights(ghost_model *m, const arch_desc *ad)
{
    const model_hparams *hp = &m->hp;
    const size_t q = (size_t)hp->n_head * hp->head_dim, kv = (size_t)hp->n_head_kv * hp->head_dim;
    loader ld = {m, m->kern, 0,
                 (size_t)hp->n_embd * (2 * (size_t)hp->n_layer + 1) +
                     (size_t)hp->n_layer * (q + 2 * kv)};
    model_weights *w = &m->w;
    ghost_status st;
    if ((st =
             get_matrix(&ld, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &w->token_embd)) ||
        (st = get_vector(&ld, "output_norm.weight", hp->n_embd, true, &w->output_norm)) ||
        (st = get_matrix(&ld, "output.weight", hp->n_embd, hp->n_vocab, false, &w->output)))
        return st;
    if (w->output.data == NULL)
        w->output = w->token_embd; /* tied embeddings */
    w->layers = calloc((size_t)hp->n_layer, sizeof *w->layers);
    if (w->layers == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %d layers", hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++)
        if ((st = load_layer(&ld, il, &w->layers[il], ad->qkv_bias_required)))
            return st;
    return GHOST_OK;
}

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/* Repacking reads the whole file once, first touches included, so it is
 * split over every core: each thread takes the next whole matrix. */
#define REPACK_MAX_THREADS 64

typedef struct repack_job {
    model_matrix **ms; /* the matrices, largest first */
    char **dst;        /* where each one's eight-row copy goes */
    size_t n;
    long page;
    atomic_size_t next;   /* the next matrix to take */
    atomic_size_t failed; /* 1 + index of a matrix without a layout; 0 = none */
} repack_job;

static void repack_worker(void *arg, int ith, int nth)
{
    (void)ith;
    (void)nth;
    repack_job *j = arg;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        const model_matrix *mm = j->ms[i];
        if (!quant_repack_x8(mm->type, mm->data, j->dst[i], mm->n_in, mm->n_out)) {
            atomic_store(&j->failed, i + 1);
            continue;
        }
        /* the whole pages of the original: read once, not needed again */
        const size_t bytes = mm->row_bytes * (size_t)mm->n_out;
        const uintptr_t a = (uintptr_t)mm->data, lo = round_up(a, (size_t)j->page),
                        hi = (a + bytes) / j->page * j->page;
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
}

/* Q4_0, Q4_K, Q5_K and Q6_K matrices regrouped by eight rows for the
 * kernel set's eight-row kernels (quant_repack_x8), as llama.cpp repacks
 * some types for x86: a block of eight rows is then read as a few whole
 * vectors, where the mapped layout needs a transpose in registers (Q4_0) or
 * decodes each row's scales alone (K-quants). On the 1.1B shape, one
 * AVX-512 thread decodes Q4_0 at 35 -> 50 tokens/s, Q4_K at 31 -> 48.
 * The copy lives in anonymous memory on huge pages where the kernel gives
 * them (fewer TLB misses while streaming: a tenth of the gain). The mapped
 * pages of a repacked tensor are dropped, so resident memory stays the
 * model's size. Loading from the page cache takes 0.2-0.35 s per GB more
 * on one core, split over all of them (1.1B on two cores: Q4_0 0.14 ->
 * 0.10 s, Q6_K 0.30 -> 0.21 s). GHOST_REPACK=0 keeps
 * every matrix in the map (pages shared with other processes, nothing
 * copied at load). */
static ghost_status repack_weights(ghost_model *m)
{
    const char *env = getenv("GHOST_REPACK");
    if (env != NULL && strcmp(env, "0") == 0)
        return GHOST_OK;
    model_weights *w = &m->w;
    const size_t max = 7 * (size_t)m->hp.n_layer + 1;
    model_matrix **ms = malloc(max * sizeof *ms);
    if (ms == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory repacking the weights");
    size_t n = 0, total = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        model_layer *L = &w->layers[il];
        model_matrix *lw[] = {&L->wq,       &L->wk,     &L->wv,      &L->wo,
                              &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0]; i++)
            ms[n++] = lw[i];
    }
    if (w->output.data != w->token_embd.data) { /* tied: embed() reads its rows */
        /* the largest goes first: no thread is left alone with it at the end */
        ms[n] = &w->output;
        model_matrix *first = ms[0];
        ms[0] = ms[n];
        ms[n++] = first;
    }
    size_t keep = 0;
    for (size_t i = 0; i < n; i++)
        if (m->kern->gemm_x8[ms[i]->type] != NULL && ms[i]->n_out % 8 == 0) {
            /* a kernel set's x8 types are quant_repack_x8's */
            ms[keep++] = ms[i];
            total += round_up(ms[i]->row_bytes * (size_t)ms[i]->n_out, 64);
        }
    if (keep == 0) {
        free(ms);
        return GHOST_OK;
    }
    const size_t huge = (size_t)2 << 20;
    total = round_up(total, huge);
    if (posix_memalign(&m->x8, huge, total) != 0) {
        m->x8 = NULL;
        free(ms);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory repacking %zu MiB of weights",
                               total >> 20);
    }
    (void)madvise(m->x8, total, MADV_HUGEPAGE); /* advice only */
    char **dst = malloc(keep * sizeof *dst);
    if (dst == NULL) {
        free(ms);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory repacking the weights");
    }
    for (size_t i = 0, at = 0; i < keep; i++) {
        dst[i] = (char *)m->x8 + at;
        at += round_up(ms[i]->row_bytes * (size_t)ms[i]->n_out, 64);
    }
    repack_job job = {ms, dst, keep, sysconf(_SC_PAGESIZE), 0, 0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = cpus < 1 ? 1 : cpus > REPACK_MAX_THREADS ? REPACK_MAX_THREADS : (int)cpus;
    if ((size_t)n_threads > keep)
        n_threads = (int)keep;
    threadpool *pool = n_threads > 1 ? threadpool_create(n_threads) : NULL;
    if (pool != NULL)
        threadpool_run(pool, repack_worker, &job);
    else
        repack_worker(&job, 0, 1); /* one thread, or none could be started */
    threadpool_destroy(pool);
    const size_t failed = atomic_load(&job.failed);
    for (size_t i = 0; failed == 0 && i < keep; i++) {
        ms[i]->data = dst[i];
        ms[i]->x8 = true;
    }
    ghost_status st = failed == 0
                          ? GHOST_OK
                          : ghost_set_error(GHOST_ERR_INTERNAL, "no eight-row layout for %s",
                                            quant_info(ms[failed - 1]->type)->name);
    free(dst);
    free(ms);
    return st;
}

/* GHOST_ISA and GHOST_REPACK (for benchmarks and tests) refuse values they
 * do not know: a typo would otherwise measure the default, silently. Empty
 * means unset. */
static ghost_status check_env_options(void)
{
    const char *isa = getenv("GHOST_ISA"), *repack = getenv("GHOST_REPACK");
    if (isa != NULL && *isa != '\0' && strcasecmp(isa, "scalar") != 0 &&
        strcasecmp(isa, "avx2") != 0 && strcasecmp(isa, "avx512") != 0)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "GHOST_ISA=%s: expected scalar, avx2 or avx512", isa);
    if (repack != NULL && *repack != '\0' && strcmp(repack, "0") != 0 && strcmp(repack, "1") != 0)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "GHOST_REPACK=%s: expected 0 or 1",
                               repack);
    return GHOST_OK;
}

/* The tensor type holding most weights ("Q8_0"), and the parameter count. */
static void summarize(ghost_model *m)
{
    uint64_t per_type[GGML_TYPE_MAX_ID] = {0};
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const gguf_tensor *t = &m->gguf->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
            n *= (uint64_t)t->ne[d];
        m->n_params += n;
        if (t->n_dims >= 2 && t->type < GGML_TYPE_MAX_ID)
            per_type[t->type] += n;
    }
    int best = GGML_TYPE_F32;
    for (int t = 0; t < GGML_TYPE_MAX_ID; t++)
        if (per_type[t] > per_type[best])
            best = t;
    const quant_type_info *qi = quant_info((uint32_t)best);
    m->file_type = qi ? qi->name : "F32";
}

static ghost_status read_strings(ghost_model *m, const char *path)
{
    gguf_str s;
    if (gguf_find_kv(m->gguf, "general.name") != NULL &&
        gguf_get_str(m->gguf, "general.name", &s)) {
        m->name = str_dup(s);
    } else {
        const char *base = strrchr(path, '/');
        m->name = strdup(base ? base + 1 : path);
    }
    if (gguf_find_kv(m->gguf, "tokenizer.chat_template") != NULL &&
        gguf_get_str(m->gguf, "tokenizer.chat_template", &s)) {
        if ((m->chat_template = str_dup(s)) == NULL)
            return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    }
    return m->name ? GHOST_OK : ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
}

ghost_status model_load(const char *path, ghost_model **out)
{
    *out = NULL;
    ghost_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    ghost_status st = gguf_open(path, &m->gguf);
    if (st != GHOST_OK) {
        free(m);
        return st;
    }
    gguf_str arch;
    const arch_desc *ad = NULL;
    if (!gguf_get_str(m->gguf, "general.architecture", &arch)) {
        st = ghost_set_error(GHOST_ERR_FORMAT, "%s: missing key 'general.architecture'", path);
        goto fail;
    }
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (gguf_str_eq(arch, archs[i].name))
            ad = &archs[i];
    if (ad == NULL) {
        st = ghost_set_error(GHOST_ERR_UNSUPPORTED,
                             "%s: architecture '%.*s' is not supported (supported: " SUPPORTED_ARCHS
                             ")",
                             path, (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
        goto fail;
    }
    if ((m->arch_name = strdup(ad->name)) == NULL) {
        st = ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = read_hparams(m->gguf, ad, &m->hp)) || (st = tok_load(m->gguf, &m->vocab)))
        goto fail;
    m->hp.n_vocab = tok_n_vocab(m->vocab);
    if ((st = check_env_options()) != GHOST_OK)
        goto fail;
    m->kern = quant_kernels_best();
    if ((st = load_weights(m, ad)) || (st = repack_weights(m)) || (st = read_strings(m, path)))
        goto fail;
    summarize(m);
    /* Start reading the weights now, in the background: the first prompt
     * then finds them in the page cache instead of faulting page by page. */
    gguf_prefetch(m->gguf);
    *out = m;
    return GHOST_OK;
fail:
    model_free(m);
    return st;
}

void model_free(ghost_model *m)
{
    if (m == NULL)
        return;
    tok_free(m->vocab);
    gguf_close(m->gguf);
    free(m->w.layers);
    free(m->f32_copies);
    free(m->x8);
    free(m->arch_name);
    free(m->name);
    free(m->chat_template);
    free(m);
}

const char *model_chat_template(const ghost_model *m)
{
    return m ? m->chat_template : NULL;
}

const tok_vocab *model_vocab(const ghost_model *m)
{
    return m ? m->vocab : NULL;
}
