/*
 * api.c — the JSON side of the server: OpenAI's request and response shapes
 * for /v1/chat/completions and /v1/completions (whole answers and stream
 * chunks), llama-server's /tokenize and /detokenize, and OpenAI's error
 * object. Every rejected field is named in the error's "param" and message.
 *
 * Parsing and printing is cJSON's; this file only checks types and ranges.
 * Fields the engine cannot honour (n > 1, logprobs, echo, suffix, tools) are
 * refused rather than silently ignored.
 */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

/* Prints and deletes root; the text is plain malloc memory (free), NULL when
 * root is NULL or out of memory. */
static char *to_text(cJSON *root)
{
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    char *out = json ? strdup(json) : NULL;
    cJSON_free(json);
    return out;
}

/* ---- errors -------------------------------------------------------------- */

/* Messages quote what the client sent (a path, a header), and the client
 * may send any bytes: the message and param are cleaned so the error is
 * always valid UTF-8, cut only between characters. */
int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...)
{
    char raw[sizeof e->message];
    e->status = status;
    e->code = NULL;
    e->type = status == 401   ? "authentication_error"
              : status == 403 ? "permission_error"
              : status == 404 ? "not_found_error"
              : status == 503 ? "server_overloaded"
              : status == 504 ? "timeout_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error";
    param = param ? param : "";
    srv_utf8_clean(e->param, sizeof e->param, param, strlen(param));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    srv_utf8_clean(e->message, sizeof e->message, raw, strlen(raw));
    return -1;
}

int srv_fail_too_large(srv_error *e, size_t max)
{
    srv_fail(e, 413, "", "request body larger than %zu bytes", max);
    e->code = "request_too_large";
    return -1;
}

char *srv_error_json(const srv_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "error");
    if (o && cJSON_AddStringToObject(o, "message", e->message) &&
        cJSON_AddStringToObject(o, "type", e->type) &&
        (e->param[0] ? cJSON_AddStringToObject(o, "param", e->param)
                     : cJSON_AddNullToObject(o, "param")) &&
        (e->code ? cJSON_AddStringToObject(o, "code", e->code) : cJSON_AddNullToObject(o, "code")))
        return to_text(root);
    cJSON_Delete(root);
    return NULL;
}

/* ---- UTF-8 --------------------------------------------------------------- */

bool srv_utf8_valid(const char *str, size_t len, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : 4;
        uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
        bool ok = n < 4 && i + n < len + (n == 0);
        for (size_t k = 1; ok && k <= n; k++) {
            ok = i + k < len && (s[i + k] & 0xC0) == 0x80;
            if (ok)
                cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* overlong forms, surrogates and code points past U+10FFFF */
        if (ok && n > 0)
            ok = cp >= (n == 1   ? 0x80u
                        : n == 2 ? 0x800u
                                 : 0x10000u) &&
                 !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
        if (!ok) {
            if (bad_offset)
                *bad_offset = i;
            return false;
        }
        i += n + 1;
    }
    return true;
}

size_t srv_utf8_clean(char *out, size_t cap, const char *s, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len;) {
        size_t good, bad;
        if (srv_utf8_valid(s + i, len - i, &bad))
            bad = len - i;
        /* the valid run, whole characters only */
        for (good = 0; good < bad;) {
            unsigned char c = (unsigned char)s[i + good];
            size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (j + good + n >= cap)
                break;
            good += n;
        }
        memcpy(out + j, s + i, good);
        j += good;
        i += good;
        if (good < bad || i == len || j + 3 >= cap)
            break;
        memcpy(out + j, "\xEF\xBF\xBD", 3);
        j += 3;
        i++;
    }
    if (cap)
        out[j] = '\0';
    return j;
}

/* A JSON string that must be UTF-8 (cJSON passes bytes through unchecked). */
static int check_text(const char *s, const char *param, srv_error *e)
{
    size_t bad;
    if (!srv_utf8_valid(s, strlen(s), &bad))
        return srv_fail(e, 400, param, "%s: invalid UTF-8 at byte %zu", param, bad);
    return 0;
}

