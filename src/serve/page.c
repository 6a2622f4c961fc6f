/*
 * page.c — the web chat of GET / (src/serve/chat.html), compiled into the
 * binary so the server needs no files and no network (no CDN) at run time.
 *
 * The page is pulled in by the assembler's .incbin, which gcc and clang both
 * pass through; the path is relative to the repository root, where make
 * runs (the Makefile names chat.html as a prerequisite of this object).
 */
#include "serve/sv.h"

__asm__(".section .rodata\n"
        ".global sv_page_data\n"
        ".hidden sv_page_data\n"
        "sv_page_data:\n"
        ".incbin \"src/serve/chat.html\"\n"
        ".global sv_page_end\n"
        ".hidden sv_page_end\n"
        "sv_page_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char sv_page_data[], sv_page_end[];

const char *sv_page(size_t *len) {
    *len = (size_t)(sv_page_end - sv_page_data);
    return sv_page_data;
}
