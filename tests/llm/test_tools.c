/*
 * test_tools.c — the model tools in src/llm (convert, quantize, synth, bench).
 *
 * convert: the shared Hugging Face TinyStories-656K directory converts to the
 * tensor table and llama.* / tokenizer.* metadata of llama.cpp's
 * TinyStories-656K-Q8_0.gguf; quantized to Q8_0 its tensor bytes equal that
 * file's, and its greedy text equals llama.cpp's (../shared/vectors).
 * quantize: every type round-trips stories260K (names, dims, the types
 * llama-quantize's fallbacks give, bytes = the reference quantizer's, small
 * dequantization error) and the result generates text.
 * synth: the small shapes load and generate, and a seed gives the same file
 * whatever the thread count. bench: runs and measures. Malformed inputs fail
 * with a message naming what and where.
 */
#include <math.h>

#include <cjson/cJSON.h>

#include "test_util.h"

#include "ghostllm.h"
#include "llm/gguf.h"
#include "llm/safetensors.h"
#include "llm/tools.h"

#define HF_DIR  "../shared/models/tinystories-656k"
#define Q8_REF  "../shared/models/TinyStories-656K-Q8_0.gguf"
#define STORIES "../shared/models/stories260K.gguf"
#define VECTORS "../shared/vectors/greedy-llama.cpp.jsonl"

/* ---- helpers ------------------------------------------------------------------ */

static void require_file(const char *path)
{
    if (access(path, R_OK) != 0)
        fail_msg("%s is missing (the shared test data must be present)", path);
}

static gguf_file *open_gguf(const char *path)
{
    gguf_file *f = NULL;
    if (gguf_open(path, &f) != GHOST_OK)
        fail_msg("gguf_open %s: %s", path, ghost_errmsg(NULL));
    return f;
}

static size_t elem_size(gguf_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32: return 4;
    default: return 8;
    }
}

static bool str_eq(gguf_str a, gguf_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Same type and value. */
static bool kv_equal(const gguf_kv *a, const gguf_kv *b)
{
    if (a->type != b->type)
        return false;
    if (a->type == GGUF_TYPE_STRING)
        return str_eq(a->str, b->str);
    if (a->type != GGUF_TYPE_ARRAY)
        return memcmp(a->data, b->data, elem_size(a->type)) == 0;
    if (a->arr_type != b->arr_type || a->arr_len != b->arr_len)
        return false;
    if (a->arr_type != GGUF_TYPE_STRING)
        return memcmp(a->data, b->data, a->arr_len * elem_size(a->arr_type)) == 0;
    for (uint64_t i = 0; i < a->arr_len; i++)
        if (!str_eq(a->strs[i], b->strs[i]))
            return false;
    return true;
}

static char *greedy(const char *model, const char *prompt, int n, int *n_tokens)
{
    ghost_params p = ghost_default_params();
    p.n_ctx = 512;
    p.n_threads = 2;
    ghost_context *ctx = ghost_init_ex(model, &p);
    if (ctx == NULL)
        fail_msg("load %s: %s", model, ghost_errmsg(NULL));
    ghost_gen_params g = ghost_default_gen_params();
    g.temperature = 0;
    g.max_tokens = n;
    ghost_response *r = ghost_generate_ex(ctx, prompt, &g, NULL, NULL);
    assert_non_null(r);
    if (r->error_code != GHOST_OK)
        fail_msg("generate with %s: %s", model, r->error_message);
    char *text = strdup(r->text);
    if (n_tokens != NULL)
        *n_tokens = r->completion_tokens;
    ghost_free_response(r);
    ghost_free_context(ctx);
    return text;
}

/* The vector line of ../shared/vectors for model (cJSON object, caller frees). */
static cJSON *vector_for(const char *model)
{
    FILE *f = fopen(VECTORS, "r");
    if (f == NULL)
        fail_msg("cannot open %s (the shared test data must be present)", VECTORS);
    static char line[1 << 16];
    cJSON *found = NULL;
    while (found == NULL && fgets(line, sizeof line, f) != NULL) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *m = cJSON_GetObjectItem(j, "model");
        if (cJSON_IsString(m) && strcmp(m->valuestring, model) == 0)
            found = j;
        else
            cJSON_Delete(j);
    }
    fclose(f);
    if (found == NULL)
        fail_msg("no vector for %s in %s", model, VECTORS);
    return found;
}

