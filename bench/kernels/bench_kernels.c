/*
 * bench_kernels.c — throughput of the quantized dot-product kernels, per
 * weight type and instruction set.
 *
 *   bench_kernels [-t THREADS] [-m MiB] [-n ROW_LEN] [-c PREFILL_COLS] [TYPE...]
 *
 * For each type and each ISA this CPU runs it prints:
 *   dram GB/s   vec_dot over a weight matrix of -m MiB (default 256, far past
 *               the caches): the decode case, bound by memory bandwidth
 *   l2 GB/s     the same over a 256 KiB matrix that stays in L2: the
 *               kernel's own speed
 *   gemm Gop/s  the batched prefill product against -c columns (default
 *               64), 2 ops per multiply-add
 * Types with an eight-row kernel (quant_kernels.gemm_x8) get a second line
 * per ISA, "x8": the same matrices repacked as the model repacks them at
 * load, decode through that kernel with one column.
 * Rows are split across -t threads (default 1). Not a test: numbers only.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/quant.h"

typedef struct job {
    const quant_kernels *k;
    ggml_type type;
    int64_t n, rows, cols;
    const char *w, *x;
    size_t w_row, x_row;
    float *out;
    int reps;
    bool gemm, x8; /* x8: w repacked by quant_repack_x8, rows a multiple of 8 */
} job;

typedef struct slice {
    const job *j;
    int64_t r0, r1;
} slice;

