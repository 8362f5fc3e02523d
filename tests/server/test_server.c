/*
 * test_server.c — `ghostflow serve` end to end over loopback: the program is
 * started on a port it picks (--port 0, read back from its first stdout line)
 * with a database made here with the cheap KDF, and driven with libcurl.
 * Every endpoint and error status, a corpus of malformed requests, SSE
 * streams, 8 concurrent streaming clients, /metrics arithmetic, a client
 * hanging up mid-stream (stored as cancelled), 503 on a full queue, and the
 * history the server leaves behind (read through libghostflow).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "flow/flow_test.h"
#include "zqlite.h"

#define MODEL   FT_MODEL
#define DB_KEY  FT_KEY
#define API_KEY "sk-test-123"

typedef struct server_proc {
    pid_t pid;
    int port;
} server_proc;

static server_proc main_srv;

/* ---- the server process --------------------------------------------------- */

/* A database with the cheap KDF, made (or opened) through libghostflow. */
static void make_db(const char *path)
{
    gf_close(ft_open(path, false));
}

/* Servers started and not yet stopped: a failing test jumps out of its
 * function before stop_server, and a server left running would hold ctest's
 * output pipe open until the timeout. The group teardown kills these. */
static pid_t live_servers[8];

/* Starts `ghostflow serve` on db with these slots, queue and --timeout, and
 * the options in extra (NULL-terminated, may be NULL); with_key sets the API
 * key. Waits for its port. */
static server_proc start_server_with(const char *db, const char *parallel, const char *queue,
                                     const char *timeout, const char *const *extra, bool with_key)
{
    if (access(MODEL, R_OK) != 0)
        fail_msg("%s is missing: run from the repository root with ../shared present", MODEL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *prog = tu_program("ghostflow");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* the test process was killed */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("GHOSTFLOW_KEY", DB_KEY, 1);
        if (with_key)
            setenv("GHOSTFLOW_API_KEY", API_KEY, 1);
        else
            unsetenv("GHOSTFLOW_API_KEY");
        const char *argv[64] = {"ghostflow", "serve", "-m",         MODEL,    "--db",      db,
                                "--port",    "0",     "--parallel", parallel, "--queue",   queue,
                                "--ctx",     "512",   "-t",         "1",      "--timeout", timeout};
        size_t n = 18;
        for (size_t i = 0; extra && extra[i] && n < 63; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    if (!fgets(line, sizeof line, f))
        fail_msg("ghostflow serve exited before listening");
    fclose(f);
    const char *colon = strrchr(line, ':');
    assert_non_null(colon);
    server_proc s = {pid, atoi(colon + 1)};
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] == 0) {
            live_servers[i] = pid;
            break;
        }
    assert_true(s.port > 0);
    return s;
}

static server_proc start_server(const char *db, const char *parallel, const char *queue,
                                const char *timeout)
{
    return start_server_with(db, parallel, queue, timeout, NULL, true);
}

static void stop_server(server_proc *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] == s->pid)
            live_servers[i] = 0;
    s->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef struct http_resp {
    long status;
    char *body;
    size_t len;
    char conv[32];
    char allow[32];
    char acao[64];      /* Access-Control-Allow-Origin */
    size_t abort_after; /* > 0: hang up once this many body bytes arrived */
    CURLcode rc;
} http_resp;

static size_t on_body(char *p, size_t sz, size_t n, void *user)
{
    http_resp *r = user;
    size_t len = sz * n;
    char *nb = realloc(r->body, r->len + len + 1);
    assert_non_null(nb);
    r->body = nb;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    if (r->abort_after && r->len >= r->abort_after)
        return 0; /* curl aborts: the client goes away mid-stream */
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *user)
{
    http_resp *r = user;
    size_t len = sz * n;
    char line[128];
    snprintf(line, sizeof line, "%.*s", (int)(len < 127 ? len : 127), p);
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "X-Conversation-Id: ", 19) == 0)
        snprintf(r->conv, sizeof r->conv, "%.31s", line + 19);
    if (strncasecmp(line, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof r->allow, "%.31s", line + 7);
    if (strncasecmp(line, "Access-Control-Allow-Origin: ", 29) == 0)
        snprintf(r->acao, sizeof r->acao, "%.63s", line + 29);
    return len;
}

/* One request to port with these header lines (n of them, NULL ones
 * skipped) and no others but what curl must send. */
static void http_lines(int port, const char *method, const char *path, const char *body, size_t len,
                       const char *const *lines, size_t n, http_resp *r)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < n; i++)
        if (lines[i])
            h = curl_slist_append(h, lines[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body)
        r->body = calloc(1, 1);
}

/* One JSON request to port; key NULL = no Authorization header. */
static void http_to(int port, const char *method, const char *path, const char *body, size_t len,
                    const char *key, const char *header, http_resp *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    const char *lines[] = {"Content-Type: application/json", key ? auth : NULL, header};
    http_lines(port, method, path, body, len, lines, 3, r);
}

static http_resp req(const char *method, const char *path, const char *body, const char *key)
{
    http_resp r = {0};
    http_to(main_srv.port, method, path, body, body ? strlen(body) : 0, key, NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    return r;
}

static http_resp post(const char *path, const char *body)
{
    return req("POST", path, body, API_KEY);
}

/* Asserts OpenAI's error shape with status and (when given) param. */
static void assert_error(http_resp *r, long status, const char *param)
{
    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status, r->body);
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "message")));
    assert_true(strlen(cJSON_GetObjectItem(e, "message")->valuestring) > 0);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "type")));
    assert_non_null(cJSON_GetObjectItem(e, "code"));
    cJSON *p = cJSON_GetObjectItem(e, "param");
    assert_non_null(p);
    if (param) {
        if (!cJSON_IsString(p) || strcmp(p->valuestring, param) != 0)
            fail_msg("expected param %s: %s", param, r->body);
    }
    cJSON_Delete(j);
}

/* ---- raw sockets (requests libcurl would not send) ------------------------ */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void raw_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Reads what fd sends within wait_ms (until the peer closes or stays silent
 * that long) into out (NUL-terminated); the byte count, -1 when the peer
 * reset the connection before sending anything. */
static ssize_t raw_read(int fd, char *out, size_t cap, int wait_ms)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, wait_ms) <= 0)
            break;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n < 0 && got == 0) {
            out[0] = '\0';
            return -1;
        }
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    out[got] = '\0';
    return (ssize_t)got;
}

/* Sends request on a fresh connection and returns what came back within
 * wait_ms, in out. */
static void raw_exchange(int port, const char *request, char *out, size_t cap, int wait_ms)
{
    int fd = raw_connect(port);
    raw_send(fd, request, strlen(request));
    raw_read(fd, out, cap, wait_ms);
    close(fd);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends drip on fd every every_ms until the server closes the connection;
 * the milliseconds that took, or -1 when it was still open after limit_ms. */
static int closed_after(int fd, const char *drip, int every_ms, int limit_ms)
{
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < limit_ms) {
        if (drip && send(fd, drip, strlen(drip), MSG_NOSIGNAL) < 0)
            return (int)(mono_ms() - t0);
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, every_ms) > 0) {
            char buf[512];
            if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
                return (int)(mono_ms() - t0);
        }
    }
    return -1;
}

