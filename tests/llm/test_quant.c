/*
 * test_quant.c — tensor types: block layouts and dequantization on
 * hand-built blocks, fp16/bf16 rounding, quantize -> dequantize error bounds,
 * reference dot products against dequantized dots, and every SIMD kernel set
 * this CPU runs (plus the AVX-512 sub-variants without VNNI/BF16) against
 * the scalar reference, gemm against vec_dot bit for bit, and ISA selection.
 *
 * Hand-built blocks are packed here the way ggml's quantizers pack them, so
 * they check quant.c's unpacking against an independent reading of the
 * layout.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/quant.h"
#include "llm/quant_internal.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static float uniform(void)
{
    return (float)(rnd() >> 8) * (1.0f / 16777216.0f);
}

/* roughly normal, with occasional outliers like real weights */
static float gauss(void)
{
    float s = 0;
    for (int i = 0; i < 4; i++)
        s += uniform() - 0.5f;
    if ((rnd() & 63) == 0)
        s *= 6;
    return s * 1.7f;
}

static void fill_gauss(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = gauss() * scale;
}

static const ggml_type weight_types[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,   GGML_TYPE_Q4_0,
    GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K,   GGML_TYPE_Q3_K,
    GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

static const char *tname(ggml_type t)
{
    return quant_info(t)->name;
}

/* ---- type table ------------------------------------------------------------ */

static void test_type_table_matches_ggml(void **state)
{
    (void)state;
    static const struct {
        ggml_type t;
        int64_t bs;
        size_t ts;
        ggml_type vdt;
    } want[] = {
        {GGML_TYPE_F32, 1, 4, GGML_TYPE_F32},       {GGML_TYPE_F16, 1, 2, GGML_TYPE_F16},
        {GGML_TYPE_BF16, 1, 2, GGML_TYPE_BF16},     {GGML_TYPE_Q4_0, 32, 18, GGML_TYPE_Q8_0},
        {GGML_TYPE_Q4_1, 32, 20, GGML_TYPE_Q8_1},   {GGML_TYPE_Q5_0, 32, 22, GGML_TYPE_Q8_0},
        {GGML_TYPE_Q5_1, 32, 24, GGML_TYPE_Q8_1},   {GGML_TYPE_Q8_0, 32, 34, GGML_TYPE_Q8_0},
        {GGML_TYPE_Q8_1, 32, 36, GGML_TYPE_Q8_1},   {GGML_TYPE_Q2_K, 256, 84, GGML_TYPE_Q8_K},
        {GGML_TYPE_Q3_K, 256, 110, GGML_TYPE_Q8_K}, {GGML_TYPE_Q4_K, 256, 144, GGML_TYPE_Q8_K},
        {GGML_TYPE_Q5_K, 256, 176, GGML_TYPE_Q8_K}, {GGML_TYPE_Q6_K, 256, 210, GGML_TYPE_Q8_K},
        {GGML_TYPE_Q8_K, 256, 292, GGML_TYPE_Q8_K}, {GGML_TYPE_IQ4_NL, 32, 18, GGML_TYPE_Q8_0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const quant_type_info *ti = quant_info(want[i].t);
        assert_non_null(ti);
        assert_int_equal(ti->block_size, want[i].bs);
        assert_int_equal(ti->type_size, want[i].ts);
        assert_int_equal(ti->vec_dot_type, want[i].vdt);
    }
    assert_false(quant_info(GGML_TYPE_Q8_K)->is_weight_type);
    assert_true(quant_info(GGML_TYPE_IQ4_NL)->is_weight_type);
    assert_null(quant_info(4)); /* removed Q4_2 */
    assert_null(quant_info(GGML_TYPE_MAX_ID));
    assert_null(quant_info(0xFFFFFFFFu));
    assert_int_equal(quant_row_size(GGML_TYPE_Q4_K, 4096), 16 * 144);
    assert_int_equal(quant_row_size(GGML_TYPE_Q4_K, 100), 0);
    assert_int_equal(quant_row_size(GGML_TYPE_F16, 7), 14);
    /* a row whose byte size overflows size_t is refused, not wrapped */
    assert_int_equal(quant_row_size(GGML_TYPE_F32, INT64_MAX), 0);
    assert_int_equal(quant_row_size(GGML_TYPE_F32, INT64_MAX / 4), (size_t)(INT64_MAX / 4) * 4);
    assert_non_null(strstr(quant_supported_list(), "IQ4_NL"));
}

/* ---- fp16 / bf16 ------------------------------------------------------------ */

static void test_f16_rounds_to_nearest_even(void **state)
{
    (void)state;
    assert_int_equal(quant_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(quant_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(quant_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65520.0f), 0x7c00);        /* tie goes to even: inf */
    assert_int_equal(quant_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
    assert_int_equal(quant_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(quant_f32_to_f16(0x1p-24f), 0x0001); /* smallest subnormal */
    assert_int_equal(quant_f32_to_f16(0x1p-25f), 0x0000); /* tie -> even (zero) */
    assert_int_equal(quant_f32_to_f16(3 * 0x1p-25f), 0x0002);
    assert_int_equal(quant_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400); /* rounds up to normal */
    assert_int_equal(quant_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(quant_f32_to_f16(INFINITY), 0x7c00);
    assert_true((quant_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (quant_f32_to_f16(NAN) & 0x3ff));
    /* every finite half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads are not preserved */
        assert_int_equal(quant_f32_to_f16(quant_f16_to_f32((uint16_t)h)), h);
    }
    assert_true(quant_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(quant_f16_to_f32(0xfbff) == -65504.0f);
}

static void test_bf16_rounds_to_nearest_even(void **state)
{
    (void)state;
    float f;
    uint32_t u;
    assert_int_equal(quant_f32_to_bf16(1.0f), 0x3f80);
    u = 0x3f808000u; /* tie, even mantissa -> down */
    memcpy(&f, &u, 4);
    assert_int_equal(quant_f32_to_bf16(f), 0x3f80);
    u = 0x3f818000u; /* tie, odd -> up */
    memcpy(&f, &u, 4);
    assert_int_equal(quant_f32_to_bf16(f), 0x3f82);
    u = 0x3f808001u;
    memcpy(&f, &u, 4);
    assert_int_equal(quant_f32_to_bf16(f), 0x3f81);
    uint16_t nan = quant_f32_to_bf16(NAN);
    assert_true((nan & 0x7f80) == 0x7f80 && (nan & 0x7f));
    assert_true(quant_bf16_to_f32(0xc040) == -3.0f);
}

/* ---- dequantization of hand-built blocks ------------------------------------ */

static void assert_floats(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i])
            fail_msg("element %d: got %.9g want %.9g", i, (double)got[i], (double)want[i]);
    }
}

static void test_dequant_q4_0_block(void **state)
{
    (void)state;
    block_q4_0 b;
    b.d = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float got[32], want[32];
    for (int j = 0; j < 16; j++) {
        want[j] = (j - 8) * 0.5f;
        want[j + 16] = (7 - j) * 0.5f;
    }
    quant_dequantize_row(GGML_TYPE_Q4_0, &b, got, 32);
    assert_floats(got, want, 32);
    assert_true(got[0] == -4.0f && got[15] == 3.5f && got[16] == 3.5f);
}

static void test_dequant_q4_1_q8_0_iq4_nl_blocks(void **state)
{
    (void)state;
    float got[32], want[32];
    block_q4_1 a;
    a.d = 0x3800;
    a.m = 0xc000; /* -2 */
    for (int j = 0; j < 16; j++)
        a.qs[j] = (uint8_t)(j | (j << 4));
    for (int j = 0; j < 32; j++)
        want[j] = (j % 16) * 0.5f - 2.0f;
    quant_dequantize_row(GGML_TYPE_Q4_1, &a, got, 32);
    assert_floats(got, want, 32);

    block_q8_0 q;
    q.d = 0x3400; /* 0.25 */
    for (int j = 0; j < 32; j++) {
        q.qs[j] = (int8_t)(j * 8 - 128);
        want[j] = (j * 8 - 128) * 0.25f;
    }
    quant_dequantize_row(GGML_TYPE_Q8_0, &q, got, 32);
    assert_floats(got, want, 32);
    assert_true(got[0] == -32.0f);

    static const int8_t lv[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};
    block_iq4_nl nl;
    nl.d = 0x4000; /* 2 */
    for (int j = 0; j < 16; j++) {
        nl.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        want[j] = lv[j] * 2.0f;
        want[j + 16] = lv[15 - j] * 2.0f;
    }
    quant_dequantize_row(GGML_TYPE_IQ4_NL, &nl, got, 32);
    assert_floats(got, want, 32);
}

static void test_dequant_q5_blocks(void **state)
{
    (void)state;
    /* fifth bits set for elements 4..7, 12..15, ... (qh = 0xF0F0F0F0) */
    block_q5_0 b;
    b.d = 0x3c00;
    const uint32_t qh = 0xF0F0F0F0u;
    memcpy(b.qh, &qh, 4);
    for (int j = 0; j < 16; j++)
        b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float got[32];
    quant_dequantize_row(GGML_TYPE_Q5_0, &b, got, 32);
    assert_true(got[0] == -16.0f); /* nibble 0, no fifth bit */
    assert_true(got[4] == 4.0f);   /* nibble 4 + 16 - 16 */
    assert_true(got[3] == -13.0f);
    assert_true(got[16] == -1.0f); /* nibble 15, bit clear */
    assert_true(got[20] == 11.0f); /* nibble 11 + 16 - 16 */
    block_q5_1 c;
    c.d = 0x3800; /* 0.5 */
    c.m = 0x4000; /* 2 */
    memcpy(c.qh, &qh, 4);
    memcpy(c.qs, b.qs, 16);
    quant_dequantize_row(GGML_TYPE_Q5_1, &c, got, 32);
    assert_true(got[0] == 2.0f);
    assert_true(got[4] == 12.0f);             /* (4 + 16) * 0.5 + 2 */
    assert_true(got[31] == 2.0f + 16 * 0.5f); /* nibble 0 | bit 31 set */
}

/* ggml's 12-byte packing of 8 six-bit scales and mins (Q4_K/Q5_K) */
static void pack_k4_scales(uint8_t out[12], const int sc[8], const int mn[8])
{
    memset(out, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] = (uint8_t)sc[j];
            out[j + 4] = (uint8_t)mn[j];
        } else {
            out[j + 4] = (uint8_t)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
            out[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            out[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

static void test_dequant_q4_K_and_q5_K_blocks(void **state)
{
    (void)state;
    static const int sc[8] = {1, 63, 17, 4, 45, 33, 2, 60}, mn[8] = {0, 5, 63, 31, 16, 48, 7, 1};
    block_q4_K b;
    b.d = 0x3c00;    /* 1 */
    b.dmin = 0x3800; /* 0.5 */
    pack_k4_scales(b.scales, sc, mn);
    /* chunk j: low nibble -> sub-block 2j, high nibble -> 2j+1 */
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 32; l++)
            b.qs[32 * j + l] = (uint8_t)((l & 0xF) | ((15 - (l & 0xF)) << 4));
    float got[256];
    quant_dequantize_row(GGML_TYPE_Q4_K, &b, got, 256);
    for (int e = 0; e < 256; e++) {
        const int sub = e / 32, l = e % 32;
        const int q = sub % 2 == 0 ? (l & 0xF) : 15 - (l & 0xF);
        const float want = 1.0f * sc[sub] * q - 0.5f * mn[sub];
        if (got[e] != want)
            fail_msg("Q4_K element %d: got %g want %g", e, (double)got[e], (double)want);
    }

    block_q5_K c;
    c.d = 0x3400;    /* 0.25 */
    c.dmin = 0x3c00; /* 1 */
    pack_k4_scales(c.scales, sc, mn);
    memset(c.qh, 0, sizeof c.qh);
    /* value of element e is e % 32: low 4 bits in qs, bit 4 in qh (ggml's
     * m1/m2 masks advance two bits per 64-element chunk) */
    for (int j = 0; j < 4; j++) {
        for (int l = 0; l < 32; l++) {
            int v1 = l, v2 = 31 - l;
            c.qs[32 * j + l] = (uint8_t)((v1 & 0xF) | ((v2 & 0xF) << 4));
            if (v1 > 15)
                c.qh[l] |= (uint8_t)(1 << (2 * j));
            if (v2 > 15)
                c.qh[l] |= (uint8_t)(2 << (2 * j));
        }
    }
    quant_dequantize_row(GGML_TYPE_Q5_K, &c, got, 256);
    for (int e = 0; e < 256; e++) {
        const int sub = e / 32, l = e % 32;
        const int q = sub % 2 == 0 ? l : 31 - l;
        const float want = 0.25f * sc[sub] * q - 1.0f * mn[sub];
        if (got[e] != want)
            fail_msg("Q5_K element %d: got %g want %g", e, (double)got[e], (double)want);
    }
}

static void test_dequant_q6_K_block(void **state)
{
    (void)state;
    block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3800; /* 0.5 */
    for (int s = 0; s < 16; s++)
        b.scales[s] = (int8_t)(s - 8);
    /* ggml's packing: per 128 half, ql[l] = q1 | q3 << 4, ql[l+32] = q2 | q4 << 4,
     * qh[l] = high bits of q1..q4 at bits 0,2,4,6 */
    int L[256];
    for (int e = 0; e < 256; e++)
        L[e] = (e * 7) % 64; /* stored value; the weight is L - 32 */
    for (int h = 0; h < 2; h++) {
        const int *Lh = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            b.ql[64 * h + l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
            b.ql[64 * h + l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
            b.qh[32 * h + l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                         ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
        }
    }
    float got[256];
    quant_dequantize_row(GGML_TYPE_Q6_K, &b, got, 256);
    for (int e = 0; e < 256; e++) {
        const float want = 0.5f * (e / 16 - 8) * (L[e] - 32);
        if (got[e] != want)
            fail_msg("Q6_K element %d: got %g want %g", e, (double)got[e], (double)want);
    }
}

static void test_dequant_q2_K_and_q3_K_blocks(void **state)
{
    (void)state;
    block_q2_K b;
    b.d = 0x3c00;    /* 1 */
    b.dmin = 0x3400; /* 0.25 */
    for (int s = 0; s < 16; s++)
        b.scales[s] = (uint8_t)(s | ((15 - s) << 4));
    int L[256];
    for (int e = 0; e < 256; e++)
        L[e] = (e / 3) % 4;
    /* ggml: qs[j/4 + l] = L[j+l] | L[j+l+32] << 2 | L[j+l+64] << 4 | L[j+l+96] << 6 */
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; l++)
            b.qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                        (L[j + l + 96] << 6));
    float got[256];
    quant_dequantize_row(GGML_TYPE_Q2_K, &b, got, 256);
    for (int e = 0; e < 256; e++) {
        const int s = e / 16;
        const float want = 1.0f * s * L[e] - 0.25f * (15 - s);
        if (got[e] != want)
            fail_msg("Q2_K element %d: got %g want %g", e, (double)got[e], (double)want);
    }

    block_q3_K c;
    memset(&c, 0, sizeof c);
    c.d = 0x3800; /* 0.5 */
    int sc6[16];
    for (int s = 0; s < 16; s++) {
        sc6[s] = (s * 4 + 3) & 63;
        int l = sc6[s];
        if (s < 8)
            c.scales[s] = (uint8_t)(l & 0xF);
        else
            c.scales[s - 8] |= (uint8_t)((l & 0xF) << 4);
        c.scales[s % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (s / 4)));
    }
    int V[256];
    for (int e = 0; e < 256; e++) {
        V[e] = (e * 5) % 8 - 4; /* weight in [-4, 3] */
        int stored = V[e] + 4;
        if (stored > 3) {
            c.hmask[e % 32] |= (uint8_t)(1 << (e / 32));
            stored -= 4;
        }
        L[e] = stored;
    }
    for (int j = 0; j < 256; j += 128)
        for (int l = 0; l < 32; l++)
            c.qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                        (L[j + l + 96] << 6));
    quant_dequantize_row(GGML_TYPE_Q3_K, &c, got, 256);
    for (int e = 0; e < 256; e++) {
        const float want = 0.5f * (sc6[e / 16] - 32) * V[e];
        if (got[e] != want)
            fail_msg("Q3_K element %d: got %g want %g", e, (double)got[e], (double)want);
    }
}

/* ---- quantizers ----------------------------------------------------------------- */

static void test_q4_0_quantizer_packs_exact_values(void **state)
{
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = ((j % 16) - 8) * 0.5f; /* -4 is the first largest magnitude */
    block_q4_0 b;
    quant_quantize_row(GGML_TYPE_Q4_0, x, &b, 32);
    assert_int_equal(b.d, 0x3800);
    for (int j = 0; j < 16; j++)
        assert_int_equal(b.qs[j], j | (j << 4));
}

/* llama.cpp quantizes activations with 127/amax and ties-to-even; its
 * reference (what files hold) with 1/(amax/127) and roundf. */
static void test_q8_0_activation_rounding_differs_from_reference(void **state)
{
    (void)state;
    float x[32] = {127.0f, 2.5f, -2.5f, 3.5f, -0.5f, 0.5f, 1.49f};
    block_q8_0 act, ref;
    quant_kernels_for(QUANT_ISA_SCALAR)->quantize[GGML_TYPE_Q8_0](x, &act, 32);
    quant_quantize_row(GGML_TYPE_Q8_0, x, &ref, 32);
    assert_int_equal(act.d, 0x3c00);
    assert_int_equal(ref.d, 0x3c00);
    static const int8_t want_act[7] = {127, 2, -2, 4, 0, 0, 1};
    static const int8_t want_ref[7] = {127, 3, -3, 4, -1, 1, 1};
    for (int j = 0; j < 7; j++) {
        assert_int_equal(act.qs[j], want_act[j]);
        assert_int_equal(ref.qs[j], want_ref[j]);
    }
    block_q8_1 a1;
    quant_kernels_for(QUANT_ISA_SCALAR)->quantize[GGML_TYPE_Q8_1](x, &a1, 32);
    assert_int_equal(a1.s, quant_f32_to_f16(127 + 2 - 2 + 4 + 1));
}

static void test_q8_K_sign_follows_first_largest_value(void **state)
{
    (void)state;
    float x[256] = {0};
    x[3] = 2.0f;
    x[9] = -2.0f; /* same magnitude, later: the positive one decides */
    x[100] = 1.0f;
    block_q8_K y;
    quant_quantize_row(GGML_TYPE_Q8_K, x, &y, 256);
    assert_true(y.d == -2.0f / 127);
    assert_int_equal(y.qs[3], -127);
    assert_int_equal(y.qs[9], 127);
    assert_int_equal(y.qs[100], -64); /* -63.5 rounds to even */
    assert_int_equal(y.bsums[0], 0);
    assert_int_equal(y.bsums[6], -64);
    float z[256] = {0};
    memset(&y, 0x55, sizeof y);
    quant_quantize_row(GGML_TYPE_Q8_K, z, &y, 256);
    assert_true(y.d == 0.0f);
    assert_int_equal(y.bsums[15], 0);
}

static double rel_rmse(const float *a, const float *b, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)a[i] * a[i];
    }
    return sqrt(e / s);
}

static void test_quantize_round_trip_error_is_bounded(void **state)
{
    (void)state;
    /* measured on this data (heavy-tailed, 1 in 64 values an outlier) x 1.25 */
    static const struct {
        ggml_type t;
        double bound;
    } cases[] = {
        {GGML_TYPE_F16, 3e-4},     {GGML_TYPE_BF16, 2.5e-3}, {GGML_TYPE_Q8_0, 0.01},
        {GGML_TYPE_Q8_1, 0.01},    {GGML_TYPE_Q8_K, 0.022},  {GGML_TYPE_Q6_K, 0.03},
        {GGML_TYPE_Q5_K, 0.055},   {GGML_TYPE_Q5_0, 0.08},   {GGML_TYPE_Q5_1, 0.06},
        {GGML_TYPE_Q4_K, 0.11},    {GGML_TYPE_Q4_0, 0.16},   {GGML_TYPE_Q4_1, 0.12},
        {GGML_TYPE_IQ4_NL, 0.125}, {GGML_TYPE_Q3_K, 0.24},   {GGML_TYPE_Q2_K, 0.44},
    };

    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    void *q = malloc(N * 4);
    rng_state = 0x1234567887654321ull;
    fill_gauss(x, N, 0.02f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(q, 0xA5, N * 4);
        quant_quantize_row(cases[i].t, x, q, N);
        quant_dequantize_row(cases[i].t, q, y, N);
        double err = rel_rmse(x, y, N);
        if (!(err < cases[i].bound))
            fail_msg("%s: relative RMSE %.4f above %.4f", tname(cases[i].t), err, cases[i].bound);
        /* zeros stay zeros */
        float z[256] = {0}, back[256];
        quant_quantize_row(cases[i].t, z, q, 256);
        quant_dequantize_row(cases[i].t, q, back, 256);
        for (int j = 0; j < 256; j++)
            assert_true(back[j] == 0.0f);
    }
    free(x);
    free(y);
    free(q);
}

/* ---- dot products ------------------------------------------------------------- */

static void random_half(quant_half *h, float lo, float hi)
{
    float v = lo + (hi - lo) * uniform();
    *h = quant_f32_to_f16((rnd() & 1) ? v : -v);
}

/* Random bit patterns with sane fp16 scales: every code and scale value. */
static void random_weights(ggml_type t, void *dst, int64_t n)
{
    const quant_type_info *ti = quant_info(t);
    const size_t bytes = quant_row_size(t, n);
    uint8_t *p = dst;
    for (size_t i = 0; i < bytes; i++)
        p[i] = (uint8_t)rnd();
    const int64_t nb = n / ti->block_size;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = p + (size_t)i * ti->type_size;
        switch (t) {
        case GGML_TYPE_F32: {
            float f = gauss();
            memcpy(b, &f, 4);
        } break;
        case GGML_TYPE_F16: random_half((quant_half *)b, 0.0f, 2.0f); break;
        case GGML_TYPE_BF16: *(uint16_t *)b = quant_f32_to_bf16(gauss()); break;
        case GGML_TYPE_Q4_0:
        case GGML_TYPE_Q5_0:
        case GGML_TYPE_Q8_0:
        case GGML_TYPE_IQ4_NL: random_half((quant_half *)b, 1e-3f, 0.1f); break;
        case GGML_TYPE_Q4_1:
        case GGML_TYPE_Q5_1:
            random_half((quant_half *)b, 1e-3f, 0.1f);
            random_half((quant_half *)b + 1, 0.0f, 0.5f);
            break;
        case GGML_TYPE_Q2_K:
            random_half(&((block_q2_K *)b)->d, 1e-3f, 0.05f);
            random_half(&((block_q2_K *)b)->dmin, 0.0f, 0.05f);
            break;
        case GGML_TYPE_Q3_K: random_half(&((block_q3_K *)b)->d, 1e-3f, 0.05f); break;
        case GGML_TYPE_Q4_K:
        case GGML_TYPE_Q5_K:
            random_half(&((block_q4_K *)b)->d, 1e-3f, 0.05f);
            random_half(&((block_q4_K *)b)->dmin, 0.0f, 0.05f);
            break;
        case GGML_TYPE_Q6_K: random_half(&((block_q6_K *)b)->d, 1e-3f, 0.05f); break;
        default: fail_msg("no generator for %s", tname(t));
        }
    }
}

/* sum |w_i x_i| of the dequantized rows: the scale for tolerances */
static double magnitude(ggml_type t, const void *w, const void *x, int64_t n, float *wf, float *xf)
{
    quant_dequantize_row(t, w, wf, n);
    quant_dequantize_row(quant_info(t)->vec_dot_type, x, xf, n);
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m += fabs((double)wf[i] * xf[i]);
    return m;
}

static void test_reference_dot_equals_dequantized_dot(void **state)
{
    (void)state;
    const quant_kernels *ref = quant_kernels_for(QUANT_ISA_SCALAR);
    enum { N = 1024 };
    float *src = malloc(N * 4), *wf = malloc(N * 4), *xf = malloc(N * 4);
    void *w = malloc(N * 4), *x = malloc(N * 4 + 64);
    rng_state = 42;
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const ggml_type t = weight_types[ti];
        const ggml_type vt = quant_info(t)->vec_dot_type;
        for (int rep = 0; rep < 4; rep++) {
            random_weights(t, w, N);
            fill_gauss(src, N, 1.0f);
            ref->quantize[vt](src, x, N);
            double mag = magnitude(t, w, x, N, wf, xf);
            double exact = 0;
            for (int i = 0; i < N; i++)
                exact += (double)wf[i] * xf[i];
            /* Q8_1 keeps d*sum(q) in fp16, so the min term is rounded */
            double tol = (vt == GGML_TYPE_Q8_1 ? 1e-3 : 1e-5) * mag;
            float got = ref->vec_dot[t](N, w, x);
            if (fabs(got - exact) > tol)
                fail_msg("%s: reference dot %.7g, dequantized dot %.7g (tol %.3g)", tname(t),
                         (double)got, exact, tol);
        }
    }
    free(src);
    free(wf);
    free(xf);
    free(w);
    free(x);
}

