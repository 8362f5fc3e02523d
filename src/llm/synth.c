/*
 * synth.c — random-weight GGUF models of realistic shapes, for benchmarks
 * (kernel speed depends on matrix sizes, not on what the weights mean) and
 * for tests that need a model of a given shape quickly.
 *
 * A file has the same keys, tensor names and shapes convert.c writes for a
 * real model of that shape, so llama.cpp loads it too, and a generated
 * vocabulary that looks like the real kind:
 *
 *   llama  SentencePiece-style: <unk>, <s>, </s>, the 256 <0xXX> byte tokens,
 *          then single characters and made-up words ("▁bolan", "ter"),
 *          scores falling with the id
 *   qwen2  byte-level BPE: the 256 byte tokens in GPT-2's printable byte
 *          mapping, then words built by merges ("Ġ b" → "Ġb", "Ġb o" →
 *          "Ġbo", ...) so every token is reachable, and <|endoftext|>,
 *          <|im_start|>, <|im_end|> at the end
 *
 * Weights are uniform with variance 1/n_in (activations keep their scale
 * through the layers), norms are 1, biases small. Every row comes from a
 * counter-based generator seeded by (seed, tensor, row), so a file is the
 * same whatever the thread count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_internal.h"
#include "tokenizer.h"
#include "tools_internal.h"

static const synth_shape shapes[] = {
    {"tinyllama-1.1b", "llama", "TinyLlama 1.1B: 22 layers, 2048 wide, 32/4 heads, vocab 32000",
     32000, 2048, 22, 32, 4, 5632, 2048, 10000.0f, 1e-5f, false},
    {"qwen2-0.5b", "qwen2", "Qwen2 0.5B: 24 layers, 896 wide, 14/2 heads, vocab 151936, tied",
     151936, 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true},
    {"llama-tiny", "llama", "test shape: 2 layers, 256 wide, 4/2 heads, vocab 1024", 1024, 256, 2,
     4, 2, 512, 512, 10000.0f, 1e-5f, false},
    {"qwen2-tiny", "qwen2", "test shape: 2 layers, 256 wide, 4/2 heads, vocab 1024, tied", 1024,
     256, 2, 4, 2, 512, 512, 1000000.0f, 1e-6f, true},
    {NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, false},
};

const synth_shape *synth_shapes(void)
{
    return shapes;
}

const synth_shape *synth_find_shape(const char *name)
{
    for (const synth_shape *s = shapes; name != NULL && s->name != NULL; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static const ggml_type synth_types[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,   GGML_TYPE_Q4_0,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL,
};

const char *synth_type_list(void)
{
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, IQ4_NL";
}

bool synth_type_ok(ggml_type t)
{
    for (size_t i = 0; i < sizeof synth_types / sizeof synth_types[0]; i++)
        if (synth_types[i] == t)
            return true;
    return false;
}

/* ---- deterministic randomness ------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- generated vocabularies ---------------------------------------------------- */

/* A set of strings (open addressing, FNV-1a), to keep generated tokens unique. */
typedef struct str_set {
    const char **slots;
    size_t cap;
} str_set;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* Adds s (borrowed) unless present; returns false if it was there. */
static bool set_add(str_set *set, const char *s)
{
    size_t i = fnv(s) & (set->cap - 1);
    while (set->slots[i] != NULL) {
        if (strcmp(set->slots[i], s) == 0)
            return false;
        i = (i + 1) & (set->cap - 1);
    }
    set->slots[i] = s;
    return true;
}

static const char *const onsets[] = {"b",  "c",  "d",  "f",  "g",  "h",  "j",  "k", "l", "m",
                                     "n",  "p",  "r",  "s",  "t",  "v",  "w",  "y", "z", "th",
                                     "ch", "sh", "st", "br", "tr", "pl", "gr", ""};
static const char *const vowels[] = {"a", "e", "i", "o", "u", "ea", "ou", "ai", "y", "oo"};
static const char *const codas[] = {"", "", "", "n", "r", "s", "t", "l", "m", "ng", "ck", "d"};

#define PICK(arr, r) (arr[(r) % (sizeof arr / sizeof arr[0])])