/* ---- typed fields -------------------------------------------------------- */

/* Absent and null both mean "not given" (clients send null for defaults). */
static const cJSON *field(const cJSON *body, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* 0 absent, 1 read into *out, -1 bad (type, range, not whole when integral). */
static int get_number(const cJSON *body, const char *name, double lo, double hi, bool integral,
                      double *out, srv_error *e)
{
    const cJSON *v = field(body, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return srv_fail(e, 400, name, "%s: expected a number", name);
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || (integral && d != floor(d)))
        return srv_fail(e, 400, name, "%s: %s out of range [%.17g, %.17g]%s", name,
                        isfinite(d) ? "value" : "non-finite value", lo, hi,
                        integral ? " or not an integer" : "");
    *out = d;
    return 1;
}

static int get_bool(const cJSON *body, const char *name, bool *out, srv_error *e)
{
    const cJSON *v = field(body, name);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return srv_fail(e, 400, name, "%s: expected true or false", name);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int get_string(const cJSON *body, const char *name, const char **out, srv_error *e)
{
    const cJSON *v = field(body, name);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return srv_fail(e, 400, name, "%s: expected a string", name);
    if (check_text(v->valuestring, name, e))
        return -1;
    *out = v->valuestring;
    return 1;
}

/* ---- generation requests ------------------------------------------------- */

void srv_gen_request_free(srv_gen_request *r)
{
    free(r->prompt);
    free(r->record);
    free(r->label);
    for (size_t i = 0; i < SRV_MAX_STOP; i++)
        free(r->stops[i]);
    memset(r, 0, sizeof *r);
}

static int add_stop(srv_gen_request *r, const cJSON *s, const char *param, srv_error *e)
{
    if (!cJSON_IsString(s))
        return srv_fail(e, 400, param, "%s: expected a string", param);
    if (check_text(s->valuestring, param, e))
        return -1;
    if (!s->valuestring[0])
        return srv_fail(e, 400, param, "%s: empty stop string", param);
    if (r->gen.n_stop == SRV_MAX_STOP)
        return srv_fail(e, 400, "stop", "stop: more than %d strings", SRV_MAX_STOP);
    if (!(r->stops[r->gen.n_stop] = strdup(s->valuestring)))
        return srv_fail(e, 500, "", "out of memory");
    r->stop_ptrs[r->gen.n_stop] = r->stops[r->gen.n_stop];
    r->gen.n_stop++;
    return 0;
}

/* OpenAI's sampling fields, plus llama-server's top_k / min_p / repeat_penalty. */
static int parse_sampling(const cJSON *body, bool chat, srv_gen_request *r, srv_error *e)
{
    /* 2^53 for seed: every seed survives the trip through a JSON number. */
    static const struct {
        const char *name;
        double lo, hi;
        char kind; /* i: int32_t, f: float, u: uint64_t */
        size_t off;
    } nums[] = {
        {"max_tokens", -1, INT32_MAX, 'i', offsetof(ghost_gen_params, max_tokens)},
        {"max_completion_tokens", -1, INT32_MAX, 'i', offsetof(ghost_gen_params, max_tokens)},
        {"temperature", 0, 2, 'f', offsetof(ghost_gen_params, temperature)},
        {"top_p", 0, 1, 'f', offsetof(ghost_gen_params, top_p)},
        {"top_k", 0, 1 << 20, 'i', offsetof(ghost_gen_params, top_k)},
        {"min_p", 0, 1, 'f', offsetof(ghost_gen_params, min_p)},
        {"repeat_penalty", 0.01, 100, 'f', offsetof(ghost_gen_params, repeat_penalty)},
        {"seed", 0, 9007199254740991.0, 'u', offsetof(ghost_gen_params, seed)},
    };
    double d;
    int rc;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!chat && strcmp(nums[i].name, "max_completion_tokens") == 0)
            continue;
        rc = get_number(body, nums[i].name, nums[i].lo, nums[i].hi, nums[i].kind != 'f', &d, e);
        if (rc < 0)
            return -1;
        char *at = (char *)&r->gen + nums[i].off;
        if (rc == 1 && nums[i].kind == 'i')
            *(int32_t *)at = (int32_t)d;
        else if (rc == 1 && nums[i].kind == 'u')
            *(uint64_t *)at = (uint64_t)d;
        else if (rc == 1)
            *(float *)at = (float)d;
    }
    if (r->gen.top_p <= 0)
        r->gen.top_p = 1e-6f; /* 0 means "only the top token" */
    if ((rc = get_number(body, "n", 1, 1, true, &d, e)) < 0)
        return srv_fail(e, 400, "n", "n: only 1 choice per request is supported");

    const cJSON *stop = field(body, "stop");
    if (cJSON_IsArray(stop)) {
        char param[32];
        int i = 0;
        for (const cJSON *s = stop->child; s; s = s->next, i++) {
            snprintf(param, sizeof param, "stop[%d]", i);
            if (add_stop(r, s, param, e))
                return -1;
        }
    } else if (stop && add_stop(r, stop, "stop", e)) {
        return -1;
    }
    r->gen.stop = r->gen.n_stop ? r->stop_ptrs : NULL;

    bool b = false;
    if (get_bool(body, "stream", &r->stream, e) < 0)
        return -1;
    if (get_bool(body, "echo", &b, e) < 0 || b)
        return b ? srv_fail(e, 400, "echo", "echo: not supported") : -1;
    const cJSON *lp = field(body, "logprobs");
    if (lp && !cJSON_IsFalse(lp))
        return srv_fail(e, 400, "logprobs", "logprobs: not supported");
    if (field(body, "suffix"))
        return srv_fail(e, 400, "suffix", "suffix: not supported");
    const cJSON *tools = field(body, "tools");
    if (tools && !(cJSON_IsArray(tools) && !tools->child))
        return srv_fail(e, 400, "tools", "tools: not supported");
    const char *s = NULL;
    if (get_string(body, "model", &s, e) < 0)
        return -1;
    s = NULL;
    if (get_string(body, "user", &s, e) < 0)
        return -1;
    if (s) {
        if (strlen(s) > 256)
            return srv_fail(e, 400, "user", "user: longer than 256 bytes");
        if (s[0] && !(r->label = strdup(s)))
            return srv_fail(e, 500, "", "out of memory");
    }
    return 0;
}

