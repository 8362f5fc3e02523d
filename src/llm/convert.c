/*
 * convert.c — Hugging Face model directory → GGUF, for llama and qwen2, the
 * way llama.cpp's convert_hf_to_gguf.py (c392e509) writes it, so the two
 * files load and run alike:
 *
 *   config.json     → {arch}.* hyper-parameters (block_count, context_length,
 *                     embedding_length, feed_forward_length, head_count,
 *                     head_count_kv, rope.freq_base, layer_norm_rms_epsilon,
 *                     key/value_length when head_dim is given; llama adds
 *                     vocab_size, rope.dimension_count and linear rope
 *                     scaling, qwen2 yarn scaling)
 *   tokenizer.json  → tokenizer.ggml.*: a BPE model with byte_fallback and a
 *                     Sequence decoder is Llama's SentencePiece vocabulary
 *                     ("llama": scores -1000, <0xXX> tokens BYTE, special
 *                     tokens CONTROL — gguf-py's LlamaHfVocab); any other BPE
 *                     is byte-level ("gpt2" with merges — get_vocab_base).
 *                     Special ids and add_bos/add_eos come from
 *                     tokenizer_config.json and config.json (SpecialVocab).
 *   safetensors     → tensors renamed (model.layers.N.self_attn.q_proj.weight
 *                     → blk.N.attn_q.weight, ...), dims reversed (GGUF's ne[0]
 *                     is the row length), llama's q/k rows permuted from HF's
 *                     split-halves RoPE layout to GGUF's interleaved one.
 *
 * Differences by design: the tokenizer.json is the only tokenizer source
 * (no tokenizer.model protobuf); tokenizer.ggml.pre for byte-level BPE is
 * chosen by architecture (qwen2 → "qwen2", llama → "llama-bpe") instead of
 * hashing a test string through the HF tokenizer; the only general.* keys
 * are architecture, type, name and quantization_version.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "gguf_write.h"
#include "llm_internal.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "tools.h"
#include "tools_internal.h"

/* ---- vocabulary container ------------------------------------------------------ */

ghost_status tools_vocab_init(tools_vocab *v, uint32_t n, bool with_scores)
{
    memset(v, 0, sizeof *v);
    for (int i = 0; i < TV_N_SPECIAL; i++)
        v->special[i] = -1;
    v->add_bos = v->add_eos = v->add_space_prefix = -1;
    v->n = n;
    v->tokens = calloc(n ? n : 1, sizeof *v->tokens);
    v->types = calloc(n ? n : 1, sizeof *v->types);
    if (with_scores)
        v->scores = calloc(n ? n : 1, sizeof *v->scores);
    if (v->tokens == NULL || v->types == NULL || (with_scores && v->scores == NULL)) {
        tools_vocab_free(v);
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for a vocabulary of %u tokens", n);
    }
    return GHOST_OK;
}

void tools_vocab_free(tools_vocab *v)
{
    if (v->tokens != NULL)
        for (uint32_t i = 0; i < v->n; i++)
            free(v->tokens[i]);
    if (v->merges != NULL)
        for (uint32_t i = 0; i < v->n_merges; i++)
            free(v->merges[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
}

/* ---- config.json ---------------------------------------------------------------- */

static bool json_int(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int64_t)j->valuedouble)
        return false;
    *out = (int64_t)j->valuedouble;
    return true;
}

static ghost_status need_int(const char *path, const cJSON *obj, const char *key, int64_t min,
                             int64_t *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (j == NULL)
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: missing \"%s\"", path, key);
    if (!json_int(obj, key, out) || *out < min || *out > INT32_MAX)
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: \"%s\" is not an integer >= %lld", path, key,
                               (long long)min);
    return GHOST_OK;
}

