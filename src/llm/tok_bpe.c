/*
 * tok_bpe.c — byte-level BPE tokenization ("gpt2" vocabularies).
 *
 * Three stages, as llama.cpp runs them for these vocabularies:
 *   1. Pre-tokenization. tokenizer.ggml.pre names a list of regexes (those of
 *      the model's tokenizer.json). They apply in turn, each to every piece
 *      the previous one left: a piece splits into its matches and the runs
 *      of text between them, which stay pieces too. PCRE2 (UTF + UCP) runs
 *      them; "\s" is rewritten to the explicit White_Space set llama.cpp uses
 *      so both agree on
 *      the odd ones (PCRE2 alone would also take U+180E).
 *   2. Byte mapping. Each byte of a piece becomes the printable code point
 *      GPT-2's bytes_to_unicode() assigns it, so the vocabulary never holds
 *      raw spaces or control bytes ("Ġ" is the space).
 *   3. Merges. The mapped characters of a piece are symbols; the adjacent
 *      pair with the lowest rank in tokenizer.ggml.merges merges (leftmost
 *      first on ties) until none applies. Each final symbol is its token;
 *      one that is not a token is emitted as the tokens of its single bytes
 *      that have one (llama.cpp's fallback). Vocabularies flagged
 *      ignore_merges (llama3, tekken) take a whole piece that is a token as is.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "tok_internal.h"

/* ---- byte <-> code point (GPT-2 bytes_to_unicode) --------------------------- */

/* Printable Latin-1 bytes (!..~, ¡..¬, ®..ÿ) stand for themselves; the other
 * 68 bytes take U+0100.. in byte order: 0x00-0x20, then 0x7F-0xA0, then 0xAD. */
uint32_t tok_byte_to_cp(uint8_t b)
{
    if (b <= 0x20)
        return 256u + b;
    if (b >= 0x7f && b <= 0xa0)
        return 256u + 33u + (b - 0x7fu);
    if (b == 0xad)
        return 256u + 33u + 34u;
    return b;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return (cp > 0x20 && cp < 0x7f) || (cp > 0xa0 && cp != 0xad) ? (int)cp : -1;
    if (cp <= 256 + 32)
        return (int)(cp - 256);
    if (cp <= 256 + 33 + 33)
        return (int)(cp - 256 - 33 + 0x7f);
    return cp == 256 + 33 + 34 ? 0xad : -1;
}

/* ---- pre-tokenizers ----------------------------------------------------------- */

/* The regexes of each pre-tokenizer family (from the models' tokenizer.json,
 * with llama.cpp's adaptations: case-insensitive contractions spelled out). */
static const char *const RX_GPT2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const RX_LLAMA3[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const RX_QWEN2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
/* Non-ASCII characters are written as \u escapes: some (U+1F7D, U+2126,
 * U+212A...) change under Unicode normalisation, which editors may apply. */
static const char *const RX_DEEPSEEK_LLM[] = {
    "[\r\n]",
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293"
    "\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c"
    "\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0"
    "-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-"
    "\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b"
    "\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-"
    "\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113"
    "\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
    "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00"
    "-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-"
    "\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-"
    "\U000118df\U0001e900-\U0001e943]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    "\\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    "\\p{N}+",
    NULL,
};
/* llama.cpp's \p{S} misses '~' (its ASCII table for symbols), so the two
 * classes with \p{S} spell that out to agree with it. */
static const char *const RX_DEEPSEEK3[] = {
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|(?:~|[^\r\n\\p{L}\\p{P}\\p{S}])?"
    "[\\p{L}\\p{M}]+| ?(?:(?!~)[\\p{P}\\p{S}])+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const RX_DEEPSEEK_CODER[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    "\\p{N}", NULL,
};
static const char *const RX_FALCON[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const RX_STARCODER[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const RX_PORO[] = {
    " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+",
    NULL,
};
static const char *const RX_VIKING[] = {
    " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+",
    "\\p{N}",
    NULL,
};
static const char *const RX_TEKKEN[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
    "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const RX_CHAMELEON[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const RX_DEFAULT[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};

enum { PRE_IGNORE_MERGES = 1, PRE_ADD_BOS = 2, PRE_NO_BOS = 4 };

typedef struct pre_info {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *const *regex;
    int flags;
} pre_info;

static const pre_info PRE_TYPES[] = {
    {"default", RX_DEFAULT, 0},
    {"llama3 llama-v3 llama-bpe falcon3", RX_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"dbrx smaug-bpe", RX_LLAMA3, 0},
    {"chatglm-bpe", RX_LLAMA3, PRE_NO_BOS},
    {"deepseek-llm", RX_DEEPSEEK_LLM, 0},
    {"deepseek-coder", RX_DEEPSEEK_CODER, 0},
    {"deepseek-v3", RX_DEEPSEEK3, 0},
    {"falcon", RX_FALCON, 0},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", RX_STARCODER, 0},
    {"gpt-2 phi-2 jina-es jina-de gigachat jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
     "roberta-bpe mpt olmo jais",
     RX_GPT2, 0},
    {"qwen2 deepseek-r1-qwen megrez stablelm2", RX_QWEN2, 0},
    {"poro-chat bloom gpt3-finnish", RX_PORO, 0},
    {"viking", RX_VIKING, 0},
    {"tekken", RX_TEKKEN, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"chameleon", RX_CHAMELEON, PRE_ADD_BOS},
};

static bool name_in_list(const char *list, gguf_str name)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == name.len && memcmp(p, name.ptr, n) == 0)
            return true;
        p += n;
        p += *p == ' ';
    }
    return false;
}

/* ---- the loaded BPE state --------------------------------------------------------- */

#define BPE_MAX_REGEX 8

struct tok_bpe {
    tok_str *merges; /* rank -> "left" "right" concatenated, split = left length */
    char *merge_arena;
    int32_t n_merges;
    tok_map merge_map;
    pcre2_code *regex[BPE_MAX_REGEX];
    int n_regex;
    bool ignore_merges;
};

void tok_bpe_free(tok_bpe *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->n_regex; i++)
        pcre2_code_free(b->regex[i]);
    tok_map_free(&b->merge_map);
    free(b->merges);
    free(b->merge_arena);
    free(b);
}