/* ---- convert ------------------------------------------------------------------ */

static void test_convert_gives_llama_cpp_tensor_table_and_metadata(void **state)
{
    require_file(Q8_REF);
    convert_params p = convert_default_params();
    p.out_type = GGML_TYPE_F32;
    const char *out = tu_path("ts-f32.gguf");
    if (convert_hf(HF_DIR, out, &p) != GHOST_OK)
        fail_msg("convert: %s", ghost_errmsg(NULL));
    gguf_file *ours = open_gguf(out), *ref = open_gguf(Q8_REF);
    assert_int_equal(ours->n_tensors, ref->n_tensors);
    for (uint64_t i = 0; i < ref->n_tensors; i++) {
        const gguf_tensor *r = &ref->tensors[i], *o = gguf_find_tensor(ours, r->name);
        if (o == NULL)
            fail_msg("converted file lacks tensor %s", r->name);
        assert_int_equal(o->n_dims, r->n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            assert_int_equal(o->ne[d], r->ne[d]);
        assert_int_equal(o->type, GGML_TYPE_F32);
    }
    /* every model and tokenizer key of llama.cpp's file, with the same value */
    int compared = 0;
    for (uint64_t i = 0; i < ref->n_kv; i++) {
        const gguf_kv *r = &ref->kv[i];
        if (!(r->key.len > 6 &&
              (memcmp(r->key.ptr, "llama.", 6) == 0 || memcmp(r->key.ptr, "tokenizer.", 10) == 0)))
            continue;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)r->key.len, r->key.ptr);
        const gguf_kv *o = gguf_find_kv(ours, key);
        if (o == NULL || !kv_equal(o, r))
            fail_msg("key %s is %s in the converted file", key, o ? "different" : "missing");
        compared++;
    }
    assert_true(compared >= 20);
    gguf_close(ours);
    gguf_close(ref);
}

static void test_converted_q8_0_equals_llama_cpp_file_and_greedy_text(void **state)
{
    require_file(Q8_REF);
    convert_params p = convert_default_params();
    p.out_type = GGML_TYPE_F32;
    const char *f32 = tu_path("conv-f32.gguf"), *q8 = tu_path("conv-q8.gguf");
    assert_int_equal(convert_hf(HF_DIR, f32, &p), GHOST_OK);
    quantize_params qp = {.type = GGML_TYPE_Q8_0, .n_threads = 2};
    if (quantize_gguf(f32, q8, &qp, NULL) != GHOST_OK)
        fail_msg("quantize: %s", ghost_errmsg(NULL));
    gguf_file *ours = open_gguf(q8), *ref = open_gguf(Q8_REF);
    for (uint64_t i = 0; i < ref->n_tensors; i++) {
        const gguf_tensor *r = &ref->tensors[i], *o = gguf_find_tensor(ours, r->name);
        assert_non_null(o);
        assert_int_equal(o->type, r->type);
        assert_int_equal(o->nbytes, r->nbytes);
        if (memcmp(o->data, r->data, r->nbytes) != 0)
            fail_msg("tensor %s: bytes differ from llama.cpp's Q8_0 file", r->name);
    }
    gguf_close(ours);
    gguf_close(ref);

    cJSON *v = vector_for("TinyStories-656K-Q8_0.gguf");
    const char *prompt = cJSON_GetObjectItem(v, "prompt")->valuestring;
    const char *want = cJSON_GetObjectItem(v, "text")->valuestring;
    int n = cJSON_GetObjectItem(v, "n_predict")->valueint;
    char *got = greedy(q8, prompt, n, NULL);
    assert_string_equal(got, want);
    free(got);
    /* the F32 file runs too (its text may part from Q8_0's after a while) */
    got = greedy(f32, prompt, 8, NULL);
    assert_true(strlen(got) > 0);
    free(got);
    cJSON_Delete(v);
}

