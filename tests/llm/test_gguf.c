/*
 * test_gguf.c — the GGUF loader and writer: every real file in ../shared/models
 * loads; files built with the writer read back exactly; and each kind of
 * malformed file is rejected with a message naming the key or tensor, the
 * problem and the byte offset — never a crash, an over-read or a huge
 * allocation (these tests run under ASan/UBSan and valgrind).
 *
 * Malformed files are built byte by byte with the small `blob` builder
 * below, so each case shows exactly what is wrong in it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm/gguf.h"
#include "llm/gguf_write.h"
#include "llm/llm_internal.h"
#include "llm/quant.h"

#define MODELS "../shared/models"

/* ---- raw byte builder ---------------------------------------------------------- */

typedef struct blob {
    uint8_t *p;
    size_t len, cap;
} blob;

static void b_bytes(blob *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void b_u32(blob *b, uint32_t v)
{
    b_bytes(b, &v, 4);
}
static void b_u64(blob *b, uint64_t v)
{
    b_bytes(b, &v, 8);
}
static void b_str(blob *b, const char *s)
{
    b_u64(b, strlen(s));
    b_bytes(b, s, strlen(s));
}
static void b_header(blob *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(blob *b, const char *key, uint32_t v)
{
    b_str(b, key);
    b_u32(b, GGUF_TYPE_UINT32);
    b_u32(b, v);
}
/* A file of one key/value pair, up to and including its type: the caller
 * appends the value. */
static blob kv_file(const char *key, uint32_t type)
{
    blob b = {0};
    b_header(&b, 3, 0, 1);
    b_str(&b, key);
    b_u32(&b, type);
    return b;
}
static void b_tensor(blob *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t offset)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        b_u64(b, ne[i]);
    b_u32(b, type);
    b_u64(b, offset);
}
static void b_pad(blob *b, size_t align)
{
    static const uint8_t zero[64];
    while (b->len % align)
        b_bytes(b, zero, 1);
}
static void b_zeros(blob *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b_bytes(b, "", 1);
}

/* Opening b must fail with code and a message containing every string of
 * the NULL-terminated list (and always the word "offset"). */
static void expect_fail(const blob *b, ghost_status code, ...)
{
    gguf_file *f = (gguf_file *)1;
    ghost_status st = gguf_open_memory(b->p, b->len, &f);
    const char *msg = ghost_thread_errmsg();
    if (st != code)
        fail_msg("status %d, expected %d; message: %s", st, code, msg);
    assert_null(f);
    if (!strstr(msg, "offset"))
        fail_msg("message without an offset: %s", msg);
    va_list ap;
    va_start(ap, code);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        if (!strstr(msg, s))
            fail_msg("message lacks '%s': %s", s, msg);
    va_end(ap);
}

/* A one-tensor file: header, the kvs already in `kvs` (n_kv of them), a
 * tensor info from the arguments, padding, nbytes of data. */
static blob one_tensor_file(uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                            size_t nbytes)
{
    blob b = {0};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "w", n_dims, ne, type, offset);
    b_pad(&b, 32);
    b_zeros(&b, nbytes);
    return b;
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s (is ../shared present?)", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return p;
}

/* ---- real files ---------------------------------------------------------------- */

/* Every tensor of a validated file lies inside the map, aligned, with the
 * size its type and shape give. */
static void check_tensors(const gguf_file *f)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const uint8_t *d = t->data;
        assert_ptr_equal(d, f->map + f->data_offset + t->offset);
        assert_true(d + t->nbytes <= f->map + f->size);
        assert_int_equal((uint64_t)(d - f->map) % f->alignment, 0);
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        assert_int_equal(t->nbytes, quant_row_size((ggml_type)t->type, t->ne[0]) * rows);
        assert_ptr_equal(gguf_find_tensor(f, t->name), t);
    }
}

/* Opens every .gguf in dir; returns how many. */
static int open_all_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s (is ../shared present?)", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        gguf_file *f = NULL;
        if (gguf_open(path, &f) != GHOST_OK)
            fail_msg("%s: %s", path, ghost_thread_errmsg());
        assert_true(f->version == 2 || f->version == 3);
        assert_true(f->owns_map);
        check_tensors(f);
        uint64_t n_tok = 0;
        assert_non_null(gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &n_tok));
        assert_true(n_tok > 0);
        gguf_str arch;
        assert_true(gguf_get_str(f, "general.architecture", &arch));
        gguf_close(f);
        n++;
    }
    closedir(d);
    return n;
}

static void test_every_shared_model_and_vocab_file_loads(void **state)
{
    assert_true(open_all_in(MODELS) >= 3);
    assert_true(open_all_in(MODELS "/quant") >= 9);
    assert_true(open_all_in(MODELS "/vocab") >= 8);
}

static void test_stories260k_metadata_and_tensors_read_back(void **state)
{
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(MODELS "/stories260K.gguf", &f), GHOST_OK);
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_tensors, 48);
    assert_int_equal(f->n_kv, 19);
    assert_int_equal(f->alignment, 32);
    gguf_str s;
    assert_true(gguf_get_str(f, "general.architecture", &s));
    assert_true(gguf_str_eq(s, "llama"));
    uint32_t u;
    assert_true(gguf_get_u32(f, "llama.embedding_length", &u));
    assert_int_equal(u, 64);
    assert_true(gguf_get_u32(f, "llama.block_count", &u));
    assert_int_equal(u, 5);
    float eps;
    assert_true(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps));
    assert_true(eps == 1e-5f);
    uint64_t n;
    const gguf_kv *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &n);
    assert_non_null(tok);
    assert_int_equal(n, 512);
    assert_true(gguf_str_eq(tok->strs[0], "<unk>"));
    assert_true(gguf_str_eq(tok->strs[1], "<s>"));
    const gguf_kv *types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &n);
    assert_non_null(types);
    assert_int_equal(gguf_arr_i32(types, 0), 2); /* <unk> is UNKNOWN */
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, GGML_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->nbytes, 64 * 512 * 4);
    assert_null(gguf_find_tensor(f, "token_embd.weigh"));
    assert_null(gguf_find_kv(f, "no.such.key"));
    assert_false(gguf_get_u32(f, "no.such.key", &u));
    gguf_close(f);
}

