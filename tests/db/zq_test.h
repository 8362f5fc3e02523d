/*
 * zq_test.h — helpers shared by the libzqlite tests (on top of
 * tests/test_util.h): removing a database with its side files, byte search
 * in a file, running SQL, and the cheap keys every test uses (a raw key, or a passphrase with the
 * smallest Argon2id cost) so the suite stays fast under valgrind.
 */
#ifndef ZQ_TEST_H
#define ZQ_TEST_H

#include "test_util.h"

#include "zqlite.h"

#define ZQ_RAW_KEY  "x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'"
#define ZQ_RAW_KEY2 "x'f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100'"

static inline zqlite_open_options zq_fast_options(void)
{
    zqlite_open_options o = zqlite_default_open_options();
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    return o;
}

static inline void zq_remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char name[600];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffix[i]);
        unlink(name);
    }
}

/* 1 when needle occurs in the file at path (a missing file contains nothing). */
static inline int zq_file_contains(const char *path, const char *needle)
{
    size_t len, n = strlen(needle);
    unsigned char *buf = tu_read_file(path, &len);
    int found = buf && len >= n && memmem(buf, len, needle, n) != NULL;
    free(buf);
    return found;
}

/* Runs sql and returns the first column of the first row as an integer
 * (-1 on error or no row). */
static inline long long zq_int(zqlite_db *db, const char *sql)
{
    zqlite_result *r = zqlite_execute(db, sql);
    long long v = -1;
    if (r && r->status == ZQLITE_OK && r->row_count > 0 && r->column_count > 0)
        v = zqlite_result_cell(r, 0, 0)->i;
    else if (r && r->status != ZQLITE_OK)
        fprintf(stderr, "zq_int(%s): %s\n", sql, r->error_message);
    zqlite_free_result(r);
    return v;
}

/* Runs sql, failing the test on error. */
#define zq_exec(db, sql)                                                                           \
    do {                                                                                           \
        zqlite_result *r_ = zqlite_execute((db), (sql));                                           \
        assert_non_null(r_);                                                                       \
        if (r_->status != ZQLITE_OK)                                                               \
            fprintf(stderr, "%s: %s\n", (sql), r_->error_message);                                 \
        assert_int_equal(r_->status, ZQLITE_OK);                                                   \
        zqlite_free_result(r_);                                                                    \
    } while (0)

#endif
