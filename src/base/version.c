/*
 * version.c — dc_version (deepc.h): the release string the Makefile passes
 * as DC_VERSION, and what the library was built for (compiler, kernels).
 */
#include "deepc.h"

#ifndef DC_VERSION
#define DC_VERSION "unknown"
#endif

const char *dc_version(void) { return DC_VERSION; }

const char *dc_build_info(void) {
#if defined(__clang__)
#define DC_CC "clang " __clang_version__
#elif defined(__GNUC__)
#define DC_CC "gcc " __VERSION__
#else
#define DC_CC "unknown compiler"
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DC_SAN ", AddressSanitizer"
#else
#define DC_SAN ""
#endif
    return "built with " DC_CC DC_SAN;
}