static ghost_status read_config(const char *path, const cJSON *c, tools_hparams *hc)
{
    memset(hc, 0, sizeof *hc);
    if (!cJSON_IsObject(c))
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: not a JSON object", path);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(c, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? archs->child : NULL;
    if (!cJSON_IsString(a0))
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: missing \"architectures\"", path);
    if (strcmp(a0->valuestring, "LlamaForCausalLM") == 0)
        hc->arch = "llama";
    else if (strcmp(a0->valuestring, "Qwen2ForCausalLM") == 0)
        hc->arch = "qwen2";
    else
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "%s: architecture '%.60s' is not supported (LlamaForCausalLM, "
                               "Qwen2ForCausalLM)",
                               path, a0->valuestring);
    ghost_status rc;
    if ((rc = need_int(path, c, "hidden_size", 1, &hc->n_embd)) != GHOST_OK ||
        (rc = need_int(path, c, "num_hidden_layers", 1, &hc->n_layer)) != GHOST_OK ||
        (rc = need_int(path, c, "num_attention_heads", 1, &hc->n_head)) != GHOST_OK ||
        (rc = need_int(path, c, "intermediate_size", 1, &hc->n_ff)) != GHOST_OK ||
        (rc = need_int(path, c, "max_position_embeddings", 1, &hc->n_ctx)) != GHOST_OK ||
        (rc = need_int(path, c, "vocab_size", 1, &hc->n_vocab)) != GHOST_OK)
        return rc;
    hc->n_head_kv = hc->n_head;
    if (cJSON_GetObjectItemCaseSensitive(c, "num_key_value_heads") != NULL &&
        (rc = need_int(path, c, "num_key_value_heads", 1, &hc->n_head_kv)) != GHOST_OK)
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(c, "head_dim") != NULL &&
        (rc = need_int(path, c, "head_dim", 1, &hc->head_dim)) != GHOST_OK)
        return rc;
    if (hc->n_head % hc->n_head_kv != 0 || (hc->head_dim == 0 && hc->n_embd % hc->n_head != 0))
        return ghost_set_error(
            GHOST_ERR_FORMAT,
            "%s: %lld heads, %lld key/value heads and hidden size %lld do not fit", path,
            (long long)hc->n_head, (long long)hc->n_head_kv, (long long)hc->n_embd);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, "rope_theta");
    if ((hc->has_rope_theta = cJSON_IsNumber(j)))
        hc->rope_theta = j->valuedouble;
    j = cJSON_GetObjectItemCaseSensitive(c, "rms_norm_eps");
    if ((hc->has_rms_eps = cJSON_IsNumber(j)))
        hc->rms_eps = j->valuedouble;
    hc->tied = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings"));
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "type");
        if (!cJSON_IsString(t))
            t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (cJSON_IsNumber(f) && cJSON_IsString(t)) {
            hc->rope_scaling_type = t->valuestring;
            hc->rope_scaling_factor = f->valuedouble;
            json_int(rs, "original_max_position_embeddings", &hc->rope_orig_ctx);
        }
    }
    return GHOST_OK;
}

/* ---- tokenizer.json ------------------------------------------------------------- */

typedef struct added_tok {
    const char *content;
    int64_t id;
    bool special;
} added_tok;

typedef struct tok_src {
    const char *path;    /* tokenizer.json, for messages */
    const cJSON *vocab;  /* model.vocab: token -> id */
    const cJSON *merges; /* model.merges or NULL */
    added_tok *added;
    size_t n_added;
    const cJSON *tcfg; /* tokenizer_config.json or NULL */
} tok_src;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    return d;
}

static const added_tok *find_added(const tok_src *ts, const char *content)
{
    for (size_t i = 0; i < ts->n_added; i++)
        if (strcmp(ts->added[i].content, content) == 0)
            return &ts->added[i];
    return NULL;
}

static const added_tok *added_by_id(const tok_src *ts, int64_t id)
{
    for (size_t i = 0; i < ts->n_added; i++)
        if (ts->added[i].id == id)
            return &ts->added[i];
    return NULL;
}