/* ---- SSE ------------------------------------------------------------------ */

typedef struct sse_result {
    int events;
    bool done_last;  /* "data: [DONE]" was the last event */
    char text[8192]; /* concatenated deltas */
    char finish[16];
    int completion_tokens, prompt_tokens;
} sse_result;

static sse_result parse_sse(const char *body, bool chat)
{
    sse_result s = {0};
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        assert_memory_equal(p, "data: ", 6);
        char *ev = strndup(p + 6, (size_t)(end - p - 6));
        s.events++;
        s.done_last = strcmp(ev, "[DONE]") == 0;
        if (!s.done_last) {
            cJSON *j = cJSON_Parse(ev);
            if (!j)
                fail_msg("chunk is not JSON: %s", ev);
            assert_null(cJSON_GetObjectItem(j, "error"));
            cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
            assert_non_null(ch);
            cJSON *t = chat ? cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content")
                            : cJSON_GetObjectItem(ch, "text");
            if (cJSON_IsString(t))
                strncat(s.text, t->valuestring, sizeof s.text - strlen(s.text) - 1);
            cJSON *f = cJSON_GetObjectItem(ch, "finish_reason");
            if (cJSON_IsString(f))
                snprintf(s.finish, sizeof s.finish, "%s", f->valuestring);
            cJSON *u = cJSON_GetObjectItem(j, "usage");
            if (u) {
                s.completion_tokens = cJSON_GetObjectItem(u, "completion_tokens")->valueint;
                s.prompt_tokens = cJSON_GetObjectItem(u, "prompt_tokens")->valueint;
            }
            cJSON_Delete(j);
        }
        free(ev);
        p = end + 2;
    }
    return s;
}

/* ---- metrics -------------------------------------------------------------- */

static double metric_at(int port, const char *name)
{
    http_resp r = {0};
    http_to(port, "GET", "/metrics", NULL, 0, API_KEY, NULL, &r);
    assert_int_equal(r.status, 200);
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(r.body, key);
    if (!at)
        fail_msg("metric %s missing", name);
    double v = atof(at + strlen(key));
    free(r.body);
    return v;
}

static double metric(const char *name)
{
    return metric_at(main_srv.port, name);
}

/* ---- history -------------------------------------------------------------- */

typedef struct rows {
    int n, answered, cancelled;
    char last_prompt[256], last_response[2048];
} rows;

static int collect(const gf_exchange *e, void *user)
{
    rows *r = user;
    r->n++;
    r->answered += e->answered;
    r->cancelled += e->answered && e->finish_reason == GHOST_FINISH_CANCELLED;
    snprintf(r->last_prompt, sizeof r->last_prompt, "%s", e->prompt);
    snprintf(r->last_response, sizeof r->last_response, "%s", e->response ? e->response : "");
    return 0;
}

static rows history_in(const char *db, const char *label)
{
    gf_service *svc = ft_open(db, false);
    int64_t id = 0;
    assert_int_equal(gf_conversation_for_label(svc, label, &id), GF_OK);
    rows r = {0};
    assert_int_equal(gf_history(svc, id, 0, collect, &r), GF_OK);
    gf_close(svc);
    return r;
}

static rows history_of(const char *label)
{
    return history_in(tu_path("main.db"), label);
}

/* ---- tests ---------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    make_db(tu_path("main.db"));
    main_srv = start_server(tu_path("main.db"), "2", "16", "60");
    return 0;
}

static int teardown(void **state)
{
    stop_server(&main_srv);
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] > 0) {
            kill(live_servers[i], SIGKILL);
            waitpid(live_servers[i], NULL, 0);
        }
    curl_global_cleanup();
    return tu_teardown(state);
}

static void test_health_page_and_models(void **state)
{
    (void)state;
    http_resp r = req("GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"status\":\"ok\""));
    free(r.body);
    r = req("GET", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<html"));
    assert_non_null(strstr(r.body, "/v1/chat/completions"));
    free(r.body);
    r = req("GET", "/v1/models", NULL, API_KEY);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0);
    assert_string_equal(cJSON_GetObjectItem(m, "id")->valuestring, "stories260K.gguf");
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "list");
    cJSON_Delete(j);
    free(r.body);
}

static void test_missing_or_wrong_api_key_is_401(void **state)
{
    (void)state;
    const char *keys[] = {NULL, "sk-test-12", "sk-test-1234", "", "SK-TEST-123"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        http_resp r = req("GET", "/v1/models", NULL, keys[i]);
        assert_error(&r, 401, NULL);
        free(r.body);
        r = req("POST", "/v1/completions", "{\"prompt\":\"a\"}", keys[i]);
        assert_error(&r, 401, NULL);
        free(r.body);
    }
}

/* The key is checked on every route the server's own table marks protected
 * (`serve --list-routes`, so a route added later is covered too): without a
 * key and with a wrong one 401, with the key anything else. The public
 * routes are named here: making one more public fails this test. */
static void test_every_protected_route_needs_the_key(void **state)
{
    (void)state;
    static const char *const expect_public[] = {"GET /", "GET /health"};
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "%s serve --list-routes", tu_program("ghostflow"));
    assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
    int n_routes = 0, n_public = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char method[16], path[128], access[16];
        assert_int_equal(sscanf(line, "%15s %127s %15s", method, path, access), 3);
        n_routes++;
        char name[160];
        snprintf(name, sizeof name, "%s %s", method, path);
        if (strcmp(access, "public") == 0) {
            bool listed = false;
            for (size_t i = 0; i < sizeof expect_public / sizeof expect_public[0]; i++)
                listed |= strcmp(name, expect_public[i]) == 0;
            if (!listed)
                fail_msg("%s is public but not in this test's list of public routes", name);
            n_public++;
            continue;
        }
        assert_string_equal(access, "key");
        const char *body = strcmp(method, "POST") == 0 ? "{}" : NULL;
        const char *keys[] = {NULL, "sk-wrong", API_KEY};
        for (size_t k = 0; k < 3; k++) {
            http_resp r = req(method, path, body, keys[k]);
            if (k < 2 && r.status != 401)
                fail_msg("%s with %s key: %ld, expected 401", name, keys[k] ? "a wrong" : "no",
                         r.status);
            if (k == 2 && (r.status == 401 || r.status == 0))
                fail_msg("%s with the key: %ld", name, r.status);
            free(r.body);
        }
    }
    assert_int_equal(n_public, sizeof expect_public / sizeof expect_public[0]);
    assert_true(n_routes >= 8);
}

/* Without the key a request is refused from its headers: the 401 comes
 * before the body is sent (so unauthenticated bodies are never buffered),
 * and a client asking "Expect: 100-continue" is not invited to send it. */
