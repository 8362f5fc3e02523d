/*
 * flow_cli.c — options, passphrase and service opening shared by the
 * ghostflow commands that use the history database, and the model-tool
 * commands' shared ending (see flow_cli.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_key.h"
#include "flow_cli.h"

bool flow_cli_db_option(flow_cli_db *o, int opt, char *arg)
{
    switch (opt) {
    case FLOW_OPT_DB: o->db_path = arg; return true;
    case FLOW_OPT_KEY_FILE: o->key_file = arg; return true;
    case FLOW_OPT_KEY: o->key_arg = arg; return true;
    default: return false;
    }
}

int flow_cli_fail(const char *prog, const gf_service *svc, gf_status rc)
{
    const char *msg = gf_errmsg(svc);
    cli_error(prog, "%s", msg[0] ? msg : gf_strerror(rc));
    return rc == GF_ERR_WRONG_KEY ? CLI_EXIT_WRONG_KEY : CLI_EXIT_FAILURE;
}

int flow_cli_tool_done(const char *prog, cli_progress *bar, ghost_status rc)
{
    cli_progress_done(bar);
    if (rc == GHOST_OK)
        return CLI_EXIT_OK;
    cli_error(prog, "%s", ghost_errmsg(NULL));
    return CLI_EXIT_FAILURE;
}

/* The passphrase into sodium memory: --key (with a warning), else what
 * cli_key_read finds. An explicit --key-file outranks the environment. */
static int read_key(const char *prog, flow_cli_db *o, bool is_new, char **key, size_t *key_len)
{
    if (o->key_arg) {
        fprintf(stderr,
                "%s: warning: a passphrase given with --key is visible to other users (ps) and"
                " in shell history; prefer %s or --key-file\n",
                prog, FLOW_CLI_KEY_ENV);
        size_t n = strlen(o->key_arg);
        if (n == 0) {
            cli_error(prog, "--key: the passphrase is empty");
            return -1;
        }
        *key = sodium_init() >= 0 ? sodium_malloc(n + 1) : NULL;
        if (!*key) {
            cli_error(prog, "out of memory for the passphrase");
            return -1;
        }
        memcpy(*key, o->key_arg, n + 1);
        *key_len = n;
        /* Shorten the window in which /proc/PID/cmdline shows it. */
        sodium_memzero(o->key_arg, n);
        return 0;
    }
    const char *prompt = is_new ? "New history passphrase: " : "History passphrase: ";
    return cli_key_read(prog, o->key_file ? NULL : FLOW_CLI_KEY_ENV, o->key_file, prompt, is_new,
                        key, key_len);
}

gf_service *flow_cli_open(const char *prog, flow_cli_db *o, gf_config *cfg, int *exit_code)
{
    *exit_code = CLI_EXIT_FAILURE;
    char *default_path = NULL;
    const char *path = o->db_path;
    if (!path) {
        if (gf_default_db_path(&default_path) != GF_OK) {
            flow_cli_fail(prog, NULL, gf_errcode(NULL));
            return NULL;
        }
        path = default_path;
    }
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists && !cfg->create) {
        cli_error(prog, "%s: no history database yet (it is created by 'ghostflow chat')", path);
        free(default_path);
        return NULL;
    }
    char *key = NULL;
    size_t key_len = 0;
    if (read_key(prog, o, !exists, &key, &key_len) != 0) {
        free(default_path);
        return NULL;
    }
    cfg->db_path = path;
    cfg->key = key;
    cfg->key_len = key_len;
    gf_service *svc = gf_open(cfg);
    cli_key_free(key, key_len);
    cfg->key = NULL;
    cfg->key_len = 0;
    cfg->db_path = NULL;
    if (!svc)
        *exit_code = flow_cli_fail(prog, NULL, gf_errcode(NULL));
    free(default_path);
    return svc;
}

gf_service *flow_cli_open_existing(const char *prog, int argc, char **argv, int first,
                                   flow_cli_db *o, bool read_only, int *exit_code)
{
    if (first < argc) {
        cli_error(prog, "unexpected argument '%s'", argv[first]);
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    gf_config cfg = gf_default_config();
    cfg.create = false;
    cfg.read_only = read_only;
    return flow_cli_open(prog, o, &cfg, exit_code);
}

const char *flow_cli_local_time(int64_t unix_ms, char *buf, size_t cap)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "?");
    return buf;
}

const char *flow_cli_iso_time(int64_t unix_ms, char *buf, size_t cap)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char base[32];
    if (!gmtime_r(&t, &tm) || !strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(buf, cap, "?");
    else
        snprintf(buf, cap, "%s.%03dZ", base, (int)(unix_ms % 1000));
    return buf;
}

/* ---- exchanges for output -------------------------------------------------- */

/* Sampling parameters are floats: print the value the user typed (0.7), not
 * its double widening (0.699999988079071). */
static double float_for_json(float f)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