/* Rows longer than the 512 blocks whose activation sums a Q4_0 panel keeps
 * on the stack (it then refills them per chunk), and more rows than one
 * cache block of the panel and tiled gemms: gemm still gives vec_dot's bits
 * and vec_dot the reference's value, for every 32-element type. */
static void check_long_rows(const quant_kernels *k, const char *label)
{
    static const ggml_type types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0,
                                      GGML_TYPE_IQ4_NL};
    enum { N = 32 * 1100, ROWS = 70, COLS = 9 };
    const quant_kernels *ref = quant_kernels_for(QUANT_ISA_SCALAR);
    float *src = malloc(N * 4), *wf = malloc(N * 4), *xf = malloc(N * 4);
    const size_t xrow = quant_row_size(GGML_TYPE_Q8_0, N);
    uint8_t *w = malloc((size_t)ROWS * xrow), *x = malloc((size_t)COLS * xrow);
    float y[COLS * ROWS];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const ggml_type t = types[ti];
        const size_t wrow = quant_row_size(t, N); /* <= xrow: Q8_0 is the widest */
        for (int r = 0; r < ROWS; r++)
            random_weights(t, w + r * wrow, N);
        for (int c = 0; c < COLS; c++) {
            fill_gauss(src, N, 1.0f);
            ref->quantize[GGML_TYPE_Q8_0](src, x + c * xrow, N);
        }
        quant_matmul(k, t, N, w, wrow, ROWS, x, xrow, COLS, y, ROWS);
        for (int c = 0; c < COLS; c++) {
            for (int r = 0; r < ROWS; r++) {
                const void *wr = w + r * wrow, *xc = x + c * xrow;
                const float v = k->vec_dot[t](N, wr, xc), want = ref->vec_dot[t](N, wr, xc);
                if (memcmp(&v, &y[c * ROWS + r], 4) != 0)
                    fail_msg("%s %s n=%d gemm (%d,%d): %.9g vs vec_dot %.9g", label, tname(t), N, r,
                             c, (double)y[c * ROWS + r], (double)v);
                const double tol = 1e-5 * magnitude(t, wr, xc, N, wf, xf) + 1e-30;
                if (!(fabs((double)v - want) <= tol))
                    fail_msg("%s %s n=%d row %d col %d: got %.9g want %.9g", label, tname(t), N, r,
                             c, (double)v, (double)want);
            }
        }
    }
    free(src);
    free(wf);
    free(xf);
    free(w);
    free(x);
}

