/*
 * server.c — the HTTP side of `ghostflow serve`: a libmicrohttpd daemon with
 * one thread per connection, routing, the API-key check, request bodies
 * (refused with 413 past cfg.max_body), JSON and SSE responses, /metrics.
 *
 * A completion request is validated (api.c), handed to a slot (pool.c) and
 * waited for on the connection's own thread. While it waits, the thread
 * polls the socket: a client that hangs up cancels its generation, whose
 * partial answer the slot stores as "cancelled". A request that outlives
 * cfg.timeout_s is cancelled the same way and answered 504 (or, mid-stream,
 * with an error event).
 *
 * Streaming: the response is a libmicrohttpd callback response; the reader
 * turns the text the slot produced since the last call into one OpenAI chunk
 * ("data: {...}\n\n"), then the final chunk (finish_reason, usage), then
 * "data: [DONE]".
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "server/server.h"

struct srv_server {
    gf_service *svc;
    const ghost_model *model;
    srv_config cfg;
    char *model_id;
    srv_gate gate;
    int listen_fd;
    uint16_t port;
    struct MHD_Daemon *daemon;
    srv_watch *watch;
    srv_pool *pool;
    srv_metrics metrics;
    int64_t started;
    atomic_ullong next_id;
};

/* A request as it arrives (freed when libmicrohttpd completes it): its
 * headers (strings owned by libmicrohttpd), the route the gate let it
 * through to, and its body. */
typedef struct srv_request {
    srv_header *headers;
    size_t n_headers, headers_cap;
    bool headers_oom;
    const srv_route *route;
    const char *cors_origin; /* echoed in Access-Control-Allow-Origin */
    char *body;
    size_t len, cap;
    size_t discarded; /* bytes dropped after the cap was passed */
    bool too_large;
} srv_request;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- responses ----------------------------------------------------------- */

/* Queues r (and lets go of it), with the CORS headers when the request came
 * from a site --cors-origin allows. */
static enum MHD_Result queue_response(struct MHD_Connection *c, const srv_request *rq, int status,
                                      struct MHD_Response *r)
{
    if (rq && rq->cors_origin) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, rq->cors_origin);
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Conversation-Id");
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Sends body (malloc memory, taken) with status; NULL body = out of memory. */
static enum MHD_Result send_text(srv_server *srv, struct MHD_Connection *c, const srv_request *rq,
                                 int status, const char *type, char *body, const char *hname,
                                 const char *hvalue)
{
    if (!body)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    if (status >= 400)
        atomic_fetch_add(&srv->metrics.errors, 1);
    return queue_response(c, rq, status, r);
}

static enum MHD_Result send_json(srv_server *srv, struct MHD_Connection *c, const srv_request *rq,
                                 int status, char *body, const char *hname, const char *hvalue)
{
    return send_text(srv, c, rq, status, "application/json", body, hname, hvalue);
}

static enum MHD_Result send_error(srv_server *srv, struct MHD_Connection *c, const srv_request *rq,
                                  const srv_error *e)
{
    const char *hname = e->status == 405   ? MHD_HTTP_HEADER_ALLOW
                        : e->status == 401 ? MHD_HTTP_HEADER_WWW_AUTHENTICATE
                                           : NULL;
    const char *hvalue = e->status == 405 ? e->param : "Bearer";
    if (e->status == 503)
        atomic_fetch_add(&srv->metrics.rejected, 1);
    return send_json(srv, c, rq, e->status, srv_error_json(e), hname, hvalue);
}

/* ---- waiting for a slot -------------------------------------------------- */

enum { WAIT_OK, WAIT_GONE, WAIT_TIMEOUT };

/* true when the peer closed or reset the connection. A client that only
 * half-closes (shutdown SHUT_WR) after its request counts as gone too. */
