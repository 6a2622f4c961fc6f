/* cmd_convert.c — `deepc convert` (HF <-> GGUF) and `deepc quantize` (GGUF -> GGUF).
 *
 * SIGINT / SIGTERM while writing remove the temporary file (afile_unlink_all)
 * before the process dies of the signal; the next conversion into the same
 * directory removes what a SIGKILL left (file_sweep_stale). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const char *HELP =
    "usage: deepc convert -m SRC --to gguf|hf -o OUT [--type T] [--tokenizer FILE] [--force] [-t N]\n"
    "\n"
    "  --to gguf  SRC (a checkpoint directory, FP8 included, or a .gguf) as a llama.cpp\n"
    "             deepseek2 GGUF file OUT: metadata, tokenizer, split attn_k_b/attn_v_b,\n"
    "             stacked experts, and the MTP layer as nextn tensors\n"
    "  --to hf    a .gguf SRC back to a checkpoint directory OUT (float32 safetensors,\n"
    "             config.json, tokenizer.json), written beside OUT and renamed into place\n"
    "\n"
    "  -m, --model SRC       the model to convert\n"
    "  -o, --out OUT         the file (gguf) or directory (hf) to write\n"
    "      --type T          GGUF type of the matrices: f32, f16 (default), bf16, q8_0, q4_0,\n"
    "                        q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs\n"
    "                        (rows not of 256 values: iq4_nl), or a mix as\n"
    "                        llama.cpp's: q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m (more bits\n"
    "                        for the head, attention values and output, some ffn_down).\n"
    "                        A matrix whose rows do not fit the type's blocks falls back\n"
    "                        (K-quants to q8_0, then f16); norms and the router stay f32\n"
    "      --tokenizer FILE  a tokenizer.json (or model directory, or .gguf) to write into\n"
    "                        the GGUF when SRC has none: llama.cpp needs one to load the file\n"
    "      --allow-requantize  quantise a .gguf whose matrices are already quantised\n"
    "      --force           --to hf: replace a non-empty OUT (atomically)\n"
    "  -v, --verbose         say each tensor that falls back to another type\n"
    "  -t, --threads N       threads (default: all cores)\n";

static const char *QHELP =
    "usage: deepc quantize -m IN.gguf -o OUT.gguf --type T [--allow-requantize] [-t N]\n"
    "\n"
    "Rewrites a deepseek2 GGUF in another type or mix (the weights are dequantised to\n"
    "float32 first, so any readable type goes to any writable one). Types as for\n"
    "deepc convert (q4_k_m and the other mixes included). A file whose matrices are\n"
    "already quantised is refused unless --allow-requantize: its rounding error would\n"
    "be added a second time. Ends with the types written and the file's size.\n";

typedef struct logctx {
    const char *cmd;
    int verbose;
} logctx;

/* fallbacks per tensor only with -v; warnings (no tokenizer) always */
static void log_line(void *ctx, const char *line) {
    const logctx *l = ctx;
    if (l->verbose || !strstr(line, "do not fit")) fprintf(stderr, "deepc %s: %s\n", l->cmd, line);
}

/* summary: the types written and the size, one line */
static void summary(const char *cmd, const char *out, const dc_convert_stats *st) {
    char types[600] = "";
    for (int i = 0; i < st->n_types; i++)
        snprintf(types + strlen(types), sizeof types - strlen(types), "%s%d %s (%.1f MB)", i ? ", " : "",
                 st->types[i].count, st->types[i].type, st->types[i].bytes / 1e6);
    fprintf(stderr, "deepc %s: wrote %s: %.1f MB, %d tensors: %s\n", cmd, out, st->file_bytes / 1e6, st->n_tensors, types);
    if (st->n_fallback)
        fprintf(stderr, "deepc %s: %d matrices have rows that are not whole blocks of the type and were stored in a "
                        "wider one (-v lists them)\n", cmd, st->n_fallback);
}

static int run(const char *cmd, int argc, char **argv, int quantize) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'},    {"out", 1, 0, 'o'},   {"to", 1, 0, 'T'},
                                         {"type", 1, 0, 'y'},     {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'},
                                         {"tokenizer", 1, 0, 'z'}, {"allow-requantize", 0, 0, 'A'},
                                         {"force", 0, 0, 'F'},    {"verbose", 0, 0, 'v'}, {0, 0, 0, 0}};
    const char *src = NULL, *out = NULL, *to = quantize ? "gguf" : NULL, *type = NULL, *tokp = NULL;
    long threads = 0;
    int ch, allow = 0, force = 0, verbose = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:o:t:hv", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': src = optarg; break;
        case 'o': out = optarg; break;
        case 'T': to = optarg; break;
        case 'y': type = optarg; break;
        case 'z': tokp = optarg; break;
        case 'A': allow = 1; break;
        case 'F': force = 1; break;
        case 'v': verbose = 1; break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &threads)) return cli_usage_error(cmd, "bad -t %s", optarg);
            break;
        case 'h': fputs(quantize ? QHELP : HELP, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!src || !out) return cli_usage_error(cmd, "give -m SRC and -o OUT");
    if (!to || (strcmp(to, "gguf") && strcmp(to, "hf"))) return cli_usage_error(cmd, "--to must be gguf or hf");
    if (quantize && !type) return cli_usage_error(cmd, "give --type");
    size_t n = strlen(src);
    if (quantize && (n < 5 || strcmp(src + n - 5, ".gguf")))
        return cli_usage_error(cmd, "-m must be a .gguf file (deepc convert reads checkpoint directories)");
    if (!strcmp(to, "hf") && (type || tokp || allow))
        return cli_usage_error(cmd, "--type, --tokenizer and --allow-requantize are for --to gguf");
    cli_threads(threads);
    cli_remove_temps_on_signal();
    dc_err err = {0};
    dc_convert_stats st;
    int rc;
    if (strcmp(to, "hf") == 0) {
        rc = dc_convert_to_hf(src, out, force, &err);
    } else {
        logctx lc = {cmd, verbose};
        dc_convert_opts o = {type ? type : "f16", log_line, &lc, allow, tokp, &st};
        rc = dc_convert_to_gguf(src, out, &o, &err);
    }
    if (rc) return cli_error(cmd, &err);
    if (strcmp(to, "hf") == 0) fprintf(stderr, "deepc %s: wrote %s\n", cmd, out);
    else summary(cmd, out, &st);
    return 0;
}

int cmd_convert(int argc, char **argv) { return run("convert", argc, argv, 0); }
int cmd_quantize(int argc, char **argv) { return run("quantize", argc, argv, 1); }
