/* cmd_convert.c — `deepc convert` (HF <-> GGUF) and `deepc quantize` (GGUF -> GGUF). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const char *HELP =
    "usage: deepc convert -m SRC --to gguf|hf -o OUT [--type T] [-t N]\n"
    "\n"
    "  --to gguf  SRC (a checkpoint directory, FP8 included, or a .gguf) as a llama.cpp\n"
    "             deepseek2 GGUF file OUT: metadata, tokenizer, split attn_k_b/attn_v_b,\n"
    "             stacked experts, and the MTP layer as nextn tensors\n"
    "  --to hf    a .gguf SRC back to a checkpoint directory OUT (float32 safetensors,\n"
    "             config.json, tokenizer.json)\n"
    "\n"
    "  -m, --model SRC   the model to convert\n"
    "  -o, --out OUT     the file (gguf) or directory (hf) to write\n"
    "      --type T      GGUF type of the matrices: f32, f16 (default), bf16, q8_0, q4_0,\n"
    "                    q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k. A matrix whose\n"
    "                    rows do not fit the type's blocks falls back (K-quants to q8_0,\n"
    "                    then f16), said on stderr; norms and the router stay f32\n"
    "  -t, --threads N   threads (default: all cores)\n";

static const char *QHELP =
    "usage: deepc quantize -m IN.gguf -o OUT.gguf --type T [-t N]\n"
    "\n"
    "Rewrites a deepseek2 GGUF in another type (the weights are dequantised to\n"
    "float32 first, so any readable type goes to any writable one). Types as for\n"
    "deepc convert.\n";

static void log_line(void *ctx, const char *line) { fprintf(stderr, "deepc %s: %s\n", (const char *)ctx, line); }

static int run(const char *cmd, int argc, char **argv, int quantize) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'}, {"out", 1, 0, 'o'},     {"to", 1, 0, 'T'},
                                         {"type", 1, 0, 'y'},  {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *src = NULL, *out = NULL, *to = quantize ? "gguf" : NULL, *type = NULL;
    long threads = 0;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:o:t:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': src = optarg; break;
        case 'o': out = optarg; break;
        case 'T': to = optarg; break;
        case 'y': type = optarg; break;
        case 't':
            if (cli_parse_int(optarg, 0, 4096, &threads)) return cli_usage_error(cmd, "bad -t %s", optarg);
            break;
        case 'h': fputs(quantize ? QHELP : HELP, stdout); return 0;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (!src || !out) return cli_usage_error(cmd, "give -m SRC and -o OUT");
    if (!to || (strcmp(to, "gguf") && strcmp(to, "hf"))) return cli_usage_error(cmd, "--to must be gguf or hf");
    if (quantize && !type) return cli_usage_error(cmd, "give --type");
    size_t n = strlen(src);
    if (quantize && (n < 5 || strcmp(src + n - 5, ".gguf")))
        return cli_usage_error(cmd, "-m must be a .gguf file (deepc convert reads checkpoint directories)");
    cli_threads(threads);
    dc_err err = {0};
    int rc;
    if (strcmp(to, "hf") == 0) {
        rc = dc_convert_to_hf(src, out, &err);
    } else {
        dc_convert_opts o = {type ? type : "f16", log_line, (void *)cmd};
        rc = dc_convert_to_gguf(src, out, &o, &err);
    }
    if (rc) return cli_error(cmd, &err);
    fprintf(stderr, "deepc %s: wrote %s\n", cmd, out);
    return 0;
}

int cmd_convert(int argc, char **argv) { return run("convert", argc, argv, 0); }
int cmd_quantize(int argc, char **argv) { return run("quantize", argc, argv, 1); }