/* Content of tokenizer_config's "<kind>_token": a string or {"content": ...}. */
static const char *config_token(const cJSON *tcfg, const char *kind)
{
    char key[32];
    snprintf(key, sizeof key, "%s_token", kind);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(tcfg, key);
    if (cJSON_IsObject(e))
        e = cJSON_GetObjectItemCaseSensitive(e, "content");
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

static const char *const special_kinds[TV_N_SPECIAL] = {"bos", "eos", "unk", "sep", "pad", "mask"};

/* A token HF counts among all_special_ids: a special added token, or one
 * tokenizer_config names as bos/eos/unk/... */
static bool is_special(const tok_src *ts, int64_t id, const char *text)
{
    const added_tok *a = added_by_id(ts, id);
    if (a != NULL && a->special)
        return true;
    static const char *const kinds[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    for (size_t i = 0; ts->tcfg != NULL && i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *c = config_token(ts->tcfg, kinds[i]);
        if (c != NULL && strcmp(c, text) == 0)
            return true;
    }
    return false;
}

/* id -> token text over the model vocabulary and the added tokens; entries
 * without a token stay NULL. */
static ghost_status reverse_vocab(const tok_src *ts, int64_t n, const char **rev)
{
    for (const cJSON *e = ts->vocab->child; e != NULL; e = e->next) {
        int64_t id;
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(id = (int64_t)e->valuedouble) ||
            id < 0)
            return ghost_set_error(GHOST_ERR_FORMAT, "%s: vocab entry '%.60s' has no valid id",
                                   ts->path, e->string);
        if (id >= n)
            return ghost_set_error(
                GHOST_ERR_FORMAT,
                "%s: vocab entry '%.60s' has id %lld past the vocabulary size %lld", ts->path,
                e->string, (long long)id, (long long)n);
        rev[id] = e->string;
    }
    for (size_t i = 0; i < ts->n_added; i++) {
        if (ts->added[i].id >= n)
            return ghost_set_error(
                GHOST_ERR_FORMAT,
                "%s: added token '%.60s' has id %lld past the vocabulary size %lld", ts->path,
                ts->added[i].content, (long long)ts->added[i].id, (long long)n);
        rev[ts->added[i].id] = ts->added[i].content;
    }
    return GHOST_OK;
}

static bool is_byte_token(const char *s)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    return strlen(s) == 6 && strncmp(s, "<0x", 3) == 0 && strchr(hex, s[3]) && strchr(hex, s[4]) &&
           s[5] == '>';
}