/* White_Space as llama.cpp's tables have it (PCRE2's \s adds U+180E). */
#define WS_SET                                                                                     \
    "\\t-\\r "                                                                                     \
    "\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Copies pattern with \s and \S replaced by WS_SET classes. Returns NULL on
 * allocation failure or for \S inside a class (no pattern has one). */
static char *expand_ws(const char *rx)
{
    size_t n = strlen(rx);
    size_t cap = n * (sizeof WS_SET + 4) + 1;
    char *o = malloc(cap);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = rx[i];
        if (c == '\\' && i + 1 < n) {
            char d = rx[++i];
            const char *rep = NULL;
            if (d == 's')
                rep = in_class ? WS_SET : "[" WS_SET "]";
            else if (d == 'S' && !in_class)
                rep = "[^" WS_SET "]";
            else if (d == 'S') {
                free(o);
                return NULL;
            }
            if (rep) {
                memcpy(o + k, rep, strlen(rep));
                k += strlen(rep);
            } else {
                o[k++] = c;
                o[k++] = d;
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            o[k++] = c;
            /* a ']' right after '[' or '[^' is a literal */
            if (i + 1 < n && rx[i + 1] == '^')
                o[k++] = rx[++i];
            if (i + 1 < n && rx[i + 1] == ']')
                o[k++] = rx[++i];
            continue;
        }
        if (c == ']' && in_class)
            in_class = false;
        o[k++] = c;
    }
    o[k] = '\0';
    return o;
}

static ghost_status compile_regex(tok_bpe *b, const char *rx, gguf_str pre)
{
    char *pat = expand_ws(rx);
    if (pat == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory for pre-tokenizer regex");
    int err;
    PCRE2_SIZE at;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &at, NULL);
    free(pat);
    if (code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ghost_set_error(
            GHOST_ERR_INTERNAL,
            "tokenizer.ggml.pre '%.*s': regex does not compile at offset %zu: %s", (int)pre.len,
            pre.ptr, (size_t)at, (const char *)msg);
    }
    /* JIT is an optimisation only: without it (or when it fails) matching
     * falls back to the interpreter with the same results. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    b->regex[b->n_regex++] = code;
    return GHOST_OK;
}

/* Parses "left right" merge lines into concatenated keys with a split. The
 * split is at the first space after the first byte, as llama.cpp does; a
 * line without one becomes an empty pair that never matches a lookup. */
static ghost_status load_merges(const gguf_file *f, tok_bpe *b)
{
    uint64_t n;
    const gguf_kv *kv = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &n);
    if (kv == NULL)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "key 'tokenizer.ggml.merges': missing or not a string array "
                               "(gpt2 vocabularies need it)");
    if (n > INT32_MAX)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "key 'tokenizer.ggml.merges': %llu entries is too many",
                               (unsigned long long)n);
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (kv->strs[i].len > UINT32_MAX)
            return ghost_set_error(GHOST_ERR_FORMAT,
                                   "key 'tokenizer.ggml.merges': entry %llu is too long",
                                   (unsigned long long)i);
        total += kv->strs[i].len;
    }
    b->n_merges = (int32_t)n;
    b->merges = calloc(n ? n : 1, sizeof *b->merges);
    b->merge_arena = malloc(total ? total : 1);
    if (b->merges == NULL || b->merge_arena == NULL || !tok_map_init(&b->merge_map, n))
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory for %llu merges",
                               (unsigned long long)n);
    char *a = b->merge_arena;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = kv->strs[i];
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        tok_str *m = &b->merges[i];
        m->ptr = a;
        if (sp == NULL) {
            m->len = 0;
            m->split = 0;
        } else {
            size_t left = (size_t)(sp - s.ptr), right = s.len - left - 1;
            memcpy(a, s.ptr, left);
            memcpy(a + left, sp + 1, right);
            m->len = (uint32_t)(left + right);
            m->split = (uint32_t)left;
            a += left + right;
        }
        tok_map_put(&b->merge_map, b->merges, (uint32_t)i, false);
    }
    return GHOST_OK;
}

