/*
 * test_zqlite_api.c — libzqlite's C API and key handling: round trips over
 * page sizes, row sizes and journal modes; wrong keys and mismatched files;
 * one-shot execution and prepared statements; plain <-> encrypted copies;
 * rekey; another connection sharing the keys; key wiping (through the keys.c
 * wipe observer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "db/vfs.h"
#include "zq_test.h"

static zqlite_db *open_raw(const char *path)
{
    zqlite_db *db = zqlite_open_encrypted(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    if (!db)
        fprintf(stderr, "open %s: %s\n", path, zqlite_errmsg(NULL));
    return db;
}

/* Deterministic row payload of n bytes for row i. */
static void payload(char *buf, size_t n, int i)
{
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)('a' + (i * 7 + k * 13) % 26);
    buf[n] = '\0';
}

static void fill_and_verify(const char *path, int page_size, const char *mode, size_t row_len,
                            int rows)
{
    zqlite_open_options o = zq_fast_options();
    o.page_size = page_size;
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), &o);
    assert_non_null(db);
    char sql[64], *text = malloc(row_len + 1);
    assert_non_null(text);
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    zq_exec(db, sql);
    zq_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)");
    zq_exec(db, "BEGIN");
    zqlite_stmt *ins = zqlite_prepare_statement(db, "INSERT INTO t VALUES(?1, ?2)");
    assert_non_null(ins);
    for (int i = 0; i < rows; i++) {
        payload(text, row_len, i);
        assert_int_equal(zqlite_bind_int64(ins, 1, i), ZQLITE_OK);
        assert_int_equal(zqlite_bind_text(ins, 2, text, (int64_t)row_len), ZQLITE_OK);
        assert_int_equal(zqlite_step(ins), ZQLITE_DONE);
        zqlite_reset(ins);
    }
    zqlite_finalize(ins);
    zq_exec(db, "COMMIT");
    zq_exec(db, "DELETE FROM t WHERE id % 5 = 0"); /* freelist pages, journaled rewrites */
    assert_int_equal(zqlite_close(db), ZQLITE_OK);

    db = open_raw(path);
    assert_non_null(db);
    assert_int_equal(zq_int(db, "PRAGMA page_size"), page_size);
    zqlite_result *r = zqlite_execute(db, "PRAGMA integrity_check");
    assert_string_equal(zqlite_result_cell(r, 0, 0)->text, "ok");
    zqlite_free_result(r);
    zqlite_stmt *sel = zqlite_prepare_statement(db, "SELECT id, body FROM t ORDER BY id");
    int seen = 0;
    while (zqlite_step(sel) == ZQLITE_ROW) {
        int id = (int)zqlite_column_int64(sel, 0);
        assert_true(id % 5 != 0);
        payload(text, row_len, id);
        assert_int_equal(zqlite_column_bytes(sel, 1), row_len);
        assert_memory_equal(zqlite_column_text(sel, 1), text, row_len);
        seen++;
    }
    assert_int_equal(seen, rows - (rows + 4) / 5);
    zqlite_finalize(sel);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
    free(text);
}

static void test_round_trip_every_page_size_row_size_and_journal_mode(void **state)
{
    static const size_t row_len[] = {8, 700, 9000}; /* inline, multi-row pages, overflow */
    const char *path = tu_path("roundtrip.db");
    for (int ps = 512; ps <= 65536; ps *= 2)
        for (size_t r = 0; r < 3; r++)
            for (int wal = 0; wal < 2; wal++)
                fill_and_verify(path, ps, wal ? "WAL" : "DELETE", row_len[r],
                                row_len[r] > 1000 ? 12 : 60);
}

static void test_wrong_key_is_rejected_with_its_own_code_and_message(void **state)
{
    const char *path = tu_path("wrongkey.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES('secret')");
    zqlite_close(db);
    assert_null(zqlite_open_encrypted(path, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2)));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_WRONG_KEY);
    assert_non_null(strstr(zqlite_errmsg(NULL), "wrong key or not a zqlite database"));
    /* A passphrase on a raw-key file is a wrong key too, not a KDF run. */
    zqlite_open_options o = zq_fast_options();
    assert_null(zqlite_open_v2(path, "hunter2", 7, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_WRONG_KEY);
    assert_null(strstr(zqlite_errmsg(NULL), "hunter2"));
}