/* Holds kernel set k to the scalar reference on many rows and lengths, and
 * gemm to k's own vec_dot bit for bit. */
static void check_kernels(const quant_kernels *k, const char *label)
{
    const quant_kernels *ref = quant_kernels_for(QUANT_ISA_SCALAR);
    /* ROWS and COLS cover every tile shape (up to 8 rows by 8 columns) with
     * leftovers on both sides */
    enum { NMAX = 4096, COLS = 10, ROWS = 11 };
    float *src = malloc(NMAX * 4), *wf = malloc(NMAX * 4), *xf = malloc(NMAX * 4);
    uint8_t *w = malloc((size_t)ROWS * NMAX * 4), *x = malloc((size_t)COLS * NMAX * 4);
    static const int lens_blocks[] = {1, 2, 3, 5, 8, 11, 16};
    static const int lens_float[] = {1, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 4096};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const ggml_type t = weight_types[ti];
        const quant_type_info *info = quant_info(t);
        const ggml_type vt = info->vec_dot_type;
        const bool is_float = info->block_size == 1;
        const size_t nlens = is_float ? sizeof lens_float / sizeof lens_float[0]
                                      : sizeof lens_blocks / sizeof lens_blocks[0];
        for (size_t li = 0; li < nlens; li++) {
            const int64_t n =
                is_float ? lens_float[li] : (int64_t)lens_blocks[li] * info->block_size;
            const size_t wrow = quant_row_size(t, n), xrow = quant_row_size(vt, n);
            for (int r = 0; r < ROWS; r++)
                random_weights(t, w + r * wrow, n);
            for (int c = 0; c < COLS; c++) {
                fill_gauss(src, n, c == 0 ? 1e-3f : 1.0f);
                ref->quantize[vt](src, x + c * xrow, n);
            }
            for (int r = 0; r < ROWS; r++) {
                for (int c = 0; c < COLS; c++) {
                    const void *wr = w + r * wrow, *xc = x + c * xrow;
                    const double mag = magnitude(t, wr, xc, n, wf, xf);
                    const float want = ref->vec_dot[t](n, wr, xc);
                    const float got = k->vec_dot[t](n, wr, xc);
                    /* integer sums are exact; only float summation order differs */
                    const double tol =
                        (is_float ? 2e-6 * sqrt((double)n) + 1e-6 : 1e-5) * mag + 1e-30;
                    if (!(fabs((double)got - want) <= tol))
                        fail_msg("%s %s n=%lld row %d col %d: got %.9g want %.9g (tol %.3g)", label,
                                 tname(t), (long long)n, r, c, (double)got, (double)want, tol);
                }
            }
            /* gemm writes y[c*ldy + r] and matches vec_dot exactly */
            float y[COLS * (ROWS + 2)];
            const size_t ldy = ROWS + 2;
            for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
                y[i] = -12345.0f;
            quant_matmul(k, t, n, w, wrow, ROWS, x, xrow, COLS, y, ldy);
            for (int c = 0; c < COLS; c++) {
                for (int r = 0; r < ROWS; r++) {
                    float v = k->vec_dot[t](n, w + r * wrow, x + c * xrow);
                    if (memcmp(&v, &y[c * ldy + r], 4) != 0)
                        fail_msg("%s %s gemm (%d,%d): %.9g vs vec_dot %.9g", label, tname(t), r, c,
                                 (double)y[c * ldy + r], (double)v);
                }
                assert_true(y[c * ldy + ROWS] == -12345.0f);
            }
        }
    }
    /* activation quantizers: identical bytes, including blocks of zeros and ties */
    static const ggml_type act[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q8_1, GGML_TYPE_Q8_K,
                                    GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_F32};
    uint8_t *a = malloc(NMAX * 4), *b = malloc(NMAX * 4);
    for (size_t ai = 0; ai < sizeof act / sizeof act[0]; ai++) {
        for (int rep = 0; rep < 20; rep++) {
            fill_gauss(src, NMAX, rep % 3 == 0 ? 1e-4f : 3.0f);
            if (rep == 1)
                memset(src, 0, 512 * sizeof *src);
            if (rep == 2)
                for (int i = 0; i < NMAX; i++)
                    src[i] = (float)((i % 17) - 8) * 0.5f;
            const size_t bytes = quant_row_size(act[ai], NMAX);
            memset(a, 0x11, bytes);
            memset(b, 0x22, bytes);
            ref->quantize[act[ai]](src, a, NMAX);
            k->quantize[act[ai]](src, b, NMAX);
            if (memcmp(a, b, bytes) != 0)
                fail_msg("%s quantize %s differs from the scalar bytes (rep %d)", label,
                         tname(act[ai]), rep);
        }
    }
    free(a);
    free(b);
    free(src);
    free(wf);
    free(xf);
    free(w);
    free(x);
    check_long_rows(k, label);
}

