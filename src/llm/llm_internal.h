/*
 * llm_internal.h — the map of libghostllm (internal; not installed).
 *
 * Modules, bottom to top:
 *   errors.c          status strings, per-thread error message (this header)
 *   threadpool.[ch]   persistent worker pool
 *   gguf.[ch]         mmap GGUF loader that validates every field
 *   gguf_write.[ch]   GGUF writer (to memory or atomically to a file)
 *   quant.[ch]        tensor types: type table, scalar reference dequantize /
 *                     quantize / dot products, run-time dispatch;
 *                     quant_internal.h block layouts shared with the SIMD
 *                     files, quant_x86.h their shared kernel templates,
 *                     quant_avx2.c / quant_avx512.c the SIMD variants
 *   tokenizer.[ch]    vocabulary loading, special tokens, pieces, the encode
 *                     driver; tok_spm.c SentencePiece, tok_bpe.c byte-level
 *                     BPE, tok_util.c hash map / heap / UTF-8 under both,
 *                     tok_internal.h what they share
 *   model.[ch]        hyper-parameters + weight views (model.c), the forward
 *                     pass (forward.c), the KV cache (kv_cache.c)
 *   sampler.[ch]      greedy / temperature / top-k / top-p / min-p / penalties
 *   chat.[ch]         chat template families and prompt layout
 *   api.c             the public ghostllm.h functions
 *   batch.c           continuous batching: several contexts' forward calls
 *                     fused into one batch (batch.h, used by the server)
 *
 * Model tools (tools.h; the ghostflow convert / quantize / synth / bench
 * commands):
 *   safetensors.[ch]  validating Hugging Face safetensors reader, JSON loader
 *   convert.c         Hugging Face directory -> GGUF (llama, qwen2)
 *   quantize_file.c   GGUF -> GGUF in another weight type (llama-quantize rules)
 *   synth.c           random-weight models of realistic shapes
 *   bench.c           llama-bench style prompt / generation timing
 *   tools_common.c    what convert, quantize and synth share
 *                     (tools_internal.h): parallel row encoding, type names,
 *                     vocabulary keys, atomic output
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
ghost_status ghost_set_errorv(char *buf, size_t cap, ghost_status code, const char *fmt,
                              va_list ap);
void ghost_clear_error(void);
const char *ghost_thread_errmsg(void);
ghost_status ghost_thread_errcode(void);

#endif