/* messages[i].content: a string, or an array of {"type":"text","text":...}. */
static int message_content(const cJSON *m, int i, char **out, srv_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    const cJSON *c = field(m, "content");
    if (!c) {
        *out = strdup("");
    } else if (cJSON_IsString(c)) {
        if (check_text(c->valuestring, param, e))
            return -1;
        *out = strdup(c->valuestring);
    } else if (cJSON_IsArray(c)) {
        size_t len = 0;
        int j = 0;
        for (const cJSON *p = c->child; p; p = p->next, j++) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (!cJSON_IsObject(p) || !cJSON_IsString(type) || strcmp(type->valuestring, "text"))
                return srv_fail(e, 400, param,
                                "%s[%d]: only {\"type\": \"text\"} parts are supported", param, j);
            if (!cJSON_IsString(text))
                return srv_fail(e, 400, param, "%s[%d].text: expected a string", param, j);
            if (check_text(text->valuestring, param, e))
                return -1;
            len += strlen(text->valuestring);
        }
        if ((*out = malloc(len + 1)))
            (*out)[0] = '\0';
        for (const cJSON *p = c->child; p && *out; p = p->next)
            strcat(*out, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    } else {
        return srv_fail(e, 400, param, "%s: expected a string or an array of text parts", param);
    }
    return *out ? 0 : srv_fail(e, 500, "", "out of memory");
}

