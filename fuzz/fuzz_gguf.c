/*
 * fuzz_gguf.c — libFuzzer harness for the GGUF loader.
 *
 * Feeds arbitrary bytes to gguf_open_memory. A file that validates is then
 * walked the way the model loader and `ghostflow info` walk it — every key
 * looked up and read through the typed getters, every array element and
 * tensor touched — so that anything validation lets through is proven safe
 * to read. Built only with clang and -DGF_FUZZ=ON (see fuzz/CMakeLists.txt):
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGF_FUZZ=ON -DGF_TESTS=OFF
 *   cmake --build build-fuzz --target fuzz_gguf
 *   ./build-fuzz/fuzz/fuzz_gguf -max_total_time=60 corpus/ ../shared/models/vocab
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llm/gguf.h"

/* Keeps reads from being optimised away. */
static volatile uint64_t sink;

static void walk_kv(const gguf_file *f, const gguf_kv *kv)
{
    char key[256];
    size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
    memcpy(key, kv->key.ptr, n);
    key[n] = '\0';
    const gguf_kv *found = gguf_find_kv(f, key);
    sink += found != NULL;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b;
    gguf_str s;
    sink += gguf_get_u32(f, key, &u32) + gguf_get_i32(f, key, &i32) + gguf_get_u64(f, key, &u64) +
            gguf_get_f32(f, key, &f32) + gguf_get_bool(f, key, &b) + gguf_get_str(f, key, &s);
    if (kv->type == GGUF_TYPE_STRING && kv->str.len)
        sink += (unsigned char)kv->str.ptr[kv->str.len - 1];
    if (kv->type != GGUF_TYPE_ARRAY)
        return;
    uint64_t len;
    if (gguf_get_arr(f, key, kv->arr_type, &len) == NULL)
        return;
    for (uint64_t i = 0; i < len; i++) {
        if (kv->arr_type == GGUF_TYPE_STRING)
            sink += kv->strs[i].len ? (unsigned char)kv->strs[i].ptr[kv->strs[i].len - 1] : 0;
        else {
            /* the float's bits: converting an out-of-range float to an
             * integer is undefined behaviour in the harness itself */
            float f32v = gguf_arr_f32(kv, i);
            uint32_t bits;
            memcpy(&bits, &f32v, sizeof bits);
            sink += (uint64_t)gguf_arr_i32(kv, i) + gguf_arr_u32(kv, i) + bits;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    if (gguf_open_memory(data, size, &f) != GHOST_OK)
        return 0;
    for (uint64_t i = 0; i < f->n_kv; i++)
        walk_kv(f, &f->kv[i]);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (gguf_find_tensor(f, t->name) != t)
            __builtin_trap(); /* names are unique: lookup must find this one */
        const uint8_t *p = t->data;
        sink += p[0] + p[t->nbytes - 1];
    }
    gguf_close(f);
    return 0;
}