/* LlamaHfVocab: base vocabulary in id order, then added tokens past it. */
static ghost_status vocab_llama(const tok_src *ts, tools_vocab *v)
{
    int64_t base = cJSON_GetArraySize(ts->vocab), n = base;
    for (size_t i = 0; i < ts->n_added; i++)
        if (ts->added[i].id >= n)
            n = ts->added[i].id + 1;
    const char **rev = calloc((size_t)n, sizeof *rev);
    if (rev == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    ghost_status rc = reverse_vocab(ts, n, rev);
    if (rc == GHOST_OK)
        rc = tools_vocab_init(v, (uint32_t)n, true);
    for (int64_t i = 0; i < n && rc == GHOST_OK; i++) {
        if (rev[i] == NULL) {
            rc = ghost_set_error(GHOST_ERR_FORMAT, "%s: no token has id %lld", ts->path,
                                 (long long)i);
            break;
        }
        if ((v->tokens[i] = xstrdup(rev[i])) == NULL)
            rc = GHOST_ERR_NOMEM;
        v->scores[i] = -1000.0f;
        const added_tok *a = i >= base ? added_by_id(ts, i) : NULL;
        if (is_byte_token(rev[i]))
            v->types[i] = TOK_TYPE_BYTE;
        else if (is_special(ts, i, rev[i]))
            v->types[i] = TOK_TYPE_CONTROL;
        else
            v->types[i] = a != NULL ? TOK_TYPE_USER_DEFINED : TOK_TYPE_NORMAL;
    }
    free(rev);
    v->model = "llama";
    v->pre = "default";
    return rc;
}

static bool looks_special(const char *t)
{
    size_t n = strlen(t);
    return (n >= 4 && strncmp(t, "<|", 2) == 0 && strcmp(t + n - 2, "|>") == 0) ||
           strcmp(t, "<pad>") == 0 || strcmp(t, "<mask>") == 0;
}

/* "▁" (U+2581) → ' ' in a user-defined token, as get_vocab_base does. */
static void unspace(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if ((unsigned char)r[0] == 0xE2 && (unsigned char)r[1] == 0x96 &&
            (unsigned char)r[2] == 0x81) {
            *w++ = ' ';
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* A merge as "left right"; a [left, right] pair has its spaces written as
 * U+0120 first, as SpecialVocab does. */
static char *merge_string(const tok_src *ts, const cJSON *m, size_t i)
{
    if (cJSON_IsString(m))
        return xstrdup(m->valuestring);
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
        cJSON_IsString(m->child->next)) {
        const char *parts[2] = {m->child->valuestring, m->child->next->valuestring};
        size_t len = strlen(parts[0]) * 2 + strlen(parts[1]) * 2 + 2;
        char *s = malloc(len);
        if (s == NULL) {
            ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
            return NULL;
        }
        char *w = s;
        for (int p = 0; p < 2; p++) {
            if (p == 1)
                *w++ = ' ';
            for (const char *r = parts[p]; *r; r++) {
                if (*r == ' ') {
                    *w++ = (char)0xC4; /* U+0120 */
                    *w++ = (char)0xA0;
                } else {
                    *w++ = *r;
                }
            }
        }
        *w = '\0';
        return s;
    }
    ghost_set_error(GHOST_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]",
                    ts->path, i);
    return NULL;
}

/* get_vocab_base + merges: ids 0..n_vocab-1, holes as [PADi]. */
static ghost_status vocab_gpt2(const tok_src *ts, const tools_hparams *hc, tools_vocab *v)
{
    int64_t n = hc->n_vocab;
    const char **rev = calloc((size_t)n, sizeof *rev);
    if (rev == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    ghost_status rc = reverse_vocab(ts, n, rev);
    if (rc == GHOST_OK)
        rc = tools_vocab_init(v, (uint32_t)n, false);
    for (int64_t i = 0; i < n && rc == GHOST_OK; i++) {
        char pad[32];
        const char *t = rev[i];
        if (t == NULL) {
            snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
            t = pad;
        }
        if ((v->tokens[i] = xstrdup(t)) == NULL) {
            rc = GHOST_ERR_NOMEM;
            break;
        }
        const added_tok *a = added_by_id(ts, i);
        if (rev[i] == NULL)
            v->types[i] = TOK_TYPE_UNUSED;
        else if (a == NULL)
            v->types[i] = TOK_TYPE_NORMAL;
        else if (a->special || looks_special(t))
            v->types[i] = TOK_TYPE_CONTROL;
        else {
            unspace(v->tokens[i]);
            v->types[i] = TOK_TYPE_USER_DEFINED;
        }
    }
    free(rev);
    if (rc != GHOST_OK)
        return rc;
    int nm = ts->merges != NULL ? cJSON_GetArraySize(ts->merges) : 0;
    v->merges = calloc(nm ? (size_t)nm : 1, sizeof *v->merges);
    if (v->merges == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *m = nm ? ts->merges->child : NULL; m != NULL; m = m->next, i++) {
        if ((v->merges[i] = merge_string(ts, m, i)) == NULL)
            return ghost_thread_errcode();
        v->n_merges++;
    }
    v->model = "gpt2";
    v->pre = strcmp(hc->arch, "qwen2") == 0 ? "qwen2" : "llama-bpe";
    return GHOST_OK;
}

/* SpecialVocab: ids by content from tokenizer_config, else config.json's
 * <kind>_token_id; add_bos/add_eos; chat template. */
static ghost_status special_tokens(const tok_src *ts, const cJSON *config, tools_vocab *v,
                                   bool limit_to_vocab)
{
    for (int k = 0; k < TV_N_SPECIAL; k++) {
        const char *c = ts->tcfg != NULL ? config_token(ts->tcfg, special_kinds[k]) : NULL;
        const added_tok *a = c != NULL ? find_added(ts, c) : NULL;
        int64_t id = -1;
        if (a != NULL) {
            id = a->id;
        } else {
            char key[32];
            snprintf(key, sizeof key, "%s_token_id", special_kinds[k]);
            if (!json_int(config, key, &id))
                id = -1;
        }
        if (id >= 0 && (!limit_to_vocab || id < (int64_t)v->n))
            v->special[k] = id;
    }
    if (ts->tcfg == NULL)
        return GHOST_OK;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(ts->tcfg, "add_bos_token");
    if (cJSON_IsBool(b))
        v->add_bos = cJSON_IsTrue(b);
    b = cJSON_GetObjectItemCaseSensitive(ts->tcfg, "add_eos_token");
    if (cJSON_IsBool(b))
        v->add_eos = cJSON_IsTrue(b);
    if (strcmp(v->model, "llama") == 0) {
        b = cJSON_GetObjectItemCaseSensitive(ts->tcfg, "add_prefix_space");
        if (cJSON_IsBool(b))
            v->add_space_prefix = cJSON_IsTrue(b);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ts->tcfg, "chat_template");
    if (cJSON_IsString(t) && (v->chat_template = xstrdup(t->valuestring)) == NULL)
        return GHOST_ERR_NOMEM;
    return GHOST_OK;
}

static ghost_status read_added(tok_src *ts, const cJSON *tj)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    ts->added = calloc(n ? (size_t)n : 1, sizeof *ts->added);
    if (ts->added == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    for (const cJSON *e = n ? arr->child : NULL; e != NULL; e = e->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        added_tok *a = &ts->added[ts->n_added];
        if (!cJSON_IsString(c) || !json_int(e, "id", &a->id) || a->id < 0 || a->id > INT32_MAX)
            return ghost_set_error(GHOST_ERR_FORMAT,
                                   "%s: added_tokens[%zu] needs a string \"content\" and an id",
                                   ts->path, ts->n_added);
        a->content = c->valuestring;
        a->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        ts->n_added++;
    }
    return GHOST_OK;
}

static ghost_status join_path(char *buf, size_t cap, const char *dir, const char *file)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, file) >= cap)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    return GHOST_OK;
}

