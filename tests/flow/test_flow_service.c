/*
 * test_flow_service.c — libghostflow's service: exchanges stored with their
 * answers in order, multi-turn KV reuse, cancellation keeps the partial
 * answer, nothing in plaintext on disk, key and schema checks, search (FTS5
 * and the LIKE fallback), the recording-only API, listing re-entry refusal,
 * the default path.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "flow_test.h"

#include "flow/flow_internal.h"

/* ---- exchanges ------------------------------------------------------------- */

static void test_three_prompts_are_listed_with_answers_in_order(void **state)
{
    gf_service *svc = ft_open(tu_path("three.db"), true);
    static const char *const prompts[3] = {"Once upon a time", "The little dog", "Lily saw a bird"};
    char answers[3][2048];
    int64_t conv = GF_NEW_CONVERSATION;
    for (int i = 0; i < 3; i++) {
        gf_result *res = NULL;
        gf_status rc = gf_process_prompt(svc, conv, prompts[i], NULL, NULL, NULL, &res);
        assert_int_equal(rc, GF_OK);
        assert_non_null(res);
        assert_true(res->prompt_id > 0);
        assert_true(res->response_id > 0);
        assert_true(res->completion_tokens > 0);
        assert_true(res->finish_reason == GHOST_FINISH_STOP ||
                    res->finish_reason == GHOST_FINISH_LENGTH);
        if (conv != GF_NEW_CONVERSATION)
            assert_int_equal(res->conversation_id, conv);
        conv = res->conversation_id;
        snprintf(answers[i], sizeof answers[i], "%s", res->text);
        gf_free_result(res);
    }
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, conv, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(rows.row[i].prompt, prompts[i]);
        assert_true(rows.row[i].answered);
        assert_string_equal(rows.row[i].response, answers[i]);
        assert_int_equal(rows.row[i].conversation_id, conv);
        assert_string_equal(rows.row[i].model_hash, gf_service_model_hash(svc));
        assert_true(rows.row[i].seed != GHOST_SEED_RANDOM); /* drawn and stored */
        if (i)
            assert_true(rows.row[i].prompt_id > rows.row[i - 1].prompt_id);
    }
    /* limit keeps the most recent ones, still oldest first */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(gf_history(svc, 0, 2, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.row[0].prompt, prompts[1]);
    assert_string_equal(rows.row[1].prompt, prompts[2]);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);
}

/* Stop strings in the config's defaults are the service's own copy: they
 * apply to calls with params NULL after the caller's array is gone. */
static void test_config_stop_strings_apply_to_default_calls(void **state)
{
    (void)state;
    const char *db = tu_path("stops.db");
    gf_config c = ft_config(db, true);
    c.gen.max_tokens = 48;
    gf_service *svc = gf_open(&c);
    assert_non_null(svc);
    gf_result *full = NULL;
    assert_int_equal(
        gf_process_prompt(svc, GF_NEW_CONVERSATION, "Once upon a time", NULL, NULL, NULL, &full),
        GF_OK);
    gf_close(svc);
    /* a piece of the greedy answer's second half stops the same answer there */
    const size_t len = strlen(full->text);
    assert_true(len > 16);
    char *stop = strndup(full->text + len / 2, 4);
    const char *stops[1] = {stop};
    c.gen.stop = stops;
    c.gen.n_stop = 1;
    svc = gf_open(&c);
    assert_non_null(svc);
    const char *at = strstr(full->text, stop);
    const size_t keep = (size_t)(at - full->text);
    memset(stop, 'x', 4); /* gf_open copied it */
    free(stop);
    stops[0] = NULL;
    gf_result *cut = NULL;
    assert_int_equal(
        gf_process_prompt(svc, GF_NEW_CONVERSATION, "Once upon a time", NULL, NULL, NULL, &cut),
        GF_OK);
    assert_int_equal(cut->finish_reason, GHOST_FINISH_STOP);
    assert_int_equal(strlen(cut->text), keep);
    assert_memory_equal(cut->text, full->text, keep);
    gf_free_result(cut);
    gf_free_result(full);
    gf_close(svc);

    const char *null_stop[1] = {NULL};
    c.gen.stop = null_stop;
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gf_errmsg(NULL), "gen.stop[0] is NULL"));
}

static void test_model_hash_is_blake2b_of_the_file(void **state)
{
    gf_service *svc = ft_open(tu_path("hash.db"), true);
    char hex[65];
    assert_int_equal(flow_hash_file(FT_MODEL, hex), GF_OK);
    assert_string_equal(gf_service_model_hash(svc), hex);
    gf_close(svc);
    /* reopening takes the hash from the cache: same value */
    svc = ft_open(tu_path("hash.db"), true);
    assert_string_equal(gf_service_model_hash(svc), hex);
    gf_close(svc);
}

