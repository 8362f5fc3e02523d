/*
 * test_tokenizer.c — the SPM and BPE tokenizers against llama.cpp.
 *
 * One test per ../shared/models/vocab/ggml-vocab-*.gguf: every string of its
 * .inp must tokenize (add_special = parse_special = false, as llama.cpp's
 * test-tokenizer-0 does) to the ids of the matching line of its .out. The
 * WordPiece (bert) vocabulary is not supported and must be refused with
 * GHOST_ERR_UNSUPPORTED. The prompts of the greedy vectors must tokenize to
 * their prompt_tokens_no_bos. Beyond the vectors: pieces concatenate back to
 * the input, invalid UTF-8 and short buffers are reported, special tokens
 * split only when asked, end-of-generation ids, and malformed vocabularies
 * built in memory are rejected with a message naming the key.
 *
 * Missing shared data fails the test; nothing is skipped.
 */
#include <pthread.h>

#include <cjson/cJSON.h>

#include "test_util.h"

#include "llm/gguf.h"
#include "llm/gguf_write.h"
#include "llm/llm_internal.h"
#include "llm/tokenizer.h"

#define VOCAB_DIR "../shared/models/vocab/ggml-vocab-"
#define VECTORS   "../shared/vectors/greedy-llama.cpp.jsonl"

/* ---- helpers --------------------------------------------------------------------- */

typedef struct loaded {
    gguf_file *f;
    tok_vocab *v;
} loaded;

static loaded load_path(const char *path)
{
    loaded l = {0};
    ghost_status st = gguf_open(path, &l.f);
    if (st != GHOST_OK)
        fail_msg("gguf_open %s: %s", path, ghost_thread_errmsg());
    st = tok_load(l.f, &l.v);
    if (st != GHOST_OK)
        fail_msg("tok_load %s: %s", path, ghost_thread_errmsg());
    return l;
}

static loaded load_vocab(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, VOCAB_DIR "%s.gguf", name);
    return load_path(path);
}

static void unload(loaded *l)
{
    tok_free(l->v);
    gguf_close(l->f);
}

/* Tokenizes into a malloc'd array; *n gets the count. */
static int32_t *encode(const tok_vocab *v, const char *s, size_t len, bool add_special,
                       bool parse_special, size_t *n)
{
    size_t need = 0;
    ghost_status st = tok_encode(v, s, len, add_special, parse_special, NULL, 0, &need);
    assert_true(st == GHOST_OK || st == GHOST_ERR_BUFFER_TOO_SMALL);
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    assert_non_null(ids);
    st = tok_encode(v, s, len, add_special, parse_special, ids, need, n);
    if (st != GHOST_OK)
        fail_msg("tok_encode: %s", ghost_thread_errmsg());
    assert_int_equal(*n, need);
    return ids;
}

/* Concatenated pieces of ids, NUL-terminated; *len gets the byte count. */
static char *detokenize(const tok_vocab *v, const int32_t *ids, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t r = tok_piece(v, ids[i], NULL, 0);
        assert_true(r != -1 || tok_piece(v, ids[i], (char[1]){0}, 1) == 1);
        total += (size_t)(r < 0 ? -r : r);
    }
    char *s = malloc(total + 1);
    assert_non_null(s);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t r = tok_piece(v, ids[i], s + at, total - at);
        assert_true(r >= 0);
        at += (size_t)r;
    }
    assert_int_equal(at, total);
    s[at] = '\0';
    *len = at;
    return s;
}

typedef struct vectors {
    char *inp, *out;
    char *text[64];
    size_t text_len[64];
    char *ids[64]; /* line of the .out file */
    size_t n;
} vectors;

