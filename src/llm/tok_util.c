/*
 * tok_util.c — the small data structures under the tokenizers: a string hash
 * map (token text -> id, merge pair -> rank), the bigram min-heap both merge
 * algorithms drive, strict UTF-8 checking and coding, growable scratch.
 *
 * Nothing here knows about vocabularies; see tok_internal.h for contracts.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- hash map ------------------------------------------------------------------ */

uint32_t tok_hash(const char *s, size_t n)
{
    /* FNV-1a: tokens are short, so a per-byte hash costs little and spreads well. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

bool tok_map_init(tok_map *m, size_t n_keys)
{
    size_t cap = 16;
    while (cap < n_keys * 2)
        cap <<= 1;
    m->idx = malloc(cap * sizeof *m->idx);
    m->hash = malloc(cap * sizeof *m->hash);
    m->mask = cap - 1;
    if (m->idx == NULL || m->hash == NULL) {
        tok_map_free(m);
        return false;
    }
    memset(m->idx, 0xff, cap * sizeof *m->idx);
    return true;
}

void tok_map_free(tok_map *m)
{
    free(m->idx);
    free(m->hash);
    m->idx = NULL;
    m->hash = NULL;
}

static bool key_eq(const tok_str *k, const char *s, size_t n, uint32_t split)
{
    return k->len == n && (split == TOK_NO_SPLIT || k->split == split) && memcmp(k->ptr, s, n) == 0;
}

void tok_map_put(tok_map *m, const tok_str *keys, uint32_t i, bool replace)
{
    const tok_str *k = &keys[i];
    uint32_t h = tok_hash(k->ptr, k->len);
    for (size_t s = h & m->mask;; s = (s + 1) & m->mask) {
        if (m->idx[s] == UINT32_MAX) {
            m->idx[s] = i;
            m->hash[s] = h;
            return;
        }
        if (m->hash[s] == h && key_eq(&keys[m->idx[s]], k->ptr, k->len, k->split)) {
            if (replace)
                m->idx[s] = i;
            return;
        }
    }
}

int32_t tok_map_get(const tok_map *m, const tok_str *keys, const char *s, size_t n, uint32_t split)
{
    uint32_t h = tok_hash(s, n);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t x = m->idx[i];
        if (x == UINT32_MAX)
            return -1;
        if (m->hash[i] == h && key_eq(&keys[x], s, n, split))
            return (int32_t)x;
    }
}

/* ---- heap ------------------------------------------------------------------------ */

bool tok_heap_push(tok_heap *h, tok_bigram b)
{
    tok_bigram *v = tok_grow(h->v, &h->cap, h->n + 1, sizeof *v);
    if (v == NULL)
        return false;
    h->v = v;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].key <= b.key)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return true;
}

tok_bigram tok_heap_pop(tok_heap *h)
{
    tok_bigram top = h->v[0];
    tok_bigram last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->v[c + 1].key < h->v[c].key)
            c++;
        if (last.key <= h->v[c].key)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n > 0)
        h->v[i] = last;
    return top;
}

bool tok_merge_all(tok_symbol *sym, int32_t n, tok_heap *h, tok_pair_fn add, void *ctx)
{
    h->n = 0;
    for (int32_t i = 1; i < n; i++)
        if (!add(ctx, i - 1, i))
            return false;
    while (h->n > 0) {
        tok_bigram b = tok_heap_pop(h);
        int32_t left = tok_bigram_left(b);
        tok_symbol *l = &sym[left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = left;
        if (!add(ctx, l->prev, left) || !add(ctx, left, l->next))
            return false;
    }
    return true;
}

/* ---- UTF-8 ----------------------------------------------------------------------- */

size_t tok_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            n = 2;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            min = 0x10000;
        } else {
            return i;
        }
        if (len - i < n)
            return i;
        uint32_t cp = c & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return len;
}

uint32_t tok_utf8_decode(const char *str, size_t n, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = tok_utf8_len(s[0]);
    if (len > n || len == 1) {
        *adv = 1;
        return s[0];
    }
    uint32_t cp = s[0] & (0x7f >> len);
    for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (s[k] & 0x3f);
    *adv = len;
    return cp;
}

size_t tok_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- scratch ------------------------------------------------------------------------ */

void *tok_grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap && p != NULL)
        return p;
    size_t c = *cap ? *cap : 16;
    while (c < n) {
        if (c > SIZE_MAX / 2 / elem)
            return NULL;
        c *= 2;
    }
    void *q = realloc(p, c * elem);
    if (q != NULL)
        *cap = c;
    return q;
}
