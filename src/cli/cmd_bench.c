/*
 * cmd_bench.c — `deepc bench`: inference speed against the machine's bound,
 * measured in one run (DESIGN.md "Performance model").
 *
 * For each weight type and thread count: prefill tokens/s over 64 and 512
 * random tokens (one batched forward, logits of the last position only, as
 * llama-bench's pp), decode tokens/s over 128 tokens from an empty cache
 * (each the greedy choice of the last, as llama-bench's tg), the bytes of
 * weights one decoded token reads, the DRAM read bandwidth measured in this
 * run, and decode as a fraction of bandwidth / bytes-per-token. The bandwidth
 * (the bound) is the best any probe read in this run for that thread count
 * (512 MiB, best of 3 passes of each stream layout: membw.h), probes taken
 * before the model loads and just before and just after each decode
 * measurement, since the machine's bandwidth drifts (a VM beside others: one
 * V2-Lite run's single probe read 47.7 GB/s where mini runs' read 35-38); and
 * never below what the decode itself read (bytes per token x tokens/s), so
 * the fraction never passes 100% (the line says when decode set the bound).
 * With --peer DIR and a GGUF, llama.cpp's llama-bench runs on the same file
 * and thread count in this run (peer.c) and its figures stand beside ours; no
 * figure from another machine is shown. The --reps rounds alternate the two
 * programs (llama-bench -r 1, then our prefills and decode), so that each
 * pair sees the same minutes of the machine, and the pairs' ratios are shown.
 */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/err.h"
#include "base/hugemem.h"
#include "base/membw.h"
#include "base/rng.h"
#include "kernels/wtype.h"
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/infer_cli.h"

static const char *HELP =
    "usage: deepc bench -m DIR|FILE.gguf [--dtype f32,bf16,q8] [--threads 1,2] [--attn absorb|naive] [--kv-type bf16|f32]\n"
    "                   [--prefill 64,512] [--decode 128] [--depth 0] [--reps 3] [--parallel 1,2,4,8,16] [--peer DIR]\n"
    "\n"
    "Prefill and decode tokens/s for each weight type and thread count, the bytes of\n"
    "weights read per decoded token, the memory bandwidth measured in the same run,\n"
    "and decode as a fraction of the bound bandwidth / bytes per token; llama.cpp's\n"
    "figures beside them when --peer points at a llama.cpp build (same file, same run).\n"
    "\n"
    "  -m, --model DIR    checkpoint directory or .gguf file\n"
    "      --dtype LIST   weight types, comma-separated (default f32,bf16,q8; also f16, q4_0,\n"
    "                     q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs,\n"
    "                     fp8). A GGUF with\n"
    "                     quantised or f16 matrices, or an FP8 checkpoint, runs them as stored:\n"
    "                     stored or f32 mean that (the default is then stored alone), other\n"
    "                     types fail\n"
    "      --threads LIST thread counts (default 1,2)\n"
    "      --prefill LIST prompt lengths (default 64,512)\n"
    "      --decode N     decoded tokens (default 128)\n"
    "      --depth D      tokens already in the cache before each prefill and decode (default 0;\n"
    "                     llama-bench's -d): attention's share of a step at that context\n"
    "      --attn MODE    absorb (default) or naive\n"
    "      --kv-type T    the latent KV cache's elements: bf16 (default) or f32\n"
    "      --parallel LIST  batched decode instead: aggregate tokens/s of B sequences decoding\n"
    "                     together on one engine, weights read per step and the bound per B\n"
    "      --reps N       rounds of each prefill and decode (default 3): the mean tokens/s\n"
    "                     and its standard deviation, as llama-bench reports its -r runs\n"
    "      --peer DIR     a llama.cpp build's bin directory: with a .gguf model, its llama-bench\n"
    "                     (or llama-batched-bench with --parallel) runs on the same file in\n"
    "                     this run and its figures stand beside deepc's; llama-bench runs once\n"
    "                     a round (-r 1) just before ours, and the ratio's range over the\n"
    "                     rounds is shown (a machine's bandwidth moves by the minute)\n";

