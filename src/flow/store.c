/*
 * store.c — the encrypted history database: opening it, its schema and
 * forward migrations, optional full-text search, and the write path.
 *
 * Schema (version in PRAGMA user_version; docs/ghostflow-service.md has the
 * full description):
 *   meta(key, value)                  'application' = 'ghostflow'
 *   conversations(id, label, title, created_at)
 *   models(id, file_hash, name, file_size)        one row per distinct file
 *   model_files(path, file_size, mtime_ns, inode, model_id)   hash cache
 *   prompts(id, conversation_id, created_at, model_id, content,
 *           max_tokens, temperature, top_k, top_p, min_p,
 *           repeat_penalty, repeat_last_n, seed)
 *   prompt_stops(prompt_id, position, text)
 *   responses(prompt_id, created_at, content, finish_reason, error,
 *             prompt_tokens, completion_tokens, cached_tokens,
 *             prompt_ms, generation_ms)   row id = the prompt's id
 *   exchange_fts(prompt, response)    FTS5, rowid = prompts.id, brought up
 *                                     to date before each search (watermark
 *                                     in meta, unanswered prompts in
 *                                     fts_pending); only when SQLite has FTS5
 *   fts_pending(prompt_id)
 * Times are Unix milliseconds. A prompt without a response row is "pending":
 * its generation is running, or the process died during it.
 *
 * Write path: a prompt and an answer are each one short transaction
 * (BEGIN IMMEDIATE, so a writer never has to upgrade a read lock and
 * deadlock), on cached statements, under db_mu. A new row's id is read
 * with last_insert_rowid right after its INSERT, still under db_mu and inside
 * the transaction, so no other statement can have run in between and it can
 * never be another row's id. (Not RETURNING: SQLite collects RETURNING rows
 * in an ephemeral b-tree opened and closed per statement, a tenth of the
 * answer's commit.) SQLITE_BUSY from another process is waited out by the
 * busy timeout and then by whole-transaction retries with backoff.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "flow_internal.h"

#define FLOW_BUSY_TIMEOUT_MS 5000
#define FLOW_TX_RETRIES      8

/* ---- migrations ------------------------------------------------------------ */

/* migrations[v] brings a database from version v to v + 1. Never edit a
 * released entry: add a new one. */
static const char *const migrations[FLOW_SCHEMA_VERSION] = {
    /* 0 → 1: the first schema */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('application', 'ghostflow');"
    /* A conversation row is written once (title filled by the first
     * prompt): its last activity is read from prompts, so storing a prompt
     * touches no conversation page. Partial index: unlabelled rows cost no
     * index write. */
    "CREATE TABLE conversations("
    "  id INTEGER PRIMARY KEY,"
    "  label TEXT,"
    "  title TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX conversations_label ON conversations(label) WHERE label IS NOT NULL;"
    "CREATE TABLE models("
    "  id INTEGER PRIMARY KEY,"
    "  file_hash TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  file_size INTEGER NOT NULL);"
    "CREATE TABLE model_files("
    "  path TEXT PRIMARY KEY,"
    "  file_size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  inode INTEGER NOT NULL,"
    "  model_id INTEGER NOT NULL REFERENCES models(id)) WITHOUT ROWID;"
    "CREATE TABLE prompts("
    "  id INTEGER PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
    "  created_at INTEGER NOT NULL,"
    "  model_id INTEGER REFERENCES models(id),"
    "  content TEXT NOT NULL,"
    "  max_tokens INTEGER NOT NULL,"
    "  temperature REAL NOT NULL,"
    "  top_k INTEGER NOT NULL,"
    "  top_p REAL NOT NULL,"
    "  min_p REAL NOT NULL,"
    "  repeat_penalty REAL NOT NULL,"
    "  repeat_last_n INTEGER NOT NULL,"
    "  seed INTEGER NOT NULL);"
    "CREATE INDEX prompts_conversation ON prompts(conversation_id, id);"
    "CREATE TABLE prompt_stops("
    "  prompt_id INTEGER NOT NULL REFERENCES prompts(id),"
    "  position INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  PRIMARY KEY(prompt_id, position)) WITHOUT ROWID;"
    "CREATE TABLE responses("
    "  id INTEGER PRIMARY KEY,"
    "  prompt_id INTEGER NOT NULL UNIQUE REFERENCES prompts(id),"
    "  created_at INTEGER NOT NULL,"
    "  content TEXT NOT NULL,"
    "  finish_reason TEXT NOT NULL"
    "    CHECK(finish_reason IN ('stop', 'length', 'cancelled', 'error')),"
    "  error TEXT,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  completion_tokens INTEGER NOT NULL,"
    "  cached_tokens INTEGER NOT NULL,"
    "  prompt_ms REAL NOT NULL,"
    "  generation_ms REAL NOT NULL);",
    /* 1 → 2: an answer's row id is its prompt's id. The UNIQUE index on
     * prompt_id was a second b-tree page in every answer's commit, which
     * sits on the request path: a third of its time. The search index's two
     * watermarks (prompt ids, response ids) become one over prompt ids plus
     * the prompts that had no answer yet when the index last caught up:
     * answers no longer arrive in row-id order. */
    "CREATE TABLE responses2("
    "  prompt_id INTEGER PRIMARY KEY REFERENCES prompts(id),"
    "  created_at INTEGER NOT NULL,"
    "  content TEXT NOT NULL,"
    "  finish_reason TEXT NOT NULL"
    "    CHECK(finish_reason IN ('stop', 'length', 'cancelled', 'error')),"
    "  error TEXT,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  completion_tokens INTEGER NOT NULL,"
    "  cached_tokens INTEGER NOT NULL,"
    "  prompt_ms REAL NOT NULL,"
    "  generation_ms REAL NOT NULL);"
    "INSERT INTO responses2 SELECT prompt_id, created_at, content, finish_reason, error,"
    "  prompt_tokens, completion_tokens, cached_tokens, prompt_ms, generation_ms"
    "  FROM responses ORDER BY prompt_id;"
    "CREATE TABLE fts_pending(prompt_id INTEGER PRIMARY KEY);"
    /* Indexed prompts whose answer is not (no watermarks: no index, no rows). */
    "INSERT INTO fts_pending SELECT p.id FROM prompts p LEFT JOIN responses r ON r.prompt_id = p.id"
    "  WHERE p.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_prompts_upto')"
    "  AND (r.id IS NULL OR r.id >"
    "       (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_responses_upto'));"
    "UPDATE meta SET key = 'fts_upto' WHERE key = 'fts_prompts_upto';"
    "DELETE FROM meta WHERE key = 'fts_responses_upto';"
    "DROP TABLE responses;"
    "ALTER TABLE responses2 RENAME TO responses;",
};