static void test_convert_f16_keeps_norms_f32(void **state)
{
    const char *out = tu_path("ts-f16.gguf");
    assert_int_equal(convert_hf(HF_DIR, out, NULL), GHOST_OK);
    gguf_file *f = open_gguf(out);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        assert_int_equal(t->type, t->n_dims == 1 ? GGML_TYPE_F32 : GGML_TYPE_F16);
    }
    uint32_t ft = 99;
    assert_true(gguf_get_u32(f, "general.file_type", &ft));
    assert_int_equal(ft, 1);
    gguf_close(f);
}

/* ---- convert: bad input ---------------------------------------------------------- */

/* A copy of the HF directory whose model.safetensors is `st` (n bytes). */
static const char *bad_hf_dir(const char *name, const void *st, size_t n)
{
    const char *dir = tu_path(name);
    mkdir(dir, 0700);
    char a[256], b[256];
    static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", HF_DIR, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        tu_copy_file(a, b);
    }
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    tu_write_file(b, st, n);
    return dir;
}

static void expect_convert_error(const char *dir, ghost_status code, const char *needle)
{
    ghost_status rc = convert_hf(dir, tu_path("never.gguf"), NULL);
    if (rc != code || strstr(ghost_errmsg(NULL), needle) == NULL)
        fail_msg("convert %s: got %d '%s', wanted %d with '%s'", dir, rc, ghost_errmsg(NULL), code,
                 needle);
    assert_int_not_equal(access(tu_path("never.gguf"), F_OK), 0);
}

static size_t make_st(uint8_t *buf, const char *header, size_t data_bytes)
{
    uint64_t n = strlen(header);
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, 0, data_bytes);
    return 8 + n + data_bytes;
}

static void test_convert_rejects_bad_inputs_with_where(void **state)
{
    expect_convert_error("/nonexistent/hf-model", GHOST_ERR_IO, "/nonexistent/hf-model");

    uint8_t buf[4096];
    size_t n = make_st(
        buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]", 16);
    expect_convert_error(bad_hf_dir("badjson", buf, n), GHOST_ERR_FORMAT, "not valid JSON");

    uint64_t huge = 1ull << 40;
    memcpy(buf, &huge, 8);
    expect_convert_error(bad_hf_dir("badlen", buf, 64), GHOST_ERR_FORMAT, "header length");

    n = make_st(buf,
                "{\"lm_head.weight\": {\"dtype\": \"F32\", \"shape\": [2048, 128], "
                "\"data_offsets\": [0, 99]}}",
                99);
    expect_convert_error(bad_hf_dir("badoffs", buf, n), GHOST_ERR_FORMAT, "lm_head.weight");

    n = make_st(buf,
                "{\"model.layers.0.mystery.weight\": {\"dtype\": \"F32\", \"shape\": [4], "
                "\"data_offsets\": [0, 16]}, \"lm_head.weight\": {\"dtype\": \"F32\", "
                "\"shape\": [1, 4], \"data_offsets\": [0, 16]}}",
                16);
    expect_convert_error(bad_hf_dir("badname", buf, n), GHOST_ERR_UNSUPPORTED, "mystery");

    n = make_st(buf, "{\"x\": {\"dtype\": \"Q9\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 4);
    expect_convert_error(bad_hf_dir("baddtype", buf, n), GHOST_ERR_FORMAT, "unknown dtype");

    /* config.json of an architecture we do not convert */
    const char *dir = bad_hf_dir("badarch", buf, n);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    const char *gpt = "{\"architectures\": [\"GPT2LMHeadModel\"]}";
    tu_write_file(cfg, gpt, strlen(gpt));
    expect_convert_error(dir, GHOST_ERR_UNSUPPORTED, "GPT2LMHeadModel");
}

static void test_safetensors_reader_validates_every_entry(void **state)
{
    uint8_t buf[512];
    st_file *f = NULL;
    size_t n = make_st(buf,
                       "{\"__metadata__\": {\"format\": \"pt\"}, \"w\": {\"dtype\": \"F16\", "
                       "\"shape\": [2, 3], \"data_offsets\": [0, 12]}}",
                       12);
    assert_int_equal(st_open_memory(buf, n, "mem", &f), GHOST_OK);
    assert_int_equal(f->n_tensors, 1);
    assert_string_equal(f->tensors[0].name, "w");
    assert_int_equal(f->tensors[0].shape[1], 3);
    st_close(f);
    static const char *const bad[] = {
        "[1, 2]",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 400]}}",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}}",
        "{\"w\": {\"dtype\": 3, \"shape\": [1], \"data_offsets\": [0, 4]}}",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}",
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = make_st(buf, bad[i], 16);
        if (st_open_memory(buf, n, "mem", &f) != GHOST_ERR_FORMAT)
            fail_msg("header %s was accepted", bad[i]);
        assert_null(f);
        assert_non_null(strstr(ghost_errmsg(NULL), "mem"));
    }
    assert_int_equal(st_open_memory(buf, 5, "short", &f), GHOST_ERR_FORMAT);
}