/* a fresh cache holding depth random tokens (untimed; --depth) */
static int at_depth(dc_session *s, int depth, int V, float *logits, dc_err *err) {
    dc_session_reset(s);
    if (!depth) return DC_OK;
    int *ids = malloc(sizeof(int) * depth);
    if (!ids) return err_set(err, DC_ENOMEM, "out of memory");
    rng r;
    rng_seed(&r, 4321);
    for (int i = 0; i < depth; i++) ids[i] = (int)(rng_u64(&r) % V);
    int rc = dc_forward(s, ids, depth, logits, 1, err);
    free(ids);
    return rc;
}

/* tokens/s of one prefill of n random tokens after depth on a fresh cache */
static int prefill_rate(dc_session *s, int n, int depth, int V, float *logits, double *rate, dc_err *err) {
    int *ids = malloc(sizeof(int) * n);
    if (!ids) return err_set(err, DC_ENOMEM, "out of memory");
    rng r;
    rng_seed(&r, 1234);
    for (int i = 0; i < n; i++) ids[i] = (int)(rng_u64(&r) % V);
    int rc = at_depth(s, depth, V, logits, err);
    double t0 = progress_now();
    if (!rc) rc = dc_forward(s, ids, n, logits, 1, err);
    *rate = n / (progress_now() - t0);
    free(ids);
    return rc;
}

static int decode_rate(dc_session *s, int n, int depth, int V, float *logits, double *rate, dc_err *err) {
    int tok = 1 % V, rc = at_depth(s, depth, V, logits, err);
    double t0 = progress_now();
    for (int i = 0; i < n && !rc; i++) {
        rc = dc_forward(s, &tok, 1, logits, 1, err);
        tok = dc_argmax(logits, V);
    }
    *rate = n / (progress_now() - t0);
    return rc;
}

typedef struct bopts {
    const char *dir;
    char dtypes[8][8];
    int ndt, thr[8], nthr, pre[8], npre, dec, depth, attn, kv, par[16], npar, reps;
    int dflt;        /* dtypes is the default list: a type the model refuses is skipped, not an error */
    char ran[8][8];  /* the weight types measured so far (dc_model_dtype): one run each */
    int nran;
    const char *peer;
} bopts;

static int parse_list(const char *s, int *out, int max, int lo, int hi) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long v;
        if (n == max || cli_parse_int(t, lo, hi, &v)) return -1;
        out[n++] = (int)v;
    }
    return n ? n : -1;
}

static int parse(int argc, char **argv, bopts *o) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'}, {"dtype", 1, 0, 'd'},   {"threads", 1, 0, 't'},
                                         {"prefill", 1, 0, 'p'}, {"decode", 1, 0, 'n'}, {"attn", 1, 0, 'a'},
                                         {"parallel", 1, 0, 'P'}, {"peer", 1, 0, 'E'}, {"kv-type", 1, 0, CLI_OPT_KV},
                                         {"reps", 1, 0, 'r'}, {"depth", 1, 0, 'D'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    const char *const dts_default = "f32,bf16,q8";
    const char *dts = dts_default;
    o->thr[0] = 1, o->thr[1] = 2, o->nthr = 2;
    o->pre[0] = 64, o->pre[1] = 512, o->npre = 2;
    o->dec = 128, o->reps = 3;
    o->attn = DC_ATTN_ABSORB;
    long v;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': o->dir = optarg; break;
        case 'd': dts = optarg; break;
        case 't':
            if ((o->nthr = parse_list(optarg, o->thr, 8, 1, 4096)) < 0) return cli_usage_error("bench", "--threads: bad list '%s'", optarg);
            break;
        case 'p':
            if ((o->npre = parse_list(optarg, o->pre, 8, 1, 1 << 20)) < 0) return cli_usage_error("bench", "--prefill: bad list '%s'", optarg);
            break;
        case 'n':
            if (cli_parse_int(optarg, 1, 1 << 20, &v)) return cli_usage_error("bench", "--decode: bad count '%s'", optarg);
            o->dec = (int)v;
            break;
        case 'D':
            if (cli_parse_int(optarg, 0, 1 << 20, &v)) return cli_usage_error("bench", "--depth: bad count '%s'", optarg);
            o->depth = (int)v;
            break;
        case 'r':
            if (cli_parse_int(optarg, 1, 100, &v)) return cli_usage_error("bench", "--reps: bad count '%s' (1..100)", optarg);
            o->reps = (int)v;
            break;
        case 'a':
            if (!strcmp(optarg, "naive")) o->attn = DC_ATTN_NAIVE;
            else if (!strcmp(optarg, "absorb")) o->attn = DC_ATTN_ABSORB;
            else return cli_usage_error("bench", "--attn must be naive or absorb, not '%s'", optarg);
            break;
        case CLI_OPT_KV:
            if ((o->kv = cli_parse_kv_type(optarg)) < 0)
                return cli_usage_error("bench", "--kv-type must be bf16 or f32, not '%s'", optarg);
            break;
        case 'P':
            if ((o->npar = parse_list(optarg, o->par, 16, 1, 4096)) < 0)
                return cli_usage_error("bench", "--parallel: bad list '%s'", optarg);
            break;
        case 'E': o->peer = optarg; break;
        case 'h': fputs(HELP, stdout); return 1;
        default: return cli_usage_error("bench", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!o->dir) return cli_usage_error("bench", "-m DIR is required");
    if (o->depth && o->npar) return cli_usage_error("bench", "--depth is not measured with --parallel");
    size_t dl = strlen(o->dir);
    if (dts == dts_default && dl > 5 && !strcmp(o->dir + dl - 5, ".gguf")) dts = "stored";
    o->dflt = dts == dts_default;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", dts);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int known = !strcmp(t, "stored") || mat_type_parse(t) >= 0; /* the types of kernels/wtype.h */
        if (o->ndt == 8 || !known)
            return cli_usage_error("bench", "--dtype: '%s' is not stored or a weight type (f32, bf16, f16, q8, "
                                            "q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, "
                                            "iq4_xs, fp8)", t);
        strcpy(o->dtypes[o->ndt++], t);
    }
    return 0;
}

