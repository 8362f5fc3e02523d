/*
 * model.c — the service's one model and its pool of engine contexts.
 *
 * The model is loaded (mmapped) once and shared read-only by every context.
 * Its identity in the history is the BLAKE2b-256 of the GGUF file, hashed
 * once at open by streaming the file through crypto_generichash (and cached
 * in the database keyed by path, size, mtime and inode, so reopening a
 * multi-gigabyte model does not reread it).
 *
 * The pool hands a free context to each exchange. A context's KV cache still
 * holds the last conversation it served, and the engine reuses the longest
 * common token prefix, so an exchange prefers the context that served its
 * conversation last; otherwise it takes the least recently used one (never
 * used ones first), which keeps other conversations' caches alive longest.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow_internal.h"

#define HASH_CHUNK (1 << 20)

gf_status flow_hash_file(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return flow_error(NULL, GF_ERR_MODEL, "%s: %s", path, strerror(errno));
    unsigned char *buf = malloc(HASH_CHUNK);
    if (!buf) {
        close(fd);
        return flow_error(NULL, GF_ERR_NOMEM, "%s: out of memory for hashing", path);
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    gf_status rc = GF_OK;
    for (;;) {
        ssize_t n = read(fd, buf, HASH_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = flow_error(NULL, GF_ERR_MODEL, "%s: read failed while hashing: %s", path,
                            strerror(errno));
            break;
        }
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (unsigned long long)n);
    }
    unsigned char digest[32];
    crypto_generichash_final(&st, digest, sizeof digest);
    if (rc == GF_OK)
        sodium_bin2hex(hex, 65, digest, sizeof digest);
    free(buf);
    close(fd);
    return rc;
}

gf_status flow_model_open(gf_service *svc, const gf_config *cfg)
{
    if (cfg->model) {
        svc->model = cfg->model;
    } else {
        svc->owned_model = ghost_model_load(cfg->model_path);
        if (!svc->owned_model)
            return flow_error(svc, GF_ERR_MODEL, "%s", ghost_errmsg(NULL));
        svc->model = svc->owned_model;
    }
    ghost_model_info info;
    ghost_status gs = ghost_model_get_info(svc->model, &info);
    if (gs != GHOST_OK)
        return flow_error(svc, GF_ERR_MODEL, "%s: %s", cfg->model_path, ghost_errmsg(NULL));
    svc->model_name = strdup(info.name ? info.name : cfg->model_path);
    if (!svc->model_name)
        return flow_error(svc, GF_ERR_NOMEM, "model name: out of memory");
    svc->has_template = info.chat_template != NULL;
    /* ghostllm.h: n_ctx 0 means min(training context, 4096). */
    svc->n_ctx = cfg->context_params.n_ctx > 0                     ? cfg->context_params.n_ctx
                 : info.n_ctx_train > 0 && info.n_ctx_train < 4096 ? info.n_ctx_train
                                                                   : 4096;

    gf_status rc = flow_store_model(svc, cfg->model_path);
    if (rc != GF_OK)
        return rc;

    if (cfg->n_contexts < 0)
        return flow_error(svc, GF_ERR_INVALID_ARGUMENT, "n_contexts: %d is negative",
                          cfg->n_contexts);
    if (cfg->n_contexts == 0)
        return GF_OK;
    svc->slots = calloc((size_t)cfg->n_contexts, sizeof *svc->slots);
    if (!svc->slots)
        return flow_error(svc, GF_ERR_NOMEM, "context pool: out of memory");
    for (int32_t i = 0; i < cfg->n_contexts; i++) {
        svc->slots[i].ctx = ghost_context_new(svc->model, &cfg->context_params);
        if (!svc->slots[i].ctx)
            return flow_error(svc, GF_ERR_MODEL, "context %d of %d: %s", i + 1, cfg->n_contexts,
                              ghost_errmsg(NULL));
        svc->n_slots = i + 1;
    }
    return GF_OK;
}

void flow_model_close(gf_service *svc)
{
    for (int32_t i = 0; i < svc->n_slots; i++)
        ghost_free_context(svc->slots[i].ctx);
    free(svc->slots);
    svc->slots = NULL;
    svc->n_slots = 0;
    ghost_model_free(svc->owned_model);
    svc->owned_model = NULL;
    svc->model = NULL;
    free(svc->model_name);
    svc->model_name = NULL;
}

int32_t flow_pool_acquire(gf_service *svc, int64_t conversation_id)
{
    pthread_mutex_lock(&svc->pool_mu);
    int32_t pick;
    for (;;) {
        pick = -1;
        for (int32_t i = 0; i < svc->n_slots; i++) {
            const flow_slot *s = &svc->slots[i];
            if (s->busy)
                continue;
            if (s->conversation_id == conversation_id) {
                pick = i;
                break;
            }
            if (pick < 0 || s->last_used < svc->slots[pick].last_used)
                pick = i;
        }
        if (pick >= 0)
            break;
        pthread_cond_wait(&svc->pool_cv, &svc->pool_mu);
    }
    flow_slot *s = &svc->slots[pick];
    s->busy = true;
    s->conversation_id = conversation_id;
    s->last_used = ++svc->tick;
    pthread_mutex_unlock(&svc->pool_mu);
    return pick;
}

void flow_pool_release(gf_service *svc, int32_t slot, int64_t conversation_id)
{
    pthread_mutex_lock(&svc->pool_mu);
    svc->slots[slot].busy = false;
    svc->slots[slot].conversation_id = conversation_id;
    pthread_cond_signal(&svc->pool_cv);
    pthread_mutex_unlock(&svc->pool_mu);
}

void gf_cancel_all(gf_service *svc)
{
    /* No lock: the slot table's contexts are fixed between gf_open and
     * gf_close, and ghost_context_cancel is async-signal-safe. Cancelling an
     * idle context is harmless (the flag clears when a generation starts). */
    if (!svc)
        return;
    for (int32_t i = 0; i < svc->n_slots; i++)
        ghost_context_cancel(svc->slots[i].ctx);
}