ghost_status tok_bpe_load(const gguf_file *f, tok_vocab *v)
{
    gguf_str pre = {"default", 7};
    const gguf_kv *pkv = gguf_find_kv(f, "tokenizer.ggml.pre");
    if (pkv != NULL) {
        if (pkv->type != GGUF_TYPE_STRING)
            return ghost_set_error(GHOST_ERR_FORMAT,
                                   "key 'tokenizer.ggml.pre': type %s, expected string",
                                   gguf_type_name(pkv->type));
        pre = pkv->str;
    }
    const pre_info *info = NULL;
    for (size_t i = 0; i < sizeof PRE_TYPES / sizeof PRE_TYPES[0] && info == NULL; i++)
        if (name_in_list(PRE_TYPES[i].names, pre))
            info = &PRE_TYPES[i];
    if (info == NULL) {
        char list[1024];
        size_t k = 0;
        for (size_t i = 0; i < sizeof PRE_TYPES / sizeof PRE_TYPES[0] && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? " " : "",
                                  PRE_TYPES[i].names);
        return ghost_set_error(
            GHOST_ERR_UNSUPPORTED,
            "key 'tokenizer.ggml.pre': unknown pre-tokenizer '%.*s' (supported: %s)",
            (int)(pre.len > 64 ? 64 : pre.len), pre.ptr, list);
    }

    tok_bpe *b = calloc(1, sizeof *b);
    if (b == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenizer: out of memory");
    v->bpe = b;
    b->ignore_merges = info->flags & PRE_IGNORE_MERGES;
    v->add_bos = info->flags & PRE_ADD_BOS;
    if (info->flags & PRE_NO_BOS)
        v->bos = -1;
    ghost_status rc = load_merges(f, b);
    for (int i = 0; rc == GHOST_OK && info->regex[i] != NULL; i++)
        rc = compile_regex(b, info->regex[i], pre);
    return rc;
}

/* ---- encoding ------------------------------------------------------------------------ */

typedef struct span {
    size_t start, end;
} span;

typedef struct bpe_scratch {
    span *seg, *next;
    size_t seg_cap, next_cap, n_seg, n_next;
    char *enc;
    size_t enc_cap;
    tok_symbol *sym;
    size_t sym_cap;
    tok_heap heap;
    pcre2_match_data *md;
} bpe_scratch;

static bool push_span(bpe_scratch *s, size_t a, size_t b)
{
    span *p = tok_grow(s->next, &s->next_cap, s->n_next + 1, sizeof *p);
    if (p == NULL)
        return false;
    s->next = p;
    s->next[s->n_next++] = (span){a, b};
    return true;
}

/* Splits every current piece by one regex into matches and the gaps between. */
static ghost_status split_by(bpe_scratch *s, const pcre2_code *rx, const char *text)
{
    s->n_next = 0;
    for (size_t i = 0; i < s->n_seg; i++) {
        const char *subj = text + s->seg[i].start;
        size_t len = s->seg[i].end - s->seg[i].start, pos = 0, prev = 0;
        uint32_t opts = PCRE2_NO_UTF_CHECK;
        while (pos < len) {
            int rc = pcre2_match(rx, (PCRE2_SPTR)subj, len, pos, opts, s->md, NULL);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(opts & PCRE2_NO_JIT)) {
                opts |= PCRE2_NO_JIT; /* the interpreter keeps its stack on the heap */
                continue;
            }
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                PCRE2_UCHAR msg[120];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return ghost_set_error(GHOST_ERR_BAD_INPUT,
                                       "tokenize: pre-tokenizer failed at byte %zu: %s",
                                       s->seg[i].start + pos, (const char *)msg);
            }
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            size_t ms = ov[0], me = ov[1];
            if (ms > prev && !push_span(s, s->seg[i].start + prev, s->seg[i].start + ms))
                goto nomem;
            if (me == ms) {
                /* An empty match only marks a boundary; step over one character. */
                prev = ms;
                pos = ms + tok_utf8_len((unsigned char)subj[ms]);
                continue;
            }
            if (!push_span(s, s->seg[i].start + ms, s->seg[i].start + me))
                goto nomem;
            prev = pos = me;
        }
        if (prev < len && !push_span(s, s->seg[i].start + prev, s->seg[i].start + len))
            goto nomem;
    }
    span *t = s->seg;
    s->seg = s->next;
    s->next = t;
    size_t tc = s->seg_cap;
    s->seg_cap = s->next_cap;
    s->next_cap = tc;
    s->n_seg = s->n_next;
    return GHOST_OK;
