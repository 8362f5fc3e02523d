/*
 * safetensors.c — validating reader of Hugging Face safetensors files (see
 * safetensors.h for the format and the checks), plus the small JSON file
 * loader the converter shares for config.json and tokenizer.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "llm_internal.h"
#include "quant.h"
#include "safetensors.h"

/* A header larger than this is not a model header (HF caps it at 100 MB). */
#define ST_MAX_HEADER (100u << 20)
/* Longest JSON side file we read (tokenizer.json of a 150k vocab is ~7 MB). */
#define JSON_MAX_FILE (256u << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},   [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(st_dtype t)
{
    return t < ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

int st_is_float(st_dtype t)
{
    return t == ST_F32 || t == ST_F16 || t == ST_BF16;
}

/* ---- whole-file reads --------------------------------------------------------- */

/* Reads path into a NUL-terminated buffer (free with free). */
static ghost_status read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return ghost_set_error(GHOST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return ghost_set_error(GHOST_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(fp);
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: %lld bytes is larger than the %zu allowed",
                               path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (buf == NULL) {
        fclose(fp);
        return ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(buf);
        return ghost_set_error(GHOST_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return GHOST_OK;
}

/* 1-based line and column of byte offset off in text, for parse errors. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

ghost_status st_load_json(const char *path, cJSON **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    ghost_status rc = read_file(path, JSON_MAX_FILE, &text, &len);
    if (rc != GHOST_OK)
        return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        int line, col;
        size_t off = end != NULL && end >= text ? (size_t)(end - text) : 0;
        line_col(text, off, &line, &col);
        free(text);
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: invalid JSON at line %d, column %d", path,
                               line, col);
    }
    free(text);
    *out = root;
    return GHOST_OK;
}

/* ---- header validation ------------------------------------------------------ */

static ghost_status bad(const st_file *f, const char *tname, const char *fmt, const char *detail)
{
    return ghost_set_error(GHOST_ERR_FORMAT, "%s: tensor '%.80s': %s%s", f->path, tname, fmt,
                           detail ? detail : "");
}

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0)
            return i;
    return -1;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_u53(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static ghost_status parse_entry(st_file *f, const cJSON *e, const uint8_t *data, uint64_t data_size,
                                st_tensor *t)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return bad(f, name, "entry is not an object", NULL);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return bad(f, name, "missing or non-string \"dtype\"", NULL);
    int d = dtype_from_name(dt->valuestring);
    if (d < 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "'%.20s'", dt->valuestring);
        return bad(f, name, "unknown dtype ", msg);
    }
    t->dtype = (st_dtype)d;
    if (!cJSON_IsArray(shape))
        return bad(f, name, "missing or non-array \"shape\"", NULL);
    int nd = cJSON_GetArraySize(shape);
    if (nd > ST_MAX_DIMS)
        return bad(f, name, "more than 4 dimensions", NULL);
    t->n_dims = nd;
    uint64_t count = 1;
    int i = 0;
    for (const cJSON *s = shape->child; s != NULL; s = s->next, i++) {
        uint64_t v;
        if (!json_u53(s, &v) || v > INT64_MAX)
            return bad(f, name, "shape entry is not a non-negative integer", NULL);
        if (v != 0 && count > UINT64_MAX / v)
            return bad(f, name, "element count overflows", NULL);
        count *= v;
        t->shape[i] = (int64_t)v;
    }
    for (; i < ST_MAX_DIMS; i++)
        t->shape[i] = 1;
    if (count > (uint64_t)INT64_MAX / 8)
        return bad(f, name, "element count overflows", NULL);
    t->n_elements = (int64_t)count;
    uint64_t b, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_u53(offs->child, &b) ||
        !json_u53(offs->child->next, &end))
        return bad(f, name, "\"data_offsets\" is not a pair of non-negative integers", NULL);
    if (b > end || end > data_size) {
        char msg[128];
        snprintf(msg, sizeof msg, "[%llu, %llu] outside the data section (%llu bytes)",
                 (unsigned long long)b, (unsigned long long)end, (unsigned long long)data_size);
        return bad(f, name, "data_offsets ", msg);
    }
    uint64_t want = count * dtypes[d].size;
    if (end - b != want) {
        char msg[128];
        snprintf(msg, sizeof msg, "[%llu, %llu] hold %llu bytes but the shape needs %llu",
                 (unsigned long long)b, (unsigned long long)end, (unsigned long long)(end - b),
                 (unsigned long long)want);
        return bad(f, name, "data_offsets ", msg);
    }
    t->data = data + b;
    t->nbytes = want;
    t->name = strdup(name);
    if (t->name == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory", f->path);
    return GHOST_OK;
}

static ghost_status parse_header(st_file *f)
{
    if (f->size < 8)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "%s: %zu bytes is too short for a safetensors file", f->path,
                               f->size);
    uint64_t hlen;
    memcpy(&hlen, f->map, 8);
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8)
        return ghost_set_error(GHOST_ERR_FORMAT,
                               "%s: header length %llu runs past the end of the file (size %zu)",
                               f->path, (unsigned long long)hlen, f->size);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)f->map + 8, (size_t)hlen, &end, 0);
    if (root == NULL) {
        size_t off = end != NULL ? (size_t)(end - (const char *)f->map) : 8;
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: header is not valid JSON (at byte %zu)",
                               f->path, off);
    }
    ghost_status rc = GHOST_OK;
    if (!cJSON_IsObject(root)) {
        rc = ghost_set_error(GHOST_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto out;
    }
    size_t n = 0;
    for (const cJSON *e = root->child; e != NULL; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0)
            n++;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (f->tensors == NULL) {
        rc = ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory", f->path);
        goto out;
    }
    const uint8_t *data = f->map + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    for (const cJSON *e = root->child; e != NULL; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        rc = parse_entry(f, e, data, data_size, &f->tensors[f->n_tensors]);
        if (rc != GHOST_OK)
            goto out;
        f->n_tensors++;
    }
out:
    cJSON_Delete(root);
    return rc;
}