/* .inp: strings each followed by "\n__ggml_vocab_test__\n"; .out: one line each. */
static void read_vectors(const char *name, vectors *vec)
{
    char path[256];
    memset(vec, 0, sizeof *vec);
    snprintf(path, sizeof path, VOCAB_DIR "%s.gguf.inp", name);
    vec->inp = tu_read_required(path, NULL);
    snprintf(path, sizeof path, VOCAB_DIR "%s.gguf.out", name);
    vec->out = tu_read_required(path, NULL);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = vec->inp, *q;
    while ((q = strstr(p, sep)) != NULL) {
        assert_true(vec->n < 64);
        *q = '\0';
        vec->text[vec->n] = p;
        vec->text_len[vec->n] = (size_t)(q - p);
        vec->n++;
        p = q + sizeof sep - 1;
    }
    assert_true(vec->n > 0);
    char *line = vec->out;
    for (size_t i = 0; i < vec->n; i++) {
        if (line == NULL)
            fail_msg("%s.out has fewer lines than %zu inputs", name, vec->n);
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        vec->ids[i] = line;
        line = nl ? nl + 1 : NULL;
    }
}

static void free_vectors(vectors *vec)
{
    free(vec->inp);
    free(vec->out);
}

static void check_vocab(const char *name)
{
    loaded l = load_vocab(name);
    vectors vec;
    read_vectors(name, &vec);
    int failures = 0;
    for (size_t i = 0; i < vec.n; i++) {
        size_t n;
        int32_t *ids = encode(l.v, vec.text[i], vec.text_len[i], false, false, &n);
        static char got[16384];
        size_t k = 0;
        got[0] = '\0';
        for (size_t j = 0; j < n && k < sizeof got - 16; j++)
            k += (size_t)snprintf(got + k, sizeof got - k, " %d", ids[j]);
        if (strcmp(got, vec.ids[i]) != 0) {
            print_message("%s #%zu '%s'\n  want:%s\n  got: %s\n", name, i, vec.text[i], vec.ids[i],
                          got);
            failures++;
        }
        free(ids);
    }
    print_message("%s: %zu/%zu strings match llama.cpp\n", name, vec.n - (size_t)failures, vec.n);
    free_vectors(&vec);
    unload(&l);
    assert_int_equal(failures, 0);
}

#define VOCAB_TEST(fn, name)                                                                       \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        check_vocab(name);                                                                         \
    }
VOCAB_TEST(test_llama_spm_vocab_matches_llama_cpp, "llama-spm")
VOCAB_TEST(test_phi3_vocab_matches_llama_cpp, "phi-3")
VOCAB_TEST(test_gpt2_vocab_matches_llama_cpp, "gpt-2")
VOCAB_TEST(test_mpt_vocab_matches_llama_cpp, "mpt")
VOCAB_TEST(test_starcoder_vocab_matches_llama_cpp, "starcoder")
VOCAB_TEST(test_falcon_vocab_matches_llama_cpp, "falcon")
VOCAB_TEST(test_deepseek_coder_vocab_matches_llama_cpp, "deepseek-coder")

static void test_bert_wordpiece_vocab_is_refused_as_unsupported(void **state)
{
    (void)state;
    gguf_file *f;
    assert_int_equal(gguf_open(VOCAB_DIR "bert-bge.gguf", &f), GHOST_OK);
    tok_vocab *v = (tok_vocab *)f; /* must be reset to NULL on failure */
    assert_int_equal(tok_load(f, &v), GHOST_ERR_UNSUPPORTED);
    assert_null(v);
    const char *msg = ghost_thread_errmsg();
    assert_non_null(strstr(msg, "'bert'"));
    assert_non_null(strstr(msg, "supported: llama"));
    gguf_close(f);
}

/* ---- greedy-vector prompts ------------------------------------------------------------ */