static void test_second_turn_reuses_the_kv_cache(void **state)
{
    gf_service *svc = ft_open(tu_path("turns.db"), true);
    gf_result *a = NULL, *b = NULL;
    assert_int_equal(
        gf_process_prompt(svc, GF_NEW_CONVERSATION, "Once upon a time", NULL, NULL, NULL, &a),
        GF_OK);
    assert_int_equal(
        gf_process_prompt(svc, a->conversation_id, "Then they went home", NULL, NULL, NULL, &b),
        GF_OK);
    /* the second input starts with the first exchange, already in the cache */
    assert_true(b->prompt_tokens > a->prompt_tokens);
    assert_true(b->cached_tokens > 0);
    gf_free_result(a);
    gf_free_result(b);
    gf_close(svc);
}

static void test_unknown_conversation_is_not_found(void **state)
{
    gf_service *svc = ft_open(tu_path("unknown.db"), true);
    gf_result *res = (gf_result *)1;
    assert_int_equal(gf_process_prompt(svc, 4242, "hello", NULL, NULL, NULL, &res),
                     GF_ERR_NOT_FOUND);
    assert_null(res);
    assert_string_equal(gf_errmsg(svc), "conversation 4242 does not exist");
    /* storing names the operation once, before the step that failed (the
     * server passes these on; it used to add its own "storing the prompt") */
    int64_t conv = 0, pid = 0;
    assert_int_equal(gf_log_prompt(svc, 4242, "hello", NULL, &conv, &pid), GF_ERR_NOT_FOUND);
    assert_string_equal(gf_errmsg(svc), "storing the prompt: conversation 4242 does not exist");
    ghost_response r = {.text = "an answer", .finish_reason = GHOST_FINISH_STOP};
    assert_int_equal(gf_log_response(svc, 4242, &r), GF_ERR_INVALID_ARGUMENT);
    assert_string_equal(gf_errmsg(svc),
                        "storing the answer: prompt 4242: does not exist or already has an answer");
    assert_int_equal(gf_process_prompt(svc, 0, "bad \xff utf8", NULL, NULL, NULL, &res),
                     GF_ERR_INVALID_ARGUMENT);
    assert_null(res);
    gf_close(svc);
}

typedef struct cancel_state {
    int pieces;
    char seen[1024];
} cancel_state;

static int cancel_after_three(const char *piece, size_t len, void *ud)
{
    cancel_state *cs = ud;
    size_t cur = strlen(cs->seen);
    if (cur + len < sizeof cs->seen) {
        memcpy(cs->seen + cur, piece, len);
        cs->seen[cur + len] = '\0';
    }
    return ++cs->pieces >= 3;
}

static void test_cancelled_generation_keeps_prompt_and_partial_answer(void **state)
{
    gf_service *svc = ft_open(tu_path("cancel.db"), true);
    ghost_gen_params p = ghost_default_gen_params();
    p.temperature = 0;
    p.max_tokens = 64;
    cancel_state cs = {0};
    gf_result *res = NULL;
    gf_status rc = gf_process_prompt(svc, 0, "Once upon a time", &p, cancel_after_three, &cs, &res);
    assert_int_equal(rc, GF_ERR_CANCELLED);
    assert_non_null(res);
    assert_int_equal(res->finish_reason, GHOST_FINISH_CANCELLED);
    assert_true(res->response_id > 0);
    assert_string_equal(res->text, cs.seen);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, res->conversation_id, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 1);
    assert_true(rows.row[0].answered);
    assert_int_equal(rows.row[0].finish, GHOST_FINISH_CANCELLED);
    assert_string_equal(rows.row[0].response, cs.seen);
    assert_true(strlen(cs.seen) > 0);
    gf_free_result(res);
    gf_close(svc);
}

/* ---- the writer thread ------------------------------------------------------ */

/* Pieces of the answer, and the history as the first one arrived. */
typedef struct pieces {
    gf_service *svc;
    int calls;
    char text[4096];
    ft_rows rows;
} pieces;

static int collect_pieces(const char *piece, size_t len, void *ud)
{
    pieces *p = ud;
    if (p->calls++ == 0 && p->svc)
        assert_int_equal(gf_history(p->svc, 0, 0, ft_collect, &p->rows), GF_OK);
    size_t cur = strlen(p->text);
    assert_true(cur + len < sizeof p->text);
    memcpy(p->text + cur, piece, len);
    p->text[cur + len] = '\0';
    return 0;
}

typedef struct blocking_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, release;
} blocking_job;

static gf_status run_blocking(gf_service *svc, void *arg)
{
    blocking_job *b = arg;
    pthread_mutex_lock(&b->mu);
    b->started = true;
    pthread_cond_broadcast(&b->cv);
    while (!b->release)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return GF_OK;
}

