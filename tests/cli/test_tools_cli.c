/*
 * test_tools_cli.c — the tool commands as a user runs them: `ghostflow
 * convert`, `quantize`, `synth` and `bench` write what they say and exit 0;
 * bad input (a missing directory, a corrupt safetensors header, an unknown
 * type or shape, a missing argument) exits non-zero with a message naming
 * the problem. The library behaviour behind them is tested in
 * tests/llm/test_tools.c.
 */
#include "test_util.h"

#define HF_DIR  "../shared/models/tinystories-656k"
#define STORIES "../shared/models/stories260K.gguf"

/* Runs "ghostflow <args>" through the shell; stdout and stderr land in out
 * and err (NUL-terminated, truncated to the buffers). Returns the exit status. */
static int gf(char *out, size_t out_cap, char *err, size_t err_cap, const char *fmt, ...)
{
    char args[1536], cmd[2560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", tu_program("ghostflow"), args);
    return tu_run(cmd, out, out_cap, err, err_cap);
}

static char out[16384], err[16384];

static void test_convert_then_quantize_then_bench(void **state)
{
    const char *f32 = tu_path("ts.gguf");
    assert_int_equal(
        gf(out, sizeof out, err, sizeof err, "convert --outtype f32 %s %s", HF_DIR, f32), 0);
    assert_non_null(strstr(err, "wrote"));
    /* stderr is not a terminal here: no progress bar escapes */
    assert_null(strstr(err, "\r"));
    const char *q = tu_path("ts-q4k.gguf");
    assert_int_equal(gf(out, sizeof out, err, sizeof err, "quantize %s %s Q4_K", f32, q), 0);
    /* rows of 128 do not hold Q4_K blocks: llama-quantize's Q5_0 fallback */
    assert_non_null(strstr(err, "0 Q4_K, 15 fallback, 5 kept"));
    assert_int_equal(gf(out, sizeof out, err, sizeof err,
                        "bench -m %s -m %s -p 8 -n 4 -r 2 -t 1,2 --no-bandwidth", f32, q),
                     0);
    static const char *const rows[] = {"| ts.gguf", "| ts-q4k.gguf", "pp8", "tg4", "±", "t/s"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strstr(out, rows[i]) == NULL)
            fail_msg("bench table lacks '%s':\n%s", rows[i], out);
    assert_non_null(strstr(out, "peak RSS"));
    /* one pp and one tg row per model and thread count, plus header and rule */
    int lines = 0;
    for (const char *s = out; (s = strstr(s, "\n| ")) != NULL; s++)
        lines++;
    assert_int_equal(lines, 1 + 8);
}

static void test_bench_csv_has_one_row_per_test(void **state)
{
    assert_int_equal(
        gf(out, sizeof out, err, sizeof err, "bench -m %s -p 4 -n 2 -r 1 -o csv", STORIES), 0);
    assert_non_null(strstr(out, "model,size_bytes,params,isa,n_threads,test"));
    assert_non_null(strstr(out, "stories260K.gguf,"));
    assert_non_null(strstr(out, ",pp4,"));
    assert_non_null(strstr(out, ",tg2,"));
    assert_non_null(strstr(err, "memory bandwidth, 2 threads: read"));
}

static void test_synth_writes_a_model_that_runs(void **state)
{
    const char *m = tu_path("tiny.gguf");
    assert_int_equal(
        gf(out, sizeof out, err, sizeof err, "synth --shape llama-tiny --type Q8_0 %s", m), 0);
    assert_int_equal(gf(out, sizeof out, err, sizeof err, "run -m %s -n 4 --temp 0 'hello'", m), 0);
    assert_int_equal(gf(out, sizeof out, err, sizeof err, "synth --list"), 0);
    assert_non_null(strstr(out, "tinyllama-1.1b"));
    assert_non_null(strstr(out, "qwen2-0.5b"));
}

static void test_bad_inputs_fail_with_clear_errors(void **state)
{
    static const struct {
        const char *args;
        int code;
        const char *needle;
    } cases[] = {
        {"convert /nonexistent/hf %s/x.gguf", 1, "/nonexistent/hf: not a directory"},
        {"convert --outtype q3 " HF_DIR " %s/x.gguf", 2, "unknown type 'q3'"},
        {"convert " HF_DIR, 2, "expected HF_DIR and OUT.gguf"},
        {"quantize " STORIES " %s/x.gguf Q7_X", 2, "unknown type 'Q7_X'"},
        {"quantize /nonexistent.gguf %s/x.gguf Q4_0", 1, "/nonexistent.gguf"},
        {"quantize " STORIES " %s/x.gguf", 2, "expected IN.gguf OUT.gguf TYPE"},
        {"synth --shape llama-9000b %s/x.gguf", 2, "unknown shape 'llama-9000b'"},
        {"synth --shape llama-tiny --type Q2_X %s/x.gguf", 2, "unknown type 'Q2_X'"},
        {"bench", 2, "no model"},
        {"bench -m /nonexistent.gguf -p 4 -n 2 --no-bandwidth", 1, "/nonexistent.gguf"},
        {"bench -m " STORIES " -t 0", 2, "--threads"},
        {"bench -m " STORIES " -o xml", 2, "--output"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, cases[i].args, tu_tmpdir());
        int rc = gf(out, sizeof out, err, sizeof err, "%s", args);
        if (rc != cases[i].code || strstr(err, cases[i].needle) == NULL)
            fail_msg("ghostflow %s: exit %d, stderr '%s' (wanted %d and '%s')", args, rc, err,
                     cases[i].code, cases[i].needle);
    }
    /* a directory whose model.safetensors has a header running past the end */
    const char *dir = tu_path("badhf");
    mkdir(dir, 0700);
    char cp[1024];
    snprintf(cp, sizeof cp, "cp %s/config.json %s/tokenizer.json %s/tokenizer_config.json %s/",
             HF_DIR, HF_DIR, HF_DIR, dir);
    assert_int_equal(system(cp), 0);
    uint8_t st[64] = {0};
    uint64_t huge = 1u << 30;
    memcpy(st, &huge, 8);
    tu_write_file(tu_path("badhf/model.safetensors"), st, sizeof st);
    const char *y = tu_path("y.gguf");
    assert_int_equal(gf(out, sizeof out, err, sizeof err, "convert %s %s", dir, y), 1);
    assert_non_null(strstr(err, "model.safetensors: header length 1073741824"));
    assert_int_not_equal(access(y, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert_then_quantize_then_bench),
        cmocka_unit_test(test_bench_csv_has_one_row_per_test),
        cmocka_unit_test(test_synth_writes_a_model_that_runs),
        cmocka_unit_test(test_bad_inputs_fail_with_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
