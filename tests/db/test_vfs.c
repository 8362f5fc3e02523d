/*
 * test_vfs.c — the encryption VFS seen from the disk: every byte of every
 * page is authenticated (a flip names its page), pages cannot be swapped or
 * moved between databases, the header is checked, no plaintext reaches the
 * database, -journal or -wal files, temporary files are refused, and the
 * documented limit (replay of a page from an older copy of the same file)
 * behaves as docs/zqlite-format.md says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/vfs.h"
#include "zq_test.h"

#define SECRET "ZQ-SECRET-7f3a9c-do-not-leak"

static zqlite_db *open_raw(const char *path)
{
    return zqlite_open_encrypted(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
}

/* A small database with 512-byte pages: schema, table, index, overflow. */
static size_t make_small_db(const char *path)
{
    zqlite_open_options o = zq_fast_options();
    o.page_size = 512;
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), &o);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t(v);"
                "INSERT INTO t VALUES(1, 'alpha'), (2, 'beta'), (3, printf('%.600c', 'x'))");
    zqlite_close(db);
    size_t len;
    free(tu_read_file(path, &len));
    return (len - VFS_HEADER_SIZE) / 512;
}

/* Opens path and reads everything; returns the first failure's code and
 * copies its message. */
static int read_all(const char *path, char *msg, size_t cap)
{
    msg[0] = '\0';
    zqlite_db *db = open_raw(path);
    if (!db) {
        snprintf(msg, cap, "%s", zqlite_errmsg(NULL));
        return zqlite_errcode(NULL);
    }
    zqlite_result *r = zqlite_execute(db, "PRAGMA integrity_check; SELECT * FROM t");
    int code = r->status;
    if (code != ZQLITE_OK)
        snprintf(msg, cap, "%s", r->error_message);
    zqlite_free_result(r);
    zqlite_close(db);
    return code;
}

static void test_every_byte_flip_in_every_page_is_detected_and_names_the_page(void **state)
{
    const char *path = tu_path("flip.db");
    size_t pages = make_small_db(path), len;
    assert_true(pages >= 4);
    unsigned char *orig = tu_read_file(path, &len);
    unsigned char *copy = malloc(len);
    char msg[512], want[32];
    assert_int_equal(read_all(path, msg, sizeof msg), ZQLITE_OK);
    for (size_t p = 0; p < pages; p++) {
        snprintf(want, sizeof want, "page %zu:", p + 1);
        for (size_t b = 0; b < 512; b++) {
            memcpy(copy, orig, len);
            copy[VFS_HEADER_SIZE + p * 512 + b] ^= 0x01;
            tu_write_file(path, copy, len);
            int code = read_all(path, msg, sizeof msg);
            if (code != ZQLITE_CORRUPT || !strstr(msg, want))
                fail_msg("flip of byte %zu in page %zu: code %d, message '%s'", b, p + 1, code,
                         msg);
        }
    }
    free(copy);
    free(orig);
}

static void test_header_flips_are_rejected(void **state)
{
    const char *path = tu_path("hdrflip.db");
    make_small_db(path);
    size_t len;
    unsigned char *orig = tu_read_file(path, &len);
    char msg[512];
    for (size_t b = 0; b < VFS_HEADER_SIZE; b += b < 128 ? 1 : 61) {
        if (b >= 96 && b < 100)
            continue; /* the page-size hint: test_an_invalid_page_size_hint_is_ignored */
        orig[b] ^= 0xa5;
        tu_write_file(path, orig, len);
        int code = read_all(path, msg, sizeof msg);
        if (code != ZQLITE_CORRUPT && code != ZQLITE_WRONG_KEY)
            fail_msg("header byte %zu flipped: code %d (%s)", b, code, msg);
        orig[b] ^= 0xa5;
    }
    free(orig);
}

/* The hint is not authenticated: a forged or broken one costs retries at
 * the other page sizes, never the database; the next page-1 write repairs it. */
static void test_an_invalid_page_size_hint_is_ignored(void **state)
{
    const char *path = tu_path("hint.db");
    static const uint32_t hints[] = {0, 3000, 0xffffffffu, 256, 131072, 4096};
    char msg[512];
    for (size_t k = 0; k < sizeof hints / sizeof *hints; k++) {
        make_small_db(path);
        size_t len;
        unsigned char *buf = tu_read_file(path, &len);
        for (int i = 0; i < 4; i++)
            buf[96 + i] = (unsigned char)(hints[k] >> (24 - 8 * i));
        tu_write_file(path, buf, len);
        free(buf);
        int code = read_all(path, msg, sizeof msg);
        if (code != ZQLITE_OK)
            fail_msg("hint %u: code %d (%s)", hints[k], code, msg);
        zqlite_db *db = open_raw(path);
        assert_non_null(db);
        zq_exec(db, "INSERT INTO t VALUES(4, 'delta')");
        zqlite_close(db);
        buf = tu_read_file(path, &len);
        assert_int_equal(buf[96] << 24 | buf[97] << 16 | buf[98] << 8 | buf[99], 512);
        free(buf);
    }
}