/* Submits busy (a run_blocking job on b) and returns once the writer runs it. */
static void occupy_writer(gf_service *svc, flow_write *busy, blocking_job *b)
{
    flow_writer_submit(svc, busy);
    pthread_mutex_lock(&b->mu);
    while (!b->started)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void release_blocking(blocking_job *b)
{
    pthread_mutex_lock(&b->mu);
    b->release = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static gf_status run_failing(gf_service *svc, void *arg)
{
    *(int *)arg += 1;
    return flow_error(svc, GF_ERR_DATABASE, "job %d failed", *(int *)arg);
}

static void test_writer_runs_jobs_and_carries_their_errors(void **state)
{
    gf_service *svc = ft_open(tu_path("writer.db"), true);
    assert_true(svc->wr_running);
    blocking_job b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int runs = 0;
    flow_write busy = {.run = run_blocking, .arg = &b};
    flow_write queued = {.run = run_failing, .arg = &runs};
    occupy_writer(svc, &busy, &b);
    /* The writer is busy: the waiter takes its queued job back and runs it
     * itself; the job's message reaches this thread. */
    flow_writer_submit(svc, &queued);
    assert_int_equal(flow_writer_wait(svc, &queued), GF_ERR_DATABASE);
    assert_string_equal(gf_errmsg(svc), "job 1 failed");
    assert_int_equal(runs, 1);
    release_blocking(&b);
    assert_int_equal(flow_writer_wait(svc, &busy), GF_OK);
    /* A failure on the writer's own thread arrives the same way. */
    flow_write later = {.run = run_failing, .arg = &runs};
    flow_writer_submit(svc, &later);
    assert_int_equal(flow_writer_wait(svc, &later), GF_ERR_DATABASE);
    assert_string_equal(gf_errmsg(svc), "job 2 failed");
    assert_int_equal(runs, 2);
    gf_close(svc);
}

/* Nothing of the answer reaches the callback before its prompt is stored.
 * The writer is kept busy with another job, so the prompt's commit cannot
 * win a race with the first piece: without the gate the first piece would
 * find the history empty, every time. The generation goes on meanwhile: the
 * first pieces are kept back — eight at most, then the generation takes its
 * prompt job back and commits it itself — and reach the callback as one
 * piece, after the commit. */
static void test_prompt_is_stored_before_the_first_piece_arrives(void **state)
{
    gf_service *svc = ft_open(tu_path("hold.db"), true);
    blocking_job b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    flow_write busy = {.run = run_blocking, .arg = &b};
    occupy_writer(svc, &busy, &b);
    ghost_gen_params p = ghost_default_gen_params();
    p.temperature = 0;
    p.max_tokens = 40;
    static pieces held, bare; /* ft_rows is large */
    memset(&held, 0, sizeof held);
    memset(&bare, 0, sizeof bare);
    held.svc = svc;
    gf_result *res = NULL;
    assert_int_equal(gf_process_prompt(svc, GF_NEW_CONVERSATION, "The little dog", &p,
                                       collect_pieces, &held, &res),
                     GF_OK);
    release_blocking(&b);
    assert_int_equal(flow_writer_wait(svc, &busy), GF_OK);
    assert_string_equal(held.text, res->text);
    assert_true(held.calls > 0);
    assert_int_equal(held.rows.n, 1); /* stored before anything was shown */
    assert_string_equal(held.rows.row[0].prompt, "The little dog");
    assert_int_equal(held.rows.row[0].prompt_id, res->prompt_id);
    assert_int_equal(held.rows.row[0].conversation_id, res->conversation_id);
    assert_false(held.rows.row[0].answered); /* pending while it streams */
    /* The same generation streamed piece by piece, on the same context. */
    ghost_response *r =
        ghost_generate_ex(svc->slots[0].ctx, "The little dog", &p, collect_pieces, &bare);
    assert_non_null(r);
    assert_string_equal(r->text, res->text);
    assert_true(bare.calls > 9);
    assert_int_equal(held.calls, bare.calls - 8); /* 8 kept, joined with the 9th */
    ghost_free_response(r);
    gf_free_result(res);
    gf_close(svc);
}

/* ---- nothing in plaintext -------------------------------------------------- */

static void assert_absent(const char *path, const char *needle)
{
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    if (!buf)
        return; /* the file does not exist: nothing to leak */
    assert_null(memmem(buf, len, needle, strlen(needle)));
    free(buf);
}

static void test_database_files_hold_no_plaintext(void **state)
{
    const char *db = tu_path("plain.db");
    char wal[600], journal[600];
    snprintf(wal, sizeof wal, "%s-wal", db);
    snprintf(journal, sizeof journal, "%s-journal", db);
    static const char secret[] = "zebulon quokka marmalade";
    gf_service *svc = ft_open(db, true);
    gf_result *res = NULL;
    assert_int_equal(gf_process_prompt(svc, 0, secret, NULL, NULL, NULL, &res), GF_OK);
    assert_non_null(res);
    char answer_piece[17] = {0};
    size_t alen = strlen(res->text);
    /* a run of the answer long enough not to occur by chance */
    if (alen >= 16)
        memcpy(answer_piece, res->text, 16);
    gf_free_result(res);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0); /* WAL mode: the exchange sits in the WAL now */
    const char *files[] = {db, wal, journal};
    for (int i = 0; i < 3; i++) {
        assert_absent(files[i], secret);
        assert_absent(files[i], "quokka");
        if (answer_piece[0])
            assert_absent(files[i], answer_piece);
    }
    gf_close(svc);
    for (int i = 0; i < 3; i++) {
        assert_absent(files[i], secret);
        assert_absent(files[i], "quokka");
    }
}

/* ---- keys and schema ------------------------------------------------------- */

static void test_wrong_key_is_rejected(void **state)
{
    const char *db = tu_path("key.db");
    gf_close(ft_open(db, false));
    gf_config c = ft_config(db, false);
    c.key = "not the key";
    c.key_len = strlen(c.key);
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_WRONG_KEY);
    assert_non_null(strstr(gf_errmsg(NULL), "wrong key or not a ghostflow database"));
    assert_null(strstr(gf_errmsg(NULL), "not the key"));
    /* the right key still works afterwards */
    gf_close(ft_open(db, false));
}

