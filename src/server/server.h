/*
 * server.h — the map of `ghostflow serve`, an OpenAI-compatible HTTP server
 * over the ghostflow service (docs/server.md).
 *
 *   server.c   the libmicrohttpd daemon: listening socket, request bodies,
 *              dispatch to the handlers, responses, metrics, SSE
 *   gate.c     the route table and the checks made on the request line and
 *              headers before any body is read (method, size, API key), and
 *              the strict JSON body parser; no libmicrohttpd, no model
 *   api.c      the OpenAI / llama-server JSON shapes: request validation
 *              (every bad field named), response and chunk building, errors
 *   watch.c    the slow-sender watchdog: headers and body within a time
 *              bound, then at a minimum rate, or the connection is shut
 *   pool.c     the slots: N worker threads, each with its own engine context
 *              over the service's one loaded model, their forward calls
 *              fused into one batch per step, and a bounded job queue
 *   page.c     the built-in chat page served at "/"
 *
 * Threads: libmicrohttpd runs one thread per connection; a generation runs on
 * a slot's worker thread and hands its text to the connection's thread through
 * the job (srv_job) under the job's mutex. Every exchange is recorded with
 * gf_log_prompt / gf_log_response, so `ghostflow history` shows API traffic.
 */
#ifndef GF_SERVER_H
#define GF_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ghostflow.h"

#define SRV_MAX_STOP       16    /* stop strings per request */
#define SRV_STREAM_BACKLOG 65536 /* unsent bytes that pause a generation */

/* ---- configuration and lifetime (server.c) ------------------------------- */

typedef struct srv_config {
    const char *host;        /* numeric address or name to bind */
    uint16_t port;           /* 0 = any free port (srv_port says which) */
    int parallel;            /* slots = generations running at once */
    int queue;               /* requests waiting for a slot before 503 */
    int timeout_ms;          /* whole-request limit; idle connections too (rounded
                                up to whole seconds for those) */
    size_t max_body;         /* request bodies above are refused with 413 */
    int read_timeout_ms;     /* headers (and body) must have arrived by then... */
    size_t min_rate;         /* ...and the body at this many bytes/s after it */
    int max_per_client;      /* connections one client address may hold (< 0:
                                parallel + queue + 32) */
    const char *api_key;     /* NULL = no key required; only hashed, not kept */
    const char *host_allow;  /* more names for the Host header (comma list) */
    const char *cors_origin; /* cross-site Origins allowed (comma list) */
    const char *model_id;    /* the "model" name in answers and /v1/models */
    ghost_params context_params;
    ghost_gen_params gen; /* defaults for fields a request leaves out */
} srv_config;

typedef struct srv_server srv_server;

/* Starts listening and serving. NULL on failure with the reason in err. The
 * service (with a model) must outlive the server. Stop with srv_stop. */
srv_server *srv_start(gf_service *svc, const srv_config *cfg, char *err, size_t errcap);
uint16_t srv_port(const srv_server *srv);
/* Cancels running generations (their partial answers are stored), stops the
 * daemon, joins every thread and frees everything. NULL is a no-op. */
void srv_stop(srv_server *srv);

/* ---- metrics (server.c, updated by pool.c) ------------------------------- */

typedef struct srv_metrics {
    atomic_llong requests, errors, rejected, cancelled;
    atomic_llong prompt_tokens, completion_tokens;
    atomic_llong generation_us; /* summed over finished generations */
    atomic_llong slow_cut;      /* connections shut for sending too slowly */
} srv_metrics;

/* ---- errors in OpenAI's shape (api.c) ------------------------------------ */

typedef struct srv_error {
    int status;       /* HTTP status */
    const char *type; /* "invalid_request_error", ... */
    const char *code; /* NULL = null */
    char param[96];   /* "" = null */
    char message[512];
} srv_error;

/* Fills *e and returns -1, so validators can `return srv_fail(...)`. */
int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 413 for a body over max bytes (declared in Content-Length or found while
 * reading a chunked one). */
int srv_fail_too_large(srv_error *e, size_t max);
/* {"error": {"message", "type", "param", "code"}}; NULL when out of memory. */
char *srv_error_json(const srv_error *e);

/* ---- the gate (gate.c) --------------------------------------------------- */

typedef enum srv_route_id {
    SRV_R_PAGE,
    SRV_R_HEALTH,
    SRV_R_METRICS,
    SRV_R_MODELS,
    SRV_R_CHAT,
    SRV_R_COMPLETIONS,
    SRV_R_TOKENIZE,
    SRV_R_DETOKENIZE
} srv_route_id;

typedef struct srv_route {
    const char *path;
    const char *method;
    srv_route_id id;
    bool public; /* served without the API key */
} srv_route;

/* The route table (static, n entries). */
const srv_route *srv_routes(size_t *n);