/* ---- quantize ------------------------------------------------------------------- */

static double rel_rms_error(const gguf_tensor *a, const gguf_tensor *b)
{
    const int64_t n = a->ne[0], rows = a->ne[1];
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double err = 0, ref = 0;
    size_t ra = quant_row_size((ggml_type)a->type, n), rb = quant_row_size((ggml_type)b->type, n);
    for (int64_t r = 0; r < rows; r++) {
        quant_dequantize_row((ggml_type)a->type, (const uint8_t *)a->data + r * ra, x, n);
        quant_dequantize_row((ggml_type)b->type, (const uint8_t *)b->data + r * rb, y, n);
        for (int64_t i = 0; i < n; i++) {
            err += (double)(x[i] - y[i]) * (x[i] - y[i]);
            ref += (double)x[i] * x[i];
        }
    }
    free(x);
    free(y);
    return sqrt(err / ref);
}

static void test_quantize_round_trips_every_type(void **state)
{
    require_file(STORIES);
    static const struct {
        ggml_type type;
        double max_err;
    } cases[] = {
        {GGML_TYPE_Q8_0, 0.01}, {GGML_TYPE_Q4_0, 0.15}, {GGML_TYPE_Q4_K, 0.10},
        {GGML_TYPE_Q5_K, 0.06}, {GGML_TYPE_Q6_K, 0.02}, {GGML_TYPE_IQ4_NL, 0.15},
    };
    gguf_file *in = open_gguf(STORIES);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "stories-%s.gguf", quant_info(cases[c].type)->name);
        const char *out = tu_path(name);
        quantize_params p = {.type = cases[c].type, .n_threads = 2};
        quantize_stats st;
        if (quantize_gguf(STORIES, out, &p, &st) != GHOST_OK)
            fail_msg("quantize %s: %s", name, ghost_errmsg(NULL));
        assert_int_equal(st.n_tensors, in->n_tensors);
        assert_int_equal(st.n_quantized + st.n_fallback + st.n_kept, st.n_tensors);
        gguf_file *f = open_gguf(out);
        assert_int_equal(f->n_tensors, in->n_tensors);
        for (uint64_t i = 0; i < in->n_tensors; i++) {
            const gguf_tensor *a = &in->tensors[i], *b = &f->tensors[i];
            assert_string_equal(a->name, b->name);
            assert_memory_equal(a->ne, b->ne, sizeof a->ne);
            ggml_type want = quantize_wants(a->name, a->n_dims)
                                 ? quantize_tensor_type(cases[c].type, a->ne[0])
                                 : (ggml_type)a->type;
            if (b->type != want)
                fail_msg("%s: %s is %s, expected %s", name, a->name, quant_info(b->type)->name,
                         quant_info(want)->name);
            if (want == (ggml_type)a->type)
                continue;
            /* first row: the reference quantizer's bytes */
            size_t rb = quant_row_size(want, a->ne[0]);
            void *row = malloc(rb);
            quant_quantize_row(want, a->data, row, a->ne[0]);
            assert_memory_equal(row, b->data, rb);
            free(row);
            double e = rel_rms_error(a, b);
            if (e > cases[c].max_err)
                fail_msg("%s: %s dequantizes with relative error %.3f", name, a->name, e);
        }
        /* 64 columns cannot hold K-quant blocks: every K-quant matrix fell back */
        if (cases[c].type == GGML_TYPE_Q4_K || cases[c].type == GGML_TYPE_Q5_K ||
            cases[c].type == GGML_TYPE_Q6_K)
            assert_int_equal(st.n_quantized, 0);
        else
            assert_true(st.n_quantized > 0);
        assert_true(st.n_fallback > 0); /* ffn rows of 172 */
        gguf_close(f);
        int n_tok = 0;
        char *text = greedy(out, "Once upon a time", 16, &n_tok);
        assert_int_equal(n_tok, 16);
        assert_true(strlen(text) > 0);
        free(text);
    }
    gguf_close(in);
}