/* Creates db with the test key (cheap KDF, as ft_config) and runs sql in it. */
static void write_raw(const char *db, const char *sql)
{
    zqlite_open_options o = zqlite_default_open_options();
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    zqlite_db *z = zqlite_open_v2(db, FT_KEY, strlen(FT_KEY), &o);
    assert_non_null(z);
    zqlite_result *r = zqlite_execute(z, sql);
    if (r->status != ZQLITE_OK)
        fail_msg("%s: %s", db, r->error_message ? r->error_message : "?");
    zqlite_free_result(r);
    zqlite_close(z);
}

static void test_foreign_database_is_not_ghostflow(void **state)
{
    const char *db = tu_path("foreign.db");
    write_raw(db, "CREATE TABLE other(x); INSERT INTO other VALUES (1);");
    gf_config c = ft_config(db, false);
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_WRONG_KEY);
    assert_non_null(strstr(gf_errmsg(NULL), "not a ghostflow database"));
}

static void test_newer_schema_is_refused(void **state)
{
    const char *db = tu_path("newer.db");
    gf_close(ft_open(db, false));
    zqlite_db *z = zqlite_open_encrypted(db, FT_KEY, strlen(FT_KEY));
    assert_non_null(z);
    zqlite_result *r = zqlite_execute(z, "PRAGMA user_version");
    assert_int_equal(zqlite_result_cell(r, 0, 0)->i, FLOW_SCHEMA_VERSION);
    zqlite_free_result(r);
    r = zqlite_execute(z, "PRAGMA user_version = 99");
    assert_int_equal(r->status, ZQLITE_OK);
    zqlite_free_result(r);
    zqlite_close(z);
    gf_config c = ft_config(db, false);
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_DATABASE);
    assert_non_null(strstr(gf_errmsg(NULL), "newer"));
}

static void test_missing_database_is_not_created_when_create_is_off(void **state)
{
    gf_config c = ft_config(tu_path("absent.db"), false);
    c.create = false;
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_NOT_FOUND);
    struct stat st;
    assert_int_not_equal(stat(tu_path("absent.db"), &st), 0);
}

/* Polls for the file at path (a watcher thread) and keeps the mode it had
 * when first seen. */
typedef struct mode_watch {
    const char *path;
    atomic_bool stop;
    mode_t first_mode;
    bool seen;
} mode_watch;

static void *watch_mode(void *arg)
{
    mode_watch *w = arg;
    struct stat st;
    while (!atomic_load(&w->stop)) {
        if (stat(w->path, &st) == 0) {
            w->first_mode = st.st_mode & 07777;
            w->seen = true;
            break;
        }
    }
    return NULL;
}

/* The history is owner-only from the moment it exists: a process killed
 * during the key derivation of a new database (the watcher sees the file
 * then, with a KDF slow enough to be caught) must not leave it readable by
 * others. */
static void test_new_history_is_owner_only_from_its_creation(void **state)
{
    const char *db = tu_path("modes.db");
    mode_t old = umask(022);
    mode_watch w = {.path = db};
    atomic_init(&w.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, watch_mode, &w), 0);
    gf_config c = ft_config(db, false);
    c.kdf_memlimit = 16u << 20; /* tens of ms: the window a kill could hit */
    gf_service *svc = gf_open(&c);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    umask(old);
    assert_non_null(svc);
    assert_true(w.seen);
    assert_int_equal(w.first_mode, 0600);
    gf_close(svc);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_empty_key_is_refused(void **state)
{
    gf_config c = ft_config(tu_path("nokey.db"), false);
    c.key_len = 0;
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_INVALID_ARGUMENT);
}

