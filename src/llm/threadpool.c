/*
 * threadpool.c — persistent workers that spin, then sleep on a futex.
 *
 * Protocol (all atomics sequentially consistent, which the sleep/wake
 * handshake relies on):
 *   start a job:  the caller stores fn/arg, sets `pending` to the number of
 *                 workers, increments `gen`, and issues FUTEX_WAKE on `gen`
 *                 only if `n_sleeping` is non-zero.
 *   a worker:     waits for `gen` to differ from the last generation it ran:
 *                 it spins SPIN_ITERS times, then increments `n_sleeping`,
 *                 re-reads `gen` and only then FUTEX_WAITs on the old value
 *                 (the kernel re-checks it, so a wake can never be lost).
 *                 After fn it decrements `pending`; the last one wakes the
 *                 caller if the caller went to sleep.
 *   the caller:   runs share 0 itself, then waits for `pending` to reach 0
 *                 the same way (spin, then futex on `pending`).
 * Every worker takes part in every job, so a job's parameters are never
 * read by a worker after the next job has replaced them.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "llm_internal.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* About 50-100 µs of spinning: longer than the gap between two jobs of one
 * token, much shorter than a user's pause between requests. */
#define SPIN_ITERS 2048

struct threadpool {
    int n;                    /* threads including the caller */
    pthread_t *threads;       /* n - 1 workers */
    _Atomic uint32_t gen;     /* job generation; futex word for workers */
    _Atomic uint32_t pending; /* workers still in the current job; futex word for the caller */
    _Atomic int n_sleeping;   /* workers blocked (or about to block) on gen */
    _Atomic int caller_sleeping;
    _Atomic int stop;
    threadpool_fn fn;
    void *arg;
};

typedef struct worker_arg {
    threadpool *pool;
    int ith;
} worker_arg;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Waits until *addr != val: spin first, then sleep, counting ourselves in
 * *sleepers while asleep. Returns the new value. */
static uint32_t wait_change(_Atomic uint32_t *addr, uint32_t val, _Atomic int *sleepers)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        uint32_t now = atomic_load(addr);
        if (now != val)
            return now;
        cpu_relax();
    }
    for (;;) {
        atomic_fetch_add(sleepers, 1);
        uint32_t now = atomic_load(addr);
        if (now == val)
            futex_wait(addr, val);
        atomic_fetch_sub(sleepers, 1);
        now = atomic_load(addr);
        if (now != val)
            return now;
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    threadpool *p = wa->pool;
    const int ith = wa->ith;
    free(wa);
    uint32_t seen = 0;
    for (;;) {
        seen = wait_change(&p->gen, seen, &p->n_sleeping);
        if (atomic_load(&p->stop))
            return NULL;
        p->fn(p->arg, ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping))
            futex_wake_all(&p->pending);
    }
}

threadpool *threadpool_create(int n_threads)
{
    if (n_threads < 1 || n_threads > 1024) {
        ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "thread pool: %d threads (want 1..1024)",
                        n_threads);
        return NULL;
    }
    threadpool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ghost_set_error(GHOST_ERR_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (p->threads == NULL) {
            free(p);
            ghost_set_error(GHOST_ERR_NOMEM, "thread pool: out of memory");
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa)
            *wa = (worker_arg){p, i};
        int rc = wa ? pthread_create(&p->threads[i - 1], NULL, worker_main, wa) : ENOMEM;
        if (rc != 0) {
            free(wa);
            p->n = i; /* join only the workers that exist */
            threadpool_destroy(p);
            ghost_set_error(GHOST_ERR_NOMEM, "thread pool: cannot start worker %d of %d: %s", i,
                            n_threads - 1, strerror(rc));
            return NULL;
        }
    }
    return p;
}

void threadpool_destroy(threadpool *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    futex_wake_all(&p->gen);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    free(p);
}

int threadpool_size(const threadpool *p)
{
    return p->n;
}

void threadpool_run(threadpool *p, threadpool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, (uint32_t)(p->n - 1));
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0)
        futex_wake_all(&p->gen);
    fn(arg, 0, p->n);
    uint32_t left = atomic_load(&p->pending);
    for (int i = 0; left != 0 && i < SPIN_ITERS; i++) {
        cpu_relax();
        left = atomic_load(&p->pending);
    }
    while (left != 0) {
        atomic_store(&p->caller_sleeping, 1);
        left = atomic_load(&p->pending);
        if (left != 0)
            futex_wait(&p->pending, left);
        atomic_store(&p->caller_sleeping, 0);
        left = atomic_load(&p->pending);
    }
}
