/*
 * quant_avx512.c — AVX-512 (F/BW/VL/DQ) dot-product kernels, with VNNI
 * (vpdpbusd/vpdpwssd) and BF16 (vdpbf16ps) variants. quant.c calls
 * quant_avx512_fill only after CPUID and XGETBV confirmed AVX-512 and the
 * OS's ZMM state support, and tells it separately whether VNNI and BF16
 * exist; every kernel below comes in a plain AVX-512 instance, so a CPU
 * without them (Skylake-X) never meets their instructions.
 *
 * The file is compiled with the VNNI/BF16 flags, so it holds no scalar
 * loops the compiler could vectorise with them: everything is intrinsics.
 * Activation quantizers are not here; the AVX2 ones serve.
 *
 * The 32-element block types share quant_x86.h's templates with the AVX2
 * file and differ only in the integer dot (vpdpbusd on YMM); so do Q4_K and
 * Q5_K with VNNI (vpdpwssd on YMM). Q6_K, the float types and, without
 * VNNI, Q4_K/Q5_K use ZMM registers.
 */
#include <immintrin.h>

#include "quant_internal.h"

/* vpdpbusd: four u8*s8 products summed into each int32, no saturation.
 * Signed weights keep the AVX2 sign trick on YMM registers: on CPUs that
 * split 512-bit operations, two-block ZMM packing measured slower. */
INLINE __m256i dot_i8(__m256i w, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                               _mm256_sign_epi8(x, w));
}

INLINE __m256i dot_u8(__m256i w, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
}

INLINE __m256i dot_u8_acc(__m256i acc, __m256i w, __m256i x)
{
    return _mm256_dpbusd_epi32(acc, w, x);
}

INLINE __m256i madd16_acc(__m256i acc, __m256i p, __m256i s)
{
    return _mm256_dpwssd_epi32(acc, p, s);
}

/* 32 YMM registers (EVEX): 2 x 4 tiles keep 16 accumulators. */
#define NRMAX  4
#define ROWS_1 4
#define ROWS_4 2

#include "quant_x86.h"

/* ---- K-quants against Q8_K ------------------------------------------------ */

/* 32 int16 lanes: scale a for lanes 0..15, scale b for 16..31 (maddubs
 * output of a 64-element chunk covering two 32-element sub-blocks). */
INLINE __m512i scale_pair16(__m512i s16, int a, int b)
{
    const __m512i idx = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16((short)a),
                                                _mm512_set1_epi16((short)b));
    return _mm512_permutexvar_epi16(idx, s16);
}

/* isum += p16 * s16 pairwise: one vpdpwssd with VNNI */
INLINE __m512i madd_acc(__m512i isum, __m512i p16, __m512i s16, bool vnni)
{
    if (vnni)
        return _mm512_dpwssd_epi32(isum, p16, s16);
    return _mm512_add_epi32(isum, _mm512_madd_epi16(p16, s16));
}

/* Q4_K and Q5_K on ZMM registers, for AVX-512 without VNNI */
INLINE void kern_k4(int64_t n, const void *vw, size_t bsize, bool five, const char *x, size_t xs,
                    int nc, float *out)
{
    const int64_t nb = n / QK_K;
    __m512 acc[NCMAX];
    float smin[NCMAX];
    UNROLL for (int c = 0; c < nc; c++)
    {
        acc[c] = _mm512_setzero_ps();
        smin[c] = 0.0f;
    }
    for (int64_t i = 0; i < nb; i++) {
        const block_q4_K *w4 = (const block_q4_K *)((const char *)vw + (size_t)i * bsize);
        const uint8_t *qs = five ? ((const block_q5_K *)w4)->qs : w4->qs;
        const __m128i scm = k4_scales_mins(w4->scales);
        const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(scm));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(scm, 8));
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const block_q5_K *)w4)->qh)
                          : _mm256_setzero_si256();
        __m512i isum[NCMAX];
        UNROLL for (int c = 0; c < nc; c++) isum[c] = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
            z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
            if (five) {
                const __mmask64 m = (__mmask64)_mm256_test_epi8_mask(qh, _mm256_set1_epi8(1)) |
                                    (__mmask64)_mm256_test_epi8_mask(qh, _mm256_set1_epi8(2)) << 32;
                z = _mm512_mask_add_epi8(z, m, z, _mm512_set1_epi8(0x10));
                qh = _mm256_srli_epi16(qh, 2);
            }
            const __m512i s = scale_pair16(s16, 2 * j, 2 * j + 1);
            UNROLL for (int c = 0; c < nc; c++)
            {
                const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
                const __m512i yv = _mm512_loadu_si512(y->qs + 64 * j);
                isum[c] = madd_acc(isum[c], _mm512_maddubs_epi16(z, yv), s, false);
            }
        }
        const float d = h2f(w4->d), dmin = h2f(w4->dmin);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y->d), _mm512_cvtepi32_ps(isum[c]), acc[c]);
            smin[c] += (dmin * y->d) * (float)k4_mins_dot(m16, y->bsums);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]) - smin[c];
}