static void test_wrong_passphrase_is_rejected(void **state)
{
    const char *path = tu_path("wrongpass.db");
    zqlite_open_options o = zq_fast_options();
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, "correct horse", 13, &o);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(x)");
    zqlite_close(db);
    assert_null(zqlite_open_v2(path, "correct horsf", 13, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_WRONG_KEY);
    assert_null(strstr(zqlite_errmsg(NULL), "correct"));
    db = zqlite_open_v2(path, "correct horse", 13, &o);
    assert_non_null(db);
    zqlite_close(db);
}

static void test_header_records_kdf_costs_and_format_version(void **state)
{
    const char *path = tu_path("header.db");
    zqlite_open_options o = zq_fast_options();
    o.kdf_opslimit = 2;
    o.kdf_memlimit = 16384;
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, "pw", 2, &o);
    zq_exec(db, "CREATE TABLE t(x)");
    zqlite_close(db);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    assert_non_null(buf);
    key_header h;
    char msg[128];
    assert_int_equal(key_header_parse(buf, &h, msg, sizeof msg), ZQLITE_OK);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.kdf, KEY_KDF_ARGON2ID);
    assert_int_equal(h.opslimit, 2);
    assert_int_equal(h.memlimit, 16384);
    assert_int_equal(h.page_size, 4096);
    assert_int_equal(len, VFS_HEADER_SIZE + 2 * 4096); /* header + 2 pages */
    free(buf);
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* A header may not ask for more Argon2id work than zqlite creates: the
 * costs are refused by name before any derivation (an edited cost that got
 * as far as the key check would read as a wrong key instead). */
static void test_argon2id_costs_above_the_cap_are_refused_at_creation_and_in_a_header(void **state)
{
    const char *path = tu_path("costs.db");
    zqlite_open_options o = zq_fast_options();
    o.kdf_opslimit = ZQLITE_KDF_MAX_OPSLIMIT + 1;
    assert_null(zqlite_open_v2(path, "pw", 2, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(NULL), "opslimit"));
    o = zq_fast_options();
    o.kdf_memlimit = (size_t)ZQLITE_KDF_MAX_MEMLIMIT + 1024;
    assert_null(zqlite_open_v2(path, "pw", 2, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(NULL), "memlimit"));

    o = zq_fast_options();
    o.kdf_opslimit = ZQLITE_KDF_MAX_OPSLIMIT; /* the cap itself is fine */
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, "pw", 2, &o);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(x)");
    zqlite_close(db);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    static const struct {
        size_t off;
        uint64_t value;
        const char *want;
    } forged[] = {{16, 64, "Argon2id opslimit 64 is outside"},
                  {16, 0, "Argon2id opslimit 0 is outside"},
                  {24, 1ull << 30, "Argon2id memlimit 1073741824 bytes is outside"},
                  {24, 1ull << 40, "Argon2id memlimit 1099511627776 bytes is outside"}};
    for (size_t k = 0; k < sizeof forged / sizeof *forged; k++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, buf, len);
        put_be64(copy + forged[k].off, forged[k].value);
        tu_write_file(path, copy, len);
        free(copy);
        assert_null(zqlite_open_v2(path, "pw", 2, &o));
        assert_int_equal(zqlite_errcode(NULL), ZQLITE_CORRUPT);
        if (!strstr(zqlite_errmsg(NULL), forged[k].want))
            fail_msg("forged %s: %s", forged[k].want, zqlite_errmsg(NULL));
    }
    tu_write_file(path, buf, len);
    free(buf);
    db = zqlite_open_v2(path, "pw", 2, &o);
    assert_non_null(db);
    zqlite_close(db);
}

static void test_plain_and_encrypted_files_opened_the_wrong_way_are_named(void **state)
{
    const char *plain = tu_path("plain.db"), *enc = tu_path("enc.db");
    zq_remove_db(plain);
    zq_remove_db(enc);
    zqlite_db *db = zqlite_open_encrypted(plain, NULL, 0);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(x)");
    zqlite_close(db);
    assert_null(open_raw(plain));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_NOT_ENCRYPTED);
    assert_non_null(strstr(zqlite_errmsg(NULL), "plain SQLite database"));

    db = open_raw(enc);
    zq_exec(db, "CREATE TABLE t(x)");
    zqlite_close(db);
    assert_null(zqlite_open_encrypted(enc, NULL, 0));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_KEY_REQUIRED);
    assert_non_null(strstr(zqlite_errmsg(NULL), "key is required"));
}

