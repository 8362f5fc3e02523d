/*
 * watch.c — the server's guard against slow senders (slowloris): a request's
 * headers and body must arrive within a time bound and then at a minimum
 * rate, or its connection is shut down.
 *
 * libmicrohttpd's connection timeout is an idle timeout, renewed by every
 * byte, so a client sending one header line every few seconds holds its
 * connection (and one of the server's limited connections) for ever. Here
 * each connection is stamped when a read begins — at accept, and again when
 * the previous request on a kept-alive connection is done — and a watchdog
 * thread checks every connection still reading: past read_timeout_ms it must
 * have delivered its headers and at least min_rate body bytes per second
 * since then, else shutdown(2) ends it (the connection's thread sees the
 * socket fail and libmicrohttpd closes it).
 *
 * A connection is removed (srv_watch_remove) from libmicrohttpd's "closed"
 * notification, which comes before libmicrohttpd closes the socket, and the
 * watchdog shuts a socket down only under the list's lock: it never touches
 * a descriptor that was closed and reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/server.h"

struct srv_watched {
    int fd;
    int64_t since_ms;  /* when the current read began */
    size_t body_bytes; /* body bytes of the request being read */
    bool headers_in;   /* the request's headers are complete */
    bool reading;      /* false while a handler runs or an answer is sent */
    struct srv_watched *prev, *next;
};

struct srv_watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_watched *head;
    bool stop;
    int read_timeout_ms;
    size_t min_rate;   /* body bytes per second after read_timeout_ms */
    atomic_llong *cut; /* connections shut down so far (a metric) */
    pthread_t thread;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether c, reading since c->since_ms, has fallen behind at now. */
static bool too_slow(const srv_watch *w, const srv_watched *c, int64_t now)
{
    int64_t late = now - c->since_ms - w->read_timeout_ms;
    /* The headers are due within the bound whatever the rate (even 0). */
    return late > 0 &&
           (!c->headers_in || (double)c->body_bytes < (double)w->min_rate * (double)late / 1000.0);
}

static void *watch_main(void *arg)
{
    srv_watch *w = arg;
    /* Checked several times per bound, at most every 100 ms. */
    int64_t tick = w->read_timeout_ms / 4 < 100 ? w->read_timeout_ms / 4 : 100;
    if (tick < 5)
        tick = 5;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + tick * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        int64_t now = mono_ms();
        for (srv_watched *c = w->head; c && !w->stop; c = c->next) {
            if (c->reading && too_slow(w, c, now)) {
                shutdown(c->fd, SHUT_RDWR);
                c->reading = false;
                atomic_fetch_add(w->cut, 1);
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

srv_watch *srv_watch_start(int read_timeout_ms, size_t min_rate, atomic_llong *cut, char *err,
                           size_t errcap)
{
    srv_watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->read_timeout_ms = read_timeout_ms;
    w->min_rate = min_rate;
    w->cut = cut;
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc) {
        snprintf(err, errcap, "cannot start the read watchdog: %s", strerror(rc));
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void srv_watch_stop(srv_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    while (w->head) { /* only if libmicrohttpd stopped without its notifications */
        srv_watched *c = w->head;
        w->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

srv_watched *srv_watch_add(srv_watch *w, int fd)
{
    srv_watched *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->since_ms = mono_ms();
    c->reading = true;
    pthread_mutex_lock(&w->mu);
    c->next = w->head;
    if (w->head)
        w->head->prev = c;
    w->head = c;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void srv_watch_remove(srv_watch *w, srv_watched *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&w->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&w->mu);
    free(c);
}

void srv_watch_headers(srv_watch *w, srv_watched *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&w->mu);
    c->headers_in = true;
    pthread_mutex_unlock(&w->mu);
}

void srv_watch_body(srv_watch *w, srv_watched *c, size_t n)
{
    if (!c)
        return;
    pthread_mutex_lock(&w->mu);
    c->body_bytes += n;
    pthread_mutex_unlock(&w->mu);
}

void srv_watch_reading(srv_watch *w, srv_watched *c, bool reading)
{
    if (!c)
        return;
    pthread_mutex_lock(&w->mu);
    if (reading) {
        c->since_ms = mono_ms();
        c->body_bytes = 0;
        c->headers_in = false;
    }
    c->reading = reading;
    pthread_mutex_unlock(&w->mu);
}