/* A made-up word of 1-3 syllables into buf (ASCII, NUL-terminated). */
static void make_word(uint64_t *rng, char *buf, size_t cap)
{
    int n = 1 + (int)(splitmix(rng) % 3);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        uint64_t r = splitmix(rng);
        strncat(buf, PICK(onsets, r), cap - strlen(buf) - 1);
        strncat(buf, PICK(vowels, r >> 16), cap - strlen(buf) - 1);
        strncat(buf, PICK(codas, r >> 32), cap - strlen(buf) - 1);
    }
}

/* Takes ownership of tok into slot id and the set. */
static ghost_status put_token(tools_vocab *v, str_set *set, uint32_t id, char *tok, int32_t type)
{
    if (tok == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the vocabulary");
    v->tokens[id] = tok;
    v->types[id] = type;
    set_add(set, tok);
    return GHOST_OK;
}

static ghost_status vocab_spm(tools_vocab *v, str_set *set, uint32_t n, uint64_t rng)
{
    static const char *const fixed[] = {"<unk>", "<s>", "</s>"};
    static const int32_t fixed_type[] = {TOK_TYPE_UNKNOWN, TOK_TYPE_CONTROL, TOK_TYPE_CONTROL};
    uint32_t id = 0;
    ghost_status rc = GHOST_OK;
    for (; id < 3 && rc == GHOST_OK; id++)
        rc = put_token(v, set, id, strdup(fixed[id]), fixed_type[id]);
    for (int b = 0; b < 256 && rc == GHOST_OK; b++, id++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        rc = put_token(v, set, id, strdup(buf), TOK_TYPE_BYTE);
    }
    /* "▁" and the printable ASCII characters, then words with and without "▁" */
    rc = rc == GHOST_OK ? put_token(v, set, id++, strdup("\xE2\x96\x81"), TOK_TYPE_NORMAL) : rc;
    for (int c = 33; c < 127 && rc == GHOST_OK; c++) {
        char buf[2] = {(char)c, 0};
        rc = put_token(v, set, id++, strdup(buf), TOK_TYPE_NORMAL);
    }
    char word[64];
    while (id < n && rc == GHOST_OK) {
        bool space = splitmix(&rng) % 10 < 7;
        snprintf(word, sizeof word, "%s", space ? "\xE2\x96\x81" : "");
        make_word(&rng, word + strlen(word), sizeof word - strlen(word));
        char *t = strdup(word);
        if (t != NULL && !set_add(set, t)) {
            free(t);
            continue;
        }
        rc = put_token(v, set, id++, t, TOK_TYPE_NORMAL);
    }
    for (uint32_t i = 0; i < n; i++)
        v->scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    v->model = "llama";
    v->pre = "default";
    v->special[TV_BOS] = 1;
    v->special[TV_EOS] = 2;
    v->special[TV_UNK] = 0;
    v->add_bos = 1;
    v->add_eos = 0;
    return rc;
}

/* GPT-2's printable stand-in for byte b, UTF-8 encoded into buf. */
static void byte_unicode(int b, char *buf)
{
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
        /* unprintable bytes take 256, 257, ... in byte order */
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
                k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        buf[0] = (char)cp;
        buf[1] = 0;
    } else {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        buf[2] = 0;
    }
}