typedef struct srv_header {
    const char *name, *value;
} srv_header;

/* A request as the gate sees it: strings borrowed from the caller. */
typedef struct srv_http_request {
    const char *method, *url, *version;
    const srv_header *headers;
    size_t n_headers;
} srv_http_request;

#define SRV_MAX_NAMES 32 /* entries of --host-allow and of --cors-origin */

/* What the gate enforces (srv_gate_init / srv_gate_free). */
typedef struct srv_gate {
    size_t max_body; /* declared bodies above are refused with 413 */
    uint16_t port;   /* the port a Host header without its own must mean */
    bool any_host;   /* --host-allow '*': no Host check */
    bool ip_hosts;   /* bound to a wildcard address: any IP literal is a Host */
    const char *hosts[SRV_MAX_NAMES + 4]; /* "name" (this port) or "name:port" */
    size_t n_hosts;
    bool any_origin; /* --cors-origin '*' */
    const char *origins[SRV_MAX_NAMES];
    size_t n_origins;
    char *lists; /* the copies hosts and origins point into */
    bool has_key;
    unsigned char key_hash[32]; /* BLAKE2b-256 of the API key */
} srv_gate;

/* Fills g for a server bound to bind_host:port. host_allow and cors_origin
 * are comma-separated lists (NULL = none); key NULL or "" = no key, else
 * only its digest is kept. -1 with the reason in err for a bad list. */
int srv_gate_init(srv_gate *g, const char *bind_host, uint16_t port, size_t max_body,
                  const char *host_allow, const char *cors_origin, const char *key, char *err,
                  size_t errcap);
void srv_gate_free(srv_gate *g);
/* The first value of header name (case-insensitive) or NULL; *count (may be
 * NULL) gets how many times it was sent. */
const char *srv_header_get(const srv_http_request *rq, const char *name, int *count);
/* What the gate let through. */
typedef struct srv_admit {
    const srv_route *route;
    const char *cors_origin; /* a cross-site Origin allowed by --cors-origin
                                (answers carry it back), else NULL */
    bool preflight;          /* an allowed CORS preflight (OPTIONS): 204 */
} srv_admit;

/* Admits rq to a route (*a filled, 0) or refuses it (-1, *e filled: 403 Host
 * or Origin not allowed, 404, 405, 413, 401). Decided from the request line
 * and headers alone. */
int srv_gate_check(const srv_gate *g, const srv_http_request *rq, srv_admit *a, srv_error *e);
/* Parses a request body as one JSON value (cJSON_Delete it); NULL with *e:
 * empty, invalid UTF-8, malformed, or data after the value. */
cJSON *srv_parse_body(const char *body, size_t len, srv_error *e);

/* ---- generation requests (api.c) ----------------------------------------- */

typedef struct srv_gen_request {
    bool chat; /* /v1/chat/completions (else /v1/completions) */
    bool stream;
    char *prompt;            /* the text the engine continues (malloc) */
    char *record;            /* the prompt as stored in the history (malloc) */
    char *label;             /* conversation label (malloc): from "user" (NULL when
                                absent) until the server settles it for the job */
    const char *label_param; /* where label came from ("user", "X-Conversation-Id"),
                                for errors about it; static */
    ghost_gen_params gen;    /* gen.stop points into stops */
    char *stops[SRV_MAX_STOP];
    const char *stop_ptrs[SRV_MAX_STOP];
} srv_gen_request;

/* Validates a parsed body for a completion endpoint and fills *out (free with
 * srv_gen_request_free, also after a failure). 0, or -1 with *e filled. */
int srv_parse_generation(const cJSON *body, bool chat, const ghost_model *model,
                         const ghost_gen_params *defaults, srv_gen_request *out, srv_error *e);
void srv_gen_request_free(srv_gen_request *r);

enum { SRV_BODY_GENERATE = 0, SRV_BODY_ANSWER = 1 };

/* The body stage of a POST route (chat, completions, tokenize, detokenize):
 * parses body strictly (srv_parse_body) and validates it for route.
 * SRV_BODY_GENERATE: *gen is ready for a slot (srv_gen_request_free it);
 * SRV_BODY_ANSWER: *answer is the 200 body (malloc); -1 with *e filled. The
 * server and the fuzz harness both go through here. */
int srv_handle_body(srv_route_id route, const char *body, size_t len, const ghost_model *model,
                    const ghost_gen_params *defaults, srv_gen_request *gen, char **answer,
                    srv_error *e);

/* /tokenize and /detokenize: the answer body (malloc) or NULL with *e. */
char *srv_tokenize(const cJSON *body, const ghost_model *model, srv_error *e);
char *srv_detokenize(const cJSON *body, const ghost_model *model, srv_error *e);

