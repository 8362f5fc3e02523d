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
 * With VNNI, Q5_0, Q8_0 and IQ4_NL take two blocks per ZMM register, and
 * Q4_0 puts eight weight rows across the lanes (both below); Q4_1 and Q5_1
 * share quant_x86.h's templates with the AVX2 file and differ only in the
 * integer dot (vpdpbusd on YMM), as do Q4_K and Q5_K (vpdpwssd on YMM).
 * Q6_K, the float types (entry points in quant_float_x86.h) and, without
 * VNNI, Q4_K/Q5_K use ZMM registers.
 */
#include <immintrin.h>

#include "quant_internal.h"

/* vpdpbusd: four u8*s8 products summed into each int32, no saturation.
 * Signed weights keep the AVX2 sign trick (the YMM templates of Q4_1 and
 * Q5_1). */
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

/* 32 ZMM registers: 4 x 4 tiles keep 16 accumulators (one per pair, both
 * blocks of a pair in it); a single column takes 4 rows too (8 spans of
 * rows measured slower: their streams alias in the L1 sets). */
#define NRMAX   4
#define ROWS_1  4
#define ROWS_4  4
#define TQ_COLS 8 /* eight accumulators of eight rows */
#define K8_COLS 4 /* K-quants: for Q4_K 4 measured faster than 2, 6 or 8 */

#include "quant_x86.h"

/* ---- 32-element block types on ZMM registers ------------------------------ */

/* Two blocks per ZMM register, its 128-bit lanes holding block i's elements
 * 0..15, block i+1's 0..15, block i's 16..31 and block i+1's 16..31. Each
 * int32 lane then sums four products as a YMM lane would, and the lanes of
 * blocks i and i+1 play the even and odd accumulators of quant.c's
 * dot_q8_0: the results are bit-identical to it, with half the
 * instructions per (row, column) pair of a YMM kernel.
 *
 * vpdpbusd wants the weights unsigned, so every type is shifted to
 * q + off >= 0 (Q4_0 and Q5_0 nibbles as they are, Q8_0 and IQ4_NL values
 * + 128); the offset returns through the seed of each dot, -off * (sum of
 * the lane's four activations), computed once per column and block pair for
 * all rows of a tile. The int32 lane sums are exact, as before. (Reading
 * a block pair with one 64-byte load and sorting it with vpermw measured
 * slower on Zen 4 than these 128/256-bit loads and lane shuffles.) */

/* [a.lo, b.lo, a.hi, b.hi] */
INLINE __m512i pair_lanes(__m256i a, __m256i b)
{
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

/* the 32 nibbles of a and of b in pair_lanes order */
INLINE __m512i pair_nibbles(const uint8_t *a, const uint8_t *b)
{
    const __m256i v =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                _mm_loadu_si128((const __m128i *)b), 1);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

INLINE __m512 pair_scales(const quant_half *a, const quant_half *b)
{
    const __m128 f = _mm_cvtph_ps(_mm_insert_epi16(_mm_loadu_si16(a), *b, 1));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* Q8_0 blocks a and b: signed quants and scales */
INLINE __m512i zq8(const block_q8_0 *a, const block_q8_0 *b, __m512 *d)
{
    *d = pair_scales(&a->d, &b->d);
    return pair_lanes(_mm256_loadu_si256((const __m256i *)a->qs),
                      _mm256_loadu_si256((const __m256i *)b->qs));
}

/* The weight types: unsigned quants (q + off) and scales of blocks a, b. */
INLINE __m512i zunpack_q4_0(const block_q4_0 *a, const block_q4_0 *b, __m512 *d)
{
    *d = pair_scales(&a->d, &b->d);
    return pair_nibbles(a->qs, b->qs);
}

INLINE __m512i zunpack_iq4_nl(const block_iq4_nl *a, const block_iq4_nl *b, __m512 *d)
{
    *d = pair_scales(&a->d, &b->d);
    const __m512i q = pair_nibbles(a->qs, b->qs);
    const __m512i lut =
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)quant_iq4nl_values));
    return _mm512_xor_si512(_mm512_shuffle_epi8(lut, q), _mm512_set1_epi8((char)0x80));
}