static ghost_status load_vocab(const char *dir, const tools_hparams *hc, const cJSON *config,
                               tools_vocab *v)
{
    char path[PATH_MAX], cpath[PATH_MAX];
    ghost_status rc = join_path(path, sizeof path, dir, "tokenizer.json");
    if (rc == GHOST_OK)
        rc = join_path(cpath, sizeof cpath, dir, "tokenizer_config.json");
    if (rc != GHOST_OK)
        return rc;
    cJSON *tj = NULL, *tcfg = NULL;
    if ((rc = st_load_json(path, &tj)) != GHOST_OK)
        return rc;
    tok_src ts = {.path = path};
    struct stat sb;
    if (stat(cpath, &sb) == 0 && (rc = st_load_json(cpath, &tcfg)) != GHOST_OK)
        goto out;
    ts.tcfg = tcfg;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0) {
        rc = ghost_set_error(GHOST_ERR_UNSUPPORTED,
                             "%s: tokenizer model '%.40s' is not supported (BPE)", path,
                             cJSON_IsString(type) ? type->valuestring : "?");
        goto out;
    }
    ts.vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(ts.vocab) || ts.vocab->child == NULL) {
        rc = ghost_set_error(GHOST_ERR_FORMAT, "%s: model.vocab is not a non-empty object", path);
        goto out;
    }
    ts.merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (ts.merges != NULL && !cJSON_IsArray(ts.merges)) {
        rc = ghost_set_error(GHOST_ERR_FORMAT, "%s: model.merges is not an array", path);
        goto out;
    }
    if ((rc = read_added(&ts, tj)) != GHOST_OK)
        goto out;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(tj, "decoder");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(dec, "type");
    bool spm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) &&
               cJSON_IsString(dtype) && strcmp(dtype->valuestring, "Sequence") == 0;
    rc = spm ? vocab_llama(&ts, v) : vocab_gpt2(&ts, hc, v);
    if (rc == GHOST_OK)
        rc = special_tokens(&ts, config, v, spm);
