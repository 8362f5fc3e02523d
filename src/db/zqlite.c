/*
 * zqlite.c — the public C API of libzqlite (include/zqlite.h): opening an
 * encrypted or plain database on the system SQLite, one-shot execution into
 * a result table, prepared statements, and the error convention (a status
 * code plus a message on the handle, or per thread for a failed open).
 *
 * Every connection to an encrypted file gets its own registered VFS
 * ("zqlite-<n>", vfs.c) that carries the connection's keyring, so keys never
 * travel through SQLite (no key in a URI or a PRAGMA). Paths are turned into
 * escaped "file:" URIs so a path cannot pick another VFS (?vfs=unix) and
 * bypass encryption.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static _Thread_local int open_errcode;
static _Thread_local char open_errmsg[512];

/* ---- errors -------------------------------------------------------------- */

const char *zqlite_strerror(int code)
{
    switch (code) {
    case ZQLITE_OK: return "ok";
    case ZQLITE_ERROR: return "SQL error or missing database";
    case ZQLITE_WRONG_KEY: return "wrong key or not a zqlite database";
    case ZQLITE_CORRUPT: return "database corrupt or modified (authentication failed)";
    case ZQLITE_NOT_ENCRYPTED: return "a plain SQLite database opened with a key";
    case ZQLITE_KEY_REQUIRED: return "an encrypted database opened without a key";
    case ZQLITE_IO: return "I/O error";
    case ZQLITE_NOMEM: return "out of memory";
    case ZQLITE_BUSY: return "database is locked";
    case ZQLITE_CONSTRAINT: return "constraint failed";
    case ZQLITE_MISUSE: return "bad argument or call order";
    case ZQLITE_RANGE: return "index out of range";
    case ZQLITE_ROW: return "row ready";
    case ZQLITE_DONE: return "no more rows";
    default: return "unknown error code";
    }
}

const char *zqlite_errmsg(const zqlite_db *db)
{
    return db ? db->errmsg : open_errmsg;
}
int zqlite_errcode(const zqlite_db *db)
{
    return db ? db->errcode : open_errcode;
}
const char *zqlite_version(void)
{
    return ZQLITE_VERSION;
}

static void db_vset(zqlite_db *db, int code, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&db->lock);
    db->errcode = code;
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    pthread_mutex_unlock(&db->lock);
}

int db_fail(zqlite_db *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    db_vset(db, code, fmt, ap);
    va_end(ap);
    return code;
}

static void db_ok(zqlite_db *db)
{
    pthread_mutex_lock(&db->lock);
    db->errcode = ZQLITE_OK;
    db->errmsg[0] = '\0';
    pthread_mutex_unlock(&db->lock);
}

static int db_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return ZQLITE_OK;
    case SQLITE_ROW: return ZQLITE_ROW;
    case SQLITE_DONE: return ZQLITE_DONE;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ZQLITE_BUSY;
    case SQLITE_CONSTRAINT: return ZQLITE_CONSTRAINT;
    case SQLITE_NOMEM: return ZQLITE_NOMEM;
    case SQLITE_IOERR: return rc == SQLITE_IOERR_DATA ? ZQLITE_CORRUPT : ZQLITE_IO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ZQLITE_CORRUPT;
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL: return ZQLITE_IO;
    case SQLITE_MISUSE: return ZQLITE_MISUSE;
    case SQLITE_RANGE: return ZQLITE_RANGE;
    default: return ZQLITE_ERROR;
    }
}

int db_check(zqlite_db *db, int rc, const char *what)
{
    int code = db_status(rc);
    if (code == ZQLITE_OK || code == ZQLITE_ROW || code == ZQLITE_DONE)
        return code;
    int vst = vfs_last_status();
    if (vst != ZQLITE_OK)
        return db_fail(db, vst, "%s: %s", what, vfs_last_error());
    const char *m = db->sq ? sqlite3_errmsg(db->sq) : sqlite3_errstr(rc);
    return db_fail(db, code, "%s: %s", what, m);
}

