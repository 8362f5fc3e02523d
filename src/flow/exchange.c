/*
 * exchange.c — one prompt and its answer: gf_process_prompt, and the
 * recording-only pair gf_log_prompt / gf_log_response for generations that
 * run outside the service.
 *
 * Order matters for "nothing is lost": the prompt is committed before any
 * piece of the answer reaches the caller and before the answer is stored, and
 * the answer is committed whatever way the generation ended (stop, length,
 * cancelled, error), with the partial text. Only a dead process leaves a
 * prompt without an answer. The prompt's commit runs on the writer thread
 * (writer.c) while this thread formats the conversation and generates, so
 * storing it adds no time to the exchange; streamed pieces that come before
 * it are held back (the gate below).
 *
 * A new turn is the conversation's earlier answered turns plus the prompt,
 * formatted by ghost_chat_format (the model's template, or plain
 * continuation). When that does not fit the context window with room for the
 * answer, the oldest turns are left out.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

/* Template tokens a turn adds around its content, for the first estimate. */
#define TURN_OVERHEAD_TOKENS 8

static gf_status check_prompt(gf_service *svc, const char *fn, int64_t conversation_id,
                              const char *prompt, const ghost_gen_params *params, bool draw_seed,
                              ghost_gen_params *gen)
{
    if (conversation_id < 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: conversation id %lld", fn,
                          (long long)conversation_id);
    if (!prompt)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: prompt is NULL", fn);
    long bad = flow_utf8_invalid_at(prompt, strlen(prompt));
    if (bad >= 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: prompt is not valid UTF-8 (byte %ld)",
                          fn, bad);
    *gen = params ? *params : svc->gen;
    /* -1 is the engine's "until the window is full"; 0 would only fill the cache. */
    if (gen->max_tokens < -1 || gen->max_tokens == 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT,
                          "%s: max_tokens %d (want >= 1, or -1 for the whole window)", fn,
                          gen->max_tokens);
    if (gen->n_stop && !gen->stop)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: stop is NULL with n_stop %zu", fn,
                          gen->n_stop);
    /* A stored exchange must be replayable: make "random" a concrete seed. */
    while (draw_seed && gen->seed == GHOST_SEED_RANDOM)
        randombytes_buf(&gen->seed, sizeof gen->seed);
    return GF_OK;
}

/* ---- prompt formatting ----------------------------------------------------- */

static size_t count_tokens(const gf_service *svc, const char *text, bool special)
{
    int32_t dummy;
    size_t n = 0;
    ghost_status gs =
        ghost_tokenize(svc->model, text, strlen(text), special, special, &dummy, 0, &n);
    /* Unknown (a tokenizer failure): count bytes, an upper bound for every
     * tokenizer with byte fallback — the window check then errs on "too long". */
    return gs == GHOST_OK || gs == GHOST_ERR_BUFFER_TOO_SMALL ? n : strlen(text);
}

/* Plain continuation for models without a chat template: each answer
 * follows its prompt directly — exactly the text the context generated, so
 * the KV cache still holds it — and turns are separated by a newline. */
static gf_status format_plain(gf_service *svc, const flow_turns *t, size_t first,
                              const char *prompt, char **out)
{
    size_t len = strlen(prompt) + 1;
    for (size_t i = first; i < t->n; i++)
        len += strlen(t->user[i]) + strlen(t->assistant[i]) + 1;
    char *s = malloc(len), *o = s;
    if (!s)
        return flow_error(svc, GF_ERR_NOMEM, "formatting the conversation: out of memory");
    for (size_t i = first; i < t->n; i++)
        o += sprintf(o, "%s%s\n", t->user[i], t->assistant[i]);
    strcpy(o, prompt);
    *out = s;
    return GF_OK;
}

static gf_status format_turns(gf_service *svc, const flow_turns *t, size_t first,
                              const char *prompt, char **out)
{
    if (!svc->has_template)
        return format_plain(svc, t, first, prompt, out);
    size_t n = 2 * (t->n - first) + 1, k = 0;
    ghost_chat_message *msgs = malloc(n * sizeof *msgs);
    if (!msgs)
        return flow_error(svc, GF_ERR_NOMEM, "formatting the conversation: out of memory");
    for (size_t i = first; i < t->n; i++) {
        msgs[k++] = (ghost_chat_message){"user", t->user[i]};
        msgs[k++] = (ghost_chat_message){"assistant", t->assistant[i]};
    }
    msgs[k++] = (ghost_chat_message){"user", prompt};
    char *formatted = NULL;
    ghost_status gs = ghost_chat_format(svc->model, msgs, k, true, &formatted);
    free(msgs);
    if (gs != GHOST_OK)
        return flow_error(svc, GF_ERR_MODEL, "formatting the conversation: %s", ghost_errmsg(NULL));
    /* One owner convention for both formats: the caller frees with free(). */
    *out = strdup(formatted);
    ghost_free(formatted);
    if (!*out)
        return flow_error(svc, GF_ERR_NOMEM, "formatting the conversation: out of memory");
    return GF_OK;
}

