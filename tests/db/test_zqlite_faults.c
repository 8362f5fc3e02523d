/*
 * test_zqlite_faults.c — every I/O failure point of a ghostflow-like
 * workload, through the fault-injection VFS (fault_vfs.h) under zqlite's
 * encryption VFS.
 *
 * The workload mirrors ghostflow's exchange: open with a key in WAL mode, a
 * prompts and a responses table, each prompt committed in its own
 * transaction and its answer in another, a few exchanges, a
 * wal_checkpoint(TRUNCATE), zqlite_rekey to a new key, more exchanges. It
 * runs once without faults to count the counted VFS calls (fault points),
 * then once per point N with the N-th call failing — once, and again with
 * it and every later call failing (a disk gone or a power cut). After each
 * run, whatever state it ended in, the database is closed and reopened
 * without faults, with the new key when rekey returned OK and the old one
 * otherwise, and must hold: integrity_check "ok"; every exchange part whose
 * commit returned OK present and exact; nothing else but exact rows of
 * exchanges that were attempted (a failed commit may still have reached the
 * disk); no answer without its prompt; and no plaintext marker in the
 * database, WAL, journal or a leftover rekey copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fault_vfs.h"
#include "zq_test.h"

#define EXCHANGES_BEFORE 3
#define EXCHANGES_AFTER  3
#define EXCHANGES        (EXCHANGES_BEFORE + EXCHANGES_AFTER)
#define MARKER           "ZQFAULT-PLAINTEXT"

typedef struct run_log {
    int opened;
    int rekey_ok;
    int prompt_ok[EXCHANGES + 1]; /* commit returned OK */
    int answer_ok[EXCHANGES + 1];
    int attempted; /* exchanges begun: 1..attempted */
} run_log;

/* The stored text of exchange i: long enough to span pages, with the marker. */
static void exchange_text(char *buf, size_t cap, const char *what, int i)
{
    int n = snprintf(buf, cap, "%s %s %d:", MARKER, what, i);
    for (int k = 0; n < (int)cap - 1 && k < 1500; k++)
        buf[n++] = (char)('a' + (i * 31 + k * 7) % 26);
    buf[n] = '\0';
}

static int exec_ok(zqlite_db *db, const char *sql, int64_t a, const char *text)
{
    zqlite_stmt *st = zqlite_prepare_statement(db, sql);
    if (!st)
        return 0;
    int ok = zqlite_bind_int64(st, 1, a) == ZQLITE_OK &&
             (!text || zqlite_bind_text(st, 2, text, -1) == ZQLITE_OK) &&
             zqlite_step(st) == ZQLITE_DONE;
    zqlite_finalize(st);
    return ok;
}

static void exchange(zqlite_db *db, int i, run_log *log)
{
    char text[1600];
    log->attempted = i;
    exchange_text(text, sizeof text, "prompt", i);
    log->prompt_ok[i] = exec_ok(db, "INSERT INTO prompts(id, text) VALUES(?1, ?2)", i, text);
    if (!log->prompt_ok[i])
        return; /* as ghostflow: no answer is stored for a prompt that was not */
    exchange_text(text, sizeof text, "answer", i);
    log->answer_ok[i] =
        exec_ok(db, "INSERT INTO responses(prompt_id, text) VALUES(?1, ?2)", i, text);
}

static void workload(const char *path, run_log *log)
{
    memset(log, 0, sizeof *log);
    zqlite_open_options o = zqlite_default_open_options();
    o.base_vfs = FAULT_VFS_NAME;
    zqlite_db *db = zqlite_open_v2(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), &o);
    if (!db)
        return;
    log->opened = 1;
    zqlite_result *r = zqlite_execute(
        db, "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL; "
            "PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS prompts(id INTEGER PRIMARY KEY, text TEXT "
            "NOT NULL);"
            "CREATE TABLE IF NOT EXISTS responses(id INTEGER PRIMARY KEY, "
            "prompt_id INTEGER NOT NULL REFERENCES prompts(id), text TEXT NOT NULL)");
    int schema_ok = r && r->status == ZQLITE_OK;
    zqlite_free_result(r);
    if (schema_ok) {
        for (int i = 1; i <= EXCHANGES_BEFORE; i++)
            exchange(db, i, log);
        zqlite_free_result(zqlite_execute(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
        /* A failure after the rename (reopening the new file) says that the
         * new key is in force; any other failure must leave the old one. */
        log->rekey_ok = zqlite_rekey(db, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), &o) == ZQLITE_OK ||
                        strstr(zqlite_errmsg(db), "now encrypted under the new key") != NULL;
        for (int i = EXCHANGES_BEFORE + 1; i <= EXCHANGES; i++)
            exchange(db, i, log);
    }
    zqlite_close(db);
}

static int file_leaks(const char *path, const char *suffix)
{
    char name[600];
    snprintf(name, sizeof name, "%s%s", path, suffix);
    return zq_file_contains(name, MARKER);
}