/* Cutting a real model anywhere before the end of its last tensor fails
 * with a message; sampled cuts cover the header densely. */
static void test_truncated_real_model_fails_at_every_sampled_cut(void **state)
{
    size_t size;
    uint8_t *p = read_whole(MODELS "/stories260K.gguf", &size);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_memory(p, size, &f), GHOST_OK);
    size_t header_end = (size_t)f->data_offset;
    gguf_close(f);
    for (size_t cut = 0; cut < size; cut += cut < header_end ? 13 : 4099) {
        f = (gguf_file *)1;
        ghost_status st = gguf_open_memory(p, cut, &f);
        if (st != GHOST_ERR_FORMAT)
            fail_msg("cut at %zu: status %d (%s)", cut, st, ghost_thread_errmsg());
        assert_null(f);
        assert_true(strlen(ghost_thread_errmsg()) > 10);
    }
    free(p);
}

/* ---- writer round trips ------------------------------------------------------- */

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

/* A file with one of everything: every scalar type, strings, arrays of
 * each element type, and tensors of several types and ranks. */
static gguf_writer *everything_writer(uint8_t *data[4])
{
    gguf_writer *w = gguf_writer_create();
    assert_non_null(w);
    uint8_t u8 = 200;
    int8_t i8 = -5;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = 5000000000ll;
    double f64 = 0.5;
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "llama"), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.u8", GGUF_TYPE_UINT8, &u8), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.i8", GGUF_TYPE_INT8, &i8), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.u16", GGUF_TYPE_UINT16, &u16), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.i16", GGUF_TYPE_INT16, &i16), GHOST_OK);
    assert_int_equal(gguf_writer_add_u32(w, "t.u32", 4000000000u), GHOST_OK);
    assert_int_equal(gguf_writer_add_i32(w, "t.i32", -7), GHOST_OK);
    assert_int_equal(gguf_writer_add_u64(w, "t.u64", UINT64_MAX), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.i64", GGUF_TYPE_INT64, &i64), GHOST_OK);
    assert_int_equal(gguf_writer_add_f32(w, "t.f32", 1e-5f), GHOST_OK);
    assert_int_equal(gguf_writer_add_scalar(w, "t.f64", GGUF_TYPE_FLOAT64, &f64), GHOST_OK);
    assert_int_equal(gguf_writer_add_bool(w, "t.bool", true), GHOST_OK);
    assert_int_equal(gguf_writer_add_strn(w, "t.bin", "a\0b\n", 4), GHOST_OK);
    assert_int_equal(gguf_writer_add_str(w, "t.empty", ""), GHOST_OK);
    const int32_t ints[5] = {-1, 0, 1, 2, INT32_MAX};
    const float floats[3] = {0.25f, -1.5f, 3.0f};
    const char *strs[4] = {"<unk>", "", "h\xc3\xa9llo", "\xe2\x96\x81the"};
    assert_int_equal(gguf_writer_add_arr(w, "t.ints", GGUF_TYPE_INT32, ints, 5), GHOST_OK);
    assert_int_equal(gguf_writer_add_arr(w, "t.floats", GGUF_TYPE_FLOAT32, floats, 3), GHOST_OK);
    assert_int_equal(gguf_writer_add_arr(w, "t.none", GGUF_TYPE_UINT8, NULL, 0), GHOST_OK);
    assert_int_equal(gguf_writer_add_arr_str(w, "t.strs", strs, 4), GHOST_OK);
    static const struct {
        const char *name;
        uint32_t type, n_dims;
        int64_t ne[4];
        size_t nbytes;
    } ts[4] = {
        {"a.f32", GGML_TYPE_F32, 1, {7, 1, 1, 1}, 28},
        {"b.f16", GGML_TYPE_F16, 2, {3, 5, 1, 1}, 30},
        {"c.q8_0", GGML_TYPE_Q8_0, 3, {64, 2, 3, 1}, 2 * 6 * 34},
        {"d.q4_k", GGML_TYPE_Q4_K, 4, {256, 1, 2, 1}, 2 * 144},
    };
    for (int i = 0; i < 4; i++) {
        data[i] = malloc(ts[i].nbytes);
        fill_pattern(data[i], ts[i].nbytes, (uint32_t)i + 1);
        assert_int_equal(
            gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, data[i]),
            GHOST_OK);
    }
    return w;
}

