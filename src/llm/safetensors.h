/*
 * safetensors.h — read-only access to Hugging Face safetensors files
 * (internal; the input of `ghostflow convert`).
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON ({"name": {"dtype": "F32", "shape": [r, c], "data_offsets": [b, e]},
 * "__metadata__": {...}}) and the data section the offsets are relative to.
 * st_open maps the file, parses the header with cJSON and validates every
 * entry before returning: known dtype name, shape of at most 4 non-negative
 * dimensions, offsets inside the data section and e - b equal to the
 * element count times the element size (every product checked for
 * overflow). Data pointers point into the map; nothing is copied.
 *
 * A model may be split over several files (model-0000x-of-0000y.safetensors
 * with model.safetensors.index.json): st_set_open opens every file of an HF
 * directory and looks tensors up across all of them.
 *
 * Errors: ghost_status codes with the per-thread message naming the file and
 * the tensor ("model.safetensors: tensor 'lm_head.weight': data_offsets
 * [0, 99] do not match shape [2048, 128] of F32 (1048576 bytes)").
 */
#ifndef GHOST_SAFETENSORS_H
#define GHOST_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"

#define ST_MAX_DIMS 4

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct st_tensor {
    char *name; /* NUL-terminated, owned by the st_file */
    st_dtype dtype;
    int n_dims;                 /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS]; /* row-major: shape[n_dims - 1] is contiguous */
    int64_t n_elements;
    const uint8_t *data; /* into the map */
    uint64_t nbytes;
} st_tensor;

typedef struct st_file {
    char *path;
    const uint8_t *map;
    size_t size;
    size_t n_tensors;
    st_tensor *tensors;
} st_file;

/* A directory's safetensors files (one, or the shards of an index). */
typedef struct st_set {
    size_t n_files;
    st_file **files;
} st_set;

const char *st_dtype_name(st_dtype t);

/* Maps and validates one file. On failure *out is NULL and the message is set. */
ghost_status st_open(const char *path, st_file **out);
/* Same over a caller-owned buffer that outlives the result (tests). */
ghost_status st_open_memory(const void *data, size_t size, const char *label, st_file **out);
void st_close(st_file *f);

/* Opens dir/model.safetensors, or every shard named by
 * dir/model.safetensors.index.json. Free with st_set_close. */
ghost_status st_set_open(const char *dir, st_set **out);
void st_set_close(st_set *s);
/* NULL when no file of the set has the tensor. */
const st_tensor *st_set_find(const st_set *s, const char *name);

/* Converts elements [first, first + n) of a F32, F16 or BF16 tensor to F32
 * (the caller checked the dtype with st_is_float and the range). */
void st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst);
int st_is_float(st_dtype t);

struct cJSON;
/* Reads and parses a whole JSON file (config.json, tokenizer.json, the shard
 * index); parse errors name the line and column. Free with cJSON_Delete. */
ghost_status st_load_json(const char *path, struct cJSON **out);

#endif
