/*
 * errors.c — status strings and the per-thread error message of libghostllm.
 *
 * Calls that have a context keep their message on it; calls without one
 * (loading a model, tokenizing with a bare model) keep it in a thread-local
 * buffer so concurrent threads never see each other's errors.
 */
#include <stdarg.h>
#include <stdio.h>

#include "llm_internal.h"

static _Thread_local char tls_msg[GHOST_ERRMSG_MAX];
static _Thread_local ghost_status tls_code;

const char *ghost_version(void)
{
    return GHOST_VERSION;
}

const char *ghost_strerror(ghost_status code)
{
    switch (code) {
    case GHOST_OK: return "no error";
    case GHOST_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GHOST_ERR_IO: return "I/O error";
    case GHOST_ERR_FORMAT: return "malformed model file";
    case GHOST_ERR_UNSUPPORTED: return "unsupported model feature";
    case GHOST_ERR_NOMEM: return "out of memory";
    case GHOST_ERR_CONTEXT_FULL: return "context window is full";
    case GHOST_ERR_CANCELLED: return "cancelled";
    case GHOST_ERR_BAD_INPUT: return "invalid input";
    case GHOST_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case GHOST_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

ghost_status ghost_set_error(ghost_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    tls_code = code;
    return code;
}

ghost_status ghost_set_errorv(char *buf, size_t cap, ghost_status code, const char *fmt, va_list ap)
{
    vsnprintf(buf, cap, fmt, ap);
    return code;
}

void ghost_clear_error(void)
{
    tls_msg[0] = '\0';
    tls_code = GHOST_OK;
}

const char *ghost_thread_errmsg(void)
{
    return tls_msg;
}
ghost_status ghost_thread_errcode(void)
{
    return tls_code;
}
