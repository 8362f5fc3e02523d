/*
 * pool.c — the server's slots: N worker threads, each owning one engine
 * context over the service's single loaded model, fed from a bounded FIFO of
 * jobs. A job runs one exchange the way ghostflow.h describes for a
 * generation made outside the service: the prompt is recorded
 * (gf_log_prompt) before any token is generated, the text streams into the
 * job's buffer for the connection's thread, and the answer is recorded
 * (gf_log_response) whatever the outcome — cancelled and failed ones with
 * their partial text.
 *
 * Continuous batching: every slot's context is attached to one batcher
 * (llm/batch.h), so the slots' forward calls — a joining request's prompt
 * chunk, each running request's next token — are fused into one forward
 * batch over their KV caches, run on the batcher's single thread pool. A
 * worker thread per slot keeps the per-sequence logic (sampling, stop
 * strings, streaming, cancellation) of ghost_generate_ex; a new request
 * joins the batch at the next step without waiting for the others.
 * A slot keeps its KV cache between jobs, so a chat that resends the same
 * history reuses its prefix when it lands on the same slot.
 *
 * Back-pressure: a generation whose client reads slower than it writes waits
 * once SRV_STREAM_BACKLOG bytes are unsent, so a stream's memory is bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "llm/batch.h"
#include "server/server.h"

struct srv_pool {
    gf_service *svc;
    srv_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *head, *tail;
    int n_queued, max_queued, n_active;
    bool stopping;
    int n_slots;
    ghost_context **ctx;
    batcher *batch; /* shared by every slot's context */
    pthread_t *threads;
    int n_threads;
};

/* ---- jobs ---------------------------------------------------------------- */

srv_job *srv_job_new(srv_gen_request *req)
{
    srv_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cv, NULL);
    job->refs = 1;
    job->req = *req;
    /* gen.stop pointed into the caller's struct: re-aim it at ours. */
    for (size_t i = 0; i < job->req.gen.n_stop; i++)
        job->req.stop_ptrs[i] = job->req.stops[i];
    job->req.gen.stop = job->req.gen.n_stop ? job->req.stop_ptrs : NULL;
    memset(req, 0, sizeof *req);
    return job;
}

void srv_job_release(srv_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&job->mu);
    int left = --job->refs;
    pthread_mutex_unlock(&job->mu);
    if (left > 0)
        return;
    srv_gen_request_free(&job->req);
    ghost_free_response(job->resp);
    free(job->out);
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    free(job);
}

void srv_job_cancel(srv_job *job)
{
    pthread_mutex_lock(&job->mu);
    job->cancel = true;
    if (job->ctx) /* also stops prompt processing, which has no callback */
        ghost_context_cancel(job->ctx);
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
}

/* ghost_stream_fn: hands a piece to the reader; waits while the client lags. */
static int job_on_piece(const char *piece, size_t len, void *user)
{
    srv_job *job = user;
    pthread_mutex_lock(&job->mu);
    while (job->out_len >= SRV_STREAM_BACKLOG && !job->cancel)
        pthread_cond_wait(&job->cv, &job->mu);
    int stop = job->cancel;
    if (!stop && job->req.stream) { /* non-streaming answers come whole from resp */
        if (job->out_len + len + 1 > job->out_cap) {
            size_t cap = job->out_cap ? job->out_cap : 1024;
            while (cap < job->out_len + len + 1)
                cap *= 2;
            char *nb = realloc(job->out, cap);
            if (!nb) {
                pthread_mutex_unlock(&job->mu);
                return 1; /* out of memory: stop; the answer so far is stored */
            }
            job->out = nb;
            job->out_cap = cap;
        }
        memcpy(job->out + job->out_len, piece, len);
        job->out_len += len;
        pthread_cond_broadcast(&job->cv);
    }
    pthread_mutex_unlock(&job->mu);
    return stop;
}

/* Marks job done with its outcome and wakes the connection's thread. A slot
 * (ctx != NULL) counts itself free first: the client may send its next
 * request the moment it is woken, and must find the room it left. */
static void job_finish(srv_pool *pool, ghost_context *ctx, srv_job *job, ghost_response *resp)
{
    if (ctx) {
        pthread_mutex_lock(&pool->mu);
        pool->n_active--;
        pthread_mutex_unlock(&pool->mu);
    }
    pthread_mutex_lock(&job->mu);
    job->resp = resp;
    job->ctx = NULL;
    job->state = JOB_DONE;
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
}

/* A response for a job that never reached the engine (cancelled while queued). */
static ghost_response *cancelled_response(void)
{
    ghost_response *r = calloc(1, sizeof *r);
    if (r) {
        r->text = strdup("");
        r->finish_reason = GHOST_FINISH_CANCELLED;
        r->error_code = GHOST_ERR_CANCELLED;
        if (!r->text) {
            free(r);
            r = NULL;
        }
    }
    return r;
}

