/*
 * gguf.h — GGUF file access (internal).
 *
 * gguf_open maps a GGUF v2/v3 file read-only and validates all of it before
 * returning: magic, version, counts, every key/value (types, string and array
 * lengths), every tensor (name, dims, type, offset, alignment, size) and every
 * size computation against overflow and the end of the file. Afterwards the
 * accessors below can trust the data and never fail on bounds.
 *
 * Strings point into the map and are NOT NUL-terminated (gguf_str). Tensor
 * names are copied NUL-terminated for convenience. Tensor data pointers point
 * into the map: weights are never copied.
 *
 * Errors: gguf_open returns a ghost_status and records the message with
 * ghost_set_error ("key 'tokenizer.ggml.tokens': array length 4294967295 runs
 * past end of file (offset 1234, size 5678)").
 */
#ifndef GHOST_GGUF_H
#define GHOST_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

#define GGUF_MAX_DIMS          4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct gguf_str {
    const char *ptr; /* into the map; not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    /* Scalars: data points at the value in the map (little-endian, unaligned:
     * read with memcpy). Strings: str. Arrays: arr_type, arr_len, and either
     * data (first element, fixed-size types) or strs (arr_len entries, for
     * string arrays; owned by the gguf_file). Nested arrays are rejected. */
    const uint8_t *data;
    gguf_str str;
    gguf_type arr_type;
    uint64_t arr_len;
    gguf_str *strs;
} gguf_kv;

typedef struct gguf_tensor {
    char *name; /* NUL-terminated copy, owned by the gguf_file */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (contiguous); unused dims = 1 */
    uint32_t type;             /* a ggml type id (quant.h); validated as known */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;
    const void *data; /* into the map */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *map;
    size_t size;
    bool owns_map; /* false for gguf_open_memory */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset; /* start of the tensor data section */
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
} gguf_file;

/* Maps and validates path. On failure *out is NULL and the message is set. */
ghost_status gguf_open(const char *path, gguf_file **out);
/* Same over a caller-owned buffer that must outlive the result (tests, fuzzing). */
ghost_status gguf_open_memory(const void *data, size_t size, gguf_file **out);
void gguf_close(gguf_file *f);
/* Asks the kernel to start reading the tensor data section into the page
 * cache in the background (MADV_WILLNEED). It does not grow resident memory:
 * pages are mapped only when touched. Worth calling when the weights are
 * about to be used (model loading), not for metadata-only uses (`info`).
 * No-op for gguf_open_memory files. */
void gguf_prefetch(const gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: return true and set *out when key exists with a compatible
 * type (any integer type whose value fits, for the integer getters; F32 or
 * F64 for the float getter). False when absent; when present with a wrong
 * type they also return false and record a message naming the key. */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* An array of the given element type; *n gets the length. NULL otherwise. */
const gguf_kv *gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, uint64_t *n);

/* Element i of a fixed-size array (caller checked the type), read with memcpy.
 * The integer readers clamp to their range and give 0 for a NaN. */
int32_t gguf_arr_i32(const gguf_kv *kv, uint64_t i);
uint32_t gguf_arr_u32(const gguf_kv *kv, uint64_t i);
float gguf_arr_f32(const gguf_kv *kv, uint64_t i);

const char *gguf_type_name(gguf_type t);
/* Bytes of one value of a fixed-size type; 0 for STRING, ARRAY and unknown types. */
size_t gguf_type_size(gguf_type t);
bool gguf_str_eq(gguf_str s, const char *cstr);

#endif