out:
    free(ts.added);
    cJSON_Delete(tcfg);
    cJSON_Delete(tj);
    return rc;
}

/* ---- tensors ---------------------------------------------------------------------- */

typedef struct conv_tensor {
    char name[96]; /* GGUF name */
    const st_tensor *src;
    uint32_t n_dims;
    int64_t ne[4]; /* GGUF order: ne[0] = row length */
    ggml_type type;
    int64_t permute_heads; /* llama q/k: heads to regroup rows by, 0 = none */
} conv_tensor;

static const struct {
    const char *hf, *gguf;
} layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

/* GGUF name of an HF tensor: 1 mapped, 0 to skip (rotary tables), -1 unknown. */
static int map_name(const char *hf, const tools_hparams *hc, char *out, size_t cap)
{
    if (strcmp(hf, "model.embed_tokens.weight") == 0)
        return snprintf(out, cap, "token_embd.weight") > 0;
    if (strcmp(hf, "model.norm.weight") == 0)
        return snprintf(out, cap, "output_norm.weight") > 0;
    if (strcmp(hf, "lm_head.weight") == 0)
        return snprintf(out, cap, "output.weight") > 0;
    int layer, pos = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &pos) != 1 || pos == 0 || layer < 0 ||
        layer >= hc->n_layer)
        return -1;
    const char *rest = hf + pos;
    if (strcmp(rest, "self_attn.rotary_emb.inv_freq") == 0)
        return 0;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (strcmp(rest, layer_names[i].hf) == 0)
            return snprintf(out, cap, "blk.%d.%s", layer, layer_names[i].gguf) > 0;
    return -1;
}

static bool is_norm(const char *name)
{
    size_t n = strlen(name);
    return n >= 12 && strcmp(name + n - 12, "_norm.weight") == 0;
}

/* Type of a tensor under --outtype: convert_hf_to_gguf.py keeps 1-D tensors
 * and norms in F32 and falls back to F16 when Q8_0 blocks do not fit. */
static ggml_type out_type(ggml_type want, const conv_tensor *t)
{
    if (t->n_dims <= 1 || is_norm(t->name))
        return GGML_TYPE_F32;
    if (quant_row_size(want, t->ne[0]) == 0)
        return GGML_TYPE_F16;
    return want;
}

static ghost_status add_tensor(const tools_hparams *hc, const st_tensor *src, const char *gname,
                               ggml_type want, conv_tensor *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", gname);
    t->src = src;
    if (!st_is_float(src->dtype))
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "tensor '%s': dtype %s is not supported (F32, F16, BF16)", src->name,
                               st_dtype_name(src->dtype));
    if (src->n_dims < 1 || src->n_dims > 2)
        return ghost_set_error(GHOST_ERR_FORMAT, "tensor '%s': %d dimensions (expected 1 or 2)",
                               src->name, src->n_dims);
    t->n_dims = (uint32_t)src->n_dims;
    for (int i = 0; i < 4; i++)
        t->ne[i] = i < src->n_dims ? src->shape[src->n_dims - 1 - i] : 1;
    bool q = strstr(gname, ".attn_q.") != NULL, k = strstr(gname, ".attn_k.") != NULL;
    if (strcmp(hc->arch, "llama") == 0 && (q || k)) {
        /* rows (the outer dimension; a bias is one column) regroup per head */
        int64_t heads = q ? hc->n_head : hc->n_head_kv, rows = src->shape[0];
        if (rows % (2 * heads) != 0)
            return ghost_set_error(GHOST_ERR_FORMAT,
                                   "tensor '%s': %lld rows do not split into %lld heads of pairs",
                                   src->name, (long long)rows, (long long)heads);
        t->permute_heads = heads;
    }
    t->type = out_type(want, t);
    return GHOST_OK;
}

