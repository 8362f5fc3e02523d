/*
 * api.c — the public functions of ghostllm.h: models, contexts, generation
 * with streaming, tokenizer wrappers, error reporting.
 *
 * A generation (generate_run):
 *   1. tokenize the prompt (BOS as the model asks); a prompt that leaves no
 *      room in the window is GHOST_ERR_CONTEXT_FULL;
 *   2. keep the longest prefix the KV cache already holds (the context keeps
 *      the token history of its cache) and evaluate the rest in batches;
 *   3. sample → stop on an end-of-generation token, a stop string,
 *      max_tokens, the full window or cancellation → feed the token back.
 * Text reaches the callback only as whole UTF-8 characters, and text that
 * could still become a stop string is held back until it cannot.
 *
 * Context-window rule (documented in ghostllm.h): prompt + answer never
 * exceed n_ctx tokens; the last token of a full window is returned but not
 * evaluated (it needs no cache slot), and the generation ends with
 * GHOST_FINISH_LENGTH.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "llm_internal.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

/* Prompt tokens evaluated per forward call: bounds the scratch memory. */
#define MAX_BATCH 512
#define MAX_CTX   (1 << 24)

struct ghost_context {
    const ghost_model *model;
    ghost_model *owned_model; /* set by ghost_init*: freed with the context */
    ghost_params params;
    int32_t n_ctx;
    kv_cache kv;
    fwd_state *fwd;
    batcher *batch; /* not owned: forward calls are fused there */
    sampler *smp;
    int32_t *history; /* the tokens whose keys/values are in kv */
    int32_t n_past;
    int32_t *prompt; /* tokenized prompt, n_ctx entries */
    fwd_item *items; /* one batch */
    float *logits;   /* n_vocab */
    ghost_token_callback seed_cb;
    char *piece_buf; /* NUL-terminated copy for the seed callback */
    size_t piece_cap;
    atomic_int cancel;
    ghost_status errcode;
    char errmsg[GHOST_ERRMSG_MAX];
};

/* ---- errors ---------------------------------------------------------------- */

static ghost_status ctx_error(ghost_context *ctx, ghost_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ghost_status ctx_error(ghost_context *ctx, ghost_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->errcode = ghost_set_errorv(ctx->errmsg, sizeof ctx->errmsg, code, fmt, ap);
    va_end(ap);
    return code;
}

/* Moves the calling thread's last error (set by an internal module) onto ctx. */
static ghost_status ctx_take_error(ghost_context *ctx, ghost_status code)
{
    return ctx_error(ctx, code, "%s", ghost_thread_errmsg());
}

const char *ghost_errmsg(const ghost_context *ctx)
{
    return ctx ? ctx->errmsg : ghost_thread_errmsg();
}

ghost_status ghost_errcode(const ghost_context *ctx)
{
    return ctx ? ctx->errcode : ghost_thread_errcode();
}

void ghost_free(void *ptr)
{
    free(ptr);
}

/* ---- parameters ------------------------------------------------------------ */

ghost_gen_params ghost_default_gen_params(void)
{
    return (ghost_gen_params){
        .max_tokens = 2048,
        .temperature = 0.7f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = GHOST_SEED_RANDOM,
        .stop = NULL,
        .n_stop = 0,
        .parse_special = false,
        .add_bos = true,
    };
}

ghost_params ghost_default_params(void)
{
    return (ghost_params){
        .n_ctx = 0, .n_threads = 0, .kv_f16 = true, .gen = ghost_default_gen_params()};
}

/* NULL when p is usable, else the complaint. */
static const char *check_gen_params(const ghost_gen_params *p)
{
    if (!isfinite(p->temperature) || p->temperature < 0.0f)
        return "temperature must be >= 0";
    if (p->top_k < 0)
        return "top_k must be >= 0";
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return "top_p must be in (0, 1]";
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return "min_p must be in [0, 1]";
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0.0f)
        return "repeat_penalty must be > 0";
    if (p->repeat_last_n < -1)
        return "repeat_last_n must be >= -1";
    if (p->n_stop > 0 && p->stop == NULL)
        return "n_stop > 0 but stop is NULL";
    for (size_t i = 0; i < p->n_stop; i++)
        if (p->stop[i] == NULL || p->stop[i][0] == '\0')
            return "stop strings must be non-empty";
    return NULL;
}

