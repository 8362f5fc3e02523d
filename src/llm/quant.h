/*
 * quant.h — tensor element types (internal): block layouts, dequantization,
 * activation quantization and dot products.
 *
 * Type ids are ggml's (they appear in GGUF files). Each quantized type stores
 * a row as blocks of block_size elements in type_size bytes. A matrix-vector
 * product W·x with a quantized W quantizes x once into W's vec_dot_type (as
 * llama.cpp does: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K for
 * the K-quants, F16 for F16, BF16 for BF16, F32 for F32) and then takes
 * quant_vec_dot of each row against it, so results match llama.cpp's.
 *
 * Every operation has a scalar reference (quant.c). SIMD variants live in
 * quant_avx2.c / quant_avx512.c; quant_kernels_init() picks the best set the
 * CPU supports once (CPUID) and tests can force any level.
 */
#ifndef GHOST_QUANT_H
#define GHOST_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_MAX_ID = 40
} ggml_type;

typedef struct quant_type_info {
    const char *name;       /* "Q4_K" */
    int64_t block_size;     /* elements per block (1 for F32/F16/BF16) */
    size_t type_size;       /* bytes per block */
    ggml_type vec_dot_type; /* layout the activations are quantized to */
    bool is_weight_type;    /* may appear as a model weight (Q8_1/Q8_K may not) */
} quant_type_info;

/* Info for a known type id, NULL for an unknown one. */
const quant_type_info *quant_info(uint32_t type);
/* Comma-separated names of the supported weight types, for error messages. */
const char *quant_supported_list(void);
/* Bytes for a row of n elements; 0 if n is not a multiple of block_size or
 * the size does not fit in a size_t. */
size_t quant_row_size(ggml_type type, int64_t n);

/* Reference (scalar) conversions, usable for any row length that is a
 * multiple of the block size. */
void quant_dequantize_row(ggml_type type, const void *src, float *dst, int64_t n);
/* Quantize activations (or weights for `ghostflow quantize`) into type.
 * This is ggml's reference quantizer of each type (quantize_row_*_ref, what
 * llama-quantize writes without an importance matrix); for activations the
 * model uses quant_kernels.quantize[], which rounds Q8_0/Q8_1 the way
 * llama.cpp's x86 CPU backend does (d = amax/127, x*(127/amax) rounded to
 * nearest even) and is otherwise identical. Types without a quantizer (none
 * today) leave dst untouched. */
void quant_quantize_row(ggml_type type, const float *src, void *dst, int64_t n);

/* Regroups nrows (a multiple of 8) rows of n elements for the x86
 * eight-row kernels (quant_kernels.gemm_x8), same size; false (dst
 * untouched) for a type without such a layout. For each group of eight rows
 * and each block index:
 * - Q4_0: the eight rows' fp16 scales, then for k = 0..3 the bytes
 *   4k..4k+3 of the eight rows' quants, row after row;
 * - Q4_K: the eight rows' d, then their dmin (fp16), then the 12 scale
 *   bytes as byte b of row r at 8b + r, then for each 32-byte chunk c of
 *   the quants and k = 0..7 the bytes 32c+4k..32c+4k+3 of the eight rows,
 *   row after row (1152 bytes, eight blocks' worth);
 * - Q5_K: as Q4_K with, between the scales and the quants, the bytes
 *   4k..4k+3 of the eight rows' qh for k = 0..7, row after row;
 * - Q6_K: the eight rows' d (fp16), their 16 scales as byte j of row r at
 *   16 + 8j + r, then for each half n and dword l = 0..7 of its 32-byte
 *   runs, 96 bytes: the eight rows' ql bytes 64n+4l.., then 64n+32+4l..,
 *   then qh bytes 32n+4l.., four per row, row after row (1680 bytes). */
bool quant_repack_x8(ggml_type type, const void *src, void *dst, int64_t n, int64_t nrows);
/* fp16 / bf16 scalar conversions (round to nearest even). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* ---- kernels with run-time dispatch ---------------------------------------- */

typedef enum quant_isa { QUANT_ISA_SCALAR = 0, QUANT_ISA_AVX2 = 1, QUANT_ISA_AVX512 = 2 } quant_isa;

/* dot(row of W of `type`, activations already in vec_dot_type), n elements. */
typedef float (*quant_vec_dot_fn)(int64_t n, const void *w, const void *x);
typedef void (*quant_quantize_fn)(const float *src, void *dst, int64_t n);
/* Batched product for prefill: y[c*ldy + r] = dot(row r of W, column c of X)
 * for r < nrows, c < ncols; rows of W are w_stride bytes apart, columns of X
 * (already in vec_dot_type) x_stride bytes apart. Every entry is bit-identical
 * to vec_dot of the same kernel set, so prefill and decode agree exactly. */
typedef void (*quant_gemm_fn)(int64_t n, const void *w, size_t w_stride, int64_t nrows,
                              const void *x, size_t x_stride, int64_t ncols, float *y, size_t ldy);

/* Weighted sum of rows for attention: out[d] = sum over j < nrows of
 * p[j] * row_j[d], d < n, rows stride bytes apart in the row type (F16 or
 * F32; an F16 row's weights are first rounded to F16, as llama.cpp's
 * softmax·V product does). Positions are added in order j = 0, 1, ... with
 * one fused multiply-add each, so every ISA gives the same bits. */
typedef void (*quant_wsum_fn)(int64_t n, float *out, const void *rows, size_t stride,
                              const float *p, int64_t nrows);

typedef struct quant_kernels {
    quant_isa isa;
    quant_vec_dot_fn vec_dot[GGML_TYPE_MAX_ID];   /* indexed by weight type */
    quant_quantize_fn quantize[GGML_TYPE_MAX_ID]; /* indexed by target type */
    quant_gemm_fn gemm[GGML_TYPE_MAX_ID];         /* indexed by weight type */
    quant_wsum_fn wsum[GGML_TYPE_MAX_ID];         /* F16 and F32 rows only */
    /* rows repacked by quant_repack_x8, by weight type (NULL: this set has
     * no such kernel, do not repack). All of them give the scalar
     * reference's bits. */
    quant_gemm_fn gemm_x8[GGML_TYPE_MAX_ID];
    bool has_vnni, has_bf16; /* AVX-512 extensions in use */
} quant_kernels;

/* The best ISA this CPU (and OS) supports. */
quant_isa quant_cpu_isa(void);
const char *quant_isa_name(quant_isa isa);
/* Kernels for a given ISA (entries an ISA lacks fall back to the scalar
 * ones); NULL if the CPU lacks the ISA. Thread-safe, never allocates. */
const quant_kernels *quant_kernels_for(quant_isa isa);
/* Kernels for quant_cpu_isa(); env GHOST_ISA=scalar|avx2|avx512 may lower it. */
const quant_kernels *quant_kernels_best(void);

/* k->gemm[type] for a weight type (NULL entries do not exist for supported
 * weight types); see quant_gemm_fn. */
void quant_matmul(const quant_kernels *k, ggml_type type, int64_t n, const void *w, size_t w_stride,
                  int64_t nrows, const void *x, size_t x_stride, int64_t ncols, float *y,
                  size_t ldy);

#endif