/* Full-text search sits outside the numbered migrations: it depends on the
 * SQLite a database is opened with, so it is added by the first opener whose
 * SQLite has FTS5.
 *
 * The index is not kept by triggers: FTS5 writes a new index segment per
 * transaction, which tripled the cost of storing an exchange (two
 * transactions each). Instead it is brought up to date in one transaction
 * before every search (so results are always complete) and at close (so the
 * next search has little to do). meta's fts_upto is the last prompt id
 * indexed; every indexed prompt's answer is indexed too, except those in
 * fts_pending: prompts that had no answer yet at the last catch-up (their
 * generation was running, or its process died). Answers arrive out of
 * prompt order, so a watermark alone could not say which are missing. */
static const char fts_create_sql[] =
    "CREATE VIRTUAL TABLE exchange_fts USING fts5(prompt, response, tokenize = 'unicode61');"
    "INSERT OR REPLACE INTO meta VALUES ('fts_upto', 0);"
    "DELETE FROM fts_pending;";

/* Pending prompts answered since, then the new prompts (with their answers
 * when they have one), then the new pending ones; every step probes by row
 * id and touches only rows after the watermark or in fts_pending. */
static const char fts_catch_up_sql[] =
    "UPDATE exchange_fts SET response ="
    "  (SELECT content FROM responses WHERE prompt_id = exchange_fts.rowid)"
    "  WHERE rowid IN (SELECT f.prompt_id FROM fts_pending f"
    "                  JOIN responses r ON r.prompt_id = f.prompt_id);"
    "DELETE FROM fts_pending"
    "  WHERE EXISTS (SELECT 1 FROM responses r WHERE r.prompt_id = fts_pending.prompt_id);"
    "INSERT INTO exchange_fts(rowid, prompt, response)"
    "  SELECT p.id, p.content, coalesce(r.content, '')"
    "  FROM prompts p LEFT JOIN responses r ON r.prompt_id = p.id WHERE p.id >"
    "  (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto') ORDER BY p.id;"
    "INSERT INTO fts_pending SELECT p.id FROM prompts p WHERE p.id >"
    "  (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')"
    "  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.prompt_id = p.id);"
    "UPDATE meta SET value = (SELECT coalesce(max(id), 0) FROM prompts) WHERE key = 'fts_upto';";

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_CONV_INSERT] = "INSERT INTO conversations(label, title, created_at)"
                       " VALUES (?1, ?2, ?3)",
    [ST_CONV_EXISTS] = "SELECT 1 FROM conversations WHERE id = ?1",
    [ST_CONV_TITLE] = "UPDATE conversations SET title = ?2 WHERE id = ?1 AND title = ''",
    [ST_CONV_BY_LABEL] = "SELECT id FROM conversations WHERE label = ?1 AND label IS NOT NULL",
    [ST_PROMPT_INSERT] = "INSERT INTO prompts(conversation_id, created_at, model_id, content,"
                         " max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,"
                         " repeat_last_n, seed)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_STOP_INSERT] = "INSERT INTO prompt_stops(prompt_id, position, text) VALUES (?1, ?2, ?3)",
    [ST_TURNS] = "SELECT p.content, r.content FROM"
                 " (SELECT id, content FROM prompts WHERE conversation_id = ?1"
                 "  ORDER BY id DESC LIMIT ?2) p"
                 " JOIN responses r ON r.prompt_id = p.id"
                 " WHERE r.finish_reason <> 'error' ORDER BY p.id",
    [ST_RESPONSE_INSERT] = "INSERT INTO responses(prompt_id, created_at, content, finish_reason,"
                           " error, prompt_tokens, completion_tokens, cached_tokens, prompt_ms,"
                           " generation_ms)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

/* ---- errors and locking ---------------------------------------------------- */

gf_status flow_db_error(gf_service *svc, int zrc, const char *what)
{
    gf_status code;
    switch (zrc) {
    case ZQLITE_BUSY: code = GF_ERR_BUSY; break;
    case ZQLITE_NOMEM: code = GF_ERR_NOMEM; break;
    case ZQLITE_WRONG_KEY:
    case ZQLITE_NOT_ENCRYPTED:
    case ZQLITE_KEY_REQUIRED: code = GF_ERR_WRONG_KEY; break;
    default: code = GF_ERR_DATABASE; break;
    }
    if (code == GF_ERR_WRONG_KEY)
        return flow_error(svc, code, "%s", gf_strerror(code));
    return flow_error(svc, code, "%s: %s", what, zqlite_errmsg(svc->db));
}

gf_status flow_db_lock(gf_service *svc)
{
    if (flow_in_callback(svc))
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT,
                          "called from inside a listing callback of the same service");
    pthread_mutex_lock(&svc->db_mu);
    return GF_OK;
}

void flow_db_unlock(gf_service *svc)
{
    pthread_mutex_unlock(&svc->db_mu);
}

