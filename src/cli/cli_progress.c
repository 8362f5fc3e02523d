/*
 * cli_progress.c — the progress bar of the long-running tools (convert,
 * quantize, synth): one line on stderr, redrawn in place, and only when
 * stderr is a terminal so logs and tests see nothing but the final summary.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BAR_WIDTH 30

void cli_progress_init(cli_progress *p, const char *label)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->enabled = isatty(STDERR_FILENO) == 1;
}

void cli_progress_update(void *user, uint64_t done, uint64_t total, const char *item)
{
    cli_progress *p = user;
    if (!p->enabled || total == 0)
        return;
    int filled = (int)((double)done / (double)total * BAR_WIDTH + 0.5);
    if (filled > BAR_WIDTH)
        filled = BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
    bar[BAR_WIDTH] = '\0';
    /* \033[K clears what a longer previous tensor name left behind */
    fprintf(stderr, "\r%s [%s] %5.1f%% %.40s\033[K", p->label, bar,
            100.0 * (double)done / (double)total, item ? item : "");
    fflush(stderr);
    p->drawn = true;
}

void cli_progress_done(cli_progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}