static void test_missing_key_is_refused_before_the_body(void **state)
{
    (void)state;
    char head[512], got[2048];
    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
             main_srv.port);
    raw_exchange(main_srv.port, head, got, sizeof got, 3000);
    if (strncmp(got, "HTTP/1.1 401", 12) != 0)
        fail_msg("headers without a key and no body sent: got '%.80s'", got);
    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nContent-Length: 1000\r\n"
             "Expect: 100-continue\r\nAuthorization: Bearer sk-wrong\r\n\r\n",
             main_srv.port);
    raw_exchange(main_srv.port, head, got, sizeof got, 3000);
    if (strncmp(got, "HTTP/1.1 401", 12) != 0 || strstr(got, "100 Continue"))
        fail_msg("Expect: 100-continue with a wrong key: got '%.80s'", got);
}

/* One text/plain request to port (what a web page may send unasked) with up
 * to two more header lines; the status. The response is kept in *keep when
 * given. */
static long status_with(int port, const char *method, const char *path, const char *body,
                        const char *h1, const char *h2, http_resp *keep)
{
    http_resp r = {0};
    bool typed = h1 && strncasecmp(h1, "Content-Type:", 13) == 0;
    const char *lines[] = {typed ? NULL : "Content-Type: text/plain", h1, h2};
    http_lines(port, method, path, body, body ? strlen(body) : 0, lines, 3, &r);
    assert_int_equal(r.rc, CURLE_OK);
    if (keep)
        *keep = r;
    else
        free(r.body);
    return r.status;
}

/* With no API key, a web page must not reach the server: a cross-site Origin
 * (a page on any site posting text/plain JSON to 127.0.0.1) and a Host that
 * is not one of the server's names (DNS rebinding) are refused, and nothing
 * is stored. Requests without Origin, the server's own origin, and the
 * origins --cors-origin lists (with their preflight) still work. */
static void test_cross_site_requests_are_refused(void **state)
{
    (void)state;
    const char *db = tu_path("cors.db");
    make_db(db);
    const char *const extra[] = {"--cors-origin", "http://app.example", "--host-allow",
                                 "gf.internal:8443", NULL};
    server_proc cs = start_server_with(db, "1", "4", "60", extra, false);
    int p = cs.port;
    char own[64], host[64], host_v6[64], host_alias[64];
    snprintf(own, sizeof own, "Origin: http://127.0.0.1:%d", p);
    snprintf(host, sizeof host, "Host: localhost:%d", p);
    snprintf(host_v6, sizeof host_v6, "Host: [::1]:%d", p);
    snprintf(host_alias, sizeof host_alias, "Host: attacker.example:%d", p);
    const char *evil_body = "{\"prompt\":\"pwned\",\"max_tokens\":2,\"user\":\"evil\"}";
    http_resp r;
    assert_int_equal(status_with(p, "POST", "/v1/completions", evil_body,
                                 "Origin: http://evil.example", NULL, &r),
                     403);
    assert_error(&r, 403, "Origin");
    free(r.body);
    assert_int_equal(status_with(p, "POST", "/v1/completions", evil_body, host_alias, NULL, &r),
                     403);
    assert_error(&r, 403, "Host");
    free(r.body);
    assert_int_equal(status_with(p, "GET", "/health", NULL, "Host: attacker.example", NULL, NULL),
                     403);
    assert_int_equal(status_with(p, "GET", "/health", NULL, "Host: 127.0.0.1", NULL, NULL), 403);
    assert_int_equal(status_with(p, "GET", "/health", NULL, "Origin: null", NULL, NULL), 403);
    /* allowed: no Origin, our own origin, our names, an added name */
    assert_int_equal(status_with(p, "GET", "/health", NULL, NULL, NULL, NULL), 200);
    assert_int_equal(status_with(p, "GET", "/health", NULL, own, NULL, NULL), 200);
    assert_int_equal(status_with(p, "GET", "/health", NULL, host, NULL, NULL), 200);
    assert_int_equal(status_with(p, "GET", "/health", NULL, host_v6, NULL, NULL), 200);
    assert_int_equal(status_with(p, "GET", "/health", NULL, "Host: GF.internal:8443", NULL, NULL),
                     200);
    assert_int_equal(status_with(p, "GET", "/health", NULL, "Host: gf.internal", NULL, NULL), 403);
    /* a listed origin: the answer says so, and its preflight is answered */
    assert_int_equal(status_with(p, "POST", "/v1/completions",
                                 "{\"prompt\":\"a\",\"max_tokens\":2,\"user\":\"app\"}",
                                 "Origin: http://app.example", NULL, &r),
                     200);
    assert_string_equal(r.acao, "http://app.example");
    free(r.body);
    assert_int_equal(status_with(p, "OPTIONS", "/v1/completions", NULL,
                                 "Origin: http://app.example",
                                 "Access-Control-Request-Method: POST", &r),
                     204);
    assert_string_equal(r.acao, "http://app.example");
    free(r.body);
    /* curl -d: no key, no Origin, form content type */
    assert_int_equal(status_with(p, "POST", "/v1/completions",
                                 "{\"prompt\":\"a\",\"max_tokens\":2,\"user\":\"curl\"}",
                                 "Content-Type: application/x-www-form-urlencoded", NULL, NULL),
                     200);
    stop_server(&cs);
    assert_int_equal(history_in(db, "evil").n, 0);
    assert_int_equal(history_in(db, "app").n, 1);
    assert_int_equal(history_in(db, "curl").n, 1);
}

/* HTTP/1.1 without Host is 400; HEAD works like GET without the body; a
 * header that means one thing sent twice is refused naming it. */
static void test_request_line_and_header_rules(void **state)
{
    (void)state;
    char got[4096], request[256];
    raw_exchange(main_srv.port, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", got,
                 sizeof got, 3000);
    if (strncmp(got, "HTTP/1.1 400", 12) != 0 || !strstr(got, "\"Host\""))
        fail_msg("HTTP/1.1 without Host: '%.200s'", got);
    raw_exchange(main_srv.port, "GET /health HTTP/1.0\r\n\r\n", got, sizeof got, 3000);
    if (strncmp(got, "HTTP/1.0 200", 12) != 0 && strncmp(got, "HTTP/1.1 200", 12) != 0)
        fail_msg("HTTP/1.0 without Host: '%.200s'", got);
    snprintf(request, sizeof request,
             "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             main_srv.port);
    raw_exchange(main_srv.port, request, got, sizeof got, 3000);
    const char *end = strstr(got, "\r\n\r\n");
    if (strncmp(got, "HTTP/1.1 200", 12) != 0 || !end || end[4] != '\0')
        fail_msg("HEAD /health: '%.300s'", got);
    http_resp r;
    assert_int_equal(status_with(main_srv.port, "GET", "/v1/models", NULL,
                                 "Authorization: Bearer " API_KEY, "Authorization: Bearer x", &r),
                     400);
    assert_error(&r, 400, "Authorization");
    free(r.body);
    assert_int_equal(status_with(main_srv.port, "DELETE", "/health", NULL, NULL, NULL, &r), 405);
    assert_string_equal(r.allow, "GET, HEAD");
    free(r.body);
}

/* Whether len bytes at s are UTF-8 (structure only: lead and continuation
 * bytes; what the test needs to see cut characters and stray bytes). */
static bool is_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < len;) {
        size_t n = s[i] < 0x80                   ? 0
                   : s[i] >= 0xC2 && s[i] < 0xE0 ? 1
                   : s[i] >= 0xE0 && s[i] < 0xF0 ? 2
                   : s[i] >= 0xF0 && s[i] < 0xF5 ? 3
                                                 : 9;
        if (n == 9 || i + n >= len + (n == 0))
            return false;
        for (size_t k = 1; k <= n; k++)
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
        i += n + 1;
    }
    return true;
}

