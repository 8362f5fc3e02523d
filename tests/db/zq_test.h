/*
 * zq_test.h — helpers shared by the libzqlite tests: a private temporary
 * directory per test program, whole-file read/write, byte search, and the
 * cheap keys every test uses (a raw key, or a passphrase with the smallest
 * Argon2id cost) so the suite stays fast under valgrind.
 */
#ifndef ZQ_TEST_H
#define ZQ_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* A fresh directory under /tmp, removed (with its files) by zq_tmpdir_cleanup. */
static char zq_dir[256];
static inline const char *zq_tmpdir(void)
{
    if (!zq_dir[0]) {
        snprintf(zq_dir, sizeof zq_dir, "/tmp/zqtest-XXXXXX");
        if (!mkdtemp(zq_dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return zq_dir;
}
static inline void zq_tmpdir_cleanup(void)
{
    if (zq_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", zq_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cleanup of %s failed\n", zq_dir);
        zq_dir[0] = '\0';
    }
}

/* cmocka group teardown shared by the db tests. */
static inline int zq_teardown(void **state)
{
    (void)state;
    zq_tmpdir_cleanup();
    return 0;
}

/* path of name inside the test directory, in one of 4 rotating buffers. */
static inline const char *zq_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", zq_tmpdir(), name);
    return buf[slot];
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

/* Whole file into malloc memory (NULL if missing); *len its size. */
static inline unsigned char *zq_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    *len = 0;
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static inline int zq_write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t n = fwrite(buf, 1, len, fp);
    return fclose(fp) == 0 && n == len ? 0 : -1;
}

static inline int zq_copy_file(const char *from, const char *to)
{
    size_t len;
    unsigned char *buf = zq_read_file(from, &len);
    if (!buf)
        return -1;
    int rc = zq_write_file(to, buf, len);
    free(buf);
    return rc;
}

/* 1 when needle occurs in the file at path (a missing file contains nothing). */
static inline int zq_file_contains(const char *path, const char *needle)
{
    size_t len, n = strlen(needle);
    unsigned char *buf = zq_read_file(path, &len);
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
