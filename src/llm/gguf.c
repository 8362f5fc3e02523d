/*
 * gguf.c — GGUF v2/v3 reader: maps the file read-only, validates the whole
 * header before anything else looks at it, and indexes keys and tensors.
 *
 * On-disk layout (little-endian throughout; "string" = u64 length + bytes,
 * no NUL):
 *
 *   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *   n_kv      x { string key, u32 value type, value }
 *               value: fixed-size scalar | string |
 *                      array = u32 element type, u64 count, count elements
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                 u64 offset }
 *   padding up to `alignment` (key general.alignment, u32, default 32)
 *   tensor data: tensor i at data_offset + offset_i, offset_i a multiple of
 *   the alignment
 *
 * Version 1 (u32 counts and lengths) is rejected; v2 and v3 share one layout
 * (v3 only allowed big-endian files, which have no marker: we recognise them
 * by their byte-swapped version field and reject them).
 *
 * Validation reads only the header. Tensor data is never touched here, so
 * opening a 40 GB model costs a few pages of resident memory; the weights
 * are faulted in by whoever reads them. Every size computation is checked
 * against overflow and the file size before it is used, and every failure
 * message names the key or tensor, the problem and the byte offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "llm_internal.h"
#include "quant.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian fields with memcpy: a big-endian host needs byte swaps"
#endif

#define GGUF_MAGIC        "GGUF"
#define GGUF_HEADER_BYTES 24u
/* Smallest possible records, to bound the counts by the file size before
 * allocating anything: a kv is a key length, a type and a 1-byte value; a
 * tensor is a name length, n_dims, one dimension, a type and an offset. */
#define GGUF_MIN_KV_BYTES     (8u + 4u + 1u)
#define GGUF_MIN_TENSOR_BYTES (8u + 4u + 8u + 4u + 8u)
/* Keys and names in messages are cut to this many bytes. */
#define GGUF_QUOTE_MAX 64

/* The public gguf_file plus the lookup indexes; gguf_file is its first
 * member, so a gguf_file pointer from gguf_open is a gguf_impl pointer. */
typedef struct gguf_impl {
    gguf_file pub;
    size_t *kv_slots; /* open addressing: index + 1, 0 = empty */
    size_t kv_mask;
    size_t *tensor_slots;
    size_t tensor_mask;
    char *names; /* all tensor names, NUL-terminated, one block */
} gguf_impl;

/* ---- names in messages ------------------------------------------------------ */

/* Copies a key or name from the file into dst for a message: bounded, and
 * anything but printable ASCII becomes '?' so a hostile file cannot inject
 * control characters into a terminal or a log. */
static void quote(char *dst, size_t cap, const char *p, uint64_t len)
{
    size_t n = 0;
    for (uint64_t i = 0; i < len && i < GGUF_QUOTE_MAX && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > GGUF_QUOTE_MAX && n + 4 < cap) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* ---- hashing ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Slots for n entries at most half full; NULL when out of memory. */
static size_t *slots_new(uint64_t n, size_t *mask)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    *mask = cap - 1;
    return calloc(cap, sizeof(size_t));
}

/* ---- the parser ------------------------------------------------------------- */

typedef struct parser {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    gguf_impl *g;
    char what[GGUF_QUOTE_MAX + 32]; /* "key 'general.name'", "tensor #3" */
} parser;

