/*
 * zqlite.h — public API of libzqlite, an encrypted embedded database.
 *
 * zqlite is the system's stock SQLite plus an encryption VFS: every page that
 * reaches disk (main database, rollback journal, WAL) is sealed with
 * AES-256-GCM; the key comes from a passphrase through Argon2id, or is a raw
 * 32-byte key given as "x'<64 hex digits>'". The on-disk format is described
 * in docs/zqlite-format.md.
 *
 * Errors (see docs/conventions.md): functions return a zqlite_status, or NULL
 * for constructors. The message ("page 7: authentication failed") is kept on
 * the connection: zqlite_errmsg(db); a failed open leaves it per thread:
 * zqlite_errmsg(NULL). Key material never appears in a message.
 *
 * Thread safety: a zqlite_db may be used from several threads (SQLite's
 * serialized mode), but a zqlite_stmt belongs to one thread at a time, and
 * zqlite_errmsg(db) is only meaningful on the thread that made the failing call
 * when no other thread uses db meanwhile. Prefer one connection per thread.
 *
 * Ownership: results and statements are owned by the caller and freed with
 * zqlite_free_result / zqlite_finalize; strings returned by column accessors
 * are owned by the statement and valid until the next step/reset/finalize.
 */
#ifndef ZQLITE_H
#define ZQLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GF_BUILDING_LIBRARY)
#define ZQLITE_API __attribute__((visibility("default")))
#else
#define ZQLITE_API
#endif

#define ZQLITE_VERSION "0.1.0"

typedef enum zqlite_status {
    ZQLITE_OK = 0,
    ZQLITE_ERROR = 1,         /* SQL error or missing database */
    ZQLITE_WRONG_KEY = 2,     /* "wrong key or not a zqlite database" */
    ZQLITE_CORRUPT = 3,       /* a page failed authentication / bad format */
    ZQLITE_NOT_ENCRYPTED = 4, /* a plain SQLite file opened with a key */
    ZQLITE_KEY_REQUIRED = 5,  /* an encrypted file opened without a key */
    ZQLITE_IO = 6,
    ZQLITE_NOMEM = 7,
    ZQLITE_BUSY = 8,
    ZQLITE_CONSTRAINT = 9,
    ZQLITE_MISUSE = 10, /* bad argument, wrong call order */
    ZQLITE_RANGE = 11,  /* bind/column index out of range */
    ZQLITE_ROW = 100,   /* zqlite_step: a row is ready */
    ZQLITE_DONE = 101   /* zqlite_step: finished */
} zqlite_status;

/* Column types, numerically equal to SQLite's. */
typedef enum zqlite_type {
    ZQLITE_INTEGER = 1,
    ZQLITE_FLOAT = 2,
    ZQLITE_TEXT = 3,
    ZQLITE_BLOB = 4,
    ZQLITE_NULL = 5
} zqlite_type;

typedef struct zqlite_db zqlite_db;
typedef struct zqlite_stmt zqlite_stmt;

ZQLITE_API const char *zqlite_strerror(int code);
/* Last message on db; the calling thread's last open failure when db is NULL. */
ZQLITE_API const char *zqlite_errmsg(const zqlite_db *db);
ZQLITE_API int zqlite_errcode(const zqlite_db *db);
ZQLITE_API const char *zqlite_version(void);

/* ---- open / close -------------------------------------------------------- */

/* The largest Argon2id costs zqlite creates a database with and accepts from
 * a file header (a forged header cannot make an open take minutes and
 * gigabytes before it says "wrong key"). */
#define ZQLITE_KDF_MAX_OPSLIMIT 10u
#define ZQLITE_KDF_MAX_MEMLIMIT (256u * 1024u * 1024u) /* bytes */

typedef struct zqlite_open_options {
    int readonly;          /* open read-only */
    int create;            /* create the file if missing (default 1) */
    uint64_t kdf_opslimit; /* Argon2id passes for a new database (0 = default 3;
                              1..ZQLITE_KDF_MAX_OPSLIMIT) */
    size_t kdf_memlimit;   /* bytes (0 = default 64 MiB; 8 KiB..ZQLITE_KDF_MAX_MEMLIMIT) */
    int page_size;         /* new databases only (0 = 4096) */
    int cache_kib;         /* page cache in KiB (0 = 65536). A miss on an encrypted
                              database costs a page decryption, so zqlite keeps a
                              larger cache than SQLite's 2000 KiB; it grows only
                              as pages are used. */
    const char *base_vfs;  /* name of a registered SQLite VFS that zqlite's files
                              go through: the encryption VFS sits on it, and
                              plain databases open on it (NULL = "unix"). For
                              tests that inject I/O faults (tests/db/fault_vfs.h);
                              connections from zqlite_open_another and the copy
                              zqlite_rekey writes use the same one. */
    int immutable;         /* read-only media: SQLite's immutable=1 (implies
                              readonly): no locks and no -shm file, which a
                              WAL database otherwise needs beside it; only for
                              a file nothing changes while it is open. A -wal
                              file beside it is ignored. */
} zqlite_open_options;

