/*
 * model.h — the model's story in four structs, as in llama2.c (internal):
 *
 *   model_hparams   hyper-parameters read from GGUF metadata (llama.cpp's key
 *                   names and defaults)
 *   model_weights   views of the tensors: pointers into the mmapped file,
 *                   never copied (a tied output matrix is token_embd itself)
 *   kv_cache        one sequence's keys and values, per layer and position
 *   fwd_state       scratch activations and the thread pool of one forward
 *                   pass driver, allocated once so no token allocates
 *
 * model.c loads and validates (arch, hyper-parameters, every tensor's type
 * and shape); kv_cache.c owns the cache; forward.c is the forward pass.
 *
 * Batches: forward_batch() takes a list of (token, position, kv cache,
 * logits-out) items. Items may belong to different sequences with different
 * caches — one context's prompt, or several contexts' prompt chunks and
 * next tokens fused by the batcher (batch.h, continuous batching). Within a
 * batch, an item attends to positions 0..pos of its own cache, and the
 * batch's own keys/values are written before any attention runs, so a
 * prompt can be evaluated in one call.
 */
#ifndef GHOST_MODEL_H
#define GHOST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "gguf.h"
#include "quant.h"
#include "threadpool.h"

typedef struct tok_vocab tok_vocab;

typedef enum model_arch { MODEL_ARCH_LLAMA = 0, MODEL_ARCH_QWEN2 = 1 } model_arch;

/* How RoPE pairs the dimensions: NORM rotates adjacent pairs (2i, 2i+1),
 * NEOX rotates (i, i + n_rot/2) — llama.cpp's LLAMA_ROPE_TYPE_NORM/NEOX. */
typedef enum model_rope_type { MODEL_ROPE_NORM = 0, MODEL_ROPE_NEOX = 2 } model_rope_type;

typedef struct model_hparams {
    model_arch arch;
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_ff;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim; /* attention.key_length, default n_embd / n_head */
    int32_t n_rot;    /* rope.dimension_count, default head_dim */
    float rms_eps;
    float rope_freq_base;  /* default 10000 */
    float rope_freq_scale; /* 1 / rope.scaling.factor (linear), default 1 */
    model_rope_type rope_type;
} model_hparams;

/* A weight matrix of n_out rows of n_in elements, row-major in its file type
 * (or, when x8, rows regrouped by quant_repack_x8 into the model's repacked
 * buffer). */
typedef struct model_matrix {
    const void *data; /* into the map, or into ghost_model.x8 */
    ggml_type type;
    int64_t n_in, n_out;
    size_t row_bytes;
    bool x8; /* multiply with kern->gemm_x8[type] */
} model_matrix;

typedef struct model_layer {
    const float *attn_norm, *ffn_norm; /* n_embd */
    const float *bq, *bk, *bv;         /* qwen2's QKV biases, NULL when absent */
    model_matrix wq, wk, wv, wo;
    model_matrix ffn_gate, ffn_up, ffn_down;
} model_layer;

typedef struct model_weights {
    model_matrix token_embd; /* n_vocab rows of n_embd */
    const float *output_norm;
    model_matrix output; /* = token_embd when output.weight is absent */
    model_layer *layers; /* n_layer, owned by the model */
} model_weights;

struct ghost_model {
    gguf_file *gguf;
    tok_vocab *vocab;
    model_hparams hp;
    model_weights w;
    char *arch_name, *name, *chat_template; /* owned, NUL-terminated */
    const char *file_type;                  /* a quant type name (static) */
    uint64_t n_params;
    float *f32_copies;         /* 1-D tensors (norms, biases) as F32 copies,
                                  converted once at load */
    const quant_kernels *kern; /* chosen at load; every context uses it */
    void *x8;                  /* repacked matrices (owned), NULL if none */
};

/* Loads a model (the public ghost_model_load without the error bookkeeping). */
ghost_status model_load(const char *path, ghost_model **out);
void model_free(ghost_model *m);
/* tokenizer.chat_template, NUL-terminated and owned by the model; NULL when absent. */
const char *model_chat_template(const ghost_model *m);
const tok_vocab *model_vocab(const ghost_model *m);

/* ---- KV cache (kv_cache.c) ---------------------------------------------------- */

typedef struct kv_cache {
    int32_t n_layer, n_ctx, kv_dim; /* kv_dim = n_head_kv * head_dim */
    bool f16;                       /* F16 like llama.cpp's default, else F32 */
    size_t row_bytes;               /* one position of one layer */
    void *k, *v;                    /* [n_layer][n_ctx][kv_dim] */
} kv_cache;

ghost_status kv_cache_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, bool f16);
void kv_cache_free(kv_cache *kv);
static inline void *kv_cache_k(const kv_cache *kv, int32_t layer, int32_t pos)
{
    return (char *)kv->k + ((size_t)layer * (size_t)kv->n_ctx + (size_t)pos) * kv->row_bytes;
}
static inline void *kv_cache_v(const kv_cache *kv, int32_t layer, int32_t pos)
{
    return (char *)kv->v + ((size_t)layer * (size_t)kv->n_ctx + (size_t)pos) * kv->row_bytes;
}
/* Stores n floats of one row, converting to the cache's type. */
void kv_cache_store(const kv_cache *kv, void *dst, const float *src, int32_t n);
size_t kv_cache_bytes(const kv_cache *kv);

/* ---- forward pass (forward.c) ------------------------------------------------- */

typedef struct fwd_item {
    int32_t token;
    int32_t pos; /* 0 <= pos < kv->n_ctx; positions 0..pos-1 already cached */
    kv_cache *kv;
    float *logits; /* n_vocab floats out, or NULL when not needed */
} fwd_item;

typedef struct fwd_state fwd_state;

/* Scratch for batches of up to n_batch items attending over up to n_ctx
 * positions, and a pool of n_threads threads. NULL on failure (per-thread
 * message). Free with fwd_state_destroy. The model must outlive it. */
fwd_state *fwd_state_create(const ghost_model *m, int32_t n_batch, int32_t n_ctx, int n_threads);
void fwd_state_destroy(fwd_state *s);
int32_t fwd_state_batch(const fwd_state *s);
/* Runs 1 <= n <= n_batch items through the model: writes their keys and
 * values into their caches and the logits they ask for. Fails only on a bad
 * token id or position (GHOST_ERR_BAD_INPUT, per-thread message), before
 * touching anything. */
ghost_status forward_batch(fwd_state *s, const fwd_item *items, int32_t n);

#endif