gf_status flow_exec(gf_service *svc, const char *sql)
{
    zqlite_result *r = zqlite_execute(svc->db, sql);
    if (!r)
        return flow_error(svc, GF_ERR_NOMEM, "database: out of memory");
    gf_status rc = GF_OK;
    if (r->status != ZQLITE_OK)
        rc = flow_db_error(svc, r->status, sql);
    zqlite_free_result(r);
    return rc;
}

gf_status flow_query_int(gf_service *svc, const char *sql, int64_t *out)
{
    zqlite_result *r = zqlite_execute(svc->db, sql);
    if (!r)
        return flow_error(svc, GF_ERR_NOMEM, "database: out of memory");
    gf_status rc = GF_OK;
    if (r->status != ZQLITE_OK) {
        rc = flow_db_error(svc, r->status, sql);
    } else if (r->row_count < 1 || r->column_count < 1 ||
               zqlite_result_cell(r, 0, 0)->type != ZQLITE_INTEGER) {
        rc = flow_error(svc, GF_ERR_DATABASE, "%s: expected one integer", sql);
    } else {
        *out = zqlite_result_cell(r, 0, 0)->i;
    }
    zqlite_free_result(r);
    return rc;
}

/* ---- statement helpers ----------------------------------------------------- */

/* Steps a cached statement to its end and resets it. */
static gf_status stmt_run(gf_service *svc, enum flow_stmt_id id, const char *what)
{
    zqlite_stmt *s = svc->st[id];
    int zrc;
    while ((zrc = zqlite_step(s)) == ZQLITE_ROW)
        ;
    gf_status rc = zrc == ZQLITE_DONE ? GF_OK : flow_db_error(svc, zrc, what);
    zqlite_reset(s);
    zqlite_clear_bindings(s);
    return rc;
}

/* Runs a cached INSERT; *id = the new row's id (db_mu held: see the top). */
static gf_status stmt_insert(gf_service *svc, enum flow_stmt_id id_stmt, const char *what,
                             int64_t *id)
{
    gf_status rc = stmt_run(svc, id_stmt, what);
    *id = rc == GF_OK ? zqlite_last_insert_rowid(svc->db) : 0;
    return rc;
}

/* Steps a statement that yields one integer (a lookup's id, a presence
 * flag): *out = 0 and *found = false when it yields no row. */
static gf_status stmt_int(gf_service *svc, zqlite_stmt *s, const char *what, int64_t *out,
                          bool *found)
{
    int zrc = zqlite_step(s);
    bool row = zrc == ZQLITE_ROW;
    *out = 0;
    if (found)
        *found = row;
    if (row) {
        *out = zqlite_column_int64(s, 0);
        while ((zrc = zqlite_step(s)) == ZQLITE_ROW)
            ;
    }
    gf_status rc = zrc == ZQLITE_DONE ? GF_OK : flow_db_error(svc, zrc, what);
    if (rc == GF_OK && !found && !row)
        rc = flow_error(svc, GF_ERR_INTERNAL, "%s: no row returned", what);
    zqlite_reset(s);
    zqlite_clear_bindings(s);
    return rc;
}

static gf_status bind_failed(gf_service *svc, const char *what)
{
    return flow_error(svc, GF_ERR_DATABASE, "%s: binding a parameter failed: %s", what,
                      zqlite_errmsg(svc->db));
}

typedef gf_status (*flow_tx_fn)(gf_service *svc, void *arg);

/* Runs body inside BEGIN IMMEDIATE ... COMMIT on the locked connection,
 * retrying the whole transaction while another process holds the lock.
 * Every failure's message starts with what, once ("storing the prompt:
 * prompt insert: disk I/O error"): callers pass gf_errmsg on unchanged. */
static gf_status flow_transaction(gf_service *svc, flow_tx_fn body, void *arg, const char *what)
{
    useconds_t backoff = 2000;
    for (int attempt = 0;; attempt++) {
        gf_status rc = stmt_run(svc, ST_BEGIN, what);
        if (rc == GF_OK) {
            rc = body(svc, arg);
            if (rc != GF_OK) /* the body names its step; add the operation */
                flow_error(svc, rc, "%s: %s", what, gf_errmsg(svc));
            if (rc == GF_OK)
                rc = stmt_run(svc, ST_COMMIT, what);
            if (rc != GF_OK) {
                /* After some errors SQLite has already rolled back; then
                 * ROLLBACK fails harmlessly. Keep the first error's message. */
                zqlite_step(svc->st[ST_ROLLBACK]);
                zqlite_reset(svc->st[ST_ROLLBACK]);
            }
        }
        if (rc != GF_ERR_BUSY || attempt >= FLOW_TX_RETRIES)
            return rc;
        usleep(backoff);
        if (backoff < 256000)
            backoff *= 2;
    }
}

/* ---- open / schema --------------------------------------------------------- */

