/*
 * tokenizer.c — the vocabulary: loading tokenizer.ggml.* keys, special
 * tokens, pieces, and the tok_encode driver shared by SPM and BPE.
 *
 * Loading follows llama.cpp's llama_vocab::load (c392e509) so that ids,
 * defaults and special-token handling agree with it:
 *   - model "llama" -> SPM (defaults bos 1, eos 2, unk 0, add_bos, space
 *     prefix); "gpt2" -> BPE (defaults bos = eos = 11, add_bos only for
 *     llama3/tekken/chameleon pre-tokenizers); other models are refused.
 *   - tokenizer.ggml.{bos,eos,eot,eom,unknown,seperator,padding,mask,fim_*}
 *     _token_id override the defaults when in range; add_bos_token,
 *     add_eos_token and add_space_prefix override the flags.
 *   - EOT/EOM/FIM tokens are also found by their text, and those found (and
 *     the end-of-generation texts) become CONTROL tokens.
 *   - phi-3 models right-strip spaces after their special tokens; jina-v2
 *     left-strips before <mask>.
 * Empty token strings are renamed "[EMPTY_<id>]"; for duplicate strings the
 * highest id wins the text -> id map. Default ids that are out of range are
 * dropped (-1), and add_bos/add_eos are cleared when their token is missing.
 *
 * tok_encode cuts special tokens out of the text first (longest text first,
 * every occurrence, left to right — llama.cpp's tokenizer_st_partition), then
 * hands each remaining fragment to the SPM or BPE encoder.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "tok_internal.h"

/* ---- metadata helpers ---------------------------------------------------------- */

/* The key's kv when present with type t; NULL when absent, or when present
 * with another type (then *rc is a format error naming the key). */
static const gguf_kv *kv_of_type(const gguf_file *f, const char *key, gguf_type t, ghost_status *rc)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (kv != NULL && kv->type != t) {
        *rc = ghost_set_error(GHOST_ERR_FORMAT, "key '%s': type %s, expected %s", key,
                              gguf_type_name(kv->type), gguf_type_name(t));
        return NULL;
    }
    return kv;
}

/* An integer scalar of any width (little-endian in the file, as on the
 * hosts we build for). False when absent; a non-integer type is a format
 * error (reported through *rc). */
static bool kv_int(const gguf_file *f, const char *key, int64_t *out, ghost_status *rc)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (kv == NULL)
        return false;
    size_t size;
    bool is_signed = kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 ||
                     kv->type == GGUF_TYPE_INT32 || kv->type == GGUF_TYPE_INT64;
    switch (kv->type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8: size = 1; break;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16: size = 2; break;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32: size = 4; break;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64: size = 8; break;
    default:
        *rc = ghost_set_error(GHOST_ERR_FORMAT, "key '%s': type %s, expected an integer", key,
                              gguf_type_name(kv->type));
        return false;
    }
    uint64_t u = 0;
    memcpy(&u, kv->data, size);
    if (is_signed && size < 8 && (u >> (8 * size - 1) & 1))
        u |= ~0ull << (8 * size); /* sign-extend */
    if (!is_signed && u > INT64_MAX)
        u = INT64_MAX;
    *out = (int64_t)u;
    return true;
}

static bool kv_bool(const gguf_file *f, const char *key, bool *out, ghost_status *rc)
{
    const gguf_kv *kv = kv_of_type(f, key, GGUF_TYPE_BOOL, rc);
    if (kv != NULL)
        *out = kv->data[0] != 0;
    return kv != NULL;
}

/* A string scalar, or an empty string when absent or of another type. */
static gguf_str kv_string(const gguf_file *f, const char *key, ghost_status *rc)
{
    const gguf_kv *kv = kv_of_type(f, key, GGUF_TYPE_STRING, rc);
    return kv ? kv->str : (gguf_str){"", 0};
}

/* An array of n elements of one of the two given types, or NULL when absent;
 * present but wrong -> *rc. */