/* HF tensor row r of a permuted q/k: GGUF row h*hd + 2i + j holds HF row
 * h*hd + j*hd/2 + i (HF rotates halves, GGUF rotates adjacent pairs). */
static int64_t source_row(const conv_tensor *t, int64_t r)
{
    if (t->permute_heads == 0)
        return r;
    int64_t rows = t->src->shape[0], hd = rows / t->permute_heads;
    int64_t h = r / hd, w = r % hd;
    return h * hd + (w & 1) * (hd / 2) + (w >> 1);
}

typedef struct row_src {
    const conv_tensor *t;
    int64_t n_in;
} row_src;

static void conv_row(void *user, int64_t r, float *dst)
{
    const row_src *rs = user;
    if (rs->t->n_dims == 1 && rs->t->permute_heads != 0) {
        /* a permuted bias: each "row" is a single element */
        for (int64_t i = 0; i < rs->n_in; i++)
            st_read_f32(rs->t->src, source_row(rs->t, i), 1, dst + i);
        return;
    }
    st_read_f32(rs->t->src, source_row(rs->t, r) * rs->n_in, rs->n_in, dst);
}

/* The tensor list in file order, with embeddings/head tying resolved: a
 * file that stores only lm_head (the embeddings aliased to it) gives it as
 * token_embd; with tie_word_embeddings no output.weight is written. */