/* int16 lane -> lane / 8: which of four 16-element scales it uses */
static const uint16_t q6_lane_group[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                           2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

/* Q6_K: 64 contiguous ql bytes give the low nibbles of elements 0..63 of a
 * half and the high nibbles of 64..127; the -32 offset returns as
 * 32 * sum(scale * bsum). Scales cover 16 elements = 8 int16 lanes. */
INLINE void kern_q6_K_impl(int64_t n, const void *vw, bool vnni, const char *x, size_t xs, int nc,
                           float *out)
{
    const block_q6_K *w = vw;
    const int64_t nb = n / QK_K;
    __m512 acc[NCMAX];
    UNROLL for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i lane_grp = _mm512_loadu_si512(q6_lane_group);
    for (int64_t i = 0; i < nb; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[i].scales));
        const __m512i s16 = _mm512_castsi256_si512(sc16);
        __m512i isum[NCMAX];
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            __m256i o = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), sc16);
            isum[c] = _mm512_zextsi256_si512(
                _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(o, 5)));
        }
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512(w[i].ql + 64 * h);
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            const __m512i hz =
                _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                                _mm512_and_si512(_mm512_slli_epi16(hz, 4), m30));
            const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                _mm512_and_si512(hz, m30));
            const __m512i s01 = _mm512_permutexvar_epi16(
                _mm512_add_epi16(lane_grp, _mm512_set1_epi16((short)(8 * h))), s16);
            const __m512i s23 = _mm512_permutexvar_epi16(
                _mm512_add_epi16(lane_grp, _mm512_set1_epi16((short)(8 * h + 4))), s16);
            UNROLL for (int c = 0; c < nc; c++)
            {
                const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
                const __m512i y01 = _mm512_loadu_si512(y->qs + 128 * h);
                const __m512i y23 = _mm512_loadu_si512(y->qs + 128 * h + 64);
                isum[c] = madd_acc(isum[c], _mm512_maddubs_epi16(q01, y01), s01, vnni);
                isum[c] = madd_acc(isum[c], _mm512_maddubs_epi16(q23, y23), s23, vnni);
            }
        }
        const float d = h2f(w[i].d);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y->d), _mm512_cvtepi32_ps(isum[c]), acc[c]);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]);
}

#define DEFINE_K_KERNELS(suffix, vnni)                                                             \
    INLINE void kern_q4_K##suffix(int64_t n, const void *w, const char *x, size_t xs, int nc,      \
                                  float *out)                                                      \
    {                                                                                              \
        if (vnni) /* YMM with vpdpwssd: faster on split-ZMM CPUs */                                \
            kern_k4_256(n, w, sizeof(block_q4_K), false, x, xs, nc, out);                          \
        else                                                                                       \
            kern_k4(n, w, sizeof(block_q4_K), false, x, xs, nc, out);                              \
    }                                                                                              \
    INLINE void kern_q5_K##suffix(int64_t n, const void *w, const char *x, size_t xs, int nc,      \
                                  float *out)                                                      \
    {                                                                                              \
        if (vnni) /* YMM with vpdpwssd: faster on split-ZMM CPUs */                                \
            kern_k4_256(n, w, sizeof(block_q5_K), true, x, xs, nc, out);                           \
        else                                                                                       \
            kern_k4(n, w, sizeof(block_q5_K), true, x, xs, nc, out);                               \
    }                                                                                              \
    INLINE void kern_q6_K##suffix(int64_t n, const void *w, const char *x, size_t xs, int nc,      \
                                  float *out)                                                      \
    {                                                                                              \
        kern_q6_K_impl(n, w, vnni, x, xs, nc, out);                                                \
    }

DEFINE_K_KERNELS(, false)
DEFINE_K_KERNELS(_vnni, true)

/* ---- float types ------------------------------------------------------------ */

/* k < 16 trailing elements (k == 16 for a full vector) */
INLINE __mmask16 tail16(int64_t k)
{
    return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
}

INLINE __m512 load16_f32(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

INLINE __m512 load16_f16(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

INLINE __m512 load16_bf16(const void *p, int64_t i, __mmask16 m)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define DEFINE_FLOAT_KERNEL(name)                                                                  \
    INLINE void kern_##name(int64_t n, const void *w, const char *x, size_t xs, int nc,            \
                            float *out)                                                            \
    {                                                                                              \
        __m512 acc[NCMAX][2];                                                                      \
        UNROLL for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps();           \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32) {                                                             \
            const __m512 w0 = load16_##name(w, i, 0xFFFF), w1 = load16_##name(w, i + 16, 0xFFFF);  \
            UNROLL for (int c = 0; c < nc; c++)                                                    \
            {                                                                                      \
                const char *xc = x + (size_t)c * xs;                                               \
                acc[c][0] = _mm512_fmadd_ps(w0, load16_##name(xc, i, 0xFFFF), acc[c][0]);          \
                acc[c][1] = _mm512_fmadd_ps(w1, load16_##name(xc, i + 16, 0xFFFF), acc[c][1]);     \
            }                                                                                      \
        }                                                                                          \
        for (; i < n; i += 16) {                                                                   \
            const __mmask16 m = tail16(n - i);                                                     \
            const __m512 w0 = load16_##name(w, i, m);                                              \
            UNROLL for (int c = 0; c < nc; c++) acc[c][0] =                                        \
                _mm512_fmadd_ps(w0, load16_##name(x + (size_t)c * xs, i, m), acc[c][0]);           \
        }                                                                                          \
        UNROLL for (int c = 0; c < nc; c++) out[c] =                                               \
            _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1]));                             \
    }

