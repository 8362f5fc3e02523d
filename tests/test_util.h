/*
 * test_util.h — helpers every test program may share: reading a whole file,
 * a private temporary directory, the path of a program built next to the
 * tests, and running a command line with its output and exit status
 * captured. Library-specific helpers build on these (tests/db/zq_test.h,
 * tests/flow/flow_test.h, tests/llm/llm_test.h).
 *
 * Everything here is static inline: each test program is one translation
 * unit, and a failure is a cmocka assertion in the calling test.
 */
#ifndef GF_TEST_UTIL_H
#define GF_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- files ------------------------------------------------------------------- */

/* The whole file at path in malloc memory, followed by a NUL that *len (may
 * be NULL) does not count; free with free(). NULL when it cannot be read. The
 * result is void * so byte and text callers both take it without a cast. */
static inline void *tu_read_file(const char *path, size_t *len)
{
    if (len)
        *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
    } while (got > 0);
    bool bad = ferror(fp) != 0;
    fclose(fp);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* As tu_read_file, for data the test cannot run without (../shared): a file
 * that cannot be read fails the test, never skips it. */
static inline void *tu_read_required(const char *path, size_t *len)
{
    void *buf = tu_read_file(path, len);
    if (!buf)
        fail_msg("cannot read %s (the shared test data must be present)", path);
    return buf;
}

/* Writes n bytes at data to path (created or truncated); failing fails the test. */
static inline void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot create %s", path);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Copies the file at from to to; failing fails the test. */
static inline void tu_copy_file(const char *from, const char *to)
{
    size_t len;
    void *buf = tu_read_file(from, &len);
    if (!buf)
        fail_msg("cannot read %s", from);
    tu_write_file(to, buf, len);
    free(buf);
}

/* ---- a private temporary directory -------------------------------------------- */

static char tu_dir[256];

/* Created on first use under /tmp; removed with its files by tu_tmpdir_cleanup. */
static inline const char *tu_tmpdir(void)
{
    if (!tu_dir[0]) {
        snprintf(tu_dir, sizeof tu_dir, "/tmp/gftest-XXXXXX");
        if (!mkdtemp(tu_dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return tu_dir;
}

static inline void tu_tmpdir_cleanup(void)
{
    if (tu_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cleanup of %s failed\n", tu_dir);
        tu_dir[0] = '\0';
    }
}

/* cmocka group teardown removing the directory. */
static inline int tu_teardown(void **state)
{
    (void)state;
    tu_tmpdir_cleanup();
    return 0;
}

/* name inside the directory, in one of 8 rotating buffers (so a call can
 * take several paths as arguments). */
static inline const char *tu_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tu_tmpdir(), name);
    return buf[slot];
}

/* ---- programs ------------------------------------------------------------------ */

/* $GF_BUILD_DIR/name (ctest sets GF_BUILD_DIR, see gf_test), in one of 4
 * rotating buffers. */
static inline const char *tu_program(const char *name)
{
    static char buf[4][512];
    static int slot;
    const char *dir = getenv("GF_BUILD_DIR");
    if (!dir)
        fail_msg("GF_BUILD_DIR is not set (run through ctest)");
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
    return buf[slot];
}

/* Runs cmdline through sh. Its stdout goes into out and its stderr into err,
 * each NUL-terminated and cut to fit; a NULL buffer discards that stream (to
 * merge stderr into out, end cmdline with 2>&1). Returns the exit status, -1
 * when the command did not exit normally. */
static inline int tu_run(const char *cmdline, char *out, size_t out_cap, char *err, size_t err_cap)
{
    char errfile[] = "/tmp/gftest_err_XXXXXX";
    if (err) {
        int fd = mkstemp(errfile);
        assert_true(fd >= 0);
        close(fd);
    }
    /* the braces keep cmdline's own redirections ahead of ours */
    size_t full_len = strlen(cmdline) + sizeof errfile + 16;
    char *full = malloc(full_len);
    assert_non_null(full);
    snprintf(full, full_len, "{ %s\n} 2>%s", cmdline, err ? errfile : "/dev/null");
    FILE *p = popen(full, "r");
    free(full);
    assert_non_null(p);
    size_t n = out ? fread(out, 1, out_cap - 1, p) : 0;
    if (out)
        out[n] = '\0';
    char sink[4096]; /* drain what did not fit, so the child never blocks */
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    if (err) {
        size_t m = 0;
        char *e = tu_read_file(errfile, &m);
        assert_non_null(e);
        if (m > err_cap - 1)
            m = err_cap - 1;
        memcpy(err, e, m);
        err[m] = '\0';
        free(e);
        unlink(errfile);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