/* Records "<what>: <message> (offset <at>)" and returns code. */
__attribute__((format(printf, 4, 5))) static ghost_status fail(const parser *ps, ghost_status code,
                                                               uint64_t at, const char *fmt, ...)
{
    char msg[GHOST_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ghost_set_error(code, "%s: %s (offset %llu)", ps->what, msg, (unsigned long long)at);
}

static ghost_status fail_eof(const parser *ps, uint64_t at, const char *item, uint64_t need)
{
    return fail(ps, GHOST_ERR_FORMAT, at, "%s (%llu bytes) runs past end of file (size %llu)", item,
                (unsigned long long)need, (unsigned long long)ps->size);
}

static uint64_t left(const parser *ps)
{
    return ps->size - ps->pos;
}

static ghost_status rd_u32(parser *ps, const char *item, uint32_t *v)
{
    *v = 0;
    if (left(ps) < 4)
        return fail_eof(ps, ps->pos, item, 4);
    memcpy(v, ps->p + ps->pos, 4);
    ps->pos += 4;
    return GHOST_OK;
}

static ghost_status rd_u64(parser *ps, const char *item, uint64_t *v)
{
    *v = 0;
    if (left(ps) < 8)
        return fail_eof(ps, ps->pos, item, 8);
    memcpy(v, ps->p + ps->pos, 8);
    ps->pos += 8;
    return GHOST_OK;
}

static ghost_status rd_str(parser *ps, const char *item, gguf_str *s)
{
    uint64_t at = ps->pos, len;
    char lenitem[48];
    snprintf(lenitem, sizeof lenitem, "%s length", item);
    ghost_status st = rd_u64(ps, lenitem, &len);
    if (st != GHOST_OK)
        return st;
    if (len > left(ps))
        return fail(ps, GHOST_ERR_FORMAT, at,
                    "%s length %llu runs past end of file (%llu bytes left, size %llu)", item,
                    (unsigned long long)len, (unsigned long long)left(ps),
                    (unsigned long long)ps->size);
    s->ptr = (const char *)ps->p + ps->pos;
    s->len = len;
    ps->pos += len;
    return GHOST_OK;
}

static ghost_status check_bools(const parser *ps, uint64_t at, const uint8_t *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (b[i] > 1)
            return fail(ps, GHOST_ERR_FORMAT, at + i, "bool value %u is not 0 or 1", b[i]);
    return GHOST_OK;
}

static ghost_status parse_array(parser *ps, gguf_kv *kv)
{
    uint64_t at = ps->pos;
    uint32_t et;
    ghost_status st = rd_u32(ps, "array element type", &et);
    if (st != GHOST_OK)
        return st;
    if (et == GGUF_TYPE_ARRAY)
        return fail(ps, GHOST_ERR_FORMAT, at, "nested arrays are not supported");
    if (et >= GGUF_TYPE_COUNT)
        return fail(ps, GHOST_ERR_FORMAT, at, "unknown array element type %u (valid: 0..%d)", et,
                    GGUF_TYPE_COUNT - 1);
    kv->arr_type = (gguf_type)et;
    at = ps->pos;
    if ((st = rd_u64(ps, "array length", &kv->arr_len)) != GHOST_OK)
        return st;
    uint64_t n = kv->arr_len;
    /* A string element takes at least its 8-byte length: this bounds the
     * allocation below by the file size, whatever the count claims. */
    uint64_t esize = et == GGUF_TYPE_STRING ? 8 : gguf_type_size(kv->arr_type);
    if (n > left(ps) / esize)
        return fail(ps, GHOST_ERR_FORMAT, at,
                    "array of %llu %s (at least %llu bytes each) runs past end of file (%llu "
                    "bytes left, size %llu)",
                    (unsigned long long)n, gguf_type_name(kv->arr_type), (unsigned long long)esize,
                    (unsigned long long)left(ps), (unsigned long long)ps->size);
    if (et != GGUF_TYPE_STRING) {
        kv->data = ps->p + ps->pos;
        if (et == GGUF_TYPE_BOOL && (st = check_bools(ps, ps->pos, kv->data, n)) != GHOST_OK)
            return st;
        ps->pos += n * esize;
        return GHOST_OK;
    }
    kv->strs = calloc(n ? n : 1, sizeof *kv->strs);
    if (!kv->strs)
        return fail(ps, GHOST_ERR_NOMEM, at, "out of memory for %llu strings",
                    (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        char item[48];
        snprintf(item, sizeof item, "string %llu", (unsigned long long)i);
        if ((st = rd_str(ps, item, &kv->strs[i])) != GHOST_OK)
            return st;
    }
    return GHOST_OK;
}

static ghost_status parse_value(parser *ps, gguf_kv *kv)
{
    uint64_t at = ps->pos;
    if (kv->type == GGUF_TYPE_STRING)
        return rd_str(ps, "string", &kv->str);
    if (kv->type == GGUF_TYPE_ARRAY)
        return parse_array(ps, kv);
    size_t n = gguf_type_size(kv->type);
    if (left(ps) < n)
        return fail_eof(ps, at, gguf_type_name(kv->type), n);
    kv->data = ps->p + at;
    ps->pos += n;
    return kv->type == GGUF_TYPE_BOOL ? check_bools(ps, at, kv->data, 1) : GHOST_OK;
}

/* Inserts entry idx (whose name is name/len) into a slot table; on a
 * duplicate returns false and the index of the first one in *dup. */
static bool slots_insert(size_t *slots, size_t mask, size_t idx, const char *name, size_t len,
                         const char *(*name_of)(const gguf_impl *, size_t, size_t *),
                         const gguf_impl *g, size_t *dup)
{
    for (size_t h = (size_t)hash_bytes(name, len) & mask;; h = (h + 1) & mask) {
        if (slots[h] == 0) {
            slots[h] = idx + 1;
            return true;
        }
        size_t olen;
        const char *other = name_of(g, slots[h] - 1, &olen);
        if (olen == len && memcmp(other, name, len) == 0) {
            *dup = slots[h] - 1;
            return false;
        }
    }
}

static const char *kv_name(const gguf_impl *g, size_t i, size_t *len)
{
    *len = (size_t)g->pub.kv[i].key.len;
    return g->pub.kv[i].key.ptr;
}

static const char *tensor_name(const gguf_impl *g, size_t i, size_t *len)
{
    *len = strlen(g->pub.tensors[i].name);
    return g->pub.tensors[i].name;
}

static ghost_status parse_kvs(parser *ps)
{
    gguf_file *f = &ps->g->pub;
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    ps->g->kv_slots = slots_new(f->n_kv, &ps->g->kv_mask);
    if (!f->kv || !ps->g->kv_slots)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %llu key/value pairs",
                               (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        uint64_t at = ps->pos;
        snprintf(ps->what, sizeof ps->what, "key #%llu", (unsigned long long)i);
        ghost_status st = rd_str(ps, "key", &kv->key);
        if (st != GHOST_OK)
            return st;
        if (kv->key.len == 0)
            return fail(ps, GHOST_ERR_FORMAT, at, "empty key");
        char q[GGUF_QUOTE_MAX + 8];
        quote(q, sizeof q, kv->key.ptr, kv->key.len);
        snprintf(ps->what, sizeof ps->what, "key '%s'", q);
        /* Keys are looked up as C strings: a NUL inside would hide the key. */
        if (memchr(kv->key.ptr, '\0', kv->key.len))
            return fail(ps, GHOST_ERR_FORMAT, at, "NUL byte in key");
        size_t dup;
        if (!slots_insert(ps->g->kv_slots, ps->g->kv_mask, i, kv->key.ptr, kv->key.len, kv_name,
                          ps->g, &dup))
            return fail(ps, GHOST_ERR_FORMAT, at, "duplicate key (first defined at offset %llu)",
                        (unsigned long long)((const uint8_t *)f->kv[dup].key.ptr - ps->p - 8));
        uint64_t tat = ps->pos;
        uint32_t type;
        if ((st = rd_u32(ps, "value type", &type)) != GHOST_OK)
            return st;
        if (type >= GGUF_TYPE_COUNT)
            return fail(ps, GHOST_ERR_FORMAT, tat, "unknown value type %u (valid: 0..%d)", type,
                        GGUF_TYPE_COUNT - 1);
        kv->type = (gguf_type)type;
        if ((st = parse_value(ps, kv)) != GHOST_OK)
            return st;
    }
    return GHOST_OK;
}

static ghost_status read_alignment(parser *ps)
{
    gguf_file *f = &ps->g->pub;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv)
        return GHOST_OK;
    uint64_t at = (uint64_t)((const uint8_t *)kv->key.ptr - ps->p - 8);
    snprintf(ps->what, sizeof ps->what, "key 'general.alignment'");
    if (kv->type != GGUF_TYPE_UINT32)
        return fail(ps, GHOST_ERR_FORMAT, at, "type %s, expected UINT32", gguf_type_name(kv->type));
    uint32_t a;
    memcpy(&a, kv->data, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(ps, GHOST_ERR_FORMAT, at, "alignment %u is not a non-zero power of two", a);
    f->alignment = a;
    return GHOST_OK;
}

/* Checks one tensor's shape and type and sets ne, type and nbytes. */
static ghost_status parse_tensor_shape(parser *ps, gguf_tensor *t)
{
    uint64_t at = ps->pos;
    ghost_status st = rd_u32(ps, "n_dims", &t->n_dims);
    if (st != GHOST_OK)
        return st;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return fail(ps, GHOST_ERR_FORMAT, at, "n_dims %u is out of range 1..%d", t->n_dims,
                    GGUF_MAX_DIMS);
    int64_t count = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims)
            continue;
        uint64_t dat = ps->pos, v;
        if ((st = rd_u64(ps, "dimension", &v)) != GHOST_OK)
            return st;
        if (v == 0)
            return fail(ps, GHOST_ERR_FORMAT, dat, "dimension %u is 0", d);
        if (v > (uint64_t)INT64_MAX)
            return fail(ps, GHOST_ERR_FORMAT, dat, "dimension %u is negative (%lld)", d,
                        (long long)(int64_t)v);
        t->ne[d] = (int64_t)v;
        if (t->ne[d] > INT64_MAX / count)
            return fail(ps, GHOST_ERR_FORMAT, dat,
                        "element count overflows at dimension %u (%lld x %lld)", d,
                        (long long)count, (long long)t->ne[d]);
        count *= t->ne[d];
    }
    uint64_t tat = ps->pos;
    if ((st = rd_u32(ps, "type", &t->type)) != GHOST_OK)
        return st;
    const quant_type_info *qi = quant_info(t->type);
    if (!qi || !qi->is_weight_type)
        return fail(ps, GHOST_ERR_UNSUPPORTED, tat,
                    "unsupported tensor type %u%s%s%s (supported: %s)", t->type, qi ? " (" : "",
                    qi ? qi->name : "", qi ? ")" : "", quant_supported_list());
    if (t->ne[0] % qi->block_size != 0)
        return fail(ps, GHOST_ERR_FORMAT, at,
                    "row length %lld is not a multiple of the %s block size %lld",
                    (long long)t->ne[0], qi->name, (long long)qi->block_size);
    /* Computed here rather than by quant_row_size: the message says which limit failed. */
    uint64_t blocks = (uint64_t)(t->ne[0] / qi->block_size);
    uint64_t rows = (uint64_t)(count / t->ne[0]);
    uint64_t row = blocks <= UINT64_MAX / qi->type_size ? blocks * qi->type_size : 0;
    if (row == 0 || rows > UINT64_MAX / row)
        return fail(ps, GHOST_ERR_FORMAT, at, "size overflows (%lld elements of %s)",
                    (long long)count, qi->name);
    t->nbytes = row * rows;
    return GHOST_OK;
}