/* bit j of each block's qh -> 0x10 in element j's byte */
INLINE __m512i zunpack_q5_0(const block_q5_0 *a, const block_q5_0 *b, __m512 *d)
{
    uint32_t ha, hb;
    memcpy(&ha, a->qh, 4);
    memcpy(&hb, b->qh, 4);
    const __mmask64 m = (uint64_t)(ha & 0xFFFF) | (uint64_t)(hb & 0xFFFF) << 16 |
                        (uint64_t)(ha >> 16) << 32 | (uint64_t)(hb >> 16) << 48;
    *d = pair_scales(&a->d, &b->d);
    const __m512i q = pair_nibbles(a->qs, b->qs);
    return _mm512_mask_add_epi8(q, m, q, _mm512_set1_epi8(0x10));
}

INLINE __m512i zunpack_q8_0(const block_q8_0 *a, const block_q8_0 *b, __m512 *d)
{
    return _mm512_xor_si512(zq8(a, b, d), _mm512_set1_epi8((char)0x80));
}

/* hsum_ps(acc_even + acc_odd) of the YMM kernel, from the block lanes */
INLINE float zsum_pairs(__m512 a)
{
    const __m256 lo = _mm512_castps512_ps256(a), hi = _mm512_extractf32x8_ps(a, 1);
    const __m128 v_lo = _mm_add_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
    const __m128 v_hi = _mm_add_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1));
    __m128 s = _mm_add_ps(v_lo, v_hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ps(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Q8_0 in the blocks' own order, [a.qs, b.qs] (one load and one insert,
 * against pair_lanes' two shuffles), for the prepared panels below: lane j
 * of a and lane j of b still sum the products of dot_q8_0's even and odd
 * accumulators, so zsum_natural adds the same pairs in the same order as
 * zsum_pairs. The scales are [a.d x 8, b.d x 8]. */
INLINE __m512i zq8_natural(const block_q8_0 *a, const block_q8_0 *b, __m512 *d)
{
    const __m256i ha = _mm256_set1_epi16((short)a->d), hb = _mm256_set1_epi16((short)b->d);
    *d = _mm512_cvtph_ps(_mm256_blend_epi32(ha, hb, 0xF0));
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a->qs)),
                              _mm256_loadu_si256((const __m256i *)b->qs), 1);
}

INLINE float zsum_natural(__m512 a)
{
    return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1)));
}

/* Tiles of nr <= NRMAX rows (ws bytes apart) by nc <= NCMAX columns
 * (out[r * NCMAX + c]): blocks i and i + 1 of every pair, then
 * an odd last block paired with itself, the second copy's lanes (outside
 * the mask keep) left out. */