/* ---- model ----------------------------------------------------------------- */

ghost_model *ghost_model_load(const char *path)
{
    ghost_clear_error();
    if (path == NULL) {
        ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "model path is NULL");
        return NULL;
    }
    ghost_model *m;
    return model_load(path, &m) == GHOST_OK ? m : NULL;
}

void ghost_model_free(ghost_model *model)
{
    model_free(model);
}

ghost_status ghost_model_get_info(const ghost_model *m, ghost_model_info *info)
{
    if (m == NULL || info == NULL)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "model or info is NULL");
    const model_hparams *hp = &m->hp;
    *info = (ghost_model_info){
        .architecture = m->arch_name,
        .name = m->name,
        .chat_template = m->chat_template,
        .n_vocab = hp->n_vocab,
        .n_ctx_train = hp->n_ctx_train,
        .n_embd = hp->n_embd,
        .n_layer = hp->n_layer,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .n_ff = hp->n_ff,
        .bos_token = tok_bos(m->vocab),
        .eos_token = tok_eos(m->vocab),
        .n_params = m->n_params,
        .file_size = m->gguf->size,
        .file_type = m->file_type,
    };
    return GHOST_OK;
}

/* ---- tokenizer wrappers ---------------------------------------------------- */

ghost_status ghost_tokenize(const ghost_model *model, const char *text, size_t len,
                            bool add_special, bool parse_special, int32_t *tokens, size_t cap,
                            size_t *n_tokens)
{
    if (model == NULL || (text == NULL && len > 0) || n_tokens == NULL ||
        (tokens == NULL && cap > 0))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "tokenize: NULL argument");
    return tok_encode(model->vocab, text ? text : "", len, add_special, parse_special, tokens, cap,
                      n_tokens);
}

int32_t ghost_token_to_piece(const ghost_model *model, int32_t token, char *buf, size_t cap)
{
    if (model == NULL || (buf == NULL && cap > 0) || token < 0 || token >= model->hp.n_vocab)
        return -1;
    return tok_piece(model->vocab, token, buf, cap);
}

/* One token's piece into buf (cap bytes); returns its length, which may
 * exceed cap (then buf holds nothing useful). */
static size_t piece_of(const tok_vocab *v, int32_t id, char *buf, size_t cap)
{
    int32_t r = tok_piece(v, id, buf, cap);
    return r < 0 ? (size_t) - (int64_t)r : (size_t)r;
}

ghost_status ghost_detokenize(const ghost_model *model, const int32_t *tokens, size_t n,
                              char **text)
{
    if (model == NULL || text == NULL || (tokens == NULL && n > 0))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "detokenize: NULL argument");
    *text = NULL;
    size_t len = 0;
    char tmp[8];
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= model->hp.n_vocab)
            return ghost_set_error(GHOST_ERR_BAD_INPUT,
                                   "detokenize: token %zu: id %d out of range (vocabulary of %d)",
                                   i, tokens[i], model->hp.n_vocab);
        len += piece_of(model->vocab, tokens[i], tmp, 0);
    }
    char *out = malloc(len + 1);
    if (out == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "detokenize: out of memory for %zu bytes", len);
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += piece_of(model->vocab, tokens[i], out + at, len - at);
    out[at] = '\0';
    *text = out;
    return GHOST_OK;
}

/* ---- contexts -------------------------------------------------------------- */

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