int db_lost(zqlite_db *db)
{
    if (db->sq)
        return ZQLITE_OK;
    return db_fail(db, ZQLITE_MISUSE,
                   "%s: this connection was lost when a failed rekey could not reopen the "
                   "file; close it and open the database again",
                   db->path);
}

int db_exec(zqlite_db *db, sqlite3 *sq, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(sq, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        int vst = vfs_last_status();
        int code = vst != ZQLITE_OK ? vst : db_status(rc);
        db_fail(db, code, "%.*s: %s", 60, sql,
                vst != ZQLITE_OK ? vfs_last_error()
                : err            ? err
                                 : sqlite3_errstr(rc));
        sqlite3_free(err);
        return code;
    }
    return ZQLITE_OK;
}

/* ---- open / close -------------------------------------------------------- */

zqlite_open_options zqlite_default_open_options(void)
{
    zqlite_open_options o = {0};
    o.create = 1;
    return o;
}

char *db_uri(const char *path, const char *vfs_name)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || strchr("/._-~", *p);
        /* "file://" would start an authority: escape a leading second '/'. */
        if (p == (const unsigned char *)path + 1 && path[0] == '/' && *p == '/')
            keep = 0;
        if (keep)
            sqlite3_str_appendchar(s, 1, (char)*p);
        else
            sqlite3_str_appendf(s, "%%%02X", *p);
    }
    sqlite3_str_appendf(s, "?vfs=%s", vfs_name);
    return sqlite3_str_finish(s);
}

int db_connect(zqlite_db *db, const char *path, const char *vfs_name, int flags, int page_size,
               sqlite3 **out)
{
    sqlite3 *sq = NULL;
    int rc;
    *out = NULL;
    flags |= SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE;
    if (strcmp(path, ":memory:") == 0) {
        /* URI on so VACUUM INTO / ATTACH may name a VFS (export). */
        rc = sqlite3_open_v2(":memory:", &sq, flags | SQLITE_OPEN_URI, NULL);
    } else {
        char *uri = db_uri(path, vfs_name ? vfs_name : db->base_vfs ? db->base_vfs : "unix");
        if (uri && db->immutable && strcmp(path, db->path) == 0) {
            char *u = sqlite3_mprintf("%s&immutable=1", uri);
            sqlite3_free(uri);
            uri = u;
        }
        if (!uri)
            return db_fail(db, ZQLITE_NOMEM, "out of memory");
        rc = sqlite3_open_v2(uri, &sq, flags | SQLITE_OPEN_URI, NULL);
        sqlite3_free(uri);
    }
    if (rc != SQLITE_OK) {
        int vst = vfs_last_status();
        int code = vst != ZQLITE_OK ? vst : db_status(rc);
        db_fail(db, code, "%s: %s", path,
                vst != ZQLITE_OK ? vfs_last_error()
                : sq             ? sqlite3_errmsg(sq)
                                 : sqlite3_errstr(rc));
        sqlite3_close_v2(sq);
        return code;
    }
    int code = ZQLITE_OK;
    char sql[64];
    if (page_size) {
        if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1))) {
            code = db_fail(db, ZQLITE_MISUSE, "page_size %d is not a power of two in 512..65536",
                           page_size);
        } else {
            snprintf(sql, sizeof sql, "PRAGMA page_size=%d", page_size);
            code = db_exec(db, sq, sql);
        }
    }
    if (code == ZQLITE_OK && vfs_name) {
        int reserve = VFS_RESERVE; /* takes effect when the file is created */
        sqlite3_file_control(sq, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
    }
    if (code == ZQLITE_OK)
        code = db_exec(db, sq, "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0");
    /* Read page 1 now so a wrong key or a damaged file fails the open. */
    if (code == ZQLITE_OK)
        code = db_exec(db, sq, "SELECT count(*) FROM sqlite_schema");
    if (code != ZQLITE_OK) {
        char keep[sizeof db->errmsg];
        memcpy(keep, db->errmsg, sizeof keep);
        db_fail(db, code, "%s: %s", path, keep);
        sqlite3_close_v2(sq);
        return code;
    }
    *out = sq;
    return ZQLITE_OK;
}