static void check_everything(const gguf_file *f, uint8_t *data[4])
{
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b;
    gguf_str s;
    assert_int_equal(f->n_kv, 18);
    assert_int_equal(f->n_tensors, 4);
    assert_true(gguf_get_u32(f, "t.u8", &u32) && u32 == 200);
    assert_true(gguf_get_i32(f, "t.i8", &i32) && i32 == -5);
    assert_true(gguf_get_u32(f, "t.u16", &u32) && u32 == 60000);
    assert_true(gguf_get_i32(f, "t.i16", &i32) && i32 == -30000);
    assert_true(gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u);
    assert_true(gguf_get_i32(f, "t.i32", &i32) && i32 == -7);
    assert_true(gguf_get_u64(f, "t.u64", &u64) && u64 == UINT64_MAX);
    assert_true(gguf_get_u64(f, "t.i64", &u64) && u64 == 5000000000ull);
    assert_true(gguf_get_f32(f, "t.f32", &f32) && f32 == 1e-5f);
    assert_true(gguf_get_f32(f, "t.f64", &f32) && f32 == 0.5f);
    assert_true(gguf_get_bool(f, "t.bool", &b) && b);
    assert_true(gguf_get_str(f, "t.bin", &s) && s.len == 4 && memcmp(s.ptr, "a\0b\n", 4) == 0);
    assert_true(gguf_get_str(f, "t.empty", &s) && s.len == 0);
    uint64_t n;
    const gguf_kv *kv = gguf_get_arr(f, "t.ints", GGUF_TYPE_INT32, &n);
    assert_non_null(kv);
    assert_int_equal(n, 5);
    assert_int_equal(gguf_arr_i32(kv, 0), -1);
    assert_int_equal(gguf_arr_i32(kv, 4), INT32_MAX);
    assert_int_equal(gguf_arr_u32(kv, 3), 2);
    assert_true(gguf_arr_f32(kv, 0) == -1.0f);
    kv = gguf_get_arr(f, "t.floats", GGUF_TYPE_FLOAT32, &n);
    assert_non_null(kv);
    assert_true(gguf_arr_f32(kv, 1) == -1.5f);
    assert_non_null(gguf_get_arr(f, "t.none", GGUF_TYPE_UINT8, &n));
    assert_int_equal(n, 0);
    kv = gguf_get_arr(f, "t.strs", GGUF_TYPE_STRING, &n);
    assert_non_null(kv);
    assert_int_equal(n, 4);
    assert_true(gguf_str_eq(kv->strs[0], "<unk>"));
    assert_true(gguf_str_eq(kv->strs[1], ""));
    assert_true(gguf_str_eq(kv->strs[3], "\xe2\x96\x81the"));
    static const size_t sizes[4] = {28, 30, 2 * 6 * 34, 2 * 144};
    static const char *names[4] = {"a.f32", "b.f16", "c.q8_0", "d.q4_k"};
    for (int i = 0; i < 4; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, names[i]);
        assert_non_null(t);
        assert_int_equal(t->nbytes, sizes[i]);
        assert_int_equal(t->offset % f->alignment, 0);
        assert_memory_equal(t->data, data[i], sizes[i]);
    }
    check_tensors(f);
}

/* Writes w to memory (*buf, free with free(); it must outlive the file) and
 * opens the result. */
static gguf_file *write_and_open(gguf_writer *w, uint8_t **buf, size_t *size)
{
    assert_int_equal(gguf_writer_write_memory(w, buf, size), GHOST_OK);
    gguf_file *f = NULL;
    if (gguf_open_memory(*buf, *size, &f) != GHOST_OK)
        fail_msg("writer output does not load: %s", ghost_thread_errmsg());
    return f;
}

static void everything_destroy(gguf_writer *w, uint8_t *data[4])
{
    gguf_writer_destroy(w);
    for (int i = 0; i < 4; i++)
        free(data[i]);
}

static void test_writer_output_reads_back_exactly(void **state)
{
    uint8_t *data[4];
    gguf_writer *w = everything_writer(data);
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    assert_int_equal(size, gguf_writer_size(w));
    assert_int_equal(size % GGUF_DEFAULT_ALIGNMENT, 0); /* the last tensor is padded too */
    assert_int_equal(f->version, 3);
    assert_false(f->owns_map);
    check_everything(f, data);
    gguf_close(f);
    free(buf);
    everything_destroy(w, data);
}

static void test_writer_file_is_mapped_not_copied(void **state)
{
    uint8_t *data[4];
    gguf_writer *w = everything_writer(data);
    char path[] = "/tmp/ghost_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_writer_write_file(w, path), GHOST_OK);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, &f), GHOST_OK);
    assert_true(f->owns_map);
    check_everything(f, data);
    gguf_close(f);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, gguf_writer_size(w));
    unlink(path);
    everything_destroy(w, data);
}

static void test_version_2_files_are_accepted(void **state)
{
    uint8_t *data[4];
    gguf_writer *w = everything_writer(data);
    assert_int_equal(gguf_writer_set_version(w, 2), GHOST_OK);
    assert_int_not_equal(gguf_writer_set_version(w, 1), GHOST_OK);
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    assert_int_equal(f->version, 2);
    check_everything(f, data);
    gguf_close(f);
    free(buf);
    everything_destroy(w, data);
}

static void test_custom_alignment_places_tensors_on_it(void **state)
{
    gguf_writer *w = gguf_writer_create();
    assert_int_equal(gguf_writer_add_u32(w, "general.alignment", 256), GHOST_OK);
    float x[3] = {1, 2, 3};
    int64_t ne[1] = {3};
    assert_int_equal(gguf_writer_add_tensor(w, "x", GGML_TYPE_F32, 1, ne, x), GHOST_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "y", GGML_TYPE_F32, 1, ne, x), GHOST_OK);
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    assert_int_equal(f->alignment, 256);
    assert_int_equal(f->data_offset % 256, 0);
    assert_int_equal(gguf_find_tensor(f, "y")->offset, 256);
    assert_memory_equal(gguf_find_tensor(f, "y")->data, x, sizeof x);
    gguf_close(f);
    free(buf);
    gguf_writer_destroy(w);
}

/* Copying every kv of a real file through the writer gives the same bytes
 * for each value. */