ghost_context *ghost_context_new(const ghost_model *model, const ghost_params *params)
{
    ghost_clear_error();
    ghost_params p = params ? *params : ghost_default_params();
    const char *bad = check_gen_params(&p.gen);
    if (model == NULL)
        bad = "model is NULL";
    else if (p.n_ctx < 0 || p.n_ctx > MAX_CTX)
        bad = "n_ctx must be in 0..16777216";
    else if (p.n_threads < 0 || p.n_threads > 1024)
        bad = "n_threads must be in 0..1024";
    if (bad != NULL) {
        ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "context: %s", bad);
        return NULL;
    }
    const model_hparams *hp = &model->hp;
    if (p.n_ctx == 0)
        p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (p.n_threads == 0)
        p.n_threads = online_cpus();

    ghost_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        ghost_set_error(GHOST_ERR_NOMEM, "context: out of memory");
        return NULL;
    }
    ctx->model = model;
    ctx->params = p;
    ctx->n_ctx = p.n_ctx;
    const int32_t n_batch = p.n_ctx < MAX_BATCH ? p.n_ctx : MAX_BATCH;
    if (kv_cache_init(&ctx->kv, hp, p.n_ctx, p.kv_f16) != GHOST_OK ||
        (ctx->fwd = fwd_state_create(model, n_batch, p.n_ctx, p.n_threads)) == NULL ||
        (ctx->smp = sampler_create(hp->n_vocab)) == NULL)
        goto fail;
    ctx->history = malloc((size_t)p.n_ctx * sizeof *ctx->history);
    ctx->prompt = malloc((size_t)p.n_ctx * sizeof *ctx->prompt);
    ctx->items = malloc((size_t)n_batch * sizeof *ctx->items);
    ctx->logits = malloc((size_t)hp->n_vocab * sizeof *ctx->logits);
    if (!ctx->history || !ctx->prompt || !ctx->items || !ctx->logits) {
        ghost_set_error(GHOST_ERR_NOMEM, "context: out of memory for %d positions", p.n_ctx);
        goto fail;
    }
    return ctx;
fail:
    ghost_free_context(ctx);
    return NULL;
}

ghost_context *ghost_init_ex(const char *model_path, const ghost_params *params)
{
    ghost_model *m = ghost_model_load(model_path);
    if (m == NULL)
        return NULL;
    ghost_context *ctx = ghost_context_new(m, params);
    if (ctx == NULL) {
        model_free(m);
        return NULL;
    }
    ctx->owned_model = m;
    return ctx;
}

ghost_context *ghost_init(const char *model_path)
{
    return ghost_init_ex(model_path, NULL);
}

void ghost_free_context(ghost_context *ctx)
{
    if (ctx == NULL)
        return;
    fwd_state_destroy(ctx->fwd);
    kv_cache_free(&ctx->kv);
    sampler_destroy(ctx->smp);
    free(ctx->history);
    free(ctx->prompt);
    free(ctx->items);
    free(ctx->logits);
    free(ctx->piece_buf);
    model_free(ctx->owned_model);
    free(ctx);
}

const ghost_model *ghost_context_model(const ghost_context *ctx)
{
    return ctx ? ctx->model : NULL;
}

void ghost_context_cancel(ghost_context *ctx)
{
    if (ctx != NULL)
        atomic_store(&ctx->cancel, 1);
}

ghost_status batch_attach(ghost_context *ctx, batcher *b)
{
    if (ctx == NULL || b == NULL || ctx->model != batch_model(b) || ctx->n_ctx > batch_window(b))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "batch: context is NULL, over another model or a wider window");
    ctx->batch = b;
    return GHOST_OK;
}

batcher *batch_create_like(const ghost_context *ctx, int32_t extra, int n_threads)
{
    if (ctx == NULL || extra < 0 || extra > MAX_BATCH || n_threads < 0 || n_threads > 1024) {
        ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                        "batch: context is NULL, or extra or n_threads out of range");
        return NULL;
    }
    return batch_create(ctx->model, fwd_state_batch(ctx->fwd) + extra, ctx->n_ctx,
                        n_threads ? n_threads : online_cpus());
}

void ghost_context_reset(ghost_context *ctx)
{
    if (ctx != NULL)
        ctx->n_past = 0;
}

