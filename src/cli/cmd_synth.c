/*
 * cmd_synth.c — `ghostflow synth`: writes a random-weight GGUF model of a
 * realistic shape (TinyLlama 1.1B, Qwen2 0.5B, small test shapes) with a
 * generated vocabulary, for benchmarks and tests. The work is synth_write()
 * in src/llm/synth.c.
 *
 *   ghostflow synth --shape NAME [--type TYPE] [--seed S] [-t N] OUT.gguf
 *   ghostflow synth --list
 *
 * Exit codes: 0 written, 1 failure, 2 usage error (unknown shape or type).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flow_cli.h"
#include "llm/tools.h"

#define PROG "ghostflow synth"

static void list_shapes(FILE *out)
{
    for (const synth_shape *s = synth_shapes(); s->name != NULL; s++)
        fprintf(out, "  %-16s %s\n", s->name, s->summary);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow synth --shape NAME [options] OUT.gguf\n"
                 "       ghostflow synth --list\n"
                 "\n"
                 "Writes a GGUF model of the given shape with random weights and a generated\n"
                 "vocabulary (llama.cpp loads it too). Shapes:\n");
    list_shapes(out);
    fprintf(out,
            "\noptions:\n"
            "  -s, --shape NAME   model shape (required)\n"
            "  -T, --type TYPE    weight type: %s (default Q4_K);\n"
            "                     rows that do not fit fall back as in quantize\n"
            "      --seed S       random seed (default 1)\n"
            "  -t, --threads N    threads (default 2)\n"
            "      --list         list the shapes\n"
            "  -h, --help         this help\n",
            synth_type_list());
}

int cmd_synth(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shape", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 't'},
        {"list", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    synth_params p = {.type = GGML_TYPE_Q4_K, .seed = 1, .n_threads = 2};
    const char *shape_name = NULL;
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "s:T:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': shape_name = optarg; break;
        case 'T':
            p.type = tools_parse_type(optarg);
            if (!synth_type_ok(p.type)) {
                cli_error(PROG, "--type: unknown type '%s' (expected %s)", optarg,
                          synth_type_list());
                return CLI_EXIT_USAGE;
            }
            break;
        case 'S':
            if (cli_parse_int(PROG, "--seed", optarg, 0, 0x7fffffffL, &v) != 0)
                return CLI_EXIT_USAGE;
            p.seed = (uint64_t)v;
            break;
        case 't':
            if (cli_parse_int(PROG, "--threads", optarg, 1, 256, &v) != 0)
                return CLI_EXIT_USAGE;
            p.n_threads = (int)v;
            break;
        case 'l': list_shapes(stdout); return CLI_EXIT_OK;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    if (shape_name == NULL || argc - optind != 1) {
        cli_error(PROG, "expected --shape NAME and OUT.gguf (see --help)");
        return CLI_EXIT_USAGE;
    }
    const synth_shape *shape = synth_find_shape(shape_name);
    if (shape == NULL) {
        cli_error(PROG, "unknown shape '%s'; the shapes are:", shape_name);
        list_shapes(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *out = argv[optind];
    cli_progress bar;
    cli_progress_init(&bar, "writing");
    p.progress = cli_progress_update;
    p.user = &bar;
    if (flow_cli_tool_done(PROG, &bar, synth_write(out, shape, &p)) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    fprintf(stderr, "%s: wrote %s (%s, %s)\n", PROG, out, shape->name, quant_info(p.type)->name);
    return CLI_EXIT_OK;
}