static void test_rekey_changes_the_key(void **state)
{
    const char *db = tu_path("rekey.db");
    gf_service *svc = ft_open(db, false);
    int64_t conv, pid;
    assert_int_equal(gf_log_prompt(svc, 0, "remember me", NULL, &conv, &pid), GF_OK);
    assert_int_equal(gf_rekey(svc, "new key", 7), GF_OK);
    gf_close(svc);
    gf_config c = ft_config(db, false);
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_WRONG_KEY);
    c.key = "new key";
    c.key_len = 7;
    svc = gf_open(&c);
    assert_non_null(svc);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.row[0].prompt, "remember me");
    assert_false(rows.row[0].answered);
    gf_close(svc);
}

/* ---- search ---------------------------------------------------------------- */

/* Searches for text (limit 0 = all) into rows; returns how many matched. */
static size_t search_rows(gf_service *svc, const char *text, int64_t limit, ft_rows *rows)
{
    memset(rows, 0, sizeof *rows);
    assert_int_equal(gf_search(svc, text, limit, ft_collect, rows), GF_OK);
    return rows->n;
}

static void check_search(gf_service *svc)
{
    ft_rows rows;
    assert_int_equal(search_rows(svc, "PURPLE elephant", 0, &rows), 1);
    assert_string_equal(rows.row[0].prompt, "a purple elephant danced");
    /* the answer is searched too */
    assert_int_equal(search_rows(svc, "trumpet", 0, &rows), 1);
    assert_string_equal(rows.row[0].response, "with a golden trumpet");
    assert_int_equal(search_rows(svc, "elephant", 1, &rows), 1);
    /* query syntax in user text is plain text, not an error */
    assert_int_equal(search_rows(svc, "\"NEAR( -x* %_\\", 0, &rows), 0);
    assert_int_equal(gf_search(svc, "   ", 0, ft_collect, &rows), GF_ERR_INVALID_ARGUMENT);
}

static void test_search_finds_prompts_and_answers_with_fts_and_like(void **state)
{
    gf_service *svc = ft_open(tu_path("search.db"), false);
    assert_true(gf_service_has_fts(svc)); /* Debian's SQLite has FTS5 */
    int64_t conv, pid;
    ghost_response r = {0};
    r.text = "with a golden trumpet";
    r.finish_reason = GHOST_FINISH_STOP;
    assert_int_equal(gf_log_prompt(svc, 0, "a purple elephant danced", NULL, &conv, &pid), GF_OK);
    assert_int_equal(gf_log_response(svc, pid, &r), GF_OK);
    assert_int_equal(gf_log_prompt(svc, conv, "another elephant", NULL, &conv, &pid), GF_OK);
    check_search(svc);
    /* the fallback gives the same answers */
    svc->has_fts = false;
    check_search(svc);
    svc->has_fts = true;
    /* "another elephant" had no answer when the index last caught up: its
     * answer, stored after a newer exchange, is still indexed */
    int64_t later;
    r.text = "a brass band";
    assert_int_equal(gf_log_prompt(svc, conv, "a newer question", NULL, &conv, &later), GF_OK);
    assert_int_equal(gf_log_response(svc, later, &r), GF_OK);
    r.text = "with a silver tuba";
    assert_int_equal(gf_log_response(svc, pid, &r), GF_OK);
    ft_rows rows;
    assert_int_equal(search_rows(svc, "tuba", 0, &rows), 1);
    assert_string_equal(rows.row[0].prompt, "another elephant");
    assert_int_equal(search_rows(svc, "brass", 0, &rows), 1);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);
}

/* A read_only service reads what a writer stored, including what the
 * search index has not caught up with yet (it cannot update the index, so
 * it searches without it), and stores nothing. */
static void test_read_only_service_reads_and_stores_nothing(void **state)
{
    const char *db = tu_path("reader.db");
    gf_service *w = ft_open(db, false);
    int64_t conv, pid;
    assert_int_equal(gf_log_prompt(w, 0, "a purple elephant danced", NULL, &conv, &pid), GF_OK);
    gf_config c = ft_config(db, false);
    c.read_only = true;
    c.create = true; /* read_only wins: never created */
    gf_service *r = gf_open(&c);
    if (!r)
        fail_msg("read-only open: %s", gf_errmsg(NULL));
    ft_rows rows;
    assert_int_equal(search_rows(r, "elephant", 0, &rows), 1); /* not in the index yet */
    assert_int_equal(gf_log_prompt(r, 0, "refused", NULL, &conv, &pid), GF_ERR_DATABASE);
    assert_non_null(strstr(gf_errmsg(r), "storing the prompt: "));
    assert_non_null(strstr(gf_errmsg(r), "readonly"));
    gf_close(r);
    gf_close(w);
    /* a model would be recorded: refused; a missing file is not created */
    c.model_path = FT_MODEL;
    assert_null(gf_open(&c));
    assert_non_null(strstr(gf_errmsg(NULL), "read_only"));
    c.model_path = NULL;
    c.db_path = tu_path("never.db");
    assert_null(gf_open(&c));
    assert_int_equal(gf_errcode(NULL), GF_ERR_NOT_FOUND);
    struct stat st;
    assert_int_not_equal(stat(c.db_path, &st), 0);
}