/* ---- streaming text -------------------------------------------------------- */

/* The answer's text and what of it the callback has seen. */
typedef struct stream {
    char *text;
    size_t len, cap, sent;
    const ghost_gen_params *gp;
    ghost_stream_fn cb;
    void *user_data;
    bool cancelled; /* the callback asked to stop */
} stream;

static bool stream_append(stream *st, const char *s, size_t n)
{
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        while (cap < st->len + n + 1)
            cap *= 2;
        char *t = realloc(st->text, cap);
        if (t == NULL)
            return false;
        st->text = t;
        st->cap = cap;
    }
    memcpy(st->text + st->len, s, n);
    st->len += n;
    st->text[st->len] = '\0';
    return true;
}

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * sequence. Bytes that can never complete (stray continuation bytes, invalid
 * leads) count as complete so that nothing waits forever. */
static size_t utf8_complete_prefix(const char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        const unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80)
            continue;
        const size_t need = c >= 0xF8 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

/* Longest suffix of s[0..n) that is a proper prefix of a stop string. */
static size_t stop_prefix_len(const ghost_gen_params *gp, const char *s, size_t n)
{
    size_t hold = 0;
    for (size_t i = 0; i < gp->n_stop; i++) {
        const size_t L = strlen(gp->stop[i]);
        for (size_t k = (L - 1 < n ? L - 1 : n); k > hold; k--)
            if (memcmp(s + n - k, gp->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* Offset of the earliest stop string in s[from..len), or SIZE_MAX. */
static size_t find_stop(const stream *st, size_t from)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < st->gp->n_stop; i++) {
        const char *hit =
            memmem(st->text + from, st->len - from, st->gp->stop[i], strlen(st->gp->stop[i]));
        if (hit != NULL && (size_t)(hit - st->text) < best)
            best = (size_t)(hit - st->text);
    }
    return best;
}

static void stream_emit(stream *st, size_t upto)
{
    if (upto <= st->sent || st->cancelled)
        return;
    const size_t from = st->sent;
    st->sent = upto;
    if (st->cb != NULL && st->cb(st->text + from, upto - from, st->user_data) != 0)
        st->cancelled = true;
}

/* After a token's text was appended: true when a stop string ended the answer. */
static bool stream_step(stream *st)
{
    size_t at = find_stop(st, st->sent);
    if (at != SIZE_MAX) {
        st->len = at;
        st->text[at] = '\0';
        stream_emit(st, utf8_complete_prefix(st->text, at));
        return true;
    }
    size_t upto = st->len - stop_prefix_len(st->gp, st->text + st->sent, st->len - st->sent);
    stream_emit(st, utf8_complete_prefix(st->text, upto));
    return false;
}

/* End of the answer: an unfinished UTF-8 sequence becomes U+FFFD, the rest is sent. */
static bool stream_finish(stream *st)
{
    if (st->cancelled) {
        st->len = st->sent; /* the answer is what the caller saw */
        if (st->text)
            st->text[st->len] = '\0';
        return true;
    }
    size_t whole = utf8_complete_prefix(st->text, st->len);
    if (whole < st->len) {
        st->len = whole;
        if (!stream_append(st, "\xEF\xBF\xBD", 3))
            return false;
    }
    stream_emit(st, st->len);
    return st->text != NULL || stream_append(st, "", 0);
}

/* ---- generation ------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Evaluates tokens[0..n) at positions n_past.. and leaves the last one's logits. */
static ghost_status eval_tokens(ghost_context *ctx, const int32_t *tokens, int32_t n)
{
    int32_t B = fwd_state_batch(ctx->fwd);
    if (ctx->batch && batch_max_items(ctx->batch) < B)
        B = batch_max_items(ctx->batch);
    for (int32_t done = 0; done < n;) {
        const int32_t m = n - done < B ? n - done : B;
        for (int32_t i = 0; i < m; i++)
            ctx->items[i] = (fwd_item){tokens[done + i], ctx->n_past + i, &ctx->kv,
                                       done + i == n - 1 ? ctx->logits : NULL};
        ghost_status st = ctx->batch ? batch_forward(ctx->batch, ctx->items, m)
                                     : forward_batch(ctx->fwd, ctx->items, m);
        if (st != GHOST_OK)
            return ctx_take_error(ctx, st);
        memcpy(ctx->history + ctx->n_past, tokens + done, (size_t)m * sizeof *tokens);
        ctx->n_past += m;
        done += m;
    }
    return GHOST_OK;
}

/* Tokenizes the prompt into ctx->prompt, reuses the cached prefix and
 * evaluates the rest. */
static ghost_status process_prompt(ghost_context *ctx, const char *prompt,
                                   const ghost_gen_params *gp, ghost_response *r)
{
    size_t n = 0;
    ghost_status st = tok_encode(ctx->model->vocab, prompt, strlen(prompt), gp->add_bos,
                                 gp->parse_special, ctx->prompt, (size_t)ctx->n_ctx, &n);
    if (st == GHOST_ERR_BUFFER_TOO_SMALL || (st == GHOST_OK && n >= (size_t)ctx->n_ctx))
        return ctx_error(ctx, GHOST_ERR_CONTEXT_FULL,
                         "prompt is %zu tokens but the context window holds %d, and the answer "
                         "needs at least one more",
                         n, ctx->n_ctx);
    if (st != GHOST_OK)
        return ctx_take_error(ctx, st);
    if (n == 0)
        return ctx_error(ctx, GHOST_ERR_BAD_INPUT, "empty prompt (and no BOS token to start from)");
    r->prompt_tokens = (int)n;

    int32_t keep = 0;
    while (keep < ctx->n_past && (size_t)keep < n && ctx->history[keep] == ctx->prompt[keep])
        keep++;
    if ((size_t)keep == n)
        keep--; /* the last prompt token is evaluated again for its logits */
    r->cached_tokens = keep;
    ctx->n_past = keep;
    return eval_tokens(ctx, ctx->prompt + keep, (int32_t)n - keep);
}

/* Samples and feeds tokens until something ends the answer. */
static ghost_status generate_tokens(ghost_context *ctx, const ghost_gen_params *gp, stream *st,
                                    ghost_response *r)
{
    const tok_vocab *v = ctx->model->vocab;
    char piece[256];
    for (;;) {
        if (atomic_load(&ctx->cancel) || st->cancelled) {
            r->finish_reason = GHOST_FINISH_CANCELLED;
            return GHOST_OK;
        }
        if (gp->max_tokens >= 0 && r->completion_tokens >= gp->max_tokens) {
            r->finish_reason = GHOST_FINISH_LENGTH;
            return GHOST_OK;
        }
        const int32_t tok =
            sampler_sample(ctx->smp, ctx->logits, ctx->history, (size_t)ctx->n_past);
        if (tok_is_eog(v, tok)) {
            r->finish_reason = GHOST_FINISH_STOP;
            return GHOST_OK;
        }
        r->completion_tokens++;
        size_t len = piece_of(v, tok, piece, sizeof piece);
        bool ok = len <= sizeof piece ? stream_append(st, piece, len) : false;
        if (len > sizeof piece) { /* a long piece: go through the answer buffer */
            char *big = malloc(len);
            ok = big != NULL && piece_of(v, tok, big, len) == len && stream_append(st, big, len);
            free(big);
        }
        if (!ok)
            return ctx_error(ctx, GHOST_ERR_NOMEM, "out of memory for the answer's text");
        if (stream_step(st)) {
            r->finish_reason = GHOST_FINISH_STOP;
            return GHOST_OK;
        }
        if (st->cancelled) {
            r->finish_reason = GHOST_FINISH_CANCELLED;
            return GHOST_OK;
        }
        if (ctx->n_past + 1 >= ctx->n_ctx) {
            /* the window is full with this token, which needs no cache slot */
            r->finish_reason = GHOST_FINISH_LENGTH;
            return GHOST_OK;
        }
        if ((gp->max_tokens >= 0 && r->completion_tokens >= gp->max_tokens)) {
            r->finish_reason = GHOST_FINISH_LENGTH;
            return GHOST_OK; /* no need to evaluate a token nobody will follow */
        }
        ghost_status s = eval_tokens(ctx, &tok, 1);
        if (s != GHOST_OK)
            return s;
    }
}

ghost_response *ghost_generate_ex(ghost_context *ctx, const char *prompt,
                                  const ghost_gen_params *params, ghost_stream_fn callback,
                                  void *user_data)
{
    ghost_response *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->finish_reason = GHOST_FINISH_ERROR;
    ghost_status status = GHOST_OK;
    stream st = {0};
    const ghost_gen_params *gp = ctx ? (params ? params : &ctx->params.gen) : NULL;
    const char *bad = ctx == NULL      ? "context is NULL"
                      : prompt == NULL ? "prompt is NULL"
                                       : check_gen_params(gp);
    if (bad != NULL) {
        status = ctx ? ctx_error(ctx, GHOST_ERR_INVALID_ARGUMENT, "generate: %s", bad)
                     : ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "generate: %s", bad);
        goto done;
    }
    ctx->errcode = GHOST_OK;
    ctx->errmsg[0] = '\0';
    atomic_store(&ctx->cancel, 0);
    st = (stream){.gp = gp, .cb = callback, .user_data = user_data};

    const double t0 = now_ms();
    if (ctx->batch)
        batch_member_join(ctx->batch);
    status = process_prompt(ctx, prompt, gp, r);
    const double t1 = now_ms();
    r->prompt_ms = t1 - t0;
    if (status == GHOST_OK) {
        sampler_start(ctx->smp, gp);
        status = generate_tokens(ctx, gp, &st, r);
    }
    if (ctx->batch)
        batch_member_leave(ctx->batch);
    if (status == GHOST_OK && !stream_finish(&st))
        status = ctx_error(ctx, GHOST_ERR_NOMEM, "out of memory for the answer's text");
    r->generation_ms = now_ms() - t1;
    if (status == GHOST_OK && r->finish_reason == GHOST_FINISH_CANCELLED)
        status = ctx_error(ctx, GHOST_ERR_CANCELLED, "generation cancelled after %d tokens",
                           r->completion_tokens);
done:
    r->text = st.text;
    if (r->text == NULL && (r->text = strdup("")) == NULL) {
        ghost_free_response(r);
        return NULL;
    }
    r->tokens_used = r->prompt_tokens + r->completion_tokens;
    r->error_code = status;
    if (status != GHOST_OK) {
        if (r->finish_reason != GHOST_FINISH_CANCELLED)
            r->finish_reason = GHOST_FINISH_ERROR;
        r->error_message = strdup(ghost_errmsg(ctx));
    }
    return r;
}

/* The seed API's callback wants a NUL-terminated piece. */
static int seed_trampoline(const char *piece, size_t len, void *user_data)
{
    ghost_context *ctx = user_data;
    if (len + 1 > ctx->piece_cap) {
        char *b = realloc(ctx->piece_buf, len + 1);
        if (b == NULL)
            return 1; /* cannot deliver the text: stop rather than drop it */
        ctx->piece_buf = b;
        ctx->piece_cap = len + 1;
    }
    memcpy(ctx->piece_buf, piece, len);
    ctx->piece_buf[len] = '\0';
    ctx->seed_cb(ctx->piece_buf);
    return 0;
}

ghost_response *ghost_generate(ghost_context *ctx, const char *prompt,
                               ghost_token_callback callback)
{
    if (ctx != NULL)
        ctx->seed_cb = callback;
    return ghost_generate_ex(ctx, prompt, NULL, callback && ctx ? seed_trampoline : NULL, ctx);
}

void ghost_free_response(ghost_response *response)
{
    if (response == NULL)
        return;
    free(response->text);
    free(response->error_message);
    free(response);
}