static void test_every_available_isa_matches_scalar(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int isa = QUANT_ISA_SCALAR; isa <= QUANT_ISA_AVX512; isa++) {
        const quant_kernels *k = quant_kernels_for((quant_isa)isa);
        if (k == NULL) {
            assert_true(isa > (int)quant_cpu_isa());
            continue;
        }
        assert_int_equal(k->isa, isa);
        check_kernels(k, quant_isa_name((quant_isa)isa));
    }
}

/* Where quant_repack_x8 put row r's block i (of a matrix of nb blocks per
 * row) checked field by field against the source block. */
static void check_x8_layout(ggml_type type, const uint8_t *packed, const uint8_t *src, size_t wrow,
                            int64_t nb, int r, int64_t i)
{
    const int rr = r % 8;
    if (type == GGML_TYPE_Q4_0) {
        const block_q4_0 *b = (const block_q4_0 *)(src + r * wrow) + i;
        const uint8_t *g = packed + ((size_t)(r / 8) * nb + (size_t)i) * 8 * sizeof(block_q4_0);
        assert_memory_equal(g + 2 * rr, &b->d, 2);
        for (int k = 0; k < 4; k++)
            assert_memory_equal(g + 16 + 32 * k + 4 * rr, b->qs + 4 * k, 4);
        return;
    }
    if (type == GGML_TYPE_Q6_K) {
        const block_q6_K *b = (const block_q6_K *)(src + r * wrow) + i;
        const uint8_t *g = packed + ((size_t)(r / 8) * nb + (size_t)i) * 8 * sizeof(block_q6_K);
        assert_memory_equal(g + 2 * rr, &b->d, 2);
        for (int j = 0; j < 16; j++)
            assert_int_equal((int8_t)g[16 + 8 * j + rr], b->scales[j]);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 8; l++) {
                const uint8_t *t = g + 144 + 96 * (8 * h + l) + 4 * rr;
                assert_memory_equal(t, b->ql + 64 * h + 4 * l, 4);
                assert_memory_equal(t + 32, b->ql + 64 * h + 32 + 4 * l, 4);
                assert_memory_equal(t + 64, b->qh + 32 * h + 4 * l, 4);
            }
        return;
    }
    /* Q4_K and Q5_K share the header */
    const bool five = type == GGML_TYPE_Q5_K;
    const size_t bsize = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const block_q4_K *b = (const block_q4_K *)(src + r * wrow + (size_t)i * bsize);
    const uint8_t *g = packed + ((size_t)(r / 8) * nb + (size_t)i) * 8 * bsize;
    const uint8_t *qs = five ? ((const block_q5_K *)b)->qs : b->qs, *q8 = g + (five ? 384 : 128);
    assert_memory_equal(g + 2 * rr, &b->d, 2);
    assert_memory_equal(g + 16 + 2 * rr, &b->dmin, 2);
    for (int j = 0; j < 12; j++)
        assert_int_equal(g[32 + 8 * j + rr], b->scales[j]);
    for (int k = 0; five && k < 8; k++)
        assert_memory_equal(g + 128 + 32 * k + 4 * rr, ((const block_q5_K *)b)->qh + 4 * k, 4);
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 8; k++)
            assert_memory_equal(q8 + 256 * c + 32 * k + 4 * rr, qs + 32 * c + 4 * k, 4);
}

