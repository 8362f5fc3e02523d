/*
 * test_cmd_info.c — `ghostflow info MODEL`: a good file prints its header,
 * metadata (long arrays summarised) and tensor table and exits 0; a
 * malformed or missing file exits 1 with the loader's message (what and
 * where); bad usage exits 2; bytes from the file never reach the terminal
 * unescaped.
 */
#include "test_util.h"

#include "llm/gguf_write.h"
#include "llm/quant.h"

#define MODELS "../shared/models"

typedef struct result {
    int status;
    char out[65536], err[4096];
} result;

/* Runs `ghostflow info <args>`, capturing stdout and stderr separately. */
static void info(const char *args, result *r)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s info %s", tu_program("ghostflow"), args);
    r->status = tu_run(cmd, r->out, sizeof r->out, r->err, sizeof r->err);
}

static void expect_in(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing '%s' in:\n%s", want, text);
}

/* A copy of the first n bytes of src in the temporary directory; its path. */
static const char *truncated_copy(const char *src, size_t n)
{
    size_t len;
    char *buf = tu_read_required(src, &len);
    assert_true(len >= n);
    const char *path = tu_path("truncated.gguf");
    tu_write_file(path, buf, n);
    free(buf);
    return path;
}

static void test_info_prints_metadata_and_tensor_table(void **state)
{
    static result r;
    info(MODELS "/stories260K.gguf", &r);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    expect_in(r.out, "GGUF v3");
    expect_in(r.out, "19 keys, 48 tensors");
    expect_in(r.out, "general.architecture");
    expect_in(r.out, "\"llama\"");
    expect_in(r.out, "llama.embedding_length");
    expect_in(r.out, "[array of 512 STRING]");
    expect_in(r.out, "[array of 512 FLOAT32]");
    expect_in(r.out, "token_embd.weight");
    expect_in(r.out, "64 x 512");
    expect_in(r.out, "131072"); /* token_embd bytes, output_norm offset */
    expect_in(r.out, "blk.4.ffn_norm.weight");
    assert_string_equal(r.err, "");
}

static void test_info_names_quantized_tensor_types(void **state)
{
    static result r;
    info(MODELS "/TinyStories-656K-Q8_0.gguf", &r);
    assert_int_equal(r.status, 0);
    expect_in(r.out, "Q8_0");
    info(MODELS "/quant/stories260K-Q4_K_M.gguf", &r);
    assert_int_equal(r.status, 0);
    expect_in(r.out, "Q4_K");
}

static void test_info_on_truncated_file_fails_with_the_loaders_message(void **state)
{
    static result r;
    const char *path = truncated_copy(MODELS "/stories260K.gguf", 5000);
    info(path, &r);
    assert_int_equal(r.status, 1);
    expect_in(r.err, "ghostflow info: ");
    expect_in(r.err, path);
    expect_in(r.err, "past end of file");
    expect_in(r.err, "offset");
    assert_string_equal(r.out, "");
}

static void test_info_on_wrong_magic_or_missing_file_fails(void **state)
{
    static result r;
    info(MODELS "/vocab/ggml-vocab-gpt-2.gguf.inp", &r);
    assert_int_equal(r.status, 1);
    expect_in(r.err, "not a GGUF file");
    info("/nonexistent/model.gguf", &r);
    assert_int_equal(r.status, 1);
    expect_in(r.err, "/nonexistent/model.gguf");
}

static void test_info_usage_errors_exit_2(void **state)
{
    static result r;
    info("", &r);
    assert_int_equal(r.status, 2);
    expect_in(r.err, "no model file given");
    info("a.gguf b.gguf", &r);
    assert_int_equal(r.status, 2);
    info("--bogus " MODELS "/stories260K.gguf", &r);
    assert_int_equal(r.status, 2);
    info("--help", &r);
    assert_int_equal(r.status, 0);
    expect_in(r.out, "usage: ghostflow info");
}

/* Strings are escaped and cut unless --full; short arrays are listed. */
static void test_info_escapes_strings_and_full_prints_them_whole(void **state)
{
    gguf_writer *w = gguf_writer_create();
    char longstr[300];
    memset(longstr, 'x', sizeof longstr - 1);
    longstr[sizeof longstr - 1] = '\0';
    memcpy(longstr + 290, "END", 3);
    const int32_t small[3] = {7, -8, 9};
    const char *strs[2] = {"a", "b\"c"};
    assert_int_equal(gguf_writer_add_str(w, "t.evil", "red\x1b[31m\nline"), GHOST_OK);
    assert_int_equal(gguf_writer_add_str(w, "t.long", longstr), GHOST_OK);
    assert_int_equal(gguf_writer_add_arr(w, "t.small", GGUF_TYPE_INT32, small, 3), GHOST_OK);
    assert_int_equal(gguf_writer_add_arr_str(w, "t.strs", strs, 2), GHOST_OK);
    assert_int_equal(gguf_writer_add_f32(w, "t.eps", 1e-6f), GHOST_OK);
    const char *path = tu_path("strings.gguf");
    assert_int_equal(gguf_writer_write_file(w, path), GHOST_OK);
    gguf_writer_destroy(w);

    static result r;
    info(path, &r);
    assert_int_equal(r.status, 0);
    expect_in(r.out, "\"red\\x1b[31m\\nline\"");
    assert_null(strchr(r.out, '\x1b'));
    expect_in(r.out, "... (299 bytes)");
    assert_null(strstr(r.out, "END"));
    expect_in(r.out, "[7, -8, 9]");
    expect_in(r.out, "[\"a\", \"b\\\"c\"]");
    expect_in(r.out, "1e-06");
    char args[256];
    snprintf(args, sizeof args, "--full %s", path);
    info(args, &r);
    assert_int_equal(r.status, 0);
    expect_in(r.out, "xEND");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_prints_metadata_and_tensor_table),
        cmocka_unit_test(test_info_names_quantized_tensor_types),
        cmocka_unit_test(test_info_on_truncated_file_fails_with_the_loaders_message),
        cmocka_unit_test(test_info_on_wrong_magic_or_missing_file_fails),
        cmocka_unit_test(test_info_usage_errors_exit_2),
        cmocka_unit_test(test_info_escapes_strings_and_full_prints_them_whole),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown);
}