static void run_job(srv_pool *pool, ghost_context *ctx, srv_job *job)
{
    ghost_gen_params gen = job->req.gen;
    if (gen.seed == GHOST_SEED_RANDOM) {
        /* gf_log_prompt stores the seed as given: draw one so the stored
         * exchange can be replayed. */
        uint64_t s = 0;
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
            s = (uint64_t)(uintptr_t)job ^ (uint64_t)time(NULL);
        gen.seed = s % (UINT64_C(1) << 53); /* exact in a JSON number */
    }
    /* The label is settled here, not on the connection's thread, so a busy
     * database holds up slots only, never the accepting of requests. */
    int64_t conv = 0, pid = 0;
    gf_status rc = gf_conversation_for_label(pool->svc, job->req.label, &conv);
    if (rc != GF_OK) {
        srv_fail(&job->err, rc == GF_ERR_INVALID_ARGUMENT ? 400 : 500, job->req.label_param, "%s",
                 gf_errmsg(pool->svc)); /* it says "conversation label: ..." */
        job_finish(pool, ctx, job, NULL);
        return;
    }
    rc = gf_log_prompt(pool->svc, conv, job->req.record, &gen, &conv, &pid);
    if (rc != GF_OK) {
        srv_fail(&job->err, rc == GF_ERR_INVALID_ARGUMENT || rc == GF_ERR_NOT_FOUND ? 400 : 500, "",
                 "%s", gf_errmsg(pool->svc)); /* it says "storing the prompt: ..." */
        job_finish(pool, ctx, job, NULL);
        return;
    }
    pthread_mutex_lock(&job->mu);
    job->conversation_out = conv;
    job->prompt_id = pid;
    bool cancelled = job->cancel;
    if (!cancelled) {
        job->ctx = ctx;
        job->state = JOB_RUNNING;
    }
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);

    ghost_response *resp = cancelled
                               ? cancelled_response()
                               : ghost_generate_ex(ctx, job->req.prompt, &gen, job_on_piece, job);
    if (!resp) {
        srv_fail(&job->err, 500, "", "out of memory during generation");
        job_finish(pool, ctx, job, NULL);
        return;
    }
    /* Recorded whatever happened: cancelled and failed answers keep their text. */
    if (gf_log_response(pool->svc, pid, resp) != GF_OK)
        srv_fail(&job->err, 500, "", "%s", gf_errmsg(pool->svc)); /* "storing the answer: ..." */
    if (resp->finish_reason == GHOST_FINISH_ERROR && !job->err.status) {
        bool full =
            resp->error_code == GHOST_ERR_CONTEXT_FULL || resp->error_code == GHOST_ERR_BAD_INPUT;
        srv_fail(&job->err, full ? 400 : 500, full ? (job->req.chat ? "messages" : "prompt") : "",
                 "%s", resp->error_message ? resp->error_message : "generation failed");
    }
    srv_metrics *m = pool->metrics;
    atomic_fetch_add(&m->prompt_tokens, resp->prompt_tokens);
    atomic_fetch_add(&m->completion_tokens, resp->completion_tokens);
    atomic_fetch_add(&m->generation_us, (long long)((resp->prompt_ms + resp->generation_ms) * 1e3));
    if (resp->finish_reason == GHOST_FINISH_CANCELLED)
        atomic_fetch_add(&m->cancelled, 1);
    job_finish(pool, ctx, job, resp);
}

/* ---- the pool ------------------------------------------------------------ */

typedef struct worker_arg {
    srv_pool *pool;
    int slot;
} worker_arg;

static void *worker_main(void *arg)
{
    srv_pool *pool = ((worker_arg *)arg)->pool;
    int slot = ((worker_arg *)arg)->slot;
    free(arg);
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->cv, &pool->mu);
        if (!pool->head)
            break; /* stopping and drained */
        srv_job *job = pool->head;
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->n_queued--;
        pool->n_active++;
        if (pool->stopping)
            srv_job_cancel(job);
        pthread_mutex_unlock(&pool->mu);
        run_job(pool, pool->ctx[slot], job); /* counts the slot free again */
        srv_job_release(job);
        pthread_mutex_lock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