nomem:
    return ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory splitting text");
}

typedef struct bpe_pairs {
    const tok_bpe *b;
    bpe_scratch *s;
} bpe_pairs;

static bool add_bigram(void *ctx, int32_t left, int32_t right)
{
    const tok_bpe *b = ((bpe_pairs *)ctx)->b;
    bpe_scratch *s = ((bpe_pairs *)ctx)->s;
    if (left < 0 || right < 0)
        return true;
    const tok_symbol *l = &s->sym[left], *r = &s->sym[right];
    uint32_t size = l->n + r->n;
    int32_t rank = tok_map_get(&b->merge_map, b->merges, l->text, size, l->n);
    if (rank < 0)
        return true;
    tok_bigram bg = {
        .key = ((uint64_t)(uint32_t)rank << 32) | (uint32_t)left, .right = right, .size = size};
    return tok_heap_push(&s->heap, bg);
}

/* Merges one byte-mapped piece and emits its tokens. */
static ghost_status encode_word(const tok_vocab *v, bpe_scratch *s, const char *w, size_t wlen,
                                tok_out *out)
{
    const tok_bpe *b = v->bpe;
    size_t elen = 0;
    char *enc = tok_grow(s->enc, &s->enc_cap, 2 * wlen, 1);
    tok_symbol *sym = enc ? tok_grow(s->sym, &s->sym_cap, wlen, sizeof *sym) : NULL;
    if (enc)
        s->enc = enc;
    if (sym)
        s->sym = sym;
    if (enc == NULL || sym == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory for a %zu-byte word",
                               wlen);

    int32_t n_sym = 0;
    for (size_t i = 0; i < wlen; i++) {
        size_t n = tok_utf8_encode(tok_byte_to_cp((uint8_t)w[i]), enc + elen);
        sym[n_sym] = (tok_symbol){.prev = n_sym - 1,
                                  .next = i + 1 < wlen ? n_sym + 1 : -1,
                                  .text = enc + elen,
                                  .n = (uint32_t)n};
        n_sym++;
        elen += n;
    }
    if (b->ignore_merges) {
        int32_t id = tok_lookup(v, enc, elen);
        if (id >= 0) {
            tok_emit(out, id);
            return GHOST_OK;
        }
    }

    bpe_pairs pairs = {b, s};
    if (!tok_merge_all(sym, n_sym, &s->heap, add_bigram, &pairs))
        return ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory merging a %zu-byte word",
                               wlen);

    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = tok_lookup(v, sym[i].text, sym[i].n);
        if (id >= 0) {
            tok_emit(out, id);
            continue;
        }
        for (uint32_t j = 0; j < sym[i].n; j++) {
            id = tok_lookup(v, sym[i].text + j, 1);
            if (id >= 0)
                tok_emit(out, id);
        }
    }
    return GHOST_OK;
}

ghost_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_out *out)
{
    const tok_bpe *b = v->bpe;
    if (len == 0)
        return GHOST_OK;
    if (len > INT32_MAX / 2)
        return ghost_set_error(GHOST_ERR_BAD_INPUT, "tokenize: text of %zu bytes is too long", len);
    bpe_scratch s = {0};
    ghost_status rc = GHOST_OK;
    s.md = pcre2_match_data_create(1, NULL);
    s.seg = tok_grow(NULL, &s.seg_cap, 1, sizeof *s.seg);
    if (s.md == NULL || s.seg == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "tokenize: out of memory");
        goto done;
    }
    s.seg[0] = (span){0, len};
    s.n_seg = 1;
    for (int i = 0; i < b->n_regex && rc == GHOST_OK; i++)
        rc = split_by(&s, b->regex[i], text);
    for (size_t i = 0; i < s.n_seg && rc == GHOST_OK; i++)
        rc = encode_word(v, &s, text + s.seg[i].start, s.seg[i].end - s.seg[i].start, out);
done:
    pcre2_match_data_free(s.md);
    free(s.seg);
    free(s.next);
    free(s.enc);
    free(s.sym);
    free(s.heap.v);
    return rc;
}
