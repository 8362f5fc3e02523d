/*
 * quant_x86.h — x86 helpers and the kernel templates for 32-element block
 * types and for the eight-row (repacked) kernels that quant_avx2.c and
 * quant_avx512.c share (included by those two files only, each compiled
 * with its own ISA flags).
 *
 * The includer first defines
 *   __m256i dot_i8(__m256i w, __m256i x)  8 int32 sums of 4 signed products
 *   __m256i dot_u8(__m256i w, __m256i x)  the same with w unsigned
 *   __m256i dot_u8_acc(__m256i acc, __m256i w, __m256i x)  acc + dot_u8
 *   __m256i madd16_acc(__m256i acc, __m256i p, __m256i s)  acc + madd(p, s)
 *   NRMAX, ROWS_1, ROWS_4  rows per tile at most, for 1 and NCMAX columns
 *   TQ_COLS  columns per panel of Q4_0's eight-rows-across-lanes kernel
 *   K8_COLS  the same for the K-quants' (Q4_K, Q5_K, Q6_K)
 * (maddubs + madd on AVX2, one vpdpbusd with AVX-512 VNNI) and, after the
 * include, tq_dot8 (see gemm_tq4_0) and k8_scale, k8_sub and k6_sub (see
 * gemm_q4_Kx8 and gemm_q6_Kx8), then
 * instantiates the templates with DEFINE_Q8_0_KERNEL / DEFINE_Q8_1_KERNEL
 * and their entry points with DEFINE_TILED_ENTRY_POINTS.
 */
#ifndef GHOST_QUANT_X86_H
#define GHOST_QUANT_X86_H

#include <assert.h>
#include <immintrin.h>

#include "quant_internal.h"

INLINE float hsum4(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

INLINE float hsum_ps(__m256 v)
{
    return hsum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

INLINE int hsum_epi32_128(__m128i v)
{
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

INLINE float h2f(quant_half h)
{
    return _cvtsh_ss(h);
}

/* A half-precision scale broadcast to 4 floats: a broadcast and one
 * conversion, where set1(h2f(h)) costs an insert, a scalar conversion and a
 * broadcast. Exact either way. */
INLINE __m128 h2f4(quant_half h)
{
    return _mm_cvtph_ps(_mm_set1_epi16((short)h));
}

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

/* Q5_0 stays unsigned (0..31): its offset returns as a per-lane bias
 * -off * (sum of the lane's 4 activations), which seeds the u8 x s8 dot.
 * The lane sums equal the signed products exactly, and the bias is computed
 * once per block and column for all rows of a tile. (Q4_0 has a kernel of
 * its own, gemm_tq4_0 below.) */
INLINE __m256i unpack_q8_0(const block_q8_0 *b)
{
    return _mm256_loadu_si256((const __m256i *)b->qs);
}

INLINE __m256i unpack_q5_0(const block_q5_0 *b)
{
    __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

INLINE __m256i unpack_iq4_nl(const block_iq4_nl *b)
{
    const __m256i lut =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4nl_values));
    return _mm256_shuffle_epi8(lut, nibbles32(b->qs));
}

/* -off * (sum of each lane's 4 activations); unused when off == 0 */
INLINE __m256i off_bias(__m256i x, int off)
{
    if (off == 0)
        return _mm256_setzero_si256();
    const __m256i s = dot_u8_acc(_mm256_setzero_si256(), _mm256_set1_epi8((char)off), x);
    return _mm256_sub_epi32(_mm256_setzero_si256(), s);
}

/* 8 int32 lane sums of (q - off) * x */
INLINE __m256i block_dot(__m256i q, __m256i x, __m256i bias, int off)
{
    return off ? dot_u8_acc(bias, q, x) : dot_i8(q, x);
}

/* The half-precision scales of block i of rows r < nr (weights or
 * activations, ws bytes apart), blocks of bsize bytes that start with their
 * scale, as four floats. They are gathered in a general register: the
 * vector ports are what these kernels run out of. */
INLINE __m128 scales4(const void *vw, size_t ws, int nr, int64_t i, size_t bsize)
{
    uint64_t dh = 0;
    UNROLL for (int r = 0; r < nr; r++)
    {
        uint16_t h;
        memcpy(&h, (const char *)vw + (size_t)r * ws + (size_t)i * bsize, 2);
        dh |= (uint64_t)h << (16 * r);
    }
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)dh));
}
_Static_assert(offsetof(block_q8_0, d) == 0 && offsetof(block_q5_0, d) == 0 &&
                   offsetof(block_iq4_nl, d) == 0,
               "scales4 reads the scale at the start of a block");

/* one row's product broadcast from the four in each half of de */
INLINE __m256 lane_bcast(__m256 de, int r)
{
    return r == 0   ? _mm256_permute_ps(de, 0x00)
           : r == 1 ? _mm256_permute_ps(de, 0x55)
           : r == 2 ? _mm256_permute_ps(de, 0xAA)
                    : _mm256_permute_ps(de, 0xFF);
}

/* Tiles of nr <= NRMAX weight rows (ws bytes apart) by nc <= NCMAX columns:
 * out[r * NCMAX + c]. Every (row, column) pair sums in quant.c's dot_q8_0
 * order, which the AVX-512 kernels keep too: the int32 lanes of block i
 * scaled and FMA'd into one of two accumulators (even and odd blocks), the
 * two added lane by lane, then hsum_ps. Q8_0 then gives the scalar
 * reference's bits, and all three types the AVX-512 kernels' (llama.cpp's
 * greedy tokens are held to that order: under the former single
 * accumulator a near-tie in TinyStories-656K-Q8_0 flipped). The scale
 * product d_r * e_c is the same float however it is formed, so vec_dot
 * (1 x 1) and gemm agree bit for bit.
 *
 * A tile whose two chains fit the registers beside its operands (up to
 * Q8_PAIRED pairs: decode's 4 x 1) takes the blocks in pairs, block i into
 * the even accumulators and i + 1 into the odd ones. Larger tiles would
 * spill both sets, but the chains never meet before the end: they take the
 * even blocks of a chunk of Q8_CHUNK, then its odd ones (from L1 by then),
 * so the loop holds one accumulator per pair, the registers of one chain.
 * (In pairs, a one-row Q8_0 tile that fitted lost a fifth of prefill; in
 * passes, decode's Q8_0 tile from DRAM lost a fifth: bench_kernels and a
 * thread-time probe, one AVX2 thread, Zen 4.)
 *
 * The columns are swept cw at a time over the whole row. Types whose
 * unpacking costs more (Q5_0, IQ4_NL) take all four columns per sweep and
 * let the accumulators spill. The four rows' scales are converted together
 * and multiplied by a column's scale in one step; vpermilps then broadcasts
 * each row's product (llama.cpp's tinyBLAS does the same).
 *
 * Q8_0 (wide) takes a 4 x 4 tile as two sweeps of two rows by four
 * columns: eight accumulators, two weight vectors and their |w| stay in
 * the 16 YMM registers, and |w| (the sign trick's one per-row operation on
 * the multiply ports) serves four columns instead of two. Against two
 * accumulators per pair (32 spilled) and a multiply per pair for the
 * scales, 1.1B-shape Q8_0 prefill gained 15 % and decode 15 % in a true
 * AVX2 build.
 */