static ghost_status add_merge(tools_vocab *v, const char *left, const char *right)
{
    size_t n = strlen(left) + strlen(right) + 2;
    char *m = malloc(n);
    if (m == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the merges");
    snprintf(m, n, "%s %s", left, right);
    v->merges[v->n_merges++] = m;
    return GHOST_OK;
}

static ghost_status vocab_bpe(tools_vocab *v, str_set *set, uint32_t n, uint64_t rng)
{
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    const uint32_t n_base = n - 3;
    v->merges = calloc(n, sizeof *v->merges);
    if (v->merges == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the merges");
    uint32_t id = 0;
    ghost_status rc = GHOST_OK;
    for (int b = 0; b < 256 && rc == GHOST_OK; b++, id++) {
        char buf[4];
        byte_unicode(b, buf);
        rc = put_token(v, set, id, strdup(buf), TOK_TYPE_NORMAL);
    }
    /* each word is merged left to right; every new prefix becomes a token */
    char word[64], prefix[64];
    while (id < n_base && rc == GHOST_OK) {
        bool space = splitmix(&rng) % 10 < 7;
        snprintf(word, sizeof word, "%s", space ? "\xC4\xA0" : ""); /* Ġ = space */
        make_word(&rng, word + strlen(word), sizeof word - strlen(word));
        size_t first = space ? 2 : 1;
        for (size_t end = first + 1; end <= strlen(word) && id < n_base && rc == GHOST_OK; end++) {
            memcpy(prefix, word, end);
            prefix[end] = '\0';
            char *t = strdup(prefix);
            if (t == NULL)
                return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the vocabulary");
            if (!set_add(set, t)) {
                free(t);
                continue;
            }
            char left[64], right[2] = {word[end - 1], 0};
            memcpy(left, word, end - 1);
            left[end - 1] = '\0';
            rc = add_merge(v, left, right);
            if (rc == GHOST_OK)
                rc = put_token(v, set, id++, t, TOK_TYPE_NORMAL);
            else
                free(t);
        }
    }
    for (int i = 0; i < 3 && rc == GHOST_OK; i++)
        rc = put_token(v, set, id++, strdup(specials[i]), TOK_TYPE_CONTROL);
    v->model = "gpt2";
    v->pre = "qwen2";
    v->special[TV_BOS] = n_base;
    v->special[TV_EOS] = n_base;
    v->special[TV_PAD] = n_base;
    v->add_bos = 0;
    return rc;
}

static ghost_status make_vocab(const synth_shape *s, uint64_t seed, tools_vocab *v)
{
    bool spm = strcmp(s->arch, "llama") == 0;
    uint32_t n = (uint32_t)s->n_vocab;
    if (n < 512)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "shape %s: vocabulary of %u is too small", s->name, n);
    ghost_status rc = tools_vocab_init(v, n, spm);
    if (rc != GHOST_OK)
        return rc;
    str_set set = {NULL, 1};
    while (set.cap < 2 * (size_t)n)
        set.cap <<= 1;
    set.slots = calloc(set.cap, sizeof *set.slots);
    if (set.slots == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory for the vocabulary");
    uint64_t rng = seed ^ 0x5EED5EED5EED5EEDULL;
    rc = spm ? vocab_spm(v, &set, n, rng) : vocab_bpe(v, &set, n, rng);
    free(set.slots);
    return rc;
}

/* ---- tensors ------------------------------------------------------------------------ */

typedef enum fill_kind { FILL_RANDOM, FILL_ONES, FILL_BIAS } fill_kind;

typedef struct synth_tensor {
    char name[64];
    uint32_t n_dims;
    int64_t ne[2];
    fill_kind kind;
    uint64_t seed;
} synth_tensor;

static void synth_row(void *user, int64_t row, float *dst)
{
    const synth_tensor *t = user;
    const int64_t n = t->ne[0];
    if (t->kind == FILL_ONES) {
        for (int64_t i = 0; i < n; i++)
            dst[i] = 1.0f;
        return;
    }
    /* uniform on [-a, a] has variance a^2/3: a = sqrt(3/n_in) gives 1/n_in */
    const float a = t->kind == FILL_BIAS ? 0.02f : sqrtf(3.0f / (float)n);
    uint64_t s = t->seed ^ ((uint64_t)row * 0xD1B54A32D192ED03ULL);
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t r = splitmix(&s);
        dst[i] = a * ((float)(r & 0xFFFFFF) / 8388608.0f - 1.0f);
        if (i + 1 < n)
            dst[i + 1] = a * ((float)((r >> 32) & 0xFFFFFF) / 8388608.0f - 1.0f);
    }
}

static void add_plan(synth_tensor *ts, size_t *n, uint64_t seed, const char *name, int64_t ne0,
                     int64_t ne1, fill_kind kind)
{
    synth_tensor *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    t->kind = kind;
    t->seed = seed ^ (fnv(name) * 0x9E3779B97F4A7C15ULL);
}

/* Tensors in convert.c's order for an HF checkpoint of this shape. */
static size_t plan(const synth_shape *s, uint64_t seed, synth_tensor *ts)
{
    const int64_t e = s->n_embd, kv = s->n_embd / s->n_head * s->n_head_kv, ff = s->n_ff;
    const bool bias = strcmp(s->arch, "qwen2") == 0;
    size_t n = 0;
    char nm[64];
    add_plan(ts, &n, seed, "token_embd.weight", e, s->n_vocab, FILL_RANDOM);
    for (int32_t l = 0; l < s->n_layer; l++) {
        static const struct {
            const char *name;
            int dims; /* 0: [e], 1: [e, e], 2: [e, kv], 3: [kv], 4: [e, ff], 5: [ff, e] */
            fill_kind kind;
        } per_layer[] = {
            {"attn_norm.weight", 0, FILL_ONES}, {"attn_q.weight", 1, FILL_RANDOM},
            {"attn_q.bias", 0, FILL_BIAS},      {"attn_k.weight", 2, FILL_RANDOM},
            {"attn_k.bias", 3, FILL_BIAS},      {"attn_v.weight", 2, FILL_RANDOM},
            {"attn_v.bias", 3, FILL_BIAS},      {"attn_output.weight", 1, FILL_RANDOM},
            {"ffn_norm.weight", 0, FILL_ONES},  {"ffn_gate.weight", 4, FILL_RANDOM},
            {"ffn_up.weight", 4, FILL_RANDOM},  {"ffn_down.weight", 5, FILL_RANDOM},
        };
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
            if (per_layer[i].kind == FILL_BIAS && !bias)
                continue;
            snprintf(nm, sizeof nm, "blk.%d.%s", l, per_layer[i].name);
            static const int64_t none = 0;
            const int64_t ne0[] = {e, e, e, kv, e, ff}, ne1[] = {none, e, kv, none, ff, e};
            int d = per_layer[i].dims;
            add_plan(ts, &n, seed, nm, ne0[d], ne1[d], per_layer[i].kind);
        }
    }
    add_plan(ts, &n, seed, "output_norm.weight", e, 0, FILL_ONES);
    if (!s->tied_output)
        add_plan(ts, &n, seed, "output.weight", e, s->n_vocab, FILL_RANDOM);
    return n;
}

