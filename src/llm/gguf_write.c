/*
 * gguf_write.c — the GGUF writer (see gguf_write.h for the layout written).
 *
 * Key/value pairs are serialized as they are added, into one growing buffer
 * in their final on-disk form; tensors are kept as descriptions (name, type,
 * shape, where the bytes come from) and placed only when the file is
 * written, so adding is cheap and the data offsets always follow the final
 * alignment. Every size is checked for overflow when it is computed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_write.h"
#include "llm_internal.h"
#include "quant.h"

typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* borrowed, or NULL when fill is set */
    gguf_fill_fn fill;
    void *user;
} wtensor;

struct gguf_writer {
    uint32_t version;
    uint64_t alignment;
    uint8_t *meta; /* serialized key/value pairs */
    size_t meta_len, meta_cap;
    char **keys; /* for duplicate checks */
    size_t n_kv, keys_cap;
    wtensor *tensors;
    size_t n_tensors, tensors_cap;
};

/* Grows an array to hold one more element of size `elem`. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? 2 * *cap : 16;
    void *p = nc > SIZE_MAX / elem ? NULL : realloc(*arr, nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

gguf_writer *gguf_writer_create(void)
{
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) {
        ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory");
        return NULL;
    }
    w->version = 3;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_destroy(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->meta);
    free(w);
}

ghost_status gguf_writer_set_version(gguf_writer *w, uint32_t version)
{
    if (!w || (version != 2 && version != 3))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: version %u (only 2 and 3 can be written)", version);
    w->version = version;
    return GHOST_OK;
}

/* ---- metadata ---------------------------------------------------------------- */

static bool put(gguf_writer *w, const void *p, size_t n)
{
    if (n > SIZE_MAX - w->meta_len)
        return false;
    if (w->meta_len + n > w->meta_cap) {
        size_t nc = w->meta_cap ? w->meta_cap : 256;
        while (nc < w->meta_len + n)
            nc = nc > SIZE_MAX / 2 ? w->meta_len + n : 2 * nc;
        uint8_t *m = realloc(w->meta, nc);
        if (!m)
            return false;
        w->meta = m;
        w->meta_cap = nc;
    }
    if (n)
        memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
    return true;
}

static bool put_u32(gguf_writer *w, uint32_t v)
{
    return put(w, &v, 4);
}
static bool put_u64(gguf_writer *w, uint64_t v)
{
    return put(w, &v, 8);
}
static bool put_str(gguf_writer *w, const char *s, uint64_t len)
{
    return put_u64(w, len) && put(w, s, (size_t)len);
}

bool gguf_writer_has_key(const gguf_writer *w, const char *key)
{
    for (size_t i = 0; w && key && i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return true;
    return false;
}

/* Checks the key and writes it and the type; the caller then writes the
 * value and calls end_kv (which undoes everything on failure). */
static ghost_status begin_kv(gguf_writer *w, const char *key, gguf_type type, size_t *mark)
{
    if (!w || !key || !*key)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf writer: %s",
                               !w ? "writer is NULL" : "empty or NULL key");
    if (gguf_writer_has_key(w, key))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf writer: key '%.64s' added twice",
                               key);
    if (strcmp(key, "general.alignment") == 0 && type != GGUF_TYPE_UINT32)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key 'general.alignment' must be UINT32, not %s",
                               gguf_type_name(type));
    if (!grow((void **)&w->keys, &w->keys_cap, w->n_kv, sizeof *w->keys))
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory");
    *mark = w->meta_len;
    if (!put_str(w, key, strlen(key)) || !put_u32(w, (uint32_t)type))
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory");
    return GHOST_OK;
}

static ghost_status end_kv(gguf_writer *w, const char *key, size_t mark, bool ok)
{
    char *copy = ok ? strdup(key) : NULL;
    if (!copy) {
        w->meta_len = mark;
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory adding key '%.64s'",
                               key);
    }
    w->keys[w->n_kv++] = copy;
    return GHOST_OK;
}

ghost_status gguf_writer_add_scalar(gguf_writer *w, const char *key, gguf_type type,
                                    const void *value)
{
    size_t n = gguf_type_size(type);
    if (n == 0 || !value)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key '%.64s': %s is not a fixed-size scalar type",
                               key ? key : "(null)", gguf_type_name(type));
    if (type == GGUF_TYPE_BOOL && *(const uint8_t *)value > 1)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key '%.64s': bool value %u is not 0 or 1",
                               key ? key : "(null)", *(const uint8_t *)value);
    uint32_t align = 0;
    bool is_align = key && strcmp(key, "general.alignment") == 0;
    if (is_align && type == GGUF_TYPE_UINT32) {
        memcpy(&align, value, 4);
        if (align == 0 || (align & (align - 1)) != 0)
            return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                                   "gguf writer: general.alignment %u is not a non-zero power "
                                   "of two",
                                   align);
    }
    size_t mark;
    ghost_status st = begin_kv(w, key, type, &mark);
    if (st != GHOST_OK)
        return st;
    if ((st = end_kv(w, key, mark, put(w, value, n))) == GHOST_OK && is_align)
        w->alignment = align;
    return st;
}