int db_keys_exclusive(const zqlite_db *db)
{
    return !db->keys_ref || atomic_load(&db->keys_ref->refs) == 1;
}

static void db_free(zqlite_db *db)
{
    if (!db->keys_ref || atomic_fetch_sub(&db->keys_ref->refs, 1) == 1) {
        vfs_destroy(db->vfs);
        key_ring_free(db->ring);
        free(db->keys_ref);
    }
    free(db->path);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

/* The page cache pragma; closes the connection when it fails. */
/* db->cache_kib's page cache on db's connection (at open, and again on the
 * connection rekey opens). */
static int db_apply_cache(zqlite_db *db)
{
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", db->cache_kib ? db->cache_kib : 65536);
    return db_exec(db, db->sq, sql);
}

static int db_set_cache(zqlite_db *db, int cache_kib)
{
    int code = ZQLITE_OK;
    db->cache_kib = cache_kib;
    if (cache_kib < 0)
        code = db_fail(db, ZQLITE_MISUSE, "cache_kib %d is negative", cache_kib);
    if (code == ZQLITE_OK)
        code = db_apply_cache(db);
    if (code != ZQLITE_OK)
        sqlite3_close(db->sq);
    return code;
}

/* A zqlite_db with its path copied and its lock ready; NULL (with the open
 * error set) when out of memory. */
static zqlite_db *db_alloc(const char *path)
{
    zqlite_db *db = calloc(1, sizeof *db);
    if (db)
        db->path = strdup(path);
    if (!db || !db->path) {
        free(db);
        open_errcode = ZQLITE_NOMEM;
        snprintf(open_errmsg, sizeof open_errmsg, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&db->lock, NULL);
    return db;
}

/* A failed open: the message moves to the thread's open error. */
static zqlite_db *db_open_failed(zqlite_db *db, int code)
{
    open_errcode = code;
    memcpy(open_errmsg, db->errmsg, sizeof open_errmsg);
    db_free(db);
    return NULL;
}

static int db_is_zqlite_file(const char *path)
{
    unsigned char magic[8];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    return n == sizeof magic && memcmp(magic, "ZQLITEDB", 8) == 0;
}

zqlite_db *zqlite_open_v2(const char *path, const char *key, size_t key_len,
                          const zqlite_open_options *options)
{
    zqlite_open_options o = options ? *options : zqlite_default_open_options();
    vfs_clear_error();
    open_errcode = ZQLITE_OK;
    open_errmsg[0] = '\0';
    if (!path || !*path) {
        open_errcode = ZQLITE_MISUSE;
        snprintf(open_errmsg, sizeof open_errmsg, "database path is empty");
        return NULL;
    }
    zqlite_db *db = db_alloc(path);
    if (!db)
        return NULL;
    db->memory = strcmp(path, ":memory:") == 0;
    db->immutable = o.immutable && !db->memory;
    db->readonly = o.readonly || db->immutable;
    int code = ZQLITE_OK;
    sqlite3_vfs *base = sqlite3_vfs_find(o.base_vfs ? o.base_vfs : "unix");
    db->base_vfs = base ? base->zName : NULL;
    if (!base) {
        code = db_fail(db, ZQLITE_MISUSE, "%s: base_vfs \"%.64s\" is not a registered SQLite VFS",
                       path, o.base_vfs);
    } else if (key && key_len > 0) {
        char msg[256];
        code =
            key_ring_new(key, key_len, o.kdf_opslimit, o.kdf_memlimit, &db->ring, msg, sizeof msg);
        if (code != ZQLITE_OK)
            db_fail(db, code, "%s: %s", path, msg);
        else if (!db->memory && !(db->vfs = vfs_create(db->ring, db->base_vfs)))
            code = db_fail(db, ZQLITE_NOMEM, "%s: cannot register the encryption VFS", path);
        else if (!(db->keys_ref = malloc(sizeof *db->keys_ref)))
            code = db_fail(db, ZQLITE_NOMEM, "%s: out of memory", path);
        else
            atomic_init(&db->keys_ref->refs, 1);
    } else if (!db->memory && db_is_zqlite_file(path)) {
        code = db_fail(db, ZQLITE_KEY_REQUIRED,
                       "%s: an encrypted zqlite database; a key is required", path);
    }
    if (code == ZQLITE_OK) {
        int flags = db->readonly ? SQLITE_OPEN_READONLY
                                 : SQLITE_OPEN_READWRITE | (o.create ? SQLITE_OPEN_CREATE : 0);
        code = db_connect(db, path, db->vfs ? db->vfs->zName : NULL, flags, o.page_size, &db->sq);
    }
    if (code == ZQLITE_OK)
        code = db_set_cache(db, o.cache_kib);
    return code == ZQLITE_OK ? db : db_open_failed(db, code);
}

zqlite_db *zqlite_open_another(zqlite_db *db, const zqlite_open_options *options)
{
    vfs_clear_error();
    open_errcode = ZQLITE_OK;
    open_errmsg[0] = '\0';
    if (!db || db->memory || !db->sq) {
        open_errcode = ZQLITE_MISUSE;
        snprintf(open_errmsg, sizeof open_errmsg, "%s",
                 !db          ? "db is NULL"
                 : db->memory ? "another connection to :memory: would be another database"
                              : "db lost its connection in a failed rekey");
        return NULL;
    }
    zqlite_open_options o = options ? *options : zqlite_default_open_options();
    zqlite_db *again = db_alloc(db->path);
    if (!again)
        return NULL;
    again->readonly = db->readonly || o.readonly;
    again->base_vfs = db->base_vfs;
    again->immutable = db->immutable;
    if (db->keys_ref) { /* encrypted: share the keys */
        atomic_fetch_add(&db->keys_ref->refs, 1);
        again->keys_ref = db->keys_ref;
        again->vfs = db->vfs;
        again->ring = db->ring;
    }
    /* The file exists: never create (a rename since would make a new one). */
    int code =
        db_connect(again, db->path, again->vfs ? again->vfs->zName : NULL,
                   again->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, 0, &again->sq);
    if (code == ZQLITE_OK)
        code = db_set_cache(again, o.cache_kib ? o.cache_kib : db->cache_kib);
    return code == ZQLITE_OK ? again : db_open_failed(again, code);
}

zqlite_db *zqlite_open_encrypted(const char *path, const char *key, size_t key_len)
{
    return zqlite_open_v2(path, key, key_len, NULL);
}

int zqlite_close(zqlite_db *db)
{
    if (!db)
        return ZQLITE_OK;
    while (db->stmts)
        zqlite_finalize(db->stmts);
    int rc = sqlite3_close(db->sq);
    if (rc != SQLITE_OK) {
        /* Only possible with outside handles (sqlite3_backup): defer. */
        sqlite3_close_v2(db->sq);
    }
    db_free(db);
    return rc == SQLITE_OK ? ZQLITE_OK : ZQLITE_BUSY;
}

int64_t zqlite_changes(zqlite_db *db)
{
    return db && db->sq ? sqlite3_changes64(db->sq) : 0;
}

int64_t zqlite_last_insert_rowid(zqlite_db *db)
{
    return db && db->sq ? sqlite3_last_insert_rowid(db->sq) : 0;
}

int zqlite_busy_timeout(zqlite_db *db, int ms)
{
    if (!db)
        return ZQLITE_MISUSE;
    if (db_lost(db) != ZQLITE_OK)
        return ZQLITE_MISUSE;
    db->busy_ms = ms > 0 ? ms : 0;
    return db_check(db, sqlite3_busy_timeout(db->sq, ms), "busy_timeout");
}

static int wal_trampoline(void *arg, sqlite3 *sq, const char *schema, int pages)
{
    (void)sq;
    zqlite_db *db = arg;
    /* Attached databases have WALs of their own: report the main one. */
    if (strcmp(schema, "main") != 0)
        return SQLITE_OK;
    return db->wal_fn(db->wal_arg, db, pages) == ZQLITE_OK ? SQLITE_OK : SQLITE_ERROR;
}

int db_restore_settings(zqlite_db *db)
{
    int code = db_apply_cache(db);
    if (code == ZQLITE_OK && db->busy_ms)
        code = db_check(db, sqlite3_busy_timeout(db->sq, db->busy_ms), "busy_timeout");
    if (db->wal_fn)
        sqlite3_wal_hook(db->sq, wal_trampoline, db);
    return code;
}

int zqlite_wal_hook(zqlite_db *db, zqlite_wal_fn fn, void *user_data)
{
    if (!db)
        return ZQLITE_MISUSE;
    if (db_lost(db) != ZQLITE_OK)
        return ZQLITE_MISUSE;
    db->wal_fn = fn;
    db->wal_arg = user_data;
    sqlite3_wal_hook(db->sq, fn ? wal_trampoline : NULL, fn ? db : NULL);
    return ZQLITE_OK;
}

/* ---- one-shot execution -------------------------------------------------- */

static void result_clear_rows(zqlite_result *r)
{
    for (size_t i = 0; i < r->row_count * r->column_count; i++)
        free((void *)r->cells[i].text);
    free(r->cells);
    for (size_t i = 0; i < r->column_count; i++)
        free(r->column_names[i]);
    free(r->column_names);
    r->cells = NULL;
    r->column_names = NULL;
    r->row_count = r->column_count = 0;
}

void zqlite_free_result(zqlite_result *r)
{
    if (!r)
        return;
    result_clear_rows(r);
    free(r->error_message);
    free(r);
}

const zqlite_value *zqlite_result_cell(const zqlite_result *r, size_t row, size_t col)
{
    if (!r || row >= r->row_count || col >= r->column_count)
        return NULL;
    return &r->cells[row * r->column_count + col];
}

static int result_set_columns(zqlite_result *r, sqlite3_stmt *st)
{
    result_clear_rows(r);
    size_t n = (size_t)sqlite3_column_count(st);
    r->column_names = calloc(n, sizeof *r->column_names);
    if (!r->column_names)
        return -1;
    r->column_count = n;
    for (size_t i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, (int)i);
        r->column_names[i] = strdup(name ? name : "");
        if (!r->column_names[i])
            return -1;
    }
    return 0;
}

static int result_add_row(zqlite_result *r, sqlite3_stmt *st, size_t *cap)
{
    size_t nc = r->column_count;
    if (nc == 0)
        return 0;
    if (r->row_count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        zqlite_value *c = realloc(r->cells, ncap * nc * sizeof *c);
        if (!c)
            return -1;
        r->cells = c;
        *cap = ncap;
    }
    zqlite_value *row = &r->cells[r->row_count * nc];
    memset(row, 0, nc * sizeof *row);
    r->row_count++; /* counted now so a failure below frees what was copied */
    for (size_t i = 0; i < nc; i++) {
        zqlite_value *v = &row[i];
        v->type = (zqlite_type)sqlite3_column_type(st, (int)i);
        if (v->type == ZQLITE_INTEGER) {
            v->i = sqlite3_column_int64(st, (int)i);
            v->d = (double)v->i;
        } else if (v->type == ZQLITE_FLOAT) {
            v->d = sqlite3_column_double(st, (int)i);
            v->i = (int64_t)v->d;
        } else if (v->type == ZQLITE_TEXT || v->type == ZQLITE_BLOB) {
            const void *src = v->type == ZQLITE_TEXT ? (const void *)sqlite3_column_text(st, (int)i)
                                                     : sqlite3_column_blob(st, (int)i);
            v->len = (size_t)sqlite3_column_bytes(st, (int)i);
            char *copy = malloc(v->len + 1);
            if (!copy)
                return -1;
            if (v->len)
                memcpy(copy, src, v->len);
            copy[v->len] = '\0';
            v->text = copy;
        }
    }
    return 0;
}

static zqlite_result *result_fail(zqlite_result *r, zqlite_db *db, int code)
{
    result_clear_rows(r);
    r->status = code;
    r->error_message = strdup(db ? db->errmsg : zqlite_strerror(code));
    return r;
}

zqlite_result *zqlite_execute(zqlite_db *db, const char *sql)
{
    zqlite_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (!db || !sql)
        return result_fail(r, db, db ? db_fail(db, ZQLITE_MISUSE, "sql is NULL") : ZQLITE_MISUSE);
    if (db_lost(db) != ZQLITE_OK)
        return result_fail(r, db, ZQLITE_MISUSE);
    vfs_clear_error();
    sqlite3_mutex_enter(sqlite3_db_mutex(db->sq));
    const char *tail = sql;
    int code = ZQLITE_OK;
    size_t cap = 0;
    while (code == ZQLITE_OK && tail && *tail) {
        sqlite3_stmt *st = NULL;
        char what[64];
        snprintf(what, sizeof what, "statement at byte %td", tail - sql);
        int rc = sqlite3_prepare_v2(db->sq, tail, -1, &st, &tail);
        if (rc != SQLITE_OK) {
            code = db_check(db, rc, what);
            break;
        }
        if (!st)
            continue; /* whitespace or a comment */
        if (sqlite3_column_count(st) > 0) {
            cap = 0;
            if (result_set_columns(r, st) != 0)
                code = db_fail(db, ZQLITE_NOMEM, "out of memory");
        }
        while (code == ZQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            if (result_add_row(r, st, &cap) != 0)
                code = db_fail(db, ZQLITE_NOMEM, "out of memory copying a row");
        if (code == ZQLITE_OK && rc != SQLITE_DONE)
            code = db_check(db, rc, what);
        sqlite3_finalize(st);
    }
    r->changes = sqlite3_changes64(db->sq);
    sqlite3_mutex_leave(sqlite3_db_mutex(db->sq));
    if (code != ZQLITE_OK)
        return result_fail(r, db, code);
    db_ok(db);
    return r;
}

/* ---- prepared statements ------------------------------------------------- */

zqlite_stmt *zqlite_prepare_statement(zqlite_db *db, const char *sql)
{
    return zqlite_prepare_next(db, sql, NULL);
}

int zqlite_complete(const char *sql)
{
    return sql ? sqlite3_complete(sql) : 0;
}

zqlite_stmt *zqlite_prepare_next(zqlite_db *db, const char *sql, const char **tail)
{
    if (!db)
        return NULL;
    if (!sql) {
        db_fail(db, ZQLITE_MISUSE, "sql is NULL");
        return NULL;
    }
    if (db_lost(db) != ZQLITE_OK)
        return NULL;
    vfs_clear_error();
    zqlite_stmt *s = calloc(1, sizeof *s);
    if (!s) {
        db_fail(db, ZQLITE_NOMEM, "out of memory");
        return NULL;
    }
    sqlite3_mutex_enter(sqlite3_db_mutex(db->sq));
    int rc = sqlite3_prepare_v2(db->sq, sql, -1, &s->st, tail);
    if (rc == SQLITE_OK && !s->st && tail)
        db_ok(db); /* nothing left of the script */
    else if (rc == SQLITE_OK && !s->st)
        db_fail(db, ZQLITE_MISUSE, "prepare: no statement in the SQL text");
    else if (rc != SQLITE_OK)
        db_check(db, rc, "prepare");
    sqlite3_mutex_leave(sqlite3_db_mutex(db->sq));
    if (!s->st) {
        free(s);
        return NULL;
    }
    s->db = db;
    pthread_mutex_lock(&db->lock);
    s->next = db->stmts;
    if (db->stmts)
        db->stmts->prev = s;
    db->stmts = s;
    pthread_mutex_unlock(&db->lock);
    return s;
}

int zqlite_finalize(zqlite_stmt *s)
{
    if (!s)
        return ZQLITE_OK;
    zqlite_db *db = s->db;
    pthread_mutex_lock(&db->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        db->stmts = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&db->lock);
    sqlite3_finalize(s->st); /* returns the last step's error, already reported */
    free(s);
    return ZQLITE_OK;
}

/* Runs an SQLite call on a statement and reports its failure on the db. */
static int stmt_check(zqlite_stmt *s, int rc, const char *what)
{
    if (rc == SQLITE_OK)
        return ZQLITE_OK;
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db->sq));
    int code = db_check(s->db, rc, what);
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db->sq));
    return code;
}

