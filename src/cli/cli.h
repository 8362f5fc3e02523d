/*
 * cli.h — the map of the command-line programs.
 *
 * ghostflow_main.c dispatches "ghostflow <command> ..." to one cmd_<name>()
 * per subcommand (each in cmd_<name>.c, parsing its own flags with
 * getopt_long). Exit codes are shared by every command: 0 success, 1 runtime
 * failure, 2 usage error (unknown command or flag, bad value), 3 wrong key.
 */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_WRONG_KEY = 3 };

/* A subcommand: argv[0] is the command name; returns an exit code. */
typedef int (*cli_command_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    cli_command_fn run;
    const char *summary;
} cli_command;

/* Prints "ghostflow <cmd>: <message>" to stderr (printf-style). */
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How every command's option switch ends: for opt 'h' (--help) prints the
 * usage to stdout and returns CLI_EXIT_OK; for anything else (getopt's '?'
 * after an unknown flag or a missing value) prints it to stderr and returns
 * CLI_EXIT_USAGE. */
int cli_usage_exit(void (*usage)(FILE *out), int opt);
/* The end of option parsing for a command that takes -m MODEL and no
 * operands (after getopt_long's loop, so optind is set): 0, or -1 after
 * saying what is wrong (an operand left over, or no model). */
int cli_check_model_only(const char *prog, void (*usage)(FILE *out), const char *model, int argc,
                         char **argv);

/* Checked output. A program's output is what it is for: a write that fails
 * (a full disk, /dev/full, an I/O error) must end in exit 1 and
 * "prog: writing output: reason", never in a silent exit 0. stdio keeps the
 * first failure in the stream's error flag; these keep its errno with it.
 *
 * cli_output_failed: whether a write to f has failed. Call it right after
 * writing (before anything else can change errno): the first time it sees
 * the failure it records errno, for cli_output_close. One output stream per
 * program is tracked (stdout, or export's -o file). */
bool cli_output_failed(FILE *f);
/* The end of output to f: flushes and closes it (stdout too: some file
 * systems report a failed write only at close). When any write to f failed
 * it prints "prog: writing NAME: reason" and returns code when code is
 * already a failure, else CLI_EXIT_FAILURE; otherwise returns code. */
int cli_output_close(const char *prog, FILE *f, const char *name, int code);

/* Parses a whole decimal/float argument or fails with a usage message naming
 * the flag: returns 0 on success, -1 after printing the error. */
int cli_parse_int(const char *prog, const char *flag, const char *text, long min, long max,
                  long *out);
int cli_parse_float(const char *prog, const char *flag, const char *text, double min, double max,
                    double *out);

/* A progress bar on stderr, drawn only when stderr is a terminal
 * (cli_progress.c). cli_progress_update matches the engine's progress
 * callbacks: pass it with the cli_progress as user data. */
typedef struct cli_progress {
    const char *label;
    bool enabled, drawn;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label);
void cli_progress_update(void *user, uint64_t done, uint64_t total, const char *item);
/* Erases the bar, leaving the line free for a summary. */
void cli_progress_done(cli_progress *p);

/* Subcommands (one file each). */
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_rekey(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
