/*
 * tools_internal.h — what convert.c, quantize_file.c and synth.c share
 * (tools_common.c): encoding rows of floats into a tensor type in parallel,
 * writing a vocabulary's keys, and finishing an output file atomically.
 */
#ifndef GHOST_TOOLS_INTERNAL_H
#define GHOST_TOOLS_INTERNAL_H

#include <stdint.h>

#include "gguf_write.h"
#include "quant.h"
#include "threadpool.h"
#include "tools.h"

/* Produces row `row` of a tensor as n_in floats (called from any thread of
 * the pool, rows in no particular order). */
typedef void (*tools_row_fn)(void *user, int64_t row, float *dst);

/* Encodes n_rows rows of n_in elements into dst (n_rows * row size bytes of
 * `type`: F32, F16, BF16 or a type with a reference quantizer), the rows
 * split across the pool. */
ghost_status tools_encode_rows(threadpool *pool, ggml_type type, int64_t n_in, int64_t n_rows,
                               tools_row_fn fn, void *user, void *dst);

/* One output file being produced: the pool rows are encoded on and the
 * progress of the data written so far. */
typedef struct tools_job {
    threadpool *pool; /* NULL = the calling thread only */
    tools_progress_fn progress;
    void *user;
    uint64_t done, total; /* bytes of tensor data */
} tools_job;

/* Where one output tensor's bytes come from at write time: copied from
 * `copy`, or rows produced by row() and encoded into type. Must outlive the
 * gguf_writer_write_file call. */
typedef struct tools_tensor {
    tools_job *job;
    ggml_type type;
    int64_t n_in, n_rows;
    tools_row_fn row;
    void *row_user;
    const void *copy;
} tools_tensor;

/* Adds t to w as tensor name (shape ne[0..n_dims)) filled at write time, and
 * counts its bytes in the job's total. */
ghost_status tools_add_tensor(gguf_writer *w, tools_tensor *t, const char *name, uint32_t n_dims,
                              const int64_t *ne);
/* Creates the job's pool of n_threads (<= 1: none). */
ghost_status tools_job_init(tools_job *job, int n_threads, tools_progress_fn progress, void *user);
void tools_job_free(tools_job *job);

/* The llama_ftype value general.file_type holds for a file mostly of type. */
uint32_t tools_file_type(ggml_type type);

/* Hyper-parameters as convert and synth write them ({arch}.* keys). */
typedef struct tools_hparams {
    const char *arch; /* "llama" / "qwen2"; static */
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    int64_t head_dim; /* 0 = not given (n_embd / n_head) */
    double rope_theta, rms_eps;
    bool has_rope_theta, has_rms_eps, tied;
    const char *rope_scaling_type; /* "linear" / "yarn" or NULL */
    double rope_scaling_factor;
    int64_t rope_orig_ctx;
} tools_hparams;

/* general.architecture/type/name, the {arch}.* keys in convert_hf_to_gguf.py's
 * order, and general.file_type for a file mostly of type ftype. */
ghost_status tools_write_model_keys(gguf_writer *w, const tools_hparams *hp, const char *name,
                                    ggml_type ftype);

/* Adds tokenizer.ggml.* (and tokenizer.chat_template) for v. */
ghost_status tools_vocab_write(gguf_writer *w, const tools_vocab *v);

#endif