static int parse_messages(const cJSON *body, const ghost_model *model, srv_gen_request *r,
                          srv_error *e)
{
    const cJSON *msgs = field(body, "messages");
    if (!msgs)
        return srv_fail(e, 400, "messages", "messages: missing");
    if (!cJSON_IsArray(msgs))
        return srv_fail(e, 400, "messages", "messages: expected an array");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0)
        return srv_fail(e, 400, "messages", "messages: empty");
    ghost_chat_message *cm = calloc((size_t)n, sizeof *cm);
    char **texts = calloc((size_t)n, sizeof *texts);
    int rc = cm && texts ? 0 : srv_fail(e, 500, "", "out of memory");
    int i = 0;
    for (const cJSON *m = msgs->child; m && rc == 0; m = m->next, i++) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d].role", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m))
            rc = srv_fail(e, 400, "messages", "messages[%d]: expected an object", i);
        else if (!cJSON_IsString(role))
            rc = srv_fail(e, 400, param, "%s: missing or not a string", param);
        else if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "developer") &&
                 strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant"))
            rc = srv_fail(e, 400, param, "%s: must be system, developer, user or assistant", param);
        else
            rc = message_content(m, i, &texts[i], e);
        if (rc == 0) {
            /* the templates know "system"; OpenAI's "developer" means the same */
            cm[i].role = strcmp(role->valuestring, "developer") ? role->valuestring : "system";
            cm[i].content = texts[i];
        }
    }
    char *formatted = NULL;
    if (rc == 0 && ghost_chat_format(model, cm, (size_t)n, true, &formatted) != GHOST_OK)
        rc = srv_fail(e, 400, "messages", "messages: %s", ghost_errmsg(NULL));
    if (rc == 0) {
        r->prompt = strdup(formatted);
        /* The history shows the newest message; the earlier turns are the
         * conversation's earlier exchanges when the client names it. */
        r->record = strdup(texts[n - 1]);
        if (!r->prompt || !r->record)
            rc = srv_fail(e, 500, "", "out of memory");
    }
    ghost_free(formatted);
    for (int k = 0; texts && k < n; k++)
        free(texts[k]);
    free(texts);
    free(cm);
    return rc;
}

int srv_parse_generation(const cJSON *body, bool chat, const ghost_model *model,
                         const ghost_gen_params *defaults, srv_gen_request *out, srv_error *e)
{
    memset(out, 0, sizeof *out);
    out->chat = chat;
    out->gen = *defaults;
    out->gen.stop = NULL;
    out->gen.n_stop = 0;
    if (!cJSON_IsObject(body))
        return srv_fail(e, 400, "", "the request body must be a JSON object");
    if (parse_sampling(body, chat, out, e))
        return -1;
    if (chat) {
        out->gen.parse_special = true; /* the template's markers are special tokens */
        return parse_messages(body, model, out, e);
    }
    const cJSON *p = field(body, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child))
        p = p->child; /* ["text"] is the one-prompt batch form */
    if (!p)
        return srv_fail(e, 400, "prompt", "prompt: missing");
    if (!cJSON_IsString(p))
        return srv_fail(e, 400, "prompt",
                        "prompt: expected a string (token arrays and "
                        "several prompts are not supported)");
    if (check_text(p->valuestring, "prompt", e))
        return -1;
    out->gen.parse_special = false;
    if (!(out->prompt = strdup(p->valuestring)) || !(out->record = strdup(p->valuestring)))
        return srv_fail(e, 500, "", "out of memory");
    return 0;
}

int srv_handle_body(srv_route_id route, const char *body, size_t len, const ghost_model *model,
                    const ghost_gen_params *defaults, srv_gen_request *gen, char **answer,
                    srv_error *e)
{
    *answer = NULL;
    memset(gen, 0, sizeof *gen);
    cJSON *json = srv_parse_body(body, len, e);
    if (!json)
        return -1;
    int rc;
    switch (route) {
    case SRV_R_CHAT:
    case SRV_R_COMPLETIONS:
        rc = srv_parse_generation(json, route == SRV_R_CHAT, model, defaults, gen, e);
        if (rc)
            srv_gen_request_free(gen);
        break;
    case SRV_R_TOKENIZE:
    case SRV_R_DETOKENIZE:
        *answer =
            route == SRV_R_TOKENIZE ? srv_tokenize(json, model, e) : srv_detokenize(json, model, e);
        rc = *answer ? SRV_BODY_ANSWER : -1;
        break;
    default: rc = srv_fail(e, 500, "", "route %d takes no body", (int)route);
    }
    cJSON_Delete(json);
    return rc;
}