#define Q8_CHUNK  32 /* blocks; even, so that a chunk's blocks keep their parity */
#define Q8_PAIRED 4  /* (row, column) pairs a sweep takes with both chains live */

#define DEFINE_Q8_0_KERNEL(name, wtype, off, cw, wide)                                             \
    /* block i of nr rows against the ncw columns at x into a */                                   \
    INLINE void sstep_##name(int64_t i, const void *vw, size_t ws, int nr, const char *x,          \
                             size_t xs, int ncw, __m256 a[NRMAX][cw])                              \
    {                                                                                              \
        __m256i q[NRMAX];                                                                          \
        UNROLL for (int r = 0; r < nr; r++) q[r] =                                                 \
            unpack_##name((const wtype *)((const char *)vw + (size_t)r * ws) + i);                 \
        const __m128 d4 = scales4(vw, ws, nr, i, sizeof(wtype));                                   \
        UNROLL for (int c = 0; c < ncw; c++)                                                       \
        {                                                                                          \
            const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs) + i;                    \
            const __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);                         \
            const __m256i b = off_bias(yv, off);                                                   \
            __m256 de = _mm256_castps128_ps256(_mm_mul_ps(d4, h2f4(y->d)));                        \
            de = _mm256_permute2f128_ps(de, de, 0);                                                \
            UNROLL for (int r = 0; r < nr; r++) a[r][c] = _mm256_fmadd_ps(                         \
                lane_bcast(de, r), _mm256_cvtepi32_ps(block_dot(q[r], yv, b, off)), a[r][c]);      \
        }                                                                                          \
    }                                                                                              \
    /* blocks i, i + 2, ... < i1 into acc */                                                       \
    INLINE void spass_##name(int64_t i, int64_t i1, const void *vw, size_t ws, int nr,             \
                             const char *x, size_t xs, int ncw, __m256 acc[NRMAX][cw])             \
    {                                                                                              \
        __m256 a[NRMAX][cw];                                                                       \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < ncw; c++) a[r][c] =         \
            acc[r][c];                                                                             \
        for (; i < i1; i += 2)                                                                     \
            sstep_##name(i, vw, ws, nr, x, xs, ncw, a);                                            \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < ncw; c++) acc[r][c] =       \
            a[r][c];                                                                               \
    }                                                                                              \
    /* nr rows against the ncw columns at x, out[r * NCMAX + c] */                                 \
    INLINE void sweep_##name(int64_t nb, const void *vw, size_t ws, int nr, const char *x,         \
                             size_t xs, int ncw, float *out)                                       \
    {                                                                                              \
        __m256 acc[2][NRMAX][cw];                                                                  \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < ncw; c++) acc[0][r][c] =    \
            acc[1][r][c] = _mm256_setzero_ps();                                                    \
        if (nr * ncw <= Q8_PAIRED) { /* both chains in registers, blocks in pairs */               \
            int64_t i = 0;                                                                         \
            for (; i + 1 < nb; i += 2) {                                                           \
                sstep_##name(i, vw, ws, nr, x, xs, ncw, acc[0]);                                   \
                sstep_##name(i + 1, vw, ws, nr, x, xs, ncw, acc[1]);                               \
            }                                                                                      \
            if (i < nb)                                                                            \
                sstep_##name(i, vw, ws, nr, x, xs, ncw, acc[0]);                                   \
        } else {                                                                                   \
            for (int64_t i0 = 0; i0 < nb; i0 += Q8_CHUNK) {                                        \
                const int64_t i1 = i0 + Q8_CHUNK < nb ? i0 + Q8_CHUNK : nb;                        \
                spass_##name(i0, i1, vw, ws, nr, x, xs, ncw, acc[0]);                              \
                spass_##name(i0 + 1, i1, vw, ws, nr, x, xs, ncw, acc[1]);                          \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < nr; r++) UNROLL for (int c = 0; c < ncw; c++)                   \
            out[r * NCMAX + c] = hsum_ps(_mm256_add_ps(acc[0][r][c], acc[1][r][c]));               \
    }                                                                                              \
    /* blocks i, i + 2, ... < i1 of two rows against NCMAX columns */                              \
    INLINE void wpass_##name(int64_t i, int64_t i1, const void *vw, size_t ws, const char *x,      \
                             size_t xs, __m256 acc[2][NCMAX])                                      \
    {                                                                                              \
        __m256 a[2][NCMAX];                                                                        \
        UNROLL for (int r = 0; r < 2; r++) UNROLL for (int c = 0; c < NCMAX; c++) a[r][c] =        \
            acc[r][c];                                                                             \
        for (; i < i1; i += 2) {                                                                   \
            const __m128 e4 = scales4(x, xs, NCMAX, i, sizeof(block_q8_0));                        \
            UNROLL for (int r = 0; r < 2; r++)                                                     \
            {                                                                                      \
                const wtype *w = (const wtype *)((const char *)vw + (size_t)r * ws) + i;           \
                const __m256i q = unpack_##name(w);                                                \
                __m256 de = _mm256_castps128_ps256(_mm_mul_ps(h2f4(w->d), e4));                    \
                de = _mm256_permute2f128_ps(de, de, 0);                                            \
                UNROLL for (int c = 0; c < NCMAX; c++)                                             \
                {                                                                                  \
                    const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)c * xs) + i;            \
                    const __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);                 \
                    a[r][c] = _mm256_fmadd_ps(                                                     \
                        lane_bcast(de, c),                                                         \
                        _mm256_cvtepi32_ps(block_dot(q, yv, off_bias(yv, off), off)), a[r][c]);    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int r = 0; r < 2; r++) UNROLL for (int c = 0; c < NCMAX; c++) acc[r][c] =      \
            a[r][c];                                                                               \
    }                                                                                              \
    /* two rows against NCMAX columns: the rows' |w| then serve four columns */                    \
    INLINE void wide_##name(int64_t nb, const void *vw, size_t ws, const char *x, size_t xs,       \
                            float *out)                                                            \
    {                                                                                              \
        __m256 acc[2][2][NCMAX];                                                                   \
        UNROLL for (int r = 0; r < 2; r++) UNROLL for (int c = 0; c < NCMAX; c++) acc[0][r][c] =   \
            acc[1][r][c] = _mm256_setzero_ps();                                                    \
        for (int64_t i0 = 0; i0 < nb; i0 += Q8_CHUNK) {                                            \
            const int64_t i1 = i0 + Q8_CHUNK < nb ? i0 + Q8_CHUNK : nb;                            \
            wpass_##name(i0, i1, vw, ws, x, xs, acc[0]);                                           \
            wpass_##name(i0 + 1, i1, vw, ws, x, xs, acc[1]);                                       \
        }                                                                                          \
        UNROLL for (int r = 0; r < 2; r++) UNROLL for (int c = 0; c < NCMAX; c++)                  \
            out[r * NCMAX + c] = hsum_ps(_mm256_add_ps(acc[0][r][c], acc[1][r][c]));               \
    }                                                                                              \
    INLINE void kern_##name(int64_t n, const void *vw, size_t ws, int nr, const char *x,           \
                            size_t xs, int nc, float *out)                                         \
    {                                                                                              \
        if ((wide) && nr % 2 == 0 && nc == NCMAX) {                                                \
            for (int r0 = 0; r0 < nr; r0 += 2)                                                     \
                wide_##name(n / 32, (const char *)vw + (size_t)r0 * ws, ws, x, xs,                 \
                            out + r0 * NCMAX);                                                     \
            return;                                                                                \
        }                                                                                          \
        /* cw columns per sweep where they divide nc (gemm's NCMAX), else one */                   \
        if (nc % (cw) != 0) {                                                                      \
            for (int c = 0; c < nc; c++)                                                           \
                sweep_##name(n / 32, vw, ws, nr, x + (size_t)c * xs, xs, 1, out + c);              \
            return;                                                                                \
        }                                                                                          \
        for (int c0 = 0; c0 < nc; c0 += (cw))                                                      \
            sweep_##name(n / 32, vw, ws, nr, x + (size_t)c0 * xs, xs, cw, out + c0);               \
    }