/* Tensor infos; names are first kept as gguf_str and copied afterwards into
 * one block (their total is bounded by the file size). */
static ghost_status parse_tensors(parser *ps, uint64_t *info_at)
{
    gguf_file *f = &ps->g->pub;
    gguf_str *names = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *names);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!names || !f->tensors) {
        free(names);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %llu tensors",
                               (unsigned long long)f->n_tensors);
    }
    ghost_status st = GHOST_OK;
    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors && st == GHOST_OK; i++) {
        gguf_tensor *t = &f->tensors[i];
        info_at[i] = ps->pos;
        snprintf(ps->what, sizeof ps->what, "tensor #%llu", (unsigned long long)i);
        if ((st = rd_str(ps, "name", &names[i])) != GHOST_OK)
            break;
        if (names[i].len == 0) {
            st = fail(ps, GHOST_ERR_FORMAT, info_at[i], "empty name");
            break;
        }
        char q[GGUF_QUOTE_MAX + 8];
        quote(q, sizeof q, names[i].ptr, names[i].len);
        snprintf(ps->what, sizeof ps->what, "tensor '%s'", q);
        /* Names are copied out as C strings: a NUL inside would cut them. */
        if (memchr(names[i].ptr, '\0', names[i].len)) {
            st = fail(ps, GHOST_ERR_FORMAT, info_at[i], "NUL byte in name");
            break;
        }
        if ((st = parse_tensor_shape(ps, t)) != GHOST_OK)
            break;
        uint64_t oat = ps->pos;
        if ((st = rd_u64(ps, "offset", &t->offset)) != GHOST_OK)
            break;
        if (t->offset % f->alignment != 0)
            st = fail(ps, GHOST_ERR_FORMAT, oat,
                      "data offset %llu is not a multiple of the alignment %llu",
                      (unsigned long long)t->offset, (unsigned long long)f->alignment);
        total += names[i].len + 1;
    }
    if (st == GHOST_OK && (ps->g->names = malloc(total ? total : 1)) == NULL)
        st = ghost_set_error(GHOST_ERR_NOMEM, "out of memory for tensor names");
    char *p = ps->g->names;
    for (uint64_t i = 0; st == GHOST_OK && i < f->n_tensors; i++) {
        memcpy(p, names[i].ptr, names[i].len);
        p[names[i].len] = '\0';
        f->tensors[i].name = p;
        p += names[i].len + 1;
    }
    free(names);
    return st;
}

