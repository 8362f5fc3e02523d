/*
 * writer.c — the service's database writer: one thread that runs prompt
 * transactions while the thread that asked for them goes on formatting the
 * conversation and running the prefill.
 *
 * Why: a WAL commit costs tens of microseconds (locks on the -shm index,
 * encrypting and appending the pages), which is several per cent of a short
 * generation on a small model. The prompt's commit has to finish before
 * anything of the answer reaches the caller (exchange.c holds streamed
 * pieces back until then, and waits for it before storing the answer), not
 * before the engine starts; so it can overlap the generation. The answer's commit
 * stays on the caller's thread: handing it over would add a thread wake-up to
 * the very path it is meant to shorten.
 *
 * Checkpoints: SQLite's automatic checkpoint copies the WAL back into the
 * database on whichever commit crosses 1000 pages — several milliseconds
 * (every page decrypted, re-encrypted, two fsyncs) landing on one unlucky
 * request, about one in two hundred. A WAL hook replaces it: the commit
 * that crosses the threshold only flags the writer, which checkpoints
 * (PASSIVE: it never waits for readers or writers) on a connection of its
 * own (zqlite_open_another: same keys, no second key derivation), so the
 * service's commits go on meanwhile instead of waiting for db_mu. Without
 * that connection it checkpoints on the service's, under db_mu.
 *
 * Scheduling: the thread runs as SCHED_BATCH, so waking it never preempts
 * the submitter (on a busy machine the kernel would otherwise often run the
 * writer at once on the submitter's own CPU, and the submitter would sit out
 * the whole commit). A waiter whose job has not started yet takes it back and
 * runs it itself: overlapping can only save time, never add a scheduling
 * delay to the exchange.
 *
 * A job lives in its submitter's stack frame; the submitter must call
 * flow_writer_wait before that frame ends, on every path. Jobs run in
 * submission order, each under db_mu like every other database access.
 * Without a writer thread (a failed pthread_create) jobs run inline in
 * flow_writer_submit and SQLite checkpoints by itself: same results, no
 * overlap.
 */
#include <sched.h>
#include <stdio.h>

#include "flow_internal.h"

static void run_job(gf_service *svc, flow_write *job)
{
    job->status = job->run(svc, job->arg);
    /* The message is in this thread's slot: carry it to the waiter's. */
    if (job->status != GF_OK)
        snprintf(job->msg, sizeof job->msg, "%s", gf_errmsg(svc));
}

/* Failures are left for the next one: the WAL only grows meanwhile, as it
 * does while a reader in another process holds old pages. */
static void checkpoint(gf_service *svc)
{
    static const char sql[] = "PRAGMA wal_checkpoint(PASSIVE)";
    pthread_mutex_lock(&svc->ckpt_mu);
    bool done = svc->ckpt_db != NULL;
    if (done)
        zqlite_free_result(zqlite_execute(svc->ckpt_db, sql));
    pthread_mutex_unlock(&svc->ckpt_mu);
    if (!done && flow_db_lock(svc) == GF_OK) {
        zqlite_free_result(zqlite_execute(svc->db, sql));
        flow_db_unlock(svc);
    }
}

/* Best effort: NULL leaves checkpoints on the service's connection. It
 * copies pages from the WAL to the file, through no page cache to speak of. */
static void open_checkpoint_db(gf_service *svc)
{
    zqlite_open_options o = zqlite_default_open_options();
    o.cache_kib = 256;
    svc->ckpt_db = zqlite_open_another(svc->db, &o);
}

void flow_writer_pause_checkpoints(gf_service *svc)
{
    if (!svc->wr_init)
        return;
    pthread_mutex_lock(&svc->ckpt_mu);
    zqlite_close(svc->ckpt_db);
    svc->ckpt_db = NULL;
}

void flow_writer_resume_checkpoints(gf_service *svc)
{
    if (!svc->wr_init)
        return;
    if (svc->wr_running)
        open_checkpoint_db(svc);
    pthread_mutex_unlock(&svc->ckpt_mu);
}

/* Runs inside a commit, db_mu held (so wr_mu nests under it). */
static int wal_grew(void *arg, zqlite_db *db, int wal_pages)
{
    (void)db;
    gf_service *svc = arg;
    if (wal_pages >= FLOW_CHECKPOINT_PAGES) {
        pthread_mutex_lock(&svc->wr_mu);
        if (!svc->wr_checkpoint) {
            svc->wr_checkpoint = true;
            pthread_cond_signal(&svc->wr_cv);
        }
        pthread_mutex_unlock(&svc->wr_mu);
    }
    return ZQLITE_OK;
}