static const gguf_kv *kv_array(const gguf_file *f, const char *key, gguf_type t1, gguf_type t2,
                               uint64_t n, ghost_status *rc)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (kv == NULL)
        return NULL;
    if (kv->type != GGUF_TYPE_ARRAY || (kv->arr_type != t1 && kv->arr_type != t2)) {
        *rc = ghost_set_error(GHOST_ERR_FORMAT, "key '%s': type %s of %s, expected array of %s",
                              key, gguf_type_name(kv->type),
                              gguf_type_name(kv->type == GGUF_TYPE_ARRAY ? kv->arr_type : kv->type),
                              gguf_type_name(t1));
        return NULL;
    }
    if (kv->arr_len != n) {
        *rc = ghost_set_error(GHOST_ERR_FORMAT,
                              "key '%s': %llu entries, but tokenizer.ggml.tokens has %llu", key,
                              (unsigned long long)kv->arr_len, (unsigned long long)n);
        return NULL;
    }
    return kv;
}

/* ---- loading --------------------------------------------------------------------- */

static ghost_status load_tokens(const gguf_file *f, tok_vocab *v)
{
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (kv == NULL)
        return ghost_set_error(GHOST_ERR_FORMAT, "key 'tokenizer.ggml.tokens': missing");
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "key 'tokenizer.ggml.tokens': type %s%s%s, expected array of string",
                               gguf_type_name(kv->type), kv->type == GGUF_TYPE_ARRAY ? " of " : "",
                               kv->type == GGUF_TYPE_ARRAY ? gguf_type_name(kv->arr_type) : "");
    if (kv->arr_len == 0 || kv->arr_len > INT32_MAX - 1)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "key 'tokenizer.ggml.tokens': %llu tokens (need 1..%d)",
                               (unsigned long long)kv->arr_len, INT32_MAX - 1);
    uint64_t n = kv->arr_len;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (kv->strs[i].len > UINT32_MAX - 1)
            return ghost_set_error(GHOST_ERR_FORMAT,
                                   "key 'tokenizer.ggml.tokens': token %llu is too long",
                                   (unsigned long long)i);
        total += kv->strs[i].len ? kv->strs[i].len + 1 : 24; /* room for "[EMPTY_<id>]" */
    }
    v->n_vocab = (int32_t)n;
    v->tokens = calloc(n, sizeof *v->tokens);
    v->arena = malloc(total);
    v->scores = calloc(n, sizeof *v->scores);
    v->types = malloc(n);
    v->attrs = calloc(n, 1);
    v->eog = calloc(n / 8 + 1, 1);
    if (!v->tokens || !v->arena || !v->scores || !v->types || !v->attrs || !v->eog ||
        !tok_map_init(&v->map, n))
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory for %llu tokens",
                               (unsigned long long)n);
    char *a = v->arena;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = kv->strs[i];
        size_t len = s.len;
        if (len == 0)
            len = (size_t)snprintf(a, 24, "[EMPTY_%llu]", (unsigned long long)i);
        else
            memcpy(a, s.ptr, len);
        a[len] = '\0';
        v->tokens[i] = (tok_str){a, (uint32_t)len, TOK_NO_SPLIT};
        a += len + 1;
        tok_map_put(&v->map, v->tokens, (uint32_t)i, true);
    }

    ghost_status rc = GHOST_OK;
    const gguf_kv *sc =
        kv_array(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, GGUF_TYPE_FLOAT32, n, &rc);
    const gguf_kv *ty =
        kv_array(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, GGUF_TYPE_UINT32, n, &rc);
    if (rc != GHOST_OK)
        return rc;
    for (uint64_t i = 0; i < n; i++) {
        if (sc)
            v->scores[i] = gguf_arr_f32(sc, i);
        int32_t t = ty ? gguf_arr_i32(ty, i) : TOK_TYPE_NORMAL;
        v->types[i] =
            (uint8_t)(t >= TOK_TYPE_NORMAL && t <= TOK_TYPE_BYTE ? t : TOK_TYPE_UNDEFINED);
    }
    return GHOST_OK;
}

typedef struct special_key {
    const char *key;
    size_t field; /* offset of the int32_t in tok_vocab */
} special_key;