/* vec_dot is the 1 x 1 tile; gemm covers the rows in tiles of ROWS_4 rows
 * by NCMAX columns, then ROWS_1 rows by single columns (decode's case), and
 * leftover rows one at a time.
 *
 * A tile's rows are not neighbours: the rows split into nt equal spans and
 * tile j takes row j of each span. Each span is then read front to back as
 * one long stream, which the hardware prefetcher follows; neighbouring rows
 * would make nr streams of one row each, too short for it to pick up
 * (measured: decode at half speed). */
#define DEFINE_TILED_ROWS(name)                                                                    \
    static float vec_dot_##name(int64_t n, const void *w, const void *x)                           \
    {                                                                                              \
        float out[NRMAX * NCMAX];                                                                  \
        kern_##name(n, w, 0, 1, x, 0, 1, out);                                                     \
        return out[0];                                                                             \
    }                                                                                              \
    /* rows j, j + span, ... (nt of them) for j in [j0, j1) of w against                           \
     * columns c0..c0+nc-1; the rows past nt spans when j1 reaches the end */                      \
    INLINE void rows_##name(int64_t n, const char *w, size_t ws, int64_t nrows, int nt,            \
                            const char *x, size_t xs, int64_t c0, int nc, float *y, size_t ldy,    \
                            int64_t j0, int64_t j1)                                                \
    {                                                                                              \
        const int64_t span = nrows / nt;                                                           \
        const char *xc = x + (size_t)c0 * xs;                                                      \
        if (j1 > span)                                                                             \
            j1 = span;                                                                             \
        for (int64_t j = j0; j < j1; j++) {                                                        \
            float out[NRMAX * NCMAX];                                                              \
            kern_##name(n, w + (size_t)j * ws, (size_t)span * ws, nt, xc, xs, nc, out);            \
            for (int r = 0; r < nt; r++)                                                           \
                for (int c = 0; c < nc; c++)                                                       \
                    y[(size_t)(c0 + c) * ldy + (size_t)(j + r * span)] = out[r * NCMAX + c];       \
        }                                                                                          \
        if (j1 < span)                                                                             \
            return;                                                                                \
        for (int64_t r = span * nt; r < nrows; r++) {                                              \
            float out[NRMAX * NCMAX];                                                              \
            kern_##name(n, w + (size_t)r * ws, 0, 1, xc, xs, nc, out);                             \
            for (int c = 0; c < nc; c++)                                                           \
                y[(size_t)(c0 + c) * ldy + (size_t)r] = out[c];                                    \
        }                                                                                          \
    }

/* DEFINE_TILED_ROWS plus gemm_NAME */
#define DEFINE_TILED_ENTRY_POINTS(name)                                                            \
    DEFINE_TILED_ROWS(name)                                                                        \
    /* Cache blocking: a block of rows meets every column group before the                         \
     * next block starts, so the weights come from DRAM once and then from                         \
     * L2, instead of once per group of NCMAX columns. */                                          \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nc, float *y, size_t ldy)                           \
    {                                                                                              \
        const int64_t span = nr / ROWS_4, block = gemm_block_rows(ws * ROWS_4);                    \
        int64_t c = 0;                                                                             \
        if (nc >= NCMAX) { /* once at least: with span 0 the tail rows remain */                   \
            for (int64_t j0 = 0; j0 == 0 || j0 < span; j0 += block)                                \
                for (c = 0; c + NCMAX <= nc; c += NCMAX)                                           \
                    rows_##name(n, w, ws, nr, ROWS_4, x, xs, c, NCMAX, y, ldy, j0, j0 + block);    \
        }                                                                                          \
        for (; c < nc; c++)                                                                        \
            rows_##name(n, w, ws, nr, ROWS_1, x, xs, c, 1, y, ldy, 0, nr);                         \
    }

