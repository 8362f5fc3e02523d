/*
 * threadpool.h — a persistent pool of worker threads for the forward pass.
 *
 * One pool belongs to one owner (a context today, a batch scheduler later)
 * and runs one job at a time: threadpool_run(p, fn, arg) calls fn(arg, i, n)
 * for every i in [0, n) — i = 0 on the calling thread, the others on the
 * workers — and returns when all calls have returned. The forward pass issues
 * a few dozen jobs per token, so starting one must be cheap: workers spin
 * briefly on an atomic generation counter before they sleep on a futex, and
 * the caller wakes sleepers only when there are some.
 *
 * Not reentrant: one thread drives a pool; fn must not call threadpool_run.
 */
#ifndef GHOST_THREADPOOL_H
#define GHOST_THREADPOOL_H

#include "ghostllm.h"

typedef struct threadpool threadpool;

/* fn(arg, ith, nth): do the ith of nth shares of the job. */
typedef void (*threadpool_fn)(void *arg, int ith, int nth);

/* A pool of n_threads threads in all, the caller included (n_threads - 1
 * workers). NULL when a thread cannot be started or memory is short (the
 * per-thread message says which). Free with threadpool_destroy. */
threadpool *threadpool_create(int n_threads);
/* Stops and joins the workers. NULL is a no-op. */
void threadpool_destroy(threadpool *p);
int threadpool_size(const threadpool *p);
/* Runs fn on every thread of the pool and waits for all of them. */
void threadpool_run(threadpool *p, threadpool_fn fn, void *arg);

#endif
