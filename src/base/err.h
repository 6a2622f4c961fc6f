/*
 * err.h — filling a caller-owned dc_err at the failure site.
 *
 * err_set formats the message (callers start it with their function or file
 * name), stores the code, and returns the code so a failure is one line:
 *     return err_set(err, DC_EFORMAT, "%s: tensor %s: ...", path, name);
 * err may be NULL.
 */
#ifndef DC_ERR_H
#define DC_ERR_H
#include "deepc.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int err_set(dc_err *err, int code, const char *fmt, ...);

/* err_prefix: prepend "what: " to an existing message (for context added by
 * a caller higher up). Returns err->code (or DC_EARG when err is NULL). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int err_prefix(dc_err *err, const char *fmt, ...);
#endif
