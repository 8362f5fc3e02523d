/*
 * test_api.c — the generation API of ghostllm.h on stories260K (F32):
 * cancellation, stop strings, UTF-8 safe streaming, context-window limits,
 * prefix reuse, seeds, two threads sharing one model, the seed API, and
 * argument checking.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ghostllm.h"
#include "llm/llm_test.h"

#define STORIES "../shared/models/stories260K.gguf"

/* ---- streaming ------------------------------------------------------------- */

typedef struct collect {
    char text[65536];
    size_t len;
    int calls;
    int cancel_at;       /* return non-zero on this call (0: never) */
    size_t bounds[4096]; /* where each piece ended */
} collect;

/* True when the piece boundary at b cuts a valid multi-byte character: a
 * lead byte before b still waits for continuation bytes that follow b.
 * (Invalid sequences — a lead not followed by its continuations — may be
 * passed on as they are, like llama.cpp does.) */
static bool boundary_splits_utf8(const char *s, size_t len, size_t b)
{
    for (size_t back = 1; back <= 3 && back <= b; back++) {
        const unsigned char c = (unsigned char)s[b - back];
        if ((c & 0xC0) == 0x80)
            continue;
        const size_t need = c >= 0xF8 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need <= back)
            return false;
        for (size_t i = b; i < b - back + need; i++)
            if (i >= len || ((unsigned char)s[i] & 0xC0) != 0x80)
                return false; /* never completed: an invalid sequence, not a split */
        return true;
    }
    return false;
}

static int on_piece(const char *piece, size_t len, void *ud)
{
    collect *c = ud;
    assert_true(len > 0);
    assert_true(c->len + len < sizeof c->text);
    memcpy(c->text + c->len, piece, len);
    c->len += len;
    c->text[c->len] = '\0';
    if (c->calls < (int)(sizeof c->bounds / sizeof c->bounds[0]))
        c->bounds[c->calls] = c->len;
    return ++c->calls == c->cancel_at;
}

