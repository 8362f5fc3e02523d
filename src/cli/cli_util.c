/*
 * cli_util.c — small helpers shared by the ghostflow and zqlite programs:
 * error printing, the help/usage exit, and strict number parsing for flags.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

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