static bool peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Waits until job reaches state want (or, with or_text, has text to send).
 * A finished job wins over the deadline; otherwise the deadline is checked
 * on every wake-up, so a stream whose pieces keep coming still times out.
 * The client is checked every 50 ms of silence. */
static int wait_job(srv_job *job, srv_job_state want, bool or_text, int fd, int64_t deadline)
{
    int result = WAIT_OK;
    pthread_mutex_lock(&job->mu);
    while (job->state < want && job->state != JOB_DONE) {
        const int64_t now = now_ms();
        if (now >= deadline) {
            result = WAIT_TIMEOUT;
            break;
        }
        if (or_text && job->out_len > 0)
            break;
        const int64_t until_ms = now + 50 < deadline ? now + 50 : deadline;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const int64_t ns = ts.tv_nsec + (until_ms - now) * 1000000LL;
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        if (pthread_cond_timedwait(&job->cv, &job->mu, &ts) == ETIMEDOUT && fd >= 0 &&
            peer_gone(fd)) {
            result = WAIT_GONE;
            break;
        }
    }
    pthread_mutex_unlock(&job->mu);
    return result;
}

static int connection_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* ---- streaming ----------------------------------------------------------- */

enum { ST_ROLE, ST_TEXT, ST_FINAL, ST_DONE_MARK, ST_END };

typedef struct srv_stream {
    srv_server *srv;
    srv_job *job;
    int fd;
    int64_t deadline;
    char id[48];
    int64_t created;
    int phase;
    char *pending; /* the event being sent */
    size_t pend_len, pend_off;
} srv_stream;

static char *error_event(const srv_error *e)
{
    return srv_sse_event(srv_error_json(e));
}

