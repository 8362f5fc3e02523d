/*
 * test_cli_main.c — the ghostflow and zqlite programs' global behaviour:
 * --help and --version succeed, unknown subcommands and flags are usage
 * errors (exit 2) with a message that names them, and output that cannot be
 * written (stdout on /dev/full) is a failure (exit 1) that says why.
 */
#include "test_util.h"

#define MODEL "../shared/models/stories260K.gguf"

/* Runs the built program prog with args (shell words), stderr merged into
 * stdout, captured in out (up to cap bytes); returns the exit status. */
static int run(const char *prog, const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", tu_program(prog), args);
    return tu_run(cmd, out, cap, NULL, 0);
}

static void test_ghostflow_help_lists_commands(void **state)
{
    char out[8192];
    assert_int_equal(run("ghostflow", "--help", out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: ghostflow"));
    assert_non_null(strstr(out, "commands:"));
}

static void test_ghostflow_version_prints_all_libraries(void **state)
{
    char out[1024];
    assert_int_equal(run("ghostflow", "--version", out, sizeof out), 0);
    assert_non_null(strstr(out, "ghostflow 0."));
    assert_non_null(strstr(out, "ghostllm"));
    assert_non_null(strstr(out, "zqlite"));
}

static void test_unknown_subcommand_is_usage_error(void **state)
{
    char out[4096];
    assert_int_equal(run("ghostflow", "frobnicate", out, sizeof out), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
}

static void test_unknown_global_flag_is_usage_error(void **state)
{
    char out[4096];
    assert_int_equal(run("ghostflow", "--no-such-flag", out, sizeof out), 2);
    assert_non_null(strstr(out, "no-such-flag"));
}

static void test_missing_subcommand_is_usage_error(void **state)
{
    char out[4096];
    assert_int_equal(run("ghostflow", "", out, sizeof out), 2);
    assert_non_null(strstr(out, "usage: ghostflow"));
}

static void test_zqlite_help_and_bad_flag(void **state)
{
    char out[8192];
    assert_int_equal(run("zqlite", "--help", out, sizeof out), 0);
    assert_non_null(strstr(out, "zqlite"));
    assert_int_equal(run("zqlite", "--no-such-flag", out, sizeof out), 2);
}

/* Every printing command with stdout on /dev/full: exit 1 and
 * "<prog>: writing output: No space left on device", for short output
 * (caught at exit) and for output that fails along the way. */
static void test_output_to_a_full_device_exits_1_with_the_reason(void **state)
{
    struct stat st;
    if (stat(MODEL, &st) != 0)
        fail_msg("%s is missing: run from the repository root with ../shared present", MODEL);
    static const struct {
        const char *prog, *args, *name;
    } cases[] = {
        {"ghostflow", "--help", "ghostflow"},
        {"ghostflow", "--version", "ghostflow"},
        {"ghostflow", "history --help", "ghostflow history"},
        {"ghostflow", "info " MODEL, "ghostflow info"},
        {"ghostflow", "info --full " MODEL, "ghostflow info"},
        {"ghostflow", "run -m " MODEL " -n 200 --temp 0 -t 1 'Once upon a time'", "ghostflow run"},
        {"zqlite", "--version", "zqlite"},
        {"zqlite", "--plain :memory: 'SELECT 1'", "zqlite"},
        /* 200,000 rows: the buffer fails long before the end */
        {"zqlite",
         "--plain :memory: 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
         " WHERE i < 200000) SELECT i FROM n'",
         "zqlite"},
        {"zqlite", "--plain :memory: 'CREATE TABLE t(x)' .tables", "zqlite"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], err[8192], want[128];
        snprintf(cmd, sizeof cmd, "%s %s >/dev/full </dev/null", tu_program(cases[i].prog),
                 cases[i].args);
        int rc = tu_run(cmd, NULL, 0, err, sizeof err);
        snprintf(want, sizeof want, "%s: writing output: No space left on device", cases[i].name);
        if (rc != 1 || !strstr(err, want))
            fail_msg("%s %s >/dev/full: exit %d (want 1), stderr:\n%s", cases[i].prog,
                     cases[i].args, rc, err);
    }
    /* run stops generating once nobody can read the text: one token, not 200 */
    char cmd[1024], err[8192];
    snprintf(cmd, sizeof cmd, "%s run -m %s -n 200 --temp 0 -t 1 'Once upon a time' >/dev/full",
             tu_program("ghostflow"), MODEL);
    assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 1);
    const char *gen = strstr(err, "generation: ");
    assert_non_null(gen);
    assert_true(atoi(gen + strlen("generation: ")) < 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ghostflow_help_lists_commands),
        cmocka_unit_test(test_ghostflow_version_prints_all_libraries),
        cmocka_unit_test(test_unknown_subcommand_is_usage_error),
        cmocka_unit_test(test_unknown_global_flag_is_usage_error),
        cmocka_unit_test(test_missing_subcommand_is_usage_error),
        cmocka_unit_test(test_zqlite_help_and_bad_flag),
        cmocka_unit_test(test_output_to_a_full_device_exits_1_with_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
