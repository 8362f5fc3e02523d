/*
 * quant.c — tensor element types: the type table, fp16/bf16 conversions, the
 * scalar reference of every dequantizer, quantizer and dot product, and the
 * run-time dispatch that picks SIMD kernels (quant_avx2.c, quant_avx512.c).
 *
 * Compatibility contract: block layouts are ggml's (quant_internal.h), the
 * dequantizers and the weight quantizers follow ggml-quants.c's reference
 * (quantize_row_*_ref, i.e. what llama-quantize writes without an importance
 * matrix), and the dot products compute the same integer sums as ggml's CPU
 * vec_dot, scaled per block as its x86 kernels do. Activations are quantized
 * as llama.cpp's x86 CPU backend does, so a matmul gives llama.cpp's numbers
 * up to float summation order.
 *
 * The scalar functions here are the oracle the tests hold every SIMD kernel
 * to; they favour plain loops over speed.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#include "quant_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define QUANT_X86 1
#endif

/* ---- fp16 / bf16 --------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        float f = (float)mant * 0x1p-24f;
        return bits_f32(sign | f32_bits(f));
    }
    if (exp == 31)
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t quant_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00; /* NaN, as ggml encodes it */
    if (ax >= 0x477ff000u)
        return sign | 0x7c00; /* rounds past 65504: infinity */
    if (ax < 0x38800000u) {
        /* result is subnormal: adding 0.5 makes the FPU round at 2^-24 */
        float r = bits_f32(ax) + 0.5f;
        return sign | (uint16_t)(f32_bits(r) - 0x3f000000u);
    }
    /* rebias the exponent and round the 13 dropped bits to nearest even */
    ax += 0xc8000fffu + ((ax >> 13) & 1);
    return sign | (uint16_t)(ax >> 13);
}

float quant_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t quant_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64); /* keep NaN quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

#define F16(h) quant_f16_to_f32(h)

/* ---- type table ---------------------------------------------------------- */

const int8_t quant_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                       1,    13,   25,  38,  53,  69,  89,  113};

static const quant_type_info type_table[GGML_TYPE_MAX_ID] = {
    [GGML_TYPE_F32] = {"F32", 1, 4, GGML_TYPE_F32, true},
    [GGML_TYPE_F16] = {"F16", 1, 2, GGML_TYPE_F16, true},
    [GGML_TYPE_BF16] = {"BF16", 1, 2, GGML_TYPE_BF16, true},
    [GGML_TYPE_Q4_0] = {"Q4_0", QK4_0, sizeof(block_q4_0), GGML_TYPE_Q8_0, true},
    [GGML_TYPE_Q4_1] = {"Q4_1", QK4_1, sizeof(block_q4_1), GGML_TYPE_Q8_1, true},
    [GGML_TYPE_Q5_0] = {"Q5_0", QK5_0, sizeof(block_q5_0), GGML_TYPE_Q8_0, true},
    [GGML_TYPE_Q5_1] = {"Q5_1", QK5_1, sizeof(block_q5_1), GGML_TYPE_Q8_1, true},
    [GGML_TYPE_Q8_0] = {"Q8_0", QK8_0, sizeof(block_q8_0), GGML_TYPE_Q8_0, true},
    [GGML_TYPE_Q8_1] = {"Q8_1", QK8_1, sizeof(block_q8_1), GGML_TYPE_Q8_1, false},
    [GGML_TYPE_Q2_K] = {"Q2_K", QK_K, sizeof(block_q2_K), GGML_TYPE_Q8_K, true},
    [GGML_TYPE_Q3_K] = {"Q3_K", QK_K, sizeof(block_q3_K), GGML_TYPE_Q8_K, true},
    [GGML_TYPE_Q4_K] = {"Q4_K", QK_K, sizeof(block_q4_K), GGML_TYPE_Q8_K, true},
    [GGML_TYPE_Q5_K] = {"Q5_K", QK_K, sizeof(block_q5_K), GGML_TYPE_Q8_K, true},
    [GGML_TYPE_Q6_K] = {"Q6_K", QK_K, sizeof(block_q6_K), GGML_TYPE_Q8_K, true},
    [GGML_TYPE_Q8_K] = {"Q8_K", QK_K, sizeof(block_q8_K), GGML_TYPE_Q8_K, false},
    [GGML_TYPE_IQ4_NL] = {"IQ4_NL", QK4_NL, sizeof(block_iq4_nl), GGML_TYPE_Q8_0, true},
};

