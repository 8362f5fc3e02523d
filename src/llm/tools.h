/*
 * tools.h — the engine side of the model tools (internal; used by the
 * ghostflow convert / quantize / synth / bench commands and by tests):
 *
 *   convert.c        Hugging Face directory (safetensors + config.json +
 *                    tokenizer.json) → GGUF, as llama.cpp's
 *                    convert_hf_to_gguf.py writes it, for llama and qwen2
 *   quantize_file.c  GGUF → GGUF in another weight type, with llama-quantize's
 *                    rules for what stays F32 and its per-tensor fallbacks
 *   synth.c          random-weight GGUF files of realistic shapes (and a
 *                    generated vocabulary) for benchmarks and tests
 *   bench.c          llama-bench-style timing of prompt processing and
 *                    generation, and a memory read/copy bandwidth probe
 *
 * Like the rest of libghostllm these never print: they return a ghost_status
 * with the per-thread message (ghost_errmsg(NULL)), and report progress
 * through a callback the program may draw as it likes.
 */
#ifndef GHOST_TOOLS_H
#define GHOST_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "quant.h"

/* Called after each tensor is written: done of total bytes of output tensor
 * data, and the tensor's name. May be NULL. */
typedef void (*tools_progress_fn)(void *user, uint64_t done, uint64_t total, const char *tensor);

/* Parses a type name as the tools accept it ("q4_k", "Q8_0", "f16"):
 * GGML_TYPE_MAX_ID when unknown. */
ggml_type tools_parse_type(const char *name);

/* ---- vocabulary as written to GGUF (convert.c builds one from tokenizer.json,
 * synth.c generates one) ------------------------------------------------------- */

/* The special-token kinds convert_hf_to_gguf.py writes, in its order. */
enum { TV_BOS, TV_EOS, TV_UNK, TV_SEP, TV_PAD, TV_MASK, TV_N_SPECIAL };

typedef struct tools_vocab {
    const char *model; /* "llama" (SentencePiece-style) or "gpt2" (BPE); static */
    const char *pre;   /* tokenizer.ggml.pre; static */
    uint32_t n;
    char **tokens;  /* n owned strings */
    float *scores;  /* n, or NULL (gpt2 writes none) */
    int32_t *types; /* n token types (tokenizer.h's TOK_TYPE_*) */
    uint32_t n_merges;
    char **merges;                             /* "left right", owned; gpt2 only */
    int64_t special[TV_N_SPECIAL];             /* ids, -1 when absent */
    int8_t add_bos, add_eos, add_space_prefix; /* -1 = key not written */
    char *chat_template;                       /* owned or NULL */
} tools_vocab;

/* Allocates n tokens (and scores when with_scores) with everything else
 * absent. Free with tools_vocab_free. */
ghost_status tools_vocab_init(tools_vocab *v, uint32_t n, bool with_scores);
void tools_vocab_free(tools_vocab *v);

/* ---- convert ------------------------------------------------------------------ */

typedef struct convert_params {
    ggml_type out_type; /* F32, F16 (default, as llama.cpp), BF16 or Q8_0;
                           1-D tensors and norms always stay F32 */
    const char *name;   /* general.name; NULL = the directory's name */
    tools_progress_fn progress;
    void *user;
} convert_params;

convert_params convert_default_params(void);
/* The output types convert accepts, for messages: "f32, f16, bf16, q8_0". */
const char *convert_type_list(void);
/* Converts hf_dir to out_path (written whole to a temporary name, then
 * renamed, so a failure leaves no partial file). */
ghost_status convert_hf(const char *hf_dir, const char *out_path, const convert_params *p);

/* ---- quantize ----------------------------------------------------------------- */

typedef struct quantize_params {
    ggml_type type; /* one of quantize_type_list() */
    int n_threads;  /* 0 = 1 */
    tools_progress_fn progress;
    void *user;
} quantize_params;

typedef struct quantize_stats {
    uint32_t n_tensors;           /* in the file */
    uint32_t n_quantized;         /* written in params.type */
    uint32_t n_fallback;          /* written in a fallback type (row length) */
    uint32_t n_kept;              /* copied as they were (norms, 1-D, same type) */
    uint64_t bytes_in, bytes_out; /* tensor data */
} quantize_stats;

const char *quantize_type_list(void); /* "Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, IQ4_NL" */
bool quantize_type_ok(ggml_type t);
/* The type llama-quantize gives a weight of row length n_in when type was
 * asked for: type itself, or its fallback (Q4_K→Q5_0, Q5_K→Q5_1,
 * Q6_K→Q8_0, then F16) when n_in is not a multiple of the block size. */
ggml_type quantize_tensor_type(ggml_type type, int64_t n_in);
/* Whether llama-quantize would quantize a tensor of this name and rank (only
 * "*weight" tensors of 2 or more dimensions that are not norms). */
bool quantize_wants(const char *name, uint32_t n_dims);
/* stats may be NULL. */
ghost_status quantize_gguf(const char *in_path, const char *out_path, const quantize_params *p,
                           quantize_stats *stats);

/* ---- synth -------------------------------------------------------------------- */

typedef struct synth_shape {
    const char *name; /* "tinyllama-1.1b" */
    const char *arch; /* "llama" or "qwen2" */
    const char *summary;
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float rope_base, rms_eps;
    bool tied_output; /* no output.weight: the embeddings are reused */
} synth_shape;

/* NULL when unknown. */
const synth_shape *synth_find_shape(const char *name);
/* The shapes, NULL-terminated by a zero entry (name == NULL). */
const synth_shape *synth_shapes(void);
const char *synth_type_list(void); /* "F32, F16, BF16, Q8_0, Q4_0, ..." */
bool synth_type_ok(ggml_type t);

typedef struct synth_params {
    ggml_type type;
    uint64_t seed;
    int n_threads; /* 0 = 1 */
    tools_progress_fn progress;
    void *user;
} synth_params;

ghost_status synth_write(const char *out_path, const synth_shape *shape, const synth_params *p);

/* ---- bench -------------------------------------------------------------------- */

typedef struct bench_params {
    int32_t n_prompt; /* tokens in one prompt batch (0 = skip pp) */
    int32_t n_gen;    /* tokens generated one at a time (0 = skip tg) */
    int32_t n_threads;
    int32_t reps; /* timed repetitions after one warm-up */
    bool kv_f16;
} bench_params;

typedef struct bench_stat {
    double mean, stddev; /* tokens per second over the repetitions */
    double mean_ms;      /* milliseconds per repetition */
} bench_stat;

typedef struct bench_result {
    bench_stat pp, tg;
} bench_result;

/* Like llama-bench: each repetition starts from an empty KV cache; pp runs
 * n_prompt random tokens as one batch (logits for the last only), tg runs
 * n_gen random tokens one by one — exactly that many, EOS means nothing. */
ghost_status bench_model(const ghost_model *m, const bench_params *p, bench_result *r);

/* Bytes of weights one generated token reads: every layer matrix and norm,
 * the output matrix and one row of the embeddings. */
uint64_t bench_weight_bytes_per_token(const ghost_model *m);

typedef struct bench_bandwidth {
    double read_gbs; /* 1e9 bytes/s read, best of the runs */
    double copy_gbs; /* 1e9 bytes/s of memcpy (read + write counted) */
} bench_bandwidth;

/* Streams a buffer of `bytes` (rounded to 64 MiB at least) with n_threads
 * threads: the bandwidth a weight-streaming decoder can hope for. */
ghost_status bench_memory_bandwidth(int n_threads, size_t bytes, bench_bandwidth *out);

#endif
