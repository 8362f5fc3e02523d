/*
 * sampler.h — choosing the next token from the logits (internal).
 *
 * A sampler holds one context's sampling state: the settings of the running
 * generation, a seeded random generator (same seed → same choices) and a
 * candidate buffer of n_vocab entries allocated once, so sampling allocates
 * nothing per token.
 *
 * The chain is llama.cpp's default order:
 *     repetition penalty → top-k → top-p → min-p → temperature → draw
 * Temperature 0 means greedy: the highest logit after the penalty (lowest id
 * on ties). The stages are exported so tests can check each one on
 * hand-made candidates.
 */
#ifndef GHOST_SAMPLER_H
#define GHOST_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"

typedef struct sampler_token {
    int32_t id;
    float logit;
    float p; /* probability, valid after sampler_softmax */
} sampler_token;

/* A candidate list; `sorted` means by logit descending (ties: id ascending). */
typedef struct sampler_cands {
    sampler_token *data;
    size_t n;
    bool sorted;
} sampler_cands;

/* xoshiro256** state. */
typedef struct sampler_rng {
    uint64_t s[4];
} sampler_rng;

typedef struct sampler sampler;

/* A sampler for a vocabulary of n_vocab tokens. NULL when out of memory (the
 * per-thread message is set). Free with sampler_destroy. */
sampler *sampler_create(int32_t n_vocab);
void sampler_destroy(sampler *s);
/* Takes the settings of a new generation and seeds the generator
 * (GHOST_SEED_RANDOM draws a seed from the OS). The caller validated p. */
void sampler_start(sampler *s, const ghost_gen_params *p);
/* The next token for logits[0..n_vocab); history holds the tokens so far
 * (prompt and answer), whose last repeat_last_n entries are penalised. */
int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history, size_t n_history);

/* ---- the stages, in chain order --------------------------------------------- */

/* c->data[i].id == i is required (the full, untouched vocabulary). Each
 * distinct token among last[0..n_last) gets logit / penalty (positive
 * logits) or logit * penalty (others) once. */
void sampler_penalize(sampler_cands *c, const int32_t *last, size_t n_last, float penalty);
/* Keeps the k best, sorted; k <= 0 leaves the list as it is. */
void sampler_top_k(sampler_cands *c, int32_t k);
/* Keeps the smallest sorted prefix whose probabilities sum to >= p (at least
 * one); p >= 1 keeps all. */
void sampler_top_p(sampler_cands *c, float p);
/* Keeps tokens whose probability is >= p times the best one's; p <= 0 keeps all. */
void sampler_min_p(sampler_cands *c, float p);
/* Divides logits by t; t <= 0 leaves only the best token. */
void sampler_temperature(sampler_cands *c, float t);
/* Sorts and fills p with the softmax of the logits. */
void sampler_softmax(sampler_cands *c);
/* Draws a token with probability p (calls sampler_softmax). */
int32_t sampler_draw(sampler_cands *c, sampler_rng *rng);

void sampler_rng_seed(sampler_rng *rng, uint64_t seed);
/* Uniform in [0, 1). */
double sampler_rng_uniform(sampler_rng *rng);

#endif
