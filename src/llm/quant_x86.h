/*
 * quant_x86.h — x86 helpers and the kernel templates for 32-element block
 * types that quant_avx2.c and quant_avx512.c share (included by those two
 * files only, each compiled with its own ISA flags).
 *
 * The includer first defines
 *   __m256i dot_i8(__m256i w, __m256i x)  8 int32 sums of 4 signed products
 *   __m256i dot_u8(__m256i w, __m256i x)  the same with w unsigned
 * (maddubs + madd on AVX2, one vpdpbusd with AVX-512 VNNI), then
 * instantiates the templates with DEFINE_Q8_0_KERNEL / DEFINE_Q8_1_KERNEL.
 */
#ifndef GHOST_QUANT_X86_H
#define GHOST_QUANT_X86_H

#include <immintrin.h>

#include "quant_internal.h"

INLINE float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE int hsum_epi32_128(__m128i v)
{
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

INLINE float h2f(quant_half h) { return _cvtsh_ss(h); }

/* 32 nibbles -> 32 bytes: low nibbles first (elements 0..15), then high. */
INLINE __m256i nibbles32(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* bit j of the 32-bit word -> byte j = 0xFF or 0x00 */
INLINE __m256i bits32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* ---- 32-element block types against Q8_0 ---------------------------------- */

INLINE __m256i unpack_q4_0(const block_q4_0 *b)
{
    return _mm256_sub_epi8(nibbles32(b->qs), _mm256_set1_epi8(8));
}

INLINE __m256i unpack_q8_0(const block_q8_0 *b)
{
    return _mm256_loadu_si256((const __m256i *)b->qs);
}

/* (nibble | bit4 << 4) - 16 as int8: a clear fifth bit sets the top nibble */
INLINE __m256i unpack_q5_0(const block_q5_0 *b)
{
    __m256i hi = _mm256_andnot_si256(bits32(b->qh), _mm256_set1_epi8((char)0xF0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

INLINE __m256i unpack_iq4_nl(const block_iq4_nl *b)
{
    const __m256i lut = _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *)quant_iq4nl_values));
    return _mm256_shuffle_epi8(lut, nibbles32(b->qs));
}

/* Two accumulators per column (even and odd blocks) hide the FMA latency. */
#define DEFINE_Q8_0_KERNEL(name, wtype)                                                           \
    INLINE void kern_##name(int64_t n, const void *vw, const char *x, size_t xs, int nc,          \
                            float *out)                                                           \
    {                                                                                             \
        const wtype *w = vw;                                                                      \
        const int64_t nb = n / 32;                                                                \
        __m256 acc[NCMAX][2];                                                                     \
        UNROLL for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();          \
        int64_t i = 0;                                                                            \
        for (; i + 1 < nb; i += 2) {                                                              \
            const __m256i q0 = unpack_##name(&w[i]), q1 = unpack_##name(&w[i + 1]);              \
            const float d0 = h2f(w[i].d), d1 = h2f(w[i + 1].d);                                   \
            UNROLL for (int c = 0; c < nc; c++) {                                                 \
                const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs) + i;              \
                __m256i p0 = dot_i8(q0, _mm256_loadu_si256((const __m256i *)y[0].qs));           \
                __m256i p1 = dot_i8(q1, _mm256_loadu_si256((const __m256i *)y[1].qs));           \
                acc[c][0] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * h2f(y[0].d)),                     \
                                            _mm256_cvtepi32_ps(p0), acc[c][0]);                   \
                acc[c][1] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * h2f(y[1].d)),                     \
                                            _mm256_cvtepi32_ps(p1), acc[c][1]);                   \
            }                                                                                     \
        }                                                                                         \
        if (i < nb) {                                                                             \
            const __m256i q0 = unpack_##name(&w[i]);                                              \
            const float d0 = h2f(w[i].d);                                                         \
            UNROLL for (int c = 0; c < nc; c++) {                                                 \
                const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs) + i;              \
                __m256i p0 = dot_i8(q0, _mm256_loadu_si256((const __m256i *)y[0].qs));           \
                acc[c][0] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * h2f(y[0].d)),                     \
                                            _mm256_cvtepi32_ps(p0), acc[c][0]);                   \
            }                                                                                     \
        }                                                                                         \
        UNROLL for (int c = 0; c < nc; c++) out[c] = hsum_ps(_mm256_add_ps(acc[c][0], acc[c][1])); \
    }

DEFINE_Q8_0_KERNEL(q4_0, block_q4_0)
DEFINE_Q8_0_KERNEL(q8_0, block_q8_0)
DEFINE_Q8_0_KERNEL(q5_0, block_q5_0)
DEFINE_Q8_0_KERNEL(iq4_nl, block_iq4_nl)

/* ---- Q4_1 / Q5_1 against Q8_1 (unsigned quants plus a min) ----------------- */

INLINE __m256i unpack_q4_1(const block_q4_1 *b) { return nibbles32(b->qs); }

INLINE __m256i unpack_q5_1(const block_q5_1 *b)
{
    __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

#define DEFINE_Q8_1_KERNEL(name, wtype)                                                           \
    INLINE void kern_##name(int64_t n, const void *vw, const char *x, size_t xs, int nc,          \
                            float *out)                                                           \
    {                                                                                             \
        const wtype *w = vw;                                                                      \
        const int64_t nb = n / 32;                                                                \
        __m256 acc[NCMAX];                                                                        \
        float sm[NCMAX];                                                                          \
        UNROLL for (int c = 0; c < nc; c++) {                                                     \
            acc[c] = _mm256_setzero_ps();                                                         \
            sm[c] = 0.0f;                                                                         \
        }                                                                                         \
        for (int64_t i = 0; i < nb; i++) {                                                        \
            const __m256i q = unpack_##name(&w[i]);                                               \
            const float d = h2f(w[i].d), m = h2f(w[i].m);                                         \
            UNROLL for (int c = 0; c < nc; c++) {                                                 \
                const block_q8_1 *y = (const block_q8_1 *)(x + (size_t)c * xs) + i;              \
                __m256i p = dot_u8(q, _mm256_loadu_si256((const __m256i *)y->qs));               \
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * h2f(y->d)), _mm256_cvtepi32_ps(p),    \
                                         acc[c]);                                                 \
                sm[c] += m * h2f(y->s);                                                           \
            }                                                                                     \
        }                                                                                         \
        UNROLL for (int c = 0; c < nc; c++) out[c] = hsum_ps(acc[c]) + sm[c];                     \
    }

DEFINE_Q8_1_KERNEL(q4_1, block_q4_1)
DEFINE_Q8_1_KERNEL(q5_1, block_q5_1)

/* sum over the 8 sub-blocks of min * (sum of their 32 activations) */
INLINE int k4_mins_dot(const uint8_t mn[8], const int16_t *bsums)
{
    __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    __m128i pairs = _mm_hadd_epi16(b0, b1); /* |pair| <= 32*127: no overflow */
    __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    return hsum_epi32_128(_mm_madd_epi16(pairs, m16));
}

#endif