static void test_swapped_pages_are_detected(void **state)
{
    const char *path = tu_path("swap.db");
    size_t pages = make_small_db(path), len;
    unsigned char *buf = tu_read_file(path, &len), tmp[512];
    unsigned char *a = buf + VFS_HEADER_SIZE + 1 * 512, *b = buf + VFS_HEADER_SIZE + 2 * 512;
    assert_true(pages >= 3);
    memcpy(tmp, a, 512);
    memcpy(a, b, 512);
    memcpy(b, tmp, 512);
    tu_write_file(path, buf, len);
    char msg[512];
    assert_int_equal(read_all(path, msg, sizeof msg), ZQLITE_CORRUPT);
    assert_true(strstr(msg, "page 2:") || strstr(msg, "page 3:"));
    assert_non_null(strstr(msg, "authentication failed"));
    free(buf);
}

static void test_page_from_another_database_is_detected(void **state)
{
    const char *p1 = tu_path("other1.db"), *p2 = tu_path("other2.db");
    make_small_db(p1);
    make_small_db(p2); /* same key, same content, different db id */
    size_t l1, l2;
    unsigned char *b1 = tu_read_file(p1, &l1), *b2 = tu_read_file(p2, &l2);
    assert_int_equal(l1, l2);
    memcpy(b1 + VFS_HEADER_SIZE + 512, b2 + VFS_HEADER_SIZE + 512, 512);
    tu_write_file(p1, b1, l1);
    char msg[512];
    assert_int_equal(read_all(p1, msg, sizeof msg), ZQLITE_CORRUPT);
    assert_non_null(strstr(msg, "page 2:"));
    free(b1);
    free(b2);
}

/* Documented limit (docs/zqlite-format.md, "Replay"): a page copied back
 * from an older version of the same file carries a valid tag for its db id
 * and page number, so it is accepted. If detection is added, this test is
 * the one to change. */
static void test_page_replayed_from_older_copy_is_accepted_as_documented(void **state)
{
    const char *path = tu_path("replay.db"), *old = tu_path("replay-old.db");
    make_small_db(path);
    tu_copy_file(path, old);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "UPDATE t SET v = 'gamma' WHERE id = 1");
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t WHERE v = 'gamma'"), 1);
    zqlite_close(db);
    size_t ln, lo;
    unsigned char *now = tu_read_file(path, &ln), *then = tu_read_file(old, &lo);
    assert_int_equal(ln, lo);
    /* Put back every page that changed except page 1 and the index. */
    zqlite_db *q = open_raw(path);
    long long root = zq_int(q, "SELECT rootpage FROM sqlite_schema WHERE name = 't'");
    zqlite_close(q);
    size_t at = VFS_HEADER_SIZE + (size_t)(root - 1) * 512;
    assert_memory_not_equal(now + at, then + at, 512);
    memcpy(now + at, then + at, 512);
    tu_write_file(path, now, ln);
    db = open_raw(path);
    assert_non_null(db);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t NOT INDEXED WHERE v = 'alpha'"), 1);
    zqlite_close(db);
    free(now);
    free(then);
}

/* No plaintext in the database or its journal/WAL. The database must exist,
 * and so must side ("-journal", "-wal"; NULL for none): a scan of a missing
 * file would pass without looking at anything. */
static void assert_no_secret(const char *path, const char *side)
{
    char name[600];
    static const char *const suffix[] = {"", "-journal", "-wal"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffix[i]);
        if ((i == 0 || (side && strcmp(side, suffix[i]) == 0)) && access(name, F_OK) != 0)
            fail_msg("%s is missing: nothing to scan", name);
        if (zq_file_contains(name, SECRET))
            fail_msg("plaintext secret found in %s", name);
    }
}

static long long file_size(const char *path, const char *suffix)
{
    char name[600];
    struct stat st;
    snprintf(name, sizeof name, "%s%s", path, suffix);
    return stat(name, &st) == 0 ? (long long)st.st_size : -1;
}

/* A transaction that touches the secret's page and spills many pages
 * (cache_size 2) while it is still open. */