/* ---- migrations ------------------------------------------------------------ */

/* Schema 1 as ghostflow 1 wrote it, with its search index. */
static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('application', 'ghostflow');"
    "CREATE TABLE conversations(id INTEGER PRIMARY KEY, label TEXT,"
    "  title TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX conversations_label ON conversations(label) WHERE label IS NOT NULL;"
    "CREATE TABLE models(id INTEGER PRIMARY KEY, file_hash TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL, file_size INTEGER NOT NULL);"
    "CREATE TABLE model_files(path TEXT PRIMARY KEY, file_size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,"
    "  model_id INTEGER NOT NULL REFERENCES models(id)) WITHOUT ROWID;"
    "CREATE TABLE prompts(id INTEGER PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
    "  created_at INTEGER NOT NULL, model_id INTEGER REFERENCES models(id),"
    "  content TEXT NOT NULL, max_tokens INTEGER NOT NULL, temperature REAL NOT NULL,"
    "  top_k INTEGER NOT NULL, top_p REAL NOT NULL, min_p REAL NOT NULL,"
    "  repeat_penalty REAL NOT NULL, repeat_last_n INTEGER NOT NULL, seed INTEGER NOT NULL);"
    "CREATE INDEX prompts_conversation ON prompts(conversation_id, id);"
    "CREATE TABLE prompt_stops(prompt_id INTEGER NOT NULL REFERENCES prompts(id),"
    "  position INTEGER NOT NULL, text TEXT NOT NULL,"
    "  PRIMARY KEY(prompt_id, position)) WITHOUT ROWID;"
    "CREATE TABLE responses(id INTEGER PRIMARY KEY,"
    "  prompt_id INTEGER NOT NULL UNIQUE REFERENCES prompts(id),"
    "  created_at INTEGER NOT NULL, content TEXT NOT NULL,"
    "  finish_reason TEXT NOT NULL"
    "    CHECK(finish_reason IN ('stop', 'length', 'cancelled', 'error')),"
    "  error TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    "  cached_tokens INTEGER NOT NULL, prompt_ms REAL NOT NULL, generation_ms REAL NOT NULL);"
    "CREATE VIRTUAL TABLE exchange_fts USING fts5(prompt, response, tokenize = 'unicode61');"
    "PRAGMA user_version = 1;";

/* Four prompts, answered out of order (response ids 1, 2, 3 answer prompts
 * 2, 1, 4; prompt 3 is pending), and a search index that had caught up with
 * every prompt but only the first response. */
static const char history_v1[] =
    "INSERT INTO conversations VALUES (1, NULL, 'zebra', 1000);"
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4)"
    "  INSERT INTO prompts SELECT i, 1, 1000 + i, NULL, 'question ' || i, 16, 0.5, 40, 0.9,"
    "  0.05, 1.1, 64, 7 FROM n;"
    "INSERT INTO responses VALUES (1, 2, 2001, 'answer two giraffe', 'stop', NULL, 3, 3, 0, 1, 2),"
    "  (2, 1, 2002, 'answer one hippo', 'length', NULL, 3, 3, 0, 1, 2),"
    "  (3, 4, 2003, 'answer four okapi', 'error', 'boom', 3, 1, 0, 1, 2);"
    "INSERT INTO exchange_fts(rowid, prompt, response)"
    "  SELECT p.id, p.content, CASE WHEN r.id = 1 THEN r.content ELSE '' END"
    "  FROM prompts p LEFT JOIN responses r ON r.prompt_id = p.id;"
    "INSERT INTO meta VALUES ('fts_prompts_upto', '4'), ('fts_responses_upto', '1');";

static void test_schema_1_is_migrated_with_its_search_index(void **state)
{
    const char *db = tu_path("v1.db");
    write_raw(db, schema_v1);
    write_raw(db, history_v1);

    gf_service *svc = ft_open(db, false);
    int64_t version = 0;
    assert_int_equal(flow_query_int(svc, "PRAGMA user_version", &version), GF_OK);
    assert_int_equal(version, FLOW_SCHEMA_VERSION);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, 1, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 4);
    static const char *const answers[] = {"answer one hippo", "answer two giraffe", "",
                                          "answer four okapi"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rows.row[i].prompt_id, i + 1);
        assert_int_equal(rows.row[i].answered, i != 2);
        assert_int_equal(rows.row[i].response_id, i != 2 ? i + 1 : 0);
        assert_string_equal(rows.row[i].response, answers[i]);
    }
    assert_int_equal(rows.row[3].finish, GHOST_FINISH_ERROR);
    /* Responses the old index had not reached are found, none twice. */
    assert_int_equal(search_rows(svc, "hippo", 0, &rows), 1);
    assert_int_equal(search_rows(svc, "giraffe", 0, &rows), 1);
    assert_int_equal(search_rows(svc, "okapi", 0, &rows), 1);
    assert_int_equal(search_rows(svc, "question", 0, &rows), 4);
    /* The pending prompt's answer, when it comes, is indexed too. */
    ghost_response late = {0};
    late.text = "answer three tapir";
    late.finish_reason = GHOST_FINISH_STOP;
    assert_int_equal(gf_log_response(svc, 3, &late), GF_OK);
    assert_int_equal(search_rows(svc, "tapir", 0, &rows), 1);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);
}

