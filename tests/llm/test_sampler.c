/*
 * test_sampler.c — the sampling chain on hand-made logits: each stage's
 * semantics (penalty, top-k, top-p, min-p, temperature), greedy ties, the
 * draw following the probabilities, and seed determinism.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llm/sampler.h"

#define MAXV 64

/* Candidates with logits log(p) for the given probabilities. */
static sampler_cands cands_from_probs(sampler_token *buf, const double *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (sampler_token){(int32_t)i, (float)log(p[i]), 0.0f};
    return (sampler_cands){buf, n, false};
}

static sampler_cands cands_from_logits(sampler_token *buf, const float *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (sampler_token){(int32_t)i, l[i], 0.0f};
    return (sampler_cands){buf, n, false};
}

static void test_top_k_keeps_the_k_best_sorted(void **state)
{
    sampler_token buf[MAXV];
    const float l[] = {0.1f, 3.0f, -1.0f, 2.0f, 2.5f, 0.0f};
    sampler_cands c = cands_from_logits(buf, l, 6);
    sampler_top_k(&c, 3);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.data[0].id, 1);
    assert_int_equal(c.data[1].id, 4);
    assert_int_equal(c.data[2].id, 3);
    c = cands_from_logits(buf, l, 6);
    sampler_top_k(&c, 0); /* off */
    assert_int_equal(c.n, 6);
}

static void test_top_p_keeps_smallest_prefix_reaching_p(void **state)
{
    sampler_token buf[MAXV];
    const double p[] = {0.05, 0.5, 0.15, 0.3};
    sampler_cands c = cands_from_probs(buf, p, 4);
    sampler_top_p(&c, 0.75f); /* 0.5 + 0.3 >= 0.75 */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.data[0].id, 1);
    assert_int_equal(c.data[1].id, 3);
    c = cands_from_probs(buf, p, 4);
    sampler_top_p(&c, 0.85f); /* needs the 0.15 too */
    assert_int_equal(c.n, 3);
    c = cands_from_probs(buf, p, 4);
    sampler_top_p(&c, 0.01f); /* at least one */
    assert_int_equal(c.n, 1);
    c = cands_from_probs(buf, p, 4);
    sampler_top_p(&c, 1.0f);
    assert_int_equal(c.n, 4);
}

static void test_min_p_drops_tokens_below_a_fraction_of_the_best(void **state)
{
    sampler_token buf[MAXV];
    const double p[] = {0.5, 0.3, 0.15, 0.05};
    sampler_cands c = cands_from_probs(buf, p, 4);
    sampler_min_p(&c, 0.2f); /* threshold 0.1: drops 0.05 */
    assert_int_equal(c.n, 3);
    for (size_t i = 0; i < c.n; i++)
        assert_int_not_equal(c.data[i].id, 3);
    c = cands_from_probs(buf, p, 4);
    sampler_min_p(&c, 0.9f); /* only the best survives */
    assert_int_equal(c.n, 1);
    assert_int_equal(c.data[0].id, 0);
}

static void test_penalty_divides_positive_and_multiplies_negative_once(void **state)
{
    sampler_token buf[MAXV];
    const float l[] = {2.0f, -2.0f, 1.0f};
    sampler_cands c = cands_from_logits(buf, l, 3);
    const int32_t last[] = {0, 1, 0, 0, 99 /* out of range: ignored */};
    sampler_penalize(&c, last, 5, 2.0f);
    assert_float_equal(c.data[0].logit, 1.0f, 0.0f); /* once, although seen 3 times */
    assert_float_equal(c.data[1].logit, -4.0f, 0.0f);
    assert_float_equal(c.data[2].logit, 1.0f, 0.0f);
}

static void test_temperature_scales_and_zero_keeps_only_the_best(void **state)
{
    sampler_token buf[MAXV];
    const float l[] = {1.0f, 4.0f, 4.0f, -2.0f};
    sampler_cands c = cands_from_logits(buf, l, 4);
    sampler_temperature(&c, 2.0f);
    assert_float_equal(c.data[1].logit, 2.0f, 0.0f);
    assert_float_equal(c.data[3].logit, -1.0f, 0.0f);
    c = cands_from_logits(buf, l, 4);
    sampler_temperature(&c, 0.0f);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.data[0].id, 1); /* tie between 1 and 2: lowest id */
}

