/*
 * test_zqlite_shell.c — the `zqlite` program, run as a child process
 * ($GF_BUILD_DIR/zqlite, set by ctest): SQL from arguments and stdin,
 * sqlite3-style list output, dot-commands, key sources, exit codes.
 */
#include "zq_test.h"

static char out[16384];

/* Runs "env... zqlite args" through sh, optional stdin text; captures
 * stdout+stderr into out and returns the exit status. */
static int zq_run(const char *env, const char *args, const char *input)
{
    char cmd[4096];
    if (input)
        tu_write_file(tu_path("stdin.txt"), input, strlen(input));
    snprintf(cmd, sizeof cmd, "cd '%s' && %s setsid '%s' %s < %s 2>&1", tu_tmpdir(), env ? env : "",
             tu_program("zqlite"), args, input ? "stdin.txt" : "/dev/null");
    return tu_run(cmd, out, sizeof out, NULL, 0);
}

#define KEY_ENV "ZQLITE_KEY=\"" ZQ_RAW_KEY "\""

static void test_shell_runs_sql_from_arguments_in_list_mode(void **state)
{
    unlink(tu_path("args.db"));
    assert_int_equal(zq_run(KEY_ENV,
                            "args.db \"CREATE TABLE t(a, b); INSERT INTO t VALUES(1, 'x'),"
                            "(2.5, NULL)\" 'SELECT * FROM t' 'SELECT count(*) FROM t'",
                            NULL),
                     0);
    assert_string_equal(out, "1|x\n2.5|\n2\n");
    assert_false(zq_file_contains(tu_path("args.db"), "CREATE TABLE"));
}

static void test_shell_reads_statements_and_dot_commands_from_stdin(void **state)
{
    unlink(tu_path("stdin.db"));
    assert_int_equal(
        zq_run(KEY_ENV, "--header -s , stdin.db",
               "CREATE TABLE people(name TEXT,\n  age INT);\n"
               "INSERT INTO people VALUES('ann', 31); INSERT INTO people "
               "VALUES('bob', 42);\n.tables\n.schema people\n"
               "SELECT name, age FROM people ORDER BY age;\n.quit\nSELECT 'not run';\n"),
        0);
    assert_string_equal(out, "people\nCREATE TABLE people(name TEXT,\n  age INT);\n"
                             "name,age\nann,31\nbob,42\n");
}

static void test_shell_wrong_key_exits_3_with_message(void **state)
{
    unlink(tu_path("wk.db"));
    assert_int_equal(zq_run(KEY_ENV, "wk.db 'CREATE TABLE t(x)'", NULL), 0);
    assert_int_equal(zq_run("ZQLITE_KEY=\"" ZQ_RAW_KEY2 "\"", "wk.db 'SELECT 1'", NULL), 3);
    assert_non_null(strstr(out, "zqlite: "));
    assert_non_null(strstr(out, "wrong key or not a zqlite database"));
    assert_null(strstr(out, ZQ_RAW_KEY2 + 2));
}

static void test_shell_reads_the_key_file_and_reports_a_missing_one(void **state)
{
    FILE *fp = fopen(tu_path("key.txt"), "w");
    assert_non_null(fp);
    fputs("file passphrase\n", fp);
    fclose(fp);
    unlink(tu_path("kf.db"));
    assert_int_equal(zq_run(NULL,
                            "--kdf-ops 1 --kdf-mem 1 -k key.txt kf.db "
                            "'CREATE TABLE t(x); INSERT INTO t VALUES(7)'",
                            NULL),
                     0);
    assert_int_equal(zq_run(NULL, "--key-file key.txt kf.db 'SELECT x FROM t'", NULL), 0);
    assert_string_equal(out, "7\n");
    assert_int_equal(zq_run(NULL, "--key-file nope.txt kf.db 'SELECT 1'", NULL), 1);
    assert_non_null(strstr(out, "key file nope.txt"));
    /* No key source and no terminal (setsid): a clear error, no prompt. */
    assert_int_equal(zq_run(NULL, "kf.db 'SELECT 1'", NULL), 1);
    assert_non_null(strstr(out, "ZQLITE_KEY"));
}

static void test_shell_usage_errors_exit_2(void **state)
{
    assert_int_equal(zq_run(NULL, "--no-such-flag x.db", NULL), 2);
    assert_non_null(strstr(out, "no-such-flag"));
    assert_int_equal(zq_run(NULL, "", NULL), 2);
    assert_non_null(strstr(out, "missing DB"));
    assert_int_equal(zq_run(NULL, "--page-size 1000 x.db", NULL), 2);
    assert_non_null(strstr(out, "power of two"));
    assert_int_equal(zq_run(NULL, "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: zqlite"));
    assert_int_equal(zq_run(NULL, "--version", NULL), 0);
    assert_non_null(strstr(out, "zqlite 0."));
}