typedef struct span {
    uint64_t begin, end;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Places every tensor in the data section: inside the file, no two sharing
 * a byte, no duplicate names. */
static ghost_status place_tensors(parser *ps, const uint64_t *info_at)
{
    gguf_impl *g = ps->g;
    gguf_file *f = &g->pub;
    f->data_offset = (ps->pos + f->alignment - 1) / f->alignment * f->alignment;
    g->tensor_slots = slots_new(f->n_tensors, &g->tensor_mask);
    span *spans = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *spans);
    if (!g->tensor_slots || !spans) {
        free(spans);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %llu tensors",
                               (unsigned long long)f->n_tensors);
    }
    ghost_status st = GHOST_OK;
    uint64_t room = f->data_offset <= f->size ? f->size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors && st == GHOST_OK; i++) {
        gguf_tensor *t = &f->tensors[i];
        char q[GGUF_QUOTE_MAX + 8];
        quote(q, sizeof q, t->name, strlen(t->name));
        snprintf(ps->what, sizeof ps->what, "tensor '%s'", q);
        size_t dup;
        if (!slots_insert(g->tensor_slots, g->tensor_mask, i, t->name, strlen(t->name), tensor_name,
                          g, &dup)) {
            st = fail(ps, GHOST_ERR_FORMAT, info_at[i],
                      "duplicate tensor name (first defined at offset %llu)",
                      (unsigned long long)info_at[dup]);
        } else if (t->offset > room || t->nbytes > room - t->offset) {
            st = fail(ps, GHOST_ERR_FORMAT, info_at[i],
                      "data at offset %llu + %llu bytes runs past end of file (data section "
                      "starts at %llu, file size %llu)",
                      (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                      (unsigned long long)f->data_offset, (unsigned long long)f->size);
        } else {
            t->data = f->map + f->data_offset + t->offset;
            spans[i] = (span){t->offset, t->offset + t->nbytes, (size_t)i};
        }
    }
    if (st == GHOST_OK && f->n_tensors > 1) {
        qsort(spans, f->n_tensors, sizeof *spans, span_cmp);
        for (uint64_t i = 1; i < f->n_tensors && st == GHOST_OK; i++) {
            if (spans[i].begin >= spans[i - 1].end)
                continue;
            const gguf_tensor *a = &f->tensors[spans[i - 1].idx], *b = &f->tensors[spans[i].idx];
            char q[GGUF_QUOTE_MAX + 8];
            quote(q, sizeof q, b->name, strlen(b->name));
            snprintf(ps->what, sizeof ps->what, "tensor '%s'", q);
            quote(q, sizeof q, a->name, strlen(a->name));
            st = fail(ps, GHOST_ERR_FORMAT, info_at[spans[i].idx],
                      "data [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
                      (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end, q,
                      (unsigned long long)spans[i - 1].begin, (unsigned long long)spans[i - 1].end);
        }
    }
    free(spans);
    return st;
}

static ghost_status parse_header(parser *ps)
{
    gguf_file *f = &ps->g->pub;
    snprintf(ps->what, sizeof ps->what, "header");
    if (ps->size < 8) {
        if (ps->size >= 4 && memcmp(ps->p, GGUF_MAGIC, 4) != 0)
            goto bad_magic;
        return fail_eof(ps, 0, "GGUF header", GGUF_HEADER_BYTES);
    }
    if (memcmp(ps->p, GGUF_MAGIC, 4) != 0)
        goto bad_magic;
    ps->pos = 4;
    uint32_t v;
    rd_u32(ps, "version", &v);
    f->version = v;
    if (v == 1)
        return fail(ps, GHOST_ERR_UNSUPPORTED, 4,
                    "GGUF version 1 is not supported (only versions 2 and 3); re-convert the "
                    "model with a current llama.cpp");
    if (v != 2 && v != 3) {
        if ((v & 0xffffu) == 0 && (v >> 24) >= 1 && (v >> 24) <= 3)
            return fail(ps, GHOST_ERR_UNSUPPORTED, 4,
                        "big-endian GGUF (version field 0x%08x) is not supported", v);
        return fail(ps, GHOST_ERR_UNSUPPORTED, 4,
                    "GGUF version %u is not supported (only versions 2 and 3)", v);
    }
    ghost_status st;
    if ((st = rd_u64(ps, "tensor count", &f->n_tensors)) != GHOST_OK ||
        (st = rd_u64(ps, "key/value count", &f->n_kv)) != GHOST_OK)
        return st;
    uint64_t room = left(ps);
    if (f->n_kv > room / GGUF_MIN_KV_BYTES || f->n_tensors > room / GGUF_MIN_TENSOR_BYTES ||
        f->n_kv * GGUF_MIN_KV_BYTES > room - f->n_tensors * GGUF_MIN_TENSOR_BYTES)
        return fail(ps, GHOST_ERR_FORMAT, 8,
                    "%llu tensors and %llu key/value pairs cannot fit in a file of %llu bytes",
                    (unsigned long long)f->n_tensors, (unsigned long long)f->n_kv,
                    (unsigned long long)ps->size);
    return GHOST_OK;

bad_magic:;
    char m[8];
    quote(m, sizeof m, (const char *)ps->p, 4);
    return fail(ps, GHOST_ERR_FORMAT, 0,
                "not a GGUF file: magic '%s' (%02x %02x %02x %02x), expected 'GGUF'", m, ps->p[0],
                ps->p[1], ps->p[2], ps->p[3]);
}

static ghost_status parse(gguf_impl *g)
{
    parser ps = {.p = g->pub.map, .size = g->pub.size, .g = g};
    ghost_status st = parse_header(&ps);
    if (st == GHOST_OK)
        st = parse_kvs(&ps);
    if (st == GHOST_OK)
        st = read_alignment(&ps);
    if (st != GHOST_OK)
        return st;
    uint64_t *info_at = malloc((g->pub.n_tensors ? g->pub.n_tensors : 1) * sizeof *info_at);
    if (!info_at)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for %llu tensors",
                               (unsigned long long)g->pub.n_tensors);
    st = parse_tensors(&ps, info_at);
    if (st == GHOST_OK)
        st = place_tensors(&ps, info_at);
    free(info_at);
    return st;
}