static void test_writer_copies_a_real_files_metadata_exactly(void **state)
{
    gguf_file *src = NULL;
    assert_int_equal(gguf_open(MODELS "/vocab/ggml-vocab-llama-spm.gguf", &src), GHOST_OK);
    gguf_writer *w = gguf_writer_create();
    for (uint64_t i = 0; i < src->n_kv; i++)
        assert_int_equal(gguf_writer_copy_kv(w, &src->kv[i]), GHOST_OK);
    assert_int_not_equal(gguf_writer_copy_kv(w, &src->kv[0]), GHOST_OK); /* duplicate */
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    assert_int_equal(f->n_kv, src->n_kv);
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const gguf_kv *a = &src->kv[i], *b = &f->kv[i];
        assert_int_equal(a->key.len, b->key.len);
        assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
        assert_int_equal(a->type, b->type);
        if (a->type == GGUF_TYPE_STRING) {
            assert_int_equal(a->str.len, b->str.len);
            assert_memory_equal(a->str.ptr, b->str.ptr, a->str.len);
        } else if (a->type == GGUF_TYPE_ARRAY && a->arr_type == GGUF_TYPE_STRING) {
            assert_int_equal(a->arr_len, b->arr_len);
            for (uint64_t j = 0; j < a->arr_len; j++) {
                assert_int_equal(a->strs[j].len, b->strs[j].len);
                assert_memory_equal(a->strs[j].ptr, b->strs[j].ptr, a->strs[j].len);
            }
        } else if (a->type == GGUF_TYPE_ARRAY) {
            assert_int_equal(a->arr_type, b->arr_type);
            assert_int_equal(a->arr_len, b->arr_len);
            if (a->arr_len)
                assert_memory_equal(a->data, b->data, a->arr_len * gguf_type_size(a->arr_type));
        } else {
            assert_memory_equal(a->data, b->data, gguf_type_size(a->type));
        }
    }
    gguf_close(f);
    free(buf);
    gguf_writer_destroy(w);
    gguf_close(src);
}

static void test_writer_refuses_to_describe_invalid_files(void **state)
{
    gguf_writer *w = gguf_writer_create();
    float x[64] = {0};
    int64_t ne[2] = {33, 1}, zero[1] = {0}, ok[1] = {4};
    assert_int_equal(gguf_writer_add_u32(w, "k", 1), GHOST_OK);
    assert_int_equal(gguf_writer_add_u32(w, "k", 2), GHOST_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(ghost_thread_errmsg(), "added twice"));
    assert_int_equal(gguf_writer_add_u32(w, "", 2), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_u32(w, "general.alignment", 48), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_u64(w, "general.alignment", 64), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_arr(w, "a", GGUF_TYPE_ARRAY, x, 1),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_tensor(w, "q", GGML_TYPE_Q8_0, 2, ne, x),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(ghost_thread_errmsg(), "block size"));
    assert_int_equal(gguf_writer_add_tensor(w, "z", GGML_TYPE_F32, 1, zero, x),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_tensor(w, "t", GGML_TYPE_Q8_K, 1, ok, x),
                     GHOST_ERR_UNSUPPORTED);
    assert_int_equal(gguf_writer_add_tensor(w, "t", GGML_TYPE_F32, 5, ok, x),
                     GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(gguf_writer_add_tensor(w, "t", GGML_TYPE_F32, 1, ok, x), GHOST_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "t", GGML_TYPE_F32, 1, ok, x),
                     GHOST_ERR_INVALID_ARGUMENT);
    /* The failed adds left nothing behind: the file has 1 key, 1 tensor. */
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    assert_int_equal(f->n_kv, 1);
    assert_int_equal(f->n_tensors, 1);
    gguf_close(f);
    free(buf);
    gguf_writer_destroy(w);
}

/* Cutting a writer-built file anywhere before the end of its last tensor's
 * data fails cleanly; cuts inside the final padding still load. */
static void test_truncated_file_fails_cleanly_at_every_cut(void **state)
{
    uint8_t *data[4];
    gguf_writer *w = everything_writer(data);
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    size_t need = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        size_t end = (size_t)(f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes);
        need = end > need ? end : need;
    }
    gguf_close(f);
    for (size_t cut = 0; cut < size; cut++) {
        /* A fresh copy of exactly `cut` bytes, so ASan sees any over-read. */
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        f = NULL;
        ghost_status st = gguf_open_memory(p, cut, &f);
        if (cut < need) {
            if (st != GHOST_ERR_FORMAT || f != NULL)
                fail_msg("cut at %zu of %zu: status %d", cut, size, st);
            assert_non_null(strstr(ghost_thread_errmsg(), "offset"));
        } else {
            assert_int_equal(st, GHOST_OK);
            gguf_close(f);
        }
        free(p);
    }
    free(buf);
    everything_destroy(w, data);
}

/* ---- malformed headers and metadata ----------------------------------------------- */

static void test_wrong_magic_is_rejected(void **state)
{
    blob b = {0};
    b_header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_fail(&b, GHOST_ERR_FORMAT, "not a GGUF file", "GGML", "offset 0", NULL);
    b.len = 5;
    expect_fail(&b, GHOST_ERR_FORMAT, "not a GGUF file", NULL);
    free(b.p);
}

static void test_unsupported_versions_are_rejected_with_a_message(void **state)
{
    blob b = {0};
    b_bytes(&b, "GGUF", 4);
    b_u32(&b, 1);
    b_u32(&b, 0); /* v1: u32 counts */
    b_u32(&b, 0);
    expect_fail(&b, GHOST_ERR_UNSUPPORTED, "version 1 is not supported", "offset 4", NULL);
    uint32_t v = 4;
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, GHOST_ERR_UNSUPPORTED, "version 4", NULL);
    v = 0x03000000; /* a big-endian v3 file read little-endian */
    memcpy(b.p + 4, &v, 4);
    expect_fail(&b, GHOST_ERR_UNSUPPORTED, "big-endian", NULL);
    free(b.p);
}