const quant_type_info *quant_info(uint32_t type)
{
    if (type >= GGML_TYPE_MAX_ID || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

const char *quant_supported_list(void)
{
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL";
}

size_t quant_row_size(ggml_type type, int64_t n)
{
    const quant_type_info *ti = quant_info((uint32_t)type);
    if (ti == NULL || n < 0 || n % ti->block_size != 0)
        return 0;
    const uint64_t blocks = (uint64_t)(n / ti->block_size);
    if (blocks > SIZE_MAX / ti->type_size)
        return 0; /* no such row fits in memory: same answer as "invalid" */
    return (size_t)blocks * ti->type_size;
}

/* ---- dequantization ------------------------------------------------------ */

static void dequant_q4_0(const block_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = F16(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((b[i].qs[j] & 0xF) - 8) * d;
            y[j + QK4_0 / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = F16(b[i].d), m = F16(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (b[i].qs[j] & 0xF) * d + m;
            y[j + QK4_1 / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The 5-bit types keep bit 4 of element j in bit j of qh. */
static inline int q5_value(const uint8_t *qs, uint32_t qh, int j)
{
    int lo = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
    return lo | (int)(((qh >> j) & 1) << 4);
}

static void dequant_q5_0(const block_q5_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = F16(b[i].d);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK5_0; j++)
            y[j] = (q5_value(b[i].qs, qh, j) - 16) * d;
    }
}

static void dequant_q5_1(const block_q5_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = F16(b[i].d), m = F16(b[i].m);
        uint32_t qh;
        memcpy(&qh, b[i].qh, 4);
        for (int j = 0; j < QK5_1; j++)
            y[j] = q5_value(b[i].qs, qh, j) * d + m;
    }
}

static void dequant_q8_0(const block_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = F16(b[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[j] = b[i].qs[j] * d;
    }
}

static void dequant_q8_1(const block_q8_1 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK8_1) {
        const float d = F16(b[i].d);
        for (int j = 0; j < QK8_1; j++)
            y[j] = b[i].qs[j] * d;
    }
}

static void dequant_iq4_nl(const block_iq4_nl *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_NL) {
        const float d = F16(b[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * quant_iq4nl_values[b[i].qs[j] & 0xF];
            y[j + QK4_NL / 2] = d * quant_iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

/* Q2_K and Q3_K: element 128h + 32j + l lives in bits 2j..2j+1 of qs[32h + l]
 * and uses scale 8h + 2j + l/16. */
static void dequant_q2_K(const block_q2_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = F16(b[i].d), dmin = F16(b[i].dmin);
        for (int e = 0; e < QK_K; e++) {
            int h = e / 128, j = (e / 32) % 4, l = e % 32;
            uint8_t sc = b[i].scales[8 * h + 2 * j + l / 16];
            int q = (b[i].qs[32 * h + l] >> (2 * j)) & 3;
            *y++ = d * (sc & 0xF) * q - dmin * (sc >> 4);
        }
    }
}

/* The 16 six-bit Q3_K scales: low nibbles in bytes 0..7 (two per byte, the
 * second eight in the high nibbles), high 2 bits in bytes 8..11. */
static void q3_K_scales(const uint8_t *s, int sc[16])
{
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
        int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (lo | (hi << 4)) - 32;
    }
}

static inline int q3_K_value(const block_q3_K *b, int e)
{
    int h = e / 128, j = (e / 32) % 4, l = e % 32;
    int q = (b->qs[32 * h + l] >> (2 * j)) & 3;
    return q - ((b->hmask[l] >> (4 * h + j)) & 1 ? 0 : 4);
}

static void dequant_q3_K(const block_q3_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = F16(b[i].d);
        int sc[16];
        q3_K_scales(b[i].scales, sc);
        for (int e = 0; e < QK_K; e++)
            *y++ = d * sc[e / 16] * q3_K_value(&b[i], e);
    }
}

/* Q4_K/Q5_K: 64-element chunk j holds sub-block 2j in the low nibbles of
 * qs[32j..32j+31] and sub-block 2j+1 in the high nibbles; Q5_K adds bit 2j
 * (resp. 2j+1) of qh[l]. */
static inline int q4_K_value(const uint8_t *qs, int e)
{
    int j = e / 64, l = e % 32;
    return (e % 64) < 32 ? (qs[32 * j + l] & 0xF) : (qs[32 * j + l] >> 4);
}

static inline int q5_K_value(const block_q5_K *b, int e)
{
    int l = e % 32, bit = e / 32;
    return q4_K_value(b->qs, e) | (((b->qh[l] >> bit) & 1) << 4);
}

static void dequant_q4_K(const block_q4_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = F16(b[i].d), dmin = F16(b[i].dmin);
        uint8_t sc[8], mn[8];
        quant_k4_scales(b[i].scales, sc, mn);
        for (int e = 0; e < QK_K; e++) {
            const float dl = d * sc[e / 32], ml = dmin * mn[e / 32];
            *y++ = dl * q4_K_value(b[i].qs, e) - ml;
        }
    }
}

static void dequant_q5_K(const block_q5_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = F16(b[i].d), dmin = F16(b[i].dmin);
        uint8_t sc[8], mn[8];
        quant_k4_scales(b[i].scales, sc, mn);
        for (int e = 0; e < QK_K; e++) {
            const float dl = d * sc[e / 32], ml = dmin * mn[e / 32];
            *y++ = dl * q5_K_value(&b[i], e) - ml;
        }
    }
}

/* Q6_K: element 128h + 32k + l takes 4 low bits from ql[64h + l + 32(k&1)]
 * (low nibble for k < 2, high for k >= 2) and 2 high bits from bits 2k..2k+1
 * of qh[32h + l]; scale 8h + 2k + l/16. */
static inline int q6_K_value(const block_q6_K *b, int e)
{
    int h = e / 128, k = (e / 32) % 4, l = e % 32;
    uint8_t lb = b->ql[64 * h + l + 32 * (k & 1)];
    int lo = k < 2 ? (lb & 0xF) : (lb >> 4);
    int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
    return (lo | (hi << 4)) - 32;
}

static void dequant_q6_K(const block_q6_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = F16(b[i].d);
        for (int e = 0; e < QK_K; e++)
            *y++ = d * b[i].scales[e / 16] * q6_K_value(&b[i], e);
    }
}

static void dequant_q8_K(const block_q8_K *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < QK_K; j++)
            *y++ = b[i].d * b[i].qs[j];
}

/* The walk every eight-row layout shares: for each group of eight rows and
 * each block index, put(o, block, r) writes row r's block into the group's
 * 8 * bsize bytes at o. */
static inline void repack_groups(const void *src, uint8_t *o, int64_t nb, size_t bsize,
                                 int64_t nrows, void (*put)(uint8_t *, const void *, int))
{
    const size_t row_bytes = (size_t)nb * bsize;
    for (int64_t g = 0; g < nrows / 8; g++) {
        const char *rows = (const char *)src + (size_t)g * 8 * row_bytes;
        for (int64_t i = 0; i < nb; i++, o += 8 * bsize)
            for (int r = 0; r < 8; r++)
                put(o, rows + r * row_bytes + (size_t)i * bsize, r);
    }
}