static void test_callback_cancel_after_5_pieces_gives_5_calls(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(256, 64);
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    collect c = {.cancel_at = 5};
    ghost_response *r = ghost_generate_ex(ctx, "Once upon a time", NULL, on_piece, &c);
    assert_non_null(r);
    assert_int_equal(c.calls, 5);
    assert_int_equal(r->finish_reason, GHOST_FINISH_CANCELLED);
    assert_int_equal(r->error_code, GHOST_ERR_CANCELLED);
    assert_string_equal(r->text, c.text); /* the text is what the caller saw */
    assert_true(r->completion_tokens >= 5);
    ghost_free_response(r);

    /* the flag does not outlive the generation it stopped */
    c = (collect){0};
    r = ghost_generate_ex(ctx, "Once upon a time", NULL, on_piece, &c);
    assert_int_equal(r->error_code, GHOST_OK);
    assert_int_equal(r->completion_tokens, 64);
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

static void test_stop_string_ends_the_answer_before_it(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(256, 64);
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    /* greedy text: ", there was a little girl named Lily. She loved ..." */
    const char *stops[] = {"zzz", "girl named Li"};
    ghost_gen_params gp = p.gen;
    gp.stop = stops;
    gp.n_stop = 2;
    collect c = {0};
    ghost_response *r = ghost_generate_ex(ctx, "Once upon a time", &gp, on_piece, &c);
    assert_non_null(r);
    assert_int_equal(r->error_code, GHOST_OK);
    assert_int_equal(r->finish_reason, GHOST_FINISH_STOP);
    assert_string_equal(r->text, ", there was a little ");
    assert_string_equal(c.text, r->text); /* no part of the stop string was streamed */
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

static void test_streaming_never_splits_a_utf8_character(void **state)
{
    /* at a high temperature stories260K emits many byte tokens (<0x..>),
     * including the parts of multi-byte characters */
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(512, 400);
    p.gen.temperature = 20.0f;
    p.gen.top_k = 0;
    p.gen.top_p = 1.0f;
    p.gen.min_p = 0.0f;
    p.gen.seed = 5;
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    collect c = {0};
    ghost_response *r = ghost_generate_ex(ctx, "Once", NULL, on_piece, &c);
    assert_non_null(r);
    assert_int_equal(r->error_code, GHOST_OK);
    assert_string_equal(c.text, r->text);
    int multibyte = 0;
    for (size_t i = 0; i + 1 < c.len; i++)
        multibyte +=
            (unsigned char)c.text[i] >= 0xC0 && ((unsigned char)c.text[i + 1] & 0xC0) == 0x80;
    print_message("%d multi-byte characters in %zu bytes\n", multibyte, c.len);
    assert_true(multibyte > 0); /* the test saw multi-byte characters at all */
    for (int i = 0; i < c.calls && i < 4096; i++)
        if (boundary_splits_utf8(c.text, c.len, c.bounds[i]))
            fail_msg("piece %d ends inside a UTF-8 character (offset %zu)", i, c.bounds[i]);
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

/* ---- context window -------------------------------------------------------- */

static void test_prompt_that_does_not_fit_is_context_full(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(16, 8);
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    ghost_response *r = ghost_generate_ex(
        ctx, "Once upon a time there was a little dog who liked to run and play all day", NULL,
        NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->error_code, GHOST_ERR_CONTEXT_FULL);
    assert_int_equal(r->finish_reason, GHOST_FINISH_ERROR);
    assert_int_equal(ghost_errcode(ctx), GHOST_ERR_CONTEXT_FULL);
    assert_non_null(strstr(ghost_errmsg(ctx), "context window holds 16"));
    assert_string_equal(r->text, "");
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

static void test_generation_reaching_the_window_stops_with_length(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(24, -1); /* no max: only the window limits */
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    ghost_response *r = ghost_generate_ex(ctx, "Once upon a time", NULL, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->error_code, GHOST_OK);
    assert_int_equal(r->finish_reason, GHOST_FINISH_LENGTH);
    assert_int_equal(r->prompt_tokens, 5);
    assert_int_equal(r->prompt_tokens + r->completion_tokens, 24);
    ghost_free_response(r);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

static void test_reused_prefix_gives_the_same_text_as_a_fresh_context(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(256, 16);
    ghost_context *a = ghost_context_new(m, &p), *b = ghost_context_new(m, &p);
    assert_true(a && b);
    ghost_response *r1 = ghost_generate_ex(a, "Once upon a time", NULL, NULL, NULL);
    char follow[512];
    snprintf(follow, sizeof follow, "Once upon a time%s", r1->text);
    /* a's cache holds the prompt and most of the answer */
    ghost_response *r2 = ghost_generate_ex(a, follow, NULL, NULL, NULL);
    ghost_response *r3 = ghost_generate_ex(b, follow, NULL, NULL, NULL);
    assert_int_equal(r2->error_code, GHOST_OK);
    assert_true(r2->cached_tokens >= 5);
    assert_int_equal(r3->cached_tokens, 0);
    assert_string_equal(r2->text, r3->text);
    ghost_free_response(r1);
    ghost_free_response(r2);
    ghost_free_response(r3);
    ghost_context_reset(a);
    r1 = ghost_generate_ex(a, follow, NULL, NULL, NULL);
    assert_int_equal(r1->cached_tokens, 0);
    ghost_free_response(r1);
    ghost_free_context(a);
    ghost_free_context(b);
    ghost_model_free(m);
}

/* ---- seeds and threads ----------------------------------------------------- */

static void test_same_seed_gives_the_same_text(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(256, 48);
    p.gen.temperature = 1.0f;
    p.gen.seed = 42;
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    ghost_response *r1 = ghost_generate_ex(ctx, "The little dog", NULL, NULL, NULL);
    ghost_response *r2 = ghost_generate_ex(ctx, "The little dog", NULL, NULL, NULL);
    ghost_gen_params other = p.gen;
    other.seed = 43;
    ghost_response *r3 = ghost_generate_ex(ctx, "The little dog", &other, NULL, NULL);
    assert_string_equal(r1->text, r2->text);
    assert_string_not_equal(r1->text, r3->text);
    ghost_free_response(r1);
    ghost_free_response(r2);
    ghost_free_response(r3);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

typedef struct thread_job {
    const ghost_model *m;
    char text[4096];
} thread_job;

static void *generate_in_thread(void *arg)
{
    thread_job *j = arg;
    ghost_params p = greedy_params(256, 64);
    ghost_context *ctx = ghost_context_new(j->m, &p);
    if (ctx == NULL)
        return NULL;
    ghost_response *r = ghost_generate_ex(ctx, "Once upon a time", NULL, NULL, NULL);
    if (r != NULL && r->error_code == GHOST_OK)
        snprintf(j->text, sizeof j->text, "%s", r->text);
    ghost_free_response(r);
    ghost_free_context(ctx);
    return NULL;
}

static void test_two_threads_sharing_a_model_get_identical_greedy_text(void **state)
{
    ghost_model *m = load_shared_model("stories260K.gguf");
    thread_job a = {.m = m}, b = {.m = m};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, generate_in_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, generate_in_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true(strlen(a.text) > 20);
    assert_string_equal(a.text, b.text);
    assert_true(strncmp(a.text, ", there was a little girl named Lily.", 37) == 0);
    ghost_model_free(m);
}

/* ---- the seed API ---------------------------------------------------------- */

static collect seed_collect;
static ghost_context *seed_ctx;

/* The seed callback has no user data: the context is a global here. It
 * stops the default 2048-token generation after 40 pieces. */
static void on_seed_piece(const char *piece)
{
    size_t n = strlen(piece);
    if (seed_collect.len + n < sizeof seed_collect.text) {
        memcpy(seed_collect.text + seed_collect.len, piece, n + 1);
        seed_collect.len += n;
    }
    if (++seed_collect.calls == 40)
        ghost_context_cancel(seed_ctx);
}

static void test_seed_api_streams_nul_terminated_pieces(void **state)
{
    ghost_context *ctx = seed_ctx = ghost_init(STORIES);
    assert_non_null(ctx);
    memset(&seed_collect, 0, sizeof seed_collect);
    ghost_response *r = ghost_generate(ctx, "Once upon a time", on_seed_piece);
    assert_non_null(r);
    assert_true(r->completion_tokens > 0);
    assert_int_equal(r->tokens_used, r->prompt_tokens + r->completion_tokens);
    assert_int_equal(r->prompt_tokens, 5);
    assert_string_equal(seed_collect.text, r->text);
    if (r->finish_reason == GHOST_FINISH_CANCELLED) {
        assert_int_equal(seed_collect.calls, 40);
        assert_int_equal(r->error_code, GHOST_ERR_CANCELLED);
    } else { /* the story ended before 40 pieces */
        assert_int_equal(r->finish_reason, GHOST_FINISH_STOP);
        assert_int_equal(r->error_code, GHOST_OK);
        assert_null(r->error_message);
    }
    ghost_free_response(r);
    ghost_free_context(ctx);
}

/* ---- argument checking ----------------------------------------------------- */

/* A GGUF v3 file whose only key says general.architecture = "gpt2". */
static void write_gpt2_gguf(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const uint32_t version = 3, str_type = 8;
    const uint64_t n_tensors = 0, n_kv = 1, klen = 20, vlen = 4;
    fwrite("GGUF", 1, 4, f);
    fwrite(&version, 4, 1, f);
    fwrite(&n_tensors, 8, 1, f);
    fwrite(&n_kv, 8, 1, f);
    fwrite(&klen, 8, 1, f);
    fwrite("general.architecture", 1, 20, f);
    fwrite(&str_type, 4, 1, f);
    fwrite(&vlen, 8, 1, f);
    fwrite("gpt2", 1, 4, f);
    fclose(f);
}

static void test_invalid_arguments_are_rejected(void **state)
{
    assert_null(ghost_model_load(NULL));
    assert_int_equal(ghost_errcode(NULL), GHOST_ERR_INVALID_ARGUMENT);
    assert_null(ghost_model_load("../shared/models/no-such-model.gguf"));
    assert_int_equal(ghost_errcode(NULL), GHOST_ERR_IO);
    assert_non_null(strstr(ghost_errmsg(NULL), "no-such-model.gguf"));

    char path[] = "/tmp/ghost_test_arch_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_gpt2_gguf(path);
    assert_null(ghost_model_load(path));
    assert_int_equal(ghost_errcode(NULL), GHOST_ERR_UNSUPPORTED);
    assert_non_null(strstr(ghost_errmsg(NULL), "'gpt2'"));
    assert_non_null(strstr(ghost_errmsg(NULL), "llama, qwen2"));
    unlink(path);

    assert_null(ghost_context_new(NULL, NULL));
    assert_int_equal(ghost_errcode(NULL), GHOST_ERR_INVALID_ARGUMENT);
    ghost_model *m = load_shared_model("stories260K.gguf");
    ghost_params p = greedy_params(-1, 8);
    assert_null(ghost_context_new(m, &p));
    assert_non_null(strstr(ghost_errmsg(NULL), "n_ctx"));
    p = greedy_params(64, 8);
    p.gen.top_p = 0.0f;
    assert_null(ghost_context_new(m, &p));
    assert_non_null(strstr(ghost_errmsg(NULL), "top_p"));

    p = greedy_params(64, 8);
    ghost_context *ctx = ghost_context_new(m, &p);
    assert_non_null(ctx);
    ghost_response *r = ghost_generate_ex(ctx, NULL, NULL, NULL, NULL);
    assert_int_equal(r->error_code, GHOST_ERR_INVALID_ARGUMENT);
    assert_non_null(r->error_message);
    assert_string_equal(r->text, "");
    ghost_free_response(r);
    ghost_gen_params gp = p.gen;
    gp.temperature = -1.0f;
    r = ghost_generate_ex(ctx, "Once", &gp, NULL, NULL);
    assert_int_equal(r->error_code, GHOST_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(ghost_errmsg(ctx), "temperature"));
    ghost_free_response(r);
    const char *empty_stop[] = {""};
    gp = p.gen;
    gp.stop = empty_stop;
    gp.n_stop = 1;
    r = ghost_generate_ex(ctx, "Once", &gp, NULL, NULL);
    assert_int_equal(r->error_code, GHOST_ERR_INVALID_ARGUMENT);
    ghost_free_response(r);
    r = ghost_generate_ex(NULL, "Once", NULL, NULL, NULL);
    assert_int_equal(r->error_code, GHOST_ERR_INVALID_ARGUMENT);
    ghost_free_response(r);

    char buf[16];
    assert_int_equal(ghost_token_to_piece(m, -1, buf, sizeof buf), -1);
    assert_int_equal(ghost_token_to_piece(m, 1 << 30, buf, sizeof buf), -1);
    char *text = NULL;
    const int32_t bad[] = {1, 99999};
    assert_int_equal(ghost_detokenize(m, bad, 2, &text), GHOST_ERR_BAD_INPUT);
    assert_null(text);
    const int32_t good[] = {403, 407, 261, 378};
    assert_int_equal(ghost_detokenize(m, good, 4, &text), GHOST_OK);
    assert_string_equal(text, " Once upon a time");
    ghost_free(text);
    ghost_free_context(ctx);
    ghost_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callback_cancel_after_5_pieces_gives_5_calls),
        cmocka_unit_test(test_stop_string_ends_the_answer_before_it),
        cmocka_unit_test(test_streaming_never_splits_a_utf8_character),
        cmocka_unit_test(test_prompt_that_does_not_fit_is_context_full),
        cmocka_unit_test(test_generation_reaching_the_window_stops_with_length),
        cmocka_unit_test(test_reused_prefix_gives_the_same_text_as_a_fresh_context),
        cmocka_unit_test(test_same_seed_gives_the_same_text),
        cmocka_unit_test(test_two_threads_sharing_a_model_get_identical_greedy_text),
        cmocka_unit_test(test_seed_api_streams_nul_terminated_pieces),
        cmocka_unit_test(test_invalid_arguments_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