static void test_empty_and_tiny_inputs_are_rejected(void **state)
{
    blob b = {0};
    expect_fail(&b, GHOST_ERR_FORMAT, "past end of file", NULL);
    b_bytes(&b, "GGUF", 4);
    b_u32(&b, 3);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor count", "past end of file", NULL);
    free(b.p);
}

static void test_counts_that_cannot_fit_the_file_are_rejected(void **state)
{
    blob b = {0};
    b_header(&b, 3, 0, UINT64_MAX / 2);
    b_kv_u32(&b, "a", 1);
    expect_fail(&b, GHOST_ERR_FORMAT, "cannot fit", "9223372036854775807 key/value", NULL);
    free(b.p);
    b = (blob){0};
    b_header(&b, 3, 1ull << 40, 0);
    b_zeros(&b, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "1099511627776 tensors", "cannot fit", NULL);
    free(b.p);
}

static void test_key_length_past_end_of_file_is_rejected(void **state)
{
    blob b = {0};
    b_header(&b, 3, 0, 1);
    b_u64(&b, 1000); /* key length */
    b_bytes(&b, "general.name", 12);
    b_zeros(&b, 8);
    expect_fail(&b, GHOST_ERR_FORMAT, "key #0", "key length 1000 runs past end of file",
                "offset 24", NULL);
    free(b.p);
}

static void test_empty_keys_and_keys_with_nul_bytes_are_rejected(void **state)
{
    blob b = kv_file("", GGUF_TYPE_UINT8);
    b_zeros(&b, 1);
    expect_fail(&b, GHOST_ERR_FORMAT, "key #0", "empty key", "offset 24", NULL);
    free(b.p);
    b = kv_file("a.b", GGUF_TYPE_UINT8);
    b_zeros(&b, 1);
    b.p[24 + 8 + 1] = '\0';
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'a?b'", "NUL byte in key", NULL);
    free(b.p);
}

static void test_string_length_past_end_of_file_is_rejected(void **state)
{
    blob b = kv_file("general.name", GGUF_TYPE_STRING);
    b_u64(&b, 1ull << 63);
    b_bytes(&b, "stories", 7);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'general.name'", "string length 9223372036854775808",
                "past end of file", "offset 48", NULL);
    free(b.p);
}

static void test_unknown_value_types_are_rejected(void **state)
{
    static const uint32_t bad[] = {GGUF_TYPE_COUNT, 0xffffffffu};
    for (size_t i = 0; i < 2; i++) {
        blob b = kv_file("k", bad[i]);
        b_zeros(&b, 16);
        char want[64];
        snprintf(want, sizeof want, "unknown value type %u", bad[i]);
        expect_fail(&b, GHOST_ERR_FORMAT, "key 'k'", want, "offset 33", NULL);
        free(b.p);
    }
}

static void test_nested_and_unknown_arrays_are_rejected(void **state)
{
    blob b = kv_file("nested", GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, GGUF_TYPE_UINT8);
    b_u64(&b, 1);
    b_zeros(&b, 1);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'nested'", "nested arrays", NULL);
    uint32_t t = 77;
    memcpy(b.p + 24 + 8 + 6 + 4, &t, 4);
    expect_fail(&b, GHOST_ERR_FORMAT, "unknown array element type 77", NULL);
    free(b.p);
}

/* A NaN in a float array has no integer value: the integer readers give 0
 * rather than convert it (undefined behaviour; found by fuzz_gguf, reachable
 * through tokenizer.ggml.token_type in a hostile file). */
static void test_nan_array_elements_read_as_integer_zero(void **state)
{
    (void)state;
    const float f32[4] = {NAN, -NAN, 1e30f, -1e30f};
    const double f64[1] = {NAN};
    gguf_kv kv = {.type = GGUF_TYPE_ARRAY, .arr_type = GGUF_TYPE_FLOAT32, .arr_len = 4};
    kv.data = (const uint8_t *)f32;
    for (uint64_t i = 0; i < 2; i++) {
        assert_int_equal(gguf_arr_i32(&kv, i), 0);
        assert_int_equal(gguf_arr_u32(&kv, i), 0);
        assert_true(isnan(gguf_arr_f32(&kv, i)));
    }
    assert_int_equal(gguf_arr_i32(&kv, 2), INT32_MAX);
    assert_int_equal(gguf_arr_i32(&kv, 3), INT32_MIN);
    assert_int_equal(gguf_arr_u32(&kv, 3), 0);
    kv = (gguf_kv){.type = GGUF_TYPE_ARRAY, .arr_type = GGUF_TYPE_FLOAT64, .arr_len = 1};
    kv.data = (const uint8_t *)f64;
    assert_int_equal(gguf_arr_i32(&kv, 0), 0);
    assert_int_equal(gguf_arr_u32(&kv, 0), 0);
}

static void test_array_length_times_element_size_overflow_is_rejected(void **state)
{
    blob b = kv_file("big", GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_UINT64);
    b_u64(&b, 1ull << 61); /* x 8 bytes wraps to 0 in 64 bits */
    b_zeros(&b, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'big'", "array of 2305843009213693952 UINT64",
                "past end of file", NULL);
    free(b.p);
}