static void test_greedy_prompts_tokenize_like_llama_cpp(void **state)
{
    (void)state;
    char *all = tu_read_required(VECTORS, NULL);
    int checked = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const char *model = cJSON_GetObjectItem(j, "model")->valuestring;
        const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
        cJSON *want = cJSON_GetObjectItem(j, "prompt_tokens_no_bos");
        char path[512];
        snprintf(path, sizeof path, "../shared/models/%s", model);
        if (access(path, R_OK) != 0)
            snprintf(path, sizeof path, "../shared/models/quant/%s", model);
        loaded l = load_path(path);
        size_t n, nb;
        int32_t *ids = encode(l.v, prompt, strlen(prompt), false, false, &n);
        int32_t *with_bos = encode(l.v, prompt, strlen(prompt), true, false, &nb);
        assert_int_equal(n, (size_t)cJSON_GetArraySize(want));
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ids[i], cJSON_GetArrayItem(want, (int)i)->valueint);
        /* llama.cpp added BOS (the models' add_bos default) before these */
        assert_true(tok_add_bos(l.v));
        assert_int_equal(nb, n + 1);
        assert_int_equal(with_bos[0], tok_bos(l.v));
        assert_memory_equal(with_bos + 1, ids, n * sizeof *ids);
        free(ids);
        free(with_bos);
        unload(&l);
        cJSON_Delete(j);
        checked++;
    }
    free(all);
    print_message("%d prompts match llama.cpp\n", checked);
    assert_true(checked >= 2);
}

/* ---- round trip ---------------------------------------------------------------------------- */

static void round_trip(const char *name, bool spm)
{
    loaded l = load_vocab(name);
    vectors vec;
    read_vectors(name, &vec);
    for (size_t i = 0; i < vec.n; i++) {
        size_t n, len;
        int32_t *ids = encode(l.v, vec.text[i], vec.text_len[i], false, false, &n);
        char *back = detokenize(l.v, ids, n, &len);
        /* SPM puts a space before the text (add_space_prefix) */
        const char *want = back + (spm && len > 0);
        size_t want_len = len - (spm && len > 0);
        if (spm && len > 0)
            assert_int_equal(back[0], ' ');
        if (want_len != vec.text_len[i] || memcmp(want, vec.text[i], want_len) != 0)
            fail_msg("%s #%zu: '%s' came back as '%s'", name, i, vec.text[i], back);
        free(back);
        free(ids);
    }
    free_vectors(&vec);
    unload(&l);
}

static void test_pieces_rebuild_the_text(void **state)
{
    (void)state;
    round_trip("llama-spm", true);
    round_trip("phi-3", true);
    round_trip("gpt-2", false);
    round_trip("mpt", false);
    round_trip("starcoder", false);
    round_trip("falcon", false);
    round_trip("deepseek-coder", false);
}

/* ---- bad input, buffers ---------------------------------------------------------------------- */

static void test_invalid_utf8_is_rejected_with_its_offset(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len, at;
    } bad[] = {
        {"ab\xff", 3, 2},              /* never valid */
        {"abc\xe2\x96", 5, 3},         /* truncated */
        {"x\xc0\xaf", 3, 1},           /* overlong '/' */
        {"\xed\xa0\x80", 3, 0},        /* surrogate */
        {"ok \xf4\x90\x80\x80", 7, 3}, /* past U+10FFFF */
        {"\x80", 1, 0},                /* lone continuation */
    };
    const char *names[] = {"llama-spm", "gpt-2"};
    for (size_t k = 0; k < 2; k++) {
        loaded l = load_vocab(names[k]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int32_t ids[16];
            size_t n = 99;
            assert_int_equal(tok_encode(l.v, bad[i].s, bad[i].len, false, false, ids, 16, &n),
                             GHOST_ERR_BAD_INPUT);
            assert_int_equal(n, 0);
            char want[64];
            snprintf(want, sizeof want, "byte offset %zu", bad[i].at);
            if (strstr(ghost_thread_errmsg(), want) == NULL)
                fail_msg("message '%s' lacks '%s'", ghost_thread_errmsg(), want);
        }
        unload(&l);
    }
}