static void *writer_main(void *arg)
{
    gf_service *svc = arg;
    /* Best effort: if refused, wake-ups may preempt the submitter. */
    struct sched_param sp = {.sched_priority = 0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    pthread_mutex_lock(&svc->wr_mu);
    for (;;) {
        while (!svc->wr_head && !svc->wr_checkpoint && !svc->wr_quit)
            pthread_cond_wait(&svc->wr_cv, &svc->wr_mu);
        flow_write *job = svc->wr_head;
        if (!job && svc->wr_checkpoint && !svc->wr_quit) {
            /* Jobs first: a prompt holds back its answer, a checkpoint
             * holds back nobody. */
            svc->wr_checkpoint = false;
            pthread_mutex_unlock(&svc->wr_mu);
            checkpoint(svc);
            pthread_mutex_lock(&svc->wr_mu);
            continue;
        }
        if (!job)
            break; /* quitting with an empty queue */
        svc->wr_head = job->next;
        if (!svc->wr_head)
            svc->wr_tail = NULL;
        pthread_mutex_unlock(&svc->wr_mu);
        run_job(svc, job);
        pthread_mutex_lock(&svc->wr_mu);
        job->done = true;
        pthread_cond_broadcast(&svc->wr_done_cv);
    }
    pthread_mutex_unlock(&svc->wr_mu);
    return NULL;
}

void flow_writer_start(gf_service *svc)
{
    pthread_mutex_init(&svc->wr_mu, NULL);
    pthread_cond_init(&svc->wr_cv, NULL);
    pthread_cond_init(&svc->wr_done_cv, NULL);
    pthread_mutex_init(&svc->ckpt_mu, NULL);
    svc->wr_init = true;
    svc->wr_running = pthread_create(&svc->wr_thread, NULL, writer_main, svc) == 0;
    if (svc->wr_running) {
        open_checkpoint_db(svc);
        zqlite_wal_hook(svc->db, wal_grew, svc);
    }
}

void flow_writer_stop(gf_service *svc)
{
    if (!svc->wr_init)
        return;
    if (svc->wr_running) {
        /* Closing checkpoints the whole WAL; commits until then (the search
         * index catch-up) need no hook. gf_close runs alone: no commit races. */
        zqlite_wal_hook(svc->db, NULL, NULL);
        pthread_mutex_lock(&svc->wr_mu);
        svc->wr_quit = true;
        pthread_cond_signal(&svc->wr_cv);
        pthread_mutex_unlock(&svc->wr_mu);
        pthread_join(svc->wr_thread, NULL);
        svc->wr_running = false;
    }
    /* Before the service's connection closes: the last one to close
     * checkpoints the whole WAL and deletes it. */
    zqlite_close(svc->ckpt_db);
    svc->ckpt_db = NULL;
    pthread_mutex_destroy(&svc->ckpt_mu);
    pthread_cond_destroy(&svc->wr_done_cv);
    pthread_cond_destroy(&svc->wr_cv);
    pthread_mutex_destroy(&svc->wr_mu);
    svc->wr_init = false;
}

void flow_writer_submit(gf_service *svc, flow_write *job)
{
    job->next = NULL;
    job->done = false;
    job->msg[0] = '\0';
    if (!svc->wr_running) {
        run_job(svc, job);
        job->done = true;
        return;
    }
    pthread_mutex_lock(&svc->wr_mu);
    if (svc->wr_tail)
        svc->wr_tail->next = job;
    else
        svc->wr_head = job;
    svc->wr_tail = job;
    pthread_mutex_unlock(&svc->wr_mu);
    /* After unlocking: the woken writer then finds wr_mu free. */
    pthread_cond_signal(&svc->wr_cv);
}

bool flow_writer_done(flow_write *job)
{
    return atomic_load_explicit(&job->done, memory_order_acquire);
}

/* Unlinks job if it is still queued; wr_mu held. */
static bool take_back(gf_service *svc, flow_write *job)
{
    flow_write *prev = NULL;
    for (flow_write *j = svc->wr_head; j; prev = j, j = j->next) {
        if (j != job)
            continue;
        if (prev)
            prev->next = j->next;
        else
            svc->wr_head = j->next;
        if (svc->wr_tail == j)
            svc->wr_tail = prev;
        return true;
    }
    return false;
}

gf_status flow_writer_wait(gf_service *svc, flow_write *job)
{
    if (svc->wr_running) {
        pthread_mutex_lock(&svc->wr_mu);
        bool mine = !job->done && take_back(svc, job);
        while (!mine && !job->done)
            pthread_cond_wait(&svc->wr_done_cv, &svc->wr_mu);
        pthread_mutex_unlock(&svc->wr_mu);
        if (mine) {
            run_job(svc, job);
            job->done = true;
        }
    }
    if (job->status != GF_OK)
        return flow_error(svc, job->status, "%s", job->msg);
    return GF_OK;
}