DEFINE_Q8_0_KERNEL(q8_0, block_q8_0, 0, 2, true)
DEFINE_Q8_0_KERNEL(q5_0, block_q5_0, 16, 4, false)
DEFINE_Q8_0_KERNEL(iq4_nl, block_iq4_nl, 0, 4, false)

/* ---- Q4_1 / Q5_1 against Q8_1 (unsigned quants plus a min) ----------------- */

INLINE __m256i unpack_q4_1(const block_q4_1 *b)
{
    return nibbles32(b->qs);
}

INLINE __m256i unpack_q5_1(const block_q5_1 *b)
{
    __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

#define DEFINE_Q8_1_KERNEL(name, wtype)                                                            \
    INLINE void kern_##name(int64_t n, const void *vw, const char *x, size_t xs, int nc,           \
                            float *out)                                                            \
    {                                                                                              \
        const wtype *w = vw;                                                                       \
        const int64_t nb = n / 32;                                                                 \
        __m256 acc[NCMAX];                                                                         \
        float sm[NCMAX];                                                                           \
        UNROLL for (int c = 0; c < nc; c++)                                                        \
        {                                                                                          \
            acc[c] = _mm256_setzero_ps();                                                          \
            sm[c] = 0.0f;                                                                          \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const __m256i q = unpack_##name(&w[i]);                                                \
            const float d = h2f(w[i].d), m = h2f(w[i].m);                                          \
            UNROLL for (int c = 0; c < nc; c++)                                                    \
            {                                                                                      \
                const block_q8_1 *y = (const block_q8_1 *)(x + (size_t)c * xs) + i;                \
                __m256i p = dot_u8(q, _mm256_loadu_si256((const __m256i *)y->qs));                 \
                acc[c] =                                                                           \
                    _mm256_fmadd_ps(_mm256_set1_ps(d * h2f(y->d)), _mm256_cvtepi32_ps(p), acc[c]); \
                sm[c] += m * h2f(y->s);                                                            \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int c = 0; c < nc; c++) out[c] = hsum_ps(acc[c]) + sm[c];                      \
    }

DEFINE_Q8_1_KERNEL(q4_1, block_q4_1)
DEFINE_Q8_1_KERNEL(q5_1, block_q5_1)

/* quant_k4_scales on vector lanes: bytes 0..7 the scales, 8..15 the mins.
 * Reads 16 bytes from s, the 12 scale bytes and the 4 after them, which
 * Q4_K and Q5_K blocks always have (qh or qs follows). */
INLINE __m128i k4_scales_mins(const uint8_t *s)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)s); /* u0 u1 u2 - */
    const __m128i lo6 = _mm_and_si128(v, _mm_set1_epi32(0x3f3f3f3f));
    const __m128i u2 =
        _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_set_epi32(0, 0, 4, 0));
    const __m128i top = _mm_and_si128(_mm_srli_epi32(v, 6), _mm_set1_epi32(0x03030303));
    const __m128i hi6 =
        _mm_or_si128(_mm_and_si128(u2, _mm_set1_epi32(0x0f0f0f0f)), _mm_slli_epi32(top, 4));
    return _mm_unpacklo_epi32(lo6, hi6);
}

/* min * (sum of the sub-block's 32 activations) for the 8 sub-blocks, in
 * pairs: 4 int32 lanes. m16: the 8 mins as int16 */
INLINE __m128i k4_mins_dot4(__m128i m16, const int16_t *bsums)
{
    __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    __m128i pairs = _mm_hadd_epi16(b0, b1); /* |pair| <= 32*127: no overflow */
    return _mm_madd_epi16(pairs, m16);
}

/* accm + dm * k4_mins_dot4: the mins' part kept in four lanes per column
 * and folded once, by hsum4, at the end (as llama.cpp's x86 kernels do) */
INLINE __m128 k4_mins_acc(__m128 accm, float dm, __m128i m16, const int16_t *bsums)
{
    return _mm_fmadd_ps(_mm_set1_ps(dm), _mm_cvtepi32_ps(k4_mins_dot4(m16, bsums)), accm);
}

/* Q4_K and Q5_K against Q8_K on YMM registers; they share everything but
 * the fifth bit. On CPUs that split 512-bit operations this beats the ZMM
 * form, and with VNNI madd16_acc is one vpdpwssd. */
INLINE void kern_k4_256(int64_t n, const void *vw, size_t bsize, bool five, const char *x,
                        size_t xs, int nc, float *out)
{
    const int64_t nb = n / QK_K;
    __m256 acc[NCMAX];
    __m128 accm[NCMAX];
    UNROLL for (int c = 0; c < nc; c++)
    {
        acc[c] = _mm256_setzero_ps();
        accm[c] = _mm_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nb; i++) {
        /* Q4_K and Q5_K start alike: d, dmin, scales[12]; then Q5_K has qh */
        const block_q4_K *w4 = (const block_q4_K *)((const char *)vw + (size_t)i * bsize);
        const uint8_t *qs = five ? ((const block_q5_K *)w4)->qs : w4->qs;
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)((const block_q5_K *)w4)->qh)
                          : _mm256_setzero_si256();
        const __m128i scm = k4_scales_mins(w4->scales);
        const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(scm, 8));
        /* decode (nc = 1) takes two chains: with one it waits on eight
         * dependent vpdpwssd per block (integer sums: the order is free);
         * with NCMAX columns the tile has chains enough */
        __m256i isum[NCMAX], isum2 = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < nc; c++) isum[c] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(
                    hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            const __m256i s_lo = _mm256_shuffle_epi8(
                              s16, _mm256_set1_epi16((short)(0x0101 * 4 * j + 0x100))),
                          s_hi = _mm256_shuffle_epi8(
                              s16, _mm256_set1_epi16((short)(0x0101 * (4 * j + 2) + 0x100)));
            UNROLL for (int c = 0; c < nc; c++)
            {
                const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
                __m256i yl = _mm256_loadu_si256((const __m256i *)(y->qs + 64 * j));
                __m256i yh = _mm256_loadu_si256((const __m256i *)(y->qs + 64 * j + 32));
                isum[c] = madd16_acc(isum[c], _mm256_maddubs_epi16(lo, yl), s_lo);
                __m256i *const h = nc == 1 ? &isum2 : &isum[c];
                *h = madd16_acc(*h, _mm256_maddubs_epi16(hi, yh), s_hi);
            }
        }
        if (nc == 1)
            isum[0] = _mm256_add_epi32(isum[0], isum2);
        const float d = h2f(w4->d), dmin = h2f(w4->dmin);
        UNROLL for (int c = 0; c < nc; c++)
        {
            const block_q8_K *y = (const block_q8_K *)(x + (size_t)c * xs) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d), _mm256_cvtepi32_ps(isum[c]), acc[c]);
            accm[c] = k4_mins_acc(accm[c], dmin * y->d, m16, y->bsums);
        }
    }
    UNROLL for (int c = 0; c < nc; c++) out[c] = hsum_ps(acc[c]) - hsum4(accm[c]);
}