static gf_status migrate(gf_service *svc)
{
    int64_t version = 0, tables = 0;
    gf_status rc = flow_query_int(svc, "PRAGMA user_version", &version);
    if (rc != GF_OK)
        return rc;
    if (version > FLOW_SCHEMA_VERSION)
        return flow_error(svc, GF_ERR_DATABASE,
                          "database schema version %lld is newer than this ghostflow knows (%d):"
                          " upgrade ghostflow",
                          (long long)version, FLOW_SCHEMA_VERSION);
    if (version == 0) {
        rc = flow_query_int(svc, "SELECT count(*) FROM sqlite_master", &tables);
        if (rc != GF_OK)
            return rc;
        if (tables > 0)
            return flow_error(
                svc, GF_ERR_WRONG_KEY,
                "wrong key or not a ghostflow database (the file holds other tables)");
    } else {
        int64_t ok = 0;
        rc = flow_query_int(svc,
                            "SELECT count(*) FROM sqlite_master WHERE name = 'meta' AND"
                            " EXISTS (SELECT 1 FROM meta WHERE key = 'application'"
                            " AND value = 'ghostflow')",
                            &ok);
        if (rc == GF_ERR_DATABASE || (rc == GF_OK && !ok))
            return flow_error(svc, GF_ERR_WRONG_KEY,
                              "wrong key or not a ghostflow database (no ghostflow marker)");
        if (rc != GF_OK)
            return rc;
    }
    if (svc->read_only && version < FLOW_SCHEMA_VERSION)
        return flow_error(svc, GF_ERR_DATABASE,
                          "schema version %lld needs an upgrade to %d, which opening read-only"
                          " cannot do: open it once for writing (ghostflow chat or run --db)",
                          (long long)version, FLOW_SCHEMA_VERSION);
    for (int64_t v = version; v < FLOW_SCHEMA_VERSION; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        rc = flow_exec(svc, "BEGIN IMMEDIATE");
        if (rc != GF_OK)
            return rc;
        rc = flow_exec(svc, migrations[v]);
        if (rc == GF_OK)
            rc = flow_exec(svc, sql);
        if (rc == GF_OK)
            rc = flow_exec(svc, "COMMIT");
        if (rc != GF_OK) {
            zqlite_free_result(zqlite_execute(svc->db, "ROLLBACK"));
            return flow_error(svc, rc, "migration to schema %lld: %s", (long long)v + 1,
                              gf_errmsg(svc));
        }
    }
    return GF_OK;
}

static gf_status setup_fts(gf_service *svc)
{
    int64_t present = 0;
    gf_status rc = flow_query_int(
        svc, "SELECT count(*) FROM sqlite_master WHERE name = 'exchange_fts'", &present);
    if (rc != GF_OK)
        return rc;
    /* Probe by doing it: a module compiled out or not loaded both fail here. */
    zqlite_result *probe =
        zqlite_execute(svc->db, "CREATE VIRTUAL TABLE temp.flow_fts_probe USING fts5(x);"
                                "DROP TABLE temp.flow_fts_probe;");
    if (!probe)
        return flow_error(svc, GF_ERR_NOMEM, "database: out of memory");
    bool available = probe->status == ZQLITE_OK;
    zqlite_free_result(probe);
    if (present && !available)
        return flow_error(svc, GF_ERR_DATABASE,
                          "this database uses FTS5 full-text search, which this system's"
                          " SQLite lacks");
    svc->has_fts = available && (present || !svc->read_only);
    if (present || !svc->has_fts)
        return GF_OK;
    rc = flow_exec(svc, "BEGIN IMMEDIATE");
    if (rc == GF_OK)
        rc = flow_exec(svc, fts_create_sql);
    if (rc == GF_OK)
        rc = flow_exec(svc, fts_catch_up_sql); /* back-fill an existing history */
    if (rc == GF_OK)
        return flow_exec(svc, "COMMIT");
    zqlite_free_result(zqlite_execute(svc->db, "ROLLBACK"));
    return rc;
}

static gf_status prepare_statements(gf_service *svc)
{
    for (int i = 0; i < ST_COUNT; i++) {
        svc->st[i] = zqlite_prepare_statement(svc->db, stmt_sql[i]);
        if (!svc->st[i])
            return flow_error(svc, GF_ERR_DATABASE, "preparing \"%.60s...\": %s", stmt_sql[i],
                              zqlite_errmsg(svc->db));
    }
    return GF_OK;
}

static void finalize_statements(gf_service *svc)
{
    for (int i = 0; i < ST_COUNT; i++) {
        zqlite_finalize(svc->st[i]);
        svc->st[i] = NULL;
    }
}

static gf_status open_error(int zcode, const char *path)
{
    const char *msg = zqlite_errmsg(NULL);
    size_t n = strlen(path);
    bool named = strncmp(msg, path, n) == 0 && msg[n] == ':'; /* zqlite names the file */
    switch (zcode) {
    case ZQLITE_WRONG_KEY:
    case ZQLITE_NOT_ENCRYPTED:
    case ZQLITE_KEY_REQUIRED:
        return flow_error(NULL, GF_ERR_WRONG_KEY, "%s: wrong key or not a ghostflow database",
                          path);
    case ZQLITE_NOMEM: return flow_error(NULL, GF_ERR_NOMEM, "%s: out of memory", path);
    default:
        return named ? flow_error(NULL, GF_ERR_DATABASE, "%s", msg)
                     : flow_error(NULL, GF_ERR_DATABASE, "%s: %s", path, msg);
    }
}

/* The directory path is in (a copy in buf). */
static const char *dir_of(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash)
        return ".";
    if (slash == buf)
        return "/";
    *slash = '\0';
    return buf;
}

/* Whether a reader can reach path, and how. SQLite reads a WAL database
 * through the -shm index beside it: it creates one where it may write, and
 * reads an existing one where it may not. On a read-only file system with
 * neither, the way in is immutable=1 (no locks, no index), safe there as
 * nothing can change the file; but immutable ignores the -wal file, so one
 * that holds commits not yet in the database makes the file unreadable
 * there. Elsewhere an unwritable directory without a -shm file is an error
 * too: another process may be writing, which immutable could not see. */
static gf_status reader_access(const char *path, bool *immutable)
{
    *immutable = false;
    if (access(path, R_OK) != 0)
        return flow_error(NULL, GF_ERR_DATABASE, "%s: cannot open read-only: %s", path,
                          strerror(errno));
    char dir_buf[PATH_MAX], side[PATH_MAX + 8];
    const char *dir = dir_of(path, dir_buf, sizeof dir_buf);
    if (access(dir, W_OK) == 0)
        return GF_OK;
    int why = errno;
    snprintf(side, sizeof side, "%s-shm", path);
    if (access(side, R_OK) == 0)
        return GF_OK;
    snprintf(side, sizeof side, "%s-wal", path);
    struct stat st;
    struct statvfs fs;
    bool read_only_fs = statvfs(dir, &fs) == 0 && (fs.f_flag & ST_RDONLY);
    if (read_only_fs && (stat(side, &st) != 0 || st.st_size == 0)) {
        *immutable = true;
        return GF_OK;
    }
    return flow_error(NULL, GF_ERR_DATABASE,
                      "%s: cannot open read-only: %s, and SQLite cannot create the -shm file it"
                      " needs beside it (%s: %s); copy the database%s to writable storage",
                      path,
                      read_only_fs ? "its -wal file holds changes not yet in the database"
                                   : "no -shm file exists",
                      dir, strerror(why), read_only_fs ? " and its -wal file" : "");
}

