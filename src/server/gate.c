/*
 * gate.c — what a request must pass before a handler sees it: the route
 * table, the method, the declared body size and the API key, all decided
 * from the request line and headers alone, so a refused request is answered
 * before its body is read (and before "100 Continue" is sent). The body's
 * JSON is then parsed here too, strictly: valid UTF-8, one value, nothing
 * after it.
 *
 * Nothing here knows libmicrohttpd or the model: server.c hands the request
 * line and headers over as plain strings, and the fuzz harness
 * (fuzz/fuzz_http.c) calls the same functions with bytes of its own.
 */
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

/* ---- the API key --------------------------------------------------------- */

void srv_gate_set_key(srv_gate *g, const char *key)
{
    g->has_key = key && key[0];
    if (g->has_key)
        crypto_generichash(g->key_hash, sizeof g->key_hash, (const unsigned char *)key, strlen(key),
                           NULL, 0);
}

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

const srv_route *srv_gate_check(const srv_gate *g, const srv_http_request *rq, srv_error *e)
{
    const srv_route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(rq->url, routes[i].path) == 0)
            rt = &routes[i];
    if (!rt)
        return srv_fail(e, 404, "", "no such endpoint: %.200s", rq->url), NULL;
    if (strcmp(rq->method, rt->method) != 0) {
        srv_fail(e, 405, "", "%.16s %s: method not allowed (use %s)", rq->method, rt->path,
                 rt->method);
        snprintf(e->param, sizeof e->param, "%s", rt->method); /* the Allow header's value */
        return NULL;
    }
    /* A declared length over the cap is refused before reading any of it. */
    const char *cl = srv_header_get(rq, "Content-Length", NULL);
    if (cl && strtoull(cl, NULL, 10) > g->max_body) {
        srv_fail(e, 413, "", "request body larger than %zu bytes", g->max_body);
        e->code = "request_too_large";
        return NULL;
    }
    if (!rt->public && !authorized(g, srv_header_get(rq, "Authorization", NULL))) {
        srv_fail(e, 401, "", "missing or wrong API key (send Authorization: Bearer KEY)");
        e->code = "invalid_api_key";
        return NULL;
    }
    return rt;
}

/* ---- the body ------------------------------------------------------------ */

cJSON *srv_parse_body(const char *body, size_t len, srv_error *e)
{
    size_t bad;
    if (len == 0)
        return srv_fail(e, 400, "", "request body: empty (expected a JSON object)"), NULL;
    if (!srv_utf8_valid(body, len, &bad))
        return srv_fail(e, 400, "", "request body: invalid UTF-8 at byte %zu", bad), NULL;
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
    return v;
}