static void test_truncated_file_gives_clear_error(void **state)
{
    const char *path = tu_path("trunc.db");
    zq_remove_db(path);
    zqlite_db *db = open_raw(path);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(randomblob(20000))");
    zqlite_close(db);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    assert_non_null(buf);
    /* Inside the header; one byte too (SQLite's unix VFS calls a 1-byte file
     * empty), and the file is left as it was. */
    for (size_t keep = 1000; keep > 0; keep = keep == 1000 ? 2 : keep - 1) {
        tu_write_file(path, buf, keep);
        assert_null(open_raw(path));
        assert_int_equal(zqlite_errcode(NULL), ZQLITE_CORRUPT);
        assert_non_null(strstr(zqlite_errmsg(NULL), "truncated inside the 4096-byte"));
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, keep);
    }
    /* An empty file is a new database. */
    tu_write_file(path, buf, 0);
    db = open_raw(path);
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE u(y)");
    zqlite_close(db);
    tu_write_file(path, buf, len);
    /* Inside the last page. */
    tu_write_file(path, buf, len - 100);
    db = open_raw(path);
    assert_non_null(db);
    zqlite_result *r = zqlite_execute(db, "SELECT hex(x) FROM t");
    assert_int_equal(r->status, ZQLITE_CORRUPT);
    assert_non_null(strstr(r->error_message, "truncated"));
    assert_non_null(strstr(r->error_message, "page"));
    zqlite_free_result(r);
    zqlite_close(db);
    free(buf);
}

static void test_memory_database_works_with_a_key(void **state)
{
    zqlite_db *db = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    assert_non_null(db);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1),(2),(3)");
    assert_int_equal(zq_int(db, "SELECT sum(x) FROM t"), 6);
    assert_int_equal(zqlite_rekey(db, ZQ_RAW_KEY2, strlen(ZQ_RAW_KEY2), NULL), ZQLITE_OK);
    assert_int_equal(zq_int(db, "SELECT sum(x) FROM t"), 6);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

static void test_execute_returns_types_nulls_and_column_names(void **state)
{
    zqlite_db *db = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    zqlite_result *r = zqlite_execute(
        db,
        "CREATE TABLE t(i, f, s, b, n); INSERT INTO t VALUES(-7, 2.5, 'h\xc3\xa9', x'00ff', NULL);"
        "SELECT i, f, s, b, n AS empty FROM t");
    if (r->status != ZQLITE_OK)
        fprintf(stderr, "%s\n", r->error_message);
    assert_int_equal(r->status, ZQLITE_OK);
    assert_null(r->error_message);
    assert_int_equal(r->row_count, 1);
    assert_int_equal(r->column_count, 5);
    assert_string_equal(r->column_names[0], "i");
    assert_string_equal(r->column_names[4], "empty");
    const zqlite_value *v = zqlite_result_cell(r, 0, 0);
    assert_int_equal(v->type, ZQLITE_INTEGER);
    assert_int_equal(v->i, -7);
    v = zqlite_result_cell(r, 0, 1);
    assert_int_equal(v->type, ZQLITE_FLOAT);
    assert_true(v->d == 2.5);
    v = zqlite_result_cell(r, 0, 2);
    assert_int_equal(v->type, ZQLITE_TEXT);
    assert_int_equal(v->len, 3);
    assert_string_equal(v->text, "h\xc3\xa9");
    v = zqlite_result_cell(r, 0, 3);
    assert_int_equal(v->type, ZQLITE_BLOB);
    assert_int_equal(v->len, 2);
    assert_memory_equal(v->text, "\x00\xff", 2);
    assert_int_equal(zqlite_result_cell(r, 0, 4)->type, ZQLITE_NULL);
    assert_null(zqlite_result_cell(r, 1, 0));
    assert_null(zqlite_result_cell(r, 0, 5));
    zqlite_free_result(r);

    r = zqlite_execute(db, "UPDATE t SET i = i + 1; SELECT * FROM t WHERE 0; UPDATE t SET f = 0");
    assert_int_equal(r->status, ZQLITE_OK);
    assert_int_equal(r->row_count, 0);
    assert_int_equal(r->column_count, 5); /* the empty SELECT's columns are kept */
    assert_int_equal(r->changes, 1);
    zqlite_free_result(r);
    zqlite_close(db);
}