/* ---- recording API --------------------------------------------------------- */

static void test_logged_exchange_is_paired_and_answered_once(void **state)
{
    gf_service *svc = ft_open(tu_path("log.db"), true);
    int64_t conv = 0, pid = 0;
    const char *stops[] = {"\n\n", "THE END"};
    ghost_gen_params p = ghost_default_gen_params();
    p.seed = 1234;
    p.temperature = 0.5f;
    p.stop = stops;
    p.n_stop = 2;
    assert_int_equal(gf_log_prompt(svc, GF_NEW_CONVERSATION, "external prompt", &p, &conv, &pid),
                     GF_OK);
    assert_true(conv > 0 && pid > 0);
    ghost_response r = {0};
    r.text = "external answer";
    r.finish_reason = GHOST_FINISH_LENGTH;
    r.prompt_tokens = 3;
    r.completion_tokens = 2;
    assert_int_equal(gf_log_response(svc, pid, &r), GF_OK);
    assert_int_equal(gf_log_response(svc, pid, &r), GF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(gf_errmsg(svc), "already has an answer"));
    assert_int_equal(gf_log_response(svc, pid + 100, &r), GF_ERR_INVALID_ARGUMENT);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, conv, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.row[0].seed, 1234);
    assert_true(rows.row[0].temperature == 0.5f);
    assert_string_equal(rows.row[0].response, "external answer");
    assert_int_equal(rows.row[0].finish, GHOST_FINISH_LENGTH);
    assert_int_equal(rows.row[0].completion_tokens, 2);
    int64_t a, b, c;
    assert_int_equal(gf_conversation_for_label(svc, "api-user-1", &a), GF_OK);
    assert_int_equal(gf_conversation_for_label(svc, "api-user-1", &b), GF_OK);
    assert_int_equal(gf_conversation_for_label(svc, "api-user-2", &c), GF_OK);
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);
}

/* Appends n exchanges with 3000-byte answers: a page or more each in the WAL. */
static void log_big_exchanges(gf_service *svc, int n)
{
    static char answer[3001];
    memset(answer, 'a', sizeof answer - 1);
    ghost_response r = {0};
    r.text = answer;
    r.finish_reason = GHOST_FINISH_STOP;
    for (int i = 0; i < n; i++) {
        int64_t conv, pid;
        assert_int_equal(gf_log_prompt(svc, GF_NEW_CONVERSATION, "p", NULL, &conv, &pid), GF_OK);
        assert_int_equal(gf_log_response(svc, pid, &r), GF_OK);
    }
}

static int count_answered(const gf_exchange *e, void *ud)
{
    *(int *)ud += e->answered;
    return 0;
}

/* Waits (the checkpoint runs on the writer thread) until the main file has
 * grown by more than `by` bytes from `before`; false after 10 s. */
static bool main_file_grows(const char *path, off_t before, off_t by)
{
    struct stat st;
    for (int waited = 0; waited < 1000; waited++) {
        assert_int_equal(stat(path, &st), 0);
        if (st.st_size > before + by)
            return true;
        usleep(10000);
    }
    return false;
}

/* SQLite's automatic checkpoint is off (the WAL hook replaces it): only the
 * writer thread copies the WAL back, on a connection of its own, so the
 * main file grows only if it did — also after a rekey, which has to close
 * that connection and open it again on the new file. */
static void test_writer_checkpoints_the_wal_off_the_request_path(void **state)
{
    const char *path = tu_path("checkpoint.db");
    gf_service *svc = ft_open(path, false);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    log_big_exchanges(svc, 1200); /* well past the 1000-page threshold */
    assert_true(main_file_grows(path, st.st_size, 500 * 4096));
    assert_int_equal(gf_check(svc), GF_OK);

    assert_int_equal(gf_rekey(svc, "another key", 11), GF_OK);
    assert_int_equal(stat(path, &st), 0);
    log_big_exchanges(svc, 1200);
    assert_true(main_file_grows(path, st.st_size, 500 * 4096));
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);

    gf_config c = ft_config(path, false);
    c.key = "another key";
    c.key_len = 11;
    svc = gf_open(&c);
    assert_non_null(svc);
    int n = 0;
    assert_int_equal(gf_history(svc, 0, 0, count_answered, &n), GF_OK);
    assert_int_equal(n, 2400);
    gf_close(svc);
}

