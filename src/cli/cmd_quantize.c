/*
 * cmd_quantize.c — `ghostflow quantize`: rewrites a GGUF model's weights in
 * another type, following llama-quantize's rules (norms and 1-D tensors stay
 * as they are; a row length that does not fit the type's blocks falls back
 * per tensor). The work is quantize_gguf() in src/llm/quantize_file.c.
 *
 *   ghostflow quantize [-t THREADS] IN.gguf OUT.gguf TYPE
 *
 * Exit codes: 0 written, 1 failure, 2 usage error (including an unknown TYPE).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flow_cli.h"
#include "llm/tools.h"

#define PROG "ghostflow quantize"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ghostflow quantize [options] IN.gguf OUT.gguf TYPE\n"
            "\n"
            "Writes OUT.gguf with IN.gguf's weight matrices in TYPE: %s.\n"
            "Norms and 1-D tensors are copied; a matrix whose rows do not fit TYPE's\n"
            "blocks gets llama-quantize's fallback (Q4_K -> Q5_0, Q5_K -> Q5_1,\n"
            "Q6_K -> Q8_0, then F16).\n"
            "\n"
            "options:\n"
            "  -t, --threads N   threads (default 2)\n"
            "  -h, --help        this help\n",
            quantize_type_list());
}

static double mib(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

int cmd_quantize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    quantize_params p = {.n_threads = 2};
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (cli_parse_int(PROG, "--threads", optarg, 1, 256, &v) != 0)
                return CLI_EXIT_USAGE;
            p.n_threads = (int)v;
            break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    if (argc - optind != 3) {
        cli_error(PROG, "expected IN.gguf OUT.gguf TYPE (see --help)");
        return CLI_EXIT_USAGE;
    }
    const char *in = argv[optind], *out = argv[optind + 1], *type = argv[optind + 2];
    p.type = tools_parse_type(type);
    if (!quantize_type_ok(p.type)) {
        cli_error(PROG, "unknown type '%s' (expected %s)", type, quantize_type_list());
        return CLI_EXIT_USAGE;
    }
    cli_progress bar;
    cli_progress_init(&bar, "quantizing");
    p.progress = cli_progress_update;
    p.user = &bar;
    quantize_stats st;
    if (flow_cli_tool_done(PROG, &bar, quantize_gguf(in, out, &p, &st)) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    fprintf(stderr,
            "%s: wrote %s: %u tensors (%u %s, %u fallback, %u kept), %.2f MiB -> %.2f MiB\n", PROG,
            out, st.n_tensors, st.n_quantized, quant_info(p.type)->name, st.n_fallback, st.n_kept,
            mib(st.bytes_in), mib(st.bytes_out));
    return CLI_EXIT_OK;
}
