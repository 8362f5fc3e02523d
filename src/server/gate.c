/*
 * gate.c — what a request must pass before a handler sees it: the Host it
 * was sent to, the site that sent it (Origin), the route table, the method,
 * the declared body size and the API key, all decided from the request line
 * and headers alone, so a refused request is answered before its body is
 * read (and before "100 Continue" is sent). The body's JSON is then parsed
 * here too, strictly: valid UTF-8, one value, nothing after it.
 *
 * Host and Origin protect a server without an API key from web pages: a page
 * on any site may POST to 127.0.0.1, and a page whose name an attacker
 * re-points at 127.0.0.1 (DNS rebinding) is even same-origin with it. The
 * first carries an Origin that is not ours, the second a Host that is not
 * one of our names; both are refused. Clients that are not browsers send no
 * Origin and are not affected.
 *
 * Nothing here knows libmicrohttpd or the model: server.c hands the request
 * line and headers over as plain strings, and the fuzz harness
 * (fuzz/fuzz_http.c) calls the same functions with bytes of its own.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "server/server.h"

/* Every endpoint. A route not marked public needs the API key (when one is
 * set); tests/server/test_server.c walks this table through
 * `ghostflow serve --list-routes`, so a new route is tested with it. */
static const srv_route routes[] = {
    {"/", "GET", SRV_R_PAGE, true},
    {"/health", "GET", SRV_R_HEALTH, true},
    {"/metrics", "GET", SRV_R_METRICS, false},
    {"/v1/models", "GET", SRV_R_MODELS, false},
    {"/v1/chat/completions", "POST", SRV_R_CHAT, false},
    {"/v1/completions", "POST", SRV_R_COMPLETIONS, false},
    {"/tokenize", "POST", SRV_R_TOKENIZE, false},
    {"/detokenize", "POST", SRV_R_DETOKENIZE, false},
};

const srv_route *srv_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* ---- headers ------------------------------------------------------------- */

const char *srv_header_get(const srv_http_request *rq, const char *name, int *count)
{
    const char *v = NULL;
    int n = 0;
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0 && n++ == 0)
            v = rq->headers[i].value;
    if (count)
        *count = n;
    return v;
}

/* ---- configuration ------------------------------------------------------- */

/* Splits the comma-separated list at s (modified in place) into out[]; "*"
 * sets *any. -1 with err when there are too many entries. */
static int split_list(char *s, const char *what, const char **out, size_t *n, size_t max, bool *any,
                      char *err, size_t errcap)
{
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (len == 0)
            continue;
        if (strcmp(tok, "*") == 0) {
            *any = true;
            continue;
        }
        if (*n == max) {
            snprintf(err, errcap, "%s: more than %d entries", what, SRV_MAX_NAMES);
            return -1;
        }
        out[(*n)++] = tok;
    }
    return 0;
}

int srv_gate_init(srv_gate *g, const char *bind_host, uint16_t port, size_t max_body,
                  const char *host_allow, const char *cors_origin, const char *key, char *err,
                  size_t errcap)
{
    memset(g, 0, sizeof *g);
    g->max_body = max_body;
    g->port = port;
    /* Room for the bound address (bracketed when IPv6) and both lists. */
    size_t hl = host_allow ? strlen(host_allow) : 0, cl = cors_origin ? strlen(cors_origin) : 0;
    size_t bl = strlen(bind_host);
    if (!(g->lists = malloc(bl + 3 + hl + 1 + cl + 1))) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    char *bound = g->lists, *hosts = bound + bl + 3, *origins = hosts + hl + 1;
    snprintf(bound, bl + 3, strchr(bind_host, ':') ? "[%s]" : "%s", bind_host);
    memcpy(hosts, host_allow ? host_allow : "", hl + 1);
    memcpy(origins, cors_origin ? cors_origin : "", cl + 1);
    /* A wildcard bind means every address of this machine: any IP literal
     * names it (an IP literal cannot be re-pointed by DNS). */
    g->ip_hosts =
        !bind_host[0] || strcmp(bind_host, "0.0.0.0") == 0 || strcmp(bind_host, "::") == 0;
    g->hosts[g->n_hosts++] = bound;
    g->hosts[g->n_hosts++] = "localhost";
    g->hosts[g->n_hosts++] = "127.0.0.1";
    g->hosts[g->n_hosts++] = "[::1]";
    if (split_list(hosts, "--host-allow", g->hosts, &g->n_hosts, SRV_MAX_NAMES + 4, &g->any_host,
                   err, errcap) ||
        split_list(origins, "--cors-origin", g->origins, &g->n_origins, SRV_MAX_NAMES,
                   &g->any_origin, err, errcap)) {
        srv_gate_free(g);
        return -1;
    }
    g->has_key = key && key[0];
    if (g->has_key)
        crypto_generichash(g->key_hash, sizeof g->key_hash, (const unsigned char *)key, strlen(key),
                           NULL, 0);
    return 0;
}

void srv_gate_free(srv_gate *g)
{
    free(g->lists);
    sodium_memzero(g, sizeof *g);
}

/* ---- Host and Origin ----------------------------------------------------- */