#define DEFINE_ZMM_KERNEL(name, wtype, off)                                                        \
    INLINE void zstep_##name(const void *vw, size_t ws, int nr, const char *x, size_t xs, int nc,  \
                             int64_t i, bool pair, __m512 acc[NRMAX][NCMAX])                       \
    {                                                                                              \
        const int64_t i1 = pair ? i + 1 : i;                                                       \
        const __mmask16 keep = pair ? (__mmask16)0xFFFF : (__mmask16)0x0F0F;                       \
        __m512i q[NRMAX];                                                                          \
        __m512 d[NRMAX];                                                                           \
        UNROLL for (int r = 0; r < nr; r++)                                                        \
        {                                                                                          \
            const wtype *w = (const wtype *)((const char *)vw + (size_t)r * ws);                   \
            q[r] = zunpack_##name(&w[i], &w[i1], &d[r]);                                           \
        }                                                                                          \
        UNROLL for (int c = 0; c < nc; c++)                                                        \
        {                                                                                          \
            const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs);                        \
            __m512 e;                                                                              \
            const __m512i yv = zq8(&y[i], &y[i1], &e);                                             \
            const __m512i seed = _mm512_sub_epi32(                                                 \
                _mm512_setzero_si512(),                                                            \
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)(off)), yv));   \
            UNROLL for (int r = 0; r < nr; r++)                                                    \
            {                                                                                      \
                const __m512i p = _mm512_dpbusd_epi32(seed, q[r], yv);                             \
                acc[r][c] = _mm512_mask3_fmadd_ps(_mm512_mul_ps(d[r], e), _mm512_cvtepi32_ps(p),   \
                                                  acc[r][c], keep);                                \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    INLINE void kern_z##name(int64_t n, const void *vw, size_t ws, int nr, const char *x,          \
                             size_t xs, int nc, float *out)                                        \
    {                                                                                              \
        const int64_t nb = n / 32;                                                                 \
        __m512 acc[NRMAX][NCMAX];                                                                  \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < nc; c++) acc[r][c] =        \
            _mm512_setzero_ps();                                                                   \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2)                                                                 \
            zstep_##name(vw, ws, nr, x, xs, nc, i, true, acc);                                     \
        if (i < nb)                                                                                \
            zstep_##name(vw, ws, nr, x, xs, nc, i, false, acc);                                    \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < nc; c++)                    \
            out[r * NCMAX + c] = zsum_pairs(acc[r][c]);                                            \
    }

DEFINE_ZMM_KERNEL(q4_0, block_q4_0, 8)
DEFINE_ZMM_KERNEL(q8_0, block_q8_0, 128)
DEFINE_ZMM_KERNEL(q5_0, block_q5_0, 16)
DEFINE_ZMM_KERNEL(iq4_nl, block_iq4_nl, 128)

/* ---- Q4_0 with eight rows across the lanes -------------------------------- */

/* Eight rows across the lanes (quant_x86.h's tq4_0 and q4_Kx8). With VNNI
 * each of the eight products is one vpdpbusd, in four chains: a quarter of
 * the latency (integer sums: exact in any order). */
INLINE __m256i lanes_dot8(__m256i seed, const __m256i u[8], const int8_t *q)
{
    __m256i ch[4] = {seed, _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int k = 0; k < 8; k++) {
        int32_t v;
        memcpy(&v, q + 4 * k, 4);
        ch[k & 3] = _mm256_dpbusd_epi32(ch[k & 3], u[k], _mm256_set1_epi32(v));
    }
    return _mm256_add_epi32(_mm256_add_epi32(ch[0], ch[1]), _mm256_add_epi32(ch[2], ch[3]));
}

INLINE __m256i tq_dot8(__m256i seed, const __m256i u[8], const int8_t *q)
{
    return lanes_dot8(seed, u, q);
}

INLINE __m256i k8_scale(__m256i sc32)
{
    return sc32;
}

INLINE __m256i k8_sub(__m256i s, const __m256i u[8], const int8_t *q, __m256i sc, bool five)
{
    (void)five; /* vpdpbusd widens every product: no int16 bound */
    return _mm256_add_epi32(s, _mm256_mullo_epi32(lanes_dot8(_mm256_setzero_si256(), u, q), sc));
}

INLINE __m256i k6_sub(__m256i s, const __m256i u[4], const int8_t *q, __m256i sc)
{
    __m256i ch[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int k = 0; k < 4; k++) {
        int32_t v;
        memcpy(&v, q + 4 * k, 4);
        ch[k & 1] = _mm256_dpbusd_epi32(ch[k & 1], u[k], _mm256_set1_epi32(v));
    }
    return _mm256_add_epi32(s, _mm256_mullo_epi32(_mm256_add_epi32(ch[0], ch[1]), sc));
}

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
    __m128 accm[NCMAX];
    UNROLL for (int c = 0; c < nc; c++)
    {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm_setzero_ps();
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
            accm[c] = k4_mins_acc(accm[c], dmin * y->d, m16, y->bsums);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]) - hsum4(accm[c]);
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

