/*
 * fuzz_http.c — libFuzzer harness for the HTTP server's request handling,
 * in process, without sockets or libmicrohttpd.
 *
 * An input is read as a request: a request line "METHOD URL VERSION", header
 * lines "Name: value", an empty line, then the body (lines end with \n, a \r
 * before it is dropped). It goes through what `ghostflow serve` does with a
 * request before a slot would generate: the gate (srv_gate_check: Host,
 * Origin, route, method, size, API key, repeated headers), then for the POST
 * routes the body stage (srv_handle_body: strict JSON, duplicate keys,
 * \u0000, every field of a completion or chat request, the tokenizer routes
 * run for real). Whatever the outcome, the answer must be well formed: an
 * error is a 4xx/5xx whose JSON parses and is valid UTF-8, a tokenizer
 * answer the same, a generation request has its prompt and label. Anything
 * else aborts, as does any over-read (ASan) or undefined behaviour (UBSan).
 *
 * The model behind the chat template and the tokenizer is stories260K from
 * ../shared (or $GF_FUZZ_MODEL). Built only with clang and -DGF_FUZZ=ON:
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGF_FUZZ=ON -DGF_TESTS=OFF
 *   cmake --build build-fuzz --target fuzz_http
 *   ./build-fuzz/fuzz/fuzz_http -max_total_time=60 -dict=fuzz/fuzz_http.dict \
 *       corpus-http/ fuzz/corpus/fuzz_http
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define MAX_HEADERS 64

static ghost_model *model;
static srv_gate gate;
static ghost_gen_params defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *path = getenv("GF_FUZZ_MODEL");
    if (!path)
        path = GF_FUZZ_MODEL_DEFAULT;
    if (!(model = ghost_model_load(path))) {
        fprintf(stderr, "fuzz_http: %s: %s (set GF_FUZZ_MODEL)\n", path, ghost_errmsg(NULL));
        abort();
    }
    char err[256];
    if (srv_gate_init(&gate, "127.0.0.1", 8080, 1 << 20, "gf.internal,api.example:443",
                      "http://app.example", "sk-fuzz", err, sizeof err)) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    defaults = ghost_default_gen_params();
    defaults.max_tokens = -1;
    return 0;
}

/* An answer body must be valid UTF-8 JSON. */
static void check_json(const char *body)
{
    if (!body || !srv_utf8_valid(body, strlen(body), NULL))
        abort();
    cJSON *j = cJSON_Parse(body);
    if (!j)
        abort();
    cJSON_Delete(j);
}

static void check_error(const srv_error *e)
{
    if (e->status < 400 || e->status > 599 || !e->message[0] || !e->type)
        abort();
    char *json = srv_error_json(e);
    check_json(json);
    free(json);
}

/* Cuts the next line (up to \n, without a \r before it) from *p. */
static char *next_line(char **p, char *end)
{
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl)
        nl = end;
    *p = nl < end ? nl + 1 : end;
    *nl = '\0';
    if (nl > line && nl[-1] == '\r')
        nl[-1] = '\0';
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf, *end = buf + size;

    /* the request line: METHOD URL VERSION */
    char *line = next_line(&p, end), *save = NULL;
    const char *method = strtok_r(line, " ", &save), *url = strtok_r(NULL, " ", &save);
    const char *version = strtok_r(NULL, " ", &save);
    srv_header headers[MAX_HEADERS];
    size_t n = 0;
    while (p < end && n < MAX_HEADERS) {
        line = next_line(&p, end);
        if (!line[0])
            break; /* the empty line before the body */
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        headers[n++] = (srv_header){line, value};
    }
    srv_http_request rq = {method ? method : "GET", url ? url : "/", version ? version : "HTTP/1.1",
                           headers, n};

    srv_admit a;
    srv_error e = {0};
    if (srv_gate_check(&gate, &rq, &a, &e)) {
        check_error(&e);
    } else if (!a.route || (a.preflight && !a.cors_origin)) {
        abort();
    } else if (!a.preflight && strcmp(a.route->method, "POST") == 0) {
        srv_gen_request gen;
        char *answer;
        int rc =
            srv_handle_body(a.route->id, p, (size_t)(end - p), model, &defaults, &gen, &answer, &e);
        if (rc < 0) {
            check_error(&e);
        } else if (rc == SRV_BODY_ANSWER) {
            check_json(answer);
            free(answer);
        } else {
            if (!gen.prompt || !gen.record || gen.gen.n_stop > SRV_MAX_STOP ||
                (gen.label && !srv_utf8_valid(gen.label, strlen(gen.label), NULL)))
                abort();
            srv_gen_request_free(&gen);
        }
    }
    free(buf);
    return 0;
}
