/*
 * ghostllm.h — public API of libghostllm, a GGUF inference engine for
 * llama-family models (llama, qwen2) written in C11.
 *
 * Two objects:
 *   ghost_model    the loaded weights (mmapped from the GGUF file, never copied),
 *                  vocabulary and hyper-parameters. Read-only after load: one
 *                  model may be shared by any number of contexts and threads.
 *   ghost_context  one conversation's state: KV cache, token history, sampler
 *                  and scratch buffers. Use a context from one thread at a time;
 *                  ghost_context_cancel() is the one call that may come from
 *                  another thread (or a signal handler).
 *
 * Errors (see docs/conventions.md): functions return a ghost_status, or NULL
 * for constructors. The human message ("tensor blk.3.ffn_up: offset 812344 past
 * end of file (size 600000)") is kept on the context (ghost_errmsg(ctx)); for
 * calls without a context — model loading, tokenizing with a bare model — it is
 * kept per thread and read with ghost_errmsg(NULL). The library never prints
 * and never exits.
 *
 * Ownership: everything returned by a ghost_* function that is not const is
 * owned by the caller and freed with the function named in its comment.
 */
#ifndef GHOSTLLM_H
#define GHOSTLLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GF_BUILDING_LIBRARY)
#define GHOST_API __attribute__((visibility("default")))
#else
#define GHOST_API
#endif

#define GHOST_VERSION "0.1.0"

/* ---- errors -------------------------------------------------------------- */

typedef enum ghost_status {
    GHOST_OK = 0,
    GHOST_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, out-of-range parameter */
    GHOST_ERR_IO = 2,               /* file cannot be opened, read or mapped */
    GHOST_ERR_FORMAT = 3,           /* malformed GGUF file or tokenizer data */
    GHOST_ERR_UNSUPPORTED = 4,      /* unknown architecture, tensor type, ... */
    GHOST_ERR_NOMEM = 5,
    GHOST_ERR_CONTEXT_FULL = 6, /* prompt does not fit the context window */
    GHOST_ERR_CANCELLED = 7,    /* callback or ghost_context_cancel stopped it */
    GHOST_ERR_BAD_INPUT = 8,    /* text that is not valid UTF-8, bad token id */
    GHOST_ERR_BUFFER_TOO_SMALL = 9,
    GHOST_ERR_INTERNAL = 10
} ghost_status;

typedef struct ghost_model ghost_model;
typedef struct ghost_context ghost_context;

/* Static description of a code ("malformed GGUF file"). Never NULL. */
GHOST_API const char *ghost_strerror(ghost_status code);
/* Last error message on ctx, or the calling thread's last error when ctx is
 * NULL. Never NULL; "" when there was no error. Valid until the next call. */
GHOST_API const char *ghost_errmsg(const ghost_context *ctx);
GHOST_API ghost_status ghost_errcode(const ghost_context *ctx);
GHOST_API const char *ghost_version(void);

/* ---- parameters ---------------------------------------------------------- */

#define GHOST_SEED_RANDOM UINT64_MAX

/* Per-generation settings. Start from ghost_default_gen_params(). */
typedef struct ghost_gen_params {
    int32_t max_tokens;      /* tokens to generate at most (default 2048); -1 = until
                                the context window is full; 0 = evaluate the prompt
                                into the KV cache only */
    float temperature;       /* 0 = greedy (default 0.7) */
    int32_t top_k;           /* 0 = off (default 40) */
    float top_p;             /* 1 = off (default 0.95) */
    float min_p;             /* 0 = off (default 0.05) */
    float repeat_penalty;    /* 1 = off (default 1.0) */
    int32_t repeat_last_n;   /* window for the penalty, over prompt and answer
                                (default 64; -1 = everything in the context) */
    uint64_t seed;           /* GHOST_SEED_RANDOM = from the OS (default); the same
                                seed, prompt and settings give the same text */
    const char *const *stop; /* stop strings (not included in the output) */
    size_t n_stop;
    bool parse_special; /* prompt text like "<|im_start|>" maps to special
                           tokens (chat templates); default false */
    bool add_bos;       /* prepend BOS when the model asks for it (default true) */
} ghost_gen_params;