/* the bandwidth probe: its buffer, kept for the run, and the best read so far
 * for each thread count of the run */
typedef struct bwprobe {
    const void *buf;
    size_t bytes;
    double best[8];
} bwprobe;

/* a probe with thread count ti of the run: its rate, the best kept */
static double bw_probe(bwprobe *p, const bopts *o, int ti) {
    double b = membw_read(p->buf, p->bytes, o->thr[ti], 3);
    if (b > p->best[ti]) p->best[ti] = b;
    return b;
}

/* the decode line: tokens/s against the bound (bwprobe.best[ti], or what the
 * decode read itself when that is more), probes just before and after */
static void decode_line(const bopts *o, int ti, double rate, double sd, double mb, bwprobe *p, double before,
                        double after) {
    double b = p->best[ti], got = rate * mb / 1e3; /* GB/s the decode read */
    const int own = got > b;
    if (own) b = got;
    printf("  %d thr  decode  %4d   %8.2f tok/s", o->thr[ti], o->dec, rate);
    if (o->depth) printf(" @ d%d", o->depth);
    if (o->reps > 1) printf(" +- %.2f", sd);
    printf("   bound %.1f GB/s / %.1f MB%s = %.1f tok/s -> %.0f%% of bound\n", b, mb,
           o->depth ? " (weights and cache)" : "", b * 1e3 / mb, 100 * got / b);
    printf("               (read %.1f GB/s; bandwidth probes %.1f just before, %.1f just after%s)\n", got, before, after,
           own ? ": the decode read more than any probe, so its own rate is the bound" : "");
}

/* mean and standard deviation of v[0..n) (llama-bench's avg_ts / stddev_ts) */
static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += v[i], sq += v[i] * v[i];
    *mean = sum / n;
    *sd = n > 1 ? sqrt(fmax(0, (sq - sum * sum / n) / (n - 1))) : 0;
}

/* the peer's figure beside ours: its mean, our ratio to it and, over two or
 * more rounds, the range of the rounds' own ratios (ours / the peer's run
 * just before it: the pairs see the same minute of the machine's bandwidth);
 * 0 (nothing printed) unless the peer gave a figure in every round */
static int peer_ratio(const double *own, const double *peer, int n, const char *fmt) {
    double m = 0, om = 0, sd, lo = 1e30, hi = 0;
    for (int r = 0; r < n; r++) {
        if (!(peer[r] > 0)) return 0;
        lo = fmin(lo, own[r] / peer[r]), hi = fmax(hi, own[r] / peer[r]);
    }
    mean_sd(peer, n, &m, &sd), mean_sd(own, n, &om, &sd);
    printf(fmt, m);
    printf("  (x%.2f", om / m);
    if (n > 1) printf("; rounds x%.2f-x%.2f", lo, hi);
    printf(")");
    return 1;
}

