/*
 * serve_load — a bounded loopback load for OpenAI-compatible servers
 * (`ghostflow serve`, llama.cpp's llama-server): C concurrent clients each send
 * streaming chat completions back to back until R requests are done in all.
 * It measures what a user of the stream sees: time to the first content
 * delta (TTFT) per request, and generated tokens over the wall time of the
 * whole run. One libcurl multi handle drives every client from one thread so
 * the load generator itself stays light on a 2-core machine.
 *
 *   serve_load -u http://127.0.0.1:8080 [-c CLIENTS] [-r REQUESTS] [-n MAX_TOKENS]
 *              [-k API_KEY] [-p PROMPT]
 *
 * Prints one line of key=value pairs (for compare.sh) and exits 1 if any
 * request failed. Tokens are `usage.completion_tokens` from the stream when the
 * server sends it (stream_options.include_usage is asked for), else the count
 * of content deltas.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct client {
    CURL *easy;
    struct curl_slist *headers;
    char *buf; /* SSE bytes not yet split into events */
    size_t len, cap;
    double start, first; /* seconds; first < 0 until the first content delta */
    long deltas, usage_tokens;
    bool done_seen, failed;
} client;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One `data: ...` payload of the stream. */
static void on_event(client *c, const char *data)
{
    if (strcmp(data, "[DONE]") == 0) {
        c->done_seen = true;
        return;
    }
    cJSON *j = cJSON_Parse(data);
    if (!j) {
        c->failed = true;
        return;
    }
    if (cJSON_GetObjectItem(j, "error"))
        c->failed = true;
    cJSON *choices = cJSON_GetObjectItem(j, "choices");
    cJSON *delta = cJSON_GetObjectItem(cJSON_GetArrayItem(choices, 0), "delta");
    cJSON *content = cJSON_GetObjectItem(delta, "content");
    if (cJSON_IsString(content) && content->valuestring[0]) {
        if (c->first < 0)
            c->first = now_s();
        c->deltas++;
    }
    cJSON *tokens = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens");
    if (cJSON_IsNumber(tokens))
        c->usage_tokens = (long)tokens->valuedouble;
    cJSON_Delete(j);
}

/* Splits the buffered bytes into events at blank lines ("\n\n"). */
static size_t on_body(char *ptr, size_t size, size_t n, void *userdata)
{
    client *c = userdata;
    size_t got = size * n;
    if (c->len + got + 1 > c->cap) {
        size_t cap = (c->len + got + 1) * 2;
        char *b = realloc(c->buf, cap);
        if (!b) {
            c->failed = true;
            return 0;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, ptr, got);
    c->len += got;
    c->buf[c->len] = '\0';
    char *start = c->buf, *end;
    while ((end = strstr(start, "\n\n")) != NULL) {
        *end = '\0';
        for (char *line = start; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (strncmp(line, "data: ", 6) == 0)
                on_event(c, line + 6);
            line = nl ? nl + 1 : NULL;
        }
        start = end + 2;
    }
    c->len -= (size_t)(start - c->buf);
    memmove(c->buf, start, c->len + 1);
    return got;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p)
{
    if (n == 0)
        return 0;
    int i = (int)(p * (n - 1) + 0.5);
    return sorted[i];
}

static void usage_exit(void)
{
    fprintf(stderr, "usage: serve_load -u URL [-c CLIENTS] [-r REQUESTS] [-n MAX_TOKENS] "
                    "[-k API_KEY] [-p PROMPT]\n");
    exit(2);
}

static void start_request(CURLM *multi, client *c, const char *url, const char *body)
{
    c->len = 0;
    c->deltas = 0;
    c->usage_tokens = -1;
    c->first = -1;
    c->done_seen = c->failed = false;
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 300L);
    /* A fresh connection per request: llama-server may close an idle
     * keep-alive connection just as it is reused, which would count as an
     * error; a loopback connect costs both servers the same few microseconds. */
    curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
    c->start = now_s();
    curl_multi_add_handle(multi, c->easy);
}

int main(int argc, char **argv)
{
    const char *base = NULL, *key = NULL, *prompt = "Once upon a time, in a small town,";
    int nclients = 1, nrequests = 16, max_tokens = 64;
    int opt;
    while ((opt = getopt(argc, argv, "u:c:r:n:k:p:h")) != -1) {
        switch (opt) {
        case 'u': base = optarg; break;
        case 'c': nclients = atoi(optarg); break;
        case 'r': nrequests = atoi(optarg); break;
        case 'n': max_tokens = atoi(optarg); break;
        case 'k': key = optarg; break;
        case 'p': prompt = optarg; break;
        default: usage_exit();
        }
    }
    if (!base || nclients < 1 || nclients > 256 || nrequests < nclients || max_tokens < 1)
        usage_exit();

    char url[1024];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    cJSON *req = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddBoolToObject(req, "stream", true);
    cJSON_AddBoolToObject(cJSON_AddObjectToObject(req, "stream_options"), "include_usage", true);
    cJSON_AddNumberToObject(req, "max_tokens", max_tokens);
    cJSON_AddNumberToObject(req, "temperature", 0.8);
    cJSON_AddNumberToObject(req, "seed", 42);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) {
        fprintf(stderr, "serve_load: out of memory\n");
        return 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    client *cl = calloc((size_t)nclients, sizeof *cl);
    double *ttft = calloc((size_t)nrequests, sizeof *ttft);
    if (!multi || !cl || !ttft) {
        fprintf(stderr, "serve_load: out of memory\n");
        return 1;
    }
    char auth[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "none");
    int started = 0, finished = 0, errors = 0, n_ttft = 0;
    long tokens = 0;
    double t0 = now_s();
    for (int i = 0; i < nclients; i++) {
        cl[i].easy = curl_easy_init();
        cl[i].headers = curl_slist_append(NULL, "Content-Type: application/json");
        cl[i].headers = curl_slist_append(cl[i].headers, auth);
        start_request(multi, &cl[i], url, body);
        started++;
    }
    while (finished < nrequests) {
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            client *c;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            long status = 0;
            curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, c->easy);
            finished++;
            if (msg->data.result != CURLE_OK || status != 200 || c->failed || !c->done_seen ||
                c->first < 0) {
                errors++;
                fprintf(stderr, "serve_load: request failed: %s, HTTP %ld%s%s\n",
                        curl_easy_strerror(msg->data.result), status,
                        c->done_seen ? "" : ", no [DONE]", c->first < 0 ? ", no content" : "");
            } else {
                ttft[n_ttft++] = c->first - c->start;
                tokens += c->usage_tokens >= 0 ? c->usage_tokens : c->deltas;
            }
            if (started < nrequests) {
                start_request(multi, c, url, body);
                started++;
            }
        }
        if (finished < nrequests)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double wall = now_s() - t0;
    qsort(ttft, (size_t)n_ttft, sizeof *ttft, cmp_double);
    printf("clients=%d requests=%d errors=%d tokens=%ld wall_s=%.3f tok_s=%.1f "
           "ttft_p50_ms=%.1f ttft_p99_ms=%.1f\n",
           nclients, nrequests, errors, tokens, wall, tokens / wall,
           1000 * percentile(ttft, n_ttft, 0.50), 1000 * percentile(ttft, n_ttft, 0.99));
    for (int i = 0; i < nclients; i++) {
        curl_slist_free_all(cl[i].headers);
        curl_easy_cleanup(cl[i].easy);
        free(cl[i].buf);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(cl);
    free(ttft);
    cJSON_free(body);
    return errors ? 1 : 0;
}
