/*
 * cmd_convert.c — `ghostflow convert`: a Hugging Face model directory
 * (safetensors + config.json + tokenizer.json) to one GGUF file, for llama
 * and qwen2 models. The work is convert_hf() in libghostllm (src/llm/convert.c).
 *
 *   ghostflow convert [--outtype f32|f16|bf16|q8_0] [--name NAME] HF_DIR OUT.gguf
 *
 * Exit codes: 0 written, 1 conversion failed, 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "flow_cli.h"
#include "llm/tools.h"

#define PROG "ghostflow convert"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ghostflow convert [options] HF_DIR OUT.gguf\n"
            "\n"
            "Converts a Hugging Face model directory (model.safetensors or its shards,\n"
            "config.json, tokenizer.json, tokenizer_config.json) of a llama or qwen2\n"
            "model to GGUF, as llama.cpp's convert_hf_to_gguf.py does.\n"
            "\n"
            "options:\n"
            "      --outtype TYPE   type of the 2-D weights: %s (default f16);\n"
            "                       norms and other 1-D tensors stay f32\n"
            "      --name NAME      general.name (default: the directory's name)\n"
            "  -h, --help           this help\n",
            convert_type_list());
}

int cmd_convert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"outtype", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    convert_params p = convert_default_params();
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            p.out_type = tools_parse_type(optarg);
            if (p.out_type != GGML_TYPE_F32 && p.out_type != GGML_TYPE_F16 &&
                p.out_type != GGML_TYPE_BF16 && p.out_type != GGML_TYPE_Q8_0) {
                cli_error(PROG, "--outtype: unknown type '%s' (expected %s)", optarg,
                          convert_type_list());
                return CLI_EXIT_USAGE;
            }
            break;
        case 'N': p.name = optarg; break;
        case 'h':
        default: return cli_usage_exit(usage, c);
        }
    }
    if (argc - optind != 2) {
        cli_error(PROG, "expected HF_DIR and OUT.gguf (see --help)");
        return CLI_EXIT_USAGE;
    }
    const char *dir = argv[optind], *out = argv[optind + 1];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(PROG, "%s: not a directory", dir);
        return CLI_EXIT_FAILURE;
    }
    cli_progress bar;
    cli_progress_init(&bar, "converting");
    p.progress = cli_progress_update;
    p.user = &bar;
    if (flow_cli_tool_done(PROG, &bar, convert_hf(dir, out, &p)) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    fprintf(stderr, "%s: wrote %s\n", PROG, out);
    return CLI_EXIT_OK;
}
