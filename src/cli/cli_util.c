/*
 * cli_util.c — small helpers shared by the ghostflow and zqlite programs:
 * error printing, the help/usage exit, checked output, and strict number
 * parsing for flags.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_exit(void (*usage)(FILE *out), int opt)
{
    bool help = opt == 'h';
    usage(help ? stdout : stderr);
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* The first failed write: which stream, and errno at the time (0 = none). */
static FILE *output_failed_file;
static int output_failed_errno;

bool cli_output_failed(FILE *f)
{
    if (!ferror(f))
        return false;
    if (output_failed_file != f) {
        output_failed_file = f;
        output_failed_errno = errno;
    }
    return true;
}

int cli_output_close(const char *prog, FILE *f, const char *name, int code)
{
    errno = 0;
    fflush(f); /* a failure sets the stream's error flag */
    bool failed = cli_output_failed(f);
    int err = output_failed_file == f ? output_failed_errno : errno;
    /* Everything is flushed, so EBADF here only means the stream was closed
     * by the caller's shell (prog >&-) and nothing was ever written to it. */
    errno = 0;
    if (fclose(f) != 0 && !failed && errno != EBADF) {
        failed = true;
        err = errno;
    }
    if (!failed)
        return code;
    cli_error(prog, "writing %s: %s", name, err ? strerror(err) : "write error");
    return code != CLI_EXIT_OK ? code : CLI_EXIT_FAILURE;
}

int cli_check_model_only(const char *prog, void (*usage)(FILE *out), const char *model, int argc,
                         char **argv)
{
    if (optind < argc) {
        cli_error(prog, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!model) {
        cli_error(prog, "missing -m MODEL");
        usage(stderr);
        return -1;
    }
    return 0;
}

int cli_parse_int(const char *prog, const char *flag, const char *text, long min, long max,
                  long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE) {
        cli_error(prog, "%s: '%s' is not an integer", flag, text);
        return -1;
    }
    if (v < min || v > max) {
        cli_error(prog, "%s: %ld is out of range [%ld, %ld]", flag, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *prog, const char *flag, const char *text, double min, double max,
                    double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        cli_error(prog, "%s: '%s' is not a number", flag, text);
        return -1;
    }
    if (v < min || v > max) {
        cli_error(prog, "%s: %g is out of range [%g, %g]", flag, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}
