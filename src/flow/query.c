/*
 * query.c — reading the history back: exchanges (history, search),
 * conversations, and the consistency check.
 *
 * Listings hand each row to a callback while holding the connection, so
 * nothing is copied; the callback must not call back into the same service
 * (flow_db_lock refuses that instead of deadlocking). Search uses FTS5
 * (prefix match of every word, ranked by bm25; the index is first brought up
 * to date, see store.c) when the database has it, or
 * a LIKE substring match of every word (ASCII-only case folding, full scan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

#define SEARCH_MAX_WORDS 32

#define EXCHANGE_COLS                                                                              \
    "p.id, p.conversation_id, p.created_at, p.content, coalesce(m.name, ''),"                      \
    " coalesce(m.file_hash, ''), p.max_tokens, p.temperature, p.top_k, p.top_p, p.min_p,"          \
    " p.repeat_penalty, p.repeat_last_n, p.seed, r.prompt_id, r.created_at, r.content,"            \
    " r.finish_reason, r.error, r.prompt_tokens, r.completion_tokens, r.cached_tokens,"            \
    " r.prompt_ms, r.generation_ms"
#define EXCHANGE_JOINS                                                                             \
    " LEFT JOIN responses r ON r.prompt_id = p.id LEFT JOIN models m ON m.id = p.model_id"

static ghost_finish_reason finish_from_name(const char *s)
{
    if (!s)
        return GHOST_FINISH_ERROR;
    if (strcmp(s, "stop") == 0)
        return GHOST_FINISH_STOP;
    if (strcmp(s, "length") == 0)
        return GHOST_FINISH_LENGTH;
    if (strcmp(s, "cancelled") == 0)
        return GHOST_FINISH_CANCELLED;
    return GHOST_FINISH_ERROR;
}

static void read_exchange(zqlite_stmt *s, gf_exchange *e)
{
    memset(e, 0, sizeof *e);
    e->prompt_id = zqlite_column_int64(s, 0);
    e->conversation_id = zqlite_column_int64(s, 1);
    e->created_at_ms = zqlite_column_int64(s, 2);
    e->prompt = zqlite_column_text(s, 3);
    e->model_name = zqlite_column_text(s, 4);
    e->model_hash = zqlite_column_text(s, 5);
    e->params = ghost_default_gen_params();
    e->params.max_tokens = (int32_t)zqlite_column_int64(s, 6);
    e->params.temperature = (float)zqlite_column_double(s, 7);
    e->params.top_k = (int32_t)zqlite_column_int64(s, 8);
    e->params.top_p = (float)zqlite_column_double(s, 9);
    e->params.min_p = (float)zqlite_column_double(s, 10);
    e->params.repeat_penalty = (float)zqlite_column_double(s, 11);
    e->params.repeat_last_n = (int32_t)zqlite_column_int64(s, 12);
    e->params.seed = (uint64_t)zqlite_column_int64(s, 13);
    e->params.stop = NULL;
    e->params.n_stop = 0;
    e->answered = zqlite_column_type(s, 14) != ZQLITE_NULL;
    if (!e->answered)
        return;
    e->response_id = zqlite_column_int64(s, 14);
    e->answered_at_ms = zqlite_column_int64(s, 15);
    e->response = zqlite_column_text(s, 16);
    e->finish_reason = finish_from_name(zqlite_column_text(s, 17));
    e->error = zqlite_column_type(s, 18) == ZQLITE_NULL ? NULL : zqlite_column_text(s, 18);
    e->prompt_tokens = (int32_t)zqlite_column_int64(s, 19);
    e->completion_tokens = (int32_t)zqlite_column_int64(s, 20);
    e->cached_tokens = (int32_t)zqlite_column_int64(s, 21);
    e->prompt_ms = zqlite_column_double(s, 22);
    e->generation_ms = zqlite_column_double(s, 23);
    if (!e->response)
        e->response = "";
}

/* A listing: read fills the row from the statement, call hands it over. */
typedef struct row_sink {
    void (*read)(zqlite_stmt *s, struct row_sink *sink);
    int (*call)(struct row_sink *sink);
} row_sink;

typedef struct exchange_sink {
    row_sink base;
    gf_exchange_fn fn;
    void *user_data;
    gf_exchange row;
} exchange_sink;

typedef struct conversation_sink {
    row_sink base;
    gf_conversation_fn fn;
    void *user_data;
    gf_conversation row;
} conversation_sink;