static void test_shell_sql_errors_exit_1_and_bail_stops(void **state)
{
    unlink(tu_path("err.db"));
    assert_int_equal(zq_run(KEY_ENV, "err.db 'SELEKT 1' 'SELECT 2'", NULL), 1);
    assert_non_null(strstr(out, "syntax error"));
    assert_non_null(strstr(out, "2\n")); /* continued after the error */
    assert_int_equal(zq_run(KEY_ENV, "--bail err.db", "SELEKT 1;\nSELECT 2;\n"), 1);
    assert_null(strstr(out, "2\n"));
    assert_int_equal(zq_run(KEY_ENV, "err.db .frobnicate", NULL), 1);
    assert_non_null(strstr(out, "unknown command '.frobnicate'"));
}

static void test_shell_exports_imports_and_rekeys(void **state)
{
    unlink(tu_path("src.db"));
    unlink(tu_path("plain.db"));
    unlink(tu_path("copy.db"));
    assert_int_equal(zq_run(KEY_ENV,
                            "src.db \"CREATE TABLE t(x); INSERT INTO t VALUES('shell-row')\" "
                            "'.export-plain plain.db'",
                            NULL),
                     0);
    assert_true(zq_file_contains(tu_path("plain.db"), "shell-row"));
    assert_int_equal(zq_run(NULL, "--plain plain.db 'SELECT x FROM t'", NULL), 0);
    assert_string_equal(out, "shell-row\n");
    assert_int_equal(
        zq_run(KEY_ENV, "copy.db '.import-plain plain.db' 'SELECT count(*) FROM t'", NULL), 0);
    assert_string_equal(out, "1\n");
    assert_false(zq_file_contains(tu_path("copy.db"), "shell-row"));
    assert_int_equal(zq_run(KEY_ENV " ZQLITE_NEW_KEY=\"" ZQ_RAW_KEY2 "\"", "copy.db .rekey", NULL),
                     0);
    assert_int_equal(zq_run("ZQLITE_KEY=\"" ZQ_RAW_KEY2 "\"", "copy.db 'SELECT x FROM t'", NULL),
                     0);
    assert_string_equal(out, "shell-row\n");
    assert_int_equal(zq_run(KEY_ENV, "copy.db 'SELECT 1'", NULL), 3);
    assert_int_equal(zq_run(KEY_ENV, "copy.db '.export-plain'", NULL), 3);
    assert_int_equal(zq_run("ZQLITE_KEY=\"" ZQ_RAW_KEY2 "\"", "copy.db '.export-plain'", NULL), 1);
    assert_non_null(strstr(out, "wrong arguments"));
}

static void test_shell_rekey_while_the_database_is_open_elsewhere_exits_1(void **state)
{
    unlink(tu_path("held.db"));
    assert_int_equal(
        zq_run(KEY_ENV, "held.db \"CREATE TABLE t(x); INSERT INTO t VALUES(1)\"", NULL), 0);
    zqlite_db *db = zqlite_open_encrypted(tu_path("held.db"), ZQ_RAW_KEY, strlen(ZQ_RAW_KEY));
    assert_non_null(db);
    assert_int_equal(zq_run(KEY_ENV " ZQLITE_NEW_KEY=\"" ZQ_RAW_KEY2 "\"", "held.db .rekey", NULL),
                     1);
    assert_non_null(strstr(out, "zqlite: "));
    assert_non_null(strstr(out, "open in another process"));
    zq_exec(db, "INSERT INTO t VALUES(2)"); /* our connection still writes the live file */
    zqlite_close(db);
    assert_int_equal(zq_run(KEY_ENV, "held.db 'SELECT count(*) FROM t'", NULL), 0);
    assert_string_equal(out, "2\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_runs_sql_from_arguments_in_list_mode),
        cmocka_unit_test(test_shell_reads_statements_and_dot_commands_from_stdin),
        cmocka_unit_test(test_shell_wrong_key_exits_3_with_message),
        cmocka_unit_test(test_shell_reads_the_key_file_and_reports_a_missing_one),
        cmocka_unit_test(test_shell_usage_errors_exit_2),
        cmocka_unit_test(test_shell_sql_errors_exit_1_and_bail_stops),
        cmocka_unit_test(test_shell_exports_imports_and_rekeys),
        cmocka_unit_test(test_shell_rekey_while_the_database_is_open_elsewhere_exits_1),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