static void test_short_buffer_reports_the_size_needed(void **state)
{
    (void)state;
    loaded l = load_vocab("gpt-2");
    const char *s = "Hello world, this is a test";
    size_t n_all;
    int32_t *all = encode(l.v, s, strlen(s), false, false, &n_all);
    assert_true(n_all > 3);
    int32_t some[3];
    size_t n = 0;
    assert_int_equal(tok_encode(l.v, s, strlen(s), false, false, some, 3, &n),
                     GHOST_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, n_all);
    assert_memory_equal(some, all, sizeof some);
    assert_int_equal(tok_encode(l.v, s, strlen(s), false, false, NULL, 0, &n),
                     GHOST_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, n_all);
    assert_int_equal(tok_encode(l.v, "", 0, false, false, NULL, 0, &n), GHOST_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tok_encode(l.v, NULL, 4, false, false, some, 3, &n),
                     GHOST_ERR_INVALID_ARGUMENT);
    free(all);
    unload(&l);
}

/* ---- special tokens -------------------------------------------------------------------------- */

static bool has_id(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void test_control_tokens_split_only_with_parse_special(void **state)
{
    (void)state;
    loaded l = load_vocab("phi-3");
    const char *s = "<|user|>\nHi there<|end|>\n<|assistant|>";
    size_t n;
    int32_t *ids = encode(l.v, s, strlen(s), true, true, &n);
    assert_int_equal(ids[0], 1);     /* BOS */
    assert_int_equal(ids[1], 32010); /* <|user|> */
    assert_true(has_id(ids, n, 32007));
    assert_int_equal(ids[n - 1], 32001);
    free(ids);
    ids = encode(l.v, s, strlen(s), false, false, &n);
    assert_false(has_id(ids, n, 32010) || has_id(ids, n, 32007) || has_id(ids, n, 32001));
    size_t len;
    char *back = detokenize(l.v, ids, n, &len);
    assert_string_equal(back, " <|user|>\nHi there<|end|>\n<|assistant|>");
    free(back);
    free(ids);
    /* control tokens print nothing */
    assert_int_equal(tok_piece(l.v, 32010, NULL, 0), 0);
    /* phi-3's USER_DEFINED </s> splits without parse_special, eats the spaces
     * after it (rstrip), and the text after it gets a new space prefix */
    size_t n1, n2;
    int32_t *a = encode(l.v, "Hi", 2, false, false, &n1);
    int32_t *b = encode(l.v, "there", 5, false, false, &n2);
    ids = encode(l.v, "Hi</s>  there", 13, false, false, &n);
    assert_int_equal(n, n1 + 1 + n2);
    assert_memory_equal(ids, a, n1 * sizeof *a);
    assert_int_equal(ids[n1], 2);
    assert_memory_equal(ids + n1 + 1, b, n2 * sizeof *b);
    free(a);
    free(b);
    free(ids);
    unload(&l);

    /* USER_DEFINED tokens split even without parse_special (deepseek-coder 'ü') */
    l = load_vocab("deepseek-coder");
    ids = encode(l.v, "Führer", strlen("Führer"), false, false, &n);
    assert_true(has_id(ids, n, 32009));
    free(ids);
    unload(&l);
}

static void test_end_of_generation_ids(void **state)
{
    (void)state;
    loaded l = load_vocab("phi-3");
    assert_int_equal(tok_eos(l.v), 32000);
    assert_true(tok_is_eog(l.v, 32000));  /* eos, <|endoftext|> */
    assert_true(tok_is_eog(l.v, 32007));  /* <|end|> */
    assert_false(tok_is_eog(l.v, 32010)); /* <|user|> */
    assert_false(tok_is_eog(l.v, -1));
    assert_false(tok_is_eog(l.v, tok_n_vocab(l.v)));
    unload(&l);
    l = load_vocab("gpt-2");
    assert_true(tok_is_eog(l.v, 50256));
    assert_false(tok_add_bos(l.v));
    assert_int_equal(tok_bos(l.v), 50256);
    unload(&l);
    l = load_vocab("deepseek-coder");
    assert_true(tok_add_bos(l.v));
    assert_false(tok_add_eos(l.v));
    assert_true(tok_is_eog(l.v, 32014));
    unload(&l);
}

/* ---- pieces -------------------------------------------------------------------------------- */

static void test_pieces_follow_token_types(void **state)
{
    (void)state;
    loaded l = load_vocab("llama-spm");
    char b[16];
    assert_string_equal(tok_text(l.v, 15043), "\xe2\x96\x81Hello");
    assert_int_equal(tok_piece(l.v, 15043, b, sizeof b), 6); /* '▁' -> ' ' */
    assert_memory_equal(b, " Hello", 6);
    assert_int_equal(tok_piece(l.v, 15043, b, 5), -6);          /* too short */
    assert_int_equal(tok_piece(l.v, 3 + 0x41, b, sizeof b), 1); /* <0x41> */
    assert_int_equal(b[0], 'A');
    assert_int_equal(tok_piece(l.v, 3 + 0xf0, b, sizeof b), 1); /* <0xF0>: half a character */
    assert_int_equal((unsigned char)b[0], 0xf0);
    assert_int_equal(tok_piece(l.v, 1, b, sizeof b), 0); /* <s> is CONTROL */
    assert_int_equal(tok_piece(l.v, 0, b, sizeof b), 0); /* <unk> */
    assert_int_equal(tok_piece(l.v, -1, b, sizeof b), -1);
    assert_int_equal(tok_piece(l.v, tok_n_vocab(l.v), b, sizeof b), -1);
    assert_null(tok_text(l.v, tok_n_vocab(l.v)));
    assert_int_equal(tok_get_type(l.v, 1), TOK_TYPE_CONTROL);
    assert_int_equal(tok_get_type(l.v, 3), TOK_TYPE_BYTE);
    unload(&l);

    l = load_vocab("gpt-2");
    size_t n;
    int32_t *ids = encode(l.v, " the", 4, false, false, &n);
    assert_int_equal(n, 1);
    assert_string_equal(tok_text(l.v, ids[0]), "\xc4\xa0the"); /* 'Ġthe' */
    assert_int_equal(tok_piece(l.v, ids[0], b, sizeof b), 4);
    assert_memory_equal(b, " the", 4);
    free(ids);
    assert_int_equal(tok_piece(l.v, 50256, b, sizeof b), 0); /* <|endoftext|> */
    unload(&l);
}

/* ---- vocabularies built in memory --------------------------------------------------------------
 */

/* The writers' add calls, failing the test on error. */
static void kv_string(gguf_writer *w, const char *key, const char *val)
{
    assert_int_equal(gguf_writer_add_str(w, key, val), GHOST_OK);
}
static void kv_strings(gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    assert_int_equal(gguf_writer_add_arr_str(w, key, v, n), GHOST_OK);
}
static void kv_words(gguf_writer *w, const char *key, gguf_type t, const void *v, size_t n)
{
    assert_int_equal(gguf_writer_add_arr(w, key, t, v, n), GHOST_OK);
}

/* Writes the key/values (no tensors) as a GGUF v3 file in memory, destroys
 * the writer and opens the file; *file holds its bytes (free after closing). */
static gguf_file *write_and_open(gguf_writer *w, unsigned char **file)
{
    size_t size;
    if (gguf_writer_write_memory(w, file, &size) != GHOST_OK)
        fail_msg("gguf_writer_write_memory: %s", ghost_thread_errmsg());
    gguf_writer_destroy(w);
    gguf_file *f;
    if (gguf_open_memory(*file, size, &f) != GHOST_OK)
        fail_msg("gguf_open_memory: %s", ghost_thread_errmsg());
    return f;
}

static const char *const TINY[] = {"<unk>",
                                   "<s>",
                                   "</s>",
                                   "\xe2\x96\x81",
                                   "a",
                                   "b",
                                   "\xe2\x96\x81"
                                   "a",
                                   "ab"};
static const int32_t TINY_TYPES[] = {2, 3, 3, 1, 1, 1, 1, 1};

/* Loads a tiny SPM vocabulary with the given scores for '▁a' and 'ab'. */
static tok_vocab *tiny_spm(float s_spa, float s_ab, gguf_file **f, unsigned char **file)
{
    gguf_writer *g = gguf_writer_create();
    assert_non_null(g);
    float scores[8] = {0, 0, 0, -3, -3, -3, s_spa, s_ab};
    kv_string(g, "tokenizer.ggml.model", "llama");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
    kv_words(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 8);
    kv_words(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, TINY_TYPES, 8);
    *f = write_and_open(g, file);
    tok_vocab *v;
    if (tok_load(*f, &v) != GHOST_OK)
        fail_msg("tok_load: %s", ghost_thread_errmsg());
    return v;
}

static void expect_ids(const tok_vocab *v, const char *s, bool add_special, const int32_t *want,
                       size_t n_want)
{
    size_t n;
    int32_t *ids = encode(v, s, strlen(s), add_special, false, &n);
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
    free(ids);
}

static void test_spm_merges_the_best_scored_pair_first(void **state)
{
    (void)state;
    gguf_file *f;
    unsigned char *file;
    tok_vocab *v = tiny_spm(-1.0f, -2.0f, &f, &file); /* '▁a' beats 'ab' */
    expect_ids(v, "ab", false, (const int32_t[]){6, 5}, 2);
    expect_ids(v, "ab", true, (const int32_t[]){1, 6, 5}, 3); /* default bos 1 */
    /* no byte tokens: an unknown character becomes <unk> */
    expect_ids(v, "ca", false, (const int32_t[]){3, 0, 4}, 3);
    tok_free(v);
    gguf_close(f);
    free(file);

    v = tiny_spm(-2.0f, -1.0f, &f, &file); /* 'ab' beats '▁a' */
    expect_ids(v, "ab", false, (const int32_t[]){3, 7}, 2);
    tok_free(v);
    gguf_close(f);
    free(file);

    v = tiny_spm(-1.0f, -1.0f, &f, &file); /* a tie goes to the leftmost pair */
    expect_ids(v, "ab", false, (const int32_t[]){6, 5}, 2);
    tok_free(v);
    gguf_close(f);
    free(file);
}

typedef void (*vocab_builder)(gguf_writer *g);

static void no_model(gguf_writer *g)
{
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
}
static void t5_model(gguf_writer *g)
{
    kv_string(g, "tokenizer.ggml.model", "t5");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
}
static void no_tokens(gguf_writer *g)
{
    kv_string(g, "tokenizer.ggml.model", "llama");
}
static void zero_tokens(gguf_writer *g)
{
    kv_string(g, "tokenizer.ggml.model", "llama");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 0);
}
static void short_scores(gguf_writer *g)
{
    float s[7] = {0};
    kv_string(g, "tokenizer.ggml.model", "llama");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
    kv_words(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, s, 7);
}
static void float_types(gguf_writer *g)
{
    float s[8] = {0};
    kv_string(g, "tokenizer.ggml.model", "llama");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
    kv_words(g, "tokenizer.ggml.token_type", GGUF_TYPE_FLOAT32, s, 8);
}
static void string_bos(gguf_writer *g)
{
    kv_string(g, "tokenizer.ggml.model", "llama");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
    kv_string(g, "tokenizer.ggml.bos_token_id", "1");
}
static void gpt2_no_merges(gguf_writer *g)
{
    kv_string(g, "tokenizer.ggml.model", "gpt2");
    kv_string(g, "tokenizer.ggml.pre", "gpt-2");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
}
static void gpt2_unknown_pre(gguf_writer *g)
{
    static const char *const merges[] = {"a b"};
    kv_string(g, "tokenizer.ggml.model", "gpt2");
    kv_string(g, "tokenizer.ggml.pre", "no-such-pre");
    kv_strings(g, "tokenizer.ggml.tokens", TINY, 8);
    kv_strings(g, "tokenizer.ggml.merges", merges, 1);
}