/* one thread count's measurements in o->reps rounds: each round runs the
 * peer's llama-bench once (when there is one), then every prefill length
 * once, then the decode between two bandwidth probes. Alternating the two
 * programs round by round puts both in the same minutes of a machine whose
 * bandwidth moves by the minute (a shared VM: 35 to 78 GB/s within an hour). */
static int bench_rounds(bopts *o, int ti, dc_session *s, int V, float *logits, double mb, bwprobe *bw, int peer,
                        dc_err *err) {
    const int R = o->reps, np = o->npre, nt = o->thr[ti];
    /* ours, then the peer's: per prefill length and then the decode, R rounds each */
    double *own = calloc((size_t)2 * (np + 1) * R, sizeof(double)), *pv = own ? own + (size_t)(np + 1) * R : NULL;
    if (!own) return err_set(err, DC_ENOMEM, "out of memory");
    double before = 0, after = 0;
    int rc = DC_OK;
    for (int r = 0; r < R && !rc; r++) {
        if (peer) {
            double pp[8] = {0}, tg = 0;
            peer_llama_bench(o->peer, o->dir, o->pre, np, o->dec, o->depth, nt, 1, pp, &tg);
            for (int i = 0; i < np; i++) pv[(size_t)i * R + r] = pp[i];
            pv[(size_t)np * R + r] = tg;
        }
        for (int i = 0; i < np && !rc; i++) rc = prefill_rate(s, o->pre[i], o->depth, V, logits, &own[(size_t)i * R + r], err);
        if (rc) break;
        double b = bw_probe(bw, o, ti);
        if (!r) before = b;
        rc = decode_rate(s, o->dec, o->depth, V, logits, &own[(size_t)np * R + r], err);
        after = bw_probe(bw, o, ti);
    }
    for (int i = 0; i < np && !rc; i++) {
        double m, sd;
        mean_sd(own + (size_t)i * R, R, &m, &sd);
        printf("  %d thr  prefill %4d   %8.1f tok/s", nt, o->pre[i], m);
        if (o->depth) printf(" @ d%d", o->depth);
        if (R > 1) printf(" +- %.1f", sd);
        if (peer) peer_ratio(own + (size_t)i * R, pv + (size_t)i * R, R, "    llama.cpp (llama-bench, this run) %8.1f tok/s");
        printf("\n");
    }
    if (!rc) {
        double m, sd;
        mean_sd(own + (size_t)np * R, R, &m, &sd);
        decode_line(o, ti, m, sd, mb, bw, before, after);
        if (peer && peer_ratio(own + (size_t)np * R, pv + (size_t)np * R, R,
                               "               llama.cpp (llama-bench, this run) %8.2f tok/s"))
            printf("\n");
        else if (peer)
            printf("               llama.cpp gave no figure (is %s/llama-bench there, and does it load the file?)\n",
                   o->peer);
        if (peer && R > 1) printf("               (%d rounds, llama.cpp's run and ours alternated)\n", R);
    }
    fflush(stdout);
    free(own);
    return rc;
}

/* one weight type: load, then every thread count. Weights of a type already
 * measured (f32 and bf16 both mean a BF16 checkpoint as stored) run once; with
 * the default list, a type the model will not be converted to (kept FP8) is
 * skipped with a line that says why. */