static void test_draw_follows_the_probabilities(void **state)
{
    sampler_token buf[MAXV];
    const double p[] = {0.7, 0.3};
    sampler_rng rng;
    sampler_rng_seed(&rng, 7);
    int n0 = 0;
    for (int i = 0; i < 20000; i++) {
        sampler_cands c = cands_from_probs(buf, p, 2);
        n0 += sampler_draw(&c, &rng) == 0;
    }
    assert_in_range(n0, 13600, 14400); /* 0.7 ± 0.02 */
}

static ghost_gen_params sampling_params(uint64_t seed)
{
    ghost_gen_params gp = ghost_default_gen_params();
    gp.temperature = 1.0f;
    gp.top_k = 0;
    gp.top_p = 1.0f;
    gp.min_p = 0.0f;
    gp.seed = seed;
    return gp;
}

static void draw_sequence(sampler *s, uint64_t seed, const float *logits, int32_t *out, int n)
{
    ghost_gen_params gp = sampling_params(seed);
    sampler_start(s, &gp);
    for (int i = 0; i < n; i++)
        out[i] = sampler_sample(s, logits, NULL, 0);
}

static void test_same_seed_gives_the_same_tokens(void **state)
{
    float logits[MAXV];
    for (int i = 0; i < MAXV; i++)
        logits[i] = (float)((i * 37) % 11) * 0.3f;
    sampler *s = sampler_create(MAXV);
    assert_non_null(s);
    int32_t a[100], b[100], c[100];
    draw_sequence(s, 1234, logits, a, 100);
    draw_sequence(s, 1234, logits, b, 100);
    draw_sequence(s, 1235, logits, c, 100);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    sampler_destroy(s);
}

static void test_chain_only_draws_from_the_top_k(void **state)
{
    float logits[MAXV];
    for (int i = 0; i < MAXV; i++)
        logits[i] = (float)(i % 7); /* best: ids with i % 7 == 6, then 5 */
    sampler *s = sampler_create(MAXV);
    assert_non_null(s);
    ghost_gen_params gp = sampling_params(99);
    gp.top_k = 3;
    sampler_start(s, &gp);
    for (int i = 0; i < 300; i++) {
        int32_t t = sampler_sample(s, logits, NULL, 0);
        assert_int_equal(t % 7, 6); /* the three best are 6, 13, 20 */
        assert_true(t <= 20);
    }
    sampler_destroy(s);
}

static void test_greedy_penalty_window_is_the_last_n_tokens(void **state)
{
    const float logits[2] = {2.5f, 3.0f};
    const int32_t history[] = {0, 1};
    sampler *s = sampler_create(2);
    assert_non_null(s);
    ghost_gen_params gp = ghost_default_gen_params();
    gp.temperature = 0.0f;
    gp.repeat_penalty = 2.0f;
    gp.repeat_last_n = 0; /* nothing penalised: token 1 wins */
    sampler_start(s, &gp);
    assert_int_equal(sampler_sample(s, logits, history, 2), 1);
    gp.repeat_last_n = 1; /* only the last token (1) penalised: 3 → 1.5 */
    sampler_start(s, &gp);
    assert_int_equal(sampler_sample(s, logits, history, 2), 0);
    gp.repeat_penalty = 1.0f;
    sampler_start(s, &gp);
    assert_int_equal(sampler_sample(s, logits, history, 2), 1);
    sampler_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_k_keeps_the_k_best_sorted),
        cmocka_unit_test(test_top_p_keeps_smallest_prefix_reaching_p),
        cmocka_unit_test(test_min_p_drops_tokens_below_a_fraction_of_the_best),
        cmocka_unit_test(test_penalty_divides_positive_and_multiplies_negative_once),
        cmocka_unit_test(test_temperature_scales_and_zero_keeps_only_the_best),
        cmocka_unit_test(test_draw_follows_the_probabilities),
        cmocka_unit_test(test_same_seed_gives_the_same_tokens),
        cmocka_unit_test(test_chain_only_draws_from_the_top_k),
        cmocka_unit_test(test_greedy_penalty_window_is_the_last_n_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
