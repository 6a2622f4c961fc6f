/* err.c — see err.h. */
#include "base/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dc_strerror(int code) {
    switch (code) {
    case DC_OK: return "ok";
    case DC_EIO: return "io error";
    case DC_EFORMAT: return "bad format";
    case DC_ECONFIG: return "bad config";
    case DC_ENOMEM: return "out of memory";
    case DC_EARG: return "bad argument";
    case DC_ENOTFOUND: return "not found";
    case DC_ESHAPE: return "shape mismatch";
    case DC_EDTYPE: return "bad dtype";
    case DC_EFULL: return "no room";
    default: return "unknown error";
    }
}

int err_set(dc_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int err_prefix(dc_err *err, const char *fmt, ...) {
    if (!err) return DC_EARG;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
        size_t left = sizeof err->msg - (size_t)n - 2;
        memcpy(err->msg + n, ": ", 2);
        size_t ol = strnlen(old, sizeof old - 1);
        if (ol > left - 1) ol = left - 1;
        memcpy(err->msg + n + 2, old, ol);
        err->msg[n + 2 + ol] = 0;
    }
    return err->code;
}