static ghost_status plan_tensors(const st_set *set, const tools_hparams *hc, ggml_type want,
                                 conv_tensor **out, size_t *n_out)
{
    size_t total = 0;
    for (size_t f = 0; f < set->n_files; f++)
        total += set->files[f]->n_tensors;
    conv_tensor *ts = calloc(total ? total : 1, sizeof *ts);
    if (ts == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    const bool has_embd = st_set_find(set, "model.embed_tokens.weight") != NULL;
    const bool has_head = st_set_find(set, "lm_head.weight") != NULL;
    if (!has_embd && !has_head) {
        free(ts);
        return ghost_set_error(
            GHOST_ERR_FORMAT,
            "no model.embed_tokens.weight (nor lm_head.weight) in the safetensors");
    }
    size_t n = 0;
    ghost_status rc = GHOST_OK;
    for (size_t f = 0; f < set->n_files && rc == GHOST_OK; f++) {
        for (size_t i = 0; i < set->files[f]->n_tensors && rc == GHOST_OK; i++) {
            const st_tensor *src = &set->files[f]->tensors[i];
            char gname[96];
            int m = map_name(src->name, hc, gname, sizeof gname);
            if (m < 0) {
                rc = ghost_set_error(GHOST_ERR_UNSUPPORTED, "%s: cannot map tensor '%.80s' to GGUF",
                                     set->files[f]->path, src->name);
                break;
            }
            if (m == 0)
                continue;
            if (strcmp(gname, "output.weight") == 0) {
                if (!has_embd)
                    rc = add_tensor(hc, src, "token_embd.weight", want, &ts[n++]);
                if (rc == GHOST_OK && !hc->tied)
                    rc = add_tensor(hc, src, "output.weight", want, &ts[n++]);
                continue;
            }
            rc = add_tensor(hc, src, gname, want, &ts[n++]);
        }
    }
    if (rc == GHOST_OK && (n == 0 || ts[0].ne[0] == 0)) {
        rc = ghost_set_error(GHOST_ERR_FORMAT, "no tensors to convert");
    }
    for (size_t i = 0; i < n && rc == GHOST_OK; i++) {
        if (strcmp(ts[i].name, "token_embd.weight") == 0 &&
            (ts[i].ne[0] != hc->n_embd || ts[i].ne[1] != hc->n_vocab))
            rc = ghost_set_error(GHOST_ERR_FORMAT,
                                 "tensor '%s': shape [%lld, %lld] does not match vocab_size %lld x "
                                 "hidden_size %lld of config.json",
                                 ts[i].src->name, (long long)ts[i].ne[1], (long long)ts[i].ne[0],
                                 (long long)hc->n_vocab, (long long)hc->n_embd);
    }
    if (rc != GHOST_OK) {
        free(ts);
        return rc;
    }
    *out = ts;
    *n_out = n;
    return GHOST_OK;
}

/* ---- the whole conversion ---------------------------------------------------------- */

convert_params convert_default_params(void)
{
    return (convert_params){.out_type = GGML_TYPE_F16};
}

const char *convert_type_list(void)
{
    return "f32, f16, bf16, q8_0";
}

/* general.name: the directory's last component. */
static void dir_name(const char *dir, char *out, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    snprintf(out, cap, "%.*s", (int)(n - b), dir + b);
}

static ghost_status write_gguf(const char *dir, const char *out_path, const convert_params *p,
                               const tools_hparams *hc, const tools_vocab *v, const st_set *set)
{
    conv_tensor *ts = NULL;
    size_t n = 0;
    ghost_status rc = plan_tensors(set, hc, p->out_type, &ts, &n);
    if (rc != GHOST_OK)
        return rc;
    tools_job job;
    gguf_writer *w = NULL;
    row_src *rows = calloc(n, sizeof *rows);
    tools_tensor *tt = calloc(n, sizeof *tt);
    if ((rc = tools_job_init(&job, 2, p->progress, p->user)) != GHOST_OK)
        goto out;
    if (rows == NULL || tt == NULL || (w = gguf_writer_create()) == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
        goto out;
    }
    char name[256];
    if (p->name != NULL)
        snprintf(name, sizeof name, "%s", p->name);
    else
        dir_name(dir, name, sizeof name);
    if ((rc = tools_write_model_keys(w, hc, name, p->out_type)) != GHOST_OK ||
        (rc = tools_vocab_write(w, v)) != GHOST_OK ||
        (rc = gguf_writer_add_u32(w, "general.quantization_version", 2)) != GHOST_OK)
        goto out;
    for (size_t i = 0; i < n && rc == GHOST_OK; i++) {
        const conv_tensor *t = &ts[i];
        int64_t n_in = t->ne[0], n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        rows[i] = (row_src){t, n_in};
        tt[i] = (tools_tensor){&job, t->type, n_in, n_rows, conv_row, &rows[i], NULL};
        rc = tools_add_tensor(w, &tt[i], t->name, t->n_dims, t->ne);
    }
    if (rc == GHOST_OK)
        rc = gguf_writer_write_file(w, out_path);
out:
    gguf_writer_destroy(w);
    tools_job_free(&job);
    free(tt);
    free(rows);
    free(ts);
    return rc;
}

ghost_status convert_hf(const char *hf_dir, const char *out_path, const convert_params *p)
{
    convert_params defaults = convert_default_params();
    if (p == NULL)
        p = &defaults;
    if (hf_dir == NULL || out_path == NULL)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "convert: need a directory and an output path");
    if (p->out_type != GGML_TYPE_F32 && p->out_type != GGML_TYPE_F16 &&
        p->out_type != GGML_TYPE_BF16 && p->out_type != GGML_TYPE_Q8_0)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "convert: output type must be one of %s",
                               convert_type_list());
    struct stat sb;
    if (stat(hf_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ghost_set_error(GHOST_ERR_IO, "%s: not a directory", hf_dir);
    char path[PATH_MAX];
    ghost_status rc = join_path(path, sizeof path, hf_dir, "config.json");
    if (rc != GHOST_OK)
        return rc;
    cJSON *config = NULL;
    if ((rc = st_load_json(path, &config)) != GHOST_OK)
        return rc;
    tools_hparams hc;
    tools_vocab v;
    memset(&v, 0, sizeof v);
    st_set *set = NULL;
    if ((rc = read_config(path, config, &hc)) == GHOST_OK &&
        (rc = load_vocab(hf_dir, &hc, config, &v)) == GHOST_OK &&
        (rc = st_set_open(hf_dir, &set)) == GHOST_OK)
        rc = write_gguf(hf_dir, out_path, p, &hc, &v, set);
    st_set_close(set);
    tools_vocab_free(&v);
    cJSON_Delete(config);
    return rc;
}
