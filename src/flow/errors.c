/*
 * errors.c — status strings, version and error messages of libghostflow, and
 * the few small helpers every module needs (clocks, UTF-8 validation).
 *
 * A service is shared between threads, so a message kept on the handle would
 * be overwritten by another thread's failure before the first could read it.
 * Messages are therefore kept per thread, tagged with the service they belong
 * to: gf_errmsg(svc) is the calling thread's last failure on svc, and
 * gf_errmsg(NULL) the thread's last failed gf_open.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flow_internal.h"

typedef struct flow_tls_error {
    const gf_service *svc;
    gf_status code;
    char msg[512];
} flow_tls_error;

static _Thread_local flow_tls_error tls_error;
static _Thread_local const gf_service *tls_callback_svc;

const char *gf_version(void)
{
    return GF_VERSION;
}

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
    case GF_ERR_BUSY: return "database busy";
    case GF_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

gf_status flow_error(const gf_service *svc, gf_status code, const char *fmt, ...)
{
    /* Format into a local copy first: the arguments may point into the
     * thread's message buffer (re-tagging a message for another handle). */
    char msg[sizeof tls_error.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tls_error.svc = svc;
    tls_error.code = code;
    memcpy(tls_error.msg, msg, sizeof msg);
    return code;
}

const char *gf_errmsg(const gf_service *svc)
{
    return tls_error.svc == svc ? tls_error.msg : "";
}

gf_status gf_errcode(const gf_service *svc)
{
    return tls_error.svc == svc ? tls_error.code : GF_OK;
}

bool flow_in_callback(const gf_service *svc)
{
    return svc && tls_callback_svc == svc;
}
void flow_set_in_callback(const gf_service *svc)
{
    tls_callback_svc = svc;
}

double flow_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t flow_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long flow_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return (long)i;
        }
        if (i + n >= len) /* truncated sequence */
            return (long)i;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return (long)i;
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and values past U+10FFFF */
        if (c < min || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
            return (long)i;
        i += n + 1;
    }
    return -1;
}
