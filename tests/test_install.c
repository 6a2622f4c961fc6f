/*
 * test_install.c — `make install` / `make uninstall` (issue 14) into a
 * scratch PREFIX: the binary, libdeepc.a, libdeepc.so with its soname and
 * links, include/deepc.h and a pkg-config file with which a program builds
 * (shared and static) and runs; uninstall removes exactly those files.
 * Nothing is rebuilt: `-o all` takes the build as it is.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SAN " -fsanitize=address,undefined" /* a library built with the sanitizers needs them to link */
#else
#define SAN ""
#endif

static const char *FILES[] = {"bin/deepc", "lib/libdeepc.a", "lib/libdeepc.so", "lib/libdeepc.so.0",
                              "lib/libdeepc.so." DC_VERSION, "include/deepc.h", "lib/pkgconfig/deepc.pc"};
enum { NFILES = sizeof FILES / sizeof *FILES };

static char *read_out(const char *d, const char *name) {
    char p[800], *o = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/%s", d, name);
    if (file_read_all(p, &o, &n, NULL)) o = strdup("");
    return o;
}

static void install_uninstall(void) {
    char d[600];
    if (!realpath(harness_tmpdir(), d)) { CHECK(0, "tmpdir"); return; }
    int rc = harness_sh("make -s --no-print-directory install BUILD=%s PREFIX=%s/prefix -o all > %s/make.log 2>&1", DC_BUILD, d,
                        d);
    CHECK(rc == 0, "make install: exit %d", rc);
    for (int i = 0; i < NFILES; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/prefix/%s", d, FILES[i]);
        CHECK(access(p, F_OK) == 0, "%s is not installed", FILES[i]);
    }
    CHECK(harness_sh("readelf -d %s/prefix/lib/libdeepc.so." DC_VERSION " | grep -q 'SONAME.*\\[libdeepc.so.0\\]'", d) == 0,
          "soname libdeepc.so.0");
    CHECK(harness_sh("test \"$(readlink %s/prefix/lib/libdeepc.so)\" = libdeepc.so." DC_VERSION, d) == 0, "libdeepc.so link");
    /* a program built with pkg-config against the installed files */
    char prog[800];
    snprintf(prog, sizeof prog, "%s/prog.c", d);
    FILE *f = fopen(prog, "w");
    if (f) {
        fputs("#include <deepc.h>\n#include <stdio.h>\nint main(void) {\n    dc_config c;\n    dc_err e;\n"
              "    if (dc_config_preset(\"tiny\", &c, &e)) return 1;\n    dc_counts k;\n    dc_config_counts(&c, &k);\n"
              "    printf(\"deepc %s: %lld\\n\", dc_version(), (long long)k.params_total);\n    return 0;\n}\n", f);
        fclose(f);
    }
    const char *pc = "PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig";
    char env[700];
    snprintf(env, sizeof env, pc, d);
    rc = harness_sh("cd %s && %s cc" SAN " prog.c $(%s pkg-config --cflags --libs deepc) -o prog_shared > cc.log 2>&1 && "
                    "LD_LIBRARY_PATH=%s/prefix/lib ./prog_shared > shared.out 2>&1", d, env, env, d);
    char *o = read_out(d, "shared.out");
    CHECK(rc == 0 && strstr(o, "deepc " DC_VERSION ": 250000"), "shared: exit %d, %s", rc, o);
    free(o);
    rc = harness_sh("cd %s && %s cc" SAN " -static-libgcc prog.c $(%s pkg-config --cflags deepc) %s/prefix/lib/libdeepc.a "
                    "$(%s pkg-config --static --libs-only-other --libs-only-l deepc | sed 's/-ldeepc//') -o prog_static "
                    ">> cc.log 2>&1 && ./prog_static > static.out 2>&1", d, env, env, d, env);
    o = read_out(d, "static.out");
    CHECK(rc == 0 && strstr(o, "deepc " DC_VERSION ": 250000"), "static: exit %d, %s", rc, o);
    free(o);
    rc = harness_sh("%s/prefix/bin/deepc --version > %s/v.out 2>&1", d, d);
    o = read_out(d, "v.out");
    CHECK(rc == 0 && strstr(o, "deepc " DC_VERSION), "installed deepc --version: %s", o);
    free(o);
    rc = harness_sh("make -s --no-print-directory uninstall BUILD=%s PREFIX=%s/prefix > %s/make.log 2>&1", DC_BUILD, d, d);
    CHECK(rc == 0, "make uninstall: exit %d", rc);
    CHECK(harness_sh("test -z \"$(find %s/prefix -type f -o -type l)\"", d) == 0, "uninstall left files behind");
}

/* make CFLAGS=... replaces the optimisation flags only; BUILD= reaches the tests */
static void make_flags(void) {
    char d[600];
    if (!realpath(harness_tmpdir(), d)) { CHECK(0, "tmpdir"); return; }
    int rc = harness_sh("make -n --no-print-directory BUILD=%s/b CFLAGS='-O0 -g' %s/b/src/base/err.o %s/b/tests/test_sampler.o "
                        "> %s/n.txt 2>&1", d, d, d, d);
    char *o = read_out(d, "n.txt");
    CHECK(rc == 0 && strstr(o, "-std=c11") && strstr(o, "-fopenmp") && strstr(o, "-Iinclude") && strstr(o, "-O0 -g") &&
              !strstr(o, "-O2"),
          "make CFLAGS='-O0 -g': %s", o);
    char want[700];
    snprintf(want, sizeof want, "-DDC_BUILD=\\\"%s/b\\\"", d);
    CHECK(strstr(o, want) != NULL, "the tests do not get BUILD (%s): %s", want, o);
    free(o);
}

int main(void) {
    RUN(install_uninstall);
    RUN(make_flags);
    return harness_done();
}