static void test_huge_vocab_count_is_rejected_without_allocating(void **state)
{
    blob b = kv_file("tokenizer.ggml.tokens", GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 1ull << 40);
    b_str(&b, "<unk>");
    b_str(&b, "<s>");
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'tokenizer.ggml.tokens'",
                "array of 1099511627776 STRING", "past end of file", NULL);
    /* A plausible count whose strings run out: the element is named. */
    uint64_t n = 3;
    memcpy(b.p + 24 + 8 + 21 + 4 + 4, &n, 8);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'tokenizer.ggml.tokens'", "string 2 length", NULL);
    free(b.p);
}

static void test_duplicate_keys_are_rejected(void **state)
{
    blob b = {0};
    b_header(&b, 3, 0, 3);
    b_kv_u32(&b, "a.b", 1);
    b_kv_u32(&b, "c", 2);
    b_kv_u32(&b, "a.b", 3);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'a.b'", "duplicate key", "first defined at offset 24",
                "offset 60", NULL);
    free(b.p);
}

static void test_bool_values_other_than_0_or_1_are_rejected(void **state)
{
    blob b = kv_file("flag", GGUF_TYPE_BOOL);
    b_bytes(&b, "\x02", 1);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'flag'", "bool value 2", NULL);
    free(b.p);
}

static void test_bad_alignment_values_are_rejected(void **state)
{
    static const uint32_t bad[] = {0, 3, 48};
    for (size_t i = 0; i < 3; i++) {
        blob b = {0};
        b_header(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", bad[i]);
        expect_fail(&b, GHOST_ERR_FORMAT, "key 'general.alignment'", "not a non-zero power of two",
                    "offset 24", NULL);
        free(b.p);
    }
    blob b = kv_file("general.alignment", GGUF_TYPE_UINT64);
    b_u64(&b, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'general.alignment'", "type UINT64, expected UINT32",
                NULL);
    free(b.p);
}

/* ---- malformed tensors --------------------------------------------------------- */

static void test_tensor_n_dims_zero_or_above_four_is_rejected(void **state)
{
    uint64_t ne[5] = {4, 1, 1, 1, 1};
    blob b = one_tensor_file(0, ne, GGML_TYPE_F32, 0, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "n_dims 0 is out of range", "offset 33", NULL);
    free(b.p);
    b = one_tensor_file(5, ne, GGML_TYPE_F32, 0, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "n_dims 5", NULL);
    free(b.p);
}

static void test_zero_negative_and_overflowing_dims_are_rejected(void **state)
{
    uint64_t zero[2] = {4, 0};
    blob b = one_tensor_file(2, zero, GGML_TYPE_F32, 0, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "dimension 1 is 0", "offset 45", NULL);
    free(b.p);
    uint64_t neg[1] = {(uint64_t)-5};
    b = one_tensor_file(1, neg, GGML_TYPE_F32, 0, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "dimension 0 is negative (-5)", NULL);
    free(b.p);
    uint64_t huge[3] = {1ull << 32, 1ull << 32, 1ull << 32};
    b = one_tensor_file(3, huge, GGML_TYPE_F32, 0, 16);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "element count overflows at dimension 1", NULL);
    free(b.p);
}

static void test_absurd_dims_that_fit_in_64_bits_run_past_end_of_file(void **state)
{
    uint64_t ne[2] = {1ull << 30, 1ull << 20}; /* 2^52 bytes of F32 */
    blob b = one_tensor_file(2, ne, GGML_TYPE_F32, 0, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "+ 4503599627370496 bytes", "past end of file",
                NULL);
    free(b.p);
    /* 2^31 x 2^31 elements fit int64, but x 4 bytes does not fit 64 bits. */
    uint64_t wrap[2] = {1ull << 31, 1ull << 31};
    b = one_tensor_file(2, wrap, GGML_TYPE_F32, 0, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "size overflows", NULL);
    free(b.p);
    /* The row alone overflows: 2^62 F32 elements. */
    uint64_t row[1] = {1ull << 62};
    b = one_tensor_file(1, row, GGML_TYPE_F32, 0, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "size overflows", NULL);
    free(b.p);
}

static void test_unknown_tensor_type_lists_the_supported_types(void **state)
{
    uint64_t ne[1] = {256};
    blob b = one_tensor_file(1, ne, 99, 0, 1024);
    expect_fail(&b, GHOST_ERR_UNSUPPORTED, "tensor 'w'", "unsupported tensor type 99", "F32",
                "Q4_K", "IQ4_NL", "offset 45", NULL);
    free(b.p);
    b = one_tensor_file(1, ne, GGML_TYPE_Q8_K, 0, 1024);
    expect_fail(&b, GHOST_ERR_UNSUPPORTED, "type 15 (Q8_K)", NULL);
    free(b.p);
}

static void test_row_length_not_a_multiple_of_block_size_is_rejected(void **state)
{
    uint64_t ne[2] = {33, 2};
    blob b = one_tensor_file(2, ne, GGML_TYPE_Q8_0, 0, 128);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'",
                "row length 33 is not a multiple of the Q8_0 block size 32", NULL);
    free(b.p);
}

static void test_misaligned_tensor_offset_is_rejected(void **state)
{
    uint64_t ne[1] = {4};
    blob b = one_tensor_file(1, ne, GGML_TYPE_F32, 4, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'",
                "data offset 4 is not a multiple of the alignment 32", "offset 49", NULL);
    free(b.p);
}