/* Steps s (prepared and bound by the caller, who holds db_mu), handing each
 * row to the sink; finalizes s. */
static gf_status each_row(gf_service *svc, zqlite_stmt *s, const char *what, row_sink *sink)
{
    int zrc;
    while ((zrc = zqlite_step(s)) == ZQLITE_ROW) {
        sink->read(s, sink);
        flow_set_in_callback(svc);
        int stop = sink->call(sink);
        flow_set_in_callback(NULL);
        if (stop) {
            zrc = ZQLITE_DONE;
            break;
        }
    }
    gf_status rc = zrc == ZQLITE_DONE ? GF_OK : flow_db_error(svc, zrc, what);
    zqlite_finalize(s);
    return rc;
}

static void exchange_read(zqlite_stmt *s, row_sink *sink)
{
    read_exchange(s, &((exchange_sink *)sink)->row);
}

static int exchange_call(row_sink *sink)
{
    exchange_sink *x = (exchange_sink *)sink;
    return x->fn(&x->row, x->user_data);
}

static gf_status list_exchanges(gf_service *svc, zqlite_stmt *s, const char *what,
                                gf_exchange_fn fn, void *user_data)
{
    exchange_sink sink = {{exchange_read, exchange_call}, fn, user_data, {0}};
    return each_row(svc, s, what, &sink.base);
}

/* Lists the rows of s, or reports a failed bind (b != 0) and finalizes s. */
static gf_status bound_listing(gf_service *svc, zqlite_stmt *s, int b, const char *what,
                               gf_exchange_fn fn, void *user_data)
{
    if (b) {
        zqlite_finalize(s);
        return flow_error(svc, GF_ERR_DATABASE, "%s: binding a parameter failed", what);
    }
    return list_exchanges(svc, s, what, fn, user_data);
}

static gf_status prepare(gf_service *svc, const char *sql, const char *what, zqlite_stmt **out)
{
    *out = zqlite_prepare_statement(svc->db, sql);
    if (!*out)
        return flow_error(svc, GF_ERR_DATABASE, "%s: %s", what, zqlite_errmsg(svc->db));
    return GF_OK;
}

static gf_status check_listing(gf_service *svc, const char *fn_name, bool have_fn, int64_t limit)
{
    if (!svc || !have_fn)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn_name,
                          !svc ? "svc" : "callback");
    if (limit < 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "%s: limit %lld is negative", fn_name,
                          (long long)limit);
    return GF_OK;
}

gf_status gf_history(gf_service *svc, int64_t conversation_id, int64_t limit, gf_exchange_fn fn,
                     void *user_data)
{
    gf_status rc = check_listing(svc, "gf_history", fn != NULL, limit);
    if (rc != GF_OK)
        return rc;
    /* Newest `limit` first in the inner query, then back to chronological. */
    static const char all_sql[] =
        "SELECT * FROM (SELECT " EXCHANGE_COLS " FROM prompts p" EXCHANGE_JOINS
        " ORDER BY p.id DESC LIMIT ?1) ORDER BY 1";
    static const char conv_sql[] =
        "SELECT * FROM (SELECT " EXCHANGE_COLS " FROM prompts p" EXCHANGE_JOINS
        " WHERE p.conversation_id = ?2 ORDER BY p.id DESC LIMIT ?1)"
        " ORDER BY 1";
    rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    zqlite_stmt *s;
    rc = prepare(svc, conversation_id > 0 ? conv_sql : all_sql, "history", &s);
    if (rc == GF_OK) {
        int b = zqlite_bind_int64(s, 1, limit > 0 ? limit : -1);
        if (conversation_id > 0)
            b |= zqlite_bind_int64(s, 2, conversation_id);
        rc = bound_listing(svc, s, b, "history", fn, user_data);
    }
    flow_db_unlock(svc);
    return rc;
}

/* ---- search ---------------------------------------------------------------- */

typedef struct word {
    const char *p;
    size_t n;
} word;

static size_t split_words(const char *text, word *w, size_t cap)
{
    size_t n = 0;
    const char *p = text;
    while (*p && n < cap) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        w[n++] = (word){start, (size_t)(p - start)};
    }
    return n;
}

/* FTS5 query: every word as a quoted prefix term ("it""s"*), so user text is
 * never read as query syntax. */