static void test_execute_reports_errors_with_code_and_message(void **state)
{
    zqlite_db *db = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    zqlite_result *r = zqlite_execute(db, "SELEKT 1");
    assert_int_equal(r->status, ZQLITE_ERROR);
    assert_non_null(strstr(r->error_message, "syntax error"));
    assert_int_equal(zqlite_errcode(db), ZQLITE_ERROR);
    assert_non_null(strstr(zqlite_errmsg(db), "syntax error"));
    zqlite_free_result(r);
    r = zqlite_execute(
        db, "CREATE TABLE u(x UNIQUE); INSERT INTO u VALUES(1); INSERT INTO u VALUES(1)");
    assert_int_equal(r->status, ZQLITE_CONSTRAINT);
    assert_non_null(strstr(r->error_message, "UNIQUE"));
    zqlite_free_result(r);
    r = zqlite_execute(db, "SELECT * FROM missing");
    assert_int_equal(r->status, ZQLITE_ERROR);
    assert_non_null(strstr(r->error_message, "no such table: missing"));
    zqlite_free_result(r);
    r = zqlite_execute(db, NULL);
    assert_int_equal(r->status, ZQLITE_MISUSE);
    zqlite_free_result(r);
    zqlite_close(db);
}

static void test_prepared_statement_binds_every_type_and_resets(void **state)
{
    zqlite_db *db = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    zq_exec(db, "CREATE TABLE t(a, b, c, d, e)");
    zqlite_stmt *st = zqlite_prepare_statement(db, "INSERT INTO t VALUES(?1, ?2, :c, ?4, ?5)");
    assert_non_null(st);
    assert_int_equal(zqlite_bind_parameter_index(st, ":c"), 3);
    assert_int_equal(zqlite_bind_parameter_index(st, ":nope"), 0);
    assert_int_equal(zqlite_bind_text(st, 1, "abcdef", 3), ZQLITE_OK);
    assert_int_equal(zqlite_bind_int64(st, 2, INT64_MIN), ZQLITE_OK);
    assert_int_equal(zqlite_bind_double(st, 3, -0.25), ZQLITE_OK);
    assert_int_equal(zqlite_bind_blob(st, 4, "\x01\x00\x02", 3), ZQLITE_OK);
    assert_int_equal(zqlite_bind_null(st, 5), ZQLITE_OK);
    assert_int_equal(zqlite_bind_int64(st, 6, 1), ZQLITE_RANGE);
    assert_int_equal(zqlite_errcode(db), ZQLITE_RANGE);
    assert_int_equal(zqlite_step(st), ZQLITE_DONE);
    assert_int_equal(zqlite_reset(st), ZQLITE_OK);
    assert_int_equal(zqlite_clear_bindings(st), ZQLITE_OK);
    assert_int_equal(zqlite_step(st), ZQLITE_DONE); /* all NULL now */
    assert_int_equal(zqlite_changes(db), 1);
    assert_int_equal(zqlite_last_insert_rowid(db), 2);
    assert_int_equal(zqlite_finalize(st), ZQLITE_OK);

    st = zqlite_prepare_statement(db, "SELECT a, b, c, d, e FROM t ORDER BY rowid");
    assert_int_equal(zqlite_column_count(st), 5);
    assert_string_equal(zqlite_column_name(st, 2), "c");
    assert_int_equal(zqlite_step(st), ZQLITE_ROW);
    assert_int_equal(zqlite_column_type(st, 0), ZQLITE_TEXT);
    assert_string_equal(zqlite_column_text(st, 0), "abc");
    assert_int_equal(zqlite_column_int64(st, 1), INT64_MIN);
    assert_true(zqlite_column_double(st, 2) == -0.25);
    assert_int_equal(zqlite_column_bytes(st, 3), 3);
    assert_memory_equal(zqlite_column_blob(st, 3), "\x01\x00\x02", 3);
    assert_int_equal(zqlite_column_type(st, 4), ZQLITE_NULL);
    assert_null(zqlite_column_text(st, 9));
    assert_int_equal(zqlite_errcode(db), ZQLITE_RANGE);
    assert_int_equal(zqlite_step(st), ZQLITE_ROW);
    assert_int_equal(zqlite_column_type(st, 0), ZQLITE_NULL);
    assert_int_equal(zqlite_step(st), ZQLITE_DONE);
    zqlite_finalize(st);

    assert_null(zqlite_prepare_statement(db, "SELECT FROM"));
    assert_int_equal(zqlite_errcode(db), ZQLITE_ERROR);
    assert_null(zqlite_prepare_statement(db, "  -- only a comment"));
    assert_int_equal(zqlite_errcode(db), ZQLITE_MISUSE);
    /* Statements left open are finalized by close. */
    assert_non_null(zqlite_prepare_statement(db, "SELECT 1"));
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

typedef struct wal_seen {
    int calls, last_pages;
} wal_seen;

static int count_wal(void *ud, zqlite_db *db, int wal_pages)
{
    (void)db;
    wal_seen *w = ud;
    w->calls++;
    w->last_pages = wal_pages;
    return ZQLITE_OK;
}

static void test_wal_hook_sees_every_commit_and_replaces_the_autocheckpoint(void **state)
{
    const char *path = tu_path("walhook.db");
    zqlite_open_options o = zq_fast_options();
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), &o);
    assert_non_null(db);
    zq_exec(db, "PRAGMA journal_mode=WAL");
    zq_exec(db, "PRAGMA wal_autocheckpoint=10");
    zq_exec(db, "CREATE TABLE t(body TEXT)");
    wal_seen w = {0};
    assert_int_equal(zqlite_wal_hook(db, count_wal, &w), ZQLITE_OK);
    /* Each commit adds a page or more; with the hook in place SQLite's own
     * checkpoint (every 10 pages here) no longer runs, so the WAL only grows. */
    for (int i = 0; i < 30; i++)
        zq_exec(db, "INSERT INTO t VALUES(zeroblob(3000))");
    assert_int_equal(w.calls, 30);
    assert_true(w.last_pages >= 30);
    zqlite_result *r = zqlite_execute(db, "PRAGMA wal_checkpoint(PASSIVE)");
    assert_non_null(r);
    assert_int_equal(r->status, ZQLITE_OK);
    assert_int_equal(zqlite_result_cell(r, 0, 1)->i, w.last_pages); /* pages in the WAL */
    assert_int_equal(zqlite_result_cell(r, 0, 2)->i, w.last_pages); /* all copied back */
    zqlite_free_result(r);
    assert_int_equal(zqlite_wal_hook(db, NULL, NULL), ZQLITE_OK);
    zq_exec(db, "INSERT INTO t VALUES('after')");
    assert_int_equal(w.calls, 30);
    assert_int_equal(zqlite_wal_hook(NULL, count_wal, &w), ZQLITE_MISUSE);
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
}