/* ---- open / close ----------------------------------------------------------- */

static ghost_status open_mapped(const uint8_t *map, size_t size, bool owns, gguf_file **out)
{
    gguf_impl *g = calloc(1, sizeof *g);
    if (!g) {
        if (owns)
            munmap((void *)map, size);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory opening a GGUF file");
    }
    g->pub.map = map;
    g->pub.size = size;
    g->pub.owns_map = owns;
    ghost_status st = parse(g);
    if (st != GHOST_OK) {
        gguf_close(&g->pub);
        return st;
    }
    *out = &g->pub;
    return GHOST_OK;
}

ghost_status gguf_open_memory(const void *data, size_t size, gguf_file **out)
{
    if (!out)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf_open_memory: data is NULL");
    static const uint8_t empty[1];
    return open_mapped(data ? data : empty, size, false, out);
}

ghost_status gguf_open(const char *path, gguf_file **out)
{
    if (!out)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf_open: out is NULL");
    *out = NULL;
    if (!path)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ghost_set_error(GHOST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ghost_set_error(GHOST_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ghost_set_error(GHOST_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: empty file, not a GGUF model", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return ghost_set_error(GHOST_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                               strerror(e));
    ghost_status st = open_mapped(map, size, true, out);
    if (st != GHOST_OK) {
        char msg[GHOST_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", ghost_thread_errmsg());
        ghost_set_error(st, "%s: %s", path, msg);
    }
    return st;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    gguf_impl *g = (gguf_impl *)f;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free(f->kv[i].strs);
    free(f->kv);
    free(f->tensors);
    free(g->names);
    free(g->kv_slots);
    free(g->tensor_slots);
    if (f->owns_map)
        munmap((void *)f->map, f->size);
    free(g);
}

void gguf_prefetch(const gguf_file *f)
{
    if (!f || !f->owns_map || f->n_tensors == 0 || f->data_offset >= f->size)
        return;
    /* madvise wants a page-aligned start; the map itself is page-aligned. */
    long page = sysconf(_SC_PAGESIZE);
    size_t start = (size_t)f->data_offset / (size_t)page * (size_t)page;
    madvise((void *)(f->map + start), f->size - start, MADV_WILLNEED);
}

/* ---- lookups ---------------------------------------------------------------- */

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    const gguf_impl *g = (const gguf_impl *)f;
    size_t len = strlen(key);
    for (size_t h = (size_t)hash_bytes(key, len) & g->kv_mask; g->kv_slots[h];
         h = (h + 1) & g->kv_mask) {
        const gguf_kv *kv = &f->kv[g->kv_slots[h] - 1];
        if (kv->key.len == len && memcmp(kv->key.ptr, key, len) == 0)
            return kv;
    }
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    const gguf_impl *g = (const gguf_impl *)f;
    size_t len = strlen(name);
    for (size_t h = (size_t)hash_bytes(name, len) & g->tensor_mask; g->tensor_slots[h];
         h = (h + 1) & g->tensor_mask) {
        const gguf_tensor *t = &f->tensors[g->tensor_slots[h] - 1];
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

/* ---- typed getters ---------------------------------------------------------- */

static uint64_t kv_offset(const gguf_file *f, const gguf_kv *kv)
{
    return (uint64_t)((const uint8_t *)kv->key.ptr - f->map - 8);
}

static bool wrong_type(const gguf_file *f, const gguf_kv *kv, const char *want)
{
    char q[GGUF_QUOTE_MAX + 8];
    quote(q, sizeof q, kv->key.ptr, kv->key.len);
    ghost_set_error(GHOST_ERR_FORMAT, "key '%s': type %s, expected %s (offset %llu)", q,
                    gguf_type_name(kv->type), want, (unsigned long long)kv_offset(f, kv));
    return false;
}

static uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* An integer element of type t at p: its value as a sign and a magnitude, so
 * every integer type compares exactly against every target range. */
static bool read_int(gguf_type t, const uint8_t *p, bool *neg, uint64_t *mag)
{
    int64_t s;
    switch (t) {
    case GGUF_TYPE_UINT8: *neg = false, *mag = p[0]; return true;
    case GGUF_TYPE_UINT16: *neg = false, *mag = ld16(p); return true;
    case GGUF_TYPE_UINT32: *neg = false, *mag = ld32(p); return true;
    case GGUF_TYPE_UINT64: *neg = false, *mag = ld64(p); return true;
    case GGUF_TYPE_INT8: s = (int8_t)p[0]; break;
    case GGUF_TYPE_INT16: s = (int16_t)ld16(p); break;
    case GGUF_TYPE_INT32: s = (int32_t)ld32(p); break;
    case GGUF_TYPE_INT64: s = (int64_t)ld64(p); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

/* The integer at key within [-min_mag, max]; false with a message otherwise. */
static bool get_int(const gguf_file *f, const char *key, uint64_t min_mag, uint64_t max,
                    const char *target, bool *neg, uint64_t *mag)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (!read_int(kv->type, kv->data, neg, mag))
        return wrong_type(f, kv, "an integer");
    if (*neg ? *mag > min_mag : *mag > max) {
        char q[GGUF_QUOTE_MAX + 8];
        quote(q, sizeof q, kv->key.ptr, kv->key.len);
        ghost_set_error(GHOST_ERR_FORMAT, "key '%s': value %s%llu does not fit %s (offset %llu)", q,
                        *neg ? "-" : "", (unsigned long long)*mag, target,
                        (unsigned long long)kv_offset(f, kv));
        return false;
    }
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    bool neg;
    uint64_t mag;
    if (!get_int(f, key, 0, UINT32_MAX, "UINT32", &neg, &mag))
        return false;
    *out = (uint32_t)mag;
    return true;
}

bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out)
{
    bool neg;
    uint64_t mag;
    if (!get_int(f, key, (uint64_t)INT32_MAX + 1, INT32_MAX, "INT32", &neg, &mag))
        return false;
    *out = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    if (!get_int(f, key, 0, UINT64_MAX, "UINT64", &neg, &mag))
        return false;
    *out = mag;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->data, 4);
    } else if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
    } else {
        return wrong_type(f, kv, "FLOAT32 or FLOAT64");
    }
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (kv->type != GGUF_TYPE_BOOL)
        return wrong_type(f, kv, "BOOL");
    *out = kv->data[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (kv->type != GGUF_TYPE_STRING)
        return wrong_type(f, kv, "STRING");
    *out = kv->str;
    return true;
}

const gguf_kv *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, uint64_t *n)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return NULL;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != elem) {
        char want[40];
        snprintf(want, sizeof want, "ARRAY of %s", gguf_type_name(elem));
        if (kv->type == GGUF_TYPE_ARRAY) {
            char q[GGUF_QUOTE_MAX + 8];
            quote(q, sizeof q, kv->key.ptr, kv->key.len);
            ghost_set_error(GHOST_ERR_FORMAT, "key '%s': ARRAY of %s, expected %s (offset %llu)", q,
                            gguf_type_name(kv->arr_type), want,
                            (unsigned long long)kv_offset(f, kv));
            return NULL;
        }
        wrong_type(f, kv, want);
        return NULL;
    }
    if (n)
        *n = kv->arr_len;
    return kv;
}

