/*
 * quant_avx2.c — AVX2/FMA/F16C kernels: dot products of weight rows against
 * quantized activations, their batched (prefill) form, and the activation
 * quantizers. Compiled with -mavx2 -mfma -mf16c and only called after
 * quant.c's CPUID check; see quant.c for the numerical contract.
 *
 * Each dot product is an always-inline template over NC activation columns
 * (and, for the 32-element block and float types, several weight rows): vec_dot is
 * the 1 x 1 instance and gemm runs larger tiles, so a weight block is
 * unpacked once per four columns and an activation block loaded once per
 * tile of rows, while every (row, column) pair sees exactly the
 * instructions of vec_dot (the results are bit-identical).
 *
 * Signed int8 weights use the sign trick: maddubs multiplies unsigned by
 * signed bytes, so |w| meets sign(w)*x; pair sums stay within int16 for
 * every weight range used here. Q4_0 and Q5_0 stay unsigned and subtract
 * their offset through activation sums (see quant_x86.h); Q4_0 puts eight
 * weight rows across the lanes (tq4_0 there).
 */
#include <immintrin.h>
#include <math.h>

#include "quant_internal.h"

/* 8 int32 sums of signed w times signed x (w never -128 with x == -128). */
INLINE __m256i dot_i8(__m256i w, __m256i x)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* unsigned w times signed x */
INLINE __m256i dot_u8(__m256i w, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

/* acc + 8 int32 sums of unsigned w times signed x */
INLINE __m256i dot_u8_acc(__m256i acc, __m256i w, __m256i x)
{
    return _mm256_add_epi32(acc, dot_u8(w, x));
}

/* acc + pairwise int16 products */
INLINE __m256i madd16_acc(__m256i acc, __m256i p, __m256i s)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
}

/* Tiles of four rows: decode takes one column, prefill four (Q8_0 as two
 * sweeps of two rows; quant_x86.h's DEFINE_Q8_0_KERNEL). */
#define NRMAX   4
#define ROWS_1  4
#define ROWS_4  4
#define TQ_COLS 4 /* with the eight unpacked weight vectors: 12 registers */
#define K8_COLS 4 /* the same for the K-quants */

#include "quant_x86.h"

/* Eight rows across the lanes (quant_x86.h's tq4_0 and q4_Kx8): maddubs
 * pairs of u <= 15 and |x| <= 128 stay within 3840, so the products of
 * u[0..n-1] add up in int16 (at most 30720 for eight) before one madd
 * widens them; 5-bit u (<= 31, pairs within 7936) take four at a time. */
INLINE __m256i lanes_sum16(const __m256i *u, const int8_t *q, int n) /* n: 2, 4 or 8 */
{
    __m256i p[8];
    for (int k = 0; k < n; k++) {
        int32_t v;
        memcpy(&v, q + 4 * k, 4);
        p[k] = _mm256_maddubs_epi16(u[k], _mm256_set1_epi32(v));
    }
    /* a tree: short dependency chains */
    if (n == 2)
        return _mm256_add_epi16(p[0], p[1]);
    const __m256i s4 = _mm256_add_epi16(_mm256_add_epi16(p[0], p[1]), _mm256_add_epi16(p[2], p[3]));
    if (n == 4)
        return s4;
    return _mm256_add_epi16(
        s4, _mm256_add_epi16(_mm256_add_epi16(p[4], p[5]), _mm256_add_epi16(p[6], p[7])));
}

INLINE __m256i tq_dot8(__m256i seed, const __m256i u[8], const int8_t *q)
{
    return _mm256_add_epi32(seed, _mm256_madd_epi16(lanes_sum16(u, q, 8), _mm256_set1_epi16(1)));
}

/* the madd that widens the int16 sums applies the scale: (sc, sc) pairs,
 * the low half of each lane twice (a signed scale keeps its sign) */
INLINE __m256i k8_scale(__m256i sc32)
{
    return _mm256_blend_epi16(sc32, _mm256_slli_epi32(sc32, 16), 0xAA);
}

INLINE __m256i k8_sub(__m256i s, const __m256i u[8], const int8_t *q, __m256i sc, bool five)
{
    if (five)
        return _mm256_add_epi32(_mm256_add_epi32(s, _mm256_madd_epi16(lanes_sum16(u, q, 4), sc)),
                                _mm256_madd_epi16(lanes_sum16(u + 4, q + 16, 4), sc));
    return _mm256_add_epi32(s, _mm256_madd_epi16(lanes_sum16(u, q, 8), sc));
}