/* A 404 quotes the path: raw bytes that are not UTF-8 are replaced and a
 * long path is cut between characters, so the body is always UTF-8 JSON. */
static void test_not_found_body_is_utf8_json(void **state)
{
    (void)state;
    char path[512] = "/", request[1024], got[4096];
    for (int i = 0; i < 150; i++)
        strcat(path, "\xc3\xa9"); /* é: the 200-byte cut falls inside one */
    const char *paths[] = {"/\xff\xfe", "/%ff%fe%c3", path};
    for (size_t i = 0; i < 3; i++) {
        snprintf(request, sizeof request,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", paths[i],
                 main_srv.port);
        raw_exchange(main_srv.port, request, got, sizeof got, 3000);
        const char *body = strstr(got, "\r\n\r\n");
        if (strncmp(got, "HTTP/1.1 404", 12) != 0 || !body)
            fail_msg("GET %s: '%.100s'", paths[i], got);
        body += 4;
        if (!is_utf8(body, strlen(body)))
            fail_msg("path %zu: 404 body is not UTF-8: %s", i, body);
        cJSON *j = cJSON_Parse(body);
        assert_non_null(j);
        cJSON_Delete(j);
    }
}

static void test_completion_counts_tokens_and_is_reproducible(void **state)
{
    (void)state;
    const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"seed\":42,"
                       "\"temperature\":0.9,\"top_p\":0.9}";
    http_resp a = post("/v1/completions", body), b = post("/v1/completions", body);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    cJSON *ja = cJSON_Parse(a.body), *jb = cJSON_Parse(b.body);
    cJSON *ca = cJSON_GetArrayItem(cJSON_GetObjectItem(ja, "choices"), 0);
    cJSON *cb = cJSON_GetArrayItem(cJSON_GetObjectItem(jb, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ca, "text")->valuestring,
                        cJSON_GetObjectItem(cb, "text")->valuestring);
    assert_string_equal(cJSON_GetObjectItem(ca, "finish_reason")->valuestring, "length");
    cJSON *u = cJSON_GetObjectItem(ja, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, 8);
    assert_true(cJSON_GetObjectItem(u, "prompt_tokens")->valueint >= 4);
    assert_int_equal(cJSON_GetObjectItem(u, "total_tokens")->valueint,
                     cJSON_GetObjectItem(u, "prompt_tokens")->valueint + 8);
    assert_string_equal(cJSON_GetObjectItem(ja, "object")->valuestring, "text_completion");
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    free(a.body);
    free(b.body);
}

static void test_stop_string_cuts_the_answer(void **state)
{
    (void)state;
    http_resp r = post("/v1/completions",
                       "{\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0}");
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    const char *text =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "text")
            ->valuestring;
    const char *cut = strstr(text + 1, " ");
    assert_non_null(cut);
    cut = strstr(cut + 1, " "); /* stop at the second word boundary */
    assert_non_null(cut);
    char stop[8];
    snprintf(stop, sizeof stop, "%.3s", cut);
    char body[256];
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0,"
             "\"stop\":[\"zzzz\",\"%s\"]}",
             stop);
    size_t expect = (size_t)(strstr(text, stop) - text);
    http_resp s = post("/v1/completions", body);
    assert_int_equal(s.status, 200);
    cJSON *js = cJSON_Parse(s.body);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(js, "choices"), 0);
    assert_int_equal(strlen(cJSON_GetObjectItem(ch, "text")->valuestring), expect);
    assert_memory_equal(cJSON_GetObjectItem(ch, "text")->valuestring, text, expect);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "stop");
    cJSON_Delete(j);
    cJSON_Delete(js);
    free(r.body);
    free(s.body);
}

static void test_chat_stream_ends_with_done_and_is_stored(void **state)
{
    (void)state;
    http_resp r = post("/v1/chat/completions",
                       "{\"messages\":[{\"role\":\"system\",\"content\":\"Tell a story.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tom\"}]}],"
                       "\"max_tokens\":12,\"stream\":true,\"user\":\"stream-user\"}");
    assert_int_equal(r.status, 200);
    assert_true(r.conv[0] != '\0');
    sse_result s = parse_sse(r.body, true);
    assert_true(s.done_last);
    assert_true(s.events >= 3);
    assert_string_equal(s.finish, "length");
    assert_int_equal(s.completion_tokens, 12);
    rows h = history_of("stream-user");
    assert_int_equal(h.n, 1);
    assert_int_equal(h.answered, 1);
    assert_string_equal(h.last_prompt, "Tom");
    assert_string_equal(h.last_response, s.text);
    free(r.body);

    /* non-streaming chat, conversation named by header */
    http_resp c = {0};
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":5}";
    http_to(main_srv.port, "POST", "/v1/chat/completions", body, strlen(body), API_KEY,
            "X-Conversation-Id: header-conv", &c);
    assert_int_equal(c.status, 200);
    cJSON *j = cJSON_Parse(c.body);
    cJSON *m =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
    assert_string_equal(cJSON_GetObjectItem(m, "role")->valuestring, "assistant");
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    h = history_of("header-conv");
    assert_int_equal(h.answered, 1);
    assert_string_equal(h.last_response, cJSON_GetObjectItem(m, "content")->valuestring);
    cJSON_Delete(j);
    free(c.body);
}

/* X-Conversation-Id is a label both ways: an answer names the conversation
 * it was stored in (the client's label, the "user" field, or one the server
 * drew), and a client that echoes it continues that conversation. */
static void test_echoed_conversation_id_continues_the_conversation(void **state)
{
    (void)state;
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2}";
    http_resp a = {0}, b = {0}, u = {0}, n = {0};
    http_to(main_srv.port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_true(a.conv[0] != '\0');
    char echo[64];
    snprintf(echo, sizeof echo, "X-Conversation-Id: %s", a.conv);
    http_to(main_srv.port, "POST", "/v1/completions", body, strlen(body), API_KEY, echo, &b);
    assert_int_equal(b.status, 200);
    assert_string_equal(b.conv, a.conv);
    assert_int_equal(history_of(a.conv).n, 2);
    const char *as_user = "{\"prompt\":\"Once\",\"max_tokens\":2,\"user\":\"echo-user\"}";
    http_to(main_srv.port, "POST", "/v1/completions", as_user, strlen(as_user), API_KEY, NULL, &u);
    assert_string_equal(u.conv, "echo-user");
    http_to(main_srv.port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &n);
    assert_string_not_equal(n.conv, a.conv); /* no label: a new conversation */
    free(a.body);
    free(b.body);
    free(u.body);
    free(n.body);
}