static char *fts_query(const word *w, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += 2 * w[i].n + 5;
    char *q = malloc(len), *o = q;
    if (!q)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ' ';
        *o++ = '"';
        for (size_t k = 0; k < w[i].n; k++) {
            if (w[i].p[k] == '"')
                *o++ = '"';
            *o++ = w[i].p[k];
        }
        *o++ = '"';
        *o++ = '*';
    }
    *o = '\0';
    return q;
}

/* LIKE pattern %word% with %, _ and \ escaped. */
static char *like_pattern(const word *w)
{
    char *p = malloc(2 * w->n + 3), *o = p;
    if (!p)
        return NULL;
    *o++ = '%';
    for (size_t k = 0; k < w->n; k++) {
        char c = w->p[k];
        if (c == '%' || c == '_' || c == '\\')
            *o++ = '\\';
        *o++ = c;
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

static gf_status search_fts(gf_service *svc, const word *w, size_t n, int64_t limit,
                            gf_exchange_fn fn, void *user_data)
{
    static const char sql[] = "SELECT " EXCHANGE_COLS " FROM exchange_fts"
                              " JOIN prompts p ON p.id = exchange_fts.rowid" EXCHANGE_JOINS
                              " WHERE exchange_fts MATCH ?1 ORDER BY exchange_fts.rank LIMIT ?2";
    char *q = fts_query(w, n);
    if (!q)
        return flow_error(svc, GF_ERR_NOMEM, "search: out of memory");
    zqlite_stmt *s;
    gf_status rc = prepare(svc, sql, "search", &s);
    if (rc == GF_OK) {
        int b = zqlite_bind_text(s, 1, q, -1) | zqlite_bind_int64(s, 2, limit > 0 ? limit : -1);
        rc = bound_listing(svc, s, b, "search", fn, user_data);
    }
    free(q);
    return rc;
}

static gf_status search_like(gf_service *svc, const word *w, size_t n, int64_t limit,
                             gf_exchange_fn fn, void *user_data)
{
    static const char head[] = "SELECT " EXCHANGE_COLS " FROM prompts p" EXCHANGE_JOINS " WHERE ";
    static const char term[] =
        "(p.content LIKE ?%zu ESCAPE '\\' OR r.content LIKE ?%zu ESCAPE '\\')";
    static const char tail[] = " ORDER BY p.id DESC LIMIT ?1";
    size_t cap = sizeof head + n * (sizeof term + 32) + sizeof tail;
    char *sql = malloc(cap);
    if (!sql)
        return flow_error(svc, GF_ERR_NOMEM, "search: out of memory");
    size_t len = (size_t)snprintf(sql, cap, "%s", head);
    for (size_t i = 0; i < n; i++) {
        if (i)
            len += (size_t)snprintf(sql + len, cap - len, " AND ");
        len += (size_t)snprintf(sql + len, cap - len, term, i + 2, i + 2);
    }
    snprintf(sql + len, cap - len, "%s", tail);
    zqlite_stmt *s;
    gf_status rc = prepare(svc, sql, "search", &s);
    free(sql);
    if (rc != GF_OK)
        return rc;
    int b = zqlite_bind_int64(s, 1, limit > 0 ? limit : -1);
    for (size_t i = 0; i < n && !b; i++) {
        char *pat = like_pattern(&w[i]);
        b = pat ? zqlite_bind_text(s, (int)i + 2, pat, -1) : ZQLITE_NOMEM;
        free(pat);
    }
    return bound_listing(svc, s, b, "search", fn, user_data);
}

gf_status gf_search(gf_service *svc, const char *text, int64_t limit, gf_exchange_fn fn,
                    void *user_data)
{
    gf_status rc = check_listing(svc, "gf_search", fn != NULL, limit);
    if (rc != GF_OK)
        return rc;
    if (!text)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_search: text is NULL");
    long bad = flow_utf8_invalid_at(text, strlen(text));
    if (bad >= 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT,
                          "gf_search: text is not valid UTF-8 (byte %ld)", bad);
    word w[SEARCH_MAX_WORDS];
    size_t n = split_words(text, w, SEARCH_MAX_WORDS);
    if (n == 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_search: no word to search for");
    rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    /* Read-only, the index cannot catch up: it serves only when current
     * (gf_close leaves it so), else the substring match finds everything. */
    bool fts = svc->has_fts;
    if (fts)
        rc = svc->read_only ? flow_fts_current(svc, &fts) : flow_fts_catch_up(svc);
    if (rc == GF_OK)
        rc = fts ? search_fts(svc, w, n, limit, fn, user_data)
                 : search_like(svc, w, n, limit, fn, user_data);
    flow_db_unlock(svc);
    return rc;
}

/* ---- conversations --------------------------------------------------------- */

static void conversation_read(zqlite_stmt *s, row_sink *sink)
{
    gf_conversation *c = &((conversation_sink *)sink)->row;
    c->id = zqlite_column_int64(s, 0);
    c->label = zqlite_column_type(s, 1) == ZQLITE_NULL ? NULL : zqlite_column_text(s, 1);
    c->title = zqlite_column_text(s, 2) ? zqlite_column_text(s, 2) : "";
    c->created_at_ms = zqlite_column_int64(s, 3);
    c->updated_at_ms = zqlite_column_int64(s, 4);
    c->n_exchanges = zqlite_column_int64(s, 5);
}

static int conversation_call(row_sink *sink)
{
    conversation_sink *x = (conversation_sink *)sink;
    return x->fn(&x->row, x->user_data);
}

gf_status gf_conversations(gf_service *svc, int64_t limit, gf_conversation_fn fn, void *user_data)
{
    gf_status rc = check_listing(svc, "gf_conversations", fn != NULL, limit);
    if (rc != GF_OK)
        return rc;
    static const char sql[] =
        "SELECT c.id, c.label, c.title, c.created_at,"
        " coalesce((SELECT max(created_at) FROM prompts WHERE conversation_id = c.id),"
        "          c.created_at) AS updated,"
        " (SELECT count(*) FROM prompts WHERE conversation_id = c.id)"
        " FROM conversations c ORDER BY updated DESC, c.id DESC LIMIT ?1";
    rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    zqlite_stmt *s;
    rc = prepare(svc, sql, "conversations", &s);
    if (rc == GF_OK) {
        if (zqlite_bind_int64(s, 1, limit > 0 ? limit : -1)) {
            zqlite_finalize(s);
            rc = flow_error(svc, GF_ERR_DATABASE, "conversations: binding failed");
        } else {
            conversation_sink sink = {{conversation_read, conversation_call}, fn, user_data, {0}};
            rc = each_row(svc, s, "conversations", &sink.base);
        }
    }
    flow_db_unlock(svc);
    return rc;
}

/* ---- consistency ----------------------------------------------------------- */

static gf_status check_locked(gf_service *svc)
{
    zqlite_result *r = zqlite_execute(svc->db, "PRAGMA integrity_check");
    if (!r)
        return flow_error(svc, GF_ERR_NOMEM, "check: out of memory");
    gf_status rc = GF_OK;
    if (r->status != ZQLITE_OK) {
        rc = flow_db_error(svc, r->status, "integrity check");
    } else {
        const zqlite_value *v = r->row_count ? zqlite_result_cell(r, 0, 0) : NULL;
        if (!v || v->type != ZQLITE_TEXT || strcmp(v->text, "ok") != 0)
            rc = flow_error(svc, GF_ERR_DATABASE, "integrity check: %.300s",
                            v && v->type == ZQLITE_TEXT ? v->text : "no result");
    }
    zqlite_free_result(r);
    if (rc != GF_OK)
        return rc;
    r = zqlite_execute(svc->db, "PRAGMA foreign_key_check");
    if (!r)
        return flow_error(svc, GF_ERR_NOMEM, "check: out of memory");
    if (r->status != ZQLITE_OK)
        rc = flow_db_error(svc, r->status, "foreign key check");
    else if (r->row_count)
        rc = flow_error(svc, GF_ERR_DATABASE,
                        "foreign key check: %zu rows point nowhere (first in %s)", r->row_count,
                        zqlite_result_cell(r, 0, 0)->type == ZQLITE_TEXT
                            ? zqlite_result_cell(r, 0, 0)->text
                            : "?");
    zqlite_free_result(r);
    if (rc == GF_OK && svc->has_fts)
        rc = flow_exec(svc, "INSERT INTO exchange_fts(exchange_fts) VALUES ('integrity-check')");
    return rc;
}

gf_status gf_check(gf_service *svc)
{
    if (!svc)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_check: svc is NULL");
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    rc = check_locked(svc);
    flow_db_unlock(svc);
    return rc;
}
