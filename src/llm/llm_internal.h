/*
 * llm_internal.h — the map of libghostllm (internal; not installed).
 *
 * Modules, bottom to top:
 *   errors.c        status strings, per-thread error message
 *   gguf.[ch]       mmap GGUF loader that validates every field
 *   quant.[ch]      tensor types: block layouts, scalar dequantize / dot
 *                   products (reference), activation quantization;
 *                   quant_avx2.c / quant_avx512.c SIMD variants, dispatch
 *   tokenizer.[ch]  SentencePiece and BPE tokenizers, detokenizer
 *   model.[ch]      hyper-parameters + weight views, forward pass, KV cache
 *   sampler.[ch]    greedy / temperature / top-k / top-p / min-p / penalties
 *   threadpool.[ch] persistent worker pool
 *   api.c           the public ghostllm.h functions
 */
#ifndef GHOST_LLM_INTERNAL_H
#define GHOST_LLM_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "ghostllm.h"

#define GHOST_ERRMSG_MAX 512

/* Records code and a message for the calling thread; returns code so callers
 * can write `return ghost_set_error(GHOST_ERR_FORMAT, "...", ...);`. */
ghost_status ghost_set_error(ghost_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
ghost_status ghost_set_errorv(char *buf, size_t cap, ghost_status code, const char *fmt, va_list ap);
void ghost_clear_error(void);
const char *ghost_thread_errmsg(void);
ghost_status ghost_thread_errcode(void);

#endif
