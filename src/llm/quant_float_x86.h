/*
 * quant_float_x86.h — the gemm and vec_dot entry points of the float weight
 * types (F32, F16, BF16), shared by quant_avx2.c and quant_avx512.c. Each
 * file defines its register tile and includes this after it:
 *
 *   tile_NAME(n, w, ws, nr, x, xs, nc, xf32, y, ys, ldy)
 *       y[c * ldy + r * ys] = dot(row r of w, column c of x) for r < nr,
 *       c < nc (nr <= FLOAT_ROWS, nc <= FLOAT_COLS); columns are in the
 *       weights' type, or F32 when xf32. Every (row, column) pair sees the
 *       same instructions whatever nr and nc, so all entry points agree bit
 *       for bit.
 *   widen_NAME(dst, src, n)   n elements of a column -> F32 (exact)
 *   FLOAT_ROWS, FLOAT_COLS (4), FLOAT_SPANS, FLOAT_ROW_BLOCK, FLOAT_PANEL,
 *   FLOAT_LANES (the panel's column stride is a multiple of it)
 *
 * gemm widens F16/BF16 activations once into an F32 panel on the stack
 * rather than once per weight row: converting them again for every row
 * cost more than the multiply-adds. Within a block of FLOAT_ROW_BLOCK rows
 * the panel takes one group of columns at a time, so the block's weights
 * stay in L2 while the groups pass and the group's activations stay in L1
 * while the block's rows pass. One column (decode) needs no panel.
 */
#ifndef GHOST_QUANT_FLOAT_X86_H
#define GHOST_QUANT_FLOAT_X86_H

#include "quant_internal.h"

static_assert(FLOAT_SPANS <= FLOAT_ROWS, "a span tile is a tile");
static_assert(FLOAT_COLS == 4, "cols_NAME's switch covers 1 to 4 columns");

INLINE void widen_none(float *dst, const char *src, int64_t n)
{
    (void)dst, (void)src, (void)n;
}

/* rows_NAME: rows r0..r1 of w against nc columns at x (a constant in each
 * case of cols_NAME's switch), whole tiles then single rows. spans_NAME: one
 * column, the tile's rows j, j + span, ... so that each span is read front
 * to back as one long stream the hardware prefetcher follows (neighbouring
 * rows halved decode speed). wide: the activations are F16/BF16 and go
 * through widen_WIDEN into the panel. */
#define DEFINE_FLOAT_ENTRY_POINTS(name, widen, wide)                                               \
    INLINE void rows_##name(int64_t n, const char *w, size_t ws, int64_t r0, int64_t r1,           \
                            const char *x, size_t xs, int nc, bool xf32, float *y, size_t ldy)     \
    {                                                                                              \
        int64_t r = r0;                                                                            \
        for (; r + FLOAT_ROWS <= r1; r += FLOAT_ROWS)                                              \
            tile_##name(n, w + (size_t)r * ws, ws, FLOAT_ROWS, x, xs, nc, xf32, y + r, 1, ldy);    \
        for (; r < r1; r++)                                                                        \
            tile_##name(n, w + (size_t)r * ws, ws, 1, x, xs, nc, xf32, y + r, 1, ldy);             \
    }                                                                                              \
    static void cols_##name(int64_t n, const char *w, size_t ws, int64_t r0, int64_t r1,           \
                            const char *x, size_t xs, int nc, float *y, size_t ldy)                \
    {                                                                                              \
        switch (nc) {                                                                              \
        case 4: rows_##name(n, w, ws, r0, r1, x, xs, 4, wide, y, ldy); break;                      \
        case 3: rows_##name(n, w, ws, r0, r1, x, xs, 3, wide, y, ldy); break;                      \
        case 2: rows_##name(n, w, ws, r0, r1, x, xs, 2, wide, y, ldy); break;                      \
        default: rows_##name(n, w, ws, r0, r1, x, xs, 1, wide, y, ldy); break;                     \
        }                                                                                          \
    }                                                                                              \
    static void spans_##name(int64_t n, const char *w, size_t ws, int64_t nr, const char *x,       \
                             float *y)                                                             \
    {                                                                                              \
        const int64_t span = nr / FLOAT_SPANS;                                                     \
        for (int64_t j = 0; j < span; j++)                                                         \
            tile_##name(n, w + (size_t)j * ws, (size_t)span * ws, FLOAT_SPANS, x, 0, 1, false,     \
                        y + j, (size_t)span, 0);                                                   \
        for (int64_t r = span * FLOAT_SPANS; r < nr; r++)                                          \
            tile_##name(n, w + (size_t)r * ws, 0, 1, x, 0, 1, false, y + r, 1, 0);                 \
    }                                                                                              \
    static float vec_dot_##name(int64_t n, const void *w, const void *x)                           \
    {                                                                                              \
        float out;                                                                                 \
        tile_##name(n, w, 0, 1, x, 0, 1, false, &out, 1, 0);                                       \
        return out;                                                                                \
    }                                                                                              \
    static void gemm_##name(int64_t n, const void *vw, size_t ws, int64_t nr, const void *vx,      \
                            size_t xs, int64_t nc, float *y, size_t ldy)                           \
    {                                                                                              \
        const char *w = vw, *x = vx;                                                               \
        const int64_t np = (n + FLOAT_LANES - 1) / FLOAT_LANES * FLOAT_LANES;                      \
        int64_t group = wide ? FLOAT_PANEL / np : FLOAT_COLS;                                      \
        group = group < FLOAT_COLS ? group : FLOAT_COLS;                                           \
        if (nc == 1 || group == 0) { /* decode, or columns too long: widen as it goes */           \
            for (int64_t c = 0; c < nc; c++)                                                       \
                spans_##name(n, w, ws, nr, x + (size_t)c * xs, y + (size_t)c * ldy);               \
            return;                                                                                \
        }                                                                                          \
        _Alignas(64) float panel[wide ? FLOAT_PANEL : 1];                                          \
        for (int64_t r0 = 0; r0 < nr; r0 += FLOAT_ROW_BLOCK) {                                     \
            const int64_t r1 = r0 + FLOAT_ROW_BLOCK < nr ? r0 + FLOAT_ROW_BLOCK : nr;              \
            for (int64_t c0 = 0; c0 < nc; c0 += group) {                                           \
                const int g = (int)(nc - c0 < group ? nc - c0 : group);                            \
                const char *xg = x + (size_t)c0 * xs;                                              \
                size_t xgs = xs;                                                                   \
                if (wide) {                                                                        \
                    for (int c = 0; c < g; c++)                                                    \
                        widen_##widen(panel + c * np, xg + (size_t)c * xs, n);                     \
                    xg = (const char *)panel;                                                      \
                    xgs = (size_t)np * sizeof(float);                                              \
                }                                                                                  \
                cols_##name(n, w, ws, r0, r1, xg, xgs, g, y + (size_t)c0 * ldy, ldy);              \
            }                                                                                      \
        }                                                                                          \
    }

#endif