int zqlite_bind_text(zqlite_stmt *s, int i, const char *text, int64_t len)
{
    if (!s || !text)
        return s ? db_fail(s->db, ZQLITE_MISUSE, "bind_text: text is NULL") : ZQLITE_MISUSE;
    sqlite3_uint64 n = len < 0 ? strlen(text) : (sqlite3_uint64)len;
    return stmt_check(s, sqlite3_bind_text64(s->st, i, text, n, SQLITE_TRANSIENT, SQLITE_UTF8),
                      "bind_text");
}

int zqlite_bind_int64(zqlite_stmt *s, int i, int64_t v)
{
    return s ? stmt_check(s, sqlite3_bind_int64(s->st, i, v), "bind_int64") : ZQLITE_MISUSE;
}

int zqlite_bind_double(zqlite_stmt *s, int i, double v)
{
    return s ? stmt_check(s, sqlite3_bind_double(s->st, i, v), "bind_double") : ZQLITE_MISUSE;
}

int zqlite_bind_blob(zqlite_stmt *s, int i, const void *data, size_t len)
{
    if (!s || (!data && len))
        return s ? db_fail(s->db, ZQLITE_MISUSE, "bind_blob: data is NULL") : ZQLITE_MISUSE;
    /* A zero-length blob, not NULL, when data is NULL and len 0. */
    static const char empty;
    return stmt_check(s, sqlite3_bind_blob64(s->st, i, data ? data : &empty, len, SQLITE_TRANSIENT),
                      "bind_blob");
}