static void test_malformed_vocabularies_are_rejected_naming_the_key(void **state)
{
    (void)state;
    static const struct {
        vocab_builder build;
        ghost_status code;
        const char *in_msg;
    } cases[] = {
        {no_model, GHOST_ERR_FORMAT, "'tokenizer.ggml.model': missing"},
        {t5_model, GHOST_ERR_UNSUPPORTED, "'t5' is not supported (supported: llama"},
        {no_tokens, GHOST_ERR_FORMAT, "'tokenizer.ggml.tokens': missing"},
        {zero_tokens, GHOST_ERR_FORMAT, "'tokenizer.ggml.tokens': 0 tokens"},
        {short_scores, GHOST_ERR_FORMAT, "'tokenizer.ggml.scores': 7 entries"},
        {float_types, GHOST_ERR_FORMAT, "'tokenizer.ggml.token_type'"},
        {string_bos, GHOST_ERR_FORMAT, "'tokenizer.ggml.bos_token_id': type"},
        {gpt2_no_merges, GHOST_ERR_FORMAT, "'tokenizer.ggml.merges'"},
        {gpt2_unknown_pre, GHOST_ERR_UNSUPPORTED,
         "unknown pre-tokenizer 'no-such-pre' (supported: default"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gguf_writer *g = gguf_writer_create();
        assert_non_null(g);
        cases[i].build(g);
        unsigned char *file;
        gguf_file *f = write_and_open(g, &file);
        tok_vocab *v = (tok_vocab *)f;
        assert_int_equal(tok_load(f, &v), cases[i].code);
        assert_null(v);
        if (strstr(ghost_thread_errmsg(), cases[i].in_msg) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, ghost_thread_errmsg(),
                     cases[i].in_msg);
        gguf_close(f);
        free(file);
    }
}

/* A byte-level vocabulary of the 256 byte tokens, "Ġt" and "he" merges, for
 * each pre-tokenizer name: it loads (its regexes compile), and any text
 * comes back byte for byte (no regex drops text between its matches). */
static void test_every_pre_tokenizer_loads_and_round_trips(void **state)
{
    (void)state;
    static const char *const pres[] = {
        "default",    "llama3",      "llama-v3",     "llama-bpe",        "falcon3",     "dbrx",
        "smaug-bpe",  "chatglm-bpe", "deepseek-llm", "deepseek-coder",   "deepseek-v3", "falcon",
        "starcoder",  "refact",      "command-r",    "smollm",           "codeshell",   "exaone",
        "minerva-7b", "gpt-2",       "phi-2",        "jina-es",          "jina-de",     "gigachat",
        "jina-v1-en", "jina-v2-es",  "jina-v2-de",   "jina-v2-code",     "roberta-bpe", "mpt",
        "olmo",       "jais",        "qwen2",        "deepseek-r1-qwen", "megrez",      "stablelm2",
        "poro-chat",  "bloom",       "gpt3-finnish", "viking",           "tekken",      "chameleon",
    };
    static char texts[258][8];
    const char *tokens[258];
    for (int b = 0; b < 256; b++) {
        uint32_t cp = b; /* GPT-2 bytes_to_unicode */
        if (b <= 0x20)
            cp = 256 + b;
        else if (b >= 0x7f && b <= 0xa0)
            cp = 256 + 33 + (b - 0x7f);
        else if (b == 0xad)
            cp = 256 + 67;
        if (cp < 0x80)
            texts[b][0] = (char)cp;
        else {
            texts[b][0] = (char)(0xc0 | (cp >> 6));
            texts[b][1] = (char)(0x80 | (cp & 0x3f));
        }
        tokens[b] = texts[b];
    }
    tokens[256] = "\xc4\xa0t";
    tokens[257] = "he";
    static const char *const merges[] = {"\xc4\xa0 t", "h e"};
    const char *text = "Hello,  world!\n\n 123 4567 'll \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
                       "\xf0\x9f\xa6\x99\t~ the end  ";
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        gguf_writer *g = gguf_writer_create();
        assert_non_null(g);
        kv_string(g, "tokenizer.ggml.model", "gpt2");
        kv_string(g, "tokenizer.ggml.pre", pres[i]);
        kv_strings(g, "tokenizer.ggml.tokens", tokens, 258);
        kv_strings(g, "tokenizer.ggml.merges", merges, 2);
        unsigned char *file;
        gguf_file *f = write_and_open(g, &file);
        tok_vocab *v;
        if (tok_load(f, &v) != GHOST_OK)
            fail_msg("pre '%s': %s", pres[i], ghost_thread_errmsg());
        size_t n, len;
        int32_t *ids = encode(v, text, strlen(text), false, false, &n);
        char *back = detokenize(v, ids, n, &len);
        if (len != strlen(text) || memcmp(back, text, len) != 0)
            fail_msg("pre '%s': text came back as '%s'", pres[i], back);
        assert_true(has_id(ids, n, 256)); /* " t" of " the" merged */
        free(back);
        free(ids);
        tok_free(v);
        gguf_close(f);
        free(file);
    }
}