static void test_tokenize_detokenize_round_trip(void **state)
{
    (void)state;
    /* an escaped backslash before u0000 is text, not a NUL */
    http_resp t = post("/tokenize", "{\"content\":\"a\\\\u0000b\"}");
    assert_int_equal(t.status, 200);
    free(t.body);
    http_resp r = post("/tokenize", "{\"content\":\"Once upon a time\"}");
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    cJSON *toks = cJSON_GetObjectItem(j, "tokens");
    assert_true(cJSON_GetArraySize(toks) >= 3);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemReferenceToObject(b, "tokens", toks);
    char *body = cJSON_PrintUnformatted(b);
    http_resp d = post("/detokenize", body);
    assert_int_equal(d.status, 200);
    cJSON *jd = cJSON_Parse(d.body);
    const char *content = cJSON_GetObjectItem(jd, "content")->valuestring;
    assert_non_null(strstr(content, "Once upon a time"));
    cJSON_free(body);
    cJSON_Delete(b);
    cJSON_Delete(j);
    cJSON_Delete(jd);
    free(r.body);
    free(d.body);
}

static void test_routing_errors(void **state)
{
    (void)state;
    http_resp r = req("GET", "/v2/nothing", NULL, API_KEY);
    assert_error(&r, 404, NULL);
    free(r.body);
    r = req("GET", "/v1/chat/completions", NULL, API_KEY);
    assert_error(&r, 405, NULL);
    assert_string_equal(r.allow, "POST");
    free(r.body);
    r = req("DELETE", "/health", NULL, API_KEY);
    assert_error(&r, 405, NULL);
    free(r.body);
    /* 2 MiB body: refused with 413 before it is read. Sent the way curl
     * sends large bodies, asking first (Expect: 100-continue): a client that
     * sends 2 MiB unasked may see the connection reset under its upload. */
    size_t n = 2u << 20;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    memcpy(big, "{\"prompt\":\"", 11);
    r = (http_resp){0};
    http_to(main_srv.port, "POST", "/v1/completions", big, n, API_KEY, "Expect: 100-continue", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_error(&r, 413, NULL);
    free(r.body);
    free(big);
}

static void test_malformed_requests_are_400_naming_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *path, *body, *param;
    } corpus[] = {
        {"/v1/completions", "", NULL},
        {"/v1/completions", "{", NULL},
        {"/v1/completions", "{\"prompt\":\"a\"} trailing", NULL},
        {"/v1/completions", "[1,2,3]", NULL},
        {"/v1/completions", "null", NULL},
        {"/v1/completions", "{}", "prompt"},
        {"/v1/completions", "{\"prompt\":42}", "prompt"},
        {"/v1/completions", "{\"prompt\":[1,2]}", "prompt"},
        {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":\"ten\"}", "max_tokens"},
        {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":1e300}", "max_tokens"},
        {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":2.5}", "max_tokens"},
        {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":-7}", "max_tokens"},
        {"/v1/completions", "{\"prompt\":\"a\",\"temperature\":-1}", "temperature"},
        {"/v1/completions", "{\"prompt\":\"a\",\"temperature\":1e999}", "temperature"},
        {"/v1/completions", "{\"prompt\":\"a\",\"top_p\":1.5}", "top_p"},
        {"/v1/completions", "{\"prompt\":\"a\",\"seed\":-1}", "seed"},
        {"/v1/completions", "{\"prompt\":\"a\",\"seed\":123456789012345678901234567890}", "seed"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream\":\"yes\"}", "stream"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stop\":5}", "stop"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stop\":[\"x\",7]}", "stop[1]"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stop\":[\"\"]}", "stop[0]"},
        {"/v1/completions", "{\"prompt\":\"a\",\"n\":3}", "n"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logprobs\":5}", "logprobs"},
        {"/v1/completions", "{\"prompt\":\"a\",\"model\":7}", "model"},
        {"/v1/completions", "{\"prompt\":\"a\",\"user\":[]}", "user"},
        {"/v1/completions", "{\"prompt\":\"a\",\"prompt\":\"b\"}", "prompt"},
        {"/v1/completions", "{\"prompt\":\"a\\u0000b\"}", "prompt"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stop\":[\"x\",\"y\\u0000\"]}", "stop[1]"},
        {"/v1/completions", "{\"prompt\":\"a\",\"user\":\"alice\\u0000one\"}", "user"},
        {"/v1/completions", "{\"prompt\":\"a\",\"x\\u0000\":1}", "x"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\u0000\"}]}"
         "]}",
         "messages[0].content[0].text"},
        {"/v1/completions", "{\"prompt\":\"a\",\"x\":[{\"y\":1},{\"y\":1,\"y\":2}]}", "x[1].y"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"a\"}]}",
         "messages[0].role"},
        {"/v1/completions", "{\"prompt\":\"\xff\xfe\"}", NULL},
        {"/v1/completions", "{\"prompt\":\"\xc0\xaf\"}", NULL},
        {"/v1/completions", "{\"prompt\":\"\xed\xa0\x80\"}", NULL},
        {"/v1/completions", "{\"prompt\":\"\\ud800\"}", NULL},
        {"/v1/chat/completions", "{}", "messages"},
        {"/v1/chat/completions", "{\"messages\":{}}", "messages"},
        {"/v1/chat/completions", "{\"messages\":[]}", "messages"},
        {"/v1/chat/completions", "{\"messages\":[5]}", "messages"},
        {"/v1/chat/completions", "{\"messages\":[{\"content\":\"a\"}]}", "messages[0].role"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"a\"}]}",
         "messages[0].role"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":3}]}",
         "messages[0].content"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
         "messages[0].content"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":"
         "\"\xe2\x82\"}]}",
         NULL},
        {"/tokenize", "{}", "content"},
        {"/tokenize", "{\"content\":1}", "content"},
        {"/tokenize", "{\"content\":\"a\",\"add_special\":\"no\"}", "add_special"},
        {"/detokenize", "{}", "tokens"},
        {"/detokenize", "{\"tokens\":\"1 2\"}", "tokens"},
        {"/detokenize", "{\"tokens\":[1,-1]}", "tokens"},
        {"/detokenize", "{\"tokens\":[1,99999999]}", "tokens"},
        {"/detokenize", "{\"tokens\":[1.5]}", "tokens"},
        {"/detokenize", "{\"tokens\":[\"a\"]}", "tokens"},
    };
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        http_resp r = post(corpus[i].path, corpus[i].body);
        if (r.status != 400)
            fail_msg("case %zu (%s %s): status %ld: %s", i, corpus[i].path, corpus[i].body,
                     r.status, r.body);
        assert_error(&r, 400, corpus[i].param);
        free(r.body);
    }
    /* the server is still healthy after all of that */
    http_resp h = req("GET", "/health", NULL, NULL);
    assert_int_equal(h.status, 200);
    free(h.body);
}