/* Splits "name[:port]" or "[v6][:port]" into the name's length and the port
 * (0 when absent); false when the port is not a number in [1, 65535]. */
static bool split_hostport(const char *s, size_t *name_len, long *port)
{
    const char *colon = s[0] == '[' ? strchr(s, ']') : s;
    if (!colon)
        return false;
    colon = strchr(colon, ':');
    *name_len = colon ? (size_t)(colon - s) : strlen(s);
    *port = 0;
    if (!colon)
        return true;
    char *end;
    *port = strtol(colon + 1, &end, 10);
    return colon[1] >= '0' && colon[1] <= '9' && !*end && *port >= 1 && *port <= 65535;
}

static bool is_ip_literal(const char *name, size_t len)
{
    char buf[64];
    unsigned char addr[16];
    if (len < 2 || len >= sizeof buf)
        return false;
    if (name[0] == '[' && name[len - 1] == ']') {
        memcpy(buf, name + 1, len - 2);
        buf[len - 2] = '\0';
        return inet_pton(AF_INET6, buf, addr) == 1;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1;
}

/* Whether the Host header h names this server: one of the allowed names,
 * with our port (or the port the entry gives). */
static bool host_allowed(const srv_gate *g, const char *h)
{
    size_t len;
    long port;
    if (!split_hostport(h, &len, &port) || len == 0)
        return false;
    if (g->any_host)
        return true;
    if (!port)
        port = 80; /* what a client means by a Host without a port */
    if (g->ip_hosts && port == g->port && is_ip_literal(h, len))
        return true;
    for (size_t i = 0; i < g->n_hosts; i++) {
        size_t elen;
        long eport;
        if (split_hostport(g->hosts[i], &elen, &eport) && elen == len &&
            strncasecmp(g->hosts[i], h, len) == 0 && port == (eport ? eport : g->port))
            return true;
    }
    return false;
}

/* Whether origin (an Origin header) is this server itself, seen through the
 * Host the request was sent to (already checked). */
static bool same_origin(const char *origin, const char *host)
{
    return host && strncasecmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0;
}

static bool cors_allowed(const srv_gate *g, const char *origin)
{
    if (g->any_origin)
        return true;
    for (size_t i = 0; i < g->n_origins; i++)
        if (strcasecmp(g->origins[i], origin) == 0)
            return true;
    return false;
}

/* ---- the API key --------------------------------------------------------- */

/* Bearer token check: both sides are hashed to equal-length digests and
 * compared in constant time, so neither the key nor its length leaks. */
static bool authorized(const srv_gate *g, const char *h)
{
    if (!g->has_key)
        return true;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)tok, strlen(tok), NULL, 0);
    return sodium_memcmp(digest, g->key_hash, sizeof digest) == 0;
}

/* ---- the checks ---------------------------------------------------------- */

int srv_gate_check(const srv_gate *g, const srv_http_request *rq, srv_admit *a, srv_error *e)
{
    *a = (srv_admit){0};
    /* Headers that mean one thing: two copies are ambiguous (which one a
     * proxy checked and which one we read may differ). */
    static const char *const single[] = {"Host", "Authorization", "Origin", "Content-Length",
                                         "X-Conversation-Id"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        int n;
        srv_header_get(rq, single[i], &n);
        if (n > 1)
            return srv_fail(e, 400, single[i], "header %s sent %d times (once at most)", single[i],
                            n);
    }
    const char *host = srv_header_get(rq, "Host", NULL);
    if (!host && strcmp(rq->version, "HTTP/1.0") != 0)
        return srv_fail(e, 400, "Host", "Host header missing (HTTP/1.1 requires it)");
    if (host && !host_allowed(g, host))
        return srv_fail(e, 403, "Host",
                        "Host '%.100s' is not a name of this server (see --host-allow)", host);
    const char *origin = srv_header_get(rq, "Origin", NULL);
    if (origin && !same_origin(origin, host)) {
        if (!cors_allowed(g, origin))
            return srv_fail(e, 403, "Origin",
                            "Origin '%.100s' may not call this server (see --cors-origin)", origin);
        a->cors_origin = origin;
    }
    const srv_route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(rq->url, routes[i].path) == 0)
            rt = &routes[i];
    if (!rt)
        return srv_fail(e, 404, "", "no such endpoint: %.200s", rq->url);
    a->route = rt;
    if (a->cors_origin && strcmp(rq->method, "OPTIONS") == 0) {
        a->preflight = true; /* answered without the key: browsers send none */
        return 0;
    }
    /* HEAD is GET without the body (libmicrohttpd leaves it out). */
    bool get = strcmp(rt->method, "GET") == 0;
    if (strcmp(rq->method, rt->method) != 0 && !(get && strcmp(rq->method, "HEAD") == 0)) {
        srv_fail(e, 405, "", "%.16s %s: method not allowed (use %s)", rq->method, rt->path,
                 get ? "GET or HEAD" : rt->method);
        /* the Allow header's value */
        snprintf(e->param, sizeof e->param, "%s", get ? "GET, HEAD" : rt->method);
        return -1;
    }
    /* A declared length over the cap is refused before reading any of it. */
    const char *cl = srv_header_get(rq, "Content-Length", NULL);
    if (cl && strtoull(cl, NULL, 10) > g->max_body)
        return srv_fail_too_large(e, g->max_body);
    if (!rt->public && !authorized(g, srv_header_get(rq, "Authorization", NULL))) {
        srv_fail(e, 401, "", "missing or wrong API key (send Authorization: Bearer KEY)");
        e->code = "invalid_api_key";
        return -1;
    }
    return 0;
}