/* Rows repacked by eight (what the model does at load for a kernel set with
 * gemm_x8[type]): the layout read back independently, and every eight-row
 * kernel giving the scalar reference's bits for every column count, row
 * count and length, including rows longer than one panel of activation
 * sums. For the K-quants the last length has extreme values: all quants 15
 * (31, 63), all scales and mins 63 (127), activations all -127 (the AVX2
 * int16 sums near their bound). */
static void check_repacked_rows(ggml_type type, const int *lens, int nlens, uint64_t seed)
{
    rng_state = seed;
    enum { ROWS = 24, COLS = 10 };
    const quant_type_info *ti = quant_info(type);
    const int nbmax = lens[nlens - 1];
    const int64_t bs = ti->block_size;
    const size_t wrow_max = (size_t)nbmax * ti->type_size,
                 xrow_max = quant_row_size(ti->vec_dot_type, nbmax * bs);
    uint8_t *w = malloc(ROWS * wrow_max), *p = malloc(ROWS * wrow_max),
            *x = malloc(COLS * xrow_max);
    float *src = malloc((size_t)nbmax * bs * sizeof *src);
    assert_non_null(w && p && x && src);
    const quant_kernels *ref = quant_kernels_for(QUANT_ISA_SCALAR);
    assert_null(ref->gemm_x8[type]); /* the scalar set never repacks */
    int tested = 0;
    for (int li = 0; li < nlens; li++) {
        const bool extreme = li == nlens - 1 && type != GGML_TYPE_Q4_0;
        const int64_t nb = lens[li], n = nb * bs;
        const size_t wrow = (size_t)nb * ti->type_size, xrow = quant_row_size(ti->vec_dot_type, n);
        for (int r = 0; r < ROWS; r++)
            random_weights(type, w + r * wrow, n);
        if (extreme)
            for (int r = 0; r < ROWS; r++)
                for (int64_t i = 0; i < nb; i++) {
                    uint8_t *blk = w + r * wrow + (size_t)i * ti->type_size;
                    if (type == GGML_TYPE_Q6_K) { /* quants 63, scales 127 */
                        memset(blk, 0xFF, offsetof(block_q6_K, scales));
                        memset(((block_q6_K *)blk)->scales, 0x7F, 16);
                    } else { /* all of a block but d and dmin */
                        memset(blk + 4, 0xFF, ti->type_size - 4);
                    }
                }
        for (int c = 0; c < COLS; c++) {
            if (extreme)
                for (int64_t e = 0; e < n; e++)
                    src[e] = 1.0f; /* Q8_K: -127 everywhere */
            else
                fill_gauss(src, n, 1.0f);
            ref->quantize[ti->vec_dot_type](src, x + c * xrow, n);
        }
        if (extreme)
            assert_int_equal(((block_q8_K *)x)->qs[0], -127);
        assert_true(quant_repack_x8(type, w, p, n, ROWS));
        for (int r = 0; r < ROWS; r++)
            check_x8_layout(type, p, w, wrow, nb, r, r % 3 == 0 ? 0 : nb - 1);
        for (int isa = QUANT_ISA_AVX2; isa <= QUANT_ISA_AVX512; isa++) {
            const quant_kernels *k = quant_kernels_for((quant_isa)isa);
            if (k == NULL || k->gemm_x8[type] == NULL)
                continue;
            for (int nr = 8; nr <= ROWS; nr += 8)
                for (int nc = 1; nc <= COLS; nc++) {
                    float e[COLS * ROWS];
                    k->gemm_x8[type](n, p, wrow, nr, x, xrow, nc, e, ROWS);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < nr; r++) {
                            const float s = ref->vec_dot[type](n, w + r * wrow, x + c * xrow);
                            if (memcmp(&s, &e[c * ROWS + r], 4) != 0)
                                fail_msg("%s %s n=%lld nr=%d nc=%d (%d,%d): x8 %.9g, scalar %.9g",
                                         tname(type), quant_isa_name((quant_isa)isa), (long long)n,
                                         nr, nc, r, c, (double)e[c * ROWS + r], (double)s);
                        }
                    tested++;
                }
        }
    }
    /* every x86 machine this project targets has AVX2 */
    assert_true(tested > 0 || quant_cpu_isa() == QUANT_ISA_SCALAR);
    free(w);
    free(p);
    free(x);
    free(src);
}

