/*
 * test_zqlite_crash.c — the slow libzqlite tests: crash consistency under
 * SIGKILL (a few trials per journal mode; bench/zqlite's stress target runs
 * hundreds), concurrent readers with one writer in WAL mode, and the default
 * Argon2id cost.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/vfs.h"
#include "zq_crash.h"
#include "zq_test.h"

static void crash_trials(const char *mode, int trials)
{
    const char *path = tu_path(mode);
    unsigned seed = 12345;
    char msg[300];
    long long acked, total = 0;
    zq_remove_db(path);
    for (int t = 0; t < trials; t++) {
        if (zq_crash_trial(path, mode, &seed, 150000, msg, sizeof msg, &acked) != 0)
            fail_msg("%s trial %d: %s", mode, t, msg);
        total += acked;
    }
    assert_true(total > 0); /* the child did commit before being killed */
}

static void test_sigkill_during_writes_keeps_every_committed_row_rollback_journal(void **state)
{
    crash_trials("delete", 5);
}

static void test_sigkill_during_writes_keeps_every_committed_row_wal(void **state)
{
    crash_trials("wal", 5);
}

/* ---- readers and a writer ------------------------------------------------ */

#define WRITES  300
#define READERS 3

typedef struct shared {
    const char *path;
    volatile int done;
    int errors;
    pthread_mutex_t lock;
} shared;

static void note_error(shared *s, const char *what, const char *msg)
{
    pthread_mutex_lock(&s->lock);
    if (s->errors++ == 0)
        fprintf(stderr, "%s: %s\n", what, msg);
    pthread_mutex_unlock(&s->lock);
}

static void *writer(void *arg)
{
    shared *s = arg;
    zqlite_db *db = zqlite_open_encrypted(s->path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    if (!db) {
        note_error(s, "writer open", zqlite_errmsg(NULL));
        s->done = 1;
        return NULL;
    }
    zqlite_busy_timeout(db, 10000);
    for (int i = 1; i <= WRITES; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE; INSERT INTO t VALUES(%d, randomblob(200));"
                 "UPDATE c SET n = n + 1; COMMIT",
                 i);
        zqlite_result *r = zqlite_execute(db, sql);
        if (r->status != ZQLITE_OK) {
            note_error(s, "writer", r->error_message);
            zqlite_free_result(zqlite_execute(db, "ROLLBACK"));
        }
        zqlite_free_result(r);
    }
    zqlite_close(db);
    s->done = 1;
    return NULL;
}

static void *reader(void *arg)
{
    shared *s = arg;
    zqlite_db *db = zqlite_open_encrypted(s->path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    if (!db) {
        note_error(s, "reader open", zqlite_errmsg(NULL));
        return NULL;
    }
    zqlite_busy_timeout(db, 10000);
    long long last = 0;
    int rounds = 0;
    while (!s->done || rounds < 5) {
        zqlite_result *r =
            zqlite_execute(db, "BEGIN; SELECT (SELECT count(*) FROM t), (SELECT n FROM c),"
                               "(SELECT count(*) FROM t WHERE length(b) <> 200); COMMIT");
        if (r->status != ZQLITE_OK) {
            note_error(s, "reader", r->error_message);
        } else {
            long long rows = zqlite_result_cell(r, 0, 0)->i, n = zqlite_result_cell(r, 0, 1)->i;
            if (rows != n || rows < last || zqlite_result_cell(r, 0, 2)->i != 0)
                note_error(s, "reader", "inconsistent snapshot");
            last = rows;
        }
        zqlite_free_result(r);
        rounds++;
    }
    zqlite_close(db);
    return NULL;
}

static void
test_concurrent_readers_see_consistent_snapshots_while_one_thread_writes_wal(void **state)
{
    shared s = {.path = tu_path("concurrent.db")};
    pthread_mutex_init(&s.lock, NULL);
    zq_remove_db(s.path);
    zqlite_db *db = zqlite_open_encrypted(s.path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    zq_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); CREATE TABLE c(n);"
                "INSERT INTO c VALUES(0)");
    pthread_t w, r[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, &s);
    pthread_create(&w, NULL, writer, &s);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    assert_int_equal(s.errors, 0);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), WRITES);
    assert_int_equal(zq_int(db, "SELECT n FROM c"), WRITES);
    zqlite_close(db);
    pthread_mutex_destroy(&s.lock);
}

static void test_default_argon2id_cost_is_recorded_and_reopens(void **state)
{
    const char *path = tu_path("defaults.db");
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_encrypted(path, "default cost passphrase", 23);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(42)");
    zqlite_close(db);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    key_header h;
    char msg[128];
    assert_int_equal(key_header_parse(buf, &h, msg, sizeof msg), ZQLITE_OK);
    assert_int_equal(h.opslimit, KEY_DEFAULT_OPSLIMIT);
    assert_int_equal(h.memlimit, KEY_DEFAULT_MEMLIMIT);
    free(buf);
    db = zqlite_open_encrypted(path, "default cost passphrase", 23);
    assert_non_null(db);
    assert_int_equal(zq_int(db, "SELECT x FROM t"), 42);
    zqlite_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_during_writes_keeps_every_committed_row_rollback_journal),
        cmocka_unit_test(test_sigkill_during_writes_keeps_every_committed_row_wal),
        cmocka_unit_test(
            test_concurrent_readers_see_consistent_snapshots_while_one_thread_writes_wal),
        cmocka_unit_test(test_default_argon2id_cost_is_recorded_and_reopens),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