static int bench_dtype(bopts *o, const char *dt, bwprobe *bw, dc_err *err) {
    dc_model *m = NULL;
    dc_session *s = NULL;
    float *logits = NULL;
    double load_s;
    int rc = infer_load(o->dir, dt, &m, &load_s, err);
    if (rc == DC_EARG && o->dflt) {
        printf("\n(%s: %s; not run)\n", dt, err->msg);
        return DC_OK;
    }
    if (rc) return rc;
    for (int i = 0; i < o->nran; i++)
        if (!strcmp(o->ran[i], dc_model_dtype(m))) {
            printf("\n(%s: the %s weights measured above; not run again)\n", dt, o->ran[i]);
            dc_model_free(m);
            return DC_OK;
        }
    if (o->nran < 8) snprintf(o->ran[o->nran++], sizeof o->ran[0], "%s", dc_model_dtype(m));
    const dc_config *c = dc_model_config(m);
    int maxp = o->dec;
    for (int i = 0; i < o->npre; i++) maxp = o->pre[i] > maxp ? o->pre[i] : maxp;
    if ((rc = dc_session_new_kv(m, o->depth + maxp, o->attn, o->kv, &s, err))) goto done;
    logits = malloc(sizeof(float) * c->vocab_size);
    if (!logits) {
        rc = err_set(err, DC_ENOMEM, "out of memory");
        goto done;
    }
    double mb = dc_model_decode_bytes(m) / 1e6;
    if (o->depth) { /* a step also reads the cache: depth + dec / 2 positions on average, every layer */
        const int L = c->num_hidden_layers, H = c->num_attention_heads;
        const double pos = o->depth + o->dec / 2.0,
                     row = o->attn == DC_ATTN_NAIVE ? 4.0 * H * (c->qk_nope_head_dim + c->qk_rope_head_dim + c->v_head_dim)
                                                    : (o->kv == DC_KV_F32 ? 4.0 : 2.0) * (c->kv_lora_rank + c->qk_rope_head_dim);
        mb += pos * L * row / 1e6;
    }
    const char *ty = dc_model_dtype(m); /* as stored for a quantised GGUF */
    size_t dl = strlen(o->dir);
    int peer = o->peer && dl > 5 && !strcmp(o->dir + dl - 5, ".gguf");
    if (o->peer && !peer) printf("(--peer: llama.cpp runs only on a .gguf model; none run)\n");
    printf("\n%s weights%s: %.1f MB resident, %.1f MB read per decoded token (loaded in %.1f s)\n", ty,
           strcmp(ty, dt) ? " (as stored)" : "", dc_model_weight_bytes(m) / 1e6, mb, load_s);
    for (int ti = 0; ti < o->nthr && !rc && o->npar; ti++) {
        cli_threads(o->thr[ti]);
        bw_probe(bw, o, ti);
        rc = bench_parallel(m, o->dir, o->peer, o->par, o->npar, o->dec, o->thr[ti], o->attn, o->kv, bw->best[ti], err);
    }
    for (int ti = 0; ti < o->nthr && !rc && !o->npar; ti++) {
        int nt = o->thr[ti];
        cli_threads(nt);
        /* a warm-up prefill of the longest run, as llama-bench warms up: the first prefill of T
         * tokens sizes the activations and GEMM panels for T and faults their pages in */
        double warm;
        if ((rc = prefill_rate(s, maxp, 0, c->vocab_size, logits, &warm, err))) break;
        rc = bench_rounds(o, ti, s, c->vocab_size, logits, mb, bw, peer, err);
    }
done:
    free(logits);
    dc_session_free(s);
    dc_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bopts o;
    int prc = parse(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : prc;
    dc_err err = {0};
    int rc = DC_OK;
    /* bandwidth first, in this process, with the model not yet loaded */
    size_t words = (512u << 20) / 8;
    uint64_t *buf = huge_alloc(words * 8); /* pages like the weights' (hugemem.h) */
    if (!buf) {
        err_set(&err, DC_ENOMEM, "out of memory for the bandwidth buffer");
        return cli_error("bench", &err);
    }
    memset(buf, 0x3f, words * 8); /* 0x3f3f3f3f is a normal float: no denormal slow path in the probe */
    bwprobe bw = {buf, words * 8, {0}};
    for (int i = 0; i < o.nthr; i++) bw_probe(&bw, &o, i);
    printf("deepc bench: %s, kernels %s, attention %s, KV cache %s\n", o.dir, dc_kernels_name(),
           o.attn == DC_ATTN_ABSORB ? "absorbed" : "naive", o.attn == DC_ATTN_NAIVE || o.kv == DC_KV_F32 ? "f32" : "bf16");
    for (int i = 0; i < o.nthr; i++) printf("memory read bandwidth, %d thread%s: %.1f GB/s (512 MiB, best of 3)\n", o.thr[i],
                                            o.thr[i] > 1 ? "s" : "", bw.best[i]);
    for (int i = 0; i < o.ndt && !rc; i++) rc = bench_dtype(&o, o.dtypes[i], &bw, &err);
    cli_threads(0);
    free(buf);
    return rc ? cli_error("bench", &err) : 0;
}
