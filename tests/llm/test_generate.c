/*
 * test_generate.c — the forward pass against llama.cpp.
 *
 * test_greedy_matches_llama_cpp runs every line of
 * ../shared/vectors/greedy-llama.cpp.jsonl: the prompt must tokenize to
 * llama.cpp's ids, greedy decoding must give llama.cpp's 64 token ids, and
 * the log-probabilities of the first 3 positions must agree (see
 * LOGPROB_TOLERANCE). It prints one line per vector and fails if any vector
 * fails (a missing model or kernel fails loudly; nothing is skipped).
 * test_q4_0_repacked_model_gives_the_same_logits holds the load-time Q4_0
 * repacking to the mapped weights' logits, and the K-quant test Q4_K's,
 * Q5_K's and Q6_K's repacking to the scalar reference's.
 */
#include <math.h>

#include <cjson/cJSON.h>

#include "test_util.h"

#include "ghostllm.h"
#include "llm/model.h"
#include "llm/llm_test.h"
#include "llm/tools.h"

#define VECTORS "../shared/vectors/greedy-llama.cpp.jsonl"
/* Log-probabilities agree with llama.cpp's to ~1e-4 where activations stay
 * F32, but quantized activations (Q8_0/Q8_K, F16, BF16) are discontinuous:
 * a last-bit difference in a dot product's summation order can flip one
 * rounding and move a log-probability by a few 1e-2. llama.cpp c392e509
 * itself, run on this project's AVX-512 machine, differs from the vector
 * file by 0.049 on stories260K-Q3_K_M "The little dog" (the file came from
 * another build). Greedy tokens must still be identical everywhere. */
#define LOGPROB_TOLERANCE 0.08

/* ---- helpers -------------------------------------------------------------- */

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* log-softmax of logits at id */
static double log_prob(const float *logits, int32_t n, int32_t id)
{
    double max = logits[argmax(logits, n)], sum = 0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    return (double)logits[id] - max - log(sum);
}

/* ---- llama.cpp vectors ---------------------------------------------------- */

typedef struct vector_result {
    bool prompt_ok, tokens_ok, logprobs_ok, text_ok;
    int first_mismatch;
    double worst_logprob_diff;
} vector_result;

/* Greedy decoding through the internal forward pass (token ids and logits). */
static void run_vector_tokens(const ghost_model *m, const cJSON *v, const int32_t *prompt,
                              int n_prompt, vector_result *res)
{
    const cJSON *want = cJSON_GetObjectItem(v, "tokens");
    const cJSON *lp = cJSON_GetObjectItem(v, "top_logprobs_first3");
    const int n_want = cJSON_GetArraySize(want);
    kv_cache kv;
    assert_int_equal(kv_cache_init(&kv, &m->hp, 512, true), GHOST_OK);
    fwd_state *fs = fwd_state_create(m, 512, 512, 2);
    assert_non_null(fs);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    fwd_item *items = malloc((size_t)n_prompt * sizeof *items);
    assert_true(logits && items);
    for (int i = 0; i < n_prompt; i++)
        items[i] = (fwd_item){prompt[i], i, &kv, i == n_prompt - 1 ? logits : NULL};
    assert_int_equal(forward_batch(fs, items, n_prompt), GHOST_OK);

    res->tokens_ok = res->logprobs_ok = true;
    res->first_mismatch = -1;
    for (int i = 0; i < n_want; i++) {
        if (i < cJSON_GetArraySize(lp)) {
            const cJSON *top = cJSON_GetArrayItem(lp, i), *e;
            cJSON_ArrayForEach(e, top)
            {
                int32_t id = cJSON_GetArrayItem(e, 0)->valueint;
                double d = fabs(log_prob(logits, m->hp.n_vocab, id) -
                                cJSON_GetArrayItem(e, 1)->valuedouble);
                if (d > res->worst_logprob_diff)
                    res->worst_logprob_diff = d;
            }
        }
        const int32_t tok = argmax(logits, m->hp.n_vocab);
        if (tok != cJSON_GetArrayItem(want, i)->valueint) {
            res->tokens_ok = false;
            res->first_mismatch = i;
            break;
        }
        fwd_item it = {tok, n_prompt + i, &kv, logits};
        assert_int_equal(forward_batch(fs, &it, 1), GHOST_OK);
    }
    res->logprobs_ok = res->worst_logprob_diff <= LOGPROB_TOLERANCE;
    free(items);
    free(logits);
    fwd_state_destroy(fs);
    kv_cache_free(&kv);
}