#define SK(k, f)                                                                                   \
    {                                                                                              \
        "tokenizer.ggml." k, offsetof(tok_vocab, f)                                                \
    }
static const special_key SPECIAL_KEYS[] = {
    SK("bos_token_id", bos),         SK("eos_token_id", eos),
    SK("eot_token_id", eot),         SK("eom_token_id", eom),
    SK("unknown_token_id", unk),     SK("seperator_token_id", sep),
    SK("padding_token_id", pad),     SK("mask_token_id", mask),
    SK("fim_pre_token_id", fim_pre), SK("fim_suf_token_id", fim_suf),
    SK("fim_mid_token_id", fim_mid), SK("fim_pad_token_id", fim_pad),
    SK("fim_rep_token_id", fim_rep), SK("fim_sep_token_id", fim_sep),
    SK("prefix_token_id", fim_pre),  SK("suffix_token_id", fim_suf),
    SK("middle_token_id", fim_mid),
};
#undef SK

static int32_t *field_of(tok_vocab *v, size_t off)
{
    return (int32_t *)(void *)((char *)v + off);
}

/* Tokens recognised by their text when the metadata names none. */
static const char *const EOT_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<EOT>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81"
                                        "of\xe2\x96\x81"
                                        "sentence\xef\xbd\x9c>",
                                        NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>", "<fim-prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>", NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>", "<fim-suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "hole\xef\xbd\x9c>",
                                            "<SUF>", NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>", "<fim-middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                            NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|eom_id|>", "<EOT>",   NULL};

static int32_t find_text(const tok_vocab *v, const char *s)
{
    return tok_lookup(v, s, strlen(s));
}

/* Sets *id from the first text of list present, and makes that token CONTROL. */
static void detect(tok_vocab *v, int32_t *id, const char *const *list)
{
    if (*id >= 0)
        return;
    for (; *list; list++) {
        int32_t t = find_text(v, *list);
        if (t >= 0) {
            *id = t;
            v->types[t] = TOK_TYPE_CONTROL;
            return;
        }
    }
}

static void set_eog(tok_vocab *v, int32_t id)
{
    if (id >= 0 && id < v->n_vocab)
        v->eog[id / 8] |= (uint8_t)(1u << (id % 8));
}

static ghost_status load_specials(const gguf_file *f, tok_vocab *v)
{
    ghost_status rc = GHOST_OK;
    for (size_t i = 0; i < sizeof SPECIAL_KEYS / sizeof SPECIAL_KEYS[0]; i++) {
        int64_t x;
        if (kv_int(f, SPECIAL_KEYS[i].key, &x, &rc) && x >= 0 && x < v->n_vocab)
            *field_of(v, SPECIAL_KEYS[i].field) = (int32_t)x;
        if (rc != GHOST_OK)
            return rc;
    }
    bool b;
    if (kv_bool(f, "tokenizer.ggml.add_bos_token", &b, &rc))
        v->add_bos = b;
    if (kv_bool(f, "tokenizer.ggml.add_eos_token", &b, &rc))
        v->add_eos = b;
    if (rc != GHOST_OK)
        return rc;

    detect(v, &v->eot, EOT_TEXTS);
    detect(v, &v->eom, EOM_TEXTS);
    detect(v, &v->fim_pre, FIM_PRE_TEXTS);
    detect(v, &v->fim_suf, FIM_SUF_TEXTS);
    detect(v, &v->fim_mid, FIM_MID_TEXTS);
    detect(v, &v->fim_pad, FIM_PAD_TEXTS);
    detect(v, &v->fim_rep, FIM_REP_TEXTS);
    detect(v, &v->fim_sep, FIM_SEP_TEXTS);

    set_eog(v, v->fim_pad);
    set_eog(v, v->fim_rep);
    set_eog(v, v->fim_sep);
    for (const char *const *t = EOG_TEXTS; *t; t++) {
        int32_t id = find_text(v, *t);
        if (id >= 0) {
            set_eog(v, id);
            v->types[id] = TOK_TYPE_CONTROL;
        }
    }
    set_eog(v, v->eos);
    set_eog(v, v->eot);
    set_eog(v, v->eom);
    return GHOST_OK;
}

