/*
 * flow_cli.h — what the ghostflow commands that use the history database
 * (chat, history, search, export, rekey, run --db) share: the --db,
 * --key-file and --key options, reading the passphrase (GHOSTFLOW_KEY,
 * a key file, or a no-echo prompt asked twice for a new database), opening
 * the service, and turning its errors into one stderr line and an exit code.
 *
 * It also holds the one helper the model-tool commands (convert, quantize,
 * synth) share, as it needs the engine's error message.
 *
 * Not a cli_*.c helper: those are linked into the zqlite program too, which
 * does not link libghostflow or libghostllm.
 */
#ifndef GF_FLOW_CLI_H
#define GF_FLOW_CLI_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "ghostflow.h"

#define FLOW_CLI_KEY_ENV "GHOSTFLOW_KEY"

typedef struct flow_cli_db {
    const char *db_path;  /* --db FILE; NULL = the default path */
    const char *key_file; /* --key-file FILE */
    char *key_arg;        /* --key KEY (argv memory, wiped once copied) */
} flow_cli_db;

enum { FLOW_OPT_DB = 0x1000, FLOW_OPT_KEY_FILE, FLOW_OPT_KEY };

/* getopt_long entries for the three options. */
#define FLOW_CLI_DB_OPTIONS                                                                        \
    {"db", required_argument, NULL, FLOW_OPT_DB},                                                  \
        {"key-file", required_argument, NULL, FLOW_OPT_KEY_FILE},                                  \
    {                                                                                              \
        "key", required_argument, NULL, FLOW_OPT_KEY                                               \
    }

#define FLOW_CLI_DB_HELP                                                                           \
    "      --db FILE             history database (default:\n"                                     \
    "                            $XDG_DATA_HOME/ghostflow/history.db)\n"                           \
    "      --key-file FILE       read the passphrase from FILE's first line\n"                     \
    "      --key KEY             passphrase on the command line (visible to other\n"               \
    "                            users; prefer GHOSTFLOW_KEY or --key-file)\n"                     \
    "The passphrase comes from --key-file, else GHOSTFLOW_KEY, else a prompt.\n"

/* Takes option opt (from getopt_long) when it is one of the three; returns
 * true when it was. */
bool flow_cli_db_option(flow_cli_db *o, int opt, char *arg);

/* Opens the service with cfg (its db_path, key and key_len are filled here).
 * A missing database is created only when cfg->create (the passphrase is then
 * asked twice). NULL after printing "prog: message"; *exit_code is then 3 for
 * a wrong key, 1 otherwise. */
gf_service *flow_cli_open(const char *prog, flow_cli_db *o, gf_config *cfg, int *exit_code);

/* For the commands that use an existing history without a model (rekey,
 * history, export): refuses arguments left after the options from
 * argv[first] on (exit 2), then opens the database without creating it and
 * without a model. read_only (gf_config.read_only) for the commands that only
 * read: they work on read-only media and other users' files. */
gf_service *flow_cli_open_existing(const char *prog, int argc, char **argv, int first,
                                   flow_cli_db *o, bool read_only, int *exit_code);

/* Prints "prog: message" for a failed call on svc; returns the exit code. */
int flow_cli_fail(const char *prog, const gf_service *svc, gf_status rc);

/* The end of a model-tool command: erases the progress bar and, when rc is
 * not GHOST_OK, prints "prog: <the engine's per-thread message>". Returns
 * CLI_EXIT_OK or CLI_EXIT_FAILURE. */
struct cli_progress;
int flow_cli_tool_done(const char *prog, struct cli_progress *bar, ghost_status rc);

/* Local time of a Unix-millisecond stamp as "YYYY-MM-DD HH:MM:SS" (buf >= 20),
 * and as ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (buf >= 25). */
const char *flow_cli_local_time(int64_t unix_ms, char *buf, size_t cap);
const char *flow_cli_iso_time(int64_t unix_ms, char *buf, size_t cap);

/* An exchange as a JSON object (the format of history --json, search --json
 * and export jsonl; docs/ghostflow-service.md). NULL when out of memory;
 * free with cJSON_Delete. */
cJSON *flow_cli_exchange_json(const gf_exchange *e);
/* An exchange for people: header line, "> prompt", answer, status line. */
void flow_cli_print_exchange(FILE *out, const gf_exchange *e);
/* Prints a cJSON value on one line (compact) or indented; false when out of
 * memory (after printing the error). */
bool flow_cli_print_json(const char *prog, FILE *out, const cJSON *v, bool compact);

/* Items (exchanges or conversations) listed to stdout, as text or (json) one
 * JSON array at the end. */
typedef struct flow_cli_listing {
    const char *what; /* plural noun for "no <what> found" */
    bool json;
    cJSON *array;
    bool oom;
    size_t count; /* items seen: every callback adds one */
} flow_cli_listing;
/* 0, or -1 after printing the error. */
int flow_cli_listing_begin(const char *prog, flow_cli_listing *l);
/* A gf_exchange_fn: prints (text) or collects (json) one exchange. */
int flow_cli_listing_add(const gf_exchange *e, void *listing);
/* Prints the JSON array, frees it, reports rc; returns the exit code. */
int flow_cli_listing_end(const char *prog, const gf_service *svc, gf_status rc,
                         flow_cli_listing *l);

#endif