/* The formatted conversation: as many of the latest turns as fit in the
 * window with `reserve` tokens left for the answer. */
static gf_status build_input(gf_service *svc, const flow_turns *t, const char *prompt,
                             int32_t reserve, char **out)
{
    if (t->n == 0) /* nothing to leave out: an over-long prompt fails in the engine */
        return format_turns(svc, t, 0, prompt, out);
    size_t budget = svc->n_ctx > reserve ? (size_t)(svc->n_ctx - reserve) : 1;
    bool special = svc->has_template;
    /* First estimate from per-message counts: one tokenization of each
     * message instead of re-tokenizing ever shorter conversations. */
    size_t first = t->n, sum = count_tokens(svc, prompt, false) + TURN_OVERHEAD_TOKENS;
    while (first > 0) {
        size_t c = count_tokens(svc, t->user[first - 1], false) +
                   count_tokens(svc, t->assistant[first - 1], false) + 2 * TURN_OVERHEAD_TOKENS;
        if (sum + c > budget)
            break;
        sum += c;
        first--;
    }
    for (;;) {
        gf_status rc = format_turns(svc, t, first, prompt, out);
        if (rc != GF_OK)
            return rc;
        /* The prompt alone may still be too long: the engine then reports
         * GHOST_ERR_CONTEXT_FULL, which is stored as the answer's error. */
        if (first == t->n || count_tokens(svc, *out, special) <= budget)
            return GF_OK;
        free(*out);
        *out = NULL;
        first++;
    }
}

/* ---- gf_process_prompt ----------------------------------------------------- */