ghost_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return gguf_writer_add_scalar(w, key, GGUF_TYPE_UINT32, &v);
}

ghost_status gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v)
{
    return gguf_writer_add_scalar(w, key, GGUF_TYPE_INT32, &v);
}

ghost_status gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return gguf_writer_add_scalar(w, key, GGUF_TYPE_UINT64, &v);
}

ghost_status gguf_writer_add_f32(gguf_writer *w, const char *key, float v)
{
    return gguf_writer_add_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}

ghost_status gguf_writer_add_bool(gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return gguf_writer_add_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

ghost_status gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len)
{
    if (!s && len)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key '%.64s': string is NULL", key ? key : "(null)");
    size_t mark;
    ghost_status st = begin_kv(w, key, GGUF_TYPE_STRING, &mark);
    return st != GHOST_OK ? st : end_kv(w, key, mark, put_str(w, s, len));
}

ghost_status gguf_writer_add_str(gguf_writer *w, const char *key, const char *s)
{
    return gguf_writer_add_strn(w, key, s, s ? strlen(s) : 0);
}

ghost_status gguf_writer_add_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data,
                                 uint64_t n)
{
    size_t es = gguf_type_size(elem);
    if (es == 0 || (!data && n) || n > SIZE_MAX / es)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key '%.64s': cannot write an array of %llu %s",
                               key ? key : "(null)", (unsigned long long)n, gguf_type_name(elem));
    if (elem == GGUF_TYPE_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                                       "gguf writer: key '%.64s': bool element %llu is not 0 or 1",
                                       key ? key : "(null)", (unsigned long long)i);
    size_t mark;
    ghost_status st = begin_kv(w, key, GGUF_TYPE_ARRAY, &mark);
    if (st != GHOST_OK)
        return st;
    return end_kv(w, key, mark,
                  put_u32(w, (uint32_t)elem) && put_u64(w, n) && put(w, data, (size_t)(n * es)));
}

/* String arrays from either representation: get(i) yields element i. */
static ghost_status add_arr_strings(gguf_writer *w, const char *key, uint64_t n,
                                    gguf_str (*get)(const void *, uint64_t), const void *src)
{
    if (!src && n)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: key '%.64s': string array is NULL",
                               key ? key : "(null)");
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = get(src, i);
        if (!s.ptr && s.len)
            return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                                   "gguf writer: key '%.64s': string %llu is NULL",
                                   key ? key : "(null)", (unsigned long long)i);
    }
    size_t mark;
    ghost_status st = begin_kv(w, key, GGUF_TYPE_ARRAY, &mark);
    if (st != GHOST_OK)
        return st;
    bool ok = put_u32(w, GGUF_TYPE_STRING) && put_u64(w, n);
    for (uint64_t i = 0; ok && i < n; i++) {
        gguf_str s = get(src, i);
        ok = put_str(w, s.ptr, s.len);
    }
    return end_kv(w, key, mark, ok);
}

static gguf_str get_cstr(const void *src, uint64_t i)
{
    const char *s = ((const char *const *)src)[i];
    return (gguf_str){s, s ? strlen(s) : 0};
}

static gguf_str get_gstr(const void *src, uint64_t i)
{
    return ((const gguf_str *)src)[i];
}

ghost_status gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                     uint64_t n)
{
    return add_arr_strings(w, key, n, get_cstr, strs);
}

ghost_status gguf_writer_add_arr_strn(gguf_writer *w, const char *key, const gguf_str *strs,
                                      uint64_t n)
{
    return add_arr_strings(w, key, n, get_gstr, strs);
}

ghost_status gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv)
{
    if (!kv || !kv->key.ptr || kv->key.len == 0 || memchr(kv->key.ptr, '\0', kv->key.len))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf writer: bad key to copy");
    char *key = strndup(kv->key.ptr, kv->key.len);
    if (!key)
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory");
    ghost_status st;
    if (kv->type == GGUF_TYPE_STRING)
        st = gguf_writer_add_strn(w, key, kv->str.ptr, kv->str.len);
    else if (kv->type == GGUF_TYPE_ARRAY && kv->arr_type == GGUF_TYPE_STRING)
        st = gguf_writer_add_arr_strn(w, key, kv->strs, kv->arr_len);
    else if (kv->type == GGUF_TYPE_ARRAY)
        st = gguf_writer_add_arr(w, key, kv->arr_type, kv->data, kv->arr_len);
    else
        st = gguf_writer_add_scalar(w, key, kv->type, kv->data);
    free(key);
    return st;
}