/* 6-bit u: maddubs pairs within 16128, two at a time in int16 */
INLINE __m256i k6_sub(__m256i s, const __m256i u[4], const int8_t *q, __m256i sc)
{
    return _mm256_add_epi32(s,
                            _mm256_add_epi32(_mm256_madd_epi16(lanes_sum16(u, q, 2), sc),
                                             _mm256_madd_epi16(lanes_sum16(u + 2, q + 8, 2), sc)));
}

/* ---- K-quants against Q8_K ------------------------------------------------ */

INLINE void kern_q4_K(int64_t n, const void *w, const char *x, size_t xs, int nc, float *out)
{
    kern_k4_256(n, w, sizeof(block_q4_K), false, x, xs, nc, out);
}

INLINE void kern_q5_K(int64_t n, const void *w, const char *x, size_t xs, int nc, float *out)
{
    kern_k4_256(n, w, sizeof(block_q5_K), true, x, xs, nc, out);
}

/* byte shuffles putting int16 scale 2k in the low lane and 2k+1 in the high */
static const uint8_t q6_scale_shuffle[4][32] = {
#define Q6S(a, b)                                                                                  \
    {                                                                                              \
        a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, b, b + 1,  \
            b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1                   \
    }
    Q6S(0, 2), Q6S(4, 6), Q6S(8, 10), Q6S(12, 14)
#undef Q6S
};

/* Q6_K: quants are used unsigned (0..63) and the -32 offset comes back as
 * 32 * sum(scale * bsum), exact in int32. */
INLINE void kern_q6_K(int64_t n, const void *vw, const char *x, size_t xs, int nc, float *out)
{
    const block_q6_K *w = vw;
    const int64_t nb = n / QK_K;
    __m256 acc[NCMAX];
    UNROLL for (int c = 0; c < nc; c++) acc[c] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i isum[NCMAX];
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            isum[c] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h;
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
            q[3] =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                _mm256_and_si256(_mm256_srli_epi16(qh, 2), _mm256_set1_epi8(0x30)));
            /* scale 8h+2k for the first 16 elements of q[k], 8h+2k+1 for the rest */
            const __m128i sc_h = _mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8);
            const __m256i sch = _mm256_broadcastsi128_si256(sc_h);
            for (int k = 0; k < 4; k++) {
                const __m256i ctl = _mm256_loadu_si256((const __m256i *)q6_scale_shuffle[k]);
                const __m256i s = _mm256_shuffle_epi8(sch, ctl);
                UNROLL for (int c = 0; c < nc; c++)
                {
                    const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
                    __m256i yv = _mm256_loadu_si256((const __m256i *)(y->qs + 128 * h + 32 * k));
                    isum[c] = _mm256_add_epi32(
                        isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yv), s));
                }
            }
        }
        const float d = h2f(w[i].d);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d), _mm256_cvtepi32_ps(isum[c]), acc[c]);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] = hsum_ps(acc[c]);
}

/* ---- float types ------------------------------------------------------------ */

INLINE __m256 load8_f32(const void *p, int64_t i)
{
    return _mm256_loadu_ps((const float *)p + i);
}

INLINE __m256 load8_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}

INLINE __m256 load8_bf16(const void *p, int64_t i)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

INLINE float elem_f32(const void *p, int64_t i)
{
    return ((const float *)p)[i];
}
INLINE float elem_f16(const void *p, int64_t i)
{
    return _cvtsh_ss(((const uint16_t *)p)[i]);
}
INLINE float elem_bf16(const void *p, int64_t i)
{
    return quant_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* Tiles of 3 rows by 4 columns (entry points: quant_float_x86.h): 12
 * accumulators, 3 weight vectors and one activation in the 16 YMM
 * registers. Every (row, column) dot keeps one accumulator that takes 8
 * elements at a time in order, one reduction, then the n % 8 trailing
 * products added in order. */
#define FLOAT_ROWS      3
#define FLOAT_COLS      4
#define FLOAT_SPANS     3 /* rows per tile for one column */
#define FLOAT_ROW_BLOCK 144
#define FLOAT_PANEL     24576 /* floats (96 KiB): four columns of up to 6144 */
#define FLOAT_LANES     8
#define FUNROLL         _Pragma("GCC unroll 8")

/* tile_NAME as quant_float_x86.h describes it */
#define DEFINE_FLOAT_TILE(name)                                                                    \
    INLINE void tile_##name(int64_t n, const char *w, size_t ws, int nr, const char *x, size_t xs, \
                            int nc, bool xf32, float *y, size_t ys, size_t ldy)                    \
    {                                                                                              \
        __m256 acc[FLOAT_ROWS][FLOAT_COLS];                                                        \
        FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++) acc[r][c] =      \
            _mm256_setzero_ps();                                                                   \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                               \
            __m256 wv[FLOAT_ROWS];                                                                 \
            FUNROLL for (int r = 0; r < nr; r++) wv[r] = load8_##name(w + (size_t)r * ws, i);      \
            FUNROLL for (int c = 0; c < nc; c++)                                                   \
            {                                                                                      \
                const char *xc = x + (size_t)c * xs;                                               \
                __m256 xv = xf32 ? load8_f32(xc, i) : load8_##name(xc, i);                         \
                /* in a register: loaded once, not once per row (L1 loads) */                      \
                __asm__("" : "+x"(xv));                                                            \
                FUNROLL for (int r = 0; r < nr; r++) acc[r][c] =                                   \
                    _mm256_fmadd_ps(wv[r], xv, acc[r][c]);                                         \
            }                                                                                      \
        }                                                                                          \
        FUNROLL for (int r = 0; r < nr; r++) FUNROLL for (int c = 0; c < nc; c++)                  \
        {                                                                                          \
            const char *wr = w + (size_t)r * ws, *xc = x + (size_t)c * xs;                         \
            float s = hsum_ps(acc[r][c]);                                                          \
            for (int64_t j = i; j < n; j++)                                                        \
                s += elem_##name(wr, j) * (xf32 ? elem_f32(xc, j) : elem_##name(xc, j));           \
            y[(size_t)c * ldy + (size_t)r * ys] = s;                                               \
        }                                                                                          \
    }