DEFINE_FLOAT_KERNEL(f32)
DEFINE_FLOAT_KERNEL(f16)
DEFINE_FLOAT_KERNEL(bf16)

/* BF16 with vdpbf16ps: 32 pairs per instruction, products accumulated in
 * fp32 (the instruction treats denormals as zero, like llama.cpp's path). */
INLINE void kern_bf16_dp(int64_t n, const void *vw, const char *x, size_t xs, int nc, float *out)
{
    const uint16_t *w = vw;
    __m512 acc[NCMAX][2];
    UNROLL for (int c = 0; c < nc; c++) acc[c][0] = acc[c][1] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i w0 = _mm512_loadu_si512(w + i), w1 = _mm512_loadu_si512(w + i + 32);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const uint16_t *xc = (const uint16_t *)(x + (size_t)c * xs);
            acc[c][0] =
                _mm512_dpbf16_ps(acc[c][0], (__m512bh)_mm512_loadu_si512(xc + i), (__m512bh)w0);
            acc[c][1] = _mm512_dpbf16_ps(acc[c][1], (__m512bh)_mm512_loadu_si512(xc + i + 32),
                                         (__m512bh)w1);
        }
    }
    for (; i < n; i += 32) {
        const int64_t k = n - i;
        const __mmask32 m = k >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << k) - 1);
        const __m512i w0 = _mm512_maskz_loadu_epi16(m, w + i);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const uint16_t *xc = (const uint16_t *)(x + (size_t)c * xs);
            acc[c][0] = _mm512_dpbf16_ps(acc[c][0], (__m512bh)_mm512_maskz_loadu_epi16(m, xc + i),
                                         (__m512bh)w0);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] =
        _mm512_reduce_add_ps(_mm512_add_ps(acc[c][0], acc[c][1]));
}

DEFINE_TILED_ENTRY_POINTS(q4_0)
DEFINE_TILED_ENTRY_POINTS(q5_0)
DEFINE_TILED_ENTRY_POINTS(q8_0)
DEFINE_TILED_ENTRY_POINTS(iq4_nl)
DEFINE_ENTRY_POINTS(q4_1)
DEFINE_ENTRY_POINTS(q5_1)
DEFINE_ENTRY_POINTS(q4_K)
DEFINE_ENTRY_POINTS(q5_K)
DEFINE_ENTRY_POINTS(q6_K)
DEFINE_ENTRY_POINTS(q4_K_vnni)
DEFINE_ENTRY_POINTS(q5_K_vnni)
DEFINE_ENTRY_POINTS(q6_K_vnni)
DEFINE_ENTRY_POINTS(f32)
DEFINE_ENTRY_POINTS(f16)
DEFINE_ENTRY_POINTS(bf16)
DEFINE_ENTRY_POINTS(bf16_dp)

void quant_avx512_fill(quant_kernels *k, bool has_vnni, bool has_bf16)
{
#define SET(T, name)                                                                               \
    k->vec_dot[T] = vec_dot_##name;                                                                \
    k->gemm[T] = gemm_##name;
    /* without VNNI the 32-element blocks keep the AVX2 kernels */
    if (has_vnni) {
        SET(GGML_TYPE_Q4_0, q4_0)
        SET(GGML_TYPE_Q5_0, q5_0)
        SET(GGML_TYPE_Q8_0, q8_0)
        SET(GGML_TYPE_IQ4_NL, iq4_nl)
        SET(GGML_TYPE_Q4_1, q4_1)
        SET(GGML_TYPE_Q5_1, q5_1)
        SET(GGML_TYPE_Q4_K, q4_K_vnni)
        SET(GGML_TYPE_Q5_K, q5_K_vnni)
        SET(GGML_TYPE_Q6_K, q6_K_vnni)
    } else {
        SET(GGML_TYPE_Q4_K, q4_K)
        SET(GGML_TYPE_Q5_K, q5_K)
        SET(GGML_TYPE_Q6_K, q6_K)
    }
    SET(GGML_TYPE_F32, f32)
    SET(GGML_TYPE_F16, f16)
    if (has_bf16) {
        SET(GGML_TYPE_BF16, bf16_dp)
    } else {
        SET(GGML_TYPE_BF16, bf16)
    }
#undef SET
    k->has_vnni = has_vnni;
    k->has_bf16 = has_bf16;
}