static void answer_from_response(flow_answer *a, const ghost_response *r)
{
    memset(a, 0, sizeof *a);
    a->text = r->text ? r->text : "";
    a->finish = r->finish_reason;
    a->error = r->finish_reason == GHOST_FINISH_ERROR
                   ? (r->error_message ? r->error_message : ghost_strerror(r->error_code))
                   : NULL;
    a->prompt_tokens = r->prompt_tokens;
    a->completion_tokens = r->completion_tokens;
    a->cached_tokens = r->cached_tokens;
    a->prompt_ms = r->prompt_ms;
    a->generation_ms = r->generation_ms;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies the stored answer into the caller's result; false when out of memory. */
static bool fill_result(gf_result *res, const flow_answer *a)
{
    res->text = strdup(a->text ? a->text : "");
    res->error_message = dup_or_null(a->error);
    res->finish_reason = a->finish;
    res->prompt_tokens = a->prompt_tokens;
    res->completion_tokens = a->completion_tokens;
    res->cached_tokens = a->cached_tokens;
    res->prompt_ms = a->prompt_ms;
    res->generation_ms = a->generation_ms;
    return res->text && (!a->error || res->error_message);
}

/* The prompt's transaction, run by the writer thread (writer.c). */
typedef struct prompt_job {
    int64_t conversation_id;
    const char *prompt;
    ghost_gen_params gen; /* a copy: the caller goes on changing its own */
    int64_t conversation_out, prompt_id;
} prompt_job;

static gf_status run_prompt_job(gf_service *svc, void *arg)
{
    prompt_job *p = arg;
    return flow_store_prompt(svc, p->conversation_id, p->prompt, &p->gen, &p->conversation_out,
                             &p->prompt_id);
}

/* Holds the answer back until the prompt is committed: nothing reaches the
 * caller that the history could lack. The generation does not stop for the
 * commit, though: up to GATE_HOLD_PIECES pieces that come before it are
 * kept, and handed over joined with the first piece after it. On a small
 * model the first pieces come before the writer thread has even woken up;
 * on a large one the prompt is stored long before the first piece. Past the
 * limit (or out of memory) the generation waits, so a callback still sees
 * its first piece, and can stop the generation, within a few tokens. */
#define GATE_HOLD_PIECES 8
#define GATE_HOLD_BYTES  4096

typedef struct prompt_gate {
    gf_service *svc;
    flow_write job;
    gf_stream_fn callback;
    void *user_data;
    bool waited;
    gf_status status;
    double wait_ms;
    char *held; /* pieces kept back, joined in order */
    size_t held_len, held_cap;
    int held_pieces;
} prompt_gate;

static gf_status gate_wait(prompt_gate *g)
{
    if (!g->waited) {
        double t0 = flow_now_ms();
        g->status = flow_writer_wait(g->svc, &g->job);
        g->wait_ms = flow_now_ms() - t0;
        g->waited = true;
    }
    return g->status;
}

static bool gate_append(prompt_gate *g, const char *piece, size_t len)
{
    if (g->held_len + len > g->held_cap) {
        size_t cap = g->held_cap ? g->held_cap : 256;
        while (cap < g->held_len + len)
            cap *= 2;
        char *p = realloc(g->held, cap);
        if (!p)
            return false;
        g->held = p;
        g->held_cap = cap;
    }
    memcpy(g->held + g->held_len, piece, len);
    g->held_len += len;
    g->held_pieces++;
    return true;
}

/* Hands over what was kept back (the prompt is stored); the callback's answer. */
static int gate_flush(prompt_gate *g)
{
    if (g->held_len == 0)
        return 0;
    size_t len = g->held_len;
    g->held_len = 0;
    g->held_pieces = 0;
    return g->callback(g->held, len, g->user_data);
}

static int gate_piece(const char *piece, size_t len, void *user_data)
{
    prompt_gate *g = user_data;
    if (!g->waited && !flow_writer_done(&g->job) && g->held_pieces < GATE_HOLD_PIECES &&
        g->held_len + len <= GATE_HOLD_BYTES && gate_append(g, piece, len))
        return 0;
    if (gate_wait(g) != GF_OK)
        return 1; /* the prompt is not stored: show nothing, stop */
    if (g->held_len == 0)
        return g->callback(piece, len, g->user_data);
    /* One piece, so that a stop applies to all the caller saw, exactly. */
    if (gate_append(g, piece, len))
        return gate_flush(g);
    int stop = gate_flush(g); /* out of memory: two pieces */
    return g->callback(piece, len, g->user_data) || stop;
}

gf_status gf_process_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                            const ghost_gen_params *params, gf_stream_fn callback, void *user_data,
                            gf_result **result)
{
    if (!result)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_process_prompt: result is NULL");
    *result = NULL;
    if (!svc)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_process_prompt: svc is NULL");
    if (svc->n_slots == 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT,
                          "gf_process_prompt: the service has no model contexts (n_contexts 0%s)",
                          svc->model ? "" : ", no model");
    ghost_gen_params gen;
    gf_status rc =
        check_prompt(svc, "gf_process_prompt", conversation_id, prompt, params, true, &gen);
    if (rc != GF_OK)
        return rc;
    gf_result *res = calloc(1, sizeof *res);
    if (!res)
        return flow_error(svc, GF_ERR_NOMEM, "gf_process_prompt: out of memory");

    /* 1. The earlier turns are read now (they shape the input); the prompt
     * is committed by the writer while this thread formats and generates. */
    flow_turns turns = {0};
    double t0 = flow_now_ms();
    if (conversation_id != GF_NEW_CONVERSATION &&
        (rc = flow_read_turns(svc, conversation_id, &turns)) != GF_OK) {
        free(res);
        return rc;
    }
    prompt_job pj = {.conversation_id = conversation_id, .prompt = prompt, .gen = gen};
    prompt_gate gate = {.svc = svc,
                        .job = {.run = run_prompt_job, .arg = &pj},
                        .callback = callback,
                        .user_data = user_data};
    flow_writer_submit(svc, &gate.job);
    res->store_ms = flow_now_ms() - t0;

    /* 2. Format and generate; the gate holds the first piece back until
     * the prompt is stored. */
    ghost_response *resp = NULL;
    char *input = NULL;
    flow_answer ans;
    int32_t reserve =
        gen.max_tokens > 0 && gen.max_tokens < svc->n_ctx / 4 ? gen.max_tokens : svc->n_ctx / 4;
    gf_status grc = build_input(svc, &turns, prompt, reserve, &input);
    flow_turns_free(&turns);
    if (grc == GF_OK) {
        double q0 = flow_now_ms();
        int32_t slot = flow_pool_acquire(svc, conversation_id);
        res->queue_ms = flow_now_ms() - q0;
        /* Template text carries special-token markup that must be parsed as such. */
        gen.parse_special = svc->has_template;
        resp = ghost_generate_ex(svc->slots[slot].ctx, input, &gen, callback ? gate_piece : NULL,
                                 &gate);
        /* The slot's cache now holds the conversation: once the prompt is
         * stored, that conversation has an id. */
        flow_pool_release(svc, slot, gate_wait(&gate) == GF_OK ? pj.conversation_out : 0);
        /* A short generation may end before the prompt's commit: what it
         * kept back goes out now. Too late to stop anything, so the
         * callback's answer does not matter. */
        if (gate.status == GF_OK)
            gate_flush(&gate);
        if (resp) {
            answer_from_response(&ans, resp);
            grc = resp->finish_reason == GHOST_FINISH_STOP ||
                          resp->finish_reason == GHOST_FINISH_LENGTH
                      ? GF_OK
                  : resp->finish_reason == GHOST_FINISH_CANCELLED
                      ? flow_error(svc, GF_ERR_CANCELLED, "generation cancelled")
                      : flow_error(svc, GF_ERR_MODEL, "%s", ans.error);
        } else {
            grc = flow_error(svc, GF_ERR_NOMEM, "out of memory in the engine");
        }
    }
    if (!resp) {
        /* Formatting failed or the engine returned nothing: record why. */
        memset(&ans, 0, sizeof ans);
        ans.finish = GHOST_FINISH_ERROR;
        ans.error = gf_errmsg(svc);
    }
    /* The generation's message, kept apart from what waiting may raise. */
    char gmsg[512];
    snprintf(gmsg, sizeof gmsg, "%s", gf_errmsg(svc));
    if (!resp)
        ans.error = gmsg;
    gf_status prc = gate_wait(&gate);
    res->store_ms += gate.wait_ms;
    free(gate.held);
    if (prc != GF_OK) {
        /* Nothing was stored, and the gate showed nothing of the answer. */
        free(input);
        ghost_free_response(resp);
        free(res);
        return prc;
    }
    res->conversation_id = pj.conversation_out;
    res->prompt_id = pj.prompt_id;

    /* 3. The answer, whatever way the generation ended. */
    bool filled = fill_result(res, &ans);
    t0 = flow_now_ms();
    gf_status src = flow_store_answer(svc, res->prompt_id, &ans, &res->response_id);
    res->store_ms += flow_now_ms() - t0;
    free(input);
    ghost_free_response(resp);
    if (!filled) {
        gf_free_result(res);
        return flow_error(svc, GF_ERR_NOMEM, "gf_process_prompt: out of memory");
    }
    *result = res;
    /* A storage failure outranks the generation's own outcome: the caller
     * must learn that the answer is not in the history. */
    if (src != GF_OK)
        return src;
    if (grc != GF_OK)
        flow_error(svc, grc, "prompt %lld: %s", (long long)res->prompt_id, gmsg);
    return grc;
}

