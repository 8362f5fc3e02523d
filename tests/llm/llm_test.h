/*
 * llm_test.h — helpers shared by the engine's model tests: loading the
 * shared test models (failing loudly when ../shared is missing) and greedy
 * context parameters.
 */
#ifndef GHOST_LLM_TEST_H
#define GHOST_LLM_TEST_H

#include <stdio.h>
#include <unistd.h>

#include "ghostllm.h"

static ghost_model *load_shared_model(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "../shared/models/%s", file);
    if (access(path, R_OK) != 0)
        snprintf(path, sizeof path, "../shared/models/quant/%s", file);
    ghost_model *m = ghost_model_load(path);
    if (m == NULL)
        fail_msg("%s: %s", path, ghost_errmsg(NULL));
    return m;
}

static ghost_params greedy_params(int32_t n_ctx, int32_t max_tokens)
{
    ghost_params p = ghost_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.gen.temperature = 0.0f;
    p.gen.max_tokens = max_tokens;
    return p;
}

#endif