static void put_q4_0(uint8_t *o, const void *vb, int r)
{
    const block_q4_0 *b = vb;
    memcpy(o + 2 * r, &b->d, 2);
    for (int k = 0; k < 4; k++)
        memcpy(o + 16 + 32 * k + 4 * r, b->qs + 4 * k, 4);
}

/* Q4_K and Q5_K share the header; Q5_K's fifth bits sit between the scales
 * and the quants, laid out as the quants are */
static inline void put_k4(uint8_t *o, const block_q4_K *b, int r, const uint8_t *qh,
                          const uint8_t *qs)
{
    memcpy(o + 2 * r, &b->d, 2);
    memcpy(o + 16 + 2 * r, &b->dmin, 2);
    for (int j = 0; j < 12; j++)
        o[32 + 8 * j + r] = b->scales[j];
    for (int k = 0; qh != NULL && k < 8; k++)
        memcpy(o + 128 + 32 * k + 4 * r, qh + 4 * k, 4);
    const size_t qs_at = qh != NULL ? 128 + 256 : 128;
    for (int k = 0; k < 32; k++) /* chunk k / 8, dword k % 8 */
        memcpy(o + qs_at + 32 * k + 4 * r, qs + 4 * k, 4);
}

static void put_q4_K(uint8_t *o, const void *vb, int r)
{
    const block_q4_K *b = vb;
    put_k4(o, b, r, NULL, b->qs);
}

static void put_q5_K(uint8_t *o, const void *vb, int r)
{
    const block_q5_K *b = vb;
    put_k4(o, vb, r, b->qh, b->qs);
}

static void put_q6_K(uint8_t *o, const void *vb, int r)
{
    const block_q6_K *b = vb;
    memcpy(o + 2 * r, &b->d, 2);
    for (int j = 0; j < 16; j++)
        o[16 + 8 * j + r] = (uint8_t)b->scales[j];
    /* half h, dword l of its 32-byte runs: the two ql dwords 32 bytes
     * apart, then the qh dword */
    for (int t = 0; t < 16; t++) {
        const int h = t / 8, l = t % 8;
        uint8_t *p = o + 144 + 96 * t + 4 * r;
        memcpy(p, b->ql + 64 * h + 4 * l, 4);
        memcpy(p + 32, b->ql + 64 * h + 32 + 4 * l, 4);
        memcpy(p + 64, b->qh + 32 * h + 4 * l, 4);
    }
}

bool quant_repack_x8(ggml_type type, const void *src, void *dst, int64_t n, int64_t nrows)
{
    void (*put)(uint8_t *, const void *, int) = type == GGML_TYPE_Q4_0   ? put_q4_0
                                                : type == GGML_TYPE_Q4_K ? put_q4_K
                                                : type == GGML_TYPE_Q5_K ? put_q5_K
                                                : type == GGML_TYPE_Q6_K ? put_q6_K
                                                                         : NULL;
    if (put == NULL)
        return false;
    const quant_type_info *ti = quant_info(type);
    repack_groups(src, dst, n / ti->block_size, ti->type_size, nrows, put);
    return true;
}

void quant_dequantize_row(ggml_type type, const void *src, float *dst, int64_t n)
{
    const quant_type_info *ti = quant_info((uint32_t)type);
    if (ti == NULL || n % ti->block_size != 0)
        return;
    const int64_t nb = n / ti->block_size;
    const uint16_t *h = src;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case GGML_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = quant_f16_to_f32(h[i]);
        break;
    case GGML_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = quant_bf16_to_f32(h[i]);
        break;
    case GGML_TYPE_Q4_0: dequant_q4_0(src, dst, nb); break;
    case GGML_TYPE_Q4_1: dequant_q4_1(src, dst, nb); break;
    case GGML_TYPE_Q5_0: dequant_q5_0(src, dst, nb); break;
    case GGML_TYPE_Q5_1: dequant_q5_1(src, dst, nb); break;
    case GGML_TYPE_Q8_0: dequant_q8_0(src, dst, nb); break;
    case GGML_TYPE_Q8_1: dequant_q8_1(src, dst, nb); break;
    case GGML_TYPE_Q2_K: dequant_q2_K(src, dst, nb); break;
    case GGML_TYPE_Q3_K: dequant_q3_K(src, dst, nb); break;
    case GGML_TYPE_Q4_K: dequant_q4_K(src, dst, nb); break;
    case GGML_TYPE_Q5_K: dequant_q5_K(src, dst, nb); break;
    case GGML_TYPE_Q6_K: dequant_q6_K(src, dst, nb); break;
    case GGML_TYPE_Q8_K: dequant_q8_K(src, dst, nb); break;
    case GGML_TYPE_IQ4_NL: dequant_iq4_nl(src, dst, nb); break;
    default: break;
    }
}

/* ---- reference quantizers (ggml's quantize_row_*_ref) -------------------- */

/* Value of largest magnitude (the first one on ties) and that magnitude. */
static float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    *amax_out = amax;
    return max;
}

static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float amax;
        const float d = signed_absmax(x, QK4_0, &amax) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* truncation toward zero after +8.5 is ggml's rounding here */
            int a = (int8_t)(x[j] * id + 8.5f), b = (int8_t)(x[j + 16] * id + 8.5f);
            a = a < 15 ? a : 15;
            b = b < 15 ? b : 15;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void minmax(const float *x, int n, float *mn, float *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn)
            *mn = x[j];
        if (x[j] > *mx)
            *mx = x[j];
    }
}