ZQLITE_API zqlite_open_options zqlite_default_open_options(void);

/* Opens (or creates) an encrypted database. key is a passphrase of key_len
 * bytes, or "x'<64 hex>'" for a raw 256-bit key. path ":memory:" gives an
 * in-memory database (nothing reaches disk). key_len 0 / key NULL opens a
 * plain SQLite file (ZQLITE_KEY_REQUIRED if it is encrypted). The key is
 * checked at open: ZQLITE_WRONG_KEY ("wrong key or not a zqlite database"),
 * ZQLITE_NOT_ENCRYPTED for a plain file, ZQLITE_CORRUPT for a damaged header
 * or page 1. While another process rekeys the file, the open waits for it
 * (up to 10 s, then ZQLITE_BUSY "being rekeyed"). A connection whose file is
 * later renamed over or moved fails its next write ("replaced or moved").
 * NULL on failure: zqlite_errcode(NULL)/zqlite_errmsg(NULL) say why. The library keeps its own copy
 * of the key in locked memory; the caller may wipe its copy right after the call. */
ZQLITE_API zqlite_db *zqlite_open_encrypted(const char *path, const char *key, size_t key_len);
ZQLITE_API zqlite_db *zqlite_open_v2(const char *path, const char *key, size_t key_len,
                                     const zqlite_open_options *options);
/* Opens another connection to the file db has open, with db's keys (no
 * second key derivation) — for a thread that must not wait for db's
 * connection, such as one running checkpoints or long reads. It never
 * creates the file. options: readonly and cache_kib count (0 = db's cache
 * size); a read-only db gives a read-only connection. The two may be closed
 * in any order; zqlite_rekey refuses while another connection is open.
 * ZQLITE_MISUSE for ":memory:" (another connection would see another
 * database). NULL on failure, as zqlite_open_v2. */
ZQLITE_API zqlite_db *zqlite_open_another(zqlite_db *db, const zqlite_open_options *options);
/* Finalizes leftover statements, closes the file, wipes the key. NULL is a no-op. */
ZQLITE_API int zqlite_close(zqlite_db *db);

/* ---- one-shot execution -------------------------------------------------- */

typedef struct zqlite_value {
    zqlite_type type;
    int64_t i;        /* ZQLITE_INTEGER */
    double d;         /* ZQLITE_FLOAT */
    const char *text; /* ZQLITE_TEXT (NUL-terminated) or ZQLITE_BLOB bytes */
    size_t len;       /* bytes of text/blob */
} zqlite_value;

typedef struct zqlite_result {
    int status;          /* ZQLITE_OK or the error */
    char *error_message; /* NULL on success */
    size_t row_count;
    size_t column_count;
    char **column_names; /* column_count names */
    zqlite_value *cells; /* row_count * column_count, row-major */
    int64_t changes;     /* rows changed by the last statement */
} zqlite_result;

/* Runs every statement in sql; the rows of the last statement that returned
 * rows are kept. Never NULL except when out of memory. */
ZQLITE_API zqlite_result *zqlite_execute(zqlite_db *db, const char *sql);
ZQLITE_API const zqlite_value *zqlite_result_cell(const zqlite_result *r, size_t row, size_t col);
ZQLITE_API void zqlite_free_result(zqlite_result *result);

/* ---- prepared statements ------------------------------------------------- */

/* NULL on failure (message on db). Free with zqlite_finalize. */
ZQLITE_API zqlite_stmt *zqlite_prepare_statement(zqlite_db *db, const char *sql);
/* Prepares the first statement of sql and sets *tail to the text after it,
 * for running a script statement by statement (the zqlite shell). Returns
 * NULL with zqlite_errcode(db) == ZQLITE_OK when only whitespace or comments
 * remain; NULL with an error code on failure (message on db). */
ZQLITE_API zqlite_stmt *zqlite_prepare_next(zqlite_db *db, const char *sql, const char **tail);
/* 1 when sql ends with a complete statement (SQLite's sqlite3_complete). */
ZQLITE_API int zqlite_complete(const char *sql);