static void test_plain_database_converts_to_encrypted_and_back(void **state)
{
    const char *plain = tu_path("conv-plain.db"), *enc = tu_path("conv-enc.db"),
               *back = tu_path("conv-back.db");
    zq_remove_db(plain);
    zq_remove_db(enc);
    zq_remove_db(back);
    zqlite_db *p = zqlite_open_encrypted(plain, NULL, 0);
    zq_exec(p, "PRAGMA user_version=42; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
               "CREATE INDEX tv ON t(v); CREATE VIEW vv AS SELECT v FROM t;"
               "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<500) "
               "INSERT INTO t SELECT i, 'row-secret-' || i FROM c");
    zqlite_close(p);

    zqlite_db *e = open_raw(enc);
    assert_int_equal(zqlite_import_plain(e, plain), ZQLITE_OK);
    assert_int_equal(zq_int(e, "SELECT count(*) FROM vv"), 500);
    assert_int_equal(zq_int(e, "PRAGMA user_version"), 42);
    assert_int_equal(zqlite_import_plain(e, plain), ZQLITE_MISUSE); /* not empty now */
    assert_non_null(strstr(zqlite_errmsg(e), "not empty"));
    zqlite_close(e);
    assert_false(zq_file_contains(enc, "row-secret-"));
    e = open_raw(enc);
    assert_int_equal(zq_int(e, "SELECT count(*) FROM t WHERE v = 'row-secret-77'"), 1);
    assert_int_equal(zqlite_export_plain(e, back), ZQLITE_OK);
    assert_int_equal(zqlite_export_plain(e, back), ZQLITE_MISUSE); /* exists */
    zqlite_close(e);
    struct stat st; /* the plaintext copy is owner-only, whatever the umask */
    assert_int_equal(stat(back, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(zq_file_contains(back, "row-secret-"));
    p = zqlite_open_encrypted(back, NULL, 0);
    assert_non_null(p);
    assert_int_equal(zq_int(p, "SELECT sum(id) FROM t"), 500 * 501 / 2);
    assert_int_equal(zq_int(p, "PRAGMA user_version"), 42);
    zqlite_close(p);

    /* Importing an encrypted file as plain is refused with a reason. */
    zqlite_db *m = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    assert_int_equal(zqlite_import_plain(m, enc), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(m), "encrypted"));
    assert_int_equal(zqlite_import_plain(m, plain), ZQLITE_OK);
    assert_int_equal(zq_int(m, "SELECT count(*) FROM t"), 500);
    zqlite_close(m);
}

static int count_wal_commits(void *arg, zqlite_db *db, int pages)
{
    (void)db;
    (void)pages;
    ++*(int *)arg;
    return ZQLITE_OK;
}

static void rekey_case(const char *mode)
{
    const char *path = tu_path("rekey.db");
    zqlite_open_options o = zq_fast_options();
    o.cache_kib = 1000;
    zq_remove_db(path);
    zqlite_db *db = zqlite_open_v2(path, "old pass", 8, &o);
    int commits = 0;
    assert_int_equal(zqlite_busy_timeout(db, 1234), ZQLITE_OK);
    assert_int_equal(zqlite_wal_hook(db, count_wal_commits, &commits), ZQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    zq_exec(db, sql);
    zq_exec(db, "CREATE TABLE t(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
                "WHERE i<300) INSERT INTO t SELECT i FROM c");
    /* The file rekey puts in the database's place keeps its mode (SQLite
     * would create it 0644 minus the umask). */
    mode_t want = strcmp(mode, "wal") == 0 ? 0600 : 0640;
    assert_int_equal(chmod(path, want), 0);
    zqlite_stmt *st = zqlite_prepare_statement(db, "SELECT 1");
    assert_int_equal(zqlite_rekey(db, "new pass", 8, &o), ZQLITE_MISUSE); /* open statement */
    zqlite_finalize(st);
    o.kdf_opslimit = 2;
    assert_int_equal(zqlite_rekey(db, "new pass", 8, &o), ZQLITE_OK);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 300);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, want);
    /* The connection rekey opened again keeps the old one's settings. */
    assert_int_equal(zq_int(db, "PRAGMA cache_size"), -1000);
    assert_int_equal(zq_int(db, "PRAGMA busy_timeout"), 1234);
    int before = commits;
    zq_exec(db, "INSERT INTO t VALUES(301)");
    assert_int_equal(commits, before + (strcmp(mode, "wal") == 0));
    zqlite_close(db);
    o.kdf_opslimit = 1;
    assert_null(zqlite_open_v2(path, "old pass", 8, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_WRONG_KEY);
    db = zqlite_open_v2(path, "new pass", 8, &o);
    assert_non_null(db);
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 301);
    zqlite_result *r = zqlite_execute(db, "PRAGMA journal_mode");
    assert_string_equal(zqlite_result_cell(r, 0, 0)->text, mode);
    zqlite_free_result(r);
    zqlite_close(db);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    key_header h;
    char msg[128];
    assert_int_equal(key_header_parse(buf, &h, msg, sizeof msg), ZQLITE_OK);
    assert_int_equal(h.opslimit, 2); /* the new KDF cost */
    free(buf);
    assert_int_equal(access(tu_path("rekey.db-zqrekey"), F_OK), -1);
}

