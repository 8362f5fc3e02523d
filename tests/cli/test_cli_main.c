/*
 * test_cli_main.c — the ghostflow and zqlite programs' global behaviour:
 * --help and --version succeed, unknown subcommands and flags are usage
 * errors (exit 2) with a message that names them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

/* Runs a shell command line, captures stdout+stderr (up to cap bytes) and
 * returns the exit status (-1 if it did not exit normally). */
static int run(const char *cmdline, char *out, size_t cap)
{
    char full[1024];
    snprintf(full, sizeof full, "%s 2>&1", cmdline);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *bin(const char *name)
{
    static char path[2][512];
    static int slot;
    const char *dir = getenv("GF_BUILD_DIR");
    assert_non_null(dir); /* set by ctest (gf_test) */
    slot ^= 1;
    snprintf(path[slot], sizeof path[slot], "%s/%s", dir, name);
    return path[slot];
}

static void test_ghostflow_help_lists_commands(void **state)
{
    char out[8192], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --help", bin("ghostflow"));
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: ghostflow"));
    assert_non_null(strstr(out, "commands:"));
}

static void test_ghostflow_version_prints_all_libraries(void **state)
{
    char out[1024], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --version", bin("ghostflow"));
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "ghostflow 0."));
    assert_non_null(strstr(out, "ghostllm"));
    assert_non_null(strstr(out, "zqlite"));
}

static void test_unknown_subcommand_is_usage_error(void **state)
{
    char out[4096], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s frobnicate", bin("ghostflow"));
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
}

static void test_unknown_global_flag_is_usage_error(void **state)
{
    char out[4096], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --no-such-flag", bin("ghostflow"));
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "no-such-flag"));
}

static void test_missing_subcommand_is_usage_error(void **state)
{
    char out[4096];
    assert_int_equal(run(bin("ghostflow"), out, sizeof out), 2);
    assert_non_null(strstr(out, "usage: ghostflow"));
}

static void test_zqlite_help_and_bad_flag(void **state)
{
    char out[8192], cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --help", bin("zqlite"));
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "zqlite"));
    snprintf(cmd, sizeof cmd, "%s --no-such-flag", bin("zqlite"));
    assert_int_equal(run(cmd, out, sizeof out), 2);
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