static void test_repacked_rows_match_scalar(void **state)
{
    (void)state;
    static const int q4_0[] = {1, 3, 16, 513, 600}, q4_K[] = {1, 3, 8, 65, 70};
    check_repacked_rows(GGML_TYPE_Q4_0, q4_0, 5, 0x853c49e6748fea9bull);
    check_repacked_rows(GGML_TYPE_Q4_K, q4_K, 5, 0x9e3779b97f4a7c15ull);
    check_repacked_rows(GGML_TYPE_Q5_K, q4_K, 5, 0xbf58476d1ce4e5b9ull);
    check_repacked_rows(GGML_TYPE_Q6_K, q4_K, 5, 0x94d049bb133111ebull);
    uint8_t b[8];
    assert_false(quant_repack_x8(GGML_TYPE_Q8_0, b, b, 0, 0)); /* no such layout */
}

/* Attention's softmax·V sum: every ISA gives the scalar bits (one FMA per
 * position, in order), and the scalar one is the plain weighted sum. */
static void test_wsum_matches_scalar_bit_for_bit(void **state)
{
    (void)state;
    rng_state = 0x2545f4914f6cdd1dull;
    enum { ROWS = 37, MAXD = 80 };
    static const int64_t dims[] = {8, 16, 20, 64, 80};
    float rows32[ROWS * MAXD], p[ROWS], ref[MAXD], got[MAXD];
    uint16_t rows16[ROWS * MAXD];
    fill_gauss(rows32, ROWS * MAXD, 1.0f);
    for (int i = 0; i < ROWS * MAXD; i++)
        rows16[i] = quant_f32_to_f16(rows32[i]);
    for (int j = 0; j < ROWS; j++)
        p[j] = uniform() / ROWS;
    const quant_kernels *sk = quant_kernels_for(QUANT_ISA_SCALAR);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int64_t n = dims[di];
        for (int f16 = 0; f16 < 2; f16++) {
            const ggml_type t = f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
            const void *rows = f16 ? (const void *)rows16 : (const void *)rows32;
            const size_t stride = (size_t)MAXD * (f16 ? 2 : 4);
            sk->wsum[t](n, ref, rows, stride, p, ROWS);
            for (int64_t d = 0; d < n; d++) {
                double e = 0;
                for (int j = 0; j < ROWS; j++) {
                    const float pj = f16 ? quant_f16_to_f32(quant_f32_to_f16(p[j])) : p[j];
                    const float v =
                        f16 ? quant_f16_to_f32(rows16[j * MAXD + d]) : rows32[j * MAXD + d];
                    e += (double)pj * v;
                }
                assert_true(fabs(ref[d] - e) < 1e-5);
            }
            for (int isa = QUANT_ISA_AVX2; isa <= QUANT_ISA_AVX512; isa++) {
                const quant_kernels *k = quant_kernels_for((quant_isa)isa);
                if (k == NULL)
                    continue;
                k->wsum[t](n, got, rows, stride, p, ROWS);
                if (memcmp(got, ref, (size_t)n * sizeof *got) != 0)
                    fail_msg("wsum %s n=%lld differs on %s", tname(t), (long long)n,
                             quant_isa_name((quant_isa)isa));
            }
        }
    }
}

/* The AVX-512 table without VNNI and/or BF16, as on CPUs that lack them. */
static void test_avx512_without_vnni_or_bf16_matches_scalar(void **state)
{
    (void)state;
    const quant_kernels *full = quant_kernels_for(QUANT_ISA_AVX512);
    if (full == NULL) {
        assert_true(quant_cpu_isa() < QUANT_ISA_AVX512);
        return;
    }
    rng_state = 77;
    for (int v = 0; v <= (int)full->has_vnni; v++) {
        for (int b = 0; b <= (int)full->has_bf16; b++) {
            quant_kernels k = *quant_kernels_for(QUANT_ISA_AVX2);
            k.isa = QUANT_ISA_AVX512;
            quant_avx512_fill(&k, v != 0, b != 0);
            char label[64];
            snprintf(label, sizeof label, "avx512(vnni=%d,bf16=%d)", v, b);
            check_kernels(&k, label);
        }
    }
}

/* ---- the Q8_0 family's summation order ----------------------------------------- */

/* The weights' integer values of block i: the block with its scale set to
 * 1, dequantized (exact) */
static void block_ints(ggml_type t, const void *w, int64_t i, int q[32])
{
    const size_t bsize = quant_info(t)->type_size;
    uint8_t b[sizeof(block_q8_0)]; /* the largest of the three */
    float f[32];
    assert_true(bsize <= sizeof b);
    memcpy(b, (const uint8_t *)w + (size_t)i * bsize, bsize);
    const quant_half one = quant_f32_to_f16(1.0f);
    memcpy(b, &one, sizeof one); /* d leads each of these blocks */
    quant_dequantize_row(t, b, f, 32);
    for (int j = 0; j < 32; j++)
        q[j] = (int)f[j];
}

/* An oracle written from the contract in quant.c: eight int32 lanes of four
 * products per block, each scaled (d_w * d_x) and FMA'd into the even or
 * the odd blocks' accumulator, the two added lane by lane, then folded
 * 8 -> 4 -> 2 -> 1 (lane l + lane l + 4, then (0 + 2) + (1 + 3)). */