int zqlite_bind_null(zqlite_stmt *s, int i)
{
    return s ? stmt_check(s, sqlite3_bind_null(s->st, i), "bind_null") : ZQLITE_MISUSE;
}

int zqlite_bind_parameter_index(zqlite_stmt *s, const char *name)
{
    return s && name ? sqlite3_bind_parameter_index(s->st, name) : 0;
}

int zqlite_step(zqlite_stmt *s)
{
    if (!s)
        return ZQLITE_MISUSE;
    vfs_clear_error();
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db->sq));
    int rc = sqlite3_step(s->st);
    int code = rc == SQLITE_ROW    ? ZQLITE_ROW
               : rc == SQLITE_DONE ? ZQLITE_DONE
                                   : db_check(s->db, rc, "step");
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db->sq));
    return code;
}

int zqlite_column_count(zqlite_stmt *s)
{
    return s ? sqlite3_column_count(s->st) : 0;
}

/* Column index check: out-of-range access is undefined in SQLite. */
static int col_ok(zqlite_stmt *s, int col, int need_row)
{
    if (!s)
        return 0;
    int n = need_row ? sqlite3_data_count(s->st) : sqlite3_column_count(s->st);
    if (col >= 0 && col < n)
        return 1;
    db_fail(s->db, ZQLITE_RANGE, "column %d out of range (%s %d)", col,
            need_row ? "current row has" : "statement has", n);
    return 0;
}

const char *zqlite_column_name(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 0) ? sqlite3_column_name(s->st, col) : NULL;
}
zqlite_type zqlite_column_type(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? (zqlite_type)sqlite3_column_type(s->st, col) : ZQLITE_NULL;
}
int64_t zqlite_column_int64(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? sqlite3_column_int64(s->st, col) : 0;
}
double zqlite_column_double(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? sqlite3_column_double(s->st, col) : 0.0;
}
const char *zqlite_column_text(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? (const char *)sqlite3_column_text(s->st, col) : NULL;
}
const void *zqlite_column_blob(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? sqlite3_column_blob(s->st, col) : NULL;
}
size_t zqlite_column_bytes(zqlite_stmt *s, int col)
{
    return col_ok(s, col, 1) ? (size_t)sqlite3_column_bytes(s->st, col) : 0;
}

int zqlite_reset(zqlite_stmt *s)
{
    if (!s)
        return ZQLITE_MISUSE;
    sqlite3_reset(s->st); /* returns the last step's error, already reported */
    return ZQLITE_OK;
}

int zqlite_clear_bindings(zqlite_stmt *s)
{
    return s ? stmt_check(s, sqlite3_clear_bindings(s->st), "clear_bindings") : ZQLITE_MISUSE;
}