static void quantize_q4_1(const float *x, block_q4_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float mn, mx;
        minmax(x, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        y[i].m = quant_f32_to_f16(mn);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int a = (int8_t)((x[j] - mn) * id + 0.5f), b = (int8_t)((x[j + 16] - mn) * id + 0.5f);
            a = a < 15 ? a : 15;
            b = b < 15 ? b : 15;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void pack_q5(const int q[32], uint8_t qs[16], uint8_t qh_out[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void quantize_q5_0(const float *x, block_q5_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        float amax;
        const float d = signed_absmax(x, QK5_0, &amax) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        int q[32];
        for (int j = 0; j < 32; j++) {
            int v = (int8_t)(x[j] * id + 16.5f);
            q[j] = v < 31 ? v : 31;
        }
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

static void quantize_q5_1(const float *x, block_q5_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float mn, mx;
        minmax(x, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        y[i].m = quant_f32_to_f16(mn);
        int q[32];
        for (int j = 0; j < 32; j++)
            q[j] = (uint8_t)((x[j] - mn) * id + 0.5f);
        pack_q5(q, y[i].qs, y[i].qh);
    }
}

static float absmax(const float *x, int n)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static void quantize_q8_0_ref(const float *x, block_q8_0 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        const float d = absmax(x, QK8_0) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quantize_q8_1_ref(const float *x, block_q8_1 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        const float d = absmax(x, QK8_1) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = quant_f32_to_f16(sum * d);
    }
}

/* Activations for Q8_0/Q8_1 the way llama.cpp's x86 backend quantizes them
 * (its AVX path, used on every machine this project targets): the inverse
 * scale is 127/amax rather than 1/(amax/127), and rounding is to nearest even
 * rather than away from zero. The SIMD quantizers produce identical bytes. */
static void quantize_act_q8_0(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = absmax(x, QK8_0);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = quant_f32_to_f16(amax / 127.f);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = (int8_t)quant_nearest_int(x[j] * id);
    }
}

static void quantize_act_q8_1(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = absmax(x, QK8_1);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)quant_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

/* Q8_K: llama.cpp uses its reference on x86 too. The scale is negative when
 * the largest-magnitude value is positive (so it maps to -127); bsums are
 * zeroed for an all-zero block, which ggml leaves unwritten. */
static void quantize_act_q8_K(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax;
        const float max = signed_absmax(x, QK_K, &amax);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = quant_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ggml's make_qx_quants with rmse_type 1 and no weights: symmetric scale
 * search over 19 candidates, weighting by x^2. L gets values in [0, 2*nmax). */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ggml's make_q3_quants (with rmse): returns the scale, L in [0, 2*nmax). */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = clampi(quant_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ggml's make_qkx2_quants: asymmetric (scale, min) fit by weighted least
 * squares over nstep+1 candidate scales. Returns the scale, *the_min >= 0 is
 * subtracted on dequantization. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, float rmin, float rdelta, int nstep, bool use_mad)
{
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q2_K/Q3_K low bits: element 128h + 32j + l -> bits 2j of qs[32h + l] */
static void pack_2bit(const uint8_t L[QK_K], uint8_t qs[QK_K / 4])
{
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

static void quantize_q2_K(const float *x, block_q2_K *y, int64_t nb)
{
    uint8_t L[QK_K];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f,
                                         0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = quant_f32_to_f16(0.0f);
        y[i].dmin = quant_f32_to_f16(0.0f);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)quant_nearest_int(iscale * scales[j]);
            y[i].d = quant_f32_to_f16(max_scale / 15.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)(quant_nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = quant_f32_to_f16(max_min / 15.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = F16(y[i].d) * (y[i].scales[j] & 0xF);
            if (d == 0.0f)
                continue;
            const float dm = F16(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clampi(quant_nearest_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

/* The signed value of largest magnitude among v[0..n) (the first on ties,
 * 0 when all are 0): the sub-block scale that sets a K-quant block's scale. */
static float largest_magnitude(const float *v, int n)
{
    float best = 0, best_abs = 0;
    for (int j = 0; j < n; j++) {
        if (fabsf(v[j]) > best_abs) {
            best_abs = fabsf(v[j]);
            best = v[j];
        }
    }
    return best;
}

static void quantize_q3_K(const float *x, block_q3_K *y, int64_t nb)
{
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        for (int j = 0; j < QK_K / 16; j++)
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        const float max_scale = largest_magnitude(scales, QK_K / 16);
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = clampi((int8_t)quant_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = quant_f32_to_f16(1 / iscale);
        } else {
            y[i].d = quant_f32_to_f16(0.0f);
        }
        int sc[16];
        q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = F16(y[i].d) * sc[j];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(quant_nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        /* bit 2 of element e goes to hmask[e % 32], bit e / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int e = 0; e < QK_K; e++) {
            if (L[e] > 3) {
                y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
                L[e] -= 4;
            }
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

/* Shared by Q4_K and Q5_K: per 32-element sub-block (scale, min) fits, then
 * 6-bit scales and mins relative to the block's d and dmin, then the quants
 * recomputed against the rounded scales. */
static void quantize_k4_common(const float *x, int nmax, float rmin, int nstep, quant_half *dh,
                               quant_half *dminh, uint8_t scales12[12], uint8_t L[QK_K])
{
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin,
                                     0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)quant_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)quant_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales12[j] = ls;
            scales12[j + 4] = lm;
        } else {
            scales12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales12[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales12[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dh = quant_f32_to_f16(max_scale / 63.f);
    *dminh = quant_f32_to_f16(max_min / 63.f);
    uint8_t sc[8], mn[8];
    quant_k4_scales(scales12, sc, mn);
    for (int j = 0; j < QK_K / 32; j++) {
        const float d = F16(*dh) * sc[j];
        if (d == 0.0f)
            continue;
        const float dm = F16(*dminh) * mn[j];
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(quant_nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

static void quantize_q4_K(const float *x, block_q4_K *y, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quantize_k4_common(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * j + l] = (uint8_t)(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
    }
}

static void quantize_q5_K(const float *x, block_q5_K *y, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quantize_k4_common(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int e = 0; e < QK_K; e++)
            y[i].qh[e % 32] |= (uint8_t)((L[e] >> 4) << (e / 32));
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * j + l] =
                    (uint8_t)((L[64 * j + l] & 0xF) | ((L[64 * j + 32 + l] & 0xF) << 4));
    }
}

static void quantize_q6_K(const float *x, block_q6_K *y, int64_t nb)
{
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        for (int ib = 0; ib < QK_K / 16; ib++)
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        const float max_scale = largest_magnitude(scales, QK_K / 16);
        memset(&y[i], 0, sizeof y[i]);
        if (fabsf(max_scale) < 1e-15f)
            continue;
        const float iscale = -128.f / max_scale;
        y[i].d = quant_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) {
            int v = quant_nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = F16(y[i].d) * y[i].scales[j];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] =
                    (int8_t)(clampi(quant_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int e = 0; e < QK_K; e++) {
            int h = e / 128, k = (e / 32) % 4, l = e % 32;
            uint8_t *lb = &y[i].ql[64 * h + l + 32 * (k & 1)];
            *lb |= (uint8_t)((L[e] & 0xF) << (k < 2 ? 0 : 4));
            y[i].qh[32 * h + l] |= (uint8_t)((L[e] >> 4) << (2 * k));
        }
    }
}

/* Nearest of the 16 IQ4_NL levels (ggml's best_index_int8). */
static int iq4nl_index(float x)
{
    const int8_t *v = quant_iq4nl_values;
    if (x <= v[0])
        return 0;
    if (x >= v[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < v[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

/* ggml's quantize_iq4_nl without an importance matrix (ntry 7): weights x^2,
 * a search over 15 scales, then the quants redone for the chosen scale. */
static void quantize_iq4_nl(const float *x, block_iq4_nl *y, int64_t nb)
{
    const int8_t *v = quant_iq4nl_values;
    const int ntry = 7;
    for (int64_t i = 0; i < nb; i++, x += QK4_NL) {
        uint8_t L[QK4_NL];
        float amax;
        const float max = signed_absmax(x, QK4_NL, &amax);
        memset(y[i].qs, 0, sizeof y[i].qs);
        y[i].d = quant_f32_to_f16(0.0f);
        if (amax < 1e-15f)
            continue;
        float d = -max / v[0], id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < QK4_NL; j++) {
            const float q = v[iq4nl_index(id * x[j])], w = x[j] * x[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; itry++) {
            id = (itry + v[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < QK4_NL; j++) {
                const float q = v[iq4nl_index(id * x[j])], w = x[j] * x[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        y[i].d = quant_f32_to_f16(d);
        id = d != 0.0f ? 1 / d : 0;
        for (int j = 0; j < QK4_NL; j++)
            L[j] = (uint8_t)iq4nl_index(id * x[j]);
        for (int j = 0; j < 16; j++)
            y[i].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void convert_f32(const float *x, void *y, int64_t n)
{
    memcpy(y, x, (size_t)n * 4);
}

static void convert_f16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

static void convert_bf16(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = quant_f32_to_bf16(x[i]);
}

void quant_quantize_row(ggml_type type, const float *src, void *dst, int64_t n)
{
    const quant_type_info *ti = quant_info((uint32_t)type);
    if (ti == NULL || n % ti->block_size != 0)
        return;
    const int64_t nb = n / ti->block_size;
    switch (type) {
    case GGML_TYPE_F32: convert_f32(src, dst, n); break;
    case GGML_TYPE_F16: convert_f16(src, dst, n); break;
    case GGML_TYPE_BF16: convert_bf16(src, dst, n); break;
    case GGML_TYPE_Q4_0: quantize_q4_0(src, dst, nb); break;
    case GGML_TYPE_Q4_1: quantize_q4_1(src, dst, nb); break;
    case GGML_TYPE_Q5_0: quantize_q5_0(src, dst, nb); break;
    case GGML_TYPE_Q5_1: quantize_q5_1(src, dst, nb); break;
    case GGML_TYPE_Q8_0: quantize_q8_0_ref(src, dst, nb); break;
    case GGML_TYPE_Q8_1: quantize_q8_1_ref(src, dst, nb); break;
    case GGML_TYPE_Q2_K: quantize_q2_K(src, dst, nb); break;
    case GGML_TYPE_Q3_K: quantize_q3_K(src, dst, nb); break;
    case GGML_TYPE_Q4_K: quantize_q4_K(src, dst, nb); break;
    case GGML_TYPE_Q5_K: quantize_q5_K(src, dst, nb); break;
    case GGML_TYPE_Q6_K: quantize_q6_K(src, dst, nb); break;
    case GGML_TYPE_Q8_K: quantize_act_q8_K(src, dst, n); break;
    case GGML_TYPE_IQ4_NL: quantize_iq4_nl(src, dst, nb); break;
    default: break;
    }
}

void quant_ref_quantize_act(ggml_type type, const float *src, void *dst, int64_t n)
{
    switch (type) {
    case GGML_TYPE_Q8_0: quantize_act_q8_0(src, dst, n); break;
    case GGML_TYPE_Q8_1: quantize_act_q8_1(src, dst, n); break;
    default: quant_quantize_row(type, src, dst, n); break;
    }
}

/* ---- reference dot products ---------------------------------------------- */
/* Integer sums per block exactly as ggml; each block adds (dw*dx)*sum to a
 * float accumulator, as ggml's x86 kernels scale it. */

static float get_f32(const void *p, int64_t i)
{
    return ((const float *)p)[i];
}
static float get_f16(const void *p, int64_t i)
{
    return quant_f16_to_f32(((const uint16_t *)p)[i]);
}
static float get_bf16(const void *p, int64_t i)
{
    return quant_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* Float rows: products in float, summed in double (the most accurate
 * oracle; llama.cpp's SIMD sums differ from it only in rounding). */
static float dot_floats(int64_t n, const void *w, const void *x,
                        float (*get)(const void *, int64_t))
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(get(w, i) * get(x, i));
    return (float)s;
}

static float dot_f32(int64_t n, const void *w, const void *x)
{
    return dot_floats(n, w, x, get_f32);
}
static float dot_f16(int64_t n, const void *w, const void *x)
{
    return dot_floats(n, w, x, get_f16);
}
static float dot_bf16(int64_t n, const void *w, const void *x)
{
    return dot_floats(n, w, x, get_bf16);
}

static float dot_q4_0(int64_t n, const void *vw, const void *vx)
{
    const block_q4_0 *w = vw;
    const block_q8_0 *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum +=
                ((w[i].qs[j] & 0xF) - 8) * x[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
        s += (F16(w[i].d) * F16(x[i].d)) * (float)sum;
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *vw, const void *vx)
{
    const block_q4_1 *w = vw;
    const block_q8_1 *x = vx;
    float s = 0, sm = 0;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += (w[i].qs[j] & 0xF) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
        s += (F16(w[i].d) * F16(x[i].d)) * (float)sum;
        sm += F16(w[i].m) * F16(x[i].s);
    }
    return s + sm;
}

static float dot_q5_0(int64_t n, const void *vw, const void *vx)
{
    const block_q5_0 *w = vw;
    const block_q8_0 *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, 4);
        int sum = 0;
        for (int j = 0; j < 32; j++)
            sum += (q5_value(w[i].qs, qh, j) - 16) * x[i].qs[j];
        s += (F16(w[i].d) * F16(x[i].d)) * (float)sum;
    }
    return s;
}

static float dot_q5_1(int64_t n, const void *vw, const void *vx)
{
    const block_q5_1 *w = vw;
    const block_q8_1 *x = vx;
    float s = 0, sm = 0;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, 4);
        int sum = 0;
        for (int j = 0; j < 32; j++)
            sum += q5_value(w[i].qs, qh, j) * x[i].qs[j];
        s += (F16(w[i].d) * F16(x[i].d)) * (float)sum;
        sm += F16(w[i].m) * F16(x[i].s);
    }
    return s + sm;
}

/* Sums in the AVX-512 kernels' order (quant_avx512.c), close enough to
 * llama.cpp's x86 build to pick the same tokens: eight int32 lanes of four
 * products per block, each lane scaled and added with one rounding (FMA)
 * into one of two accumulators (even and odd blocks), the two added lane by
 * lane, then the lanes folded 8 -> 4 -> 2 -> 1 as hsum_ps does. The AVX2
 * kernels sum in this order too (quant_x86.h), so every kernel set gives
 * these bits for Q8_0: with one accumulator, as llama.cpp's AVX2 vec_dot
 * keeps, logits moved by ~0.03 and flipped a near-tie of the greedy
 * comparison (test_generate_avx2). A plain per-block sum differs more,
 * enough to flip a greedy token within a few dozen steps. */
static float dot_q8_0(int64_t n, const void *vw, const void *vx)
{
    const block_q8_0 *w = vw, *x = vx;
    float acc[2][8] = {{0}};
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = F16(w[i].d) * F16(x[i].d);
        for (int l = 0; l < 8; l++) {
            int sum = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++)
                sum += w[i].qs[j] * x[i].qs[j];
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

static float dot_iq4_nl(int64_t n, const void *vw, const void *vx)
{
    const block_iq4_nl *w = vw;
    const block_q8_0 *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += quant_iq4nl_values[w[i].qs[j] & 0xF] * x[i].qs[j] +
                   quant_iq4nl_values[w[i].qs[j] >> 4] * x[i].qs[j + 16];
        s += (F16(w[i].d) * F16(x[i].d)) * (float)sum;
    }
    return s;
}

static float dot_q2_K(int64_t n, const void *vw, const void *vx)
{
    const block_q2_K *w = vw;
    const block_q8_K *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++)
            summs += x[i].bsums[j] * (w[i].scales[j] >> 4);
        for (int sb = 0; sb < 16; sb++) {
            int sub = 0;
            for (int e = 16 * sb; e < 16 * sb + 16; e++) {
                int h = e / 128, j = (e / 32) % 4, l = e % 32;
                sub += x[i].qs[e] * ((w[i].qs[32 * h + l] >> (2 * j)) & 3);
            }
            isum += (w[i].scales[sb] & 0xF) * sub;
        }
        const float dall = x[i].d * F16(w[i].d), dmin = x[i].d * F16(w[i].dmin);
        s += dall * (float)isum - dmin * (float)summs;
    }
    return s;
}

static float dot_q3_K(int64_t n, const void *vw, const void *vx)
{
    const block_q3_K *w = vw;
    const block_q8_K *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sc[16], isum = 0;
        q3_K_scales(w[i].scales, sc);
        for (int sb = 0; sb < 16; sb++) {
            int sub = 0;
            for (int e = 16 * sb; e < 16 * sb + 16; e++)
                sub += x[i].qs[e] * q3_K_value(&w[i], e);
            isum += sc[sb] * sub;
        }
        s += (F16(w[i].d) * x[i].d) * (float)isum;
    }
    return s;
}

/* The min part of Q4_K/Q5_K: sum over sub-blocks of min * sum(x). */
static int k4_min_sum(const uint8_t mn[8], const int16_t bsums[16])
{
    int m = 0;
    for (int j = 0; j < 16; j++)
        m += bsums[j] * mn[j / 2];
    return m;
}

/* Q4_K and Q5_K: same header (d, dmin, scales), Q5_K adds the fifth bits. */
static float dot_k4(int64_t n, const void *vw, const void *vx, size_t bsize, bool five)
{
    const block_q8_K *x = vx;
    float s = 0, smin = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const block_q4_K *w = (const block_q4_K *)((const char *)vw + (size_t)i * bsize);
        uint8_t sc[8], mn[8];
        quant_k4_scales(w->scales, sc, mn);
        int isum = 0;
        for (int sb = 0; sb < 8; sb++) {
            int sub = 0;
            for (int e = 32 * sb; e < 32 * sb + 32; e++)
                sub += x[i].qs[e] *
                       (five ? q5_K_value((const block_q5_K *)w, e) : q4_K_value(w->qs, e));
            isum += sc[sb] * sub;
        }
        s += (F16(w->d) * x[i].d) * (float)isum;
        smin += (F16(w->dmin) * x[i].d) * (float)k4_min_sum(mn, x[i].bsums);
    }
    return s - smin;
}

static float dot_q4_K(int64_t n, const void *w, const void *x)
{
    return dot_k4(n, w, x, sizeof(block_q4_K), false);
}

static float dot_q5_K(int64_t n, const void *w, const void *x)
{
    return dot_k4(n, w, x, sizeof(block_q5_K), true);
}

static float dot_q6_K(int64_t n, const void *vw, const void *vx)
{
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int sb = 0; sb < 16; sb++) {
            int sub = 0;
            for (int e = 16 * sb; e < 16 * sb + 16; e++)
                sub += x[i].qs[e] * q6_K_value(&w[i], e);
            isum += w[i].scales[sb] * sub;
        }
        s += (F16(w[i].d) * x[i].d) * (float)isum;
    }
    return s;
}

static const quant_vec_dot_fn ref_dot[GGML_TYPE_MAX_ID] = {
    [GGML_TYPE_F32] = dot_f32,   [GGML_TYPE_F16] = dot_f16,       [GGML_TYPE_BF16] = dot_bf16,
    [GGML_TYPE_Q4_0] = dot_q4_0, [GGML_TYPE_Q4_1] = dot_q4_1,     [GGML_TYPE_Q5_0] = dot_q5_0,
    [GGML_TYPE_Q5_1] = dot_q5_1, [GGML_TYPE_Q8_0] = dot_q8_0,     [GGML_TYPE_Q2_K] = dot_q2_K,
    [GGML_TYPE_Q3_K] = dot_q3_K, [GGML_TYPE_Q4_K] = dot_q4_K,     [GGML_TYPE_Q5_K] = dot_q5_K,
    [GGML_TYPE_Q6_K] = dot_q6_K, [GGML_TYPE_IQ4_NL] = dot_iq4_nl,
};

float quant_ref_vec_dot(ggml_type type, int64_t n, const void *w, const void *x)
{
    if ((unsigned)type >= GGML_TYPE_MAX_ID || ref_dot[type] == NULL)
        return 0.0f;
    return ref_dot[type](n, w, x);
}

/* ---- batched product ----------------------------------------------------- */

void quant_gemm_by_rows(quant_vec_dot_fn dot, int64_t n, const void *w, size_t w_stride,
                        int64_t nrows, const void *x, size_t x_stride, int64_t ncols, float *y,
                        size_t ldy)
{
    /* row-outer keeps one weight row in L1 while the columns stream from L2 */
    for (int64_t r = 0; r < nrows; r++) {
        const char *wr = (const char *)w + (size_t)r * w_stride;
        for (int64_t c = 0; c < ncols; c++)
            y[(size_t)c * ldy + (size_t)r] = dot(n, wr, (const char *)x + (size_t)c * x_stride);
    }
}

#define DEFINE_REF_GEMM(name)                                                                      \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *x,        \
                            size_t xs, int64_t nc, float *y, size_t ldy)                           \
    {                                                                                              \
        quant_gemm_by_rows(dot_##name, n, w, ws, nr, x, xs, nc, y, ldy);                           \
    }
DEFINE_REF_GEMM(f32)
DEFINE_REF_GEMM(f16)
DEFINE_REF_GEMM(bf16)
DEFINE_REF_GEMM(q4_0)
DEFINE_REF_GEMM(q4_1)
DEFINE_REF_GEMM(q5_0)
DEFINE_REF_GEMM(q5_1)
DEFINE_REF_GEMM(q8_0)
DEFINE_REF_GEMM(q2_K)
DEFINE_REF_GEMM(q3_K)
DEFINE_REF_GEMM(q4_K)
DEFINE_REF_GEMM(q5_K)
DEFINE_REF_GEMM(q6_K)
DEFINE_REF_GEMM(iq4_nl)

static const quant_gemm_fn ref_gemm[GGML_TYPE_MAX_ID] = {
    [GGML_TYPE_F32] = gemm_f32,   [GGML_TYPE_F16] = gemm_f16,       [GGML_TYPE_BF16] = gemm_bf16,
    [GGML_TYPE_Q4_0] = gemm_q4_0, [GGML_TYPE_Q4_1] = gemm_q4_1,     [GGML_TYPE_Q5_0] = gemm_q5_0,
    [GGML_TYPE_Q5_1] = gemm_q5_1, [GGML_TYPE_Q8_0] = gemm_q8_0,     [GGML_TYPE_Q2_K] = gemm_q2_K,
    [GGML_TYPE_Q3_K] = gemm_q3_K, [GGML_TYPE_Q4_K] = gemm_q4_K,     [GGML_TYPE_Q5_K] = gemm_q5_K,
    [GGML_TYPE_Q6_K] = gemm_q6_K, [GGML_TYPE_IQ4_NL] = gemm_iq4_nl,
};

void quant_matmul(const quant_kernels *k, ggml_type type, int64_t n, const void *w, size_t w_stride,
                  int64_t nrows, const void *x, size_t x_stride, int64_t ncols, float *y,
                  size_t ldy)
{
    if ((unsigned)type < GGML_TYPE_MAX_ID && k->gemm[type] != NULL)
        k->gemm[type](n, w, w_stride, nrows, x, x_stride, ncols, y, ldy);
}

/* ---- attention's weighted sum of cache rows -------------------------------- */

/* fmaf: one rounding per position, as the SIMD kernels' vfmadd */
static void wsum_f32(int64_t n, float *out, const void *rows, size_t stride, const float *p,
                     int64_t nrows)
{
    for (int64_t d = 0; d < n; d++)
        out[d] = 0.0f;
    for (int64_t j = 0; j < nrows; j++) {
        const float *r = (const float *)((const char *)rows + (size_t)j * stride);
        for (int64_t d = 0; d < n; d++)
            out[d] = fmaf(p[j], r[d], out[d]);
    }
}

static void wsum_f16(int64_t n, float *out, const void *rows, size_t stride, const float *p,
                     int64_t nrows)
{
    for (int64_t d = 0; d < n; d++)
        out[d] = 0.0f;
    for (int64_t j = 0; j < nrows; j++) {
        const uint16_t *r = (const uint16_t *)((const char *)rows + (size_t)j * stride);
        const float pj = quant_f16_to_f32(quant_f32_to_f16(p[j]));
        for (int64_t d = 0; d < n; d++)
            out[d] = fmaf(pj, quant_f16_to_f32(r[d]), out[d]);
    }
}

/* ---- CPU detection and dispatch ------------------------------------------ */

typedef struct cpu_features {
    bool avx2, avx512, vnni, bf16;
} cpu_features;

static cpu_features detect_cpu(void)
{
    cpu_features f = {false, false, false, false};
#ifdef QUANT_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    const bool fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || !avx)
        return f;
    /* The OS must save the YMM (and for AVX-512 the opmask/ZMM) state:
     * XCR0 bits 1-2, and 5-7. */
    uint32_t xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const bool os_avx = (xlo & 0x6) == 0x6, os_avx512 = (xlo & 0xe6) == 0xe6;
    if (!os_avx || __get_cpuid_max(0, NULL) < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b & (1u << 5)) && fma && f16c;
    const bool avx512f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30),
               vl = b & (1u << 31);
    f.avx512 = f.avx2 && os_avx512 && avx512f && dq && bw && vl;
    f.vnni = f.avx512 && (c & (1u << 11));
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.bf16 = f.avx512 && (a1 & (1u << 5));
#endif
    return f;
}

static cpu_features g_cpu;
static quant_kernels g_tables[3];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fill_scalar(quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->isa = QUANT_ISA_SCALAR;
    for (int t = 0; t < GGML_TYPE_MAX_ID; t++) {
        k->vec_dot[t] = ref_dot[t];
        k->gemm[t] = ref_gemm[t];
    }
    k->quantize[GGML_TYPE_F32] = convert_f32;
    k->quantize[GGML_TYPE_F16] = convert_f16;
    k->quantize[GGML_TYPE_BF16] = convert_bf16;
    k->quantize[GGML_TYPE_Q8_0] = quantize_act_q8_0;
    k->quantize[GGML_TYPE_Q8_1] = quantize_act_q8_1;
    k->quantize[GGML_TYPE_Q8_K] = quantize_act_q8_K;
    k->wsum[GGML_TYPE_F32] = wsum_f32;
    k->wsum[GGML_TYPE_F16] = wsum_f16;
}

static void init_tables(void)
{
    g_cpu = detect_cpu();
    fill_scalar(&g_tables[QUANT_ISA_SCALAR]);
    if (g_cpu.avx2) {
        g_tables[QUANT_ISA_AVX2] = g_tables[QUANT_ISA_SCALAR];
        g_tables[QUANT_ISA_AVX2].isa = QUANT_ISA_AVX2;
        quant_avx2_fill(&g_tables[QUANT_ISA_AVX2]);
    }
    if (g_cpu.avx512) {
        g_tables[QUANT_ISA_AVX512] = g_tables[QUANT_ISA_AVX2];
        g_tables[QUANT_ISA_AVX512].isa = QUANT_ISA_AVX512;
        g_tables[QUANT_ISA_AVX512].has_vnni = g_cpu.vnni;
        g_tables[QUANT_ISA_AVX512].has_bf16 = g_cpu.bf16;
        quant_avx512_fill(&g_tables[QUANT_ISA_AVX512], g_cpu.vnni, g_cpu.bf16);
    }
}

quant_isa quant_cpu_isa(void)
{
    pthread_once(&g_once, init_tables);
    return g_cpu.avx512 ? QUANT_ISA_AVX512 : g_cpu.avx2 ? QUANT_ISA_AVX2 : QUANT_ISA_SCALAR;
}

const char *quant_isa_name(quant_isa isa)
{
    switch (isa) {
    case QUANT_ISA_SCALAR: return "scalar";
    case QUANT_ISA_AVX2: return "avx2";
    case QUANT_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

const quant_kernels *quant_kernels_for(quant_isa isa)
{
    if ((unsigned)isa > QUANT_ISA_AVX512 || isa > quant_cpu_isa())
        return NULL;
    return &g_tables[isa];
}

const quant_kernels *quant_kernels_best(void)
{
    quant_isa isa = quant_cpu_isa();
    const char *env = getenv("GHOST_ISA");
    if (env != NULL) {
        quant_isa want = isa;
        if (strcasecmp(env, "scalar") == 0)
            want = QUANT_ISA_SCALAR;
        else if (strcasecmp(env, "avx2") == 0)
            want = QUANT_ISA_AVX2;
        else if (strcasecmp(env, "avx512") == 0)
            want = QUANT_ISA_AVX512;
        if (want < isa)
            isa = want; /* the variable may only lower the level */
    }
    return &g_tables[isa];
}