typedef struct client_arg {
    int port, index;
    http_resp r;
} client_arg;

/* Starts n clients running fn against port, concurrently. */
static void spawn_clients(int port, int n, void *(*fn)(void *), client_arg *args, pthread_t *th)
{
    for (int i = 0; i < n; i++) {
        args[i] = (client_arg){.port = port, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
}

static void *stream_client(void *p)
{
    client_arg *a = p;
    char body[256];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Lily %d\"}],\"max_tokens\":24,"
             "\"stream\":true,\"user\":\"client-%d\",\"seed\":%d}",
             a->index, a->index, a->index);
    http_to(a->port, "POST", "/v1/chat/completions", body, strlen(body), API_KEY, NULL, &a->r);
    return NULL;
}

static void test_eight_concurrent_streams_complete_and_metrics_match(void **state)
{
    (void)state;
    double req0 = metric("ghostflow_requests_total");
    double err0 = metric("ghostflow_errors_total");
    double tok0 = metric("ghostflow_completion_tokens_total");
    client_arg args[8];
    pthread_t th[8];
    spawn_clients(main_srv.port, 8, stream_client, args, th);
    int tokens = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].r.rc, CURLE_OK);
        assert_int_equal(args[i].r.status, 200);
        sse_result s = parse_sse(args[i].r.body, true);
        assert_true(s.done_last);
        tokens += s.completion_tokens;
        char label[32];
        snprintf(label, sizeof label, "client-%d", i);
        rows h = history_of(label);
        assert_int_equal(h.answered, 1);
        assert_string_equal(h.last_response, s.text);
        free(args[i].r.body);
    }
    assert_true(tokens > 0);
    /* requests: the 8 streams and the 3 metric reads before this one (each
     * /metrics call counts itself). */
    assert_int_equal((long)(metric("ghostflow_requests_total") - req0), 8 + 3);
    assert_int_equal((long)(metric("ghostflow_errors_total") - err0), 0);
    assert_int_equal((long)(metric("ghostflow_completion_tokens_total") - tok0), tokens);
    assert_int_equal((long)metric("ghostflow_slots_total"), 2);
    assert_int_equal((long)metric("ghostflow_queue_depth"), 0);
}

static void test_client_hanging_up_mid_stream_is_stored_cancelled(void **state)
{
    (void)state;
    double c0 = metric("ghostflow_cancelled_total");
    /* A generation of stories260K is fast: try a few times for a hang-up that
     * lands before the answer ends; one cancelled record is required. */
    int cancelled = 0;
    for (int attempt = 0; attempt < 5 && !cancelled; attempt++) {
        char label[32], header[64];
        snprintf(label, sizeof label, "hangup-%d", attempt);
        snprintf(header, sizeof header, "X-Conversation-Id: %s", label);
        const char *body = "{\"prompt\":\"Once upon a time\",\"temperature\":0,"
                           "\"max_tokens\":400,\"stream\":true}";
        http_resp r = {.abort_after = 1};
        http_to(main_srv.port, "POST", "/v1/completions", body, strlen(body), API_KEY, header, &r);
        assert_int_equal(r.rc, CURLE_WRITE_ERROR);
        free(r.body);
        /* the server stores the answer once the slot notices */
        for (int wait = 0; wait < 100; wait++) {
            rows h = history_of(label);
            if (h.answered) {
                cancelled += h.cancelled;
                break;
            }
            usleep(50 * 1000);
        }
    }
    assert_true(cancelled > 0);
    assert_true(metric("ghostflow_cancelled_total") - c0 >= cancelled);
}

static void *flood_client(void *p)
{
    client_arg *a = p;
    const char *body = "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"max_tokens\":400,"
                       "\"stream\":true}";
    http_to(a->port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &a->r);
    return NULL;
}

static void test_full_queue_is_503(void **state)
{
    (void)state;
    make_db(tu_path("busy.db"));
    server_proc busy = start_server(tu_path("busy.db"), "1", "0", "60");
    int rejected = 0, served = 0;
    for (int round = 0; round < 5 && !rejected; round++) {
        client_arg args[12];
        pthread_t th[12];
        spawn_clients(busy.port, 12, flood_client, args, th);
        for (int i = 0; i < 12; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(args[i].r.rc, CURLE_OK);
            if (args[i].r.status == 503) {
                assert_error(&args[i].r, 503, NULL);
                rejected++;
            } else {
                assert_int_equal(args[i].r.status, 200);
                assert_true(parse_sse(args[i].r.body, false).done_last);
                served++;
            }
            free(args[i].r.body);
        }
    }
    stop_server(&busy);
    assert_true(rejected > 0);
    assert_true(served > 0);
}

/* Posts body to /v1/completions in the conversation labelled prefix-INDEX. */
static void post_labelled(client_arg *a, const char *prefix, const char *body)
{
    char header[64];
    snprintf(header, sizeof header, "X-Conversation-Id: %s-%d", prefix, a->index);
    http_to(a->port, "POST", "/v1/completions", body, strlen(body), API_KEY, header, &a->r);
}

static void *timeout_client(void *p)
{
    post_labelled(p, "timeout", "{\"prompt\":\"Once upon a time\",\"max_tokens\":400}");
    return NULL;
}

/* One slot and a 2 ms limit: requests that wait behind others or generate
 * past it are answered 504 in OpenAI's shape, and each of them is still in
 * the history — the prompt with an answer marked cancelled. */
static void test_request_past_the_timeout_is_504_and_stored_cancelled(void **state)
{
    (void)state;
    const char *db = tu_path("timeout.db");
    make_db(db);
    server_proc ts = start_server(db, "1", "8", "0.002");
    enum { N = 6 };
    client_arg args[N];
    pthread_t th[N];
    spawn_clients(ts.port, N, timeout_client, args, th);
    bool timed_out[N];
    int n_timed_out = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].r.rc, CURLE_OK);
        timed_out[i] = args[i].r.status == 504;
        if (timed_out[i]) {
            assert_error(&args[i].r, 504, NULL);
            assert_non_null(strstr(args[i].r.body, "\"timeout_error\""));
            n_timed_out++;
        } else {
            assert_int_equal(args[i].r.status, 200);
        }
        free(args[i].r.body);
    }
    stop_server(&ts); /* a clean stop records every job, queued ones too */
    assert_true(n_timed_out > 0);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        char label[32];
        snprintf(label, sizeof label, "timeout-%d", i);
        rows h = history_in(db, label);
        assert_int_equal(h.n, 1);
        assert_int_equal(h.answered, 1);
        assert_string_equal(h.last_prompt, "Once upon a time");
        if (!timed_out[i])
            assert_int_equal(h.cancelled, 0);
        cancelled += h.cancelled;
    }
    /* A generation that ends on its own just as the deadline passes is
     * stored whole although its client got 504; the others are cancelled. */
    assert_true(cancelled > 0);
}