/* ---- Q4_0 with eight rows across the lanes --------------------------------- */

/* Q4_0 sums each block exactly in int32 and scales it as quant.c's dot_q4_0
 * does (s += (d * e) * sum, every product and sum rounded on its own), so
 * this kernel gives the scalar reference's bits for any tile shape and ISA.
 * Eight weight rows sit across the lanes of a YMM register: a block of each
 * is transposed in registers to four bytes per row and lane, each group of
 * four activations is broadcast from memory against them, and one block's
 * float work serves eight (row, column) pairs. The -8 offset returns as
 * -8 * (sum of the activation block), which with the activation scales is
 * computed once per panel of columns and kept on the stack.
 *
 * The includer defines TQ_COLS (columns per panel, as its registers allow)
 * and tq_dot8: seed + the int32 lane sums of u[k] (unsigned) times the
 * four activations q[4k..4k+3], k = 0..7. */
INLINE __m256i tq_dot8(__m256i seed, const __m256i u[8], const int8_t *q);

#define TQ_AUX 512 /* blocks per panel whose sums and scales stay on the stack */

/* activation blocks i0..i1-1 of columns c0..c0+pc-1: -8 * sum, scale */
INLINE void tq_fill(const char *x, size_t xs, int64_t c0, int pc, int64_t i0, int64_t i1,
                    int32_t *s8, float *e)
{
    for (int c = 0; c < pc; c++) {
        const block_q8_0 *y = (const block_q8_0 *)(x + (size_t)(c0 + c) * xs);
        for (int64_t i = i0; i < i1; i++) {
            const __m256i s =
                dot_u8(_mm256_set1_epi8(8), _mm256_loadu_si256((const __m256i *)y[i].qs));
            s8[c * TQ_AUX + (i - i0)] = -hsum_epi32_128(
                _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
            e[c * TQ_AUX + (i - i0)] = h2f(y[i].d);
        }
    }
}

/* block i of 8 rows: u[k] = elements 4k..4k+3 of every row (lane = row),
 * d = the rows' scales */
INLINE void tq_rows(const char *const *rows, int64_t i, __m256i u[8], __m256 *d)
{
#define TQ_ROW(r) ((const block_q4_0 *)rows[r] + i)
    __m256i p[4];
    for (int j = 0; j < 4; j++)
        p[j] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)TQ_ROW(j)->qs)),
            _mm_loadu_si128((const __m128i *)TQ_ROW(j + 4)->qs), 1);
    const __m256i t0 = _mm256_unpacklo_epi32(p[0], p[1]), t1 = _mm256_unpackhi_epi32(p[0], p[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(p[2], p[3]), t3 = _mm256_unpackhi_epi32(p[2], p[3]);
    const __m256i t[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; k++) {
        u[k] = _mm256_and_si256(t[k], m4);
        u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(t[k], 4), m4);
    }
    uint64_t lo = 0, hi = 0;
    for (int r = 0; r < 4; r++) {
        lo |= (uint64_t)TQ_ROW(r)->d << (16 * r);
        hi |= (uint64_t)TQ_ROW(r + 4)->d << (16 * r);
    }
#undef TQ_ROW
    *d = _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* The same from a group repacked at load time (quant_repack_x8): the
 * scales and the transposed quants are already in lane order, so a block
 * costs five loads instead of eight loads, four inserts, eight unpacks and
 * sixteen scalar operations for the scales. */
INLINE void tq_rows_x8(const char *group, int64_t i, __m256i u[8], __m256 *d)
{
    const char *b = group + (size_t)i * 8 * sizeof(block_q4_0);
    *d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; k++) {
        const __m256i t = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * k));
        u[k] = _mm256_and_si256(t, m4);
        u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
    }
}

/* 8 rows (a repacked group at rows[0] when x8) against columns
 * c0..c0+pc-1, blocks i0..i1-1, with the activation sums and scales s8/e of
 * those blocks */
INLINE void tq_tile(const char *const *rows, bool x8, const char *next, const char *x, size_t xs,
                    int64_t c0, int pc, int64_t i0, int64_t i1, const int32_t *s8, const float *e,
                    __m256 *acc)
{
    for (int64_t i = i0; i < i1; i++) {
        __m256i u[8];
        __m256 d;
        /* Eight separate rows: the next group's, one block's share (8
         * blocks) per step: a group is a few KiB of neighbouring rows, too
         * short a stream for the hardware prefetcher to pick up in time. A
         * repacked group is one sequential stream, which the hardware
         * follows best on its own when decoding (one column: software
         * prefetches cost 10 % there); a panel of columns, slower per byte,
         * gains from asking 16 blocks ahead. */
        const char *pf = x8 ? rows[0] + (size_t)(i + 16) * 8 * sizeof(block_q4_0)
                            : next + (size_t)i * 8 * sizeof(block_q4_0);
        if (!x8 || pc > 1) {
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 128, _MM_HINT_T0);
        }
        if (x8)
            tq_rows_x8(rows[0], i, u, &d);
        else
            tq_rows(rows, i, u, &d);
        UNROLL for (int c = 0; c < pc; c++)
        {
            const int8_t *q = ((const block_q8_0 *)(x + (size_t)(c0 + c) * xs) + i)->qs;
            const __m256i s = tq_dot8(_mm256_set1_epi32(s8[c * TQ_AUX + (i - i0)]), u, q);
            const __m256 de = _mm256_mul_ps(d, _mm256_set1_ps(e[c * TQ_AUX + (i - i0)]));
            acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(de, _mm256_cvtepi32_ps(s)));
        }
    }
}