static void test_quantize_rejects_bad_type_and_input(void **state)
{
    quantize_params p = {.type = GGML_TYPE_Q8_1, .n_threads = 1};
    assert_int_equal(quantize_gguf(STORIES, tu_path("x.gguf"), &p, NULL),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(tools_parse_type("Q7_X"), GGML_TYPE_MAX_ID);
    assert_int_equal(tools_parse_type("q4_k"), GGML_TYPE_Q4_K);
    p.type = GGML_TYPE_Q4_0;
    assert_int_equal(quantize_gguf("/nonexistent.gguf", tu_path("x.gguf"), &p, NULL), GHOST_ERR_IO);
    assert_non_null(strstr(ghost_errmsg(NULL), "/nonexistent.gguf"));
    /* a truncated model is a format error, and nothing is written */
    const char *cut = tu_path("cut.gguf");
    FILE *in = fopen(STORIES, "rb");
    assert_non_null(in);
    static uint8_t head[100000];
    size_t n = fread(head, 1, sizeof head, in);
    fclose(in);
    tu_write_file(cut, head, n);
    assert_int_equal(quantize_gguf(cut, tu_path("y.gguf"), &p, NULL), GHOST_ERR_FORMAT);
    assert_int_not_equal(access(tu_path("y.gguf"), F_OK), 0);
}

/* ---- synth ---------------------------------------------------------------------- */

static void test_synth_small_shapes_load_and_generate(void **state)
{
    static const char *const shapes[] = {"llama-tiny", "qwen2-tiny"};
    static const ggml_type types[] = {GGML_TYPE_F16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0,
                                      GGML_TYPE_Q4_K};
    for (size_t s = 0; s < 2; s++) {
        const synth_shape *sh = synth_find_shape(shapes[s]);
        assert_non_null(sh);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%s.gguf", shapes[s], quant_info(types[t])->name);
            const char *out = tu_path(name);
            synth_params p = {.type = types[t], .seed = 3, .n_threads = 2};
            if (synth_write(out, sh, &p) != GHOST_OK)
                fail_msg("synth %s: %s", name, ghost_errmsg(NULL));
            ghost_model *m = ghost_model_load(out);
            if (m == NULL)
                fail_msg("load %s: %s", name, ghost_errmsg(NULL));
            ghost_model_info info;
            assert_int_equal(ghost_model_get_info(m, &info), GHOST_OK);
            assert_string_equal(info.architecture, sh->arch);
            assert_int_equal(info.n_vocab, sh->n_vocab);
            assert_int_equal(info.n_embd, sh->n_embd);
            assert_int_equal(info.n_layer, sh->n_layer);
            assert_int_equal(info.n_head_kv, sh->n_head_kv);
            assert_string_equal(info.file_type, quant_info(types[t])->name);
            /* the generated vocabulary tokenizes ordinary text */
            int32_t ids[64];
            size_t n_ids = 0;
            assert_int_equal(ghost_tokenize(m, "the brown fox", 13, false, false, ids, 64, &n_ids),
                             GHOST_OK);
            assert_true(n_ids > 0 && n_ids <= 13);
            ghost_model_free(m);
            char *text = greedy(out, "once upon a time", 8, NULL);
            free(text);
        }
    }
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void test_synth_seed_fixes_the_file_whatever_the_threads(void **state)
{
    const synth_shape *sh = synth_find_shape("llama-tiny");
    synth_params p = {.type = GGML_TYPE_Q4_K, .seed = 11, .n_threads = 1};
    const char *a = tu_path("seed-a.gguf"), *b = tu_path("seed-b.gguf"),
               *c = tu_path("seed-c.gguf");
    assert_int_equal(synth_write(a, sh, &p), GHOST_OK);
    p.n_threads = 2;
    assert_int_equal(synth_write(b, sh, &p), GHOST_OK);
    p.seed = 12;
    assert_int_equal(synth_write(c, sh, &p), GHOST_OK);
    size_t na, nb, nc;
    uint8_t *da = slurp(a, &na), *db = slurp(b, &nb), *dc = slurp(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_true(na != nc || memcmp(da, dc, na) != 0);
    free(da);
    free(db);
    free(dc);
}

static void test_synth_rejects_unknown_shape_and_type(void **state)
{
    assert_null(synth_find_shape("llama-70b-imaginary"));
    assert_non_null(synth_find_shape("tinyllama-1.1b"));
    assert_non_null(synth_find_shape("qwen2-0.5b"));
    synth_params p = {.type = GGML_TYPE_Q8_1, .seed = 1};
    assert_int_equal(synth_write(tu_path("z.gguf"), synth_find_shape("llama-tiny"), &p),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_false(synth_type_ok(GGML_TYPE_Q8_K));
}

/* ---- bench ---------------------------------------------------------------------- */

static void test_bench_measures_prompt_and_generation(void **state)
{
    require_file(STORIES);
    ghost_model *m = ghost_model_load(STORIES);
    assert_non_null(m);
    bench_params p = {.n_prompt = 8, .n_gen = 4, .n_threads = 2, .reps = 2, .kv_f16 = true};
    bench_result r;
    assert_int_equal(bench_model(m, &p, &r), GHOST_OK);
    assert_true(r.pp.mean > 0 && r.pp.mean_ms > 0 && r.pp.stddev >= 0);
    assert_true(r.tg.mean > 0 && r.tg.mean_ms > 0);
    /* weights read per token: every matrix once, far more than one layer */
    uint64_t w = bench_weight_bytes_per_token(m);
    assert_true(w > 500000 && w < 1185376);
    p.n_threads = 0;
    assert_int_equal(bench_model(m, &p, &r), GHOST_ERR_INVALID_ARGUMENT);
    ghost_model_free(m);
    bench_bandwidth bw;
    assert_int_equal(bench_memory_bandwidth(1, 0, &bw), GHOST_OK);
    assert_true(bw.read_gbs > 0.1 && bw.copy_gbs > 0.1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert_gives_llama_cpp_tensor_table_and_metadata),
        cmocka_unit_test(test_converted_q8_0_equals_llama_cpp_file_and_greedy_text),
        cmocka_unit_test(test_convert_f16_keeps_norms_f32),
        cmocka_unit_test(test_convert_rejects_bad_inputs_with_where),
        cmocka_unit_test(test_safetensors_reader_validates_every_entry),
        cmocka_unit_test(test_quantize_round_trips_every_type),
        cmocka_unit_test(test_quantize_rejects_bad_type_and_input),
        cmocka_unit_test(test_synth_small_shapes_load_and_generate),
        cmocka_unit_test(test_synth_seed_fixes_the_file_whatever_the_threads),
        cmocka_unit_test(test_synth_rejects_unknown_shape_and_type),
        cmocka_unit_test(test_bench_measures_prompt_and_generation),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