/* Checks that len bytes at s are UTF-8; false with the first bad offset. */
bool srv_utf8_valid(const char *s, size_t len, size_t *bad_offset);
/* Copies len bytes at s into out (cap bytes, NUL-terminated) as UTF-8: each
 * byte that does not form a character becomes U+FFFD, and the copy stops
 * before a character that does not fit. The bytes written. */
size_t srv_utf8_clean(char *out, size_t cap, const char *s, size_t len);

/* A whole answer (non-streaming), and the pieces of a stream. id is the
 * response id ("chatcmpl-..." / "cmpl-..."); NULL when out of memory. */
char *srv_completion_json(bool chat, const char *id, const char *model, int64_t created,
                          const ghost_response *r);
/* One SSE event "data: {...}\n\n" for text (may be NULL: the role opener of a
 * chat stream) or, when final, the chunk with finish_reason and usage. */
char *srv_chunk_event(bool chat, const char *id, const char *model, int64_t created,
                      const char *text, size_t len, const ghost_response *final);
const char *srv_finish_name(ghost_finish_reason r);
/* "data: <json>\n\n" from json (malloc memory, taken; NULL gives NULL). */
char *srv_sse_event(char *json);

/* ---- the slow-sender watchdog (watch.c) --------------------------------- */

typedef struct srv_watch srv_watch;
typedef struct srv_watched srv_watched; /* one connection */

/* Starts the watchdog thread; every connection cut adds 1 to *cut. NULL with
 * the reason in err. */
srv_watch *srv_watch_start(int read_timeout_ms, size_t min_rate, atomic_llong *cut, char *err,
                           size_t errcap);
/* Joins the thread and frees everything. NULL is a no-op. */
void srv_watch_stop(srv_watch *w);
/* Watches the connection on fd, reading from now; NULL when out of memory
 * (the connection then goes unwatched). */
srv_watched *srv_watch_add(srv_watch *w, int fd);
/* Before the connection's socket is closed. NULL is a no-op (also below). */
void srv_watch_remove(srv_watch *w, srv_watched *c);
/* The request's headers are complete. */
void srv_watch_headers(srv_watch *w, srv_watched *c);
/* n body bytes arrived. */
void srv_watch_body(srv_watch *w, srv_watched *c, size_t n);
/* reading: a new request is awaited from now (a kept-alive connection);
 * false: the request is in, a handler and the answer take over. */
void srv_watch_reading(srv_watch *w, srv_watched *c, bool reading);

/* ---- slots (pool.c) ------------------------------------------------------ */

typedef enum srv_job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE } srv_job_state;

/* One generation, shared by the connection's thread and a worker (refs). */
typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    srv_gen_request req; /* req.label names the conversation */
    srv_job_state state;
    bool cancel;        /* the client left or the request timed out */
    ghost_context *ctx; /* while running, for ghost_context_cancel */
    char *out;          /* streamed text not yet taken by the reader */
    size_t out_len, out_cap;
    /* results, valid once state is JOB_DONE */
    ghost_response *resp; /* NULL when the generation never ran */
    int64_t conversation_out, prompt_id;
    srv_error err; /* err.status != 0: the request failed */
    struct srv_job *next;
} srv_job;

typedef struct srv_pool srv_pool;

/* n slots over the service's model. NULL with the reason in err. */
srv_pool *srv_pool_create(gf_service *svc, int n, int queue, const ghost_params *params,
                          srv_metrics *metrics, char *err, size_t errcap);
/* Cancels everything running or queued (stored as cancelled) and joins the
 * workers; later submits are refused. The pool stays valid until destroyed. */
void srv_pool_stop(srv_pool *pool);
/* srv_pool_stop, then frees. NULL is a no-op. */
void srv_pool_destroy(srv_pool *pool);
/* A new job owning req (moved: *req is zeroed; req->label must be set), one
 * reference for the caller. NULL when out of memory. */
srv_job *srv_job_new(srv_gen_request *req);
void srv_job_release(srv_job *job);
/* Queues job (taking a reference); false when the queue is full (503). */
bool srv_pool_submit(srv_pool *pool, srv_job *job);
/* Asks job to stop (client gone, timeout); its answer is stored cancelled. */
void srv_job_cancel(srv_job *job);
/* srv_job_cancel, and a job still waiting in the queue leaves it at once (it
 * no longer counts against --queue) and is stored as cancelled on the
 * calling thread. */
void srv_pool_cancel(srv_pool *pool, srv_job *job);
void srv_pool_gauges(srv_pool *pool, int *queued, int *active, int *slots);
/* Continuous batching: forward steps run, items evaluated, and sequences in
 * the last and the largest step. */
void srv_pool_batch_stats(srv_pool *pool, long long *steps, long long *items, int *last, int *max);

/* ---- the chat page (page.c) ---------------------------------------------- */

extern const char srv_chat_page[];

#endif