static int cmp_special(const void *a, const void *b, void *vv)
{
    const tok_vocab *v = vv;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->tokens[x].len != v->tokens[y].len)
        return v->tokens[x].len > v->tokens[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void set_attr(tok_vocab *v, const char *text, uint8_t attr, bool on)
{
    int32_t id = find_text(v, text);
    if (id >= 0)
        v->attrs[id] = on ? (uint8_t)(v->attrs[id] | attr) : (uint8_t)(v->attrs[id] & ~attr);
}

static bool contains_ci(gguf_str hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay.len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)hay.ptr[i + k]) == needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static ghost_status build_special_list(const gguf_file *f, tok_vocab *v)
{
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_vocab; i++)
        n += v->types[i] == TOK_TYPE_CONTROL || v->types[i] == TOK_TYPE_USER_DEFINED ||
             v->types[i] == TOK_TYPE_UNKNOWN;
    v->specials = malloc((size_t)(n ? n : 1) * sizeof *v->specials);
    if (v->specials == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory");
    v->n_specials = 0;
    for (int32_t i = 0; i < v->n_vocab; i++)
        if (v->types[i] == TOK_TYPE_CONTROL || v->types[i] == TOK_TYPE_USER_DEFINED ||
            v->types[i] == TOK_TYPE_UNKNOWN)
            v->specials[v->n_specials++] = i;
    qsort_r(v->specials, (size_t)n, sizeof *v->specials, cmp_special, v);

    /* Per-model strip rules (not in GGUF; llama.cpp keys them on names). */
    ghost_status rc = GHOST_OK;
    gguf_str name = kv_string(f, "general.name", &rc);
    gguf_str pre = kv_string(f, "tokenizer.ggml.pre", &rc);
    if (rc != GHOST_OK)
        return rc;
    if (contains_ci(pre, "jina-v2-de") || contains_ci(pre, "jina-v2-es") ||
        contains_ci(pre, "jina-v2-code")) {
        set_attr(v, "<mask>", TOK_ATTR_LSTRIP, true);
    } else if (contains_ci(name, "phi-3") || contains_ci(name, "phi3")) {
        for (int32_t i = 0; i < v->n_specials; i++)
            v->attrs[v->specials[i]] |= TOK_ATTR_RSTRIP;
        set_attr(v, "</s>", TOK_ATTR_RSTRIP, true);
        set_attr(v, "<unk>", TOK_ATTR_RSTRIP, false);
        set_attr(v, "<s>", TOK_ATTR_RSTRIP, false);
        set_attr(v, "<|endoftext|>", TOK_ATTR_RSTRIP, false);
    }
    return GHOST_OK;
}

/* ---- pieces -------------------------------------------------------------------------- */

typedef struct piece_buf {
    char *p;
    size_t n, cap;
} piece_buf;