/* F32, F16 and BF16 weights (entry points: quant_float_x86.h). Every
 * (row, column) dot keeps one accumulator that takes 16 elements at a time
 * in order (the last step masked; 32 with vdpbf16ps), then one reduction.
 * A tile of 6 rows by 4 columns holds 24 accumulators, 6 weight vectors
 * and one activation in the 32 ZMM registers, so each weight load and
 * conversion serves four columns and each activation load six rows (the
 * old one-row tile spent more on F16 conversions and loads than on
 * multiply-adds: prefill ran at half llama.cpp's speed). */
#define FLOAT_ROWS      6
#define FLOAT_COLS      4
#define FLOAT_ROW_BLOCK 144
#define FLOAT_SPANS     2     /* rows per tile for one column: 2 decoded faster than 1, 4 or 6 */
#define FLOAT_PANEL     24576 /* floats (96 KiB): four columns of up to 6144 */
#define FLOAT_LANES     16
#define FUNROLL         _Pragma("GCC unroll 8")

/* k < 16 trailing elements (k >= 16 for a full vector) */
INLINE __mmask16 tail16(int64_t k)
{
    return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
}

INLINE __m512 load16_f32(const void *p, int64_t i, __mmask16 m)
{
    if (m == 0xFFFF)
        return _mm512_loadu_ps((const float *)p + i);
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

INLINE __m256i load16_u16(const void *p, int64_t i, __mmask16 m)
{
    if (m == 0xFFFF)
        return _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
    return _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
}

INLINE __m512 load16_f16(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(load16_u16(p, i, m));
}

INLINE __m512 load16_bf16(const void *p, int64_t i, __mmask16 m)
{
    const __m512i v = _mm512_cvtepu16_epi32(load16_u16(p, i, m));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* tile_NAME as quant_float_x86.h describes it */
#define DEFINE_FLOAT_TILE(name)                                                                    \
    INLINE void tile_##name(int64_t n, const char *w, size_t ws, int nr, const char *x, size_t xs, \
                            int nc, bool xf32, float *y, size_t ys, size_t ldy)                    \
    {                                                                                              \
        __m512 acc[FLOAT_ROWS][FLOAT_COLS];                                                        \
        FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++) acc[r][c] =      \
            _mm512_setzero_ps();                                                                   \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16)                                                               \
            FLOAT_STEP(name, 0xFFFF)                                                               \
        if (i < n) {                                                                               \
            const __mmask16 mt = tail16(n - i);                                                    \
            FLOAT_STEP(name, mt)                                                                   \
        }                                                                                          \
        FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++)                  \
            y[(size_t)c * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][c]);                 \
    }
#define FLOAT_STEP(name, m)                                                                        \
    {                                                                                              \
        __m512 wv[FLOAT_ROWS];                                                                     \
        FUNROLL for (int r = 0; r < nr; r++) wv[r] = load16_##name(w + (size_t)r * ws, i, m);      \
        FUNROLL for (int c = 0; c < nc; c++)                                                       \
        {                                                                                          \
            const char *xc = x + (size_t)c * xs;                                                   \
            const __m512 xv = xf32 ? load16_f32(xc, i, m) : load16_##name(xc, i, m);               \
            FUNROLL for (int r = 0; r < nr; r++) acc[r][c] =                                       \
                _mm512_fmadd_ps(wv[r], xv, acc[r][c]);                                             \
        }                                                                                          \
    }

DEFINE_FLOAT_TILE(f32)
DEFINE_FLOAT_TILE(f16)
DEFINE_FLOAT_TILE(bf16)

/* BF16 with vdpbf16ps: 32 pairs per instruction, products accumulated in
 * fp32 (the instruction treats denormals as zero, like llama.cpp's path).
 * Both operands stay BF16, so xf32 is never set. */