static void test_rekey_changes_key_and_cost_and_keeps_data(void **state)
{
    rekey_case("delete");
    rekey_case("wal");
}

static void test_rekey_refuses_plain_and_bad_keys(void **state)
{
    zqlite_db *p = zqlite_open_encrypted(":memory:", NULL, 0);
    assert_int_equal(zqlite_rekey(p, "k", 1, NULL), ZQLITE_MISUSE);
    zqlite_close(p);
    zqlite_db *db = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    assert_int_equal(zqlite_rekey(db, "x'abc'", 6, NULL), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(db), "64 hex"));
    assert_int_equal(zqlite_rekey(db, NULL, 0, NULL), ZQLITE_MISUSE);
    zqlite_close(db);
}

static void test_raw_key_must_be_64_hex_digits(void **state)
{
    const char *bad[] = {"x'0011'",
                         "x'zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'",
                         "x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"};
    for (size_t i = 0; i < 3; i++) {
        assert_null(zqlite_open_encrypted(tu_path("raw.db"), bad[i], strlen(bad[i])));
        assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
        assert_non_null(strstr(zqlite_errmsg(NULL), "64 hex"));
    }
    zqlite_open_options o = zq_fast_options();
    o.kdf_memlimit = 1; /* below Argon2id's minimum */
    assert_null(zqlite_open_v2(tu_path("raw.db"), "pw", 2, &o));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    assert_null(zqlite_open_encrypted("", "pw", 2));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
}