/* ---- tensors ----------------------------------------------------------------- */

static ghost_status add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const int64_t *ne, const void *data, gguf_fill_fn fill, void *user)
{
    if (!w || !name || !*name || !ne || (!data && !fill))
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: tensor '%.64s': missing name, shape or data",
                               name ? name : "(null)");
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                                   "gguf writer: tensor '%.64s' added twice", name);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: tensor '%.64s': n_dims %u is out of range 1..%d", name,
                               n_dims, GGUF_MAX_DIMS);
    const quant_type_info *qi = quant_info(type);
    if (!qi || !qi->is_weight_type)
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "gguf writer: tensor '%.64s': unsupported type %u (supported: %s)",
                               name, type, quant_supported_list());
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fill = fill, .user = user};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1 || (d > 0 && (uint64_t)t.ne[d] > UINT64_MAX / rows))
            return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                                   "gguf writer: tensor '%.64s': dimension %u (%lld) is out of "
                                   "range",
                                   name, d, (long long)t.ne[d]);
        if (d > 0)
            rows *= (uint64_t)t.ne[d];
    }
    if (t.ne[0] % qi->block_size != 0)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: tensor '%.64s': row length %lld is not a multiple "
                               "of the %s block size %lld",
                               name, (long long)t.ne[0], qi->name, (long long)qi->block_size);
    uint64_t blocks = (uint64_t)(t.ne[0] / qi->block_size);
    uint64_t row = blocks <= UINT64_MAX / qi->type_size ? blocks * qi->type_size : 0;
    if (row == 0 || rows > (uint64_t)INT64_MAX / row || rows > SIZE_MAX / row)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf writer: tensor '%.64s': size overflows", name);
    t.nbytes = row * rows;
    if (!grow((void **)&w->tensors, &w->tensors_cap, w->n_tensors, sizeof *w->tensors) ||
        !(t.name = strdup(name)))
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory");
    w->tensors[w->n_tensors++] = t;
    return GHOST_OK;
}

ghost_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data)
{
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

ghost_status gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const int64_t *ne, gguf_fill_fn fill,
                                         void *user)
{
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, user);
}

/* ---- output ------------------------------------------------------------------ */

