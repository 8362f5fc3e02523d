/*
 * tools_common.c — pieces convert, quantize and synth share: parallel row
 * encoding into a tensor type, type names, general.file_type values and the
 * tokenizer keys of a vocabulary.
 */
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "tools_internal.h"

ggml_type tools_parse_type(const char *name)
{
    if (name == NULL)
        return GGML_TYPE_MAX_ID;
    for (uint32_t t = 0; t < GGML_TYPE_MAX_ID; t++) {
        const quant_type_info *qi = quant_info(t);
        if (qi != NULL && qi->is_weight_type && strcasecmp(qi->name, name) == 0)
            return (ggml_type)t;
    }
    return GGML_TYPE_MAX_ID;
}

uint32_t tools_file_type(ggml_type type)
{
    /* llama.cpp's llama_ftype; a pure K-quant file is reported as its _M mix,
     * the name llama-quantize gives "Q4_K" and "Q5_K" */
    switch (type) {
    case GGML_TYPE_F32: return 0;
    case GGML_TYPE_F16: return 1;
    case GGML_TYPE_Q4_0: return 2;
    case GGML_TYPE_Q4_1: return 3;
    case GGML_TYPE_Q8_0: return 7;
    case GGML_TYPE_Q5_0: return 8;
    case GGML_TYPE_Q5_1: return 9;
    case GGML_TYPE_Q2_K: return 10;
    case GGML_TYPE_Q3_K: return 12;
    case GGML_TYPE_Q4_K: return 15;
    case GGML_TYPE_Q5_K: return 17;
    case GGML_TYPE_Q6_K: return 18;
    case GGML_TYPE_IQ4_NL: return 25;
    case GGML_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* ---- parallel row encoding --------------------------------------------------- */

typedef struct encode_job {
    ggml_type type;
    int64_t n_in, n_rows;
    size_t row_bytes;
    tools_row_fn fn;
    void *user;
    uint8_t *dst;
    float *scratch; /* n_in floats per thread */
} encode_job;

static void encode_worker(void *arg, int ith, int nth)
{
    const encode_job *j = arg;
    float *buf = j->scratch + (size_t)ith * (size_t)j->n_in;
    /* interleaved rows: neighbouring threads work on neighbouring memory */
    for (int64_t r = ith; r < j->n_rows; r += nth) {
        j->fn(j->user, r, buf);
        quant_quantize_row(j->type, buf, j->dst + (size_t)r * j->row_bytes, j->n_in);
    }
}

ghost_status tools_encode_rows(threadpool *pool, ggml_type type, int64_t n_in, int64_t n_rows,
                               tools_row_fn fn, void *user, void *dst)
{
    size_t row_bytes = quant_row_size(type, n_in);
    if (row_bytes == 0)
        return ghost_set_error(GHOST_ERR_INTERNAL, "row of %lld elements does not fit type %s",
                               (long long)n_in, quant_info(type)->name);
    int nth = pool != NULL ? threadpool_size(pool) : 1;
    encode_job j = {type, n_in, n_rows, row_bytes, fn, user, dst, NULL};
    j.scratch = malloc((size_t)nth * (size_t)n_in * sizeof(float));
    if (j.scratch == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %d rows of %lld floats", nth,
                               (long long)n_in);
    if (nth > 1 && n_rows > 1)
        threadpool_run(pool, encode_worker, &j);
    else
        encode_worker(&j, 0, 1);
    free(j.scratch);
    return GHOST_OK;
}

/* ---- tensors filled at write time ----------------------------------------------- */

ghost_status tools_job_init(tools_job *job, int n_threads, tools_progress_fn progress, void *user)
{
    *job = (tools_job){.progress = progress, .user = user};
    if (n_threads > 1 && (job->pool = threadpool_create(n_threads)) == NULL)
        return ghost_thread_errcode() != GHOST_OK ? ghost_thread_errcode() : GHOST_ERR_NOMEM;
    return GHOST_OK;
}

void tools_job_free(tools_job *job)
{
    threadpool_destroy(job->pool);
    job->pool = NULL;
}

static ghost_status fill_tensor(void *user, const char *name, void *dst, size_t nbytes)
{
    tools_tensor *t = user;
    if (t->copy != NULL) {
        memcpy(dst, t->copy, nbytes);
    } else {
        ghost_status rc =
            tools_encode_rows(t->job->pool, t->type, t->n_in, t->n_rows, t->row, t->row_user, dst);
        if (rc != GHOST_OK)
            return rc;
    }
    t->job->done += nbytes;
    if (t->job->progress != NULL)
        t->job->progress(t->job->user, t->job->done, t->job->total, name);
    return GHOST_OK;
}

ghost_status tools_add_tensor(gguf_writer *w, tools_tensor *t, const char *name, uint32_t n_dims,
                              const int64_t *ne)
{
    ghost_status rc = gguf_writer_add_tensor_fill(w, name, t->type, n_dims, ne, fill_tensor, t);
    if (rc == GHOST_OK)
        t->job->total += quant_row_size(t->type, t->n_in) * (uint64_t)t->n_rows;
    return rc;
}

/* ---- keys ---------------------------------------------------------------------- */

/* Runs a sequence of adds, stopping at the first failure. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ghost_status rc_ = (expr);                                                                 \
        if (rc_ != GHOST_OK)                                                                       \
            return rc_;                                                                            \
    } while (0)

static ghost_status add_arch_u32(gguf_writer *w, const char *arch, const char *suffix, int64_t v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_add_u32(w, key, (uint32_t)v);
}

static ghost_status add_arch_f32(gguf_writer *w, const char *arch, const char *suffix, double v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_add_f32(w, key, (float)v);
}

ghost_status tools_write_model_keys(gguf_writer *w, const tools_hparams *hp, const char *name,
                                    ggml_type ftype)
{
    const char *a = hp->arch;
    TRY(gguf_writer_add_str(w, "general.architecture", a));
    TRY(gguf_writer_add_str(w, "general.type", "model"));
    TRY(gguf_writer_add_str(w, "general.name", name));
    TRY(add_arch_u32(w, a, "block_count", hp->n_layer));
    TRY(add_arch_u32(w, a, "context_length", hp->n_ctx));
    TRY(add_arch_u32(w, a, "embedding_length", hp->n_embd));
    TRY(add_arch_u32(w, a, "feed_forward_length", hp->n_ff));
    TRY(add_arch_u32(w, a, "attention.head_count", hp->n_head));
    TRY(add_arch_u32(w, a, "attention.head_count_kv", hp->n_head_kv));
    if (hp->has_rope_theta)
        TRY(add_arch_f32(w, a, "rope.freq_base", hp->rope_theta));
    if (hp->has_rms_eps)
        TRY(add_arch_f32(w, a, "attention.layer_norm_rms_epsilon", hp->rms_eps));
    if (hp->head_dim > 0) {
        TRY(add_arch_u32(w, a, "attention.key_length", hp->head_dim));
        TRY(add_arch_u32(w, a, "attention.value_length", hp->head_dim));
    }
    TRY(gguf_writer_add_u32(w, "general.file_type", tools_file_type(ftype)));
    const bool llama = strcmp(a, "llama") == 0;
    if (llama) {
        TRY(add_arch_u32(w, a, "vocab_size", hp->n_vocab));
        TRY(add_arch_u32(w, a, "rope.dimension_count",
                         hp->head_dim > 0 ? hp->head_dim : hp->n_embd / hp->n_head));
    }
    const char *st = hp->rope_scaling_type;
    if (st != NULL &&
        ((llama && strcmp(st, "linear") == 0) || (!llama && strcmp(st, "yarn") == 0))) {
        char key[128];
        snprintf(key, sizeof key, "%s.rope.scaling.type", a);
        TRY(gguf_writer_add_str(w, key, st));
        TRY(add_arch_f32(w, a, "rope.scaling.factor", hp->rope_scaling_factor));
        if (!llama && hp->rope_orig_ctx > 0)
            TRY(add_arch_u32(w, a, "rope.scaling.original_context_length", hp->rope_orig_ctx));
    }
    return GHOST_OK;
}

ghost_status tools_vocab_write(gguf_writer *w, const tools_vocab *v)
{
    static const char *const id_keys[TV_N_SPECIAL] = {
        "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id",
    };
    TRY(gguf_writer_add_str(w, "tokenizer.ggml.model", v->model));
    TRY(gguf_writer_add_str(w, "tokenizer.ggml.pre", v->pre));
    TRY(gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, v->n));
    if (v->scores != NULL)
        TRY(gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->scores, v->n));
    TRY(gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->types, v->n));
    if (v->merges != NULL && v->n_merges > 0)
        TRY(gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                    v->n_merges));
    for (int k = 0; k < TV_N_SPECIAL; k++)
        if (v->special[k] >= 0)
            TRY(gguf_writer_add_u32(w, id_keys[k], (uint32_t)v->special[k]));
    if (v->add_bos >= 0)
        TRY(gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos != 0));
    if (v->add_eos >= 0)
        TRY(gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos != 0));
    if (v->chat_template != NULL)
        TRY(gguf_writer_add_str(w, "tokenizer.chat_template", v->chat_template));
    if (v->add_space_prefix >= 0)
        TRY(gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix != 0));
    return GHOST_OK;
}