static bool buf_put(piece_buf *b, const void *s, size_t n)
{
    char *p = tok_grow(b->p, &b->cap, b->n + n, 1);
    if (p == NULL)
        return false;
    b->p = p;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

/* One code point of a token string, decoded leniently like llama.cpp's
 * unicode_cpts_from_utf8: a malformed sequence is U+FFFD over one byte. */
static uint32_t lenient_cp(const char *str, size_t n, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    bool ok = len > 0 && len <= n && !(s[0] >= 0x80 && s[0] < 0xc0);
    for (size_t k = 1; ok && k < len; k++)
        ok = (s[k] & 0xc0) == 0x80;
    if (!ok) {
        *adv = 1;
        return 0xfffd;
    }
    return tok_utf8_decode(str, len, adv);
}

/* Byte-level BPE text -> bytes; code points outside the 256 become
 * "[UNK_BYTE_0x<hex>" + the token text + "]" as in llama.cpp. */
static bool decode_bpe(piece_buf *b, const tok_str *t)
{
    for (size_t i = 0; i < t->len;) {
        size_t adv;
        uint32_t cp = lenient_cp(t->ptr + i, t->len - i, &adv);
        i += adv;
        int byte = tok_cp_to_byte(cp);
        if (byte >= 0) {
            unsigned char c = (unsigned char)byte;
            if (!buf_put(b, &c, 1))
                return false;
            continue;
        }
        char u[4], hex[16];
        size_t un = tok_utf8_encode(cp, u), hn = 0;
        for (size_t k = 0; k < un; k++)
            hn += (size_t)snprintf(hex + hn, sizeof hex - hn, "%02x", (unsigned char)u[k]);
        if (!buf_put(b, "[UNK_BYTE_0x", 12) || !buf_put(b, hex, hn) ||
            !buf_put(b, t->ptr, t->len) || !buf_put(b, "]", 1))
            return false;
    }
    return true;
}

static bool piece_of(const tok_vocab *v, int32_t id, piece_buf *b)
{
    const tok_str *t = &v->tokens[id];
    switch (v->types[id]) {
    case TOK_TYPE_USER_DEFINED: return buf_put(b, t->ptr, t->len);
    case TOK_TYPE_NORMAL:
        if (v->kind == TOK_KIND_BPE)
            return decode_bpe(b, t);
        for (size_t i = 0; i < t->len;) {
            if (t->len - i >= 3 && memcmp(t->ptr + i, "\xe2\x96\x81", 3) == 0) {
                if (!buf_put(b, " ", 1))
                    return false;
                i += 3;
            } else if (!buf_put(b, t->ptr + i++, 1)) {
                return false;
            }
        }
        return true;
    case TOK_TYPE_BYTE:
        if (v->kind == TOK_KIND_SPM && t->len == 6 && memcmp(t->ptr, "<0x", 3) == 0) {
            unsigned char c = (unsigned char)strtol(t->ptr + 3, NULL, 16);
            return buf_put(b, &c, 1);
        }
        return true;
    default: /* CONTROL, UNKNOWN, UNUSED, UNDEFINED print nothing */ return true;
    }
}

static ghost_status build_pieces(tok_vocab *v)
{
    piece_buf b = {0};
    v->piece_off = malloc(((size_t)v->n_vocab + 1) * sizeof *v->piece_off);
    if (v->piece_off == NULL)
        goto nomem;
    for (int32_t i = 0; i < v->n_vocab; i++) {
        v->piece_off[i] = (uint32_t)b.n;
        if (!piece_of(v, i, &b) || b.n > UINT32_MAX)
            goto nomem;
    }
    v->piece_off[v->n_vocab] = (uint32_t)b.n;
    v->pieces = b.p ? b.p : malloc(1);
    if (v->pieces == NULL)
        goto nomem;
    return GHOST_OK;
nomem:
    free(b.p);
    return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory for token pieces");
}

static void build_spm_bytes(tok_vocab *v)
{
    for (int c = 0; c < 256; c++) {
        char hexname[8], raw = (char)c;
        snprintf(hexname, sizeof hexname, "<0x%02X>", c);
        int32_t id = find_text(v, hexname);
        v->spm_byte[c] = id >= 0 ? id : tok_lookup(v, &raw, 1);
    }
}

/* ---- public ------------------------------------------------------------------------------ */

void tok_free(tok_vocab *v)
{
    if (v == NULL)
        return;
    tok_bpe_free(v->bpe);
    tok_map_free(&v->map);
    free(v->tokens);
    free(v->arena);
    free(v->scores);
    free(v->types);
    free(v->attrs);
    free(v->eog);
    free(v->pieces);
    free(v->piece_off);
    free(v->specials);
    free(v);
}

static void drop_out_of_range(tok_vocab *v, int32_t *id)
{
    if (*id >= v->n_vocab)
        *id = -1;
}

ghost_status tok_load(const gguf_file *f, tok_vocab **out)
{
    if (out == NULL)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "tok_load: out is NULL");
    *out = NULL;
    if (f == NULL)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "tok_load: file is NULL");

    ghost_status rc = GHOST_OK;
    const gguf_kv *mkv = gguf_find_kv(f, "tokenizer.ggml.model");
    if (mkv == NULL)
        return ghost_set_error(GHOST_ERR_FORMAT, "key 'tokenizer.ggml.model': missing");
    gguf_str model = kv_string(f, "tokenizer.ggml.model", &rc);
    if (rc != GHOST_OK)
        return rc;
    tok_kind kind;
    if (gguf_str_eq(model, "llama"))
        kind = TOK_KIND_SPM;
    else if (gguf_str_eq(model, "gpt2"))
        kind = TOK_KIND_BPE;
    else
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "key 'tokenizer.ggml.model': tokenizer '%.*s' is not supported "
                               "(supported: llama = SentencePiece, gpt2 = byte-level BPE)",
                               (int)(model.len > 64 ? 64 : model.len), model.ptr);

    tok_vocab *v = calloc(1, sizeof *v);
    if (v == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory");
    v->kind = kind;
    v->eot = v->eom = v->sep = v->pad = v->mask = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    if (kind == TOK_KIND_SPM) {
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->add_bos = true;
        v->add_space_prefix = true;
    } else {
        v->bos = v->eos = 11;
        v->unk = -1;
    }

    if ((rc = load_tokens(f, v)) != GHOST_OK)
        goto fail;
    if (kind == TOK_KIND_BPE && (rc = tok_bpe_load(f, v)) != GHOST_OK)
        goto fail;
    bool b;
    if (kv_bool(f, "tokenizer.ggml.add_space_prefix", &b, &rc))
        v->add_space_prefix = b;
    if (rc != GHOST_OK)
        goto fail;
    drop_out_of_range(v, &v->bos);
    drop_out_of_range(v, &v->eos);
    drop_out_of_range(v, &v->unk);
    if ((rc = load_specials(f, v)) != GHOST_OK)
        goto fail;
    v->add_bos = v->add_bos && v->bos >= 0;
    v->add_eos = v->add_eos && v->eos >= 0;
    if ((rc = build_special_list(f, v)) != GHOST_OK || (rc = build_pieces(v)) != GHOST_OK)
        goto fail;
    if (kind == TOK_KIND_SPM)
        build_spm_bytes(v);
    *out = v;
    return GHOST_OK;
fail:
    tok_free(v);
    return rc;
}