static void run_vector(const ghost_model *m, const cJSON *v, vector_result *res)
{
    const char *prompt = cJSON_GetObjectItem(v, "prompt")->valuestring;
    const cJSON *pt = cJSON_GetObjectItem(v, "prompt_tokens_no_bos");
    int32_t toks[256];
    size_t n = 0;
    assert_int_equal(ghost_tokenize(m, prompt, strlen(prompt), true, false, toks, 256, &n),
                     GHOST_OK);
    ghost_model_info info;
    assert_int_equal(ghost_model_get_info(m, &info), GHOST_OK);
    res->prompt_ok = n == (size_t)cJSON_GetArraySize(pt) + 1 && toks[0] == info.bos_token;
    for (size_t i = 1; res->prompt_ok && i < n; i++)
        res->prompt_ok = toks[i] == cJSON_GetArrayItem(pt, (int)i - 1)->valueint;
    run_vector_tokens(m, v, toks, (int)n, res);

    /* the public path must give llama.cpp's text as well */
    ghost_params p = greedy_params(512, cJSON_GetObjectItem(v, "n_predict")->valueint);
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    ghost_response *r = ghost_generate_ex(ctx, prompt, NULL, NULL, NULL);
    assert_non_null(r);
    res->text_ok = r->error_code == GHOST_OK &&
                   strcmp(r->text, cJSON_GetObjectItem(v, "text")->valuestring) == 0;
    ghost_free_response(r);
    ghost_free_context(ctx);
}

static void test_greedy_matches_llama_cpp(void **state)
{
    char *data = tu_read_required(VECTORS, NULL);
    int n_lines = 0, n_pass = 0;
    ghost_model *m = NULL;
    char loaded[256] = "";
    for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        cJSON *v = cJSON_Parse(line);
        assert_non_null(v);
        const char *file = cJSON_GetObjectItem(v, "model")->valuestring;
        if (strcmp(file, loaded) != 0) {
            ghost_model_free(m);
            m = load_shared_model(file);
            snprintf(loaded, sizeof loaded, "%s", file);
        }
        vector_result res = {0};
        run_vector(m, v, &res);
        const bool ok = res.prompt_ok && res.tokens_ok && res.logprobs_ok && res.text_ok;
        print_message("%s %-28s %-18s prompt %s, tokens %s, logprobs max diff %.4f, text %s\n",
                      ok ? "PASS" : "FAIL", file, cJSON_GetObjectItem(v, "prompt")->valuestring,
                      res.prompt_ok ? "ok" : "DIFF", res.tokens_ok ? "ok" : "DIFF",
                      res.worst_logprob_diff, res.text_ok ? "ok" : "DIFF");
        if (!res.tokens_ok)
            print_message("     first differing token: index %d\n", res.first_mismatch);
        n_lines++;
        n_pass += ok;
        cJSON_Delete(v);
    }
    ghost_model_free(m);
    free(data);
    print_message("%d of %d llama.cpp vectors pass\n", n_pass, n_lines);
    assert_true(n_lines >= 24);
    assert_int_equal(n_pass, n_lines);
}

/* Logits of a 6-token prompt through the internal forward pass. */
static void prompt_logits(const ghost_model *m, float *logits)
{
    static const int32_t prompt[] = {1, 403, 2501, 263, 931, 29892};
    kv_cache kv;
    assert_int_equal(kv_cache_init(&kv, &m->hp, 64, true), GHOST_OK);
    fwd_state *fs = fwd_state_create(m, 64, 64, 2);
    assert_non_null(fs);
    fwd_item items[6];
    for (int i = 0; i < 6; i++)
        items[i] =
            (fwd_item){prompt[i] % m->hp.n_vocab, i, &kv, logits + (size_t)i * m->hp.n_vocab};
    assert_int_equal(forward_batch(fs, items, 6), GHOST_OK);
    fwd_state_destroy(fs);
    kv_cache_free(&kv);
}

/* Sets name to value (NULL: unsets it) and returns what it was, for
 * put_env to restore: the caller's GHOST_ISA (ctest runs under
 * GHOST_ISA=avx2 too) must survive the tests that change it. */
static char *swap_env(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old != NULL ? strdup(old) : NULL;
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return saved;
}

static void put_env(const char *name, char *saved)
{
    free(swap_env(name, saved));
    free(saved);
}

/* Q4_0 matrices repacked at load (the default where the kernel set has the
 * eight-row kernel) give the same logits, bit for bit, as the same model
 * kept in the map with GHOST_REPACK=0. */
