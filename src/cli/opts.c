/* opts.c — see opts.h. */
#include "cli/opts.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "cli/cli.h"
#include "kernels/linear.h"
#include "train/optim.h"

static int set_value(const cli_opt *o, const char *arg) {
    char *e;
    switch (o->type) {
    case OPT_INT:
    case OPT_LONG: {
        long v;
        if (cli_parse_int(arg, (long)o->lo, (long)o->hi, &v)) return -1;
        if (o->type == OPT_INT) *(int *)o->dst = (int)v;
        else *(long *)o->dst = v;
        return 0;
    }
    case OPT_FLOAT: {
        double v = strtod(arg, &e);
        if (*e || e == arg || !isfinite(v) || v < o->lo || v > o->hi) return -1;
        *(float *)o->dst = (float)v;
        return 0;
    }
    case OPT_STR: *(const char **)o->dst = arg; return 0;
    case OPT_FLAG: *(int *)o->dst = 1; return 0;
    case OPT_UNFLAG: *(int *)o->dst = 0; return 0;
    }
    return -1;
}

int cli_opts_parse(const char *cmd, const char *help, const cli_opt *o, int n, int argc, char **argv,
                   unsigned char *given, int *done) {
    struct option lo[n + 2];
    char shorts[2 * n + 4];
    int ns = 0;
    shorts[ns++] = 'h';
    for (int i = 0; i < n; i++) {
        int arg = o[i].type != OPT_FLAG && o[i].type != OPT_UNFLAG;
        lo[i] = (struct option){o[i].name, arg, 0, 1000 + i};
        if (o[i].key) shorts[ns++] = (char)o[i].key, arg ? (void)(shorts[ns++] = ':') : (void)0;
        given[i] = 0;
    }
    shorts[ns] = 0;
    lo[n] = (struct option){"help", 0, 0, 'h'};
    lo[n + 1] = (struct option){0, 0, 0, 0};
    *done = 0;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (ch == 'h') {
            fputs(help, stdout);
            *done = 1;
            return 0;
        }
        int i = ch >= 1000 && ch < 1000 + n ? ch - 1000 : -1;
        for (int k = 0; i < 0 && k < n; k++)
            if (o[k].key && o[k].key == ch) i = k;
        if (i < 0) return cli_usage_error(cmd, "bad option");
        if (set_value(&o[i], optarg))
            return o[i].type == OPT_FLOAT || o[i].type == OPT_INT || o[i].type == OPT_LONG
                       ? cli_usage_error(cmd, "--%s: bad value '%s' (a number in [%g, %g])", o[i].name, optarg, o[i].lo,
                                         o[i].hi)
                       : cli_usage_error(cmd, "--%s: bad value", o[i].name);
        given[i] = 1;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static cJSON *to_json(const cli_opt *o) {
    switch (o->type) {
    case OPT_INT:
    case OPT_FLAG:
    case OPT_UNFLAG: return cJSON_CreateNumber(*(int *)o->dst);
    case OPT_LONG: return cJSON_CreateNumber((double)*(long *)o->dst);
    case OPT_FLOAT: { /* the shortest decimal that reads back as the same float */
        float f = *(float *)o->dst;
        char b[40];
        for (int p = 1; p <= 9; p++) {
            snprintf(b, sizeof b, "%.*g", p, f);
            if ((float)strtod(b, NULL) == f) break;
        }
        return cJSON_CreateNumber(strtod(b, NULL));
    }
    default: return *(const char **)o->dst ? cJSON_CreateString(*(const char **)o->dst) : cJSON_CreateNull();
    }
}

cJSON *cli_opts_settings(const cli_opt *o, int n) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; j && i < n; i++)
        if (o[i].setting != SET_NO) cJSON_AddItemToObject(j, o[i].name, to_json(&o[i]));
    return j;
}

/* same: the option's current value equals the stored one */
static int same(const cli_opt *o, const cJSON *s) {
    cJSON *v = to_json(o);
    int eq = v && cJSON_Compare(v, s, 1);
    if (!eq && v && cJSON_IsNumber(v) && cJSON_IsNumber(s) && o->type == OPT_FLOAT)
        eq = (float)s->valuedouble == *(float *)o->dst;
    cJSON_Delete(v);
    return eq;
}

static void text_of(const cJSON *s, char *out, size_t cap) {
    if (cJSON_IsString(s)) snprintf(out, cap, "%s", s->valuestring);
    else if (cJSON_IsNumber(s)) snprintf(out, cap, "%g", s->valuedouble);
    else snprintf(out, cap, "(none)");
}

/* take: the stored value into the option */
static int take(const cli_opt *o, const cJSON *s) {
    if (cJSON_IsNull(s) && o->type == OPT_STR) return *(const char **)o->dst = NULL, 0;
    if (o->type == OPT_STR) return cJSON_IsString(s) ? (*(const char **)o->dst = s->valuestring, 0) : -1;
    if (o->type == OPT_FLAG || o->type == OPT_UNFLAG) /* stored as 0 or 1 (lo and hi are not a flag's range) */
        return cJSON_IsNumber(s) && (s->valuedouble == 0 || s->valuedouble == 1) ? (*(int *)o->dst = (int)s->valuedouble, 0) : -1;
    if (!cJSON_IsNumber(s) || s->valuedouble < o->lo || s->valuedouble > o->hi) return -1;
    if (o->type == OPT_FLOAT) *(float *)o->dst = (float)s->valuedouble;
    else if (o->type == OPT_LONG) *(long *)o->dst = (long)s->valuedouble;
    else *(int *)o->dst = (int)s->valuedouble;
    return 0;
}

int cli_opts_resume(const char *cmd, const cli_opt *o, int n, const unsigned char *given, const cJSON *stored,
                    const char *ckdir, dc_err *err) {
    for (int i = 0; i < n; i++) {
        if (o[i].setting == SET_NO) continue;
        const cJSON *s = cJSON_GetObjectItem(stored, o[i].name);
        if (!s) continue; /* a setting the run did not record: the command line's */
        char was[300], now[300];
        text_of(s, was, sizeof was);
        if (!given[i]) {
            if (take(&o[i], s))
                return err_set(err, DC_EFORMAT, "%s/trainer.json: setting \"%s\" has a bad value %s", ckdir, o[i].name, was);
            continue;
        }
        if (same(&o[i], s)) continue;
        cJSON *v = to_json(&o[i]);
        text_of(v, now, sizeof now);
        cJSON_Delete(v);
        if (o[i].setting == SET_MAY_CHANGE) {
            fprintf(stderr, "deepc %s: --%s %s replaces the run's %s\n", cmd, o[i].name, now, was);
            continue;
        }
        return err_set(err, DC_EARG, "--resume: --%s %s differs from the run's %s (stored in %s); resume without it, "
                       "or start a new run with another --out", o[i].name, now, was, ckdir);
    }
    return DC_OK;
}

int cli_precision(const char *cmd, const char *prec, struct train_opts *o) {
    int p = prec_parse(prec ? prec : "f32");
    if (p < 0) return cli_usage_error(cmd, "--precision must be f32, bf16 or fp8, not '%s'", prec);
    o->precision = p;
    return 0;
}