static void *run_slice(void *arg)
{
    const slice *s = arg;
    const job *j = s->j;
    for (int rep = 0; rep < j->reps; rep++) {
        if (j->x8) {
            j->k->gemm_x8[j->type](j->n, j->w + (size_t)s->r0 * j->w_row, j->w_row, s->r1 - s->r0,
                                   j->x, j->x_row, j->cols, j->out + s->r0, (size_t)j->rows);
        } else if (j->gemm) {
            quant_matmul(j->k, j->type, j->n, j->w + (size_t)s->r0 * j->w_row, j->w_row,
                         s->r1 - s->r0, j->x, j->x_row, j->cols, j->out + s->r0, (size_t)j->rows);
        } else {
            quant_vec_dot_fn dot = j->k->vec_dot[j->type];
            for (int64_t r = s->r0; r < s->r1; r++)
                j->out[r] = dot(j->n, j->w + (size_t)r * j->w_row, j->x);
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of 3 timings of j split over nt threads, seconds per repetition. */
static double time_job(const job *j, int nt)
{
    pthread_t th[64];
    slice sl[64];
    double best = 1e30;
    for (int trial = 0; trial < 3; trial++) {
        double t0 = now();
        for (int t = 0; t < nt; t++) {
            const int64_t g = j->x8 ? 8 : 1; /* eight-row groups stay whole */
            sl[t] = (slice){j, j->rows / g * t / nt * g, j->rows / g * (t + 1) / nt * g};
            if (pthread_create(&th[t], NULL, run_slice, &sl[t]) != 0) {
                run_slice(&sl[t]);
                th[t] = 0;
            }
        }
        for (int t = 0; t < nt; t++)
            if (th[t])
                pthread_join(th[t], NULL);
        double dt = (now() - t0) / j->reps;
        if (dt < best)
            best = dt;
    }
    return best;
}

static void fill_random(void *p, size_t bytes, uint32_t seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
}

/* Weight rows with valid data: quantize random floats row by row (slow for
 * big matrices, so one row is made and copied). */
static void make_matrix(ggml_type t, char *w, int64_t n, int64_t rows, size_t row_bytes)
{
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)((int64_t)(i * 2654435761u % 2001) - 1000) / 1000.0f;
    quant_quantize_row(t, f, w, n);
    for (int64_t r = 1; r < rows; r++)
        memcpy(w + (size_t)r * row_bytes, w, row_bytes);
    free(f);
}

/* One line: decode from DRAM, decode from L2, prefill. */
static void report(const job *jd, const job *jl, const job *jg, int threads, const char *tag)
{
    const double td = time_job(jd, threads), tl = time_job(jl, threads);
    const double tg = time_job(jg, threads);
    char isa[16];
    snprintf(isa, sizeof isa, "%s%s", quant_isa_name(jd->k->isa), tag);
    printf("%-7s %-9s %10.2f %10.2f %11.2f\n", quant_info(jd->type)->name, isa,
           (double)jd->rows * (double)jd->w_row / td / 1e9,
           (double)jl->rows * (double)jl->w_row / tl / 1e9,
           2.0 * (double)jd->n * (double)jg->rows * (double)jg->cols / tg / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int threads = 1, opt;
    int64_t n = 4096, cols = 64;
    double mib = 256;
    while ((opt = getopt(argc, argv, "t:m:n:c:h")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'm': mib = atof(optarg); break;
        case 'n': n = atoll(optarg); break;
        case 'c': cols = atoll(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-t THREADS] [-m MiB] [-n ROW_LEN] [-c COLS] [TYPE...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || n < 256 || n % 256 != 0 || cols < 1 || mib <= 0) {
        fprintf(stderr,
                "bench_kernels: need 1 <= -t <= 64, -n a multiple of 256, -c >= 1, -m > 0\n");
        return 2;
    }
    static const ggml_type all[] = {
        GGML_TYPE_Q4_0,   GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
        GGML_TYPE_Q2_K,   GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
        GGML_TYPE_IQ4_NL, GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_F32};
    ggml_type types[32];
    int ntypes = 0;
    if (optind < argc) {
        for (int a = optind; a < argc && ntypes < 32; a++) {
            int found = 0;
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                if (strcasecmp(argv[a], quant_info(all[i])->name) == 0)
                    types[ntypes++] = all[i], found = 1;
            if (!found) {
                fprintf(stderr, "bench_kernels: unknown type %s (have %s)\n", argv[a],
                        quant_supported_list());
                return 2;
            }
        }
    } else {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            types[ntypes++] = all[i];
    }

    const quant_isa best = quant_cpu_isa();
    const quant_kernels *kb = quant_kernels_for(best);
    printf("cpu: %s%s%s, threads %d, row %lld, dram matrix %.0f MiB, gemm %lld columns\n",
           quant_isa_name(best), kb->has_vnni ? "+vnni" : "", kb->has_bf16 ? "+bf16" : "", threads,
           (long long)n, mib, (long long)cols);
    printf("%-7s %-9s %10s %10s %11s\n", "type", "isa", "dram GB/s", "l2 GB/s", "gemm Gop/s");
    for (int ti = 0; ti < ntypes; ti++) {
        const ggml_type t = types[ti];
        const ggml_type vt = quant_info(t)->vec_dot_type;
        const size_t w_row = quant_row_size(t, n), x_row = quant_row_size(vt, n);
        const int64_t rows_dram = (int64_t)(mib * 1048576.0 / (double)w_row) + 1;
        const int64_t rows_l2 = (int64_t)(256.0 * 1024 / (double)w_row) + 1;
        char *w = malloc((size_t)rows_dram * w_row);
        char *x = malloc((size_t)cols * x_row), *packed = NULL;
        float *out = malloc((size_t)rows_dram * (size_t)cols * sizeof *out);
        float *xf = malloc((size_t)n * sizeof *xf);
        if (!w || !x || !out || !xf) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            return 1;
        }
        make_matrix(t, w, n, rows_dram, w_row);
        for (int64_t c = 0; c < cols; c++) {
            fill_random(xf, (size_t)n * sizeof *xf, (uint32_t)c + 1);
            for (int64_t i = 0; i < n; i++)
                xf[i] = (float)((int32_t)((uint32_t *)xf)[i] >> 8) / 8388608.0f;
            quant_quantize_row(vt, xf, x + (size_t)c * x_row, n);
        }
        for (int isa = QUANT_ISA_SCALAR; isa <= (int)best; isa++) {
            const quant_kernels *k = quant_kernels_for((quant_isa)isa);
            job jd = {k, t, n, rows_dram, 1, w, x, w_row, x_row, out, 1, false, false};
            job jl = {k, t, n, rows_l2, 1, w, x, w_row, x_row, out, 0, false, false};
            job jg = {k, t, n, rows_l2, cols, w, x, w_row, x_row, out, 1, true, false};
            if (isa == QUANT_ISA_SCALAR) { /* the reference is slow: shrink */
                jd.rows = rows_dram / 8 + 1;
                jg.cols = cols < 8 ? cols : 8;
            }
            jl.reps = (int)(64.0 * 1048576 / ((double)rows_l2 * (double)w_row)) + 1;
            if (isa == QUANT_ISA_SCALAR)
                jl.reps = jl.reps / 16 + 1;
            report(&jd, &jl, &jg, threads, "");
            if (k->gemm_x8[t] == NULL)
                continue;
            if (packed == NULL && (packed = malloc((size_t)rows_dram * w_row)) != NULL)
                quant_repack_x8(t, w, packed, n, rows_dram / 8 * 8);
            if (packed == NULL) {
                fprintf(stderr, "bench_kernels: out of memory\n");
                return 1;
            }
            jd.x8 = jl.x8 = jg.x8 = true;
            jd.w = jl.w = jg.w = packed;
            jd.rows = rows_dram / 8 * 8;
            jl.rows = jg.rows = (rows_l2 + 7) / 8 * 8 < jd.rows ? (rows_l2 + 7) / 8 * 8 : jd.rows;
            report(&jd, &jl, &jg, threads, "x8");
        }
        free(packed);
        free(w);
        free(x);
        free(out);
        free(xf);
    }
    return 0;
}