int32_t tok_n_vocab(const tok_vocab *v)
{
    return v ? v->n_vocab : 0;
}
int32_t tok_bos(const tok_vocab *v)
{
    return v ? v->bos : -1;
}
int32_t tok_eos(const tok_vocab *v)
{
    return v ? v->eos : -1;
}
bool tok_add_bos(const tok_vocab *v)
{
    return v && v->add_bos;
}
bool tok_add_eos(const tok_vocab *v)
{
    return v && v->add_eos;
}

bool tok_is_eog(const tok_vocab *v, int32_t id)
{
    return v && id >= 0 && id < v->n_vocab && (v->eog[id / 8] >> (id % 8) & 1);
}

const char *tok_text(const tok_vocab *v, int32_t id)
{
    return v && id >= 0 && id < v->n_vocab ? v->tokens[id].ptr : NULL;
}

tok_type tok_get_type(const tok_vocab *v, int32_t id)
{
    return v && id >= 0 && id < v->n_vocab ? (tok_type)v->types[id] : TOK_TYPE_UNDEFINED;
}

int32_t tok_piece(const tok_vocab *v, int32_t id, char *buf, size_t cap)
{
    if (v == NULL || id < 0 || id >= v->n_vocab)
        return -1;
    uint32_t n = v->piece_off[id + 1] - v->piece_off[id];
    if (n > INT32_MAX)
        return -1;
    if (n > cap)
        return -(int32_t)n;
    if (n > 0)
        memcpy(buf, v->pieces + v->piece_off[id], n);
    return (int32_t)n;
}

/* ---- special-token partition ------------------------------------------------------------ */