/* The next event to send, or NULL at the end (*fail: out of memory / gone). */
static char *stream_next(srv_stream *st, bool *fail)
{
    srv_job *job = st->job;
    const char *model = st->srv->model_id;
    bool chat = job->req.chat;
    for (;;) {
        switch (st->phase) {
        case ST_ROLE:
            st->phase = ST_TEXT;
            if (chat) /* OpenAI opens a chat stream with the role alone */
                return srv_chunk_event(true, st->id, model, st->created, NULL, 0, NULL);
            break;
        case ST_TEXT: {
            int w = wait_job(job, JOB_DONE, true, st->fd, st->deadline);
            if (w == WAIT_GONE) {
                *fail = true;
                return NULL;
            }
            if (w == WAIT_TIMEOUT) {
                srv_pool_cancel(st->srv->pool, job);
                srv_error e;
                srv_fail(&e, 504, "", "request timed out after %g s (partial answer stored)",
                         st->srv->cfg.timeout_ms / 1000.0);
                atomic_fetch_add(&st->srv->metrics.errors, 1);
                st->phase = ST_DONE_MARK;
                return error_event(&e);
            }
            pthread_mutex_lock(&job->mu);
            char *ev = NULL;
            bool had_text = job->out_len > 0;
            if (had_text) {
                ev =
                    srv_chunk_event(chat, st->id, model, st->created, job->out, job->out_len, NULL);
                job->out_len = 0;
                pthread_cond_broadcast(&job->cv); /* a slot may wait on back-pressure */
            } else if (job->state == JOB_DONE) {
                st->phase = ST_FINAL;
            }
            pthread_mutex_unlock(&job->mu);
            if (had_text)
                return ev;
            break;
        }
        case ST_FINAL:
            st->phase = ST_DONE_MARK;
            if (job->err.status) {
                atomic_fetch_add(&st->srv->metrics.errors, 1);
                return error_event(&job->err);
            }
            if (job->resp)
                return srv_chunk_event(chat, st->id, model, st->created, NULL, 0, job->resp);
            break;
        case ST_DONE_MARK: st->phase = ST_END; return strdup("data: [DONE]\n\n");
        default: return NULL;
        }
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_stream *st = cls;
    while (st->pend_off == st->pend_len) {
        free(st->pending);
        st->pending = NULL;
        st->pend_len = st->pend_off = 0;
        if (st->phase == ST_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        bool fail = false;
        st->pending = stream_next(st, &fail);
        if (!st->pending) {
            if (fail || st->phase != ST_END) {
                srv_pool_cancel(st->srv->pool, st->job);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        st->pend_len = strlen(st->pending);
    }
    size_t n = st->pend_len - st->pend_off;
    if (n > max)
        n = max;
    memcpy(buf, st->pending + st->pend_off, n);
    st->pend_off += n;
    return (ssize_t)n;
}

/* Called when the response is done with — also when the client went away. */
static void stream_free(void *cls)
{
    srv_stream *st = cls;
    pthread_mutex_lock(&st->job->mu);
    bool unfinished = st->job->state != JOB_DONE;
    pthread_mutex_unlock(&st->job->mu);
    if (unfinished)
        srv_pool_cancel(st->srv->pool, st->job);
    srv_job_release(st->job);
    free(st->pending);
    free(st);
}

/* ---- completion endpoints ------------------------------------------------ */

/* Queues the validated request req (taken) and answers it. */
static enum MHD_Result handle_generation(srv_server *srv, struct MHD_Connection *c,
                                         const srv_request *rq, srv_gen_request req)
{
    srv_error e = {0};
    bool chat = req.chat;
    /* A conversation is named by a label, in requests and answers alike:
     * X-Conversation-Id, else the "user" field, else a fresh one drawn here.
     * The answer's X-Conversation-Id is that label, so a client that sends
     * it back continues the same conversation. */
    const char *param = "X-Conversation-Id";
    const char *label = MHD_lookup_connection_value(c, MHD_HEADER_KIND, param);
    if (!label || !label[0]) {
        label = req.label;
        param = "user";
    }
    char conv_label[257];
    if (!label) {
        unsigned char r[12];
        char hex[2 * sizeof r + 1];
        randombytes_buf(r, sizeof r);
        snprintf(conv_label, sizeof conv_label, "api-%s",
                 sodium_bin2hex(hex, sizeof hex, r, sizeof r));
        label = conv_label;
    }
    size_t bad, label_len = strlen(label);
    if (label_len >= sizeof conv_label || !srv_utf8_valid(label, label_len, &bad)) {
        srv_fail(&e, 400, param, "%s: not UTF-8 or longer than 256 bytes", param);
        srv_gen_request_free(&req);
        return send_error(srv, c, rq, &e);
    }
    if (label != conv_label)
        memcpy(conv_label, label, label_len + 1);
    req.label_param = param;
    free(req.label);
    if (!(req.label = strdup(conv_label))) {
        srv_gen_request_free(&req);
        srv_fail(&e, 500, "", "out of memory");
        return send_error(srv, c, rq, &e);
    }
    srv_job *job = srv_job_new(&req);
    if (!job) {
        srv_gen_request_free(&req);
        srv_fail(&e, 500, "", "out of memory");
        return send_error(srv, c, rq, &e);
    }
    if (!srv_pool_submit(srv->pool, job)) {
        srv_job_release(job);
        srv_fail(&e, 503, "", "all %d slots are busy and the queue is full; retry later",
                 srv->cfg.parallel);
        return send_error(srv, c, rq, &e);
    }
    int fd = connection_fd(c);
    int64_t deadline = now_ms() + srv->cfg.timeout_ms;
    bool stream = job->req.stream;
    int w = wait_job(job, stream ? JOB_RUNNING : JOB_DONE, false, fd, deadline);
    if (w == WAIT_GONE) {
        srv_pool_cancel(srv->pool, job);
        srv_job_release(job);
        return MHD_NO; /* nobody to answer: close */
    }
    if (w == WAIT_TIMEOUT) {
        srv_pool_cancel(srv->pool, job);
        srv_job_release(job);
        srv_fail(&e, 504, "", "request timed out after %g s (partial answer stored)",
                 srv->cfg.timeout_ms / 1000.0);
        return send_error(srv, c, rq, &e);
    }
    char id[48];
    snprintf(id, sizeof id, "%s-%llu", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)atomic_fetch_add(&srv->next_id, 1));
    int64_t created = (int64_t)time(NULL);

    pthread_mutex_lock(&job->mu);
    bool failed_early = job->state == JOB_DONE && (job->err.status || !job->resp);
    pthread_mutex_unlock(&job->mu);
    if (failed_early || !stream) {
        enum MHD_Result rc;
        if (job->err.status)
            rc = send_error(srv, c, rq, &job->err);
        else
            rc = send_json(srv, c, rq, 200,
                           srv_completion_json(chat, id, srv->model_id, created, job->resp),
                           "X-Conversation-Id", conv_label);
        srv_job_release(job);
        return rc;
    }
    srv_stream *st = calloc(1, sizeof *st);
    struct MHD_Response *r =
        st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free)
           : NULL;
    if (!r) {
        free(st);
        srv_pool_cancel(srv->pool, job);
        srv_job_release(job);
        return MHD_NO;
    }
    *st = (srv_stream){.srv = srv, .job = job, .fd = fd, .deadline = deadline, .created = created};
    memcpy(st->id, id, sizeof id);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Conversation-Id", conv_label);
    return queue_response(c, rq, 200, r); /* stream_free runs when MHD lets go of r */
}

/* ---- small endpoints ----------------------------------------------------- */

static enum MHD_Result handle_models(srv_server *srv, struct MHD_Connection *c,
                                     const srv_request *rq)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *data = root ? cJSON_AddArrayToObject(root, "data") : NULL;
    cJSON *m = data ? cJSON_CreateObject() : NULL;
    if (m && !cJSON_AddItemToArray(data, m)) {
        cJSON_Delete(m);
        m = NULL;
    }
    char *out = NULL;
    if (m && cJSON_AddStringToObject(root, "object", "list") &&
        cJSON_AddStringToObject(m, "id", srv->model_id) &&
        cJSON_AddStringToObject(m, "object", "model") &&
        cJSON_AddNumberToObject(m, "created", (double)srv->started) &&
        cJSON_AddStringToObject(m, "owned_by", "ghostflow")) {
        char *json = cJSON_PrintUnformatted(root);
        out = json ? strdup(json) : NULL;
        cJSON_free(json);
    }
    cJSON_Delete(root);
    return send_json(srv, c, rq, 200, out, NULL, NULL);
}

static enum MHD_Result handle_health(srv_server *srv, struct MHD_Connection *c,
                                     const srv_request *rq)
{
    int queued, active, slots;
    srv_pool_gauges(srv->pool, &queued, &active, &slots);
    char buf[160];
    snprintf(buf, sizeof buf,
             "{\"status\":\"ok\",\"slots_idle\":%d,\"slots_processing\":%d,\"queued\":%d}",
             slots - active, active, queued);
    return send_json(srv, c, rq, 200, strdup(buf), NULL, NULL);
}

/* The process's resident set (what "flat memory" is judged by); 0 when
 * /proc cannot say. */
static long long resident_bytes(void)
{
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static enum MHD_Result handle_metrics(srv_server *srv, struct MHD_Connection *c,
                                      const srv_request *rq)
{
    const srv_metrics *m = &srv->metrics;
    int queued, active, slots;
    srv_pool_gauges(srv->pool, &queued, &active, &slots);
    long long gen_us = atomic_load(&m->generation_us);
    long long out_tok = atomic_load(&m->completion_tokens);
    static const char fmt[] =
        "# HELP ghostflow_requests_total HTTP requests received.\n"
        "# TYPE ghostflow_requests_total counter\nghostflow_requests_total %lld\n"
        "# HELP ghostflow_errors_total Requests answered with an error.\n"
        "# TYPE ghostflow_errors_total counter\nghostflow_errors_total %lld\n"
        "# HELP ghostflow_rejected_total Requests refused with 503 (queue full).\n"
        "# TYPE ghostflow_rejected_total counter\nghostflow_rejected_total %lld\n"
        "# HELP ghostflow_cancelled_total Generations cancelled (client gone, timeout).\n"
        "# TYPE ghostflow_cancelled_total counter\nghostflow_cancelled_total %lld\n"
        "# HELP ghostflow_prompt_tokens_total Prompt tokens processed.\n"
        "# TYPE ghostflow_prompt_tokens_total counter\nghostflow_prompt_tokens_total %lld\n"
        "# HELP ghostflow_completion_tokens_total Tokens generated.\n"
        "# TYPE ghostflow_completion_tokens_total counter\n"
        "ghostflow_completion_tokens_total %lld\n"
        "# HELP ghostflow_generation_seconds_total Slot time spent in prompt and generation.\n"
        "# TYPE ghostflow_generation_seconds_total counter\n"
        "ghostflow_generation_seconds_total %.6f\n"
        "# HELP ghostflow_tokens_per_second Generated tokens per second of slot time.\n"
        "# TYPE ghostflow_tokens_per_second gauge\nghostflow_tokens_per_second %.3f\n"
        "# HELP ghostflow_queue_depth Requests waiting for a slot.\n"
        "# TYPE ghostflow_queue_depth gauge\nghostflow_queue_depth %d\n"
        "# HELP ghostflow_slots_active Slots generating now.\n"
        "# TYPE ghostflow_slots_active gauge\nghostflow_slots_active %d\n"
        "# HELP ghostflow_slots_total Slots configured.\n"
        "# TYPE ghostflow_slots_total gauge\nghostflow_slots_total %d\n"
        "# HELP ghostflow_batch_steps_total Forward batches run (all slots fused).\n"
        "# TYPE ghostflow_batch_steps_total counter\nghostflow_batch_steps_total %lld\n"
        "# HELP ghostflow_batch_items_total Tokens evaluated in forward batches.\n"
        "# TYPE ghostflow_batch_items_total counter\nghostflow_batch_items_total %lld\n"
        "# HELP ghostflow_batch_sequences Sequences in the last forward batch.\n"
        "# TYPE ghostflow_batch_sequences gauge\nghostflow_batch_sequences %d\n"
        "# HELP ghostflow_batch_sequences_max Most sequences seen in one forward batch.\n"
        "# TYPE ghostflow_batch_sequences_max gauge\nghostflow_batch_sequences_max %d\n"
        "# HELP ghostflow_slow_clients_cut_total Connections shut for sending too slowly.\n"
        "# TYPE ghostflow_slow_clients_cut_total counter\nghostflow_slow_clients_cut_total %lld\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n";
    long long b_steps, b_items;
    int b_last, b_max;
    srv_pool_batch_stats(srv->pool, &b_steps, &b_items, &b_last, &b_max);
    char *buf = malloc(sizeof fmt + 20 * 24);
    if (buf)
        snprintf(buf, sizeof fmt + 20 * 24, fmt, (long long)atomic_load(&m->requests),
                 (long long)atomic_load(&m->errors), (long long)atomic_load(&m->rejected),
                 (long long)atomic_load(&m->cancelled), (long long)atomic_load(&m->prompt_tokens),
                 out_tok, gen_us / 1e6, gen_us > 0 ? out_tok / (gen_us / 1e6) : 0.0, queued, active,
                 slots, b_steps, b_items, b_last, b_max, (long long)atomic_load(&m->slow_cut),
                 resident_bytes());
    return send_text(srv, c, rq, 200, "text/plain; version=0.0.4", buf, NULL, NULL);
}

/* The POST routes: the body decides between an answer and a generation. */
static enum MHD_Result handle_body(srv_server *srv, struct MHD_Connection *c, const srv_request *rq)
{
    srv_error e = {0};
    srv_gen_request req;
    char *answer;
    int rc = srv_handle_body(rq->route->id, rq->body, rq->len, srv->model, &srv->cfg.gen, &req,
                             &answer, &e);
    return rc < 0                  ? send_error(srv, c, rq, &e)
           : rc == SRV_BODY_ANSWER ? send_json(srv, c, rq, 200, answer, NULL, NULL)
                                   : handle_generation(srv, c, rq, req);
}

/* ---- routing ------------------------------------------------------------- */

/* The request's whole body has arrived: the handler of its route. */
static enum MHD_Result dispatch(srv_server *srv, struct MHD_Connection *c, const srv_request *rq)
{
    srv_error e = {0};
    if (rq->too_large) { /* chunked upload: known only once it passed the cap */
        srv_fail_too_large(&e, srv->cfg.max_body);
        return send_error(srv, c, rq, &e);
    }
    switch (rq->route->id) {
    case SRV_R_PAGE:
        return send_text(srv, c, rq, 200, "text/html; charset=utf-8", strdup(srv_chat_page), NULL,
                         NULL);
    case SRV_R_HEALTH: return handle_health(srv, c, rq);
    case SRV_R_METRICS: return handle_metrics(srv, c, rq);
    case SRV_R_MODELS: return handle_models(srv, c, rq);
    default: return handle_body(srv, c, rq);
    }
}

/* An allowed cross-site preflight: what the browser may send next. */
static enum MHD_Result send_preflight(struct MHD_Connection *c, const srv_request *rq)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Methods", rq->route->method);
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, X-Conversation-Id");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    return queue_response(c, rq, 204, r);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    srv_request *rq = cls;
    if (rq->n_headers == rq->headers_cap) {
        size_t cap = rq->headers_cap ? 2 * rq->headers_cap : 16;
        srv_header *nh = realloc(rq->headers, cap * sizeof *nh);
        if (!nh) {
            rq->headers_oom = true;
            return MHD_NO;
        }
        rq->headers = nh;
        rq->headers_cap = cap;
    }
    rq->headers[rq->n_headers++] = (srv_header){key, value ? value : ""};
    return MHD_YES;
}

/* The watchdog's record of connection c (NULL when it could not be made). */
static srv_watched *watched(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    srv_server *srv = cls;
    srv_request *rq = *con_cls;
    if (!rq) {
        /* The headers are complete and no body byte has been read: the gate
         * decides now, so a refused request is answered without reading
         * (or inviting, with 100 Continue) its body. */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        srv_watch_headers(srv->watch, watched(c));
        atomic_fetch_add(&srv->metrics.requests, 1);
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, rq);
        if (rq->headers_oom)
            return MHD_NO;
        srv_http_request hr = {method, url, version, rq->headers, rq->n_headers};
        srv_error e = {0};
        srv_admit a;
        int grc = srv_gate_check(&srv->gate, &hr, &a, &e);
        rq->route = a.route;
        rq->cors_origin = a.cors_origin;
        if (grc || a.preflight) /* answered now: the body is never read */
            srv_watch_reading(srv->watch, watched(c), false);
        if (grc)
            return send_error(srv, c, rq, &e);
        if (a.preflight)
            return send_preflight(c, rq);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        srv_watch_body(srv->watch, watched(c), n);
        if (!rq->too_large && rq->len + n > srv->cfg.max_body) {
            rq->too_large = true; /* chunked upload: known only now */
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
        }
        if (rq->too_large) {
            rq->discarded += n;
            return rq->discarded > 16 * srv->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            while (cap < rq->len + n + 1)
                cap *= 2;
            char *nb = realloc(rq->body, cap);
            if (!nb)
                return MHD_NO;
            rq->body = nb;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    srv_watch_reading(srv->watch, watched(c), false);
    return dispatch(srv, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    srv_server *srv = cls;
    srv_watch_reading(srv->watch, watched(c), true); /* the next request's turn */
    srv_request *rq = *con_cls;
    if (rq) {
        free(rq->headers);
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    srv_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = srv_watch_add(srv->watch, connection_fd(c));
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_watch_remove(srv->watch, *socket_context);
        *socket_context = NULL;
    }
}

/* ---- lifetime ------------------------------------------------------------ */

static int open_listener(const srv_config *cfg, uint16_t *port, char *err, size_t errcap)
{
    char service[8];
    snprintf(service, sizeof service, "%u", cfg->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int grc = getaddrinfo(cfg->host, service, &hints, &ai);
    if (grc) {
        snprintf(err, errcap, "host %s: %s", cfg->host, gai_strerror(grc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        int one = 1;
        if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
                        bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 128))) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, errcap, "cannot listen on %s:%u: %s", cfg->host, cfg->port,
                 strerror(saved ? saved : errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

srv_server *srv_start(gf_service *svc, const srv_config *cfg, char *err, size_t errcap)
{
    if (!gf_service_model(svc)) {
        snprintf(err, errcap, "the service has no model");
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise");
        return NULL;
    }
    srv_server *srv = calloc(1, sizeof *srv);
    if (!srv || !(srv->model_id = strdup(cfg->model_id))) {
        snprintf(err, errcap, "out of memory");
        free(srv);
        return NULL;
    }
    srv->svc = svc;
    srv->model = gf_service_model(svc);
    srv->cfg = *cfg;
    srv->cfg.api_key = NULL; /* only its digest is kept */
    srv->cfg.model_id = srv->model_id;
    srv->started = (int64_t)time(NULL);
    srv->listen_fd = -1;
    srv->pool = srv_pool_create(svc, cfg->parallel, cfg->queue, &cfg->context_params, &srv->metrics,
                                err, errcap);
    if (!srv->pool || (srv->listen_fd = open_listener(cfg, &srv->port, err, errcap)) < 0 ||
        srv_gate_init(&srv->gate, cfg->host, srv->port, cfg->max_body, cfg->host_allow,
                      cfg->cors_origin, cfg->api_key, err, errcap)) {
        srv_stop(srv);
        return NULL;
    }
    if (!(srv->watch = srv_watch_start(cfg->read_timeout_ms, cfg->min_rate, &srv->metrics.slow_cut,
                                       err, errcap))) {
        srv_stop(srv);
        return NULL;
    }
    /* Every slot and queue place may be waited for, plus 64 connections for
     * the rest (503s, /health, /metrics); one address may fill every slot and
     * queue place and still be answered 503 beyond them, but leaves 32 of
     * those to others. */
    unsigned max_conn = (unsigned)(cfg->parallel + cfg->queue + 64);
    unsigned per_client = cfg->max_per_client >= 0 ? (unsigned)cfg->max_per_client
                                                   : (unsigned)(cfg->parallel + cfg->queue + 32);
    srv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL, NULL,
        on_request, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((cfg->timeout_ms + 999) / 1000), MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errcap, "libmicrohttpd could not start on %s:%u", cfg->host, srv->port);
        srv_stop(srv);
        return NULL;
    }
    return srv;
}

uint16_t srv_port(const srv_server *srv)
{
    return srv->port;
}

void srv_stop(srv_server *srv)
{
    if (!srv)
        return;
    /* No new connections; a failed quiesce leaves the socket to MHD_stop_daemon. */
    if (srv->daemon && MHD_quiesce_daemon(srv->daemon) == MHD_INVALID_SOCKET)
        srv->listen_fd = -1;
    if (srv->pool)
        srv_pool_stop(srv->pool); /* waiting connections see their jobs end */
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv_watch_stop(srv->watch);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    srv_pool_destroy(srv->pool);
    srv_gate_free(&srv->gate);
    free(srv->model_id);
    free(srv);
}
