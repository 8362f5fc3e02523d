/*
 * tok_spm.c — SentencePiece-style tokenization ("llama" vocabularies).
 *
 * The algorithm llama.cpp uses for SPM vocabularies, so ids match exactly:
 *   1. spaces become U+2581 '▁' (and one is prepended when asked: the
 *      add_space_prefix rule, applied after every special token too);
 *   2. the text is split into UTF-8 characters, each a symbol;
 *   3. every adjacent pair whose concatenation is a token is queued with that
 *      token's score; the best (highest score, then leftmost) is merged, and
 *      the new symbol's pairs with its neighbours are queued — until no
 *      queued pair is still current;
 *   4. each final symbol is its token, or — never a token, since only token
 *      pairs merge — a single character that is emitted as byte tokens
 *      (<0xXX>, else the one-byte token) or, with no byte tokens, as <unk>.
 *
 * Queued pairs go stale when a neighbour merges first; a pair is current only
 * while both symbols exist and their lengths still sum to the queued size.
 * Cost: O(n log n) in the characters of the fragment.
 */
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "tok_internal.h"

typedef struct spm_state {
    const tok_vocab *v;
    tok_symbol *sym;
    tok_heap heap;
} spm_state;

/* Maps a float to a uint32 with the same order, so "highest score" can ride
 * in the high half of the heap key; -0 and +0 compare equal as in C. */
static uint32_t score_order(float f)
{
    if (f == 0.0f)
        f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static bool try_add_bigram(void *ctx, int32_t left, int32_t right)
{
    spm_state *st = ctx;
    if (left < 0 || right < 0)
        return true;
    const tok_symbol *l = &st->sym[left], *r = &st->sym[right];
    uint32_t size = l->n + r->n;
    int32_t id = tok_lookup(st->v, l->text, size);
    if (id < 0)
        return true;
    tok_bigram b = {
        .key = ((uint64_t)~score_order(st->v->scores[id]) << 32) | (uint32_t)left,
        .right = right,
        .size = size,
    };
    return tok_heap_push(&st->heap, b);
}

/* A symbol that is no token (one character): its bytes as byte tokens, or a
 * single <unk> when the vocabulary lacks one of them — SentencePiece's rule
 * without byte fallback (llama.cpp throws there). */
static ghost_status emit_fallback(const tok_vocab *v, const tok_symbol *s, tok_out *out)
{
    bool all_bytes = true;
    for (uint32_t j = 0; j < s->n; j++)
        all_bytes = all_bytes && v->spm_byte[(unsigned char)s->text[j]] >= 0;
    if (all_bytes) {
        for (uint32_t j = 0; j < s->n; j++)
            tok_emit(out, v->spm_byte[(unsigned char)s->text[j]]);
        return GHOST_OK;
    }
    if (v->unk < 0)
        return ghost_set_error(GHOST_ERR_BAD_INPUT,
                               "tokenize: character '%.*s' has no token, no byte token and the "
                               "vocabulary has no <unk>",
                               (int)s->n, s->text);
    tok_emit(out, v->unk);
    return GHOST_OK;
}

ghost_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, bool space_prefix,
                            tok_out *out)
{
    /* Escaped text: each ' ' grows to the 3 bytes of U+2581. */
    size_t n_space = space_prefix;
    for (size_t i = 0; i < len; i++)
        n_space += text[i] == ' ';
    size_t elen = len + space_prefix + 2 * n_space;
    if (elen == 0)
        return GHOST_OK;
    if (elen > INT32_MAX)
        return ghost_set_error(GHOST_ERR_BAD_INPUT, "tokenize: text of %zu bytes is too long", len);

    spm_state st = {.v = v};
    char *esc = malloc(elen);
    st.sym = malloc(elen * sizeof *st.sym);
    ghost_status rc = GHOST_OK;
    if (esc == NULL || st.sym == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory for %zu bytes of text", len);
        goto done;
    }
    size_t e = 0;
    if (space_prefix) {
        memcpy(esc, "\xe2\x96\x81", 3);
        e = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + e, "\xe2\x96\x81", 3);
            e += 3;
        } else {
            esc[e++] = text[i];
        }
    }

    int32_t n_sym = 0;
    for (size_t off = 0; off < elen;) {
        size_t n = tok_utf8_len((unsigned char)esc[off]);
        if (n > elen - off)
            n = elen - off;
        st.sym[n_sym] =
            (tok_symbol){.prev = n_sym - 1, .next = -1, .text = esc + off, .n = (uint32_t)n};
        if (n_sym > 0)
            st.sym[n_sym - 1].next = n_sym;
        n_sym++;
        off += n;
    }

    if (!tok_merge_all(st.sym, n_sym, &st.heap, try_add_bigram, &st)) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory merging %d symbols", n_sym);
        goto done;
    }

    for (int32_t i = 0; i != -1 && rc == GHOST_OK; i = st.sym[i].next) {
        int32_t id = tok_lookup(v, st.sym[i].text, st.sym[i].n);
        if (id >= 0)
            tok_emit(out, id);
        else
            rc = emit_fallback(v, &st.sym[i], out);
    }
done:
    free(st.heap.v);
    free(st.sym);
    free(esc);
    return rc;
}