/* ---- answers ------------------------------------------------------------- */

const char *srv_finish_name(ghost_finish_reason r)
{
    /* OpenAI knows stop and length; a cancelled or failed answer ended early. */
    return r == GHOST_FINISH_LENGTH ? "length" : r == GHOST_FINISH_STOP ? "stop" : "cancelled";
}

/* {"id","object","created","model","choices":[]} — common to every shape. */
static cJSON *envelope(const char *object, const char *id, const char *model, int64_t created,
                       cJSON **choice)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *choices = NULL;
    if (!root || !cJSON_AddStringToObject(root, "id", id) ||
        !cJSON_AddStringToObject(root, "object", object) ||
        !cJSON_AddNumberToObject(root, "created", (double)created) ||
        !cJSON_AddStringToObject(root, "model", model) ||
        !(choices = cJSON_AddArrayToObject(root, "choices")) || !(*choice = cJSON_CreateObject()) ||
        (cJSON_AddItemToArray(choices, *choice), !cJSON_AddNumberToObject(*choice, "index", 0))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static bool add_usage(cJSON *root, const ghost_response *r)
{
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    return u && cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens) &&
           cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens) &&
           cJSON_AddNumberToObject(u, "total_tokens", r->prompt_tokens + r->completion_tokens);
}

/* Adds text under "message"/"delta" (chat) or "text", with role when asked. */
static bool add_text(cJSON *choice, bool chat, const char *holder, const char *text, size_t len,
                     bool role)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    bool ok;
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(choice, holder);
        ok = m && (!role || cJSON_AddStringToObject(m, "role", "assistant")) &&
             (text == NULL || cJSON_AddStringToObject(m, "content", copy));
    } else {
        ok = cJSON_AddStringToObject(choice, "text", copy) &&
             cJSON_AddNullToObject(choice, "logprobs");
    }
    free(copy);
    return ok;
}

char *srv_completion_json(bool chat, const char *id, const char *model, int64_t created,
                          const ghost_response *r)
{
    cJSON *choice;
    cJSON *root =
        envelope(chat ? "chat.completion" : "text_completion", id, model, created, &choice);
    if (root && add_text(choice, chat, "message", r->text, strlen(r->text), true) &&
        cJSON_AddStringToObject(choice, "finish_reason", srv_finish_name(r->finish_reason)) &&
        add_usage(root, r))
        return to_text(root);
    cJSON_Delete(root);
    return NULL;
}