void gf_free_result(gf_result *result)
{
    if (!result)
        return;
    free(result->text);
    free(result->error_message);
    free(result);
}

/* ---- recording generations made elsewhere ---------------------------------- */

gf_status gf_log_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                        const ghost_gen_params *params, int64_t *conversation_out,
                        int64_t *prompt_id)
{
    if (!svc || !conversation_out || !prompt_id)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_log_prompt: %s is NULL",
                          !svc                ? "svc"
                          : !conversation_out ? "conversation_out"
                                              : "prompt_id");
    *conversation_out = 0;
    *prompt_id = 0;
    ghost_gen_params gen;
    gf_status rc = check_prompt(svc, "gf_log_prompt", conversation_id, prompt, params, false, &gen);
    if (rc != GF_OK)
        return rc;
    return flow_store_prompt(svc, conversation_id, prompt, &gen, conversation_out, prompt_id);
}

gf_status gf_log_response(gf_service *svc, int64_t prompt_id, const ghost_response *response)
{
    if (!svc || !response)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_log_response: %s is NULL",
                          !svc ? "svc" : "response");
    if (prompt_id <= 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_log_response: prompt id %lld",
                          (long long)prompt_id);
    if ((unsigned)response->finish_reason > GHOST_FINISH_ERROR)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_log_response: finish reason %d",
                          (int)response->finish_reason);
    flow_answer a;
    answer_from_response(&a, response);
    return flow_store_answer(svc, prompt_id, &a, NULL);
}
