/*
 * version.c — version and status strings of libghostflow.
 */
#include "ghostflow.h"

const char *gf_version(void) { return GF_VERSION; }

const char *gf_strerror(int code)
{
    switch (code) {
    case GF_OK: return "no error";
    case GF_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GF_ERR_MODEL: return "model error";
    case GF_ERR_DATABASE: return "database error";
    case GF_ERR_WRONG_KEY: return "wrong key or not a ghostflow database";
    case GF_ERR_NOMEM: return "out of memory";
    case GF_ERR_CANCELLED: return "cancelled";
    case GF_ERR_NOT_FOUND: return "not found";
    case GF_ERR_BUSY: return "busy";
    case GF_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}