/* A field of /health at port. */
static int health_at(int port, const char *field)
{
    http_resp r = {0};
    http_to(port, "GET", "/health", NULL, 0, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, field)));
    int v = cJSON_GetObjectItem(j, field)->valueint;
    cJSON_Delete(j);
    free(r.body);
    return v;
}

/* Waits (up to 5 s) until /health's field at port reads want. */
static void await_health(int port, const char *field, int want)
{
    int v = -1;
    for (int i = 0; i < 500 && (v = health_at(port, field)) != want; i++)
        usleep(10 * 1000);
    if (v != want)
        fail_msg("/health %s stayed %d, expected %d", field, v, want);
}

static void *labelled_client(void *p)
{
    post_labelled(p, "abandon", "{\"prompt\":\"Once upon a time\",\"max_tokens\":4}");
    return NULL;
}

/* One slot, a queue of two. The slot is held up (this process holds the
 * database's write lock, so the running request waits to store its prompt),
 * two clients queue and hang up: they leave the queue at once (stored as
 * cancelled), and a new client is queued instead of getting 503. */
static void test_abandoned_queued_requests_leave_the_queue(void **state)
{
    (void)state;
    const char *db = tu_path("abandon.db");
    make_db(db);
    server_proc as = start_server(db, "1", "2", "60");
    zqlite_db *z = zqlite_open_encrypted(db, DB_KEY, strlen(DB_KEY));
    assert_non_null(z);
    zqlite_result *lock = zqlite_execute(z, "BEGIN IMMEDIATE");
    assert_int_equal(lock->status, ZQLITE_OK);
    zqlite_free_result(lock);

    client_arg running, late;
    pthread_t th_running, th_late;
    spawn_clients(as.port, 1, labelled_client, &running, &th_running);
    await_health(as.port, "slots_processing", 1);
    int fds[2];
    char request[512];
    for (int i = 0; i < 2; i++) {
        const char *body = "{\"prompt\":\"Once\",\"max_tokens\":4}";
        snprintf(request, sizeof request,
                 "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Authorization: Bearer " API_KEY "\r\nX-Conversation-Id: abandon-q%d\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 as.port, i, strlen(body), body);
        fds[i] = raw_connect(as.port);
        raw_send(fds[i], request, strlen(request));
    }
    await_health(as.port, "queued", 2);
    close(fds[0]);
    close(fds[1]);
    await_health(as.port, "queued", 0);
    late = (client_arg){.port = as.port, .index = 1};
    assert_int_equal(pthread_create(&th_late, NULL, labelled_client, &late), 0);
    await_health(as.port, "queued", 1);

    lock = zqlite_execute(z, "ROLLBACK");
    zqlite_free_result(lock);
    zqlite_close(z);
    pthread_join(th_running, NULL);
    pthread_join(th_late, NULL);
    assert_int_equal(running.r.status, 200);
    assert_int_equal(late.r.status, 200);
    free(running.r.body);
    free(late.r.body);
    stop_server(&as);
    for (int i = 0; i < 2; i++) {
        char label[32];
        snprintf(label, sizeof label, "abandon-q%d", i);
        rows h = history_in(db, label);
        assert_int_equal(h.answered, 1);
        assert_int_equal(h.cancelled, 1);
    }
}

static void *looping_client(void *p)
{
    client_arg *a = p;
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2,\"user\":\"loop\"}";
    for (int i = 0; i < 6; i++) {
        http_resp r = {0};
        http_to(a->port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &r);
        if (r.status != 200 && a->r.status == 0)
            a->r.status = r.status; /* the first failure */
        free(r.body);
    }
    return NULL;
}

/* 64 clients, each sending its next request as soon as the last is
 * answered, against 4 slots and a queue of 60: never more requests than the
 * slots and queue hold, so none may get 503 (a slot that answered but had not
 * yet counted itself free used to make room look short). */
static void test_clients_within_slots_and_queue_never_get_503(void **state)
{
    (void)state;
    make_db(tu_path("load.db"));
    server_proc ls = start_server(tu_path("load.db"), "4", "60", "60");
    enum { N = 64 };
    client_arg args[N];
    pthread_t th[N];
    spawn_clients(ls.port, N, looping_client, args, th);
    int failed = 0;
    long first = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].r.status) {
            failed++;
            first = args[i].r.status;
        }
    }
    stop_server(&ls);
    if (failed)
        fail_msg("%d of %d clients got an error (e.g. %ld)", failed, N, first);
}

/* Slow senders (slowloris) cannot hold connections: headers dribbled a line
 * at a time, or a body dribbled a byte at a time, are cut once the read
 * bound passes (0.5 s here, with --timeout 60: libmicrohttpd's idle timeout,
 * renewed by every byte, never fires), while requests sent at a normal pace
 * are served. One client address holds at most --max-conn-per-client
 * connections, so a few clients cannot take all of the server's. */