typedef struct frag {
    int32_t token; /* -1: raw text */
    size_t off, len;
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static bool frag_push(frag_list *l, int32_t token, size_t off, size_t len)
{
    frag *p = tok_grow(l->v, &l->cap, l->n + 1, sizeof *p);
    if (p == NULL)
        return false;
    l->v = p;
    l->v[l->n++] = (frag){token, off, len};
    return true;
}

/* C-locale isspace, as llama.cpp applies to the bytes around stripped tokens. */
static bool ascii_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Cuts every occurrence of special token id out of the raw fragments of *in,
 * writing the result to *out. */
static bool cut_special(const tok_vocab *v, int32_t id, const char *text, const frag_list *in,
                        frag_list *out)
{
    const tok_str *t = &v->tokens[id];
    uint8_t attr = v->attrs[id];
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.token >= 0) {
            if (!frag_push(out, f.token, 0, 0))
                return false;
            continue;
        }
        size_t base = f.off, end = f.off + f.len;
        for (;;) {
            const char *m = base < end ? memmem(text + base, end - base, t->ptr, t->len) : NULL;
            if (m == NULL) {
                if (base < end && !frag_push(out, -1, base, end - base))
                    return false;
                break;
            }
            size_t at = (size_t)(m - text), left = at - base;
            if (attr & TOK_ATTR_LSTRIP)
                while (left > 0 && ascii_space(text[base + left - 1]))
                    left--;
            if ((left > 0 && !frag_push(out, -1, base, left)) || !frag_push(out, id, 0, 0))
                return false;
            base = at + t->len;
            if (attr & TOK_ATTR_RSTRIP)
                while (base < end && ascii_space(text[base]))
                    base++;
        }
    }
    return true;
}

static ghost_status partition(const tok_vocab *v, const char *text, size_t len, bool parse_special,
                              frag_list *res)
{
    frag_list tmp = {0};
    ghost_status rc = GHOST_OK;
    if (len > 0 && !frag_push(res, -1, 0, len))
        goto nomem;
    for (int32_t i = 0; i < v->n_specials && res->n > 0; i++) {
        int32_t id = v->specials[i];
        if (!parse_special && v->types[id] != TOK_TYPE_USER_DEFINED)
            continue;
        /* fragments are substrings of text: skip tokens absent from all of it */
        if (memmem(text, len, v->tokens[id].ptr, v->tokens[id].len) == NULL)
            continue;
        if (!cut_special(v, id, text, res, &tmp))
            goto nomem;
        frag_list sw = *res;
        *res = tmp;
        tmp = sw;
    }
    goto done;
nomem:
    rc = ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory splitting special tokens");
done:
    free(tmp.v);
    return rc;
}

/* ---- encode ---------------------------------------------------------------------------- */

ghost_status tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *out, size_t cap, size_t *n_out)
{
    if (n_out != NULL)
        *n_out = 0;
    if (v == NULL || n_out == NULL || (text == NULL && len > 0) || (out == NULL && cap > 0))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "tokenize: NULL argument");
    size_t bad = tok_utf8_check(text, len);
    if (bad < len)
        return ghost_set_error(GHOST_ERR_BAD_INPUT,
                               "tokenize: invalid UTF-8 at byte offset %zu (0x%02x)", bad,
                               (unsigned char)text[bad]);

    frag_list fr = {0};
    ghost_status rc = partition(v, text, len, parse_special, &fr);
    tok_out o = {out, cap, 0};
    if (add_special && v->add_bos)
        tok_emit(&o, v->bos);
    bool prev_special = true; /* SPM: the text start counts as after a special */
    for (size_t i = 0; i < fr.n && rc == GHOST_OK; i++) {
        const frag *f = &fr.v[i];
        if (f->token >= 0) {
            tok_emit(&o, f->token);
            prev_special = true;
        } else if (v->kind == TOK_KIND_SPM) {
            rc = tok_spm_encode(v, text + f->off, f->len, v->add_space_prefix && prev_special, &o);
            prev_special = false;
        } else {
            rc = tok_bpe_encode(v, text + f->off, f->len, &o);
        }
    }
    free(fr.v);
    if (rc != GHOST_OK)
        return rc;
    if (add_special && v->add_eos)
        tok_emit(&o, v->eos);
    *n_out = o.n;
    if (o.n > cap)
        return ghost_set_error(GHOST_ERR_BUFFER_TOO_SMALL, "tokenize: %zu tokens do not fit in %zu",
                               o.n, cap);
    return GHOST_OK;
}
