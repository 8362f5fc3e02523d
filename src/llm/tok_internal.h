/*
 * tok_internal.h — what tokenizer.c, tok_spm.c, tok_bpe.c and tok_util.c share.
 *
 * The vocabulary keeps every token string in one arena (NUL-terminated
 * copies), a hash map from string to id, and a precomputed "piece" per token
 * (the bytes it adds to output text). The model-specific encoders receive one
 * raw-text fragment at a time (special tokens already cut out) and append ids
 * through a tok_out, which counts past its capacity so callers learn the size
 * they need.
 */
#ifndef GHOST_TOK_INTERNAL_H
#define GHOST_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* ---- strings and the string -> index hash map ---------------------------- */

/* A byte string. split is used by the BPE merge map: the merge "ab" + "c"
 * is stored as "abc" with split 2, so a lookup of two adjacent symbols needs
 * no concatenation. */
typedef struct tok_str {
    const char *ptr;
    uint32_t len;
    uint32_t split;
} tok_str;

#define TOK_NO_SPLIT UINT32_MAX

/* Open addressing, linear probing. Slots hold an index into the caller's key
 * array (UINT32_MAX = empty) and the key's hash, so collisions rarely touch
 * the strings. */
typedef struct tok_map {
    uint32_t *idx;
    uint32_t *hash;
    size_t mask;
} tok_map;

uint32_t tok_hash(const char *s, size_t n);
bool tok_map_init(tok_map *m, size_t n_keys);
void tok_map_free(tok_map *m);
/* Inserts key index i of keys[]. With replace, an equal key already present
 * is re-pointed to i (later tokens win, as in llama.cpp); without, the
 * first stays (lowest merge rank wins). */
void tok_map_put(tok_map *m, const tok_str *keys, uint32_t i, bool replace);
/* Index of the key equal to (s, n) — and with the given split unless split is
 * TOK_NO_SPLIT — or -1. */
int32_t tok_map_get(const tok_map *m, const tok_str *keys, const char *s, size_t n, uint32_t split);

/* ---- priority queue of candidate merges ---------------------------------- */

/* A min-heap ordered by key alone. Both algorithms pack "best first, then
 * leftmost" into the key: (priority << 32) | left symbol index. */
typedef struct tok_bigram {
    uint64_t key;
    int32_t right;
    uint32_t size; /* byte length of the merged text when queued */
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *v;
    size_t n, cap;
} tok_heap;

bool tok_heap_push(tok_heap *h, tok_bigram b);
tok_bigram tok_heap_pop(tok_heap *h); /* caller checks h->n > 0 */

static inline int32_t tok_bigram_left(tok_bigram b)
{
    return (int32_t)(uint32_t)b.key;
}

/* ---- symbols: a doubly linked list over a text being merged -------------- */

typedef struct tok_symbol {
    int32_t prev, next;
    const char *text;
    uint32_t n; /* 0 once merged into its left neighbour */
} tok_symbol;

/* Proposes the pair (left, right) to the queue if it may merge; false only
 * when out of memory. */
typedef bool (*tok_pair_fn)(void *ctx, int32_t left, int32_t right);

/* The merge loop both algorithms share: seeds h with every adjacent pair of
 * sym[0..n), then pops the best pair, skips it when stale (a symbol merged
 * away, or the lengths no longer sum to the queued size), merges right into
 * left and proposes the new pairs on both sides — until the queue is empty.
 * False when out of memory. */
bool tok_merge_all(tok_symbol *sym, int32_t n, tok_heap *h, tok_pair_fn add, void *ctx);

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Byte length of the UTF-8 sequence starting with lead byte c (1 for
 * continuation or invalid bytes, as llama.cpp's unicode_len_utf8). */
static inline size_t tok_utf8_len(unsigned char c)
{
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* Strict check (no overlongs, surrogates or code points past U+10FFFF).
 * Returns len when valid, else the offset of the first bad byte. */
size_t tok_utf8_check(const char *s, size_t len);
/* Decodes one code point at s (valid UTF-8 of at most n bytes); sets *adv. */
uint32_t tok_utf8_decode(const char *s, size_t n, size_t *adv);
/* Encodes cp into out (4 bytes room); returns its length. */
size_t tok_utf8_encode(uint32_t cp, char *out);

/* ---- growable scratch ------------------------------------------------------ */

/* Returns p grown (realloc) to hold at least n elements of size elem and
 * updates *cap; p itself when already big enough; NULL when out of memory
 * (p is then still valid and owned by the caller). */
void *tok_grow(void *p, size_t *cap, size_t n, size_t elem);

/* ---- output ---------------------------------------------------------------- */

typedef struct tok_out {
    int32_t *ids;
    size_t cap;
    size_t n; /* may exceed cap: the count the caller needs */
} tok_out;

static inline void tok_emit(tok_out *o, int32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* ---- the vocabulary --------------------------------------------------------- */

typedef enum tok_kind { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 } tok_kind;

/* Per-token attributes beyond the type, as llama.cpp derives them. */
enum { TOK_ATTR_LSTRIP = 1, TOK_ATTR_RSTRIP = 2 };

typedef struct tok_bpe tok_bpe;

struct tok_vocab {
    tok_kind kind;
    int32_t n_vocab;
    tok_str *tokens; /* text of each id, into arena */
    char *arena;
    float *scores;  /* SPM merge priority; 0 when the file has none */
    uint8_t *types; /* tok_type */
    uint8_t *attrs; /* TOK_ATTR_* */
    tok_map map;    /* text -> id */

    /* piece of id i: pieces + piece_off[i], piece_off[i+1] - piece_off[i] bytes */
    char *pieces;
    uint32_t *piece_off;

    /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int32_t *specials;
    int32_t n_specials;

    uint8_t *eog; /* bitmap of end-of-generation ids */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix;

    int32_t spm_byte[256]; /* SPM byte fallback: <0xXX>, else the 1-byte token, else -1 */
    tok_bpe *bpe;          /* merges and pre-tokenizer; NULL for SPM */
};

/* Id of the token whose text is (s, n), or -1. */
static inline int32_t tok_lookup(const tok_vocab *v, const char *s, size_t n)
{
    return tok_map_get(&v->map, v->tokens, s, n, TOK_NO_SPLIT);
}

/* ---- model-specific parts ----------------------------------------------------- */

/* SPM: encodes one raw fragment; space_prefix puts a ' ' before it, and
 * spaces become U+2581 inside. */
ghost_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, bool space_prefix,
                            tok_out *out);

/* BPE: loads merges and the pre-tokenizer of tokenizer.ggml.pre into v->bpe;
 * sets v->add_bos default and may clear v->bos (chatglm). */
ghost_status tok_bpe_load(const gguf_file *f, tok_vocab *v);
void tok_bpe_free(tok_bpe *b);
ghost_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_out *out);

/* Byte-level BPE: the code point byte b is shown as, and back (-1 if cp is
 * not one of the 256). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

#endif