/* A writer needs the file and its directory (for the -wal and -shm files). */
static gf_status writer_access(const char *path)
{
    char dir_buf[PATH_MAX];
    const char *dir = dir_of(path, dir_buf, sizeof dir_buf);
    if (access(path, W_OK) != 0)
        return flow_error(NULL, GF_ERR_DATABASE, "%s: cannot open for writing: %s", path,
                          strerror(errno));
    if (access(dir, W_OK) != 0)
        return flow_error(NULL, GF_ERR_DATABASE, "%s: cannot open for writing: %s: %s", path, dir,
                          strerror(errno));
    return GF_OK;
}

gf_status flow_store_open(gf_service *svc, const gf_config *cfg, const char *path)
{
    if (cfg->db_cache_kib < 0)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "db_cache_kib %d is negative",
                          (int)cfg->db_cache_kib);
    struct stat st;
    bool exists = stat(path, &st) == 0, memory = strcmp(path, ":memory:") == 0;
    if (!exists && (!cfg->create || cfg->read_only))
        return flow_error(NULL, GF_ERR_NOT_FOUND, "%s: no such database", path);
    if (!exists) {
        gf_status rc = flow_make_parent_dirs(path);
        if (rc != GF_OK)
            return rc;
    }
    zqlite_open_options opts = zqlite_default_open_options();
    svc->read_only = cfg->read_only;
    if (cfg->read_only) {
        bool immutable = false;
        gf_status rc = memory ? GF_OK : reader_access(path, &immutable);
        if (rc != GF_OK)
            return rc;
        opts.readonly = 1;
        opts.immutable = immutable;
    } else if (exists && !memory) {
        gf_status rc = writer_access(path);
        if (rc != GF_OK)
            return rc;
    }
    opts.create = cfg->create && !cfg->read_only;
    opts.cache_kib = cfg->db_cache_kib;
    if (cfg->kdf_opslimit)
        opts.kdf_opslimit = cfg->kdf_opslimit;
    if (cfg->kdf_memlimit)
        opts.kdf_memlimit = cfg->kdf_memlimit;
    svc->kdf_opslimit = opts.kdf_opslimit;
    svc->kdf_memlimit = opts.kdf_memlimit;
    /* A new history is created owner-only before zqlite sees it (an empty
     * file is a new database to it): created by SQLite it would be 0644
     * minus the umask until a chmod afterwards, and a process killed in
     * between — during the key derivation, say — would leave it so. SQLite
     * gives the -wal and -shm files the database's mode. */
    bool created = false;
    if (!exists && !memory && opts.create) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            close(fd);
            created = true;
        } else if (errno != EEXIST) {
            return flow_error(NULL, GF_ERR_DATABASE, "%s: cannot create: %s", path,
                              strerror(errno));
        }
    }
    svc->db = zqlite_open_v2(path, cfg->key, cfg->key_len, &opts);
    if (!svc->db) {
        gf_status rc = open_error(zqlite_errcode(NULL), path);
        if (created && stat(path, &st) == 0 && st.st_size == 0)
            unlink(path); /* nothing was stored: leave no empty file behind */
        return rc;
    }

    /* Everything below reports on svc; gf_open moves the message to NULL. */
    zqlite_busy_timeout(svc->db, FLOW_BUSY_TIMEOUT_MS);
    gf_status rc = migrate(svc);
    if (rc == GF_OK)
        rc = flow_exec(svc, "PRAGMA foreign_keys = ON");
    if (rc == GF_OK && !svc->read_only) {
        /* WAL: readers never block the writer and a commit is one append.
         * An in-memory database stays in "memory" mode, which is fine. */
        zqlite_result *r = zqlite_execute(svc->db, "PRAGMA journal_mode = WAL");
        if (!r)
            rc = flow_error(svc, GF_ERR_NOMEM, "database: out of memory");
        else if (r->status != ZQLITE_OK)
            rc = flow_db_error(svc, r->status, "PRAGMA journal_mode = WAL");
        zqlite_free_result(r);
    }
    if (rc == GF_OK)
        rc = flow_exec(svc,
                       cfg->durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    if (rc == GF_OK)
        rc = setup_fts(svc);
    if (rc == GF_OK)
        rc = prepare_statements(svc);
    return rc;
}

void flow_store_close(gf_service *svc)
{
    /* Leave the search index current; a failure only defers the work to
     * the next search. */
    if (svc->db && svc->has_fts && !svc->read_only && svc->st[ST_BEGIN])
        flow_fts_catch_up(svc);
    finalize_statements(svc);
    zqlite_close(svc->db);
    svc->db = NULL;
}

static gf_status fts_catch_up_body(gf_service *svc, void *arg)
{
    (void)arg;
    return flow_exec(svc, fts_catch_up_sql);
}

gf_status flow_fts_catch_up(gf_service *svc)
{
    return flow_transaction(svc, fts_catch_up_body, NULL, "updating the search index");
}

gf_status flow_fts_current(gf_service *svc, bool *current)
{
    /* What fts_catch_up_sql would still do: prompts past the watermark, or
     * pending prompts answered since. */
    int64_t up_to_date = 0;
    gf_status rc =
        flow_query_int(svc,
                       "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_upto')"
                       " >= (SELECT coalesce(max(id), 0) FROM prompts) AND NOT EXISTS"
                       " (SELECT 1 FROM fts_pending f JOIN responses r"
                       " ON r.prompt_id = f.prompt_id)",
                       &up_to_date);
    *current = rc == GF_OK && up_to_date;
    return rc;
}