/* Element i of a numeric array as a double (exact for every 32-bit type). */
static double arr_elem(const gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->arr_len || kv->arr_type == GGUF_TYPE_STRING)
        return 0;
    const uint8_t *p = kv->data + i * gguf_type_size(kv->arr_type);
    if (kv->arr_type == GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    if (kv->arr_type == GGUF_TYPE_FLOAT64) {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    if (kv->arr_type == GGUF_TYPE_BOOL)
        return p[0];
    bool neg;
    uint64_t mag;
    read_int(kv->arr_type, p, &neg, &mag);
    return neg ? -(double)mag : (double)mag;
}

int32_t gguf_arr_i32(const gguf_kv *kv, uint64_t i)
{
    if (kv && kv->type == GGUF_TYPE_ARRAY && i < kv->arr_len &&
        (kv->arr_type == GGUF_TYPE_INT32 || kv->arr_type == GGUF_TYPE_UINT32)) {
        int32_t v;
        memcpy(&v, kv->data + 4 * i, 4);
        return v;
    }
    double d = arr_elem(kv, i);
    if (d != d)
        return 0; /* NaN fails both range tests; converting it is undefined */
    return d < INT32_MIN ? INT32_MIN : d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

uint32_t gguf_arr_u32(const gguf_kv *kv, uint64_t i)
{
    double d = arr_elem(kv, i);
    if (d != d)
        return 0; /* as in gguf_arr_i32 */
    return d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

float gguf_arr_f32(const gguf_kv *kv, uint64_t i)
{
    return (float)arr_elem(kv, i);
}

size_t gguf_type_size(gguf_type t)
{
    static const size_t sizes[GGUF_TYPE_COUNT] = {
        [GGUF_TYPE_UINT8] = 1,   [GGUF_TYPE_INT8] = 1,    [GGUF_TYPE_UINT16] = 2,
        [GGUF_TYPE_INT16] = 2,   [GGUF_TYPE_UINT32] = 4,  [GGUF_TYPE_INT32] = 4,
        [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,    [GGUF_TYPE_UINT64] = 8,
        [GGUF_TYPE_INT64] = 8,   [GGUF_TYPE_FLOAT64] = 8,
    };
    return (unsigned)t < GGUF_TYPE_COUNT ? sizes[t] : 0;
}

const char *gguf_type_name(gguf_type t)
{
    static const char *const names[GGUF_TYPE_COUNT] = {
        "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",   "FLOAT32",
        "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64",
    };
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "UNKNOWN";
}

bool gguf_str_eq(gguf_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}