srv_pool *srv_pool_create(gf_service *svc, int n, int queue, const ghost_params *params,
                          srv_metrics *metrics, char *err, size_t errcap)
{
    srv_pool *pool = calloc(1, sizeof *pool);
    if (!pool || !(pool->ctx = calloc((size_t)n, sizeof *pool->ctx)) ||
        !(pool->threads = calloc((size_t)n, sizeof *pool->threads))) {
        snprintf(err, errcap, "slots: out of memory");
        if (pool)
            free(pool->ctx);
        free(pool);
        return NULL;
    }
    pool->svc = svc;
    pool->metrics = metrics;
    pool->max_queued = queue;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    /* The slots' own thread pools would sit idle: the batcher runs every
     * forward pass, on params->n_threads threads. */
    ghost_params slot_params = *params;
    slot_params.n_threads = 1;
    for (int i = 0; i < n; i++) {
        pool->ctx[i] = ghost_context_new(gf_service_model(svc), &slot_params);
        if (!pool->ctx[i]) {
            snprintf(err, errcap, "slot %d of %d: %s", i + 1, n, ghost_errmsg(NULL));
            srv_pool_destroy(pool);
            return NULL;
        }
        pool->n_slots = i + 1;
        if (i == 0 && !(pool->batch = batch_create_like(pool->ctx[0], n, params->n_threads))) {
            snprintf(err, errcap, "slots: batch of %d: %s", n, ghost_errmsg(NULL));
            srv_pool_destroy(pool);
            return NULL;
        }
        if (batch_attach(pool->ctx[i], pool->batch) != GHOST_OK) {
            snprintf(err, errcap, "slot %d of %d: %s", i + 1, n, ghost_errmsg(NULL));
            srv_pool_destroy(pool);
            return NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        int prc = a ? 0 : ENOMEM;
        if (a) {
            *a = (worker_arg){pool, i};
            prc = pthread_create(&pool->threads[i], NULL, worker_main, a);
            if (prc)
                free(a);
        }
        if (prc) {
            snprintf(err, errcap, "slot %d: cannot start a thread: %s", i + 1, strerror(prc));
            srv_pool_destroy(pool);
            return NULL;
        }
        pool->n_threads = i + 1;
    }
    return pool;
}

void srv_pool_stop(srv_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    bool first = !pool->stopping;
    pool->stopping = true;
    /* Queued jobs are cancelled as workers take them; running ones now. */
    for (srv_job *j = pool->head; j; j = j->next)
        srv_job_cancel(j);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    if (!first)
        return;
    for (int i = 0; i < pool->n_slots; i++)
        ghost_context_cancel(pool->ctx[i]);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pool->n_threads = 0;
}

void srv_pool_destroy(srv_pool *pool)
{
    if (!pool)
        return;
    srv_pool_stop(pool);
    for (int i = 0; i < pool->n_slots; i++)
        ghost_free_context(pool->ctx[i]);
    batch_destroy(pool->batch);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool->ctx);
    free(pool);
}

void srv_pool_cancel(srv_pool *pool, srv_job *job)
{
    srv_job_cancel(job);
    pthread_mutex_lock(&pool->mu);
    srv_job **at = &pool->head, *prev = NULL;
    while (*at && *at != job) {
        prev = *at;
        at = &(*at)->next;
    }
    bool queued = *at == job;
    if (queued) {
        *at = job->next;
        if (pool->tail == job)
            pool->tail = prev;
        pool->n_queued--;
    }
    pthread_mutex_unlock(&pool->mu);
    if (queued) { /* no slot will take it: record it here, then drop the queue's reference */
        run_job(pool, NULL, job);
        srv_job_release(job);
    }
}

bool srv_pool_submit(srv_pool *pool, srv_job *job)
{
    pthread_mutex_lock(&pool->mu);
    /* Free slots take jobs at once; beyond them the queue holds max_queued. */
    int free_slots = pool->n_slots - pool->n_active;
    bool ok = !pool->stopping && pool->n_queued + 1 <= pool->max_queued + free_slots;
    if (ok) {
        pthread_mutex_lock(&job->mu);
        job->refs++;
        pthread_mutex_unlock(&job->mu);
        job->next = NULL;
        if (pool->tail)
            pool->tail->next = job;
        else
            pool->head = job;
        pool->tail = job;
        pool->n_queued++;
        pthread_cond_signal(&pool->cv);
    }
    pthread_mutex_unlock(&pool->mu);
    return ok;
}

void srv_pool_batch_stats(srv_pool *pool, long long *steps, long long *items, int *last, int *max)
{
    batch_stats bs;
    batch_get_stats(pool->batch, &bs);
    *steps = bs.steps;
    *items = bs.items;
    *last = bs.last_seqs;
    *max = bs.max_seqs;
}

void srv_pool_gauges(srv_pool *pool, int *queued, int *active, int *slots)
{
    pthread_mutex_lock(&pool->mu);
    *queued = pool->n_queued;
    *active = pool->n_active;
    *slots = pool->n_slots;
    pthread_mutex_unlock(&pool->mu);
}
