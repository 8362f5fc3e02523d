/*
 * flow_test.h — helpers shared by the libghostflow tests (on top of
 * tests/test_util.h): a service configuration that is cheap to open (the
 * smallest Argon2id cost, stories260K, greedy short answers) and a collector
 * of listed exchanges. The model must exist: a missing
 * ../shared fails the test loudly instead of skipping it.
 */
#ifndef FLOW_TEST_H
#define FLOW_TEST_H

#include "test_util.h"

#include "ghostflow.h"

#define FT_MODEL "../shared/models/stories260K.gguf"
#define FT_KEY   "correct horse battery staple"

static inline void ft_require_model(void)
{
    struct stat st;
    if (stat(FT_MODEL, &st) != 0)
        fail_msg("%s is missing: run the tests from the repository root with ../shared present",
                 FT_MODEL);
}

/* A configuration for db_path with the test key, the model and cheap KDF. */
static inline gf_config ft_config(const char *db_path, bool with_model)
{
    gf_config c = gf_default_config();
    c.db_path = db_path;
    c.key = FT_KEY;
    c.key_len = strlen(FT_KEY);
    c.kdf_opslimit = 1;
    c.kdf_memlimit = 8192;
    if (with_model) {
        ft_require_model();
        c.model_path = FT_MODEL;
        c.context_params.n_threads = 1;
        c.context_params.n_ctx = 512;
        c.gen.temperature = 0.0f;
        c.gen.max_tokens = 12;
    }
    return c;
}

static inline gf_service *ft_open(const char *db_path, bool with_model)
{
    gf_config c = ft_config(db_path, with_model);
    gf_service *svc = gf_open(&c);
    if (!svc)
        fail_msg("gf_open(%s): %s", db_path ? db_path : "default path", gf_errmsg(NULL));
    return svc;
}

/* Collects listed exchanges (copies of the strings) for assertions. */
typedef struct ft_row {
    int64_t prompt_id, conversation_id, response_id;
    bool answered;
    char prompt[512], response[2048];
    ghost_finish_reason finish;
    int32_t completion_tokens;
    uint64_t seed;
    float temperature;
    char model_hash[65];
} ft_row;

typedef struct ft_rows {
    ft_row row[256];
    size_t n;
} ft_rows;

static inline int ft_collect(const gf_exchange *e, void *ud)
{
    ft_rows *rs = ud;
    if (rs->n == sizeof rs->row / sizeof rs->row[0])
        return 1;
    ft_row *r = &rs->row[rs->n++];
    memset(r, 0, sizeof *r);
    r->prompt_id = e->prompt_id;
    r->conversation_id = e->conversation_id;
    r->response_id = e->response_id;
    r->answered = e->answered;
    snprintf(r->prompt, sizeof r->prompt, "%s", e->prompt);
    snprintf(r->response, sizeof r->response, "%s", e->answered ? e->response : "");
    r->finish = e->finish_reason;
    r->completion_tokens = e->completion_tokens;
    r->seed = e->params.seed;
    r->temperature = e->params.temperature;
    snprintf(r->model_hash, sizeof r->model_hash, "%s", e->model_hash);
    return 0;
}

#endif
