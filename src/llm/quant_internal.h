/*
 * quant_internal.h — what quant.c, quant_avx2.c and quant_avx512.c share:
 * the block layouts of every type (bit-compatible with ggml's ggml-common.h,
 * checked by static assertions), scalar fp16/bf16 helpers, the scalar
 * reference kernels the SIMD files fall back to for odd tails, and the hooks
 * through which each ISA file fills its dispatch table.
 *
 * Not installed, not for use outside the quant_* files.
 */
#ifndef GHOST_QUANT_INTERNAL_H
#define GHOST_QUANT_INTERNAL_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

#define QK4_0        32
#define QK4_1        32
#define QK5_0        32
#define QK5_1        32
#define QK8_0        32
#define QK8_1        32
#define QK4_NL       32
#define QK_K         256
#define K_SCALE_SIZE 12

typedef uint16_t quant_half; /* IEEE binary16 bits */

/* Every block is a plain byte image of ggml's struct of the same name; the
 * fields appear in ggml's order and no padding exists (asserted below), so a
 * pointer into an mmapped GGUF file can be read as an array of blocks. fp16
 * fields need only 2-byte alignment, which GGUF's 32-byte tensor alignment
 * and the even block sizes guarantee. */
typedef struct {
    quant_half d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0;
typedef struct {
    quant_half d, m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1;
typedef struct {
    quant_half d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;
typedef struct {
    quant_half d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;
typedef struct {
    quant_half d;
    int8_t qs[QK8_0];
} block_q8_0;
typedef struct {
    quant_half d, s;
    int8_t qs[QK8_1];
} block_q8_1; /* s = d * sum(qs) */
typedef struct {
    quant_half d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl;

typedef struct {
    uint8_t scales[QK_K / 16]; /* low nibble scale, high nibble min, per 16 */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    quant_half d, dmin;
} block_q2_K;
typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit of the 3-bit quants */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 six-bit scales */
    quant_half d;
} block_q3_K;
typedef struct {
    quant_half d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 six-bit scales and 8 six-bit mins */
    uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {
    quant_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8]; /* fifth bits */
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct {
    uint8_t ql[QK_K / 2]; /* low 4 bits */
    uint8_t qh[QK_K / 4]; /* high 2 bits */
    int8_t scales[QK_K / 16];
    quant_half d;
} block_q6_K;
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of qs in groups of 16 */
} block_q8_K;

static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

/* The 16 levels of IQ4_NL (ggml's kvalues_iq4nl). */
extern const int8_t quant_iq4nl_values[16];

/* Unpacks the 8 six-bit scales and 8 six-bit mins of a Q4_K/Q5_K block:
 * scale j < 4 is bits 0-5 of byte j, min j < 4 bits 0-5 of byte j+4; for
 * j >= 4 the low 4 bits sit in byte j+4 (scale low nibble, min high nibble)
 * and the top 2 bits in bits 6-7 of bytes j-4 (scale) and j (min). Done on
 * 32-bit words: four lanes at a time. */
static inline void quant_k4_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8])
{
    uint32_t u[3], out[4];
    memcpy(u, s, 12);
    out[0] = u[0] & 0x3f3f3f3fu;
    out[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    out[2] = u[1] & 0x3f3f3f3fu;
    out[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, out, 8);
    memcpy(mn, out + 2, 8);
}

/* Round to nearest, ties to even, for |f| < 2^22: the float addition does
 * the rounding. This is ggml's nearest_int, so K-quant activations and
 * reference quantizers round exactly as llama.cpp does. */
static inline int quant_nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Scalar reference kernels (quant.c), used by the SIMD files for what they
 * do not vectorise and by the tests as the oracle. */
float quant_ref_vec_dot(ggml_type type, int64_t n, const void *w, const void *x);
void quant_ref_quantize_act(ggml_type type, const float *src, void *dst, int64_t n);

/* Generic batched product built from a vec_dot (same numbers as calling
 * vec_dot per row and column). */
void quant_gemm_by_rows(quant_vec_dot_fn dot, int64_t n, const void *w, size_t w_stride,
                        int64_t nrows, const void *x, size_t x_stride, int64_t ncols, float *y,
                        size_t ldy);

/* ---- shared by the SIMD files --------------------------------------------- */

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")
/* Columns per gemm tile. Kernels are templates over nc <= NCMAX columns:
 * kern_NAME(n, w, x, x_stride, nc, out) writes out[c] = dot(w, column c). */
#define NCMAX 4

/* Span rows (of row_bytes each) per gemm cache block: with 256 KiB of
 * weights a block stays in L2 while every column group passes over it
 * (AVX2 Q8_0 prefill +8 % on Zen 4 against no blocking; 128 and 512 KiB
 * measured the same). */
static inline int64_t gemm_block_rows(size_t row_bytes)
{
    const int64_t r = (int64_t)(256 * 1024 / row_bytes);
    return r > 0 ? r : 1;
}

/* vec_dot_NAME is the one-column instance of kern_NAME; gemm_NAME walks the
 * rows and runs NCMAX-column tiles, then single columns. The per-column
 * instruction sequence does not depend on nc, so both agree bit for bit. */
#define DEFINE_ENTRY_POINTS(name)                                                                  \
    static float vec_dot_##name(int64_t n, const void *w, const void *x)                           \
    {                                                                                              \
        float out[1];                                                                              \
        kern_##name(n, w, x, 0, 1, out);                                                           \
        return out[0];                                                                             \
    }                                                                                              \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nc, float *y, size_t ldy)                           \
    {                                                                                              \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            const char *wr = (const char *)w + (size_t)r * ws;                                     \
            int64_t c = 0;                                                                         \
            for (; c + NCMAX <= nc; c += NCMAX) {                                                  \
                float out[NCMAX];                                                                  \
                kern_##name(n, wr, (const char *)x + (size_t)c * xs, xs, NCMAX, out);              \
                for (int k = 0; k < NCMAX; k++)                                                    \
                    y[(size_t)(c + k) * ldy + (size_t)r] = out[k];                                 \
            }                                                                                      \
            for (; c < nc; c++) {                                                                  \
                float out[1];                                                                      \
                kern_##name(n, wr, (const char *)x + (size_t)c * xs, xs, 1, out);                  \
                y[(size_t)c * ldy + (size_t)r] = out[0];                                           \
            }                                                                                      \
        }                                                                                          \
    }

/* Per-ISA table fillers: overwrite the entries the ISA accelerates. */
void quant_avx2_fill(quant_kernels *k);
void quant_avx512_fill(quant_kernels *k, bool has_vnni, bool has_bf16);

#endif
