/*
 * test_zqlite_lock.c — the rekey lock (src/db/lock.c) and moved-file
 * detection: rekey is refused while another process or another connection
 * of this process has the database open (reader or writer, WAL or rollback
 * journal) and changes nothing; once they are gone it succeeds and no row is
 * lost; an open waits while a rekey holds the file; a connection whose file
 * was renamed over fails its next write with a message and writes nothing.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "db/vfs.h"
#include "zq_test.h"

static zqlite_db *open_key(const char *path, const char *key)
{
    zqlite_db *db = zqlite_open_encrypted(path, key, strlen(key));
    if (!db)
        fprintf(stderr, "open %s: %s\n", path, zqlite_errmsg(NULL));
    return db;
}

/* A new database at path in journal mode mode with rows 1..n in t. */
static void make_db(const char *path, const char *mode, int n)
{
    char sql[256];
    zq_remove_db(path);
    zqlite_db *db = open_key(path, ZQ_RAW_KEY);
    assert_non_null(db);
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=%s; CREATE TABLE t(v TEXT); WITH RECURSIVE c(i) AS (SELECT 1 "
             "UNION ALL SELECT i+1 FROM c WHERE i<%d) INSERT INTO t SELECT 'row-' || i FROM c",
             mode, n);
    zq_exec(db, sql);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

/* The child: opens the database, reads (and as a writer inserts a row),
 * says so on wr, waits for a byte on rd, writes once more as a writer and
 * closes. Exit status 0 when every step worked. */
static void holder_child(const char *path, int writer, int rd, int wr)
{
    zqlite_db *db = zqlite_open_encrypted(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    if (!db)
        _exit(2);
    int bad = zq_int(db, "SELECT count(*) FROM t") < 0;
    if (writer)
        bad |= zq_int(db, "INSERT INTO t VALUES('child-1') RETURNING 1") != 1;
    char c = 'r';
    if (write(wr, &c, 1) != 1 || read(rd, &c, 1) != 1)
        _exit(3);
    if (writer)
        bad |= zq_int(db, "INSERT INTO t VALUES('child-2') RETURNING 1") != 1;
    bad |= zqlite_close(db) != ZQLITE_OK;
    _exit(bad ? 4 : 0);
}

static void rekey_refused_while_held(const char *mode, int writer)
{
    const char *path = tu_path("held.db");
    make_db(path, mode, 10);
    int to_child[2], from_child[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        holder_child(path, writer, to_child[0], from_child[1]);
    }
    close(to_child[0]);
    close(from_child[1]);
    char c;
    assert_int_equal(read(from_child[0], &c, 1), 1);

    /* No connection of ours is open: reading the file cannot drop a lock. */
    size_t len0, len1;
    unsigned char *before = tu_read_file(path, &len0);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    zqlite_db *db = open_key(path, ZQ_RAW_KEY);
    assert_non_null(db);
    assert_int_equal(zqlite_rekey(db, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), NULL), ZQLITE_BUSY);
    assert_non_null(strstr(zqlite_errmsg(db), "open in another process"));
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 10 + writer); /* still usable */
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
    /* Nothing changed: same file, same header (a rekey writes a new one). */
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st0.st_ino == st1.st_ino);
    unsigned char *after = tu_read_file(path, &len1);
    assert_memory_equal(before, after, VFS_HEADER_SIZE);
    free(before);
    free(after);
    assert_int_equal(access(tu_path("held.db-zqrekey"), F_OK), -1);

    /* The holder writes on and closes; then rekey works and keeps every row. */
    assert_int_equal(write(to_child[1], "g", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(to_child[1]);
    close(from_child[0]);
    db = open_key(path, ZQ_RAW_KEY);
    assert_int_equal(zqlite_rekey(db, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), NULL), ZQLITE_OK);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
    assert_null(zqlite_open_encrypted(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY)));
    db = open_key(path, ZQ_RAW_KEY2);
    assert_non_null(db);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 10 + 2 * writer);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t WHERE v LIKE 'child-%'"), 2 * writer);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                "integrity_check = 'ok'"),
                     1);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

static void test_rekey_is_refused_while_another_process_reads_wal(void **state)
{
    rekey_refused_while_held("wal", 0);
}
static void test_rekey_is_refused_while_another_process_writes_wal(void **state)
{
    rekey_refused_while_held("wal", 1);
}
static void test_rekey_is_refused_while_another_process_reads_rollback(void **state)
{
    rekey_refused_while_held("delete", 0);
}
static void test_rekey_is_refused_while_another_process_writes_rollback(void **state)
{
    rekey_refused_while_held("delete", 1);
}

