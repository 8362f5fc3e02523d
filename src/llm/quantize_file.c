/*
 * quantize_file.c — `ghostflow quantize`: GGUF in, GGUF out with the weight
 * matrices in another type, following llama-quantize (c392e509) where it
 * decides what a file looks like:
 *
 *   - only tensors named "*weight" with 2 or more dimensions are quantized,
 *     never a norm ("*_norm.weight"); everything else is copied byte for byte
 *   - a matrix whose row length is not a multiple of the type's block gets
 *     llama-quantize's fallback (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, then F16
 *     if that does not fit either), counted in quantize_stats.n_fallback
 *   - the quantizers are ggml's reference ones (quant_quantize_row), the
 *     bytes llama-quantize writes without an importance matrix
 *   - every key is copied; general.file_type and
 *     general.quantization_version are set
 *
 * The one difference: every matrix gets the requested type ("pure", as
 * llama-quantize --pure), where llama-quantize's default mixes would give
 * some tensors (output, attn_v, ffn_down) more bits. Input weights in any
 * type we can dequantize are accepted (llama-quantize's
 * --allow-requantize).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "llm_internal.h"
#include "tools_internal.h"

static const ggml_type quantize_types[] = {
    GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K,
    GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL,
};

const char *quantize_type_list(void)
{
    return "Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, IQ4_NL";
}

bool quantize_type_ok(ggml_type t)
{
    for (size_t i = 0; i < sizeof quantize_types / sizeof quantize_types[0]; i++)
        if (quantize_types[i] == t)
            return true;
    return false;
}

ggml_type quantize_tensor_type(ggml_type type, int64_t n_in)
{
    if (quant_row_size(type, n_in) != 0)
        return type;
    ggml_type fb;
    switch (type) {
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q3_K: fb = GGML_TYPE_IQ4_NL; break;
    case GGML_TYPE_Q4_K: fb = GGML_TYPE_Q5_0; break;
    case GGML_TYPE_Q5_K: fb = GGML_TYPE_Q5_1; break;
    case GGML_TYPE_Q6_K: fb = GGML_TYPE_Q8_0; break;
    default: fb = GGML_TYPE_F16; break;
    }
    return quant_row_size(fb, n_in) != 0 ? fb : GGML_TYPE_F16;
}

bool quantize_wants(const char *name, uint32_t n_dims)
{
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 6, "weight") != 0 || n_dims < 2)
        return false;
    return strstr(name, "_norm.weight") == NULL;
}

/* ---- the whole file ------------------------------------------------------------------ */

typedef struct q_src {
    const gguf_tensor *t;
    ggml_type from;
} q_src;

static void dequant_row(void *user, int64_t row, float *dst)
{
    const q_src *s = user;
    size_t rb = quant_row_size(s->from, s->t->ne[0]);
    quant_dequantize_row(s->from, (const uint8_t *)s->t->data + (size_t)row * rb, dst, s->t->ne[0]);
}

/* Copies every key, with general.file_type and general.quantization_version
 * set for the new file (in place when present, appended when not). */
static ghost_status copy_keys(gguf_writer *w, const gguf_file *in, ggml_type type)
{
    ghost_status rc = GHOST_OK;
    for (uint64_t i = 0; i < in->n_kv && rc == GHOST_OK; i++) {
        const gguf_kv *kv = &in->kv[i];
        if (gguf_str_eq(kv->key, "general.file_type"))
            rc = gguf_writer_add_u32(w, "general.file_type", tools_file_type(type));
        else if (gguf_str_eq(kv->key, "general.quantization_version"))
            rc = gguf_writer_add_u32(w, "general.quantization_version", 2);
        else
            rc = gguf_writer_copy_kv(w, kv);
    }
    if (rc == GHOST_OK && !gguf_writer_has_key(w, "general.file_type"))
        rc = gguf_writer_add_u32(w, "general.file_type", tools_file_type(type));
    if (rc == GHOST_OK && !gguf_writer_has_key(w, "general.quantization_version"))
        rc = gguf_writer_add_u32(w, "general.quantization_version", 2);
    return rc;
}

ghost_status quantize_gguf(const char *in_path, const char *out_path, const quantize_params *p,
                           quantize_stats *stats)
{
    quantize_stats local;
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (in_path == NULL || out_path == NULL || p == NULL || !quantize_type_ok(p->type))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "quantize: need an input, an output and a type (%s)",
                               quantize_type_list());
    gguf_file *in = NULL;
    ghost_status rc = gguf_open(in_path, &in);
    if (rc != GHOST_OK)
        return rc;
    const size_t n = (size_t)in->n_tensors;
    q_src *srcs = calloc(n ? n : 1, sizeof *srcs);
    tools_tensor *tt = calloc(n ? n : 1, sizeof *tt);
    gguf_writer *w = NULL;
    tools_job job;
    if ((rc = tools_job_init(&job, p->n_threads, p->progress, p->user)) != GHOST_OK)
        goto out;
    if (srcs == NULL || tt == NULL || (w = gguf_writer_create()) == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = copy_keys(w, in, p->type)) != GHOST_OK)
        goto out;
    for (size_t i = 0; i < n && rc == GHOST_OK; i++) {
        const gguf_tensor *t = &in->tensors[i];
        const ggml_type from = (ggml_type)t->type;
        ggml_type to = from;
        if (quantize_wants(t->name, t->n_dims)) {
            to = quantize_tensor_type(p->type, t->ne[0]);
            if (to != from && to == p->type)
                stats->n_quantized++;
            else if (to != from)
                stats->n_fallback++;
        }
        if (to == from)
            stats->n_kept++;
        const int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        srcs[i] = (q_src){t, from};
        tt[i] = (tools_tensor){
            &job, to, t->ne[0], n_rows, dequant_row, &srcs[i], to == from ? t->data : NULL};
        stats->bytes_in += t->nbytes;
        stats->bytes_out += quant_row_size(to, t->ne[0]) * (uint64_t)n_rows;
        rc = tools_add_tensor(w, &tt[i], t->name, t->n_dims, t->ne);
    }
    stats->n_tensors = (uint32_t)n;
    if (rc == GHOST_OK)
        rc = gguf_writer_write_file(w, out_path);
out:
    gguf_writer_destroy(w);
    tools_job_free(&job);
    free(tt);
    free(srcs);
    gguf_close(in);
    return rc;
}