ghost_status synth_write(const char *out_path, const synth_shape *s, const synth_params *p)
{
    if (out_path == NULL || s == NULL || p == NULL || !synth_type_ok(p->type))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "synth: need a path, a shape and a type (%s)", synth_type_list());
    const size_t max_tensors = 3 + (size_t)s->n_layer * 12;
    synth_tensor *ts = calloc(max_tensors, sizeof *ts);
    tools_tensor *tt = calloc(max_tensors, sizeof *tt);
    tools_vocab v;
    memset(&v, 0, sizeof v);
    tools_job job;
    gguf_writer *w = NULL;
    ghost_status rc = tools_job_init(&job, p->n_threads, p->progress, p->user);
    if (rc != GHOST_OK)
        goto out;
    if (ts == NULL || tt == NULL || (w = gguf_writer_create()) == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = make_vocab(s, p->seed, &v)) != GHOST_OK)
        goto out;
    const tools_hparams hp = {
        .arch = s->arch,
        .n_vocab = s->n_vocab,
        .n_embd = s->n_embd,
        .n_layer = s->n_layer,
        .n_head = s->n_head,
        .n_head_kv = s->n_head_kv,
        .n_ff = s->n_ff,
        .n_ctx = s->n_ctx,
        .rope_theta = s->rope_base,
        .rms_eps = s->rms_eps,
        .has_rope_theta = true,
        .has_rms_eps = true,
        .tied = s->tied_output,
    };
    char name[96];
    snprintf(name, sizeof name, "synthetic %s", s->name);
    if ((rc = tools_write_model_keys(w, &hp, name, p->type)) != GHOST_OK ||
        (rc = tools_vocab_write(w, &v)) != GHOST_OK ||
        (rc = gguf_writer_add_u32(w, "general.quantization_version", 2)) != GHOST_OK)
        goto out;
    size_t n = plan(s, p->seed, ts);
    for (size_t i = 0; i < n && rc == GHOST_OK; i++) {
        ggml_type type =
            ts[i].n_dims == 1 ? GGML_TYPE_F32 : quantize_tensor_type(p->type, ts[i].ne[0]);
        tt[i] = (tools_tensor){&job, type, ts[i].ne[0], ts[i].ne[1], synth_row, &ts[i], NULL};
        rc = tools_add_tensor(w, &tt[i], ts[i].name, ts[i].n_dims, ts[i].ne);
    }
    if (rc == GHOST_OK)
        rc = gguf_writer_write_file(w, out_path);
out:
    gguf_writer_destroy(w);
    tools_job_free(&job);
    tools_vocab_free(&v);
    free(tt);
    free(ts);
    return rc;
}