static void test_q4_0_repacked_model_gives_the_same_logits(void **state)
{
    (void)state;
    const char *file = "TinyStories-656K-Q4_0.gguf";
    char *saved = swap_env("GHOST_REPACK", NULL); /* the default, whatever the caller set */
    ghost_model *packed = load_shared_model(file);
    setenv("GHOST_REPACK", "0", 1);
    ghost_model *mapped = load_shared_model(file);
    put_env("GHOST_REPACK", saved);
    assert_null(mapped->x8);
    assert_false(mapped->w.layers[0].ffn_up.x8);
    if (packed->kern->gemm_x8[GGML_TYPE_Q4_0] != NULL) {
        assert_non_null(packed->x8);
        assert_true(packed->w.layers[0].wq.x8 && packed->w.layers[0].ffn_down.x8);
        assert_false(packed->w.token_embd.x8); /* its rows are read by the embedding */
    }
    const size_t n = (size_t)6 * packed->hp.n_vocab;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_true(a && b);
    prompt_logits(packed, a);
    prompt_logits(mapped, b);
    assert_memory_equal(a, b, n * sizeof *a);
    free(a);
    free(b);
    ghost_model_free(packed);
    ghost_model_free(mapped);
}

/* The same for Q4_K, Q5_K and Q6_K, on random-weight models whose every matrix
 * has the type (synth's llama-tiny shape): the eight-row kernels give the
 * scalar reference's bits, so the repacked model's logits are the scalar
 * ISA's. The mapped layout's SIMD kernels sum in another order: close, not
 * equal. */
static void check_k_repacked_model(ggml_type type)
{
    const char *path = tu_path("k-tiny.gguf");
    synth_params sp = {.type = type, .seed = 5, .n_threads = 2};
    assert_int_equal(synth_write(path, synth_find_shape("llama-tiny"), &sp), GHOST_OK);
    char *repack = swap_env("GHOST_REPACK", NULL);
    ghost_model *packed = ghost_model_load(path);
    char *isa = swap_env("GHOST_ISA", "scalar");
    ghost_model *scalar = ghost_model_load(path);
    put_env("GHOST_ISA", isa);
    setenv("GHOST_REPACK", "0", 1);
    ghost_model *mapped = ghost_model_load(path);
    put_env("GHOST_REPACK", repack);
    assert_true(packed && scalar && mapped);
    assert_int_equal(packed->w.layers[1].ffn_down.type, type);
    assert_null(scalar->x8);
    assert_null(mapped->x8);
    if (packed->kern->gemm_x8[type] != NULL)
        assert_true(packed->w.layers[1].ffn_down.x8 && packed->w.output.x8);
    else /* scalar kernels (no AVX2, or GHOST_ISA=scalar): three equal models */
        print_message("no eight-row kernel for this type in this kernel set: nothing repacked\n");
    const size_t n = (size_t)6 * packed->hp.n_vocab;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    assert_true(a && b && c);
    prompt_logits(packed, a);
    prompt_logits(scalar, b);
    prompt_logits(mapped, c);
    assert_memory_equal(a, b, n * sizeof *a);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - c[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    assert_true(worst <= 1e-3 * scale);
    free(a);
    free(b);
    free(c);
    ghost_model_free(packed);
    ghost_model_free(scalar);
    ghost_model_free(mapped);
    unlink(path);
}

/* A value the load-time switches do not know is refused, with its name. */
static void test_unknown_isa_or_repack_value_is_refused(void **state)
{
    (void)state;
    static const char *const bad[][2] = {{"GHOST_ISA", "avx3"}, {"GHOST_REPACK", "yes"}};
    for (int i = 0; i < 2; i++) {
        char *saved = swap_env(bad[i][0], bad[i][1]);
        ghost_model *m = ghost_model_load("../shared/models/stories260K.gguf");
        put_env(bad[i][0], saved);
        assert_null(m);
        assert_int_equal(ghost_errcode(NULL), GHOST_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(ghost_errmsg(NULL), bad[i][0]));
        assert_non_null(strstr(ghost_errmsg(NULL), bad[i][1]));
    }
    char *saved = swap_env("GHOST_REPACK", "1"); /* the default, said aloud */
    ghost_model *m = load_shared_model("stories260K.gguf");
    put_env("GHOST_REPACK", saved);
    ghost_model_free(m);
}

static void test_k_quants_repacked_give_the_scalar_logits(void **state)
{
    (void)state;
    check_k_repacked_model(GGML_TYPE_Q4_K);
    check_k_repacked_model(GGML_TYPE_Q5_K);
    check_k_repacked_model(GGML_TYPE_Q6_K);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0_repacked_model_gives_the_same_logits),
        cmocka_unit_test(test_k_quants_repacked_give_the_scalar_logits),
        cmocka_unit_test(test_unknown_isa_or_repack_value_is_refused),
        cmocka_unit_test(test_greedy_matches_llama_cpp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
