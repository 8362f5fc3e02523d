/*
 * zq_crash.h — one crash-consistency trial, shared by test_zqlite_crash (a
 * few trials in CI) and bench/zqlite's stress target (hundreds).
 *
 * A forked child opens an encrypted database and commits transactions in a
 * loop; each inserts row i and sets a counter row to i, then reports i on a
 * pipe. The parent SIGKILLs the child after a random delay, checks that no
 * plaintext is on disk (database, hot journal or WAL as the crash left
 * them), reopens, and requires PRAGMA integrity_check = ok, every
 * acknowledged row present and the counter equal to the row count.
 */
#ifndef ZQ_CRASH_H
#define ZQ_CRASH_H

#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zqlite.h"

#define ZQ_CRASH_SECRET "ZQ-CRASH-SECRET-31337"
#ifndef ZQ_CRASH_KEY
#define ZQ_CRASH_KEY "x'8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677'"
#endif

static void zq_crash_child(const char *path, const char *mode, int fd)
{
    zqlite_db *db = zqlite_open_encrypted(path, ZQ_CRASH_KEY, strlen(ZQ_CRASH_KEY));
    if (!db)
        _exit(2);
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; PRAGMA cache_size=4;"
             "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB);"
             "INSERT OR IGNORE INTO t VALUES(0, 0, NULL)",
             mode, strcmp(mode, "wal") == 0 ? "NORMAL" : "FULL");
    zqlite_result *r = zqlite_execute(db, sql);
    if (!r || r->status != ZQLITE_OK)
        _exit(3);
    zqlite_free_result(r);
    zqlite_stmt *ins = zqlite_prepare_statement(db, "INSERT INTO t VALUES(?1, '" ZQ_CRASH_SECRET
                                                    "' || ?1, randomblob(abs(random()) % 3000))");
    zqlite_stmt *cnt = zqlite_prepare_statement(db, "UPDATE t SET v = ?1 WHERE id = 0");
    long long i = 0;
    r = zqlite_execute(db, "SELECT max(id) FROM t");
    if (r && r->status == ZQLITE_OK && r->row_count)
        i = zqlite_result_cell(r, 0, 0)->i;
    zqlite_free_result(r);
    if (write(fd, &i, sizeof i) != (ssize_t)sizeof i) /* ready: the table exists */
        _exit(6);
    for (;;) {
        i++;
        r = zqlite_execute(db, "BEGIN");
        zqlite_free_result(r);
        zqlite_bind_int64(ins, 1, i);
        zqlite_bind_int64(cnt, 1, i);
        if (zqlite_step(ins) != ZQLITE_DONE || zqlite_step(cnt) != ZQLITE_DONE)
            _exit(4);
        zqlite_reset(ins);
        zqlite_reset(cnt);
        r = zqlite_execute(db, "COMMIT");
        if (!r || r->status != ZQLITE_OK)
            _exit(5);
        zqlite_free_result(r);
        if (write(fd, &i, sizeof i) != (ssize_t)sizeof i)
            _exit(6);
    }
}

/* Scans the files a crash left, while they exist (before any reopen can
 * roll back a hot journal or delete a WAL): 0 when clean, k + 1 when file k
 * (database, journal, WAL) holds the secret, -(k + 1) when file k is
 * missing though it must exist — the database always, the WAL in WAL mode
 * (a killed connection never deletes it); a rollback journal exists only
 * when the kill fell inside a transaction. */
static int zq_crash_files_leak(const char *path, const char *mode)
{
    static const char *const suffix[] = {"", "-journal", "-wal"};
    const int wal = strcmp(mode, "wal") == 0;
    char name[1100];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s%s", path, suffix[k]);
        FILE *fp = fopen(name, "rb");
        if (!fp) {
            if (k == 0 || (k == 2 && wal))
                return -(k + 1);
            continue;
        }
        static char buf[1 << 16];
        size_t keep = 0, n, sl = strlen(ZQ_CRASH_SECRET);
        int found = 0;
        while (!found && (n = fread(buf + keep, 1, sizeof buf - keep, fp)) > 0) {
            n += keep;
            found = memmem(buf, n, ZQ_CRASH_SECRET, sl) != NULL;
            keep = n < sl ? n : sl - 1;
            memmove(buf, buf + n - keep, keep);
        }
        fclose(fp);
        if (found)
            return k + 1;
    }
    return 0;
}

/* Returns 0 when the trial passed, -1 with msg set otherwise; *acked gets
 * the number of transactions the child reported committed. */
static int zq_crash_trial(const char *path, const char *mode, unsigned *seed, long max_us,
                          char *msg, size_t cap, long long *acked)
{
    int fds[2];
    *acked = 0;
    if (pipe(fds) != 0) {
        snprintf(msg, cap, "pipe failed");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, cap, "fork failed");
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        zq_crash_child(path, mode, fds[1]);
    }
    close(fds[1]);
    long long v;
    if (read(fds[0], &v, sizeof v) != (ssize_t)sizeof v) {
        waitpid(pid, NULL, 0);
        close(fds[0]);
        snprintf(msg, cap, "child failed before its first transaction");
        return -1;
    }
    *acked = v;
    long us = 2000 + (long)(rand_r(seed) % (unsigned)max_us);
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        *acked = v;
    close(fds[0]);
    if (!WIFSIGNALED(status)) {
        snprintf(msg, cap, "child exited early with status %d", WEXITSTATUS(status));
        return -1;
    }
    int leak = zq_crash_files_leak(path, mode);
    static const char *const file[] = {"the database", "the journal", "the WAL"};
    if (leak < 0) {
        snprintf(msg, cap, "%s is missing after the crash", file[-leak - 1]);
        return -1;
    }
    if (leak > 0 && strlen(ZQ_CRASH_KEY)) {
        snprintf(msg, cap, "plaintext found in %s after the crash", file[leak - 1]);
        return -1;
    }
    zqlite_db *db = zqlite_open_encrypted(path, ZQ_CRASH_KEY, strlen(ZQ_CRASH_KEY));
    if (!db) {
        snprintf(msg, cap, "reopen failed: %s", zqlite_errmsg(NULL));
        return -1;
    }
    zqlite_result *r = zqlite_execute(
        db,
        "SELECT (SELECT group_concat(integrity_check) FROM pragma_integrity_check), "
        "(SELECT count(*) FROM t WHERE id > 0), (SELECT CAST(v AS INTEGER) FROM t WHERE id = 0), "
        "(SELECT count(*) FROM t WHERE id > 0 AND v <> '" ZQ_CRASH_SECRET "' || id)");
    int rc = -1;
    if (r->status != ZQLITE_OK) {
        snprintf(msg, cap, "check failed: %s", r->error_message);
    } else {
        const char *ic = zqlite_result_cell(r, 0, 0)->text;
        long long rows = zqlite_result_cell(r, 0, 1)->i;
        long long counter = zqlite_result_cell(r, 0, 2)->i;
        long long wrong = zqlite_result_cell(r, 0, 3)->i;
        if (!ic || strcmp(ic, "ok") != 0)
            snprintf(msg, cap, "integrity_check: %s", ic ? ic : "(null)");
        else if (rows < *acked)
            snprintf(msg, cap, "lost committed rows: %lld present, %lld acknowledged", rows,
                     *acked);
        else if (counter != rows || wrong != 0)
            snprintf(msg, cap, "inconsistent: %lld rows, counter %lld, %lld wrong", rows, counter,
                     wrong);
        else
            rc = 0;
    }
    zqlite_free_result(r);
    zqlite_close(db);
    return rc;
}

#endif