/* ---- the body ------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends ".name", "name" (at the top) or "[i]" to the path of len bytes. */
static size_t path_add(char *path, size_t len, size_t cap, const char *name, int index)
{
    int n = name ? snprintf(path + len, cap - len, "%s%s", len ? "." : "", name)
                 : snprintf(path + len, cap - len, "[%d]", index);
    return n < 0 || (size_t)n >= cap - len ? cap - 1 : len + (size_t)n;
}

/* What a \u0000 escape is parsed as (see srv_parse_body): bytes that never
 * occur in UTF-8, so no other input gives them. */
#define NUL_MARK '\xff'

/* Refuses, at any depth below v (named by path), an object that repeats a
 * key — which of the two a reader takes differs between JSON libraries, so
 * the request is ambiguous — and a string or key holding U+0000, which the
 * C strings behind every field would silently cut there. */
static int check_tree(const cJSON *v, char *path, size_t len, size_t cap, srv_error *e)
{
    if (cJSON_IsString(v) && strchr(v->valuestring, NUL_MARK))
        return srv_fail(e, 400, path, "%s: \\u0000 (NUL) is not allowed in a string",
                        len ? path : "request body");
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        n++;
    if (cJSON_IsObject(v) && n > 1) {
        const char **names = malloc(n * sizeof *names);
        if (!names)
            return srv_fail(e, 500, "", "out of memory");
        size_t i = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            names[i++] = c->string;
        qsort(names, n, sizeof *names, by_name);
        const char *dup = NULL;
        for (i = 1; i < n && !dup; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                dup = names[i];
        if (dup) {
            size_t at = path_add(path, len, cap, dup, 0);
            free(names);
            return srv_fail(e, 400, path, "request body: duplicate key %.*s", (int)at, path);
        }
        free(names);
    }
    int index = 0;
    for (const cJSON *c = v->child; c; c = c->next, index++) {
        const char *mark = cJSON_IsObject(v) ? strchr(c->string, NUL_MARK) : NULL;
        if (mark) { /* named by the part before the NUL */
            char name[sizeof e->param];
            snprintf(name, sizeof name, "%.*s", (int)(mark - c->string), c->string);
            path_add(path, len, cap, name, 0);
            return srv_fail(e, 400, path, "%s: \\u0000 (NUL) is not allowed in a key", path);
        }
        size_t at = path_add(path, len, cap, cJSON_IsObject(v) ? c->string : NULL, index);
        if (check_tree(c, path, at, cap, e))
            return -1;
        path[len] = '\0';
    }
    return 0;
}

/* A copy of body whose \u0000 escapes are NUL_MARK bytes (same length, so
 * offsets hold), or NULL when it has none (*oom when the copy failed).
 * cJSON would end the string at the NUL it makes of the escape. */
static char *mark_nul_escapes(const char *body, size_t len, bool *oom)
{
    char *copy = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (body[i] != '\\')
            continue;
        if (i + 6 <= len && body[i + 1] == 'u' && memcmp(body + i + 2, "0000", 4) == 0) {
            if (!copy) {
                if (!(copy = malloc(len + 1))) {
                    *oom = true;
                    return NULL;
                }
                memcpy(copy, body, len);
                copy[len] = '\0';
            }
            memset(copy + i, NUL_MARK, 6);
        }
        i++; /* the escaped character, a backslash included */
    }
    return copy;
}

/* srv_parse_body once \u0000 escapes are marked. */
static cJSON *parse_strict(const char *body, size_t len, srv_error *e)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!v) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return srv_fail(e, 400, "", "request body: malformed JSON near byte %zu", at), NULL;
    }
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0') {
            cJSON_Delete(v);
            return srv_fail(e, 400, "",
                            "request body: unexpected data after the JSON value at byte %zu",
                            (size_t)(p - body)),
                   NULL;
        }
    }
    char path[sizeof e->param] = "";
    if (check_tree(v, path, 0, sizeof path, e)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

cJSON *srv_parse_body(const char *body, size_t len, srv_error *e)
{
    size_t bad;
    if (len == 0)
        return srv_fail(e, 400, "", "request body: empty (expected a JSON object)"), NULL;
    if (!srv_utf8_valid(body, len, &bad))
        return srv_fail(e, 400, "", "request body: invalid UTF-8 at byte %zu", bad), NULL;
    bool oom = false;
    char *marked = mark_nul_escapes(body, len, &oom);
    if (oom)
        return srv_fail(e, 500, "", "out of memory"), NULL;
    cJSON *v = parse_strict(marked ? marked : body, len, e);
    free(marked);
    return v;
}