static float even_odd_dot(ggml_type t, const void *w, const block_q8_0 *x, int64_t nb)
{
    float acc[2][8] = {{0}};
    for (int64_t i = 0; i < nb; i++) {
        int q[32];
        block_ints(t, w, i, q);
        quant_half dw;
        memcpy(&dw, (const uint8_t *)w + (size_t)i * quant_info(t)->type_size, sizeof dw);
        const float d = quant_f16_to_f32(dw) * quant_f16_to_f32(x[i].d);
        for (int l = 0; l < 8; l++) {
            int sum = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++)
                sum += q[j] * x[i].qs[j];
            acc[i & 1][l] = fmaf(d, (float)sum, acc[i & 1][l]);
        }
    }
    float v[8], h[4];
    for (int l = 0; l < 8; l++)
        v[l] = acc[0][l] + acc[1][l];
    for (int l = 0; l < 4; l++)
        h[l] = v[l] + v[l + 4];
    return (h[0] + h[2]) + (h[1] + h[3]);
}

/* Q8_0, Q5_0 and IQ4_NL against Q8_0 activations sum in dot_q8_0's order on
 * every SIMD set (the AVX2 kernels, which AVX-512 without VNNI also uses,
 * and the AVX-512 ones): vec_dot and every tile shape gemm takes (four-row
 * spans by four columns, single columns, leftover rows; Q8_0's one-row
 * wide tiles) give the oracle's bits, for odd and even block counts and
 * for more block pairs than one AVX-512 activation panel holds. The scalar
 * dot_q8_0 gives them too. llama.cpp's greedy tokens were made in this
 * order: a near-tie in TinyStories-656K-Q8_0 flipped under AVX2's former
 * single accumulator. */
static void test_q8_0_family_sums_in_dot_q8_0_order(void **state)
{
    (void)state;
    rng_state = 0x6a09e667f3bcc909ull;
    static const ggml_type types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q5_0, GGML_TYPE_IQ4_NL};
    static const int lens[] = {1, 2, 3, 4, 5, 8, 9, 16, 33, 67};
    enum { ROWS = 13, COLS = 9, NBMAX = 67 };
    const size_t xrow = NBMAX * sizeof(block_q8_0);
    uint8_t *w = malloc(ROWS * xrow), *x = malloc(COLS * xrow);
    float *src = malloc(NBMAX * 32 * sizeof *src);
    float want[ROWS][COLS], y[COLS * ROWS];
    assert_non_null(w && x && src);
    const quant_kernels *ref = quant_kernels_for(QUANT_ISA_SCALAR);
    quant_kernels sets[2];
    int nsets = 0;
    for (int isa = QUANT_ISA_AVX2; isa <= QUANT_ISA_AVX512; isa++)
        if (quant_kernels_for((quant_isa)isa) != NULL)
            sets[nsets++] = *quant_kernels_for((quant_isa)isa);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const ggml_type t = types[ti];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t nb = lens[li], n = 32 * nb;
            const size_t wrow = quant_row_size(t, n);
            for (int r = 0; r < ROWS; r++)
                random_weights(t, w + r * wrow, n);
            for (int c = 0; c < COLS; c++) {
                fill_gauss(src, n, c == 0 ? 1e-3f : 1.0f);
                ref->quantize[GGML_TYPE_Q8_0](src, x + c * xrow, n);
            }
            for (int r = 0; r < ROWS; r++)
                for (int c = 0; c < COLS; c++)
                    want[r][c] =
                        even_odd_dot(t, w + r * wrow, (const block_q8_0 *)(x + c * xrow), nb);
            if (t == GGML_TYPE_Q8_0)
                for (int r = 0; r < ROWS; r++)
                    for (int c = 0; c < COLS; c++) {
                        const float s = ref->vec_dot[t](n, w + r * wrow, x + c * xrow);
                        if (memcmp(&s, &want[r][c], 4) != 0)
                            fail_msg("scalar Q8_0 nb=%lld (%d,%d): %.9g, oracle %.9g",
                                     (long long)nb, r, c, (double)s, (double)want[r][c]);
                    }
            for (int k = 0; k < nsets; k++) {
                const char *isa = quant_isa_name(sets[k].isa);
                for (int r = 0; r < ROWS; r++)
                    for (int c = 0; c < COLS; c++) {
                        const float v = sets[k].vec_dot[t](n, w + r * wrow, x + c * xrow);
                        if (memcmp(&v, &want[r][c], 4) != 0)
                            fail_msg("%s %s nb=%lld vec_dot (%d,%d): %.9g, oracle %.9g", isa,
                                     tname(t), (long long)nb, r, c, (double)v, (double)want[r][c]);
                    }
                for (int nr = 1; nr <= ROWS; nr++)
                    for (int nc = 1; nc <= COLS; nc++) {
                        quant_matmul(&sets[k], t, n, w, wrow, nr, x, xrow, nc, y, ROWS);
                        for (int c = 0; c < nc; c++)
                            for (int r = 0; r < nr; r++)
                                if (memcmp(&y[c * ROWS + r], &want[r][c], 4) != 0)
                                    fail_msg("%s %s nb=%lld gemm %dx%d (%d,%d): %.9g, oracle %.9g",
                                             isa, tname(t), (long long)nb, nr, nc, r, c,
                                             (double)y[c * ROWS + r], (double)want[r][c]);
                    }
            }
        }
    }
    /* every x86 machine this project targets has AVX2 */
    assert_true(nsets > 0 || quant_cpu_isa() == QUANT_ISA_SCALAR);
    free(w);
    free(x);
    free(src);
}

/* ---- llama-quantize outputs ---------------------------------------------------- */

/* A minimal GGUF tensor-table reader for this test only (the engine's loader
 * validates; this trusts the shared files and bounds-checks enough not to
 * crash). */
typedef struct gguf_tensor {
    char name[96];
    int64_t ne0, nrows;
    uint32_t type;
    uint64_t offset;
} gguf_tensor;

typedef struct gguf_file {
    uint8_t *data;
    size_t size, pos, data_start;
    gguf_tensor t[128];
    int nt;
} gguf_file;

static uint64_t rd_u(gguf_file *g, int bytes)
{
    uint64_t v = 0;
    assert_true(g->pos + (size_t)bytes <= g->size);
    memcpy(&v, g->data + g->pos, (size_t)bytes);
    g->pos += (size_t)bytes;
    return v;
}

static void skip_value(gguf_file *g, uint32_t type)
{
    static const int size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    assert_true(type <= 12);
    if (type == 8) {
        uint64_t n = rd_u(g, 8);
        assert_true(n <= g->size - g->pos);
        g->pos += n;
    } else if (type == 9) {
        uint32_t at = (uint32_t)rd_u(g, 4);
        uint64_t n = rd_u(g, 8);
        for (uint64_t i = 0; i < n; i++)
            skip_value(g, at);
    } else {
        g->pos += (size_t)size[type];
    }
}

static void gguf_read(gguf_file *g, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (the tests need ../shared from the repository root)", path);
    fseek(f, 0, SEEK_END);
    g->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->data = malloc(g->size);
    assert_int_equal(fread(g->data, 1, g->size, f), g->size);
    fclose(f);
    g->pos = 0;
    assert_memory_equal(g->data, "GGUF", 4);
    g->pos = 8;
    uint64_t nt = rd_u(g, 8), nkv = rd_u(g, 8);
    assert_true(nt <= 128);
    uint64_t align = 32;
    for (uint64_t i = 0; i < nkv; i++) {
        uint64_t klen = rd_u(g, 8);
        const char *key = (const char *)g->data + g->pos;
        g->pos += klen;
        uint32_t type = (uint32_t)rd_u(g, 4);
        if (klen == 17 && memcmp(key, "general.alignment", 17) == 0 && type == 4)
            align = rd_u(g, 4);
        else
            skip_value(g, type);
    }
    g->nt = (int)nt;
    for (int i = 0; i < g->nt; i++) {
        gguf_tensor *t = &g->t[i];
        uint64_t len = rd_u(g, 8);
        assert_true(len < sizeof t->name);
        memcpy(t->name, g->data + g->pos, len);
        t->name[len] = '\0';
        g->pos += len;
        uint32_t nd = (uint32_t)rd_u(g, 4);
        t->nrows = 1;
        for (uint32_t d = 0; d < nd; d++) {
            int64_t ne = (int64_t)rd_u(g, 8);
            if (d == 0)
                t->ne0 = ne;
            else
                t->nrows *= ne;
        }
        t->type = (uint32_t)rd_u(g, 4);
        t->offset = rd_u(g, 8);
    }
    g->data_start = (g->pos + align - 1) / align * align;
}