INLINE void tq_panel(int64_t n, const char *w, size_t ws, bool x8, int64_t nr, const char *x,
                     size_t xs, int64_t c0, int pc, float *y, size_t ldy)
{
    const int64_t nb = n / 32;
    int32_t s8[TQ_COLS * TQ_AUX];
    float e[TQ_COLS * TQ_AUX];
    const bool once = nb <= TQ_AUX; /* else refilled per row group and chunk */
    if (once)
        tq_fill(x, xs, c0, pc, 0, nb, s8, e);
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        const int nv = nr - r0 < 8 ? (int)(nr - r0) : 8;
        /* a short last group repeats its last row; those lanes are not stored */
        const char *rows[8];
        for (int r = 0; r < 8; r++)
            rows[r] = w + (size_t)(r0 + (r < nv ? r : nv - 1)) * ws;
        __m256 acc[TQ_COLS];
        UNROLL for (int c = 0; c < pc; c++) acc[c] = _mm256_setzero_ps();
        for (int64_t i0 = 0; i0 < nb; i0 += TQ_AUX) {
            const int64_t i1 = i0 + TQ_AUX < nb ? i0 + TQ_AUX : nb;
            if (!once)
                tq_fill(x, xs, c0, pc, i0, i1, s8, e);
            tq_tile(rows, x8, w + (size_t)(r0 + 8) * ws, x, xs, c0, pc, i0, i1, s8, e, acc);
        }
        /* the first nv lanes (no call: a memcpy here cost the loop above
         * its registers) */
        const __m256i keep =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int c = 0; c < pc; c++)
            _mm256_maskstore_ps(y + (size_t)(c0 + c) * ldy + (size_t)r0, keep, acc[c]);
    }
}

INLINE void tq_gemm(int64_t n, const void *w, size_t ws, bool x8, int64_t nr, const void *x,
                    size_t xs, int64_t nc, float *y, size_t ldy)
{
    int64_t c = 0;
    for (; c + TQ_COLS <= nc; c += TQ_COLS)
        tq_panel(n, w, ws, x8, nr, x, xs, c, TQ_COLS, y, ldy);
    for (; c < nc; c++)
        tq_panel(n, w, ws, x8, nr, x, xs, c, 1, y, ldy);
}

static void gemm_tq4_0(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                       int64_t nc, float *y, size_t ldy)
{
    tq_gemm(n, w, ws, false, nr, x, xs, nc, y, ldy);
}

/* w: rows repacked by quant_repack_x8, ws the bytes of one Q4_0 row (a
 * group of eight starts every 8 * ws), nr a multiple of 8 */
static void gemm_tq4_0x8(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                         int64_t nc, float *y, size_t ldy)
{
    tq_gemm(n, w, ws, true, nr, x, xs, nc, y, ldy);
}

static float vec_dot_tq4_0(int64_t n, const void *w, const void *x)
{
    float out;
    gemm_tq4_0(n, w, 0, 1, x, 0, 1, &out, 1);
    return out;
}

/* ---- Q4_K and Q5_K with eight rows across the lanes (repacked at load) ----- */

/* From the layout quant_repack_x8 gives Q4_K: each 4-byte lane of a quants
 * vector holds four elements of one of the eight rows, so a super-block of
 * eight rows is 32 vector loads, their nibbles the operands of 64 lane
 * dots, and the scales and mins of the eight rows are decoded together.
 * Each row's super-block sums exactly in int32, its scales and mins applied
 * as integers, and is scaled as quant.c's dot_k4 does: the results are the
 * scalar reference's bits for any tile shape and ISA. Q5_K's layout adds
 * the fifth bits, one dword per row and lane like the quants, after the
 * scales; each quants vector takes its bit from them on the way.
 *
 * The includer defines K8_COLS (columns per panel) and
 *   k8_scale(sc32): the eight rows' scales of a sub-block, one per int32
 *     lane (signed or not), in the form k8_sub and k6_sub take;
 *   k8_sub(s, u, q, sc, five): s + sc * (lane dots of u[k] (4-bit, or 5-bit
 *     when five) and the activations q[4k..4k+3], k = 0..7): one sub-block
 *     of 32 elements. */
INLINE __m256i k8_scale(__m256i sc32);
INLINE __m256i k8_sub(__m256i s, const __m256i u[8], const int8_t *q, __m256i sc, bool five);
/*   k6_sub(s, u, q, sc): the same for Q6_K's sub-blocks of 16 elements,
 *     u[k] 6-bit, k = 0..3 */
INLINE __m256i k6_sub(__m256i s, const __m256i u[4], const int8_t *q, __m256i sc);

#define K8_AUX 64 /* super-blocks per panel of activation pair sums */

/* column c's activation block i */
INLINE const block_q8_K *k8_col(const char *x, size_t xs, int64_t c, int64_t i)
{
    return (const block_q8_K *)(x + (size_t)c * xs) + i;
}

/* per column and super-block i0..i1-1: the sums of the eight sub-blocks'
 * activations, in int16 pairs (2t, 2t+1) */
INLINE void k8_fill(const char *x, size_t xs, int64_t c0, int pc, int64_t i0, int64_t i1,
                    int32_t *bp)
{
    for (int c = 0; c < pc; c++) {
        const block_q8_K *y = (const block_q8_K *)(x + (size_t)(c0 + c) * xs);
        for (int64_t i = i0; i < i1; i++) {
            const __m128i s = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)y[i].bsums),
                                             _mm_loadu_si128((const __m128i *)(y[i].bsums + 8)));
            _mm_storeu_si128((__m128i *)(bp + 4 * (c * K8_AUX + (i - i0))), s);
        }
    }
}

