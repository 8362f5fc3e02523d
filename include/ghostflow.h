/*
 * ghostflow.h — public API of libghostflow, the service that joins the
 * inference engine (ghostllm.h) and the encrypted store (zqlite.h): every
 * prompt and every answer is stored atomically in an encrypted database.
 *
 * Errors follow docs/conventions.md: a gf_status code plus a message kept on
 * the service (gf_errmsg(svc)), or per thread for a failed gf_open
 * (gf_errmsg(NULL)). The library never prints and never exits.
 */
#ifndef GHOSTFLOW_H
#define GHOSTFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "zqlite.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GF_BUILDING_LIBRARY)
#define GF_API __attribute__((visibility("default")))
#else
#define GF_API
#endif

#define GF_VERSION "0.1.0"

typedef enum gf_status {
    GF_OK = 0,
    GF_ERR_INVALID_ARGUMENT = 1,
    GF_ERR_MODEL = 2,        /* the engine failed: see the message */
    GF_ERR_DATABASE = 3,     /* the store failed: see the message */
    GF_ERR_WRONG_KEY = 4,    /* "wrong key or not a ghostflow database" */
    GF_ERR_NOMEM = 5,
    GF_ERR_CANCELLED = 6,
    GF_ERR_NOT_FOUND = 7,
    GF_ERR_BUSY = 8,
    GF_ERR_INTERNAL = 9
} gf_status;

GF_API const char *gf_strerror(int code);
GF_API const char *gf_version(void);

#ifdef __cplusplus
}
#endif
#endif /* GHOSTFLOW_H */