DEFINE_FLOAT_TILE(f32)
DEFINE_FLOAT_TILE(f16)
DEFINE_FLOAT_TILE(bf16)

/* n elements of a column -> F32 */
#define DEFINE_WIDEN(name)                                                                         \
    INLINE void widen_##name(float *dst, const char *src, int64_t n)                               \
    {                                                                                              \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8)                                                                 \
            _mm256_storeu_ps(dst + i, load8_##name(src, i));                                       \
        for (; i < n; i++)                                                                         \
            dst[i] = elem_##name(src, i);                                                          \
    }
DEFINE_WIDEN(f16)
DEFINE_WIDEN(bf16)

#include "quant_float_x86.h"

DEFINE_FLOAT_ENTRY_POINTS(f32, none, false)
DEFINE_FLOAT_ENTRY_POINTS(f16, f16, true)
DEFINE_FLOAT_ENTRY_POINTS(bf16, bf16, true)

/* ---- vec_dot and gemm entry points ------------------------------------------ */

DEFINE_TILED_ENTRY_POINTS(q8_0)
DEFINE_TILED_ENTRY_POINTS(q5_0)
DEFINE_TILED_ENTRY_POINTS(iq4_nl)
DEFINE_ENTRY_POINTS(q4_1)
DEFINE_ENTRY_POINTS(q5_1)
DEFINE_ENTRY_POINTS(q4_K)
DEFINE_ENTRY_POINTS(q5_K)
DEFINE_ENTRY_POINTS(q6_K)

/* ---- activation quantizers -------------------------------------------------- */

INLINE float absmax32(const float *x, __m256 v[4])
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* v[k] * id rounded to nearest even, packed to 32 int8 in element order;
 * *sum gets the sum of the 32 integers. */
INLINE __m256i round_pack32(__m256 v[4], float id, int *sum)
{
    const __m256 mul = _mm256_set1_ps(id);
    __m256i i[4];
    for (int k = 0; k < 4; k++)
        i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], mul),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (sum != NULL) {
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        *sum = hsum_epi32_128(
            _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
    }
    __m256i a = _mm256_packs_epi32(i[0], i[1]), b = _mm256_packs_epi32(i[2], i[3]);
    __m256i p = _mm256_packs_epi16(a, b);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static void quantize_q8_0(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        const float amax = absmax32(x, v);
        y[i].d = quant_f32_to_f16(amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        _mm256_storeu_si256((__m256i *)y[i].qs, round_pack32(v, id, NULL));
    }
}

static void quantize_q8_1(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        __m256 v[4];
        const float amax = absmax32(x, v);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum;
        y[i].d = quant_f32_to_f16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, round_pack32(v, id, &sum));
        y[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

static void quantize_q8_K(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f;
        for (int k = 0; k < QK_K; k += 32) {
            __m256 v[4];
            amax = fmaxf(amax, absmax32(x + k, v));
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the scale's sign follows the first value of largest magnitude */
        const __m256 sign = _mm256_set1_ps(-0.0f), am = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < QK_K; k += 8) {
            __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k));
            int m = _mm256_movemask_ps(_mm256_cmp_ps(a, am, _CMP_EQ_OQ));
            if (m != 0) {
                first = k + __builtin_ctz((unsigned)m);
                break;
            }
        }
        const float iscale = -127.f / x[first];
        for (int k = 0; k < QK_K; k += 32) {
            __m256 v[4];
            for (int j = 0; j < 4; j++)
                v[j] = _mm256_loadu_ps(x + k + 8 * j);
            __m256i q = round_pack32(v, iscale, NULL);
            q = _mm256_min_epi8(q, _mm256_set1_epi8(127));
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), q);
            /* sums of 16: byte pairs, then pairs of pairs, then within lanes */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q),
                                          _mm256_set1_epi16(1));
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            y[i].bsums[k / 16] = (int16_t)_mm256_cvtsi256_si32(s);
            y[i].bsums[k / 16 + 1] = (int16_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
        }
        y[i].d = 1 / iscale;
    }
}