char *srv_chunk_event(bool chat, const char *id, const char *model, int64_t created,
                      const char *text, size_t len, const ghost_response *final)
{
    cJSON *choice;
    cJSON *root =
        envelope(chat ? "chat.completion.chunk" : "text_completion", id, model, created, &choice);
    bool ok = root != NULL;
    if (ok && final) {
        ok = (chat ? cJSON_AddObjectToObject(choice, "delta") != NULL
                   : add_text(choice, false, NULL, "", 0, false)) &&
             cJSON_AddStringToObject(choice, "finish_reason",
                                     srv_finish_name(final->finish_reason)) &&
             add_usage(root, final);
    } else if (ok) {
        ok = add_text(choice, chat, "delta", text ? text : "", text ? len : 0, text == NULL) &&
             cJSON_AddNullToObject(choice, "finish_reason");
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return srv_sse_event(to_text(root));
}

char *srv_sse_event(char *json)
{
    size_t n = json ? strlen(json) + 9 : 0;
    char *ev = json ? malloc(n) : NULL;
    if (ev)
        snprintf(ev, n, "data: %s\n\n", json);
    free(json);
    return ev;
}

/* ---- tokenizer endpoints ------------------------------------------------- */

static char *print_and_delete(cJSON *root, srv_error *e)
{
    char *out = to_text(root);
    if (!out)
        srv_fail(e, 500, "", "out of memory");
    return out;
}

char *srv_tokenize(const cJSON *body, const ghost_model *model, srv_error *e)
{
    const char *text = NULL;
    bool add_special = false, parse_special = true;
    if (!cJSON_IsObject(body))
        return srv_fail(e, 400, "", "the request body must be a JSON object"), NULL;
    int rc = get_string(body, "content", &text, e);
    if (rc == 0)
        srv_fail(e, 400, "content", "content: missing");
    if (rc <= 0 || get_bool(body, "add_special", &add_special, e) < 0 ||
        get_bool(body, "parse_special", &parse_special, e) < 0)
        return NULL;
    size_t len = strlen(text), n = 0, cap = len + 8;
    int32_t *toks = malloc(cap * sizeof *toks);
    ghost_status gs =
        toks ? ghost_tokenize(model, text, len, add_special, parse_special, toks, cap, &n)
             : GHOST_ERR_NOMEM;
    if (gs == GHOST_ERR_BUFFER_TOO_SMALL) {
        free(toks);
        cap = n;
        toks = malloc(cap * sizeof *toks);
        gs = toks ? ghost_tokenize(model, text, len, add_special, parse_special, toks, cap, &n)
                  : GHOST_ERR_NOMEM;
    }
    cJSON *root = NULL;
    if (gs == GHOST_OK) {
        root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "tokens");
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *num = cJSON_CreateNumber(toks[i]);
            if (!num || !cJSON_AddItemToArray(arr, num)) {
                cJSON_Delete(num);
                cJSON_Delete(root);
                root = NULL;
                break;
            }
        }
    }
    free(toks);
    if (gs != GHOST_OK)
        return srv_fail(e, gs == GHOST_ERR_NOMEM ? 500 : 400, "content", "content: %s",
                        ghost_errmsg(NULL)),
               NULL;
    return print_and_delete(root, e);
}

/* Replaces bytes that do not form UTF-8 with U+FFFD, so the JSON answer is
 * valid (a byte-level token may be half of a character). */
static char *utf8_sanitize(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(3 * len + 1);
    if (out)
        srv_utf8_clean(out, 3 * len + 1, s, len);
    return out;
}

char *srv_detokenize(const cJSON *body, const ghost_model *model, srv_error *e)
{
    if (!cJSON_IsObject(body))
        return srv_fail(e, 400, "", "the request body must be a JSON object"), NULL;
    const cJSON *arr = field(body, "tokens");
    if (!arr)
        return srv_fail(e, 400, "tokens", "tokens: missing"), NULL;
    if (!cJSON_IsArray(arr))
        return srv_fail(e, 400, "tokens", "tokens: expected an array of token ids"), NULL;
    ghost_model_info info;
    if (ghost_model_get_info(model, &info) != GHOST_OK)
        return srv_fail(e, 500, "", "model info: %s", ghost_errmsg(NULL)), NULL;
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    int32_t *toks = malloc((n ? n : 1) * sizeof *toks);
    if (!toks)
        return srv_fail(e, 500, "", "out of memory"), NULL;
    for (const cJSON *t = arr->child; t; t = t->next, i++) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : -1;
        if (!(d >= 0 && d < info.n_vocab && d == floor(d))) {
            free(toks);
            return srv_fail(e, 400, "tokens", "tokens[%zu]: not a token id in [0, %d)", i,
                            info.n_vocab),
                   NULL;
        }
        toks[i] = (int32_t)d;
    }
    char *text = NULL;
    ghost_status gs = ghost_detokenize(model, toks, n, &text);
    free(toks);
    if (gs != GHOST_OK)
        return srv_fail(e, 400, "tokens", "tokens: %s", ghost_errmsg(NULL)), NULL;
    char *clean = utf8_sanitize(text);
    ghost_free(text);
    cJSON *root = cJSON_CreateObject();
    if (!clean || !cJSON_AddStringToObject(root, "content", clean)) {
        cJSON_Delete(root);
        root = NULL;
    }
    free(clean);
    return print_and_delete(root, e);
}