/* Per-context settings. Start from ghost_default_params(). */
typedef struct ghost_params {
    int32_t n_ctx;        /* context window in tokens; 0 = min(training ctx, 4096) */
    int32_t n_threads;    /* 0 = number of online CPUs */
    bool kv_f16;          /* keep the KV cache in F16 like llama.cpp (default
                             true; false = F32, twice the memory) */
    ghost_gen_params gen; /* defaults for ghost_generate() */
} ghost_params;

GHOST_API ghost_params ghost_default_params(void);
GHOST_API ghost_gen_params ghost_default_gen_params(void);

/* ---- model --------------------------------------------------------------- */

/* Maps and validates a GGUF file. NULL on failure: ghost_errmsg(NULL) says
 * what and where. Free with ghost_model_free() after every context using it.
 * The kernels (best the CPU has; GHOST_ISA=scalar|avx2|avx512 may lower them) are
 * chosen here. With AVX2/AVX-512 kernels, Q4_0, Q4_K, Q5_K and Q6_K
 * matrices are copied into a faster eight-row layout (results: the scalar
 * reference's bits; GHOST_REPACK=0 keeps them mapped). An unknown GHOST_ISA
 * or GHOST_REPACK value fails the load (GHOST_ERR_INVALID_ARGUMENT). */
GHOST_API ghost_model *ghost_model_load(const char *path);
GHOST_API void ghost_model_free(ghost_model *model);

typedef struct ghost_model_info {
    const char *architecture;  /* "llama", "qwen2" */
    const char *name;          /* general.name or the file name */
    const char *chat_template; /* tokenizer.chat_template or NULL */
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t bos_token, eos_token; /* -1 when absent */
    uint64_t n_params;
    uint64_t file_size;
    const char *file_type; /* dominant tensor type, e.g. "Q8_0" */
} ghost_model_info;

/* Fills *info; the strings are owned by the model. */
GHOST_API ghost_status ghost_model_get_info(const ghost_model *model, ghost_model_info *info);

/* ---- tokenizer ----------------------------------------------------------- */

/* Tokenizes len bytes of text. Writes up to cap ids to tokens and the number
 * needed to *n_tokens; returns GHOST_ERR_BUFFER_TOO_SMALL when cap is short.
 * add_special: BOS/EOS as the model's metadata asks. parse_special: text such
 * as "<|im_start|>" becomes its special token. Invalid UTF-8 → GHOST_ERR_BAD_INPUT. */
GHOST_API ghost_status ghost_tokenize(const ghost_model *model, const char *text, size_t len,
                                      bool add_special, bool parse_special, int32_t *tokens,
                                      size_t cap, size_t *n_tokens);

/* Text of tokens[0..n) as a NUL-terminated string in *text (free with ghost_free). */
GHOST_API ghost_status ghost_detokenize(const ghost_model *model, const int32_t *tokens, size_t n,
                                        char **text);

/* Raw bytes of one token's piece (may be part of a UTF-8 character), copied to
 * buf. Returns the length, or -1 for an invalid id, or -(needed) if cap is short. */
GHOST_API int32_t ghost_token_to_piece(const ghost_model *model, int32_t token, char *buf,
                                       size_t cap);

/* ---- chat ---------------------------------------------------------------- */

typedef struct ghost_chat_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} ghost_chat_message;

/* Formats a conversation with the model's chat template (the common template
 * families are recognised: chatml, llama2, llama3, phi3, gemma, mistral,
 * deepseek, zephyr). add_assistant: end with the assistant turn's opening.
 * Models without a template get plain continuation (contents joined by "\n").
 * *out is freed with ghost_free. */
GHOST_API ghost_status ghost_chat_format(const ghost_model *model, const ghost_chat_message *msgs,
                                         size_t n_msgs, bool add_assistant, char **out);