static void convert_f16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

/* Up to four 8-lane accumulators per pass over the rows, so the adds of one
 * position form independent chains; positions stay in order per lane. */
#define DEFINE_WSUM(name, load8, weight)                                                           \
    static void wsum_##name(int64_t n, float *out, const void *rows, size_t stride,                \
                            const float *p, int64_t nrows)                                         \
    {                                                                                              \
        const int64_t n8 = n & ~(int64_t)7;                                                        \
        for (int64_t d0 = 0; d0 < n8; d0 += 32) {                                                  \
            const int nv = n8 - d0 >= 32 ? 4 : (int)((n8 - d0) / 8);                               \
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),        \
                             _mm256_setzero_ps()};                                                 \
            for (int64_t j = 0; j < nrows; j++) {                                                  \
                const char *r = (const char *)rows + (size_t)j * stride;                           \
                const __m256 pj = _mm256_set1_ps(weight(p[j]));                                    \
                UNROLL for (int k = 0; k < nv; k++) acc[k] =                                       \
                    _mm256_fmadd_ps(pj, load8(r, d0 + 8 * k), acc[k]);                             \
            }                                                                                      \
            for (int k = 0; k < nv; k++)                                                           \
                _mm256_storeu_ps(out + d0 + 8 * k, acc[k]);                                        \
        }                                                                                          \
        for (int64_t d = n8; d < n; d++) {                                                         \
            float a = 0.0f;                                                                        \
            for (int64_t j = 0; j < nrows; j++)                                                    \
                a = fmaf(weight(p[j]), elem_##name((const char *)rows + (size_t)j * stride, d),    \
                         a);                                                                       \
            out[d] = a;                                                                            \
        }                                                                                          \
    }

INLINE float round_f16(float f)
{
    return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
INLINE float keep_f32(float f)
{
    return f;
}

DEFINE_WSUM(f16, load8_f16, round_f16)
DEFINE_WSUM(f32, load8_f32, keep_f32)

void quant_avx2_fill(quant_kernels *k)
{
#define SET(T, name)                                                                               \
    k->vec_dot[T] = vec_dot_##name;                                                                \
    k->gemm[T] = gemm_##name;
    SET(GGML_TYPE_Q4_0, tq4_0)
    SET(GGML_TYPE_Q8_0, q8_0)
    SET(GGML_TYPE_Q5_0, q5_0)
    SET(GGML_TYPE_IQ4_NL, iq4_nl)
    SET(GGML_TYPE_Q4_1, q4_1)
    SET(GGML_TYPE_Q5_1, q5_1)
    SET(GGML_TYPE_Q4_K, q4_K)
    SET(GGML_TYPE_Q5_K, q5_K)
    SET(GGML_TYPE_Q6_K, q6_K)
    SET(GGML_TYPE_F32, f32)
    SET(GGML_TYPE_F16, f16)
    SET(GGML_TYPE_BF16, bf16)
#undef SET
    k->gemm_x8[GGML_TYPE_Q4_0] = gemm_tq4_0x8;
    k->gemm_x8[GGML_TYPE_Q4_K] = gemm_q4_Kx8;
    k->gemm_x8[GGML_TYPE_Q5_K] = gemm_q5_Kx8;
    k->gemm_x8[GGML_TYPE_Q6_K] = gemm_q6_Kx8;
    k->quantize[GGML_TYPE_Q8_0] = quantize_q8_0;
    k->quantize[GGML_TYPE_Q8_1] = quantize_q8_1;
    k->quantize[GGML_TYPE_Q8_K] = quantize_q8_K;
    k->quantize[GGML_TYPE_F16] = convert_f16;
    k->wsum[GGML_TYPE_F16] = wsum_f16;
    k->wsum[GGML_TYPE_F32] = wsum_f32;
}