static void test_slow_senders_are_cut_off(void **state)
{
    (void)state;
    const char *db = tu_path("slow.db");
    make_db(db);
    const char *const extra[] = {"--read-timeout", "0.5", "--min-rate", "100", NULL};
    server_proc ss = start_server_with(db, "1", "2", "60", extra, true);
    char head[256];
    snprintf(head, sizeof head, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", ss.port);
    int fd = raw_connect(ss.port);
    raw_send(fd, head, strlen(head));
    int ms = closed_after(fd, "X-Slow: 1\r\n", 100, 4000);
    close(fd);
    if (ms < 0)
        fail_msg("headers dribbled for 4 s: the connection stayed open");
    assert_true(ms < 3000);

    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Authorization: Bearer " API_KEY "\r\nContent-Length: 200\r\n\r\n{",
             ss.port);
    fd = raw_connect(ss.port);
    raw_send(fd, head, strlen(head));
    ms = closed_after(fd, " ", 100, 4000);
    close(fd);
    if (ms < 0)
        fail_msg("a body dribbled at 10 bytes/s for 4 s: the connection stayed open");
    assert_true(ms < 3000);
    assert_true(metric_at(ss.port, "ghostflow_slow_clients_cut_total") >= 2);

    /* a body slower than the bound but above the rate is served: 160 bytes
     * in 20-byte pieces every 100 ms (200 bytes/s) take 0.7 s */
    char body160[161];
    snprintf(body160, sizeof body160, "{\"max_tokens\":1,\"prompt\":\"%0132d\"}", 0);
    assert_int_equal(strlen(body160), 160);
    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
             "Authorization: Bearer " API_KEY "\r\nContent-Length: 160\r\n\r\n",
             ss.port);
    fd = raw_connect(ss.port);
    raw_send(fd, head, strlen(head));
    for (int i = 0; i < 8; i++) {
        usleep(100 * 1000);
        raw_send(fd, body160 + 20 * i, 20);
    }
    char got[4096];
    raw_read(fd, got, sizeof got, 3000);
    close(fd);
    if (strncmp(got, "HTTP/1.1 200", 12) != 0)
        fail_msg("a body at 200 bytes/s over 0.7 s: '%.120s'", got);

    /* a request at a normal pace is served */
    http_resp r = {0};
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2}";
    http_to(ss.port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    stop_server(&ss);

    /* A fresh server allowing 3 connections per address: this test's are the
     * only ones, so the fourth is the one closed at once. */
    const char *const limit[] = {"--max-conn-per-client", "3", NULL};
    ss = start_server_with(db, "1", "2", "60", limit, true);
    int fds[4], closed = 0;
    for (int i = 0; i < 4; i++)
        fds[i] = raw_connect(ss.port);
    for (int i = 3; i >= 0; i--) { /* the newest first: the others must still be open */
        bool gone = closed_after(fds[i], NULL, 20, i == 3 ? 1000 : 50) >= 0;
        if (gone != (i == 3))
            fail_msg("connection %d of 4 was %s", i + 1, gone ? "closed" : "kept");
        closed += gone;
        close(fds[i]);
    }
    assert_int_equal(closed, 1);
    stop_server(&ss);

    /* No minimum body rate still leaves the headers their bound. */
    const char *const no_rate[] = {"--read-timeout", "0.5", "--min-rate", "0", NULL};
    ss = start_server_with(db, "1", "2", "60", no_rate, true);
    snprintf(head, sizeof head, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", ss.port);
    fd = raw_connect(ss.port);
    raw_send(fd, head, strlen(head));
    ms = closed_after(fd, "X-Slow: 1\r\n", 100, 4000);
    close(fd);
    if (ms < 0)
        fail_msg("--min-rate 0: headers dribbled for 4 s: the connection stayed open");
    assert_true(ms < 3000);
    stop_server(&ss);
}

/* Bad serve options are usage errors (exit 2) naming the flag, before any
 * database or model work. */
static void test_bad_serve_options_are_usage_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"--timeout 0", "--timeout: 0 is out of range"},
        {"--timeout 1s", "--timeout: '1s' is not a number"},
        {"--db-cache 10", "--db-cache: 10 is out of range"},
        {"--db-cache lots", "--db-cache"},
        {"--parallel 0", "--parallel"},
        {"--read-timeout 0", "--read-timeout"},
        {"--min-rate fast", "--min-rate"},
        {"--max-conn-per-client -1", "--max-conn-per-client"},
        {"--host-allow a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,A,B,C,D,E,F,G",
         "--host-allow: more than"},
        {"--cors-origin a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,A,B,C,D,E,F,G",
         "--cors-origin: more than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512], err[1024];
        snprintf(cmd, sizeof cmd, "%s serve -m %s --db %s %s", tu_program("ghostflow"), MODEL,
                 tu_path("never.db"), cases[i].args);
        assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 2);
        if (!strstr(err, cases[i].says))
            fail_msg("%s: stderr lacks '%s': %s", cases[i].args, cases[i].says, err);
    }
    assert_int_equal(access(tu_path("never.db"), F_OK), -1);
}

/* Prompts of different lengths, so the fused batch mixes positions. */
static const char *const batch_prompts[4] = {
    "Once upon a time",
    "Lily had a red ball and",
    "The little dog ran to the park because it",
    "Tom",
};

/* When set, greedy clients wait for each other and send at once. */
static pthread_barrier_t *batch_start;

static void *greedy_client(void *p)
{
    client_arg *a = p;
    char body[256];
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"temperature\":0,\"max_tokens\":64}",
             batch_prompts[a->index]);
    if (batch_start)
        pthread_barrier_wait(batch_start);
    http_to(a->port, "POST", "/v1/completions", body, strlen(body), API_KEY, NULL, &a->r);
    return NULL;
}

static char *completion_text(http_resp *r)
{
    assert_int_equal(r->rc, CURLE_OK);
    assert_int_equal(r->status, 200);
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    char *t = strdup(cJSON_GetObjectItem(c, "text")->valuestring);
    cJSON_Delete(j);
    free(r->body);
    return t;
}

/* Four greedy requests decoded together in one forward batch give exactly
 * the texts they give one at a time: each item of a fused batch sees only
 * its own KV cache, and every row of a matrix product is computed alone. */
static void test_concurrent_requests_batch_together_with_sequential_results(void **state)
{
    (void)state;
    make_db(tu_path("batch.db"));
    server_proc bs = start_server(tu_path("batch.db"), "4", "8", "60");
    char *alone[4];
    for (int i = 0; i < 4; i++) {
        client_arg a = {.port = bs.port, .index = i};
        greedy_client(&a);
        alone[i] = completion_text(&a.r);
    }
    assert_int_equal((long)metric_at(bs.port, "ghostflow_batch_sequences_max"), 1);
    /* A stories260K answer takes about a millisecond: the clients start
     * together, and a busy machine gets several rounds to overlap them. */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    batch_start = &start;
    int fused = 0;
    for (int round = 0; round < 20 && fused < 2; round++) {
        client_arg args[4];
        pthread_t th[4];
        spawn_clients(bs.port, 4, greedy_client, args, th);
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            char *t = completion_text(&args[i].r);
            assert_string_equal(t, alone[i]);
            free(t);
        }
        fused = (int)metric_at(bs.port, "ghostflow_batch_sequences_max");
    }
    batch_start = NULL;
    pthread_barrier_destroy(&start);
    assert_true(fused >= 2);
    assert_true(metric_at(bs.port, "ghostflow_batch_steps_total") > 0);
    stop_server(&bs);
    for (int i = 0; i < 4; i++)
        free(alone[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_page_and_models),
        cmocka_unit_test(test_missing_or_wrong_api_key_is_401),
        cmocka_unit_test(test_every_protected_route_needs_the_key),
        cmocka_unit_test(test_missing_key_is_refused_before_the_body),
        cmocka_unit_test(test_cross_site_requests_are_refused),
        cmocka_unit_test(test_request_line_and_header_rules),
        cmocka_unit_test(test_not_found_body_is_utf8_json),
        cmocka_unit_test(test_completion_counts_tokens_and_is_reproducible),
        cmocka_unit_test(test_stop_string_cuts_the_answer),
        cmocka_unit_test(test_chat_stream_ends_with_done_and_is_stored),
        cmocka_unit_test(test_echoed_conversation_id_continues_the_conversation),
        cmocka_unit_test(test_tokenize_detokenize_round_trip),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_malformed_requests_are_400_naming_the_field),
        cmocka_unit_test(test_eight_concurrent_streams_complete_and_metrics_match),
        cmocka_unit_test(test_client_hanging_up_mid_stream_is_stored_cancelled),
        cmocka_unit_test(test_full_queue_is_503),
        cmocka_unit_test(test_abandoned_queued_requests_leave_the_queue),
        cmocka_unit_test(test_clients_within_slots_and_queue_never_get_503),
        cmocka_unit_test(test_slow_senders_are_cut_off),
        cmocka_unit_test(test_bad_serve_options_are_usage_errors),
        cmocka_unit_test(test_request_past_the_timeout_is_504_and_stored_cancelled),
        cmocka_unit_test(test_concurrent_requests_batch_together_with_sequential_results),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
