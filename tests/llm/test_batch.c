/*
 * test_batch.c — continuous batching (src/llm/batch.h): contexts attached to
 * one batcher and generating on their own threads have their forward calls
 * fused into shared steps, and give exactly the answers they give alone.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ghostllm.h"
#include "llm/batch.h"
#include "llm/llm_test.h"

#define N_SEQ 4

static const char *const prompts[N_SEQ] = {
    "Once upon a time",
    "Lily had a red ball and",
    "The little dog ran to the park because it was sunny and",
    "Tom",
};

typedef struct worker {
    ghost_context *ctx;
    const char *prompt;
    pthread_barrier_t *start; /* the workers begin together */
    ghost_response *r;
} worker;

static void *run(void *p)
{
    worker *w = p;
    pthread_barrier_wait(w->start);
    w->r = ghost_generate_ex(w->ctx, w->prompt, NULL, NULL, NULL);
    return NULL;
}

static void test_fused_sequences_match_sequential_answers(void **state)
{
    (void)state;
    ghost_model *m = load_shared_model("TinyStories-656K-Q8_0.gguf");
    ghost_params p = greedy_params(256, 24);
    char *alone[N_SEQ];
    ghost_context *solo = ghost_context_new(m, &p);
    assert_non_null(solo);
    for (int i = 0; i < N_SEQ; i++) {
        ghost_context_reset(solo);
        ghost_response *r = ghost_generate_ex(solo, prompts[i], NULL, NULL, NULL);
        assert_int_equal(r->error_code, GHOST_OK);
        alone[i] = strdup(r->text);
        ghost_free_response(r);
    }
    ghost_free_context(solo);

    worker w[N_SEQ];
    pthread_t th[N_SEQ];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N_SEQ);
    batcher *b = NULL;
    for (int i = 0; i < N_SEQ; i++) {
        w[i] = (worker){.ctx = ghost_context_new(m, &p), .prompt = prompts[i], .start = &start};
        assert_non_null(w[i].ctx);
        if (i == 0)
            assert_non_null(b = batch_create_like(w[0].ctx, N_SEQ, 2));
        assert_int_equal(batch_attach(w[i].ctx, b), GHOST_OK);
    }
    /* An answer takes about a millisecond: on a busy machine the threads may
     * not overlap at once, so rounds repeat until some steps were shared. */
    batch_stats st = {0};
    for (int round = 0; round < 20 && st.max_seqs < 2; round++) {
        for (int i = 0; i < N_SEQ; i++) {
            ghost_context_reset(w[i].ctx);
            assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
        }
        for (int i = 0; i < N_SEQ; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(w[i].r->error_code, GHOST_OK);
            assert_string_equal(w[i].r->text, alone[i]);
            ghost_free_response(w[i].r);
        }
        batch_get_stats(b, &st);
    }
    for (int i = 0; i < N_SEQ; i++) {
        ghost_free_context(w[i].ctx);
        free(alone[i]);
    }
    pthread_barrier_destroy(&start);
    assert_true(st.max_seqs >= 2);    /* some steps held several sequences */
    assert_true(st.steps < st.items); /* so fewer steps than tokens */
    batch_destroy(b);
    ghost_model_free(m);
}

static void test_attach_refuses_a_wider_window(void **state)
{
    (void)state;
    ghost_model *m = load_shared_model("TinyStories-656K-Q8_0.gguf");
    ghost_params small = greedy_params(64, 4), wide = greedy_params(128, 4);
    ghost_context *a = ghost_context_new(m, &small), *c = ghost_context_new(m, &wide);
    batcher *b = batch_create_like(a, 0, 1);
    assert_non_null(b);
    assert_int_equal(batch_attach(c, b), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(batch_attach(a, b), GHOST_OK);
    ghost_free_context(a);
    ghost_free_context(c);
    batch_destroy(b);
    ghost_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_sequences_match_sequential_answers),
        cmocka_unit_test(test_attach_refuses_a_wider_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