/* ---- key wiping ---------------------------------------------------------- */

typedef struct wipe_log {
    int buffers;
    int dirty;
    size_t bytes;
} wipe_log;

static void on_wipe(const void *buf, size_t len, void *ctx)
{
    wipe_log *log = ctx;
    const unsigned char *p = buf;
    log->buffers++;
    log->bytes += len;
    for (size_t i = 0; i < len; i++)
        if (p[i]) {
            log->dirty++;
            break;
        }
}

/* A new database at path with the passphrase "a passphrase", every wipe
 * from now on recorded in log. */
static zqlite_db *open_watched(const char *path, const zqlite_open_options *o, wipe_log *log)
{
    zq_remove_db(path);
    key_set_wipe_observer(on_wipe, log);
    zqlite_db *db = zqlite_open_v2(path, "a passphrase", 12, o);
    assert_non_null(db);
    return db;
}

static void test_key_buffers_are_wiped_before_they_are_freed(void **state)
{
    const char *path = tu_path("wipe.db");
    zqlite_open_options o = zq_fast_options();
    wipe_log log = {0};
    zqlite_db *db = open_watched(path, &o, &log);
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    assert_int_equal(log.buffers, 0); /* nothing freed while open */
    zqlite_close(db);
    /* passphrase copy, Argon2id master key, the file's page/mask keys */
    assert_true(log.buffers >= 3);
    assert_int_equal(log.dirty, 0);

    /* Every error path wipes too: wrong key, bad raw key. */
    memset(&log, 0, sizeof log);
    assert_null(zqlite_open_v2(path, "wrong passphrase", 16, &o));
    assert_null(zqlite_open_encrypted(path, "x'00'", 5));
    assert_true(log.buffers >= 3);
    assert_int_equal(log.dirty, 0);

    memset(&log, 0, sizeof log);
    db = zqlite_open_encrypted(path, "a passphrase", 12);
    assert_non_null(db); /* the costs come from the file, not the options */
    assert_int_equal(zqlite_rekey(db, ZQ_RAW_KEY, strlen(ZQ_RAW_KEY), NULL), ZQLITE_OK);
    assert_true(log.buffers >= 3); /* the old ring went at rekey */
    zqlite_close(db);
    assert_int_equal(log.dirty, 0);
    key_set_wipe_observer(NULL, NULL);
}

