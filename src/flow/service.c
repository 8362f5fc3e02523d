/*
 * service.c — the service's lifetime: gf_default_config, gf_open, gf_close
 * and the accessors. gf_open runs the steps in the order that lets each one
 * use the previous: database (key check, schema) → model (hash recorded in
 * the database) → context pool.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

gf_config gf_default_config(void)
{
    gf_config c;
    memset(&c, 0, sizeof c);
    c.create = true;
    c.n_contexts = 1;
    c.context_params = ghost_default_params();
    c.gen = ghost_default_gen_params();
    return c;
}

const char *gf_finish_reason_name(ghost_finish_reason reason)
{
    switch (reason) {
    case GHOST_FINISH_STOP: return "stop";
    case GHOST_FINISH_LENGTH: return "length";
    case GHOST_FINISH_CANCELLED: return "cancelled";
    default: return "error";
    }
}

static gf_status check_config(const gf_config *cfg)
{
    if (!cfg)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_open: config is NULL");
    if (!cfg->key || cfg->key_len == 0)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT,
                          "gf_open: a non-empty key is required (the history is always encrypted)");
    if (cfg->read_only && cfg->model_path)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT,
                          "gf_open: a read_only service takes no model (it stores nothing)");
    if (cfg->model && !cfg->model_path)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT,
                          "gf_open: config.model needs config.model_path (the file is hashed)");
    if (cfg->n_contexts < 0 || cfg->n_contexts > 1024)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_open: n_contexts %d out of [0, 1024]",
                          cfg->n_contexts);
    if (cfg->gen.n_stop && !cfg->gen.stop)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT,
                          "gf_open: gen.stop is NULL with n_stop %zu", cfg->gen.n_stop);
    for (size_t i = 0; i < cfg->gen.n_stop; i++)
        if (!cfg->gen.stop[i])
            return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_open: gen.stop[%zu] is NULL", i);
    return GF_OK;
}

/* The default stop strings outlive gf_open's caller's array: copy them. */
static gf_status copy_stops(gf_service *svc, const ghost_gen_params *gen)
{
    svc->gen.stop = NULL;
    svc->gen.n_stop = 0;
    if (gen->n_stop == 0)
        return GF_OK;
    svc->stop_copy = calloc(gen->n_stop, sizeof *svc->stop_copy);
    if (!svc->stop_copy)
        return flow_error(NULL, GF_ERR_NOMEM, "gf_open: out of memory");
    for (size_t i = 0; i < gen->n_stop; i++) {
        svc->stop_copy[i] = strdup(gen->stop[i]);
        svc->gen.n_stop++; /* counts what gf_close frees */
        if (!svc->stop_copy[i])
            return flow_error(NULL, GF_ERR_NOMEM, "gf_open: out of memory");
    }
    svc->gen.stop = (const char *const *)svc->stop_copy;
    return GF_OK;
}

gf_service *gf_open(const gf_config *cfg)
{
    if (check_config(cfg) != GF_OK)
        return NULL;
    if (sodium_init() < 0) { /* seeds are drawn from its generator */
        flow_error(NULL, GF_ERR_INTERNAL, "gf_open: libsodium failed to initialise");
        return NULL;
    }
    gf_service *svc = calloc(1, sizeof *svc);
    if (!svc) {
        flow_error(NULL, GF_ERR_NOMEM, "gf_open: out of memory");
        return NULL;
    }
    pthread_mutex_init(&svc->db_mu, NULL);
    pthread_mutex_init(&svc->pool_mu, NULL);
    pthread_cond_init(&svc->pool_cv, NULL);
    svc->gen = cfg->gen;
    gf_status rc = copy_stops(svc, &cfg->gen);

    char *default_path = NULL;
    const char *path = cfg->db_path;
    if (rc == GF_OK && !path) {
        rc = gf_default_db_path(&default_path);
        path = default_path;
    }
    if (rc == GF_OK)
        rc = flow_store_open(svc, cfg, path);
    if (rc == GF_OK && cfg->model_path)
        rc = flow_model_open(svc, cfg);
    free(default_path);
    if (rc == GF_OK && !cfg->read_only)
        flow_writer_start(svc); /* prompts of gf_process_prompt, checkpoints */
    if (rc != GF_OK) {
        /* Failures after the database opened were recorded on svc. */
        if (gf_errcode(svc) != GF_OK)
            flow_error(NULL, rc, "%s", gf_errmsg(svc));
        gf_close(svc);
        return NULL;
    }
    return svc;
}

void gf_close(gf_service *svc)
{
    if (!svc)
        return;
    flow_writer_stop(svc);
    flow_model_close(svc);
    flow_store_close(svc);
    for (size_t i = 0; svc->stop_copy && i < svc->gen.n_stop; i++)
        free(svc->stop_copy[i]);
    free(svc->stop_copy);
    pthread_cond_destroy(&svc->pool_cv);
    pthread_mutex_destroy(&svc->pool_mu);
    pthread_mutex_destroy(&svc->db_mu);
    free(svc);
}

const ghost_model *gf_service_model(const gf_service *svc)
{
    return svc ? svc->model : NULL;
}

const char *gf_service_model_hash(const gf_service *svc)
{
    return svc && svc->model_id ? svc->model_hash : NULL;
}

bool gf_service_has_fts(const gf_service *svc)
{
    return svc && svc->has_fts;
}