/* ---- model rows ------------------------------------------------------------ */

gf_status flow_store_model(gf_service *svc, const char *path)
{
    char *real = realpath(path, NULL);
    if (!real)
        return flow_error(svc, GF_ERR_MODEL, "%s: %s", path, strerror(errno));
    struct stat st;
    if (stat(real, &st) != 0) {
        gf_status rc = flow_error(svc, GF_ERR_MODEL, "%s: %s", path, strerror(errno));
        free(real);
        return rc;
    }
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    gf_status rc = GF_OK;
    zqlite_stmt *look = zqlite_prepare_statement(
        svc->db, "SELECT m.id, m.file_hash FROM model_files f JOIN models m ON m.id = f.model_id"
                 " WHERE f.path = ?1 AND f.file_size = ?2 AND f.mtime_ns = ?3 AND f.inode = ?4");
    zqlite_stmt *add = zqlite_prepare_statement(
        svc->db, "INSERT INTO models(file_hash, name, file_size) VALUES (?1, ?2, ?3)"
                 " ON CONFLICT(file_hash) DO UPDATE SET name = excluded.name RETURNING id");
    zqlite_stmt *file = zqlite_prepare_statement(
        svc->db, "INSERT OR REPLACE INTO model_files(path, file_size, mtime_ns, inode, model_id)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!look || !add || !file) {
        rc = flow_error(svc, GF_ERR_DATABASE, "model table: %s", zqlite_errmsg(svc->db));
        goto done;
    }
    int b = zqlite_bind_text(look, 1, real, -1) | zqlite_bind_int64(look, 2, (int64_t)st.st_size) |
            zqlite_bind_int64(look, 3, mtime_ns) | zqlite_bind_int64(look, 4, (int64_t)st.st_ino);
    if (b) {
        rc = bind_failed(svc, "model lookup");
        goto done;
    }
    int zrc = zqlite_step(look);
    if (zrc == ZQLITE_ROW && zqlite_column_bytes(look, 1) == 64) {
        /* Same path, size, mtime and inode: the file has not changed since
         * it was hashed; skip reading gigabytes again. */
        svc->model_id = zqlite_column_int64(look, 0);
        memcpy(svc->model_hash, zqlite_column_text(look, 1), 65);
        goto done;
    }
    if (zrc != ZQLITE_ROW && zrc != ZQLITE_DONE) {
        rc = flow_db_error(svc, zrc, "model lookup");
        goto done;
    }
    rc = flow_hash_file(real, svc->model_hash);
    if (rc != GF_OK) {
        flow_error(svc, rc, "%s", gf_errmsg(NULL));
        goto done;
    }
    rc = flow_exec(svc, "BEGIN IMMEDIATE");
    if (rc != GF_OK)
        goto done;
    b = zqlite_bind_text(add, 1, svc->model_hash, 64) |
        zqlite_bind_text(add, 2, svc->model_name, -1) |
        zqlite_bind_int64(add, 3, (int64_t)st.st_size);
    rc = b ? bind_failed(svc, "model insert")
           : stmt_int(svc, add, "model insert", &svc->model_id, NULL);
    if (rc == GF_OK) {
        b = zqlite_bind_text(file, 1, real, -1) | zqlite_bind_int64(file, 2, (int64_t)st.st_size) |
            zqlite_bind_int64(file, 3, mtime_ns) | zqlite_bind_int64(file, 4, (int64_t)st.st_ino) |
            zqlite_bind_int64(file, 5, svc->model_id);
        int64_t unused;
        bool found;
        rc = b ? bind_failed(svc, "model file insert")
               : stmt_int(svc, file, "model file insert", &unused, &found);
    }
    if (rc == GF_OK)
        rc = flow_exec(svc, "COMMIT");
    if (rc != GF_OK)
        zqlite_free_result(zqlite_execute(svc->db, "ROLLBACK"));
done:
    zqlite_finalize(look);
    zqlite_finalize(add);
    zqlite_finalize(file);
    free(real);
    return rc;
}

/* ---- prompts --------------------------------------------------------------- */

void flow_turns_free(flow_turns *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->user[i]);
        free(t->assistant[i]);
    }
    free(t->user);
    free(t->assistant);
    memset(t, 0, sizeof *t);
}

static gf_status load_turns(gf_service *svc, int64_t conversation_id, flow_turns *t)
{
    zqlite_stmt *s = svc->st[ST_TURNS];
    if (zqlite_bind_int64(s, 1, conversation_id) | zqlite_bind_int64(s, 2, FLOW_HISTORY_TURNS))
        return bind_failed(svc, "conversation turns");
    size_t cap = 0;
    gf_status rc = GF_OK;
    int zrc;
    while ((zrc = zqlite_step(s)) == ZQLITE_ROW) {
        if (t->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **u = realloc(t->user, ncap * sizeof *u);
            if (u)
                t->user = u;
            char **a = realloc(t->assistant, ncap * sizeof *a);
            if (a)
                t->assistant = a;
            if (!u || !a) {
                rc = flow_error(svc, GF_ERR_NOMEM, "conversation turns: out of memory");
                break;
            }
            cap = ncap;
        }
        char *u = strdup(zqlite_column_text(s, 0) ? zqlite_column_text(s, 0) : "");
        char *a = strdup(zqlite_column_text(s, 1) ? zqlite_column_text(s, 1) : "");
        if (!u || !a) {
            free(u);
            free(a);
            rc = flow_error(svc, GF_ERR_NOMEM, "conversation turns: out of memory");
            break;
        }
        t->user[t->n] = u;
        t->assistant[t->n] = a;
        t->n++;
    }
    if (rc == GF_OK && zrc != ZQLITE_DONE)
        rc = flow_db_error(svc, zrc, "conversation turns");
    zqlite_reset(s);
    zqlite_clear_bindings(s);
    return rc;
}

