/*
 * tokenizer.h — text <-> token ids for GGUF vocabularies (internal).
 *
 * tok_load reads the tokenizer.ggml.* keys of a GGUF file and builds a
 * vocabulary that behaves like llama.cpp's (ggml-org/llama.cpp, llama-vocab.cpp
 * as of c392e509), so prompts tokenize to the same ids:
 *
 *   "llama"  SentencePiece-style: bigram merges by score over UTF-8
 *            characters, '▁' for spaces, a leading space (add_space_prefix),
 *            byte fallback to <0xXX> tokens, <unk> when none exist.
 *   "gpt2"   byte-level BPE: the pre-tokenizer regexes of tokenizer.ggml.pre
 *            (PCRE2), bytes mapped to printable code points, merges by rank.
 *
 * Special tokens (CONTROL and USER_DEFINED types) are cut out of the text
 * before the model-specific algorithm runs: USER_DEFINED ones always,
 * CONTROL/UNKNOWN ones only when parse_special is true — llama.cpp's rule.
 *
 * A tok_vocab is immutable after tok_load: any number of threads may encode
 * with one vocabulary at the same time. It copies what it needs from the
 * gguf_file, which may be closed afterwards.
 *
 * Errors go through ghost_set_error: messages name the key or the byte offset.
 */
#ifndef GHOST_TOKENIZER_H
#define GHOST_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "gguf.h"

typedef struct tok_vocab tok_vocab;

/* Builds the vocabulary of f. On failure *out is NULL and the message names
 * the key: GHOST_ERR_FORMAT for missing or malformed keys,
 * GHOST_ERR_UNSUPPORTED for tokenizer models or pre-tokenizers not handled
 * (the message lists the supported ones). Free with tok_free. */
ghost_status tok_load(const gguf_file *f, tok_vocab **out);
void tok_free(tok_vocab *v);

/* Tokenizes len bytes of text (need not be NUL-terminated). add_special adds
 * BOS/EOS as tok_add_bos/tok_add_eos say; parse_special turns the text of
 * CONTROL tokens ("<|im_start|>") into those tokens. Writes at most cap ids
 * to out and the full count to *n_out; GHOST_ERR_BUFFER_TOO_SMALL when
 * cap < *n_out (out then holds the first cap ids). Invalid UTF-8 is
 * GHOST_ERR_BAD_INPUT with the byte offset in the message. */
ghost_status tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *out, size_t cap, size_t *n_out);

/* The bytes token id contributes to output text (llama.cpp's token_to_piece
 * with special=false): SPM '▁' -> ' ', <0xXX> -> that byte, byte-level BPE
 * code points -> bytes, USER_DEFINED -> its text, CONTROL/UNKNOWN/UNUSED ->
 * nothing. A piece may be part of a UTF-8 character. Returns the length
 * written to buf, -1 for an id out of range, or -(length) when cap is short
 * (buf untouched). */
int32_t tok_piece(const tok_vocab *v, int32_t id, char *buf, size_t cap);

int32_t tok_n_vocab(const tok_vocab *v);
int32_t tok_bos(const tok_vocab *v); /* -1 if none */
int32_t tok_eos(const tok_vocab *v); /* -1 if none */
/* End of generation: eos, eot, eom, and tokens such as <|im_end|>,
 * <|endoftext|>, <|end|>, <end_of_turn> found by their text. */
bool tok_is_eog(const tok_vocab *v, int32_t id);
bool tok_add_bos(const tok_vocab *v);
bool tok_add_eos(const tok_vocab *v);
/* The vocabulary string of id, NUL-terminated, owned by v; NULL if out of
 * range. (A token holding a NUL byte reads short here; tok_piece is exact.) */
const char *tok_text(const tok_vocab *v, int32_t id);

/* Token types as stored in tokenizer.ggml.token_type (llama.cpp's values). */
typedef enum tok_type {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6
} tok_type;

tok_type tok_get_type(const tok_vocab *v, int32_t id); /* UNDEFINED if out of range */

#endif
