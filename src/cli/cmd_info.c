/*
 * cmd_info.c — `ghostflow info MODEL`: what is inside a GGUF file.
 *
 *   ghostflow info [--full] MODEL.gguf
 *
 * Prints the header (version, alignment, where the data starts), the
 * metadata table (key, type, value) and the tensor table (name, type,
 * dimensions, offset in the data section, bytes). Long arrays are summarised
 * as "[array of N STRING]"; long strings are cut unless --full is given.
 * Nothing but the header is read: a 40 GB model is described in
 * milliseconds, and a malformed file fails with the loader's message (what,
 * where) and exit code 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ghostllm.h"
#include "llm/gguf.h"
#include "llm/quant.h"

#define PROG         "ghostflow info"
#define STR_SHOW_MAX 72 /* bytes of a string shown without --full */
#define ARR_SHOW_MAX 8  /* arrays up to this length are printed in full */
#define NAME_COL_MAX 48 /* widest key/name column */

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow info [--full] MODEL.gguf\n"
                 "\n"
                 "Prints a GGUF file's header, metadata and tensor table.\n"
                 "\n"
                 "options:\n"
                 "      --full    print strings whole (chat templates, ...)\n"
                 "  -h, --help    this help\n");
}

/* A string from the file, escaped so control bytes cannot reach the
 * terminal: \n, \t, \", \\ and \xNN; at most `max` source bytes. */
static void print_str(const char *p, uint64_t len, uint64_t max)
{
    putchar('"');
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (len > max)
        printf("... (%llu bytes)", (unsigned long long)len);
}

/* The shortest decimal form that reads back as the same value. */
static void print_real(double v, bool is_f32)
{
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_f32 ? (float)back == (float)v : back == v)
            break;
    }
    fputs(buf, stdout);
}

/* One element of a fixed-size type at p. */
static void print_scalar(gguf_type t, const uint8_t *p)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
    } v;
    switch (t) {
    case GGUF_TYPE_UINT8:
        memcpy(&v.u8, p, 1);
        printf("%u", v.u8);
        break;
    case GGUF_TYPE_INT8:
        memcpy(&v.i8, p, 1);
        printf("%d", v.i8);
        break;
    case GGUF_TYPE_UINT16:
        memcpy(&v.u16, p, 2);
        printf("%u", v.u16);
        break;
    case GGUF_TYPE_INT16:
        memcpy(&v.i16, p, 2);
        printf("%d", v.i16);
        break;
    case GGUF_TYPE_UINT32:
        memcpy(&v.u32, p, 4);
        printf("%u", v.u32);
        break;
    case GGUF_TYPE_INT32:
        memcpy(&v.i32, p, 4);
        printf("%d", v.i32);
        break;
    case GGUF_TYPE_UINT64:
        memcpy(&v.u64, p, 8);
        printf("%llu", (unsigned long long)v.u64);
        break;
    case GGUF_TYPE_INT64:
        memcpy(&v.i64, p, 8);
        printf("%lld", (long long)v.i64);
        break;
    case GGUF_TYPE_FLOAT32:
        memcpy(&v.f32, p, 4);
        print_real(v.f32, true);
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&v.f64, p, 8);
        print_real(v.f64, false);
        break;
    case GGUF_TYPE_BOOL: fputs(p[0] ? "true" : "false", stdout); break;
    default: fputs("?", stdout); break;
    }
}

static void print_value(const gguf_kv *kv, bool full)
{
    uint64_t max = full ? UINT64_MAX : STR_SHOW_MAX;
    if (kv->type == GGUF_TYPE_STRING) {
        print_str(kv->str.ptr, kv->str.len, max);
    } else if (kv->type != GGUF_TYPE_ARRAY) {
        print_scalar(kv->type, kv->data);
    } else if (kv->arr_len > ARR_SHOW_MAX) {
        printf("[array of %llu %s]", (unsigned long long)kv->arr_len, gguf_type_name(kv->arr_type));
    } else {
        putchar('[');
        for (uint64_t i = 0; i < kv->arr_len; i++) {
            if (i)
                fputs(", ", stdout);
            if (kv->arr_type == GGUF_TYPE_STRING)
                print_str(kv->strs[i].ptr, kv->strs[i].len, max);
            else
                print_scalar(kv->arr_type, kv->data + i * gguf_type_size(kv->arr_type));
        }
        putchar(']');
    }
}

/* A key or tensor name from the file, indented and padded to width: bytes
 * outside printable ASCII are shown as \xNN. */
static void print_name(const char *p, uint64_t len, int width)
{
    int shown = 0;
    fputs("  ", stdout);
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        shown += c >= 0x20 && c < 0x7f ? printf("%c", c) : printf("\\x%02x", c);
    }
    printf("%*s  ", shown < width ? width - shown : 0, "");
}

static int name_width(const gguf_file *f)
{
    size_t w = 4;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key.len > w)
            w = (size_t)f->kv[i].key.len;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (strlen(f->tensors[i].name) > w)
            w = strlen(f->tensors[i].name);
    return (int)(w < NAME_COL_MAX ? w : NAME_COL_MAX);
}

static void print_info(const char *path, const gguf_file *f, bool full)
{
    uint64_t data_bytes = 0, n_elems = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        data_bytes += t->nbytes;
        n_elems += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    printf("file:       %s\n", path);
    printf("size:       %zu bytes\n", f->size);
    printf("format:     GGUF v%u, alignment %llu, data section at offset %llu\n", f->version,
           (unsigned long long)f->alignment, (unsigned long long)f->data_offset);
    printf("contents:   %llu keys, %llu tensors, %llu elements in %llu bytes\n",
           (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors,
           (unsigned long long)n_elems, (unsigned long long)data_bytes);

    int w = name_width(f);
    printf("\nmetadata:\n  %-*s  %-8s  %s\n", w, "KEY", "TYPE", "VALUE");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        print_name(kv->key.ptr, kv->key.len, w);
        printf("%-8s  ", gguf_type_name(kv->type));
        print_value(kv, full);
        putchar('\n');
    }

    printf("\ntensors:\n  %-*s  %-7s  %-18s  %12s  %12s\n", w, "NAME", "TYPE", "DIMS", "OFFSET",
           "BYTES");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char dims[96];
        size_t n = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%lld", d ? " x " : "",
                                  (long long)t->ne[d]);
        const quant_type_info *qi = quant_info(t->type);
        print_name(t->name, strlen(t->name), w);
        printf("%-7s  %-18s  %12llu  %12llu\n", qi ? qi->name : "?", dims,
               (unsigned long long)t->offset, (unsigned long long)t->nbytes);
    }
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"full", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool full = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'F': full = true; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    if (optind != argc - 1) {
        cli_error(PROG, optind >= argc ? "no model file given" : "more than one model file given");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *path = argv[optind];
    gguf_file *f = NULL;
    if (gguf_open(path, &f) != GHOST_OK) {
        cli_error(PROG, "%s", ghost_errmsg(NULL));
        return CLI_EXIT_FAILURE;
    }
    print_info(path, f, full);
    gguf_close(f);
    return CLI_EXIT_OK; /* main checks that the output was written */
}