static void test_tensor_data_past_end_of_file_is_rejected(void **state)
{
    uint64_t ne[1] = {4};
    blob b = one_tensor_file(1, ne, GGML_TYPE_F32, 1u << 20, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "data at offset 1048576 + 16 bytes",
                "past end of file", "file size 128", "offset 24", NULL);
    free(b.p);
    /* offset + nbytes would wrap around 2^64 */
    b = one_tensor_file(1, ne, GGML_TYPE_F32, UINT64_MAX - 31, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "past end of file", NULL);
    free(b.p);
    /* one byte short */
    b = one_tensor_file(1, ne, GGML_TYPE_F32, 0, 15);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'w'", "past end of file", NULL);
    free(b.p);
}

static void test_duplicate_and_empty_tensor_names_are_rejected(void **state)
{
    uint64_t ne[1] = {8};
    blob b = {0};
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "blk.0.w", 1, ne, GGML_TYPE_F32, 0);
    b_tensor(&b, "blk.0.w", 1, ne, GGML_TYPE_F32, 32);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'blk.0.w'", "duplicate tensor name",
                "first defined at offset 24", NULL);
    free(b.p);
    b = (blob){0};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "", 1, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 32);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor #0", "empty name", NULL);
    free(b.p);
    b = (blob){0};
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "x.y", 1, ne, GGML_TYPE_F32, 0);
    b.p[24 + 8 + 1] = '\0';
    b_pad(&b, 32);
    b_zeros(&b, 32);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'x?y'", "NUL byte in name", NULL);
    free(b.p);
}

static void test_overlapping_tensors_are_rejected(void **state)
{
    uint64_t ne[1] = {16}; /* 64 bytes each */
    blob b = {0};
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, ne, GGML_TYPE_F32, 0);
    b_tensor(&b, "b", 1, ne, GGML_TYPE_F32, 32);
    b_pad(&b, 32);
    b_zeros(&b, 128);
    expect_fail(&b, GHOST_ERR_FORMAT, "tensor 'b'", "data [32, 96) overlaps tensor 'a' [0, 64)",
                NULL);
    free(b.p);
}

static void test_hostile_names_are_sanitised_in_messages(void **state)
{
    blob b = kv_file(
        "evil\x1b[2J\nkey-with-a-very-long-name-that-goes-on-and-on-and-on-and-on-and-on", 99);
    expect_fail(&b, GHOST_ERR_FORMAT, "key 'evil?[2J?key-with", "...'", NULL);
    assert_null(strchr(ghost_thread_errmsg(), '\x1b'));
    assert_null(strchr(ghost_thread_errmsg(), '\n'));
    free(b.p);
}

/* ---- files and getters ------------------------------------------------------- */

static void test_missing_and_empty_files_report_the_path(void **state)
{
    gguf_file *f = (gguf_file *)1;
    assert_int_equal(gguf_open("/nonexistent/model.gguf", &f), GHOST_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(ghost_thread_errmsg(), "/nonexistent/model.gguf"));
    char path[] = "/tmp/ghost_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_open(path, &f), GHOST_ERR_FORMAT);
    assert_non_null(strstr(ghost_thread_errmsg(), path));
    assert_non_null(strstr(ghost_thread_errmsg(), "empty file"));
    /* A malformed file on disk: the message is the path, then what and where. */
    fd = open(path, O_WRONLY);
    assert_int_equal(write(fd, "GGUF\x01\0\0\0\0\0\0\0\0\0\0\0", 16), 16);
    close(fd);
    assert_int_equal(gguf_open(path, &f), GHOST_ERR_UNSUPPORTED);
    assert_non_null(strstr(ghost_thread_errmsg(), "version 1"));
    assert_true(strncmp(ghost_thread_errmsg(), path, strlen(path)) == 0);
    unlink(path);
    assert_int_equal(gguf_open(MODELS, &f), GHOST_ERR_IO); /* a directory */
}

static void test_typed_getters_convert_and_report_mismatches(void **state)
{
    uint8_t *data[4];
    gguf_writer *w = everything_writer(data);
    uint8_t *buf;
    size_t size;
    gguf_file *f = write_and_open(w, &buf, &size);
    uint32_t u32 = 0;
    int32_t i32 = 0;
    uint64_t u64 = 0;
    float f32;
    bool b;
    gguf_str s;
    assert_false(gguf_get_u32(f, "t.i8", &u32)); /* -5 */
    assert_non_null(strstr(ghost_thread_errmsg(), "key 't.i8': value -5 does not fit UINT32"));
    assert_false(gguf_get_u64(f, "t.i8", &u64));
    assert_false(gguf_get_u32(f, "t.i64", &u32)); /* 5e9 */
    assert_non_null(strstr(ghost_thread_errmsg(), "5000000000 does not fit UINT32"));
    assert_false(gguf_get_i32(f, "t.u32", &i32)); /* 4e9 */
    assert_false(gguf_get_u32(f, "t.str", &u32)); /* absent */
    assert_false(gguf_get_u32(f, "general.architecture", &u32));
    assert_non_null(strstr(ghost_thread_errmsg(),
                           "key 'general.architecture': type STRING, expected an integer"));
    assert_non_null(strstr(ghost_thread_errmsg(), "offset 24"));
    assert_false(gguf_get_f32(f, "t.u32", &f32));
    assert_non_null(strstr(ghost_thread_errmsg(), "expected FLOAT32 or FLOAT64"));
    assert_false(gguf_get_bool(f, "t.u8", &b));
    assert_false(gguf_get_str(f, "t.u8", &s));
    assert_null(gguf_get_arr(f, "t.ints", GGUF_TYPE_UINT32, &u64));
    assert_non_null(strstr(ghost_thread_errmsg(), "ARRAY of INT32, expected ARRAY of UINT32"));
    assert_null(gguf_get_arr(f, "t.u8", GGUF_TYPE_UINT8, &u64));
    assert_true(gguf_get_i32(f, "t.u8", &i32) && i32 == 200);
    assert_true(gguf_get_u64(f, "t.u32", &u64) && u64 == 4000000000u);
    assert_string_equal(gguf_type_name(GGUF_TYPE_STRING), "STRING");
    assert_string_equal(gguf_type_name((gguf_type)99), "UNKNOWN");
    gguf_close(f);
    free(buf);
    everything_destroy(w, data);
}