static ghost_status st_new(const char *label, st_file **out)
{
    st_file *f = calloc(1, sizeof *f);
    if (f != NULL)
        f->path = strdup(label);
    if (f == NULL || f->path == NULL) {
        free(f);
        return ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory", label);
    }
    *out = f;
    return GHOST_OK;
}

ghost_status st_open_memory(const void *data, size_t size, const char *label, st_file **out)
{
    *out = NULL;
    st_file *f;
    ghost_status rc = st_new(label, &f);
    if (rc != GHOST_OK)
        return rc;
    f->map = data;
    f->size = size;
    rc = parse_header(f);
    f->map = NULL; /* not ours to unmap */
    if (rc != GHOST_OK) {
        st_close(f);
        return rc;
    }
    *out = f;
    return GHOST_OK;
}

ghost_status st_open(const char *path, st_file **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ghost_set_error(GHOST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ghost_set_error(GHOST_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return ghost_set_error(GHOST_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
    }
    close(fd);
    st_file *f;
    ghost_status rc = st_new(path, &f);
    if (rc != GHOST_OK) {
        if (map != NULL)
            munmap(map, size);
        return rc;
    }
    f->map = map;
    f->size = size;
    rc = parse_header(f);
    if (rc != GHOST_OK) {
        st_close(f);
        return rc;
    }
    *out = f;
    return GHOST_OK;
}

void st_close(st_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    if (f->map != NULL && f->size > 0)
        munmap((void *)f->map, f->size);
    free(f->path);
    free(f);
}

/* ---- a directory of shards ---------------------------------------------------- */

static ghost_status set_add(st_set *s, const char *dir, const char *file)
{
    for (size_t i = 0; i < s->n_files; i++) {
        const char *p = strrchr(s->files[i]->path, '/');
        if (strcmp(p ? p + 1 : s->files[i]->path, file) == 0)
            return GHOST_OK;
    }
    if (strchr(file, '/') != NULL || strcmp(file, "..") == 0)
        return ghost_set_error(GHOST_ERR_FORMAT, "%s: shard name '%.80s' is not a plain file name",
                               dir, file);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    st_file **grown = realloc(s->files, (s->n_files + 1) * sizeof *grown);
    if (grown == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "%s: out of memory", dir);
    s->files = grown;
    ghost_status rc = st_open(path, &s->files[s->n_files]);
    if (rc == GHOST_OK)
        s->n_files++;
    return rc;
}

ghost_status st_set_open(const char *dir, st_set **out)
{
    *out = NULL;
    st_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ghost_set_error(GHOST_ERR_NOMEM, "out of memory");
    char path[PATH_MAX];
    ghost_status rc;
    if ((size_t)snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir) >=
        sizeof path) {
        rc = ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
        goto fail;
    }
    if (access(path, F_OK) == 0) {
        cJSON *idx;
        rc = st_load_json(path, &idx);
        if (rc != GHOST_OK)
            goto fail;
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
        if (!cJSON_IsObject(map) || map->child == NULL) {
            cJSON_Delete(idx);
            rc = ghost_set_error(GHOST_ERR_FORMAT, "%s: no \"weight_map\" object", path);
            goto fail;
        }
        for (const cJSON *e = map->child; e != NULL && rc == GHOST_OK; e = e->next) {
            if (!cJSON_IsString(e))
                rc = ghost_set_error(GHOST_ERR_FORMAT,
                                     "%s: weight_map entry '%.80s' is not a string", path,
                                     e->string);
            else
                rc = set_add(s, dir, e->valuestring);
        }
        cJSON_Delete(idx);
    } else {
        rc = set_add(s, dir, "model.safetensors");
    }
    if (rc != GHOST_OK)
        goto fail;
    *out = s;
    return GHOST_OK;
fail:
    st_set_close(s);
    return rc;
}

void st_set_close(st_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_files; i++)
        st_close(s->files[i]);
    free(s->files);
    free(s);
}

const st_tensor *st_set_find(const st_set *s, const char *name)
{
    for (size_t i = 0; i < s->n_files; i++)
        for (size_t j = 0; j < s->files[i]->n_tensors; j++)
            if (strcmp(s->files[i]->tensors[j].name, name) == 0)
                return &s->files[i]->tensors[j];
    return NULL;
}

void st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst)
{
    const uint8_t *p = t->data + (size_t)first * dtypes[t->dtype].size;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, p, (size_t)n * sizeof(float)); break;
    case ST_F16:
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? quant_f16_to_f32(h) : quant_bf16_to_f32(h);
        }
        break;
    default: break; /* callers check st_is_float first */
    }
}