/* Checks the database after a run; returns NULL or what is wrong. */
static const char *verify(const char *path, const run_log *log, char *msg, size_t cap)
{
    static const char *const files[] = {"",         "-wal",         "-journal",
                                        "-zqrekey", "-zqrekey-wal", "-zqrekey-journal"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++)
        if (file_leaks(path, files[k])) {
            snprintf(msg, cap, "plaintext marker in %s%s", path, files[k]);
            return msg;
        }
    const char *key = log->rekey_ok ? ZQ_RAW_KEY2 : ZQ_RAW_KEY;
    zqlite_open_options o = zqlite_default_open_options();
    o.create = 0;
    zqlite_db *db = zqlite_open_v2(path, key, strlen(key), &o);
    if (!db) {
        int any = 0;
        for (int i = 1; i <= EXCHANGES; i++)
            any |= log->prompt_ok[i];
        if (!any && access(path, F_OK) != 0)
            return NULL; /* never created: nothing was committed */
        snprintf(msg, cap, "reopen with the %s key: %s", log->rekey_ok ? "new" : "old",
                 zqlite_errmsg(NULL));
        return msg;
    }
    const char *bad = NULL;
    zqlite_result *r = zqlite_execute(db, "PRAGMA integrity_check");
    if (r->status != ZQLITE_OK || r->row_count != 1 ||
        strcmp(zqlite_result_cell(r, 0, 0)->text, "ok") != 0) {
        snprintf(msg, cap, "integrity_check: %s",
                 r->status != ZQLITE_OK ? r->error_message : zqlite_result_cell(r, 0, 0)->text);
        bad = msg;
    }
    zqlite_free_result(r);
    int have_tables =
        zq_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('prompts','responses')") == 2;
    char want[1600];
    for (int i = 1; !bad && i <= EXCHANGES; i++) {
        if (!have_tables) {
            if (log->prompt_ok[i]) {
                snprintf(msg, cap, "exchange %d committed but the tables are missing", i);
                bad = msg;
            }
            continue;
        }
        for (int part = 0; !bad && part < 2; part++) {
            char sql[128];
            snprintf(sql, sizeof sql, "SELECT text FROM %s WHERE %s = %d",
                     part ? "responses" : "prompts", part ? "prompt_id" : "id", i);
            r = zqlite_execute(db, sql);
            int ok = part ? log->answer_ok[i] : log->prompt_ok[i];
            exchange_text(want, sizeof want, part ? "answer" : "prompt", i);
            if (r->status != ZQLITE_OK) {
                snprintf(msg, cap, "%s: %s", sql, r->error_message);
                bad = msg;
            } else if (r->row_count > 1 || (ok && r->row_count == 0)) {
                snprintf(msg, cap, "exchange %d %s: %zu rows (commit %s)", i,
                         part ? "answer" : "prompt", r->row_count, ok ? "ok" : "failed");
                bad = msg;
            } else if (r->row_count == 1 &&
                       (i > log->attempted || strcmp(zqlite_result_cell(r, 0, 0)->text, want))) {
                snprintf(msg, cap, "exchange %d %s is not what was written", i,
                         part ? "answer" : "prompt");
                bad = msg;
            }
            zqlite_free_result(r);
        }
    }
    if (!bad && have_tables &&
        zq_int(db, "SELECT count(*) FROM responses WHERE prompt_id NOT IN (SELECT id FROM "
                   "prompts)") != 0) {
        snprintf(msg, cap, "an answer without its prompt");
        bad = msg;
    }
    zqlite_close(db);
    return bad;
}

static void test_every_io_fault_point_keeps_the_database_consistent(void **state)
{
    assert_int_equal(fault_vfs_register(), 0);
    const char *path = tu_path("faults.db");
    char name[600];
    run_log log;
    char msg[512];

    zq_remove_db(path);
    fault_vfs_arm(0, 0);
    workload(path, &log);
    long points = fault_vfs_calls();
    assert_true(log.rekey_ok);
    assert_true(log.answer_ok[EXCHANGES]);
    assert_null(verify(path, &log, msg, sizeof msg));
    assert_true(points > 0);

    long survived = 0, failed_runs = 0;
    for (int sticky = 0; sticky < 2; sticky++) {
        for (long n = 1; n <= points; n++) {
            zq_remove_db(path);
            snprintf(name, sizeof name, "%s-zqrekey", path);
            zq_remove_db(name);
            fault_vfs_arm(n, sticky);
            workload(path, &log);
            fault_vfs_arm(0, 0);
            const char *bad = verify(path, &log, msg, sizeof msg);
            if (bad) {
                fprintf(stderr, "fault point %ld%s: %s\n", n, sticky ? " (and after)" : "", bad);
                failed_runs++;
            } else {
                survived++;
            }
        }
    }
    printf("fault points: %ld counted calls; %ld of %ld runs (each point failing once, and "
           "failing for good) survived\n",
           points, survived, 2 * points);
    assert_int_equal(failed_runs, 0);
}

static void test_an_unknown_base_vfs_is_refused_by_name(void **state)
{
    zqlite_open_options o = zqlite_default_open_options();
    o.base_vfs = "no-such-vfs";
    assert_null(zqlite_open_v2(tu_path("novfs.db"), ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(NULL), "\"no-such-vfs\" is not a registered"));
    assert_int_equal(access(tu_path("novfs.db"), F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_unknown_base_vfs_is_refused_by_name),
        cmocka_unit_test(test_every_io_fault_point_keeps_the_database_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