gf_status flow_read_turns(gf_service *svc, int64_t conversation_id, flow_turns *turns)
{
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    zqlite_stmt *s = svc->st[ST_CONV_EXISTS];
    bool found = false;
    int64_t one;
    rc = zqlite_bind_int64(s, 1, conversation_id)
             ? bind_failed(svc, "conversation lookup")
             : stmt_int(svc, s, "conversation lookup", &one, &found);
    if (rc == GF_OK && !found)
        rc = flow_error(svc, GF_ERR_NOT_FOUND, "conversation %lld does not exist",
                        (long long)conversation_id);
    if (rc == GF_OK)
        rc = load_turns(svc, conversation_id, turns);
    flow_db_unlock(svc);
    if (rc != GF_OK)
        flow_turns_free(turns);
    return rc;
}

/* First FLOW_TITLE_MAX bytes of a prompt, cut on a character boundary, on one line. */
static void make_title(const char *prompt, char out[FLOW_TITLE_MAX + 1])
{
    size_t n = strnlen(prompt, FLOW_TITLE_MAX + 1);
    if (n > FLOW_TITLE_MAX) {
        n = FLOW_TITLE_MAX;
        while (n > 0 && ((unsigned char)prompt[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (prompt[i] == '\n' || prompt[i] == '\r' || prompt[i] == '\t') ? ' ' : prompt[i];
    out[n] = '\0';
}

static gf_status conversation_insert(gf_service *svc, const char *label, const char *title,
                                     int64_t *id)
{
    zqlite_stmt *s = svc->st[ST_CONV_INSERT];
    int b = (label ? zqlite_bind_text(s, 1, label, -1) : zqlite_bind_null(s, 1)) |
            zqlite_bind_text(s, 2, title, -1) | zqlite_bind_int64(s, 3, flow_unix_ms());
    return b ? bind_failed(svc, "new conversation")
             : stmt_insert(svc, ST_CONV_INSERT, "new conversation", id);
}

typedef struct prompt_tx {
    int64_t conversation_id;
    const char *prompt;
    const ghost_gen_params *gen;
    int64_t conversation_out, prompt_id;
} prompt_tx;

static gf_status prompt_tx_body(gf_service *svc, void *arg)
{
    prompt_tx *t = arg;
    char title[FLOW_TITLE_MAX + 1];
    make_title(t->prompt, title);
    int64_t now = flow_unix_ms();
    int64_t conv = t->conversation_id;
    gf_status rc;
    if (conv == GF_NEW_CONVERSATION) {
        rc = conversation_insert(svc, NULL, title, &conv);
    } else {
        zqlite_stmt *s = svc->st[ST_CONV_EXISTS];
        bool found = false;
        int64_t one;
        rc = zqlite_bind_int64(s, 1, conv) ? bind_failed(svc, "conversation lookup")
                                           : stmt_int(svc, s, "conversation lookup", &one, &found);
        if (rc == GF_OK && !found)
            return flow_error(svc, GF_ERR_NOT_FOUND, "conversation %lld does not exist",
                              (long long)conv);
        if (rc == GF_OK) { /* a conversation made empty gets its title now */
            s = svc->st[ST_CONV_TITLE];
            int b = zqlite_bind_int64(s, 1, conv) | zqlite_bind_text(s, 2, title, -1);
            rc = b ? bind_failed(svc, "conversation title")
                   : stmt_run(svc, ST_CONV_TITLE, "conversation title");
        }
    }
    if (rc != GF_OK)
        return rc;

    const ghost_gen_params *g = t->gen;
    zqlite_stmt *s = svc->st[ST_PROMPT_INSERT];
    int b = zqlite_bind_int64(s, 1, conv) | zqlite_bind_int64(s, 2, now) |
            (svc->model_id ? zqlite_bind_int64(s, 3, svc->model_id) : zqlite_bind_null(s, 3)) |
            zqlite_bind_text(s, 4, t->prompt, -1) | zqlite_bind_int64(s, 5, g->max_tokens) |
            zqlite_bind_double(s, 6, g->temperature) | zqlite_bind_int64(s, 7, g->top_k) |
            zqlite_bind_double(s, 8, g->top_p) | zqlite_bind_double(s, 9, g->min_p) |
            zqlite_bind_double(s, 10, g->repeat_penalty) |
            zqlite_bind_int64(s, 11, g->repeat_last_n) |
            /* SQLite integers are signed: the seed is stored bit for bit. */
            zqlite_bind_int64(s, 12, (int64_t)g->seed);
    rc = b ? bind_failed(svc, "prompt insert")
           : stmt_insert(svc, ST_PROMPT_INSERT, "prompt insert", &t->prompt_id);
    for (size_t i = 0; rc == GF_OK && i < g->n_stop; i++) {
        s = svc->st[ST_STOP_INSERT];
        b = zqlite_bind_int64(s, 1, t->prompt_id) | zqlite_bind_int64(s, 2, (int64_t)i) |
            zqlite_bind_text(s, 3, g->stop[i], -1);
        rc = b ? bind_failed(svc, "stop string insert")
               : stmt_run(svc, ST_STOP_INSERT, "stop string insert");
    }
    t->conversation_out = conv;
    return rc;
}

gf_status flow_store_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                            const ghost_gen_params *gen, int64_t *conversation_out,
                            int64_t *prompt_id)
{
    for (size_t i = 0; i < gen->n_stop; i++)
        if (!gen->stop || !gen->stop[i])
            return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "params: stop string %zu is NULL", i);
    prompt_tx t = {.conversation_id = conversation_id, .prompt = prompt, .gen = gen};
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    rc = flow_transaction(svc, prompt_tx_body, &t, "storing the prompt");
    flow_db_unlock(svc);
    if (rc != GF_OK)
        return rc;
    *conversation_out = t.conversation_out;
    *prompt_id = t.prompt_id;
    return GF_OK;
}

/* ---- answers --------------------------------------------------------------- */

typedef struct answer_tx {
    int64_t prompt_id;
    const flow_answer *a;
    int64_t response_id;
} answer_tx;

static gf_status answer_tx_body(gf_service *svc, void *arg)
{
    answer_tx *t = arg;
    const flow_answer *a = t->a;
    zqlite_stmt *s = svc->st[ST_RESPONSE_INSERT];
    int b = zqlite_bind_int64(s, 1, t->prompt_id) | zqlite_bind_int64(s, 2, flow_unix_ms()) |
            zqlite_bind_text(s, 3, a->text ? a->text : "", -1) |
            zqlite_bind_text(s, 4, gf_finish_reason_name(a->finish), -1) |
            (a->error ? zqlite_bind_text(s, 5, a->error, -1) : zqlite_bind_null(s, 5)) |
            zqlite_bind_int64(s, 6, a->prompt_tokens) |
            zqlite_bind_int64(s, 7, a->completion_tokens) |
            zqlite_bind_int64(s, 8, a->cached_tokens) | zqlite_bind_double(s, 9, a->prompt_ms) |
            zqlite_bind_double(s, 10, a->generation_ms);
    if (b)
        return bind_failed(svc, "answer insert");
    int zrc = zqlite_step(s);
    if (zrc == ZQLITE_DONE)
        t->response_id = t->prompt_id; /* an answer's row id is its prompt's */
    gf_status rc = GF_OK;
    if (zrc == ZQLITE_CONSTRAINT)
        /* foreign key (no such prompt) or primary key (already answered) */
        rc = flow_error(svc, GF_ERR_INVALID_ARGUMENT,
                        "prompt %lld: does not exist or already has an answer",
                        (long long)t->prompt_id);
    else if (zrc != ZQLITE_DONE)
        rc = flow_db_error(svc, zrc, "answer insert");
    zqlite_reset(s);
    zqlite_clear_bindings(s);
    return rc;
}

gf_status flow_store_answer(gf_service *svc, int64_t prompt_id, const flow_answer *a,
                            int64_t *response_id)
{
    if (a->text && flow_utf8_invalid_at(a->text, strlen(a->text)) >= 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "answer to prompt %lld is not valid UTF-8",
                          (long long)prompt_id);
    answer_tx t = {.prompt_id = prompt_id, .a = a};
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    rc = flow_transaction(svc, answer_tx_body, &t, "storing the answer");
    flow_db_unlock(svc);
    if (rc == GF_OK && response_id)
        *response_id = t.response_id;
    return rc;
}

/* ---- conversations --------------------------------------------------------- */

gf_status gf_conversation_new(gf_service *svc, int64_t *id)
{
    if (!svc || !id)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_conversation_new: %s is NULL",
                          !svc ? "svc" : "id");
    *id = 0;
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    rc = conversation_insert(svc, NULL, "", id);
    flow_db_unlock(svc);
    return rc;
}

typedef struct label_tx {
    const char *label;
    int64_t id;
} label_tx;

static gf_status label_tx_body(gf_service *svc, void *arg)
{
    label_tx *t = arg;
    zqlite_stmt *s = svc->st[ST_CONV_BY_LABEL];
    bool found = false;
    gf_status rc = zqlite_bind_text(s, 1, t->label, -1)
                       ? bind_failed(svc, "conversation label lookup")
                       : stmt_int(svc, s, "conversation label lookup", &t->id, &found);
    if (rc == GF_OK && !found)
        rc = conversation_insert(svc, t->label, "", &t->id);
    return rc;
}

gf_status gf_conversation_for_label(gf_service *svc, const char *label, int64_t *id)
{
    if (!svc || !label || !id)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_conversation_for_label: %s is NULL",
                          !svc     ? "svc"
                          : !label ? "label"
                                   : "id");
    *id = 0;
    size_t len = strnlen(label, FLOW_LABEL_MAX + 1);
    if (len == 0 || len > FLOW_LABEL_MAX)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "conversation label: %s (1 to %d bytes)",
                          len ? "too long" : "empty", FLOW_LABEL_MAX);
    if (flow_utf8_invalid_at(label, len) >= 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "conversation label: invalid UTF-8");
    label_tx t = {.label = label};
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    rc = flow_transaction(svc, label_tx_body, &t, "conversation label");
    flow_db_unlock(svc);
    if (rc == GF_OK)
        *id = t.id;
    return rc;
}

gf_status gf_rekey(gf_service *svc, const char *new_key, size_t new_key_len)
{
    if (!svc || !new_key || new_key_len == 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "gf_rekey: %s",
                          !svc ? "svc is NULL" : "the new key is empty");
    zqlite_open_options opts = zqlite_default_open_options();
    if (svc->kdf_opslimit)
        opts.kdf_opslimit = svc->kdf_opslimit;
    if (svc->kdf_memlimit)
        opts.kdf_memlimit = svc->kdf_memlimit;
    gf_status rc = flow_db_lock(svc);
    if (rc != GF_OK)
        return rc;
    /* zqlite re-encrypts only a connection that is the file's only one in
     * this process, without live statements. */
    flow_writer_pause_checkpoints(svc);
    finalize_statements(svc);
    int zrc = zqlite_rekey(svc->db, new_key, new_key_len, &opts);
    if (zrc != ZQLITE_OK)
        rc = flow_db_error(svc, zrc, "changing the key");
    gf_status prc = prepare_statements(svc);
    if (rc == GF_OK)
        rc = prc;
    flow_writer_resume_checkpoints(svc);
    flow_db_unlock(svc);
    return rc;
}