/* ---- resident memory ---------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    assert_non_null(fp);
    long pages = 0, resident = 0;
    assert_int_equal(fscanf(fp, "%ld %ld", &pages, &resident), 2);
    fclose(fp);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static ghost_status fill_ones(void *user, const char *name, void *dst, size_t nbytes)
{
    memset(dst, 0x3c, nbytes);
    ++*(int *)user;
    return GHOST_OK;
}

/* Opening validates the header only: the weights stay on disk until read,
 * and reading them maps the file's pages instead of copies. */
static void test_open_does_not_touch_tensor_data(void **state)
{
    enum { MIB = 1 << 20, ROWS = 48 };
    gguf_writer *w = gguf_writer_create();
    int calls = 0;
    int64_t ne[2] = {MIB / 4, ROWS}; /* 48 MiB of F32 */
    assert_int_equal(gguf_writer_add_tensor_fill(w, "big", GGML_TYPE_F32, 2, ne, fill_ones, &calls),
                     GHOST_OK);
    char path[] = "/tmp/ghost_gguf_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_writer_write_file(w, path), GHOST_OK);
    assert_int_equal(calls, 1);
    gguf_writer_destroy(w);

    long before = rss_kib();
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, &f), GHOST_OK);
    long after_open = rss_kib();
    const gguf_tensor *t = gguf_find_tensor(f, "big");
    assert_non_null(t);
    assert_int_equal(t->nbytes, (uint64_t)ROWS * MIB);
    if (after_open - before > 4096)
        fail_msg("opening grew resident memory by %ld KiB", after_open - before);
    unsigned sum = 0;
    for (size_t i = 0; i < t->nbytes; i += 4096)
        sum += ((const uint8_t *)t->data)[i];
    assert_int_equal(sum, 0x3c * (unsigned)(t->nbytes / 4096));
    long after_read = rss_kib();
    if (after_read - after_open < 40 * 1024)
        fail_msg("reading 48 MiB of weights grew resident memory by only %ld KiB: the "
                 "measurement is broken",
                 after_read - after_open);
    gguf_close(f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shared_model_and_vocab_file_loads),
        cmocka_unit_test(test_stories260k_metadata_and_tensors_read_back),
        cmocka_unit_test(test_truncated_real_model_fails_at_every_sampled_cut),
        cmocka_unit_test(test_writer_output_reads_back_exactly),
        cmocka_unit_test(test_writer_file_is_mapped_not_copied),
        cmocka_unit_test(test_version_2_files_are_accepted),
        cmocka_unit_test(test_custom_alignment_places_tensors_on_it),
        cmocka_unit_test(test_writer_copies_a_real_files_metadata_exactly),
        cmocka_unit_test(test_writer_refuses_to_describe_invalid_files),
        cmocka_unit_test(test_truncated_file_fails_cleanly_at_every_cut),
        cmocka_unit_test(test_wrong_magic_is_rejected),
        cmocka_unit_test(test_unsupported_versions_are_rejected_with_a_message),
        cmocka_unit_test(test_empty_and_tiny_inputs_are_rejected),
        cmocka_unit_test(test_counts_that_cannot_fit_the_file_are_rejected),
        cmocka_unit_test(test_key_length_past_end_of_file_is_rejected),
        cmocka_unit_test(test_empty_keys_and_keys_with_nul_bytes_are_rejected),
        cmocka_unit_test(test_string_length_past_end_of_file_is_rejected),
        cmocka_unit_test(test_unknown_value_types_are_rejected),
        cmocka_unit_test(test_nested_and_unknown_arrays_are_rejected),
        cmocka_unit_test(test_array_length_times_element_size_overflow_is_rejected),
        cmocka_unit_test(test_nan_array_elements_read_as_integer_zero),
        cmocka_unit_test(test_huge_vocab_count_is_rejected_without_allocating),
        cmocka_unit_test(test_duplicate_keys_are_rejected),
        cmocka_unit_test(test_bool_values_other_than_0_or_1_are_rejected),
        cmocka_unit_test(test_bad_alignment_values_are_rejected),
        cmocka_unit_test(test_tensor_n_dims_zero_or_above_four_is_rejected),
        cmocka_unit_test(test_zero_negative_and_overflowing_dims_are_rejected),
        cmocka_unit_test(test_absurd_dims_that_fit_in_64_bits_run_past_end_of_file),
        cmocka_unit_test(test_unknown_tensor_type_lists_the_supported_types),
        cmocka_unit_test(test_row_length_not_a_multiple_of_block_size_is_rejected),
        cmocka_unit_test(test_misaligned_tensor_offset_is_rejected),
        cmocka_unit_test(test_tensor_data_past_end_of_file_is_rejected),
        cmocka_unit_test(test_duplicate_and_empty_tensor_names_are_rejected),
        cmocka_unit_test(test_overlapping_tensors_are_rejected),
        cmocka_unit_test(test_hostile_names_are_sanitised_in_messages),
        cmocka_unit_test(test_missing_and_empty_files_report_the_path),
        cmocka_unit_test(test_typed_getters_convert_and_report_mismatches),
        cmocka_unit_test(test_open_does_not_touch_tensor_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