/* Parameters are numbered from 1, as in SQLite. Values are copied.
 * len < 0 means text is NUL-terminated. */
ZQLITE_API int zqlite_bind_text(zqlite_stmt *stmt, int index, const char *text, int64_t len);
ZQLITE_API int zqlite_bind_int64(zqlite_stmt *stmt, int index, int64_t value);
ZQLITE_API int zqlite_bind_double(zqlite_stmt *stmt, int index, double value);
ZQLITE_API int zqlite_bind_blob(zqlite_stmt *stmt, int index, const void *data, size_t len);
ZQLITE_API int zqlite_bind_null(zqlite_stmt *stmt, int index);
ZQLITE_API int zqlite_bind_parameter_index(zqlite_stmt *stmt, const char *name); /* 0 if none */
/* ZQLITE_ROW, ZQLITE_DONE or an error. */
ZQLITE_API int zqlite_step(zqlite_stmt *stmt);
ZQLITE_API int zqlite_column_count(zqlite_stmt *stmt);
ZQLITE_API const char *zqlite_column_name(zqlite_stmt *stmt, int col);
ZQLITE_API zqlite_type zqlite_column_type(zqlite_stmt *stmt, int col);
ZQLITE_API int64_t zqlite_column_int64(zqlite_stmt *stmt, int col);
ZQLITE_API double zqlite_column_double(zqlite_stmt *stmt, int col);
ZQLITE_API const char *zqlite_column_text(zqlite_stmt *stmt, int col);
ZQLITE_API const void *zqlite_column_blob(zqlite_stmt *stmt, int col);
ZQLITE_API size_t zqlite_column_bytes(zqlite_stmt *stmt, int col);
ZQLITE_API int zqlite_reset(zqlite_stmt *stmt);
ZQLITE_API int zqlite_clear_bindings(zqlite_stmt *stmt);
ZQLITE_API int zqlite_finalize(zqlite_stmt *stmt);

ZQLITE_API int64_t zqlite_changes(zqlite_db *db);
/* The rowid of the last successful INSERT on this connection (0 if none).
 * Read it right after the insert, while nothing else can use the connection:
 * it is per connection, not per statement. */
ZQLITE_API int64_t zqlite_last_insert_rowid(zqlite_db *db);
ZQLITE_API int zqlite_busy_timeout(zqlite_db *db, int ms);

/* Called after every commit in WAL mode, on the committing thread and inside
 * its call into zqlite, with the number of pages now in the WAL. Installing
 * one turns SQLite's automatic checkpoint off: the hook decides when to run
 * one (PRAGMA wal_checkpoint), e.g. on a thread of its own so that no commit
 * pays for it. It must not use db itself; return ZQLITE_OK. fn NULL removes
 * the hook and leaves no automatic checkpoint either (PRAGMA
 * wal_autocheckpoint brings it back). */
typedef int (*zqlite_wal_fn)(void *user_data, zqlite_db *db, int wal_pages);
ZQLITE_API int zqlite_wal_hook(zqlite_db *db, zqlite_wal_fn fn, void *user_data);

/* ---- keys and conversion ------------------------------------------------- */

/* Re-encrypts the database under a new key (and/or the KDF cost in options;
 * NULL = defaults) by writing a complete copy and rename()ing it over the
 * file: an interruption leaves either the old or the new key working. Needs
 * exclusive use: no unfinalized statement on db (ZQLITE_MISUSE), and no
 * other connection to the file in this or any other process (ZQLITE_BUSY,
 * nothing changed; see "The rekey lock" in docs/zqlite-format.md). Any
 * failure leaves the old key working, except one after the rename, while
 * reopening the new file: its message says the file is "now encrypted under
 * the new key", and db, if it could not be reopened, fails every later call
 * (close it and open the file again). */
ZQLITE_API int zqlite_rekey(zqlite_db *db, const char *new_key, size_t new_key_len,
                            const zqlite_open_options *options);
/* Writes a plain (unencrypted) SQLite copy of db to path, which must not
 * exist (VACUUM INTO; pages keep 28 zeroed reserve bytes). */
ZQLITE_API int zqlite_export_plain(zqlite_db *db, const char *path);
/* Copies every table, index, view and trigger of the plain SQLite file at
 * path into db, which must be empty (ZQLITE_MISUSE otherwise). */
ZQLITE_API int zqlite_import_plain(zqlite_db *db, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* ZQLITE_H */