cJSON *flow_cli_exchange_json(const gf_exchange *e)
{
    char when[40];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = cJSON_AddNumberToObject(o, "id", (double)e->prompt_id) &&
              cJSON_AddNumberToObject(o, "conversation_id", (double)e->conversation_id) &&
              cJSON_AddStringToObject(o, "created_at",
                                      flow_cli_iso_time(e->created_at_ms, when, sizeof when)) &&
              cJSON_AddStringToObject(o, "model", e->model_name) &&
              cJSON_AddStringToObject(o, "model_hash", e->model_hash) &&
              cJSON_AddStringToObject(o, "prompt", e->prompt);
    cJSON *p = ok ? cJSON_AddObjectToObject(o, "params") : NULL;
    char seed[24] = "";
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)e->params.seed);
    bool seed_known = e->params.seed != GHOST_SEED_RANDOM;
    ok = p && cJSON_AddNumberToObject(p, "max_tokens", e->params.max_tokens) &&
         cJSON_AddNumberToObject(p, "temperature", float_for_json(e->params.temperature)) &&
         cJSON_AddNumberToObject(p, "top_k", e->params.top_k) &&
         cJSON_AddNumberToObject(p, "top_p", float_for_json(e->params.top_p)) &&
         cJSON_AddNumberToObject(p, "min_p", float_for_json(e->params.min_p)) &&
         cJSON_AddNumberToObject(p, "repeat_penalty", float_for_json(e->params.repeat_penalty)) &&
         cJSON_AddNumberToObject(p, "repeat_last_n", e->params.repeat_last_n) &&
         /* a string: 64-bit seeds do not survive a JSON double */
         (seed_known ? cJSON_AddStringToObject(p, "seed", seed) != NULL
                     : cJSON_AddNullToObject(p, "seed") != NULL);
    if (ok && !e->answered) {
        ok =
            cJSON_AddStringToObject(o, "status", "pending") && cJSON_AddNullToObject(o, "response");
    } else if (ok) {
        cJSON *r = cJSON_AddObjectToObject(o, "response");
        ok = cJSON_AddStringToObject(o, "status", "answered") && r &&
             cJSON_AddNumberToObject(r, "id", (double)e->response_id) &&
             cJSON_AddStringToObject(r, "created_at",
                                     flow_cli_iso_time(e->answered_at_ms, when, sizeof when)) &&
             cJSON_AddStringToObject(r, "text", e->response) &&
             cJSON_AddStringToObject(r, "finish_reason", gf_finish_reason_name(e->finish_reason)) &&
             (e->error ? cJSON_AddStringToObject(r, "error", e->error) != NULL
                       : cJSON_AddNullToObject(r, "error") != NULL) &&
             cJSON_AddNumberToObject(r, "prompt_tokens", e->prompt_tokens) &&
             cJSON_AddNumberToObject(r, "completion_tokens", e->completion_tokens) &&
             cJSON_AddNumberToObject(r, "cached_tokens", e->cached_tokens) &&
             cJSON_AddNumberToObject(r, "prompt_ms", e->prompt_ms) &&
             cJSON_AddNumberToObject(r, "generation_ms", e->generation_ms);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void flow_cli_print_exchange(FILE *out, const gf_exchange *e)
{
    char when[40];
    fprintf(out, "#%lld  conversation %lld  %s  %s\n", (long long)e->prompt_id,
            (long long)e->conversation_id, flow_cli_local_time(e->created_at_ms, when, sizeof when),
            e->model_name[0] ? e->model_name : "(no model)");
    fprintf(out, "> %s\n", e->prompt);
    if (!e->answered) {
        fprintf(out, "  (no answer: still generating, or the program stopped during it)\n\n");
        return;
    }
    fprintf(out, "%s\n", e->response);
    fprintf(out, "  (%s, %d prompt + %d answer tokens, %.0f ms%s%s)\n\n",
            gf_finish_reason_name(e->finish_reason), e->prompt_tokens, e->completion_tokens,
            e->prompt_ms + e->generation_ms, e->error ? ": " : "", e->error ? e->error : "");
}

bool flow_cli_print_json(const char *prog, FILE *out, const cJSON *v, bool compact)
{
    char *s = compact ? cJSON_PrintUnformatted(v) : cJSON_Print(v);
    if (!s) {
        cli_error(prog, "out of memory formatting JSON");
        return false;
    }
    fputs(s, out);
    fputc('\n', out);
    cJSON_free(s);
    return true;
}

/* ---- listings -------------------------------------------------------------- */

int flow_cli_listing_begin(const char *prog, flow_cli_listing *l)
{
    if (l->json && !(l->array = cJSON_CreateArray())) {
        cli_error(prog, "out of memory");
        return -1;
    }
    return 0;
}

int flow_cli_listing_add(const gf_exchange *e, void *listing)
{
    flow_cli_listing *l = listing;
    l->count++;
    if (!l->json) {
        flow_cli_print_exchange(stdout, e);
        return cli_output_failed(stdout); /* the program's end says why */
    }
    cJSON *o = flow_cli_exchange_json(e);
    if (!o || !cJSON_AddItemToArray(l->array, o)) {
        cJSON_Delete(o);
        l->oom = true;
        return 1;
    }
    return 0;
}

int flow_cli_listing_end(const char *prog, const gf_service *svc, gf_status rc, flow_cli_listing *l)
{
    int code = CLI_EXIT_OK;
    if (rc != GF_OK)
        code = flow_cli_fail(prog, svc, rc);
    else if (l->oom)
        code = (cli_error(prog, "out of memory"), CLI_EXIT_FAILURE);
    else if (l->json && !flow_cli_print_json(prog, stdout, l->array, false))
        code = CLI_EXIT_FAILURE;
    else if (!l->json && l->count == 0)
        fprintf(stderr, "%s: no %s found\n", prog, l->what); /* stdout stays empty for scripts */
    cJSON_Delete(l->array);
    l->array = NULL;
    return code;
}
