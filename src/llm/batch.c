/*
 * batch.c — continuous batching: several contexts' forward calls fused into
 * one forward_batch (see batch.h for the protocol). Each submission is taken
 * whole, so a context's own items stay in order within a step; a step holds
 * at most n_batch items, and what does not fit waits for the next one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "llm_internal.h"

/* How long a leader waits for members still sampling (or blocked in their
 * stream callback) before running without them. */
#define GATHER_WAIT_NS 2000000L

typedef struct batch_req {
    const fwd_item *items;
    int32_t n;
    bool done;
    ghost_status status;
    char msg[GHOST_ERRMSG_MAX];
    struct batch_req *next;
} batch_req;

struct batcher {
    fwd_state *fwd;
    int32_t n_batch, n_ctx;
    const ghost_model *model;
    fwd_item *items;   /* the fused step */
    batch_req **taken; /* its submissions (each has >= 1 item) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_req *head; /* pending submissions, oldest first */
    int n_pending, n_members;
    bool busy; /* a leader is gathering or running */
    batch_stats stats;
};

batcher *batch_create(const ghost_model *m, int32_t n_batch, int32_t n_ctx, int n_threads)
{
    if (m == NULL || n_batch < 1 || n_ctx < 1 || n_threads < 1) {
        ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "batcher: bad model, batch, window or threads");
        return NULL;
    }
    batcher *b = calloc(1, sizeof *b);
    if (b == NULL || (b->items = malloc((size_t)n_batch * sizeof *b->items)) == NULL ||
        (b->taken = malloc((size_t)n_batch * sizeof *b->taken)) == NULL) {
        if (b)
            free(b->items);
        free(b);
        ghost_set_error(GHOST_ERR_NOMEM, "batcher: out of memory for %d items", n_batch);
        return NULL;
    }
    if ((b->fwd = fwd_state_create(m, n_batch, n_ctx, n_threads)) == NULL) {
        free(b->taken);
        free(b->items);
        free(b);
        return NULL;
    }
    b->model = m;
    b->n_batch = n_batch;
    b->n_ctx = n_ctx;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    return b;
}

void batch_destroy(batcher *b)
{
    if (b == NULL)
        return;
    fwd_state_destroy(b->fwd);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b->taken);
    free(b->items);
    free(b);
}

int32_t batch_max_items(const batcher *b)
{
    return b->n_batch;
}
const ghost_model *batch_model(const batcher *b)
{
    return b->model;
}
int32_t batch_window(const batcher *b)
{
    return b->n_ctx;
}

void batch_member_join(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->n_members++;
    pthread_mutex_unlock(&b->mu);
}

void batch_member_leave(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->n_members--;
    pthread_cond_broadcast(&b->cv); /* a leader may be waiting for this member */
    pthread_mutex_unlock(&b->mu);
}

void batch_get_stats(batcher *b, batch_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

static void req_result(batch_req *r, ghost_status st)
{
    r->status = st;
    if (st != GHOST_OK)
        snprintf(r->msg, sizeof r->msg, "%s", ghost_thread_errmsg());
}

/* Runs the taken submissions as one step (called without the lock). A
 * failure leaves every cache untouched, so it is retried one submission at
 * a time to pin the error on the one that caused it. */
static void run_step(batcher *b, batch_req **taken, int k, int32_t total)
{
    int32_t at = 0;
    for (int i = 0; i < k; i++) {
        memcpy(b->items + at, taken[i]->items, (size_t)taken[i]->n * sizeof *b->items);
        at += taken[i]->n;
    }
    ghost_status st = forward_batch(b->fwd, b->items, total);
    if (st == GHOST_OK || k == 1) {
        for (int i = 0; i < k; i++)
            req_result(taken[i], st);
        return;
    }
    for (int i = 0; i < k; i++)
        req_result(taken[i], forward_batch(b->fwd, taken[i]->items, taken[i]->n));
}

/* Leader: waits for the members, takes what fits (oldest first), runs it. */
static void lead(batcher *b)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += GATHER_WAIT_NS;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (b->n_pending < b->n_members)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &dl) == ETIMEDOUT)
            break;
    batch_req **taken = b->taken;
    int k = 0;
    int32_t total = 0;
    for (batch_req **pp = &b->head; *pp;) {
        batch_req *r = *pp;
        if (total + r->n > b->n_batch) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        taken[k++] = r;
        total += r->n;
        b->n_pending--;
    }
    pthread_mutex_unlock(&b->mu);
    run_step(b, taken, k, total);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < k; i++)
        taken[i]->done = true;
    b->stats.steps++;
    b->stats.items += total;
    b->stats.last_seqs = k;
    if (k > b->stats.max_seqs)
        b->stats.max_seqs = k;
    b->busy = false;
    pthread_cond_broadcast(&b->cv);
}

ghost_status batch_forward(batcher *b, const fwd_item *items, int32_t n)
{
    if (n < 1 || n > b->n_batch)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "batch: %d items (1..%d allowed)", n,
                               b->n_batch);
    batch_req req = {.items = items, .n = n};
    pthread_mutex_lock(&b->mu);
    batch_req **pp = &b->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = &req;
    b->n_pending++;
    pthread_cond_broadcast(&b->cv);
    while (!req.done) {
        if (!b->busy) {
            b->busy = true;
            lead(b);
        } else {
            pthread_cond_wait(&b->cv, &b->mu);
        }
    }
    pthread_mutex_unlock(&b->mu);
    if (req.status != GHOST_OK)
        return ghost_set_error(req.status, "%s", req.msg);
    return GHOST_OK;
}