/* 8 bytes q of v (q = 0..3) -> 8 int32 lanes, unsigned or signed */
INLINE __m256i k8_bytes32(__m256i v, int q, bool sign)
{
    const __m128i h = q < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    const __m128i b = q & 1 ? _mm_unpackhi_epi64(h, h) : h;
    return sign ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

/* 16 bytes of v's 128-bit half (bytes [2t][r] then [2t+1][r]) -> int16
 * pairs ([2t][r], [2t+1][r]) in lane r */
INLINE __m256i k8_pairs16(__m256i v, int half, bool sign)
{
    const __m128i h = half ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
    const __m128i p = _mm_unpacklo_epi8(h, _mm_unpackhi_epi64(h, h));
    return sign ? _mm256_cvtepi8_epi16(p) : _mm256_cvtepu8_epi16(p);
}

/* super-blocks i0..i1-1 of one group of eight rows against columns
 * c0..c0+pc-1; acc and accm: the d and dmin parts per column */
INLINE void k8_tile(const char *group, bool five, const char *x, size_t xs, int64_t c0, int pc,
                    int64_t i0, int64_t i1, const int32_t *bp, __m256 *acc, __m256 *accm)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m6 = _mm256_set1_epi8(0x3F),
                  hi2 = _mm256_set1_epi8(0x30), bit4 = _mm256_set1_epi8(0x10);
    const size_t gbytes = 8 * (five ? sizeof(block_q5_K) : sizeof(block_q4_K));
    const int qs_at = five ? 128 + 256 : 128;
    for (int64_t i = i0; i < i1; i++) {
        const char *b = group + (size_t)i * gbytes;
        if (pc > 1) /* decode leaves the sequential stream to the hardware */
            for (size_t l = 0; l < gbytes; l += 64)
                _mm_prefetch(b + 2 * gbytes + l, _MM_HINT_T0);
        /* scales and mins: quant_k4_scales on the eight rows at once */
        const __m256i A = _mm256_loadu_si256((const __m256i *)(b + 32)),
                      B = _mm256_loadu_si256((const __m256i *)(b + 64)),
                      C = _mm256_loadu_si256((const __m256i *)(b + 96));
        const __m256i sc03 = _mm256_and_si256(A, m6), mn03 = _mm256_and_si256(B, m6);
        const __m256i sc47 = _mm256_or_si256(_mm256_and_si256(C, m4),
                                             _mm256_and_si256(_mm256_srli_epi16(A, 2), hi2));
        const __m256i mn47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(C, 4), m4),
                                             _mm256_and_si256(_mm256_srli_epi16(B, 2), hi2));
        __m256i sc[8];
        for (int j = 0; j < 4; j++) {
            sc[j] = k8_scale(k8_bytes32(sc03, j, false));
            sc[j + 4] = k8_scale(k8_bytes32(sc47, j, false));
        }
        const __m256i mp[4] = {k8_pairs16(mn03, 0, false), k8_pairs16(mn03, 1, false),
                               k8_pairs16(mn47, 0, false), k8_pairs16(mn47, 1, false)};
        __m256i s[K8_COLS];
        UNROLL for (int c = 0; c < pc; c++) s[c] = _mm256_setzero_si256();
        /* chunk ch: low nibbles are sub-block 2ch, high ones 2ch + 1 */
        for (int ch = 0; ch < 4; ch++)
            for (int h = 0; h < 2; h++) {
                __m256i u[8];
                for (int k = 0; k < 8; k++) {
                    const __m256i t =
                        _mm256_loadu_si256((const __m256i *)(b + qs_at + 256 * ch + 32 * k));
                    u[k] = _mm256_and_si256(h ? _mm256_srli_epi16(t, 4) : t, m4);
                    if (five) { /* bit 2ch + h of each byte to bit 4 */
                        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * k));
                        const int at = 2 * ch + h;
                        const __m256i moved = at > 4   ? _mm256_srli_epi16(qh, at - 4)
                                              : at < 4 ? _mm256_slli_epi16(qh, 4 - at)
                                                       : qh;
                        u[k] = _mm256_or_si256(u[k], _mm256_and_si256(moved, bit4));
                    }
                }
                UNROLL for (int c = 0; c < pc; c++)
                {
                    const int8_t *q = k8_col(x, xs, c0 + c, i)->qs + 64 * ch + 32 * h;
                    s[c] = k8_sub(s[c], u, q, sc[2 * ch + h], five);
                }
            }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)),
                     dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 16)));
        UNROLL for (int c = 0; c < pc; c++)
        {
            const int32_t *p = bp + 4 * (c * K8_AUX + (i - i0));
            __m256i m = _mm256_setzero_si256();
            for (int t = 0; t < 4; t++)
                m = madd16_acc(m, mp[t], _mm256_set1_epi32(p[t]));
            const __m256 e = _mm256_set1_ps(k8_col(x, xs, c0 + c, i)->d);
            acc[c] =
                _mm256_add_ps(acc[c], _mm256_mul_ps(_mm256_mul_ps(d, e), _mm256_cvtepi32_ps(s[c])));
            accm[c] =
                _mm256_add_ps(accm[c], _mm256_mul_ps(_mm256_mul_ps(dm, e), _mm256_cvtepi32_ps(m)));
        }
    }
}

INLINE void k8_panel(int64_t n, const char *w, size_t ws, bool five, int64_t nr, const char *x,
                     size_t xs, int64_t c0, int pc, float *y, size_t ldy)
{
    const int64_t nb = n / QK_K;
    int32_t bp[K8_COLS * K8_AUX * 4];
    const bool once = nb <= K8_AUX; /* else refilled per row group and chunk */
    if (once)
        k8_fill(x, xs, c0, pc, 0, nb, bp);
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        const char *group = w + (size_t)r0 * ws;
        __m256 acc[K8_COLS], accm[K8_COLS];
        UNROLL for (int c = 0; c < pc; c++) acc[c] = accm[c] = _mm256_setzero_ps();
        for (int64_t i0 = 0; i0 < nb; i0 += K8_AUX) {
            const int64_t i1 = i0 + K8_AUX < nb ? i0 + K8_AUX : nb;
            if (!once)
                k8_fill(x, xs, c0, pc, i0, i1, bp);
            k8_tile(group, five, x, xs, c0, pc, i0, i1, bp, acc, accm);
        }
        for (int c = 0; c < pc; c++)
            _mm256_storeu_ps(y + (size_t)(c0 + c) * ldy + (size_t)r0,
                             _mm256_sub_ps(acc[c], accm[c]));
    }
}

/* ---- Q6_K with eight rows across the lanes (repacked at load) -------------- */