static const gguf_tensor *gguf_find(const gguf_file *g, const char *name)
{
    for (int i = 0; i < g->nt; i++)
        if (strcmp(g->t[i].name, name) == 0)
            return &g->t[i];
    return NULL;
}

static const void *gguf_tensor_data(const gguf_file *g, const gguf_tensor *t)
{
    const size_t bytes = quant_row_size((ggml_type)t->type, t->ne0) * (size_t)t->nrows;
    assert_true(g->data_start + t->offset + bytes <= g->size);
    return g->data + g->data_start + t->offset;
}

/* Re-quantizes the source of every tensor of `out` (same name in `src`,
 * dequantized to f32 as llama-quantize does) and wants identical bytes.
 * Returns how many tensors were compared. */
static int compare_with_llama_quantize(const char *src_path, const char *out_path)
{
    gguf_file src, out;
    gguf_read(&src, src_path);
    gguf_read(&out, out_path);
    int compared = 0;
    for (int i = 0; i < out.nt; i++) {
        const gguf_tensor *to = &out.t[i], *ts = gguf_find(&src, to->name);
        assert_non_null(ts);
        assert_int_equal(ts->ne0, to->ne0);
        if (to->type == ts->type)
            continue; /* kept as is */
        const int64_t n = to->ne0;
        const size_t orow = quant_row_size((ggml_type)to->type, n);
        const size_t srow = quant_row_size((ggml_type)ts->type, n);
        assert_true(orow > 0 && srow > 0);
        float *f = malloc((size_t)n * sizeof *f);
        uint8_t *q = malloc(orow);
        const uint8_t *sd = gguf_tensor_data(&src, ts), *od = gguf_tensor_data(&out, to);
        for (int64_t r = 0; r < to->nrows; r++) {
            quant_dequantize_row((ggml_type)ts->type, sd + (size_t)r * srow, f, n);
            quant_quantize_row((ggml_type)to->type, f, q, n);
            if (memcmp(q, od + (size_t)r * orow, orow) != 0) {
                size_t b = 0;
                while (q[b] == od[(size_t)r * orow + b])
                    b++;
                fail_msg("%s: tensor %s (%s) row %lld differs from llama-quantize at byte %zu",
                         out_path, to->name, tname((ggml_type)to->type), (long long)r, b);
            }
        }
        free(f);
        free(q);
        compared++;
    }
    free(src.data);
    free(out.data);
    return compared;
}

static void test_quantizers_reproduce_llama_quantize_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *src, *out;
    } files[] = {
        {"../shared/models/stories260K.gguf", "../shared/models/quant/stories260K-Q3_K_M.gguf"},
        {"../shared/models/stories260K.gguf", "../shared/models/quant/stories260K-Q4_K_M.gguf"},
        {"../shared/models/stories260K.gguf", "../shared/models/quant/stories260K-F16.gguf"},
        {"../shared/models/stories260K.gguf", "../shared/models/quant/stories260K-BF16.gguf"},
        {"../shared/models/TinyStories-656K-Q8_0.gguf",
         "../shared/models/quant/TinyStories-656K-Q4_0.gguf"},
        {"../shared/models/TinyStories-656K-Q8_0.gguf",
         "../shared/models/quant/TinyStories-656K-Q4_1.gguf"},
        {"../shared/models/TinyStories-656K-Q8_0.gguf",
         "../shared/models/quant/TinyStories-656K-Q5_0.gguf"},
    };
    int total = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        total += compare_with_llama_quantize(files[i].src, files[i].out);
    assert_true(total > 100);
}

static void test_isa_selection_and_env_override(void **state)
{
    (void)state;
    const quant_isa cpu = quant_cpu_isa();
    assert_non_null(quant_kernels_for(QUANT_ISA_SCALAR));
    assert_int_equal(quant_kernels_for(QUANT_ISA_SCALAR)->isa, QUANT_ISA_SCALAR);
    assert_true((quant_kernels_for(QUANT_ISA_AVX2) != NULL) == (cpu >= QUANT_ISA_AVX2));
    assert_true((quant_kernels_for(QUANT_ISA_AVX512) != NULL) == (cpu >= QUANT_ISA_AVX512));
    assert_null(quant_kernels_for((quant_isa)7));
    assert_string_equal(quant_isa_name(QUANT_ISA_AVX2), "avx2");

    unsetenv("GHOST_ISA");
    assert_int_equal(quant_kernels_best()->isa, cpu);
    setenv("GHOST_ISA", "scalar", 1);
    assert_int_equal(quant_kernels_best()->isa, QUANT_ISA_SCALAR);
    setenv("GHOST_ISA", "AVX2", 1);
    assert_int_equal(quant_kernels_best()->isa, cpu < QUANT_ISA_AVX2 ? cpu : QUANT_ISA_AVX2);
    setenv("GHOST_ISA", "avx512", 1); /* can lower, never raise */
    assert_int_equal(quant_kernels_best()->isa, cpu);
    setenv("GHOST_ISA", "bogus", 1);
    assert_int_equal(quant_kernels_best()->isa, cpu);
    unsetenv("GHOST_ISA");
    /* every table has a dot product and gemm for every weight type, and the
     * activation quantizers */
    for (int isa = 0; isa <= (int)cpu; isa++) {
        const quant_kernels *k = quant_kernels_for((quant_isa)isa);
        for (size_t i = 0; i < N_WEIGHT_TYPES; i++) {
            assert_non_null(k->vec_dot[weight_types[i]]);
            assert_non_null(k->gemm[weight_types[i]]);
            assert_non_null(k->quantize[quant_info(weight_types[i])->vec_dot_type]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table_matches_ggml),
        cmocka_unit_test(test_f16_rounds_to_nearest_even),
        cmocka_unit_test(test_bf16_rounds_to_nearest_even),
        cmocka_unit_test(test_dequant_q4_0_block),
        cmocka_unit_test(test_dequant_q4_1_q8_0_iq4_nl_blocks),
        cmocka_unit_test(test_dequant_q5_blocks),
        cmocka_unit_test(test_dequant_q4_K_and_q5_K_blocks),
        cmocka_unit_test(test_dequant_q6_K_block),
        cmocka_unit_test(test_dequant_q2_K_and_q3_K_blocks),
        cmocka_unit_test(test_q4_0_quantizer_packs_exact_values),
        cmocka_unit_test(test_q8_0_activation_rounding_differs_from_reference),
        cmocka_unit_test(test_q8_K_sign_follows_first_largest_value),
        cmocka_unit_test(test_quantize_round_trip_error_is_bounded),
        cmocka_unit_test(test_reference_dot_equals_dequantized_dot),
        cmocka_unit_test(test_every_available_isa_matches_scalar),
        cmocka_unit_test(test_avx512_without_vnni_or_bf16_matches_scalar),
        cmocka_unit_test(test_q8_0_family_sums_in_dot_q8_0_order),
        cmocka_unit_test(test_repacked_rows_match_scalar),
        cmocka_unit_test(test_wsum_matches_scalar_bit_for_bit),
        cmocka_unit_test(test_quantizers_reproduce_llama_quantize_bytes),
        cmocka_unit_test(test_isa_selection_and_env_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