static void test_rekey_is_refused_while_another_connection_of_this_process_is_open(void **state)
{
    const char *path = tu_path("twice.db");
    make_db(path, "wal", 5);
    zqlite_db *a = open_key(path, ZQ_RAW_KEY), *b = open_key(path, ZQ_RAW_KEY);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(zqlite_rekey(a, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), NULL), ZQLITE_BUSY);
    assert_non_null(strstr(zqlite_errmsg(a), "other connection of this process"));
    zq_exec(b, "INSERT INTO t VALUES('from-b')");
    /* Closing b must not cost a its locks (one lock descriptor per file). */
    assert_int_equal(zqlite_close(b), ZQLITE_OK);
    zq_exec(a, "INSERT INTO t VALUES('from-a')");
    assert_int_equal(zqlite_rekey(a, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), NULL), ZQLITE_OK);
    assert_int_equal(zq_int(a, "SELECT count(*) FROM t"), 7);
    assert_int_equal(zqlite_close(a), ZQLITE_OK);
    a = open_key(path, ZQ_RAW_KEY2);
    assert_int_equal(zq_int(a, "SELECT count(*) FROM t"), 7);
    assert_int_equal(zqlite_close(a), ZQLITE_OK);
}

typedef struct held_lock {
    int fd;
    long hold_ms;
} held_lock;

static void *release_later(void *arg)
{
    held_lock *h = arg;
    struct timespec ts = {h->hold_ms / 1000, (h->hold_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = LOCK_BYTE, .l_len = 1};
    fcntl(h->fd, F_OFD_SETLK, &fl);
    return NULL;
}

static void test_open_waits_for_a_rekey_and_gives_up_by_name(void **state)
{
    const char *path = tu_path("wait.db");
    make_db(path, "wal", 3);
    /* Hold the lock byte the way a running rekey does. */
    held_lock h = {open(path, O_RDWR), 300};
    assert_true(h.fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_BYTE, .l_len = 1};
    assert_int_equal(fcntl(h.fd, F_OFD_SETLK, &fl), 0);
    pthread_t t;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pthread_create(&t, NULL, release_later, &h), 0);
    zqlite_db *db = open_key(path, ZQ_RAW_KEY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    assert_non_null(db);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 3);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);

    /* A rekey that does not finish in time: the open gives up, by name. */
    assert_int_equal(fcntl(h.fd, F_OFD_SETLK, &fl), 0);
    lock_wait_ms = 200;
    assert_null(zqlite_open_encrypted(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY)));
    lock_wait_ms = LOCK_WAIT_MS;
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_BUSY);
    assert_non_null(strstr(zqlite_errmsg(NULL), "is being rekeyed"));
    close(h.fd); /* only now: no connection of ours has the file open */
}

static void write_to_replaced_file_fails(const char *mode)
{
    const char *path = tu_path("moved.db"), *other = tu_path("other.db");
    char wal[600], journal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(journal, sizeof journal, "%s-journal", path);
    make_db(path, mode, 4);
    make_db(other, "delete", 2);
    zqlite_db *db = open_key(path, ZQ_RAW_KEY);
    assert_non_null(db);
    zq_exec(db, "INSERT INTO t VALUES('before')");
    if (strcmp(mode, "wal") == 0)
        zq_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert_int_equal(rename(other, path), 0);

    zqlite_result *r = zqlite_execute(db, "INSERT INTO t VALUES('after-replace')");
    assert_int_not_equal(r->status, ZQLITE_OK);
    assert_non_null(strstr(r->error_message, "replaced or moved"));
    zqlite_free_result(r);
    struct stat st;
    if (stat(wal, &st) == 0)
        assert_int_equal(st.st_size, 0); /* no frame reached the shared WAL name */
    assert_int_equal(access(journal, F_OK), -1);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);

    db = open_key(path, ZQ_RAW_KEY); /* the file now at the path, untouched */
    assert_non_null(db);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 2);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                "integrity_check = 'ok'"),
                     1);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

static void test_write_to_a_replaced_file_fails_with_a_message_wal(void **state)
{
    write_to_replaced_file_fails("wal");
}
static void test_write_to_a_replaced_file_fails_with_a_message_rollback(void **state)
{
    write_to_replaced_file_fails("delete");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rekey_is_refused_while_another_process_reads_wal),
        cmocka_unit_test(test_rekey_is_refused_while_another_process_writes_wal),
        cmocka_unit_test(test_rekey_is_refused_while_another_process_reads_rollback),
        cmocka_unit_test(test_rekey_is_refused_while_another_process_writes_rollback),
        cmocka_unit_test(test_rekey_is_refused_while_another_connection_of_this_process_is_open),
        cmocka_unit_test(test_open_waits_for_a_rekey_and_gives_up_by_name),
        cmocka_unit_test(test_write_to_a_replaced_file_fails_with_a_message_wal),
        cmocka_unit_test(test_write_to_a_replaced_file_fails_with_a_message_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