INLINE __m512i load32_u16(const char *p, int64_t i, __mmask32 m)
{
    if (m == 0xFFFFFFFFu)
        return _mm512_loadu_si512((const uint16_t *)p + i);
    return _mm512_maskz_loadu_epi16(m, (const uint16_t *)p + i);
}

#define BF16_DP_STEP(m)                                                                            \
    {                                                                                              \
        __m512i wv[FLOAT_ROWS];                                                                    \
        FUNROLL for (int r = 0; r < nr; r++) wv[r] = load32_u16(w + (size_t)r * ws, i, m);         \
        FUNROLL for (int c = 0; c < nc; c++)                                                       \
        {                                                                                          \
            const __m512bh xv = (__m512bh)load32_u16(x + (size_t)c * xs, i, m);                    \
            FUNROLL for (int r = 0; r < nr; r++) acc[r][c] =                                       \
                _mm512_dpbf16_ps(acc[r][c], xv, (__m512bh)wv[r]);                                  \
        }                                                                                          \
    }

INLINE void tile_bf16_dp(int64_t n, const char *w, size_t ws, int nr, const char *x, size_t xs,
                         int nc, bool xf32, float *y, size_t ys, size_t ldy)
{
    (void)xf32;
    __m512 acc[FLOAT_ROWS][FLOAT_COLS];
    FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++) acc[r][c] =
        _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        BF16_DP_STEP(0xFFFFFFFFu)
    if (i < n) {
        const __mmask32 mt = (__mmask32)((1u << (n - i)) - 1);
        BF16_DP_STEP(mt)
    }
    FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++)
        y[(size_t)c * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][c]);
}

/* n elements of a column -> F32, zero-padded to a multiple of 16 */
#define DEFINE_WIDEN(name)                                                                         \
    INLINE void widen_##name(float *dst, const char *src, int64_t n)                               \
    {                                                                                              \
        for (int64_t i = 0; i < n; i += 16)                                                        \
            _mm512_store_ps(dst + i, load16_##name(src, i, tail16(n - i)));                        \
    }
DEFINE_WIDEN(f16)
DEFINE_WIDEN(bf16)

#include "quant_float_x86.h"

DEFINE_FLOAT_ENTRY_POINTS(f32, none, false)
DEFINE_FLOAT_ENTRY_POINTS(f16, f16, true)
DEFINE_FLOAT_ENTRY_POINTS(bf16, bf16, true)
DEFINE_FLOAT_ENTRY_POINTS(bf16_dp, none, false)

DEFINE_TILED_ROWS(zq5_0)
DEFINE_TILED_ROWS(zq8_0)
DEFINE_TILED_ROWS(ziq4_nl)

/* ---- the same kernels over a panel of prepared activations ---------------- */

/* In a 4 x 4 tile the four columns' unpacking (lane shuffles, scales, the
 * offset seed) cost as much as a third of the tile's instructions, and the
 * kernel above redoes it for every tile. gemm prepares them once per chunk
 * of ZP_PAIRS block pairs and column group, in the registers' own layout,
 * for a block of ZP_TILES tiles; the tiles then meet each column with three
 * plain loads (Q8_0 in its natural order, whose weights then take one
 * shuffle less: +4 % prefill). The accumulators of a tile cross chunks through memory, so
 * every lane sees the same operations in the same order as kern_z*: the
 * results stay bit-identical to vec_dot. */
#define ZP_PAIRS 32
#define ZP_TILES 16

typedef struct zpanel {
    __m512i y[ZP_PAIRS][NCMAX];    /* activation pairs, natural or pair_lanes order */
    __m512i seed[ZP_PAIRS][NCMAX]; /* -off * (sum of each lane's four activations) */
    __m512 e[ZP_PAIRS][NCMAX];     /* activation scales */
} zpanel;

/* pairs p0..p1-1 of columns x[0..NCMAX-1] (an odd last block pairs with
 * itself), in the natural or the pair_lanes order */
INLINE void zpanel_fill(zpanel *pan, const char *x, size_t xs, int64_t nb, int64_t p0, int64_t p1,
                        int off, bool natural)
{
    for (int64_t p = p0; p < p1; p++) {
        const int64_t i = 2 * p, i1 = i + 1 < nb ? i + 1 : i;
        UNROLL for (int c = 0; c < NCMAX; c++)
        {
            const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs);
            const __m512i yv = natural ? zq8_natural(&y[i], &y[i1], &pan->e[p - p0][c])
                                       : zq8(&y[i], &y[i1], &pan->e[p - p0][c]);
            pan->y[p - p0][c] = yv;
            pan->seed[p - p0][c] = _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), yv));
        }
    }
}