static void write_secret_with_open_transaction(const char *mode)
{
    const char *path = tu_path("leak.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s; PRAGMA cache_size=2", mode);
    zq_exec(db, sql);
    zq_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    zq_exec(db, "INSERT INTO t VALUES(1, '" SECRET "')");
    /* The side file that must be there: the WAL while open, the journal
     * during a transaction and, in persist mode, after it. */
    const int wal = strcmp(mode, "wal") == 0;
    const char *during = wal ? "-wal" : "-journal";
    const char *after = wal ? "-wal" : strcmp(mode, "persist") == 0 ? "-journal" : NULL;
    assert_no_secret(path, after);
    zq_exec(db, "BEGIN");
    zq_exec(db, "UPDATE t SET v = v || '-changed' WHERE id = 1"); /* old image to the journal */
    zq_exec(db, "WITH RECURSIVE c(i) AS (SELECT 2 UNION ALL SELECT i+1 FROM c WHERE i<400) "
                "INSERT INTO t SELECT i, '" SECRET "' || i FROM c");
    /* The spill really reached the disk while the transaction is open. */
    assert_true(file_size(path, during) > 4096);
    assert_no_secret(path, during);
    zq_exec(db, "COMMIT");
    assert_no_secret(path, after);
    zq_exec(db, "PRAGMA wal_checkpoint");
    assert_no_secret(path, after);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t WHERE v LIKE '" SECRET "%'"), 400);
    zqlite_close(db);
    assert_no_secret(path, strcmp(mode, "persist") == 0 ? "-journal" : NULL);
}

static void test_no_plaintext_in_db_or_journal_during_and_after_a_transaction(void **state)
{
    write_secret_with_open_transaction("delete");
    write_secret_with_open_transaction("persist");
}

static void test_no_plaintext_in_db_or_wal_during_and_after_a_transaction(void **state)
{
    write_secret_with_open_transaction("wal");
}

static void test_rollback_restores_pages_through_the_encrypted_journal(void **state)
{
    const char *path = tu_path("rollback.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "PRAGMA cache_size=2; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<300) "
                "INSERT INTO t SELECT i, printf('%.100c', 'a') FROM c");
    zq_exec(db, "BEGIN; UPDATE t SET v = 'changed'; DELETE FROM t WHERE id > 100");
    assert_true(file_size(path, "-journal") > 4096);
    zq_exec(db, "ROLLBACK");
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t WHERE v <> 'changed'"), 300);
    zqlite_result *r = zqlite_execute(db, "PRAGMA integrity_check");
    assert_string_equal(zqlite_result_cell(r, 0, 0)->text, "ok");
    zqlite_free_result(r);
    zqlite_close(db);
}

static void test_temporary_files_are_refused(void **state)
{
    const char *path = tu_path("temp.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "CREATE TEMP TABLE m(x); INSERT INTO m VALUES(1)"); /* in memory: fine */
    zqlite_result *r = zqlite_execute(
        db, "PRAGMA temp_store=FILE; CREATE TEMP TABLE f(x); PRAGMA temp.cache_size=2;"
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<2000) "
            "INSERT INTO f SELECT randomblob(100) FROM c");
    assert_int_not_equal(r->status, ZQLITE_OK);
    assert_non_null(strstr(r->error_message, "temporary files are disabled"));
    zqlite_free_result(r);
    zqlite_close(db);
}

static void test_mmap_is_never_used(void **state)
{
    const char *path = tu_path("mmap.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    assert_int_equal(zq_int(db, "PRAGMA mmap_size=1000000"), 0);
    vfs_stats before, after;
    vfs_get_stats(&before);
    zqlite_close(db);
    db = open_raw(path);
    assert_int_equal(zq_int(db, "PRAGMA mmap_size=1000000"), 0);
    assert_int_equal(zq_int(db, "SELECT x FROM t"), 1);
    vfs_get_stats(&after);
    assert_true(after.pages_decrypted > before.pages_decrypted); /* read through xRead */
    zqlite_close(db);
}

static void test_page1_is_not_decrypted_again_for_each_read_transaction(void **state)
{
    const char *path = tu_path("p1.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    zqlite_stmt *st = zqlite_prepare_statement(db, "SELECT x FROM t");
    vfs_stats before, after;
    vfs_get_stats(&before);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(zqlite_step(st), ZQLITE_ROW);
        zqlite_reset(st);
    }
    vfs_get_stats(&after);
    assert_true(after.pages_decrypted - before.pages_decrypted <= 1);
    assert_true(after.page1_cache_hits - before.page1_cache_hits >= 49);
    zqlite_finalize(st);
    zqlite_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_flip_in_every_page_is_detected_and_names_the_page),
        cmocka_unit_test(test_header_flips_are_rejected),
        cmocka_unit_test(test_an_invalid_page_size_hint_is_ignored),
        cmocka_unit_test(test_swapped_pages_are_detected),
        cmocka_unit_test(test_page_from_another_database_is_detected),
        cmocka_unit_test(test_page_replayed_from_older_copy_is_accepted_as_documented),
        cmocka_unit_test(test_no_plaintext_in_db_or_journal_during_and_after_a_transaction),
        cmocka_unit_test(test_no_plaintext_in_db_or_wal_during_and_after_a_transaction),
        cmocka_unit_test(test_rollback_restores_pages_through_the_encrypted_journal),
        cmocka_unit_test(test_temporary_files_are_refused),
        cmocka_unit_test(test_mmap_is_never_used),
        cmocka_unit_test(test_page1_is_not_decrypted_again_for_each_read_transaction),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