static uint64_t pad_to(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

/* Bytes of the header up to the end of the tensor infos. */
static uint64_t header_size(const gguf_writer *w)
{
    uint64_t n = 24 + w->meta_len;
    for (size_t i = 0; i < w->n_tensors; i++)
        n += 8 + strlen(w->tensors[i].name) + 4 + 8ull * w->tensors[i].n_dims + 4 + 8;
    return n;
}

uint64_t gguf_writer_size(const gguf_writer *w)
{
    if (!w)
        return 0;
    uint64_t n = pad_to(header_size(w), w->alignment);
    for (size_t i = 0; i < w->n_tensors; i++)
        n += pad_to(w->tensors[i].nbytes, w->alignment);
    return n;
}

/* Where the bytes go: a memory buffer (mem) or a stream (fp). */
typedef struct sink {
    uint8_t *mem;
    FILE *fp;
    uint64_t pos;
    const char *where;
} sink;

static ghost_status sink_put(sink *s, const void *p, size_t n)
{
    if (n == 0)
        return GHOST_OK;
    if (s->mem) {
        memcpy(s->mem + s->pos, p, n);
    } else if (fwrite(p, 1, n, s->fp) != n) {
        return ghost_set_error(GHOST_ERR_IO, "%s: write failed at offset %llu: %s", s->where,
                               (unsigned long long)s->pos, strerror(errno));
    }
    s->pos += n;
    return GHOST_OK;
}

static ghost_status sink_pad(sink *s, uint64_t align)
{
    static const uint8_t zeros[64];
    ghost_status st = GHOST_OK;
    while (st == GHOST_OK && s->pos % align != 0) {
        uint64_t n = align - s->pos % align;
        st = sink_put(s, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
    }
    return st;
}

static ghost_status emit(const gguf_writer *w, sink *s)
{
    uint8_t head[24];
    uint64_t nt = w->n_tensors, nkv = w->n_kv;
    memcpy(head, "GGUF", 4);
    memcpy(head + 4, &w->version, 4);
    memcpy(head + 8, &nt, 8);
    memcpy(head + 16, &nkv, 8);
    ghost_status st = sink_put(s, head, sizeof head);
    if (st == GHOST_OK)
        st = sink_put(s, w->meta, w->meta_len);
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors && st == GHOST_OK; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name), ne[GGUF_MAX_DIMS];
        for (uint32_t d = 0; d < t->n_dims; d++)
            ne[d] = (uint64_t)t->ne[d];
        if ((st = sink_put(s, &len, 8)) == GHOST_OK &&
            (st = sink_put(s, t->name, len)) == GHOST_OK &&
            (st = sink_put(s, &t->n_dims, 4)) == GHOST_OK &&
            (st = sink_put(s, ne, 8 * t->n_dims)) == GHOST_OK &&
            (st = sink_put(s, &t->type, 4)) == GHOST_OK)
            st = sink_put(s, &offset, 8);
        offset += pad_to(t->nbytes, w->alignment);
    }
    if (st == GHOST_OK)
        st = sink_pad(s, w->alignment);
    /* Fill callbacks write straight into a memory sink; a file sink needs
     * one scratch buffer, as large as the largest such tensor. */
    void *scratch = NULL;
    if (!s->mem) {
        uint64_t most = 0;
        for (size_t i = 0; i < w->n_tensors; i++)
            if (w->tensors[i].fill && w->tensors[i].nbytes > most)
                most = w->tensors[i].nbytes;
        if (most && st == GHOST_OK && !(scratch = malloc((size_t)most)))
            st = ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory for %llu bytes of tensor data",
                                 s->where, (unsigned long long)most);
    }
    for (size_t i = 0; i < w->n_tensors && st == GHOST_OK; i++) {
        const wtensor *t = &w->tensors[i];
        if (t->fill && s->mem) {
            if ((st = t->fill(t->user, t->name, s->mem + s->pos, (size_t)t->nbytes)) != GHOST_OK)
                break;
            s->pos += t->nbytes;
        } else if (t->fill) {
            if ((st = t->fill(t->user, t->name, scratch, (size_t)t->nbytes)) == GHOST_OK)
                st = sink_put(s, scratch, (size_t)t->nbytes);
        } else {
            st = sink_put(s, t->data, (size_t)t->nbytes);
        }
        if (st == GHOST_OK)
            st = sink_pad(s, w->alignment);
    }
    free(scratch);
    return st;
}

ghost_status gguf_writer_write_memory(gguf_writer *w, uint8_t **out, size_t *size)
{
    if (!w || !out || !size)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT,
                               "gguf_writer_write_memory: NULL argument");
    *out = NULL;
    *size = 0;
    uint64_t total = gguf_writer_size(w);
    if (total > SIZE_MAX)
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: %llu bytes do not fit in memory",
                               (unsigned long long)total);
    sink s = {.mem = malloc(total ? (size_t)total : 1), .where = "gguf writer"};
    if (!s.mem)
        return ghost_set_error(GHOST_ERR_NOMEM, "gguf writer: out of memory for %llu bytes",
                               (unsigned long long)total);
    ghost_status st = emit(w, &s);
    if (st != GHOST_OK) {
        free(s.mem);
        return st;
    }
    *out = s.mem;
    *size = (size_t)total;
    return GHOST_OK;
}

ghost_status gguf_writer_write_file(gguf_writer *w, const char *path)
{
    if (!w || !path)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "gguf_writer_write_file: NULL argument");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ghost_status st = ghost_set_error(GHOST_ERR_IO, "%s: cannot create a temporary file: %s",
                                          path, strerror(errno));
        free(tmp);
        return st;
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return ghost_set_error(GHOST_ERR_IO, "%s: fdopen failed: %s", path, strerror(errno));
    }
    sink s = {.fp = fp, .where = path};
    ghost_status st = emit(w, &s);
    if (st == GHOST_OK && (fflush(fp) != 0 || fsync(fd) != 0))
        st = ghost_set_error(GHOST_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    /* mkstemp creates 0600; a model file is meant to be shared like any other. */
    if (st == GHOST_OK && fchmod(fd, 0644) != 0)
        st = ghost_set_error(GHOST_ERR_IO, "%s: chmod failed: %s", path, strerror(errno));
    if (fclose(fp) != 0 && st == GHOST_OK)
        st = ghost_set_error(GHOST_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == GHOST_OK && rename(tmp, path) != 0)
        st = ghost_set_error(GHOST_ERR_IO, "%s: rename from %s failed: %s", path, tmp,
                             strerror(errno));
    if (st != GHOST_OK)
        unlink(tmp);
    free(tmp);
    return st;
}