/* The layout quant_repack_x8 gives Q6_K: the eight rows' d, their 16 scales
 * as byte j of row r at 16 + 8j + r, then the ql and qh dwords of the eight rows
 * in the order this kernel reads them (stored apart, as in the block, the
 * two streams halved decode speed: the prefetchers lost them). A lane group
 * of ql, ql + 32 bytes and qh gives four elements of each of four
 * sub-blocks 32 apart; the quants stay unsigned
 * (0..63) and the -32 returns as -32 * (sum of scale * activation sum of
 * the sub-block), from the activations' 16-element sums, in int16 pairs.
 * Exact in int32, scaled as quant.c's dot_q6_K does: its bits. */

#define K6_GROUP (8 * sizeof(block_q6_K))

INLINE void k6_tile(const char *group, const char *x, size_t xs, int64_t c0, int pc, int64_t i0,
                    int64_t i1, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
    for (int64_t i = i0; i < i1; i++) {
        const char *b = group + (size_t)i * K6_GROUP;
        if (pc > 1) /* decode leaves the sequential stream to the hardware */
            for (size_t l = 0; l < K6_GROUP; l += 64)
                _mm_prefetch(b + 2 * K6_GROUP + l, _MM_HINT_T0);
        __m256i scb[4], sc[16], sp[8];
        for (int v = 0; v < 4; v++) /* scales 4v..4v+3 */
            scb[v] = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * v));
        for (int j = 0; j < 16; j++)
            sc[j] = k8_scale(k8_bytes32(scb[j / 4], j % 4, true));
        for (int t = 0; t < 8; t++)
            sp[t] = k8_pairs16(scb[t / 2], t % 2, true);
        __m256i s[K8_COLS];
        UNROLL for (int c = 0; c < pc; c++)
        {
            /* -32 * sum over sub-blocks of scale * activation sum */
            const int16_t *bs = k8_col(x, xs, c0 + c, i)->bsums;
            __m256i o = _mm256_setzero_si256();
            for (int t = 0; t < 8; t++) {
                int32_t pair;
                memcpy(&pair, bs + 2 * t, 4);
                o = madd16_acc(o, sp[t], _mm256_set1_epi32(pair));
            }
            s[c] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(o, 5));
        }
        /* half n, sub-block pair half kh, quarter m: sub-block 8n + 2m + kh,
         * elements 128n + 32m + 16kh + 4k.. of lane group k */
        for (int n = 0; n < 2; n++)
            for (int kh = 0; kh < 2; kh++)
                for (int m = 0; m < 4; m++) {
                    __m256i u[4];
                    const char *run = b + 144 + 384 * (2 * n + kh);
                    for (int k = 0; k < 4; k++) {
                        const char *t = run + 96 * k;
                        const __m256i lo = _mm256_loadu_si256((const __m256i *)(t + 32 * (m & 1)));
                        const __m256i h = _mm256_loadu_si256((const __m256i *)(t + 64));
                        const __m256i nib =
                            _mm256_and_si256(m < 2 ? lo : _mm256_srli_epi16(lo, 4), m4);
                        /* bits 2m, 2m + 1 of each qh byte to bits 4, 5 */
                        const __m256i top = m < 2   ? _mm256_slli_epi16(h, 4 - 2 * m)
                                            : m > 2 ? _mm256_srli_epi16(h, 2 * m - 4)
                                                    : h;
                        u[k] = _mm256_or_si256(nib, _mm256_and_si256(top, hi2));
                    }
                    UNROLL for (int c = 0; c < pc; c++)
                    {
                        const int8_t *q = k8_col(x, xs, c0 + c, i)->qs + 128 * n + 32 * m + 16 * kh;
                        s[c] = k6_sub(s[c], u, q, sc[8 * n + 2 * m + kh]);
                    }
                }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
        UNROLL for (int c = 0; c < pc; c++)
        {
            const __m256 e = _mm256_set1_ps(k8_col(x, xs, c0 + c, i)->d);
            acc[c] =
                _mm256_add_ps(acc[c], _mm256_mul_ps(_mm256_mul_ps(d, e), _mm256_cvtepi32_ps(s[c])));
        }
    }
}

INLINE void k6_panel(int64_t n, const char *w, size_t ws, int64_t nr, const char *x, size_t xs,
                     int64_t c0, int pc, float *y, size_t ldy)
{
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        __m256 acc[K8_COLS];
        UNROLL for (int c = 0; c < pc; c++) acc[c] = _mm256_setzero_ps();
        k6_tile(w + (size_t)r0 * ws, x, xs, c0, pc, 0, n / QK_K, acc);
        for (int c = 0; c < pc; c++)
            _mm256_storeu_ps(y + (size_t)(c0 + c) * ldy + (size_t)r0, acc[c]);
    }
}

typedef enum k8_kind { K8_Q4_K, K8_Q5_K, K8_Q6_K } k8_kind;

/* w: rows repacked by quant_repack_x8, ws the bytes of one row (a group of
 * eight starts every 8 * ws), nr a multiple of 8 */
INLINE void k8_gemm(k8_kind kind, int64_t n, const void *w, size_t ws, int64_t nr, const void *x,
                    size_t xs, int64_t nc, float *y, size_t ldy)
{
    assert(nr % 8 == 0);
    /* pc a constant at each call: the panels specialise for it */
#define K8_PANEL(c, pc)                                                                            \
    (kind == K8_Q6_K ? k6_panel(n, w, ws, nr, x, xs, c, pc, y, ldy)                                \
                     : k8_panel(n, w, ws, kind == K8_Q5_K, nr, x, xs, c, pc, y, ldy))
    int64_t c = 0;
    for (; c + K8_COLS <= nc; c += K8_COLS)
        K8_PANEL(c, K8_COLS);
    for (; c < nc; c++)
        K8_PANEL(c, 1);
#undef K8_PANEL
}

static void gemm_q4_Kx8(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                        int64_t nc, float *y, size_t ldy)
{
    k8_gemm(K8_Q4_K, n, w, ws, nr, x, xs, nc, y, ldy);
}

static void gemm_q5_Kx8(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                        int64_t nc, float *y, size_t ldy)
{
    k8_gemm(K8_Q5_K, n, w, ws, nr, x, xs, nc, y, ldy);
}

static void gemm_q6_Kx8(int64_t n, const void *w, size_t ws, int64_t nr, const void *x, size_t xs,
                        int64_t nc, float *y, size_t ldy)
{
    k8_gemm(K8_Q6_K, n, w, ws, nr, x, xs, nc, y, ldy);
}

#endif
