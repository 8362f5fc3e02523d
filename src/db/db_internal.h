/*
 * db_internal.h — the zqlite_db / zqlite_stmt structs and the helpers that
 * zqlite.c (API) and convert.c (rekey, plain copies) share.
 */
#ifndef ZQLITE_DB_INTERNAL_H
#define ZQLITE_DB_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "vfs.h"
#include "zqlite.h"

/* The holders of one vfs + ring pair: the connection that derived the keys
 * and those zqlite_open_another made from it (no second key derivation);
 * the last one closed frees them. */
typedef struct db_keys_ref {
    atomic_int refs;
} db_keys_ref;

struct zqlite_db {
    sqlite3 *sq;
    sqlite3_vfs *vfs;      /* NULL for a plain or in-memory database */
    key_ring *ring;        /* NULL for a plain database */
    db_keys_ref *keys_ref; /* with ring: how many connections share vfs/ring */
    char *path;            /* as given to zqlite_open_v2 */
    const char *base_vfs;  /* zName of the VFS under ours (registered; "unix") */
    int cache_kib;         /* as opened (0 = default) */
    int memory;            /* ":memory:" */
    int readonly;
    int immutable;        /* zqlite_open_options.immutable: path opens with immutable=1 */
    pthread_mutex_t lock; /* errcode/errmsg and the statement list */
    int errcode;
    char errmsg[512];
    zqlite_stmt *stmts;
    int busy_ms;          /* zqlite_busy_timeout (0 = none) */
    zqlite_wal_fn wal_fn; /* zqlite_wal_hook */
    void *wal_arg;
};

struct zqlite_stmt {
    sqlite3_stmt *st;
    zqlite_db *db;
    zqlite_stmt *prev, *next;
};

/* Sets db's error (printf-style); returns code. */
int db_fail(zqlite_db *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Turns an SQLite result into a zqlite status and, on failure, db's message
 * (the VFS's message when the VFS failed). what prefixes SQLite's message. */
int db_check(zqlite_db *db, int rc, const char *what);
/* True when no connection made by zqlite_open_another shares db's keys. */
int db_keys_exclusive(const zqlite_db *db);
/* ZQLITE_OK, or ZQLITE_MISUSE with a message when a failed rekey left db
 * without a connection (db->sq NULL). */
int db_lost(zqlite_db *db);
/* sqlite3_exec + db_check. */
int db_exec(zqlite_db *db, sqlite3 *sq, const char *sql);
/* Opens path on an SQLite connection with the right VFS, URI escaping and
 * the pragmas zqlite relies on (reserve bytes, temp_store, mmap off). */
int db_connect(zqlite_db *db, const char *path, const char *vfs_name, int flags, int page_size,
               sqlite3 **out);
/* Gives a connection that rekey opened again what the old one had: cache
 * size, busy timeout and WAL hook. */
int db_restore_settings(zqlite_db *db);
/* "file:<path percent-escaped>?vfs=<vfs>" in sqlite3_malloc memory. */
char *db_uri(const char *path, const char *vfs_name);

#endif
