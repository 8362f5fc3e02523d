/*
 * gguf_write.h — building GGUF v3 (or v2) files (internal).
 *
 * A gguf_writer collects metadata and tensor descriptions, then writes the
 * whole file in one call, to memory or to disk. It is what `ghostflow
 * quantize/convert/synth` produce files with, and what the tests build valid
 * and (after patching bytes) malformed files with.
 *
 *   gguf_writer *w = gguf_writer_create();
 *   gguf_writer_add_str(w, "general.architecture", "llama");
 *   gguf_writer_add_tensor(w, "token_embd.weight", GGML_TYPE_F32, 2, ne, data);
 *   gguf_writer_write_file(w, "out.gguf");
 *   gguf_writer_destroy(w);
 *
 * Layout written: the header, keys in the order added, tensor infos in the
 * order added, padding to the alignment, then each tensor's data padded to
 * the alignment (the last one too, as llama.cpp writes it). The alignment is
 * GGUF_DEFAULT_ALIGNMENT unless a "general.alignment" key is added (UINT32,
 * a non-zero power of two).
 *
 * The writer refuses to describe an invalid file: empty or duplicate keys and
 * tensor names, unknown value types, nested arrays, n_dims outside 1..4,
 * dimensions < 1, tensor types that are not weight types, rows that are not
 * a multiple of the block size, sizes that overflow.
 *
 * Errors: functions return a ghost_status; the message is kept per thread
 * (ghost_errmsg(NULL) / ghost_thread_errmsg()). A failed add leaves the
 * writer as it was. Keys, strings and names are copied; tensor data is
 * borrowed (see gguf_writer_add_tensor).
 */
#ifndef GHOST_GGUF_WRITE_H
#define GHOST_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "gguf.h"

typedef struct gguf_writer gguf_writer;

/* An empty writer (version 3). NULL when out of memory (per-thread message).
 * Free with gguf_writer_destroy (NULL is a no-op). */
gguf_writer *gguf_writer_create(void);
void gguf_writer_destroy(gguf_writer *w);

/* 2 or 3 (the default). The two versions share one layout. */
ghost_status gguf_writer_set_version(gguf_writer *w, uint32_t version);

/* ---- metadata ------------------------------------------------------------- */

/* A scalar of a fixed-size type (not STRING or ARRAY); value points at it in
 * host (little-endian) representation. */
ghost_status gguf_writer_add_scalar(gguf_writer *w, const char *key, gguf_type type,
                                    const void *value);
ghost_status gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
ghost_status gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
ghost_status gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
ghost_status gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
ghost_status gguf_writer_add_bool(gguf_writer *w, const char *key, bool v);
ghost_status gguf_writer_add_str(gguf_writer *w, const char *key, const char *s);
/* A string of len bytes (may hold any bytes, NUL included). */
ghost_status gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len);
/* An array of n elements of fixed-size type elem (not STRING or ARRAY),
 * packed at data. */
ghost_status gguf_writer_add_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data,
                                 uint64_t n);
/* An array of n NUL-terminated strings. */
ghost_status gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                     uint64_t n);
/* An array of n strings given as gguf_str (pointer + length). */
ghost_status gguf_writer_add_arr_strn(gguf_writer *w, const char *key, const gguf_str *strs,
                                      uint64_t n);
/* A copy of a key/value pair read from another file (same key and type). */
ghost_status gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* True when key was already added. */
bool gguf_writer_has_key(const gguf_writer *w, const char *key);

/* ---- tensors -------------------------------------------------------------- */

/* A tensor of type (a ggml type id, quant.h) and shape ne[0..n_dims), ne[0]
 * the row length. data holds its quant_row_size(type, ne[0]) x rows bytes and
 * is borrowed: it must stay valid until the write call returns. */
ghost_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data);

/* Produces a tensor's bytes at write time into dst (nbytes of them), so a
 * tool can write a file larger than memory one tensor at a time. Returns
 * GHOST_OK, or an error (with its message set) that aborts the write. */
typedef ghost_status (*gguf_fill_fn)(void *user, const char *name, void *dst, size_t nbytes);
ghost_status gguf_writer_add_tensor_fill(gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const int64_t *ne, gguf_fill_fn fill,
                                         void *user);

/* ---- output --------------------------------------------------------------- */

/* Size in bytes of the file the writer would produce now. */
uint64_t gguf_writer_size(const gguf_writer *w);

/* The whole file in one malloc'ed buffer: *out (free with free()), *size. */
ghost_status gguf_writer_write_memory(gguf_writer *w, uint8_t **out, size_t *size);

/* Writes the file to path atomically: into a temporary file next to it,
 * flushed to disk, then renamed over path. On failure path is untouched and
 * the temporary file removed. */
ghost_status gguf_writer_write_file(gguf_writer *w, const char *path);

#endif