static int reenter(const gf_exchange *e, void *ud)
{
    gf_service *svc = ud;
    ft_rows rows = {0};
    /* must be refused, not deadlock */
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_ERR_INVALID_ARGUMENT);
    assert_int_equal(gf_rekey(svc, "k", 1), GF_ERR_INVALID_ARGUMENT);
    return 0;
}

static void test_listing_callback_cannot_reenter_the_service(void **state)
{
    gf_service *svc = ft_open(tu_path("reenter.db"), false);
    int64_t conv, pid;
    assert_int_equal(gf_log_prompt(svc, 0, "one", NULL, &conv, &pid), GF_OK);
    assert_int_equal(gf_history(svc, 0, 0, reenter, svc), GF_OK);
    /* and it is allowed again afterwards */
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 1);
    gf_close(svc);
}

static int count_conversations(const gf_conversation *c, void *ud)
{
    (*(int *)ud)++;
    return 0;
}

static void test_conversations_are_listed(void **state)
{
    gf_service *svc = ft_open(tu_path("convs.db"), false);
    int64_t c1, c2, pid;
    assert_int_equal(gf_conversation_new(svc, &c1), GF_OK);
    assert_int_equal(gf_log_prompt(svc, c1, "first", NULL, &c1, &pid), GF_OK);
    assert_int_equal(gf_log_prompt(svc, 0, "second", NULL, &c2, &pid), GF_OK);
    assert_int_not_equal(c1, c2);
    int n = 0;
    assert_int_equal(gf_conversations(svc, 0, count_conversations, &n), GF_OK);
    assert_int_equal(n, 2);
    gf_close(svc);
}

static void test_service_without_model_refuses_generation(void **state)
{
    gf_service *svc = ft_open(tu_path("nomodel.db"), false);
    gf_result *res = NULL;
    assert_int_equal(gf_process_prompt(svc, 0, "hi", NULL, NULL, NULL, &res),
                     GF_ERR_INVALID_ARGUMENT);
    assert_null(res);
    assert_null(gf_service_model(svc));
    assert_null(gf_service_model_hash(svc));
    gf_close(svc);
}

/* ---- default path ---------------------------------------------------------- */

static void test_default_path_is_under_xdg_data_home_with_private_dirs(void **state)
{
    const char *xdg = tu_path("xdg");
    setenv("XDG_DATA_HOME", xdg, 1);
    char *path = NULL;
    assert_int_equal(gf_default_db_path(&path), GF_OK);
    char want[600];
    snprintf(want, sizeof want, "%s/ghostflow/history.db", xdg);
    assert_string_equal(path, want);
    gf_free(path);
    gf_close(ft_open(NULL, false));
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    snprintf(want, sizeof want, "%s/ghostflow", xdg);
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    setenv("XDG_DATA_HOME", "relative/ignored", 1);
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(gf_default_db_path(&path), GF_OK);
    assert_string_equal(path, "/home/someone/.local/share/ghostflow/history.db");
    gf_free(path);
    unsetenv("XDG_DATA_HOME");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_prompts_are_listed_with_answers_in_order),
        cmocka_unit_test(test_config_stop_strings_apply_to_default_calls),
        cmocka_unit_test(test_model_hash_is_blake2b_of_the_file),
        cmocka_unit_test(test_second_turn_reuses_the_kv_cache),
        cmocka_unit_test(test_unknown_conversation_is_not_found),
        cmocka_unit_test(test_cancelled_generation_keeps_prompt_and_partial_answer),
        cmocka_unit_test(test_writer_runs_jobs_and_carries_their_errors),
        cmocka_unit_test(test_prompt_is_stored_before_the_first_piece_arrives),
        cmocka_unit_test(test_database_files_hold_no_plaintext),
        cmocka_unit_test(test_wrong_key_is_rejected),
        cmocka_unit_test(test_foreign_database_is_not_ghostflow),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_missing_database_is_not_created_when_create_is_off),
        cmocka_unit_test(test_new_history_is_owner_only_from_its_creation),
        cmocka_unit_test(test_empty_key_is_refused),
        cmocka_unit_test(test_rekey_changes_the_key),
        cmocka_unit_test(test_search_finds_prompts_and_answers_with_fts_and_like),
        cmocka_unit_test(test_read_only_service_reads_and_stores_nothing),
        cmocka_unit_test(test_schema_1_is_migrated_with_its_search_index),
        cmocka_unit_test(test_logged_exchange_is_paired_and_answered_once),
        cmocka_unit_test(test_writer_checkpoints_the_wal_off_the_request_path),
        cmocka_unit_test(test_listing_callback_cannot_reenter_the_service),
        cmocka_unit_test(test_conversations_are_listed),
        cmocka_unit_test(test_service_without_model_refuses_generation),
        cmocka_unit_test(test_default_path_is_under_xdg_data_home_with_private_dirs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_tmpdir_cleanup();
    return rc;
}
