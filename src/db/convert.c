/*
 * convert.c — whole-database operations of libzqlite: rekey, export to a
 * plain SQLite file and import from one.
 *
 * Rekey builds a complete copy under the new key next to the database
 * ("<db>-zqrekey", through a second VFS that carries the new keyring), checks
 * it, and rename()s it over the original, then fsyncs the directory. rename
 * is atomic, so after a crash the path holds either the old file (old key
 * works; a stale -zqrekey file is removed by the next rekey) or the complete
 * new one (new key works). In WAL mode the log is checkpointed and truncated
 * first, so no old-key frames can meet the new file. Rekey needs exclusive
 * use of the database: other connections would keep the replaced file open
 * and write into it. It takes the rekey lock (lock.c) exclusively before
 * anything else and keeps it until the new file is open, so it refuses while
 * any other connection of any process has the file, and openers wait.
 *
 * Export is VACUUM INTO a URI that names the plain unix VFS. Import runs
 * VACUUM INTO from the plain file into a temporary file on the encryption VFS
 * — with the reserve bytes asked for through SQLITE_FCNTL_RESERVE_BYTES, as
 * SQLite's cksumvfs does — and copies that into the open database with the
 * backup API, so every page gets the 28 reserve bytes encryption needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_internal.h"

static int conv_query_int(zqlite_db *db, sqlite3 *sq, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sq, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? ZQLITE_OK : db_check(db, rc, sql);
}

static void conv_remove_file_set(const char *base)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char name[4096];
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(name, sizeof name, "%s%s", base, suffix[i]);
        unlink(name);
    }
}

static int conv_backup(zqlite_db *db, sqlite3 *dst, sqlite3 *src, const char *what)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return db_check(db, sqlite3_errcode(dst), what);
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc == SQLITE_OK)
        rc = SQLITE_ERROR;                                   /* -1 copies everything or fails */
    if (rc != SQLITE_DONE && vfs_last_status() == ZQLITE_OK) /* neither handle has the message */
        return db_fail(db, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? ZQLITE_BUSY : ZQLITE_IO,
                       "%s: %s", what, sqlite3_errstr(rc));
    if (rc != SQLITE_DONE)
        return db_check(db, rc, what);
    return db_check(db, sqlite3_errcode(dst), what);
}

static int conv_fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int conv_file_size(const char *path, off_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    *size = st.st_size;
    return 0;
}

/* ---- rekey --------------------------------------------------------------- */

/* Creates tmp empty (a new database to the VFS) with the database's mode and,
 * where allowed, its owner: rename() puts tmp in the database's place, and a
 * file SQLite creates would get the default 0644 minus the umask — a 0600
 * history would become readable by everyone. SQLite gives -wal, -journal and
 * -shm files the mode of their database, so they follow. */