/* ---- context and generation ---------------------------------------------- */

/* A context over a shared model (the model must outlive it). NULL on failure. */
GHOST_API ghost_context *ghost_context_new(const ghost_model *model, const ghost_params *params);

/* Seed API: loads the model and a context that owns it, with default
 * parameters (max_tokens 2048, temperature 0.7). NULL on failure. */
GHOST_API ghost_context *ghost_init(const char *model_path);
GHOST_API ghost_context *ghost_init_ex(const char *model_path, const ghost_params *params);
/* Frees the context (and its model when ghost_init* loaded it). NULL is a no-op. */
GHOST_API void ghost_free_context(ghost_context *ctx);

GHOST_API const ghost_model *ghost_context_model(const ghost_context *ctx);

/* Asks a running generation to stop at the next token. Async-signal-safe and
 * thread-safe; the flag is cleared when the next generation starts. */
GHOST_API void ghost_context_cancel(ghost_context *ctx);

typedef enum ghost_finish_reason {
    GHOST_FINISH_STOP = 0,      /* end-of-generation token or a stop string */
    GHOST_FINISH_LENGTH = 1,    /* max_tokens reached, or the context window filled */
    GHOST_FINISH_CANCELLED = 2, /* callback returned non-zero or ghost_context_cancel */
    GHOST_FINISH_ERROR = 3
} ghost_finish_reason;

typedef struct ghost_response {
    char *text;      /* generated text (prompt excluded), NUL-terminated */
    int tokens_used; /* prompt + completion tokens (seed field) */
    int error_code;  /* a ghost_status (seed field) */
    int prompt_tokens;
    int completion_tokens;
    int cached_tokens; /* prompt tokens reused from the KV cache */
    ghost_finish_reason finish_reason;
    double prompt_ms;     /* prompt processing time */
    double generation_ms; /* generation time */
    char *error_message;  /* NULL on success */
} ghost_response;

/* Streaming callback: receives each piece of text as soon as it forms whole
 * UTF-8 characters (never half a character). Return 0 to go on, non-zero to
 * cancel (finish_reason CANCELLED; the text so far is kept). */
typedef int (*ghost_stream_fn)(const char *piece, size_t len, void *user_data);
/* Seed callback (no user data, no cancellation). */
typedef void (*ghost_token_callback)(const char *piece);

/* Generates a continuation of prompt with the context's default parameters.
 * The KV cache keeps prompt + answer; a following prompt that starts with the
 * same tokens reuses them (cached_tokens says how many). Returns NULL only
 * when out of memory; otherwise check error_code. Free with ghost_free_response.
 *
 * Context window: prompt + answer never exceed n_ctx tokens. A prompt of
 * n_ctx tokens or more leaves no room for an answer and fails with
 * GHOST_ERR_CONTEXT_FULL (nothing is evaluated, the cache is kept). An answer
 * that reaches the end of the window stops there with GHOST_FINISH_LENGTH
 * (error_code GHOST_OK); nothing is shifted or dropped.
 *
 * Cancellation (callback returning non-zero, or ghost_context_cancel): the
 * response has finish_reason GHOST_FINISH_CANCELLED, error_code
 * GHOST_ERR_CANCELLED, and text = exactly what the callback received. Stop
 * strings are cut from the text and never streamed, even in part. */
GHOST_API ghost_response *ghost_generate(ghost_context *ctx, const char *prompt,
                                         ghost_token_callback callback);
GHOST_API ghost_response *ghost_generate_ex(ghost_context *ctx, const char *prompt,
                                            const ghost_gen_params *params,
                                            ghost_stream_fn callback, void *user_data);
GHOST_API void ghost_free_response(ghost_response *response);

/* Drops the context's KV cache and token history. */
GHOST_API void ghost_context_reset(ghost_context *ctx);

/* Frees memory returned by ghost_detokenize / ghost_chat_format. */
GHOST_API void ghost_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* GHOSTLLM_H */
