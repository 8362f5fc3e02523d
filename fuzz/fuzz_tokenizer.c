/*
 * fuzz_tokenizer.c — libFuzzer harness for the tokenizers (tok_encode, tok_piece).
 *
 * Real vocabularies are loaded once: llama-spm (SentencePiece with byte
 * fallback), gpt-2 and qwen2 (byte-level BPE with two different
 * pre-tokenizer regexes). The first input byte picks the vocabulary and the
 * add_special / parse_special flags; the rest is the text. Checked for every
 * input, beyond "no crash, no over-read":
 *
 *   - invalid UTF-8 is GHOST_ERR_BAD_INPUT, valid UTF-8 always encodes;
 *   - every id is inside the vocabulary;
 *   - a short output buffer gives GHOST_ERR_BUFFER_TOO_SMALL, the full count
 *     and the same leading ids;
 *   - without special tokens the pieces rebuild the text exactly, the
 *     guarantee tests/llm/test_tokenizer.c states as
 *     test_pieces_rebuild_the_text; SPM adds the one leading space of
 *     add_space_prefix and, like every SentencePiece decoder, gives a '▁'
 *     (U+2581) of the text back as a space.
 *
 * The vocabularies are read at run time from $GF_FUZZ_VOCAB_DIR, else from
 * ../shared/models/vocab beside the source tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/llm_internal.h"
#include "llm/tok_internal.h"
#include "llm/tokenizer.h"

#ifndef GF_SOURCE_DIR
#define GF_SOURCE_DIR "."
#endif

typedef struct fuzz_vocab {
    const char *name;
    bool spm;
    gguf_file *f;
    tok_vocab *v;
} fuzz_vocab;

static fuzz_vocab vocabs[] = {
    {"llama-spm", true, NULL, NULL},
    {"gpt-2", false, NULL, NULL},
    {"qwen2", false, NULL, NULL},
};
#define N_VOCABS (sizeof vocabs / sizeof vocabs[0])

/* Inputs are capped so one case stays in the millisecond range (BPE merges
 * are quadratic in a word's length). */
#define MAX_TEXT 4096

static void die(const char *what, const char *name)
{
    fprintf(stderr, "fuzz_tokenizer: %s %s: %s\n", what, name, ghost_thread_errmsg());
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("GF_FUZZ_VOCAB_DIR");
    if (!dir)
        dir = GF_SOURCE_DIR "/../shared/models/vocab";
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, vocabs[i].name);
        if (gguf_open(path, &vocabs[i].f) != GHOST_OK)
            die("cannot open", path);
        if (tok_load(vocabs[i].f, &vocabs[i].v) != GHOST_OK)
            die("cannot load the vocabulary of", path);
    }
    return 0;
}

/* Encodes into a buffer of exactly the needed size, checking the
 * too-small path on the way; NULL for invalid UTF-8. */
static int32_t *encode(const tok_vocab *v, const char *s, size_t len, bool add_special,
                       bool parse_special, size_t *n)
{
    size_t need = 0;
    ghost_status st = tok_encode(v, s, len, add_special, parse_special, NULL, 0, &need);
    if (st == GHOST_ERR_BAD_INPUT)
        return NULL;
    if (st != GHOST_OK && st != GHOST_ERR_BUFFER_TOO_SMALL)
        __builtin_trap();
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    if (!ids)
        abort();
    if (tok_encode(v, s, len, add_special, parse_special, ids, need, n) != GHOST_OK || *n != need)
        __builtin_trap(); /* same text, same count */
    int32_t n_vocab = tok_n_vocab(v);
    for (size_t i = 0; i < need; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab)
            __builtin_trap();
    if (need >= 2) {
        size_t half = need / 2, n2 = 0;
        int32_t *part = malloc(half * sizeof *part);
        if (!part)
            abort();
        st = tok_encode(v, s, len, add_special, parse_special, part, half, &n2);
        if (st != GHOST_ERR_BUFFER_TOO_SMALL || n2 != need || memcmp(part, ids, half * sizeof *ids))
            __builtin_trap();
        free(part);
    }
    return ids;
}

/* 1 when back (the pieces) is text as SPM gives it back: each U+2581 a space. */
static bool same_as_spm(const char *text, size_t len, const char *back, size_t back_len)
{
    size_t i = 0, j = 0;
    while (i < len && j < back_len) {
        if (len - i >= 3 && memcmp(text + i, "\xe2\x96\x81", 3) == 0 && back[j] == ' ')
            i += 3, j++;
        else if (text[i] == back[j])
            i++, j++;
        else
            return false;
    }
    return i == len && j == back_len;
}

/* The concatenated pieces of ids (malloc'd); *len gets the byte count. */
static char *detokenize(const tok_vocab *v, const int32_t *ids, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t r = tok_piece(v, ids[i], NULL, 0);
        if (r == -1 && tok_piece(v, ids[i], (char[1]){0}, 1) != 1)
            __builtin_trap(); /* ids are in range: -1 can only mean "needs one byte" */
        total += (size_t)(r < 0 ? -r : r);
    }
    char *s = malloc(total + 1);
    if (!s)
        abort();
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t r = tok_piece(v, ids[i], s + at, total - at);
        if (r < 0)
            __builtin_trap();
        at += (size_t)r;
    }
    if (at != total)
        __builtin_trap();
    *len = at;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_TEXT + 1)
        return 0;
    const fuzz_vocab *fv = &vocabs[(data[0] & 3) % N_VOCABS];
    bool add_special = data[0] & 4, parse_special = data[0] & 8;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    bool valid = tok_utf8_check(text, len) == len;

    size_t n = 0;
    int32_t *ids = encode(fv->v, text, len, false, false, &n);
    if ((ids != NULL) != valid)
        __builtin_trap(); /* exactly the invalid texts are refused */
    if (!ids)
        return 0;
    size_t back_len;
    char *back = detokenize(fv->v, ids, n, &back_len);
    const char *want = back;
    if (fv->spm && back_len > 0) {
        if (back[0] != ' ')
            __builtin_trap(); /* add_space_prefix */
        want++, back_len--;
    }
    bool same = fv->spm ? same_as_spm(text, len, want, back_len)
                        : back_len == len && memcmp(want, text, len) == 0;
    if (!same)
        __builtin_trap(); /* the pieces must give the text back */
    free(back);
    free(ids);

    if (add_special || parse_special) {
        ids = encode(fv->v, text, len, add_special, parse_special, &n);
        if (!ids)
            __builtin_trap();
        if (add_special && tok_add_bos(fv->v) && tok_bos(fv->v) >= 0 &&
            (n == 0 || ids[0] != tok_bos(fv->v)))
            __builtin_trap();
        free(back = detokenize(fv->v, ids, n, &back_len));
        free(ids);
    }
    return 0;
}