#define DEFINE_ZMM_GEMM(name, wtype, off, unpack, natural)                                         \
    /* one tile (NRMAX rows, ws bytes apart) over the panel's pairs p0..p1-1 */                    \
    INLINE void zptile_##name(const char *vw, size_t ws, const zpanel *pan, int64_t nb,            \
                              int64_t p0, int64_t p1, __m512 acc[NRMAX][NCMAX])                    \
    {                                                                                              \
        for (int64_t p = p0; p < p1; p++) {                                                        \
            const int64_t i = 2 * p, i1 = i + 1 < nb ? i + 1 : i;                                  \
            const __mmask16 keep = i1 > i    ? (__mmask16)0xFFFF                                   \
                                   : natural ? (__mmask16)0x00FF                                   \
                                             : (__mmask16)0x0F0F;                                  \
            __m512i q[NRMAX];                                                                      \
            __m512 d[NRMAX];                                                                       \
            UNROLL for (int r = 0; r < NRMAX; r++)                                                 \
            {                                                                                      \
                const wtype *w = (const wtype *)(vw + (size_t)r * ws);                             \
                q[r] = unpack(&w[i], &w[i1], &d[r]);                                               \
            }                                                                                      \
            UNROLL for (int c = 0; c < NCMAX; c++)                                                 \
            {                                                                                      \
                __m512i yv = pan->y[p - p0][c], seed = pan->seed[p - p0][c];                       \
                __m512 e = pan->e[p - p0][c];                                                      \
                /* in registers: loaded once, not once per row (L1 load bandwidth) */              \
                __asm__("" : "+v"(yv), "+v"(seed), "+v"(e));                                       \
                UNROLL for (int r = 0; r < NRMAX; r++)                                             \
                {                                                                                  \
                    const __m512i pr = _mm512_dpbusd_epi32(seed, q[r], yv);                        \
                    acc[r][c] = _mm512_mask3_fmadd_ps(_mm512_mul_ps(d[r], e),                      \
                                                      _mm512_cvtepi32_ps(pr), acc[r][c], keep);    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void gemm_p##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,       \
                             size_t xs, int64_t nc, float *y, size_t ldy)                          \
    {                                                                                              \
        const int64_t nb = n / 32, np = (nb + 1) / 2, span = nr / NRMAX;                           \
        zpanel pan;                                                                                \
        __m512 saved[ZP_TILES][NRMAX][NCMAX];                                                      \
        int64_t c0 = 0;                                                                            \
        for (int64_t j0 = 0; j0 < span; j0 += ZP_TILES) {                                          \
            const int64_t nt = span - j0 < ZP_TILES ? span - j0 : ZP_TILES;                        \
            for (c0 = 0; c0 + NCMAX <= nc; c0 += NCMAX) {                                          \
                const char *xc = (const char *)x + (size_t)c0 * xs;                                \
                for (int64_t p0 = 0; p0 < np; p0 += ZP_PAIRS) {                                    \
                    const int64_t p1 = p0 + ZP_PAIRS < np ? p0 + ZP_PAIRS : np;                    \
                    zpanel_fill(&pan, xc, xs, nb, p0, p1, off, natural);                           \
                    for (int64_t t = 0; t < nt; t++) {                                             \
                        const int64_t j = j0 + t;                                                  \
                        __m512 acc[NRMAX][NCMAX];                                                  \
                        UNROLL for (int r = 0; r < NRMAX; r++)                                     \
                            UNROLL for (int c = 0; c < NCMAX; c++) acc[r][c] =                     \
                                p0 == 0 ? _mm512_setzero_ps() : saved[t][r][c];                    \
                        zptile_##name((const char *)w + (size_t)j * ws, (size_t)span * ws, &pan,   \
                                      nb, p0, p1, acc);                                            \
                        if (p1 < np) {                                                             \
                            UNROLL for (int r = 0; r < NRMAX; r++)                                 \
                                UNROLL for (int c = 0; c < NCMAX; c++) saved[t][r][c] = acc[r][c]; \
                            continue;                                                              \
                        }                                                                          \
                        UNROLL for (int r = 0; r < NRMAX; r++)                                     \
                            UNROLL for (int c = 0; c < NCMAX; c++)                                 \
                                y[(size_t)(c0 + c) * ldy + (size_t)(j + r * span)] =               \
                                    natural ? zsum_natural(acc[r][c]) : zsum_pairs(acc[r][c]);     \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        /* rows past the spans, then columns past the groups: the plain kernel */                  \
        for (c0 = 0; c0 + NCMAX <= nc; c0 += NCMAX)                                                \
            rows_z##name(n, w, ws, nr, NRMAX, x, xs, c0, NCMAX, y, ldy, span, span);               \
        for (; c0 < nc; c0++)                                                                      \
            rows_z##name(n, w, ws, nr, ROWS_1, x, xs, c0, 1, y, ldy, 0, nr);                       \
    }

INLINE __m512i znatural_q8_0(const block_q8_0 *a, const block_q8_0 *b, __m512 *d)
{
    return _mm512_xor_si512(zq8_natural(a, b, d), _mm512_set1_epi8((char)0x80));
}
DEFINE_ZMM_GEMM(q8_0, block_q8_0, 128, znatural_q8_0, true)
DEFINE_ZMM_GEMM(q5_0, block_q5_0, 16, zunpack_q5_0, false)
DEFINE_ZMM_GEMM(iq4_nl, block_iq4_nl, 128, zunpack_iq4_nl, false)
DEFINE_ENTRY_POINTS(q4_1)
DEFINE_ENTRY_POINTS(q5_1)
DEFINE_ENTRY_POINTS(q4_K)
DEFINE_ENTRY_POINTS(q5_K)
DEFINE_ENTRY_POINTS(q6_K)
DEFINE_ENTRY_POINTS(q4_K_vnni)
DEFINE_ENTRY_POINTS(q5_K_vnni)
DEFINE_ENTRY_POINTS(q6_K_vnni)

void quant_avx512_fill(quant_kernels *k, bool has_vnni, bool has_bf16)
{
#define SET(T, name)                                                                               \
    k->vec_dot[T] = vec_dot_##name;                                                                \
    k->gemm[T] = gemm_##name;
#define SETP(T, name)                                                                              \
    k->vec_dot[T] = vec_dot_z##name;                                                               \
    k->gemm[T] = gemm_p##name;
    /* without VNNI the 32-element blocks keep the AVX2 kernels */
    if (has_vnni) {
        SET(GGML_TYPE_Q4_0, tq4_0)
        k->gemm_x8[GGML_TYPE_Q4_0] = gemm_tq4_0x8;
        k->gemm_x8[GGML_TYPE_Q4_K] = gemm_q4_Kx8;
        k->gemm_x8[GGML_TYPE_Q5_K] = gemm_q5_Kx8;
        k->gemm_x8[GGML_TYPE_Q6_K] = gemm_q6_Kx8;
        SETP(GGML_TYPE_Q5_0, q5_0)
        SETP(GGML_TYPE_Q8_0, q8_0)
        SETP(GGML_TYPE_IQ4_NL, iq4_nl)
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
#undef SETP
    k->has_vnni = has_vnni;
    k->has_bf16 = has_bf16;
}
