/*
 * batch.h — one forward batch shared by several contexts (internal; used by
 * the server's slots, docs/server.md "Continuous batching").
 *
 * A context attached to a batcher (batch_attach) keeps its own KV cache,
 * sampler and generation logic (ghost_generate_ex), but hands its forward
 * calls to the batcher, which fuses the pending calls of all attached
 * contexts — prompt chunks of sequences that just joined and the next token
 * of running ones — into ONE forward_batch over their caches. A sequence
 * joins the running batch at the next step; none waits for another to end.
 *
 * Whoever submits when no forward runs becomes the leader: it waits briefly
 * until every context inside a generation has submitted (they only sample
 * between steps), gathers what fits, runs the batch on the batcher's own
 * scratch and thread pool, and wakes the others.
 */
#ifndef GHOST_BATCH_H
#define GHOST_BATCH_H

#include <stdint.h>

#include "ghostllm.h"
#include "model.h"

typedef struct batcher batcher;

/* A batcher for contexts over model m whose windows are at most n_ctx
 * positions, fusing up to n_batch items per step, with n_threads threads.
 * NULL on failure (per-thread message). Free with batch_destroy after every
 * attached context is freed. */
batcher *batch_create(const ghost_model *m, int32_t n_batch, int32_t n_ctx, int n_threads);
void batch_destroy(batcher *b);
/* A batcher for contexts like ctx (model, window) taking a whole prompt
 * chunk of ctx's size plus extra single items per step, on n_threads
 * threads (0 = one per online CPU). */
batcher *batch_create_like(const ghost_context *ctx, int32_t extra, int n_threads);
/* Routes ctx's forward calls through b from now on; ctx must be over b's
 * model with a window of at most b's n_ctx (GHOST_ERR_INVALID_ARGUMENT). */
ghost_status batch_attach(ghost_context *ctx, batcher *b);

/* Statistics for /metrics: steps run, items evaluated, and the number of
 * sequences in the last and the largest step. */
typedef struct batch_stats {
    long long steps, items;
    int last_seqs, max_seqs;
} batch_stats;
void batch_get_stats(batcher *b, batch_stats *out);

/* ---- used by api.c ---- */
/* A generation starts / ends on an attached context: the leader waits for
 * members only. */
void batch_member_join(batcher *b);
void batch_member_leave(batcher *b);
/* forward_batch through the batcher; same contract. */
ghost_status batch_forward(batcher *b, const fwd_item *items, int32_t n);
int32_t batch_max_items(const batcher *b);
const ghost_model *batch_model(const batcher *b);
int32_t batch_window(const batcher *b);

#endif