/* ---- long text, threads ------------------------------------------------------------------------
 */

typedef struct job {
    const tok_vocab *v;
    const char *text;
    size_t len, n;
    int32_t *ids;
} job;

static void *run_job(void *p)
{
    job *j = p;
    size_t need = 0;
    tok_encode(j->v, j->text, j->len, false, false, NULL, 0, &need);
    j->ids = malloc(need * sizeof *j->ids);
    if (j->ids && tok_encode(j->v, j->text, j->len, false, false, j->ids, need, &j->n) != GHOST_OK)
        j->n = 0;
    return NULL;
}

/* ~60 KB of the vector strings, plus one 20 KB word: both vocabularies
 * round-trip it, and two threads sharing a vocabulary get the same ids. */
static void test_long_text_from_two_threads(void **state)
{
    (void)state;
    size_t inp_len;
    char *inp = tu_read_required(VOCAB_DIR "gpt-2.gguf.inp", &inp_len);
    size_t len = 0, cap = 40 * inp_len + 20001;
    char *text = malloc(cap + 1);
    assert_non_null(text);
    for (int i = 0; i < 30; i++, len += inp_len)
        memcpy(text + len, inp, inp_len);
    memset(text + len, 'x', 20000);
    len += 20000;
    text[len] = '\0';
    free(inp);

    const char *names[] = {"gpt-2", "llama-spm"};
    for (size_t k = 0; k < 2; k++) {
        loaded l = load_vocab(names[k]);
        job a = {l.v, text, len, 0, NULL}, b = a;
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, run_job, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, run_job, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_true(a.n > len / 8);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
        size_t blen;
        char *back = detokenize(l.v, a.ids, a.n, &blen);
        size_t skip = k == 1; /* SPM's leading space */
        assert_int_equal(blen, len + skip);
        assert_memory_equal(back + skip, text, len);
        free(back);
        free(a.ids);
        free(b.ids);
        unload(&l);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm_vocab_matches_llama_cpp),
        cmocka_unit_test(test_phi3_vocab_matches_llama_cpp),
        cmocka_unit_test(test_gpt2_vocab_matches_llama_cpp),
        cmocka_unit_test(test_mpt_vocab_matches_llama_cpp),
        cmocka_unit_test(test_starcoder_vocab_matches_llama_cpp),
        cmocka_unit_test(test_falcon_vocab_matches_llama_cpp),
        cmocka_unit_test(test_deepseek_coder_vocab_matches_llama_cpp),
        cmocka_unit_test(test_bert_wordpiece_vocab_is_refused_as_unsupported),
        cmocka_unit_test(test_greedy_prompts_tokenize_like_llama_cpp),
        cmocka_unit_test(test_pieces_rebuild_the_text),
        cmocka_unit_test(test_invalid_utf8_is_rejected_with_its_offset),
        cmocka_unit_test(test_short_buffer_reports_the_size_needed),
        cmocka_unit_test(test_control_tokens_split_only_with_parse_special),
        cmocka_unit_test(test_end_of_generation_ids),
        cmocka_unit_test(test_pieces_follow_token_types),
        cmocka_unit_test(test_spm_merges_the_best_scored_pair_first),
        cmocka_unit_test(test_malformed_vocabularies_are_rejected_naming_the_key),
        cmocka_unit_test(test_every_pre_tokenizer_loads_and_round_trips),
        cmocka_unit_test(test_long_text_from_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