static int rekey_create_like(zqlite_db *db, const char *tmp)
{
    struct stat st;
    if (stat(db->path, &st) != 0)
        return db_fail(db, ZQLITE_IO, "rekey: %s: %s", db->path, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return db_fail(db, ZQLITE_IO, "rekey: creating %s: %s", tmp, strerror(errno));
    int rc = fchmod(fd, st.st_mode & 07777);
    if (rc == 0 && fchown(fd, st.st_uid, st.st_gid) != 0 && errno != EPERM)
        rc = -1; /* only root may give the file away; others keep their own */
    int err = errno;
    close(fd);
    if (rc != 0)
        return db_fail(db, ZQLITE_IO, "rekey: setting the mode of %s: %s", tmp, strerror(err));
    return ZQLITE_OK;
}

/* Writes a verified copy of db under vfs2's key to tmp. */
static int rekey_build_copy(zqlite_db *db, sqlite3_vfs *vfs2, const char *tmp)
{
    int64_t page_size = 0;
    int code = conv_query_int(db, db->sq, "PRAGMA page_size", &page_size);
    if (code == ZQLITE_OK)
        code = rekey_create_like(db, tmp);
    sqlite3 *t = NULL;
    if (code == ZQLITE_OK)
        code = db_connect(db, tmp, vfs2->zName, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          (int)page_size, &t);
    if (code == ZQLITE_OK)
        code = conv_backup(db, t, db->sq, "rekey: copy");
    if (code == ZQLITE_OK) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(t, "PRAGMA quick_check", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
            strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
            code = db_fail(db, ZQLITE_CORRUPT, "rekey: the new copy failed quick_check: %s",
                           sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    if (t && sqlite3_close(t) != SQLITE_OK && code == ZQLITE_OK)
        code = db_fail(db, ZQLITE_IO, "rekey: closing the new copy failed");
    return code;
}

/* Closes db's connection, renames tmp over the database and reopens it
 * with vfs2 (*swapped = 1 once renamed: the new key is in force even if the
 * reopen fails, which is tried three times); reopens the old file when the
 * swap cannot be made (lock, held exclusively until now, is made shared
 * first so the reopen can take it). */
static int rekey_swap(zqlite_db *db, sqlite3_vfs *vfs2, const char *tmp, lock_entry *lock,
                      int *swapped)
{
    char wal[4096];
    off_t wal_size = 0;
    snprintf(wal, sizeof wal, "%s-wal", db->path);
    int flags = SQLITE_OPEN_READWRITE;
    if (sqlite3_close(db->sq) != SQLITE_OK)
        return db_fail(db, ZQLITE_BUSY, "rekey: the database still has open statements or backups");
    db->sq = NULL;
    int code = ZQLITE_OK;
    if (conv_file_size(wal, &wal_size) == 0 && wal_size > 0)
        code = db_fail(db, ZQLITE_BUSY,
                       "rekey: %s is still in use by another connection (its WAL is not empty)",
                       db->path);
    else if (rename(tmp, db->path) != 0)
        code = db_fail(db, ZQLITE_IO, "rekey: rename %s -> %s: %s", tmp, db->path, strerror(errno));
    if (code != ZQLITE_OK) {
        char keep[sizeof db->errmsg];
        memcpy(keep, db->errmsg, sizeof keep);
        lock_end_exclusive(lock);
        if (db_connect(db, db->path, db->vfs->zName, flags, 0, &db->sq) != ZQLITE_OK)
            db->sq = NULL;
        else
            (void)db_restore_settings(db); /* the failure being reported matters more */
        return db_fail(db, code, "%s", keep);
    }
    /* From here the file is under the new key, whatever happens next. */
    *swapped = 1;
    conv_fsync_dir(db->path);
    for (int attempt = 0;; attempt++) {
        code = db_connect(db, db->path, vfs2->zName, flags, 0, &db->sq);
        if (code == ZQLITE_OK || attempt == 2)
            break;
    }
    if (code == ZQLITE_OK)
        code = db_restore_settings(db);
    if (code != ZQLITE_OK) {
        char keep[sizeof db->errmsg];
        memcpy(keep, db->errmsg, sizeof keep);
        db_fail(db, code,
                "rekey: %s is now encrypted under the new key, but reopening it failed: %s",
                db->path, keep);
    }
    return code;
}

int zqlite_rekey(zqlite_db *db, const char *new_key, size_t new_key_len,
                 const zqlite_open_options *options)
{
    if (!db)
        return ZQLITE_MISUSE;
    if (!new_key || new_key_len == 0)
        return db_fail(db, ZQLITE_MISUSE,
                       "rekey: the new key is empty (use zqlite_export_plain "
                       "for a plain copy)");
    if (!db->ring)
        return db_fail(db, ZQLITE_MISUSE,
                       "rekey: %s is not encrypted (use zqlite_import_plain "
                       "into an encrypted database)",
                       db->path);
    if (db->readonly)
        return db_fail(db, ZQLITE_MISUSE, "rekey: %s is open read-only", db->path);
    if (db_lost(db) != ZQLITE_OK)
        return ZQLITE_MISUSE;
    if (db->stmts)
        return db_fail(db, ZQLITE_MISUSE, "rekey: finalize every statement first");
    if (!db_keys_exclusive(db))
        return db_fail(db, ZQLITE_MISUSE,
                       "rekey: close the other connections made by zqlite_open_another first");
    vfs_clear_error();
    zqlite_open_options o = options ? *options : zqlite_default_open_options();
    key_ring *ring2 = NULL;
    char msg[256];
    int code =
        key_ring_new(new_key, new_key_len, o.kdf_opslimit, o.kdf_memlimit, &ring2, msg, sizeof msg);
    if (code != ZQLITE_OK)
        return db_fail(db, code, "rekey: %s", msg);
    if (db->memory) { /* nothing on disk: the new key simply replaces the old */
        key_ring_free(db->ring);
        db->ring = ring2;
        return ZQLITE_OK;
    }
    /* Other connections, here or in another process, would keep writing
     * into the replaced file: refuse while there are any, before any work. */
    lock_entry *lock = vfs_main_lock(db->sq);
    code = lock ? lock_begin_exclusive(lock, db->path, msg, sizeof msg) : ZQLITE_MISUSE;
    if (code != ZQLITE_OK) {
        key_ring_free(ring2);
        return lock ? db_fail(db, code, "rekey: %s", msg)
                    : db_fail(db, code, "rekey: %s is not open on the encryption VFS", db->path);
    }
    sqlite3_vfs *vfs2 = vfs_create(ring2, db->base_vfs);
    if (!vfs2) {
        key_ring_free(ring2);
        lock_end_exclusive(lock);
        lock_release(lock);
        return db_fail(db, ZQLITE_NOMEM, "rekey: cannot register the encryption VFS");
    }
    char *tmp = sqlite3_mprintf("%s-zqrekey", db->path);
    code = tmp ? ZQLITE_OK : db_fail(db, ZQLITE_NOMEM, "out of memory");
    if (code == ZQLITE_OK) {
        conv_remove_file_set(tmp);
        int64_t busy = 0;
        char mode[16] = "";
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db->sq, "PRAGMA journal_mode", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            snprintf(mode, sizeof mode, "%s", sqlite3_column_text(st, 0));
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
            code = db_check(db, rc, "rekey: PRAGMA journal_mode");
        else if (strcmp(mode, "wal") == 0) {
            code = conv_query_int(db, db->sq, "PRAGMA wal_checkpoint(TRUNCATE)", &busy);
            if (code == ZQLITE_OK && busy)
                code = db_fail(db, ZQLITE_BUSY,
                               "rekey: WAL checkpoint blocked by another "
                               "connection");
        }
    }
    if (code == ZQLITE_OK)
        code = rekey_build_copy(db, vfs2, tmp);
    int swapped = 0;
    if (code == ZQLITE_OK)
        code = rekey_swap(db, vfs2, tmp, lock, &swapped);
    /* The new file is open (or the old one again): let openers in. */
    lock_end_exclusive(lock);
    lock_release(lock);
    if (!swapped) {
        if (tmp)
            conv_remove_file_set(tmp);
        vfs_destroy(vfs2);
        key_ring_free(ring2);
    } else {
        vfs_destroy(db->vfs);
        key_ring_free(db->ring);
        db->vfs = vfs2;
        db->ring = ring2;
    }
    sqlite3_free(tmp);
    return code;
}

/* ---- plain copies -------------------------------------------------------- */

int zqlite_export_plain(zqlite_db *db, const char *path)
{
    if (!db || !path || !*path)
        return db ? db_fail(db, ZQLITE_MISUSE, "export: path is empty") : ZQLITE_MISUSE;
    if (db_lost(db) != ZQLITE_OK)
        return ZQLITE_MISUSE;
    /* The copy is plaintext: create it owner-only (0600) before SQLite fills
     * it, so it is never readable by others, whatever the umask. VACUUM INTO
     * accepts an existing empty file; O_EXCL keeps an existing one safe. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return db_fail(db, errno == EEXIST ? ZQLITE_MISUSE : ZQLITE_IO, "export: %s: %s", path,
                       errno == EEXIST ? "already exists" : strerror(errno));
    close(fd);
    vfs_clear_error();
    char *uri = db_uri(path, "unix");
    char *sql = uri ? sqlite3_mprintf("VACUUM INTO %Q", uri) : NULL;
    int code = sql ? db_exec(db, db->sq, sql) : db_fail(db, ZQLITE_NOMEM, "out of memory");
    sqlite3_free(sql);
    sqlite3_free(uri);
    if (code != ZQLITE_OK) {
        char keep[sizeof db->errmsg];
        memcpy(keep, db->errmsg, sizeof keep);
        db_fail(db, code, "export to %s: %s", path, keep);
        unlink(path);
    }
    return code;
}

int zqlite_import_plain(zqlite_db *db, const char *path)
{
    if (!db || !path || !*path)
        return db ? db_fail(db, ZQLITE_MISUSE, "import: path is empty") : ZQLITE_MISUSE;
    if (db_lost(db) != ZQLITE_OK)
        return ZQLITE_MISUSE;
    vfs_clear_error();
    int64_t objects = 0;
    int code = conv_query_int(db, db->sq, "SELECT count(*) FROM sqlite_schema", &objects);
    if (code != ZQLITE_OK)
        return code;
    if (objects > 0)
        return db_fail(db, ZQLITE_MISUSE, "import: %s is not empty (%lld schema objects)", db->path,
                       (long long)objects);
    if (access(path, R_OK) != 0)
        return db_fail(db, ZQLITE_IO, "import: %s: %s", path, strerror(errno));
    sqlite3 *src = NULL;
    code = db_connect(db, path, NULL, SQLITE_OPEN_READONLY, 0, &src);
    if (code != ZQLITE_OK) {
        unsigned char magic[8] = {0};
        FILE *fp = fopen(path, "rb");
        if (fp) {
            if (fread(magic, 1, 8, fp) != 8)
                magic[0] = 0;
            fclose(fp);
        }
        if (memcmp(magic, "ZQLITEDB", 8) == 0)
            code = db_fail(db, ZQLITE_MISUSE,
                           "import: %s is an encrypted zqlite database, not a "
                           "plain SQLite file",
                           path);
        return code;
    }
    if (!db->vfs) { /* in-memory or plain target: pages need no reserve */
        code = conv_backup(db, db->sq, src, "import: copy");
        sqlite3_close(src);
        return code;
    }
    int reserve = VFS_RESERVE;
    sqlite3_file_control(src, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
    char *tmp = sqlite3_mprintf("%s-zqimport", db->path);
    char *uri = tmp ? db_uri(tmp, db->vfs->zName) : NULL;
    char *sql = uri ? sqlite3_mprintf("VACUUM INTO %Q", uri) : NULL;
    if (!sql) {
        code = db_fail(db, ZQLITE_NOMEM, "out of memory");
    } else {
        conv_remove_file_set(tmp);
        code = db_exec(db, src, sql);
    }
    sqlite3_close(src);
    sqlite3 *t = NULL;
    if (code == ZQLITE_OK)
        code = db_connect(db, tmp, db->vfs->zName, SQLITE_OPEN_READONLY, 0, &t);
    if (code == ZQLITE_OK)
        code = conv_backup(db, db->sq, t, "import: copy");
    sqlite3_close(t);
    if (tmp)
        conv_remove_file_set(tmp);
    sqlite3_free(sql);
    sqlite3_free(uri);
    sqlite3_free(tmp);
    return code;
}