static void test_another_connection_shares_the_keys_and_may_outlive_the_first(void **state)
{
    const char *path = tu_path("another.db");
    zqlite_open_options o = zq_fast_options();
    wipe_log log = {0};
    zqlite_db *db = open_watched(path, &o, &log);
    zq_exec(db, "PRAGMA journal_mode=WAL");
    zq_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1), (2)");

    zqlite_db *a = zqlite_open_another(db, NULL);
    assert_non_null(a);
    assert_int_equal(zq_int(a, "SELECT count(*) FROM t"), 2);
    zq_exec(a, "INSERT INTO t VALUES(3)");
    assert_int_equal(zq_int(db, "SELECT count(*) FROM t"), 3);
    /* A checkpoint on one copies what the other committed. */
    zq_exec(db, "INSERT INTO t VALUES(4)");
    zqlite_result *r = zqlite_execute(a, "PRAGMA wal_checkpoint(PASSIVE)");
    assert_int_equal(r->status, ZQLITE_OK);
    assert_true(zqlite_result_cell(r, 0, 1)->i > 0);
    assert_int_equal(zqlite_result_cell(r, 0, 2)->i, zqlite_result_cell(r, 0, 1)->i);
    zqlite_free_result(r);

    /* rekey needs the file to itself */
    assert_int_equal(zqlite_rekey(db, "new passphrase", 14, &o), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(db), "zqlite_open_another"));

    zqlite_open_options ro = zqlite_default_open_options();
    ro.readonly = 1;
    zqlite_db *reader = zqlite_open_another(db, &ro);
    assert_non_null(reader);
    r = zqlite_execute(reader, "INSERT INTO t VALUES(5)");
    assert_int_not_equal(r->status, ZQLITE_OK);
    zqlite_free_result(r);
    assert_int_equal(zqlite_close(reader), ZQLITE_OK);

    /* The ring stays while one holder is left (each connection's file keys
     * go with it), and is wiped with the last: passphrase and master key. */
    assert_int_equal(zqlite_close(db), ZQLITE_OK);
    int freed = log.buffers;
    assert_int_equal(zq_int(a, "SELECT sum(x) FROM t"), 10);
    assert_int_equal(zqlite_close(a), ZQLITE_OK);
    assert_true(log.buffers >= freed + 3);
    assert_int_equal(log.dirty, 0);
    key_set_wipe_observer(NULL, NULL);

    /* Alone again, the first may rekey. */
    db = zqlite_open_v2(path, "a passphrase", 12, &o);
    a = zqlite_open_another(db, NULL);
    assert_int_equal(zqlite_close(a), ZQLITE_OK);
    assert_int_equal(zqlite_rekey(db, "new passphrase", 14, &o), ZQLITE_OK);
    a = zqlite_open_another(db, NULL);
    assert_int_equal(zq_int(a, "SELECT count(*) FROM t"), 4);
    zqlite_close(a);
    zqlite_close(db);

    /* A plain file works the same way; ":memory:" would be another database. */
    zqlite_db *m = zqlite_open_encrypted(":memory:", ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    assert_null(zqlite_open_another(m, NULL));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    assert_non_null(strstr(zqlite_errmsg(NULL), ":memory:"));
    zqlite_close(m);
    assert_null(zqlite_open_another(NULL, NULL));
    assert_int_equal(zqlite_errcode(NULL), ZQLITE_MISUSE);
    const char *plain = tu_path("another-plain.db");
    zq_remove_db(plain);
    zqlite_db *p = zqlite_open_encrypted(plain, NULL, 0);
    zq_exec(p, "CREATE TABLE t(x); INSERT INTO t VALUES(7)");
    a = zqlite_open_another(p, NULL);
    assert_non_null(a);
    assert_int_equal(zq_int(a, "SELECT x FROM t"), 7);
    zqlite_close(p);
    zqlite_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_page_size_row_size_and_journal_mode),
        cmocka_unit_test(test_wrong_key_is_rejected_with_its_own_code_and_message),
        cmocka_unit_test(test_wrong_passphrase_is_rejected),
        cmocka_unit_test(test_header_records_kdf_costs_and_format_version),
        cmocka_unit_test(test_argon2id_costs_above_the_cap_are_refused_at_creation_and_in_a_header),
        cmocka_unit_test(test_plain_and_encrypted_files_opened_the_wrong_way_are_named),
        cmocka_unit_test(test_truncated_file_gives_clear_error),
        cmocka_unit_test(test_memory_database_works_with_a_key),
        cmocka_unit_test(test_execute_returns_types_nulls_and_column_names),
        cmocka_unit_test(test_execute_reports_errors_with_code_and_message),
        cmocka_unit_test(test_prepared_statement_binds_every_type_and_resets),
        cmocka_unit_test(test_wal_hook_sees_every_commit_and_replaces_the_autocheckpoint),
        cmocka_unit_test(test_plain_database_converts_to_encrypted_and_back),
        cmocka_unit_test(test_rekey_changes_key_and_cost_and_keeps_data),
        cmocka_unit_test(test_rekey_refuses_plain_and_bad_keys),
        cmocka_unit_test(test_raw_key_must_be_64_hex_digits),
        cmocka_unit_test(test_key_buffers_are_wiped_before_they_are_freed),
        cmocka_unit_test(test_another_connection_shares_the_keys_and_may_outlive_the_first),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
