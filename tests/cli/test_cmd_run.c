/*
 * test_cmd_run.c — `ghostflow run`: greedy text equals llama.cpp's, the
 * prompt can come from stdin, timings go to stderr, a seed reproduces the
 * text, and bad flag values are usage errors (exit 2) naming the flag.
 */
#include "test_util.h"

#define MODEL "../shared/models/stories260K.gguf"
/* llama.cpp's greedy continuation of "Once upon a time" (../shared/vectors) */
#define GREEDY_TEXT                                                                                \
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she "   \
    "saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"

static void test_greedy_run_prints_llama_cpp_text_and_timings(void **state)
{
    char cmd[1024], out[4096], err[4096];
    snprintf(cmd, sizeof cmd, "%s run -m %s -n 64 --temp 0 -c 512 -t 2 'Once upon a time'",
             tu_program("ghostflow"), MODEL);
    assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, GREEDY_TEXT "\n");
    assert_non_null(strstr(err, "load: "));
    assert_non_null(strstr(err, "resident"));
    assert_non_null(strstr(err, "prompt: 5 tokens"));
    assert_non_null(strstr(err, "generation: 64 tokens"));
    assert_non_null(strstr(err, "t/s"));
}

static void test_dash_reads_the_prompt_from_stdin(void **state)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time' | %s run -m %s -n 64 --temp 0 -c 512 -",
             tu_program("ghostflow"), MODEL);
    assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
    assert_string_equal(out, GREEDY_TEXT "\n");
}

static void test_same_seed_gives_the_same_text(void **state)
{
    char cmd[1024], a[4096], b[4096], c[4096];
    const char *fmt = "%s run -m %s -n 40 --temp 1.0 --top-k 20 --top-p 0.9 --min-p 0.01 "
                      "--repeat-penalty 1.1 --seed %d 'The little dog'";
    snprintf(cmd, sizeof cmd, fmt, tu_program("ghostflow"), MODEL, 7);
    assert_int_equal(tu_run(cmd, a, sizeof a, NULL, 0), 0);
    assert_int_equal(tu_run(cmd, b, sizeof b, NULL, 0), 0);
    snprintf(cmd, sizeof cmd, fmt, tu_program("ghostflow"), MODEL, 8);
    assert_int_equal(tu_run(cmd, c, sizeof c, NULL, 0), 0);
    assert_true(strlen(a) > 10);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
}

/* Each bad value is a usage error whose message names the flag. */
static void test_bad_flag_values_are_usage_errors_naming_the_flag(void **state)
{
    static const struct {
        const char *args, *flag;
    } cases[] = {
        {"-n abc", "-n"},
        {"-n -5", "-n"},
        {"--temp hot", "--temp"},
        {"--temp -1", "--temp"},
        {"--top-p 1.5", "--top-p"},
        {"--min-p -0.1", "--min-p"},
        {"--top-k -3", "--top-k"},
        {"--repeat-penalty 0", "--repeat-penalty"},
        {"--seed x", "--seed"},
        {"-t 0", "-t"},
        {"-c 0", "-c"},
        {"--no-such-flag", "no-such-flag"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], err[4096];
        snprintf(cmd, sizeof cmd, "%s run -m %s %s 'Once'", tu_program("ghostflow"), MODEL,
                 cases[i].args);
        int rc = tu_run(cmd, NULL, 0, err, sizeof err);
        if (rc != 2 || strstr(err, cases[i].flag) == NULL)
            fail_msg("'%s': exit %d, stderr: %s", cases[i].args, rc, err);
    }
}

static void test_missing_model_or_prompt_is_reported(void **state)
{
    char cmd[1024], err[4096];
    snprintf(cmd, sizeof cmd, "%s run 'Once'", tu_program("ghostflow"));
    assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 2);
    assert_non_null(strstr(err, "-m"));
    snprintf(cmd, sizeof cmd, "%s run -m %s", tu_program("ghostflow"), MODEL);
    assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 2);
    assert_non_null(strstr(err, "PROMPT"));
    snprintf(cmd, sizeof cmd, "%s run -m /nonexistent/model.gguf 'Once'", tu_program("ghostflow"));
    assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 1);
    assert_non_null(strstr(err, "/nonexistent/model.gguf"));
}

static void test_prompt_longer_than_the_window_fails(void **state)
{
    char cmd[1024], err[4096];
    snprintf(cmd, sizeof cmd, "%s run -m %s -c 8 'Once upon a time there was a big dog'",
             tu_program("ghostflow"), MODEL);
    assert_int_equal(tu_run(cmd, NULL, 0, err, sizeof err), 1);
    assert_non_null(strstr(err, "context window"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_run_prints_llama_cpp_text_and_timings),
        cmocka_unit_test(test_dash_reads_the_prompt_from_stdin),
        cmocka_unit_test(test_same_seed_gives_the_same_text),
        cmocka_unit_test(test_bad_flag_values_are_usage_errors_naming_the_flag),
        cmocka_unit_test(test_missing_model_or_prompt_is_reported),
        cmocka_unit_test(test_prompt_longer_than_the_window_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
