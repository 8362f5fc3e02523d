/*
 * kv_cache.c — one sequence's attention keys and values.
 *
 * Layout [layer][position][kv_dim], rows of n_head_kv * head_dim elements,
 * F16 by default as in llama.cpp (the model's outputs then match llama.cpp's
 * bit for bit where it matters: keys and values are rounded to F16 on the way
 * in) or F32 on request. Positions are absolute: reusing a prefix of the
 * history means keeping the first rows and overwriting the rest, nothing
 * moves.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "model.h"

ghost_status kv_cache_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, bool f16)
{
    memset(kv, 0, sizeof *kv);
    kv->n_layer = hp->n_layer;
    kv->n_ctx = n_ctx;
    kv->kv_dim = hp->n_head_kv * hp->head_dim;
    kv->f16 = f16;
    kv->row_bytes = (size_t)kv->kv_dim * (f16 ? 2 : 4);
    const size_t rows = (size_t)hp->n_layer * (size_t)n_ctx;
    if (n_ctx <= 0 || rows > SIZE_MAX / 2 / kv->row_bytes)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "KV cache: %d positions is too many",
                               n_ctx);
    /* calloc: the pages are only touched (and resident) as positions fill */
    kv->k = calloc(rows, kv->row_bytes);
    kv->v = calloc(rows, kv->row_bytes);
    if (kv->k == NULL || kv->v == NULL) {
        kv_cache_free(kv);
        return ghost_set_error(GHOST_ERR_NOMEM,
                               "KV cache: out of memory for %d positions x %d layers", n_ctx,
                               hp->n_layer);
    }
    return GHOST_OK;
}

void kv_cache_free(kv_cache *kv)
{
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

size_t kv_cache_bytes(const kv_cache *kv)
{
    return 2 * (size_t)kv->n_layer * (size_t)kv->n_ctx * kv->row_bytes;
}

void kv_cache_store(const kv_cache *kv, void *dst, const float *src, int32_t n)
{
    if (kv->f16) {
        uint16_t *d = dst;
        for (int32_t i = 0; i < n; i++)
            d[i] = quant_f32_to_f16(src[i]);
    } else {
        memcpy(dst, src, (size_t)n * sizeof *src);
    }
}
