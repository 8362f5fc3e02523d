/*
 * ghostflow_main.c — entry point of the ghostflow program: global flags
 * (--help, --version) and dispatch to a subcommand from the table below.
 * Each subcommand lives in cmd_<name>.c and parses its own flags. Whatever
 * runs, stdout is checked at the end: output that did not reach its file is
 * a failure (exit 1), never a silent success.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ghostflow.h"

static const cli_command commands[] = {
    /* name, function, one-line summary — keep alphabetical */
    {"bench", cmd_bench, "measure prompt and generation speed (llama-bench style)"},
    {"chat", cmd_chat, "interactive chat, every exchange stored encrypted"},
    {"convert", cmd_convert, "convert a Hugging Face model directory to GGUF"},
    {"export", cmd_export, "write the history as JSON Lines or Markdown"},
    {"history", cmd_history, "show stored prompts and answers"},
    {"info", cmd_info, "print a GGUF model's metadata and tensor table"},
    {"quantize", cmd_quantize, "rewrite a GGUF model's weights in another type"},
    {"rekey", cmd_rekey, "re-encrypt the history under a new passphrase"},
    {"run", cmd_run, "generate text from a prompt with a GGUF model"},
    {"search", cmd_search, "full-text search of the history"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server, every exchange stored encrypted"},
    {"synth", cmd_synth, "write a random-weight GGUF model of a realistic shape"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ghostflow [--help] [--version] <command> [args]\n"
                 "\n"
                 "A local, private LLM: GGUF inference with every exchange stored in an\n"
                 "encrypted database.\n"
                 "\n"
                 "commands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'ghostflow <command> --help' for a command's options.\n");
}

/* Runs the command line; *prog is set to the name errors are printed under. */
static int run_command(int argc, char **argv, char *prog, size_t prog_cap)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* '+' stops at the first non-option: the subcommand owns what follows. */
    int c;
    while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case 'V':
            printf("ghostflow %s (ghostllm %s, zqlite %s)\n", gf_version(), ghost_version(),
                   zqlite_version());
            return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int first = optind;
    const char *name = argv[first];
    for (const cli_command *cmd = commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, name) == 0) {
            optind = 0; /* GNU getopt: 0 re-initialises the scanner for the subcommand */
            snprintf(prog, prog_cap, "ghostflow %s", cmd->name);
            return cmd->run(argc - first, argv + first);
        }
    }
    cli_error("ghostflow", "unknown command '%s' (see 'ghostflow --help')", name);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    char prog[64] = "ghostflow";
    int code = run_command(argc, argv, prog, sizeof prog);
    return cli_output_close(prog, stdout, "output", code);
}
