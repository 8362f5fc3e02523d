/*
 * test_cli_main.c — the ghostflow and zqlite programs' global behaviour:
 * --help and --version succeed, unknown subcommands and flags are usage
 * errors (exit 2) with a message that names them.
 */
#include "test_util.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ghostflow_help_lists_commands),
        cmocka_unit_test(test_ghostflow_version_prints_all_libraries),
        cmocka_unit_test(test_unknown_subcommand_is_usage_error),
        cmocka_unit_test(test_unknown_global_flag_is_usage_error),
        cmocka_unit_test(test_missing_subcommand_is_usage_error),
        cmocka_unit_test(test_zqlite_help_and_bad_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
