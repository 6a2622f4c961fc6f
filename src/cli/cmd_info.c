/* cmd_info.c — `deepc info`: what a model or preset is and what it costs. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/ggml_types.h"
#include "model/gguf_model.h"

static const char *HELP =
    "usage: deepc info -m DIR|FILE.gguf | --preset NAME\n"
    "\n"
    "Prints total parameters and active parameters per token, bytes of weights, KV-cache\n"
    "bytes per token for naive and absorbed attention, and a summary of the config; for\n"
    "a model on disk also the types its tensors are stored in and the size of its files\n"
    "(and, for a GGUF, its file type and tokenizer).\n"
    "Presets: tiny, small, mini, train-bench, v2-lite, v3.\n";

static const char *human(double v, char *buf, size_t n) {
    const char *u[] = {"", "K", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) v /= 1000, i++;
    snprintf(buf, n, "%.2f%s", v, u[i]);
    return buf;
}

/* a tally of tensors by stored type: "46 q4_K (5.20 MB), 26 f32 (0.01 MB)" */
typedef struct tally {
    const char *name[48];
    int count[48];
    double bytes[48];
    int n;
} tally;

static void tally_add(tally *t, const char *name, double bytes) {
    int i = 0;
    while (i < t->n && strcmp(t->name[i], name) != 0) i++;
    if (i == t->n) {
        if (t->n == 48) return;
        t->name[t->n++] = name;
    }
    t->count[i]++, t->bytes[i] += bytes;
}

static void tally_print(const tally *t) {
    char b[32];
    printf("stored      ");
    for (int i = 0; i < t->n; i++)
        printf("%s %d %s (%sB)", i ? "," : "", t->count[i], t->name[i], human(t->bytes[i], b, sizeof b));
    printf("\n");
}

/* a checkpoint directory: its safetensors files, dtypes and bytes */
static void disk_safetensors(const char *dir) {
    st_set s;
    dc_err e;
    if (st_open_dir(&s, dir, &e)) return;
    double b = 0;
    for (int i = 0; i < s.nfiles; i++) b += (double)s.files[i].size;
    tally t = {0};
    for (int i = 0; i < s.n; i++) tally_add(&t, st_dtype_name(s.tensors[i].dtype), (double)s.tensors[i].nbytes);
    char hb[32];
    printf("on disk      %sB in %d safetensors file%s\n", human(b, hb, sizeof hb), s.nfiles, s.nfiles == 1 ? "" : "s");
    tally_print(&t);
    st_close(&s);
}

/* a GGUF: its size, version, file type, tensor types and tokenizer */
static void disk_gguf(const char *path) {
    gguf g;
    dc_err e;
    if (gguf_open(&g, path, &e) || gguf_read_tensors(&g, &e)) return;
    int64_t ft = -1;
    gguf_get_int(&g, "general.file_type", &ft, NULL);
    char hb[32];
    printf("on disk      %sB (%zu bytes), GGUF v%u, general.file_type %lld\n", human((double)g.size, hb, sizeof hb),
           g.size, g.version, (long long)ft);
    tally t = {0};
    for (uint64_t i = 0; i < g.n_tensors; i++) tally_add(&t, gg_type_name(g.tensors[i].type), (double)g.tensors[i].nbytes);
    tally_print(&t);
    gguf_str m = {0}, pre = {"?", 1};
    const gguf_kv *tok = gguf_find(&g, "tokenizer.ggml.tokens");
    if (!gguf_find(&g, "tokenizer.ggml.model") || gguf_get_str(&g, "tokenizer.ggml.model", &m, NULL))
        printf("tokenizer    none: the file loads in deepc only (llama.cpp needs tokenizer.ggml.*)\n");
    else {
        if (gguf_find(&g, "tokenizer.ggml.pre")) gguf_get_str(&g, "tokenizer.ggml.pre", &pre, NULL);
        printf("tokenizer    %.*s, pre-tokenizer %.*s, %llu tokens%s\n", (int)m.n, m.s, (int)pre.n, pre.s,
               tok ? (unsigned long long)tok->n : 0ull,
               gguf_find(&g, "tokenizer.chat_template") ? ", chat template" : "");
    }
    gguf_close(&g);
}

int cmd_info(int argc, char **argv) {
    static const struct option LONG[] = {{"model", 1, 0, 'm'}, {"preset", 1, 0, 'p'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *preset = NULL;
    int ch;
    optind = 0;
    /* info computes nothing: it takes no -t (it did, and ignored it) */
    while ((ch = getopt_long(argc, argv, "m:h", LONG, NULL)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'p': preset = optarg; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: return cli_usage_error("info", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);
    if (!dir == !preset) return cli_usage_error("info", "give exactly one of -m DIR or --preset NAME");
    dc_config c;
    dc_err err = {0};
    if (preset ? dc_config_preset(preset, &c, &err) : dc_config_load(dir, &c, &err)) return cli_error("info", &err);
    dc_counts k;
    dc_config_counts(&c, &k);
    char b1[32], b2[32], b3[32];
    static const char *TOPK[] = {"greedy", "group_limited_greedy", "noaux_tc"};
    printf("deepc        %s\n", dc_version());
    printf("model        %s (%s)\n", preset ? preset : dir, c.is_v3 ? "deepseek_v3" : "deepseek_v2");
    printf("layers       %d (%d dense, %d MoE) + %d MTP module(s)\n", c.num_hidden_layers,
           c.n_routed_experts ? (c.first_k_dense_replace < c.num_hidden_layers ? c.first_k_dense_replace : c.num_hidden_layers) : c.num_hidden_layers,
           c.n_routed_experts ? c.num_hidden_layers - (c.first_k_dense_replace < c.num_hidden_layers ? c.first_k_dense_replace : c.num_hidden_layers) : 0,
           c.num_nextn_predict_layers);
    printf("hidden       %d, vocab %d, dense intermediate %d\n", c.hidden_size, c.vocab_size, c.intermediate_size);
    if (c.q_lora_rank)
        printf("attention    MLA, %d heads, q_lora %d, kv_lora %d, qk_nope %d, qk_rope %d, v %d\n", c.num_attention_heads,
               c.q_lora_rank, c.kv_lora_rank, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim);
    else
        printf("attention    MLA, %d heads, no q-LoRA, kv_lora %d, qk_nope %d, qk_rope %d, v %d\n", c.num_attention_heads,
               c.kv_lora_rank, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim);
    if (c.has_yarn)
        printf("rope         theta %g, YaRN factor %g from %d, beta %g/%g, mscale %g/%g\n", c.rope_theta, c.rope_factor,
               c.rope_original_max_position_embeddings, c.rope_beta_fast, c.rope_beta_slow, c.rope_mscale,
               c.rope_mscale_all_dim);
    else
        printf("rope         theta %g, no scaling\n", c.rope_theta);
    if (c.n_routed_experts)
        printf("moe          %d routed (top %d) + %d shared, intermediate %d, %s %s, groups %d (top %d), scale %g%s\n",
               c.n_routed_experts, c.num_experts_per_tok, c.n_shared_experts, c.moe_intermediate_size,
               c.scoring_func == DC_SCORE_SIGMOID ? "sigmoid" : "softmax", TOPK[c.topk_method], c.n_group,
               c.topk_group, c.routed_scaling_factor, c.norm_topk_prob ? ", normalised" : "");
    printf("params       %s total (%lld), %s active per token, %s MTP\n", human((double)k.params_total, b1, sizeof b1),
           (long long)k.params_total, human((double)k.params_active, b2, sizeof b2),
           human((double)k.params_mtp, b3, sizeof b3));
    double all = (double)(k.params_total + k.params_mtp);
    printf("weights      %sB f32, %sB bf16, ~%sB fp8 (with MTP)\n", human(all * 4, b1, sizeof b1),
           human(all * 2, b2, sizeof b2), human(all * 1, b3, sizeof b3));
    if (dir && path_is_gguf(dir)) disk_gguf(dir);
    else if (dir) disk_safetensors(dir);
    printf("read/token   %sB f32, %sB bf16 (active weights)\n", human((double)k.params_active * 4, b1, sizeof b1),
           human((double)k.params_active * 2, b2, sizeof b2));
    printf("kv/token     naive %lld numbers (%sB f32), absorbed %lld numbers (%sB f32, %sB bf16)\n",
           (long long)k.kv_naive_per_token, human((double)k.kv_naive_per_token * 4, b1, sizeof b1),
           (long long)k.kv_absorb_per_token, human((double)k.kv_absorb_per_token * 4, b2, sizeof b2),
           human((double)k.kv_absorb_per_token * 2, b3, sizeof b3));
    /* the engine's paged store (dc_engine_opts defaults): main + MTP layers, bf16 by default */
    dc_engine_opts eo;
    dc_engine_defaults(&eo);
    int nl = c.num_hidden_layers + c.num_nextn_predict_layers, es = eo.kv_type == DC_KV_BF16 ? 2 : 4;
    double tok = (double)es * nl * (c.kv_lora_rank + c.qk_rope_head_dim), page = tok * eo.page_tokens;
    printf("kv cache     %.0f bytes a position, every layer (absorbed, %s, MTP included; --kv-type f32: %.0f)\n", tok,
           es == 2 ? "bf16" : "f32", tok / es * 4);
    int pages = eo.max_seqs * ((eo.max_len + eo.page_tokens - 1) / eo.page_tokens + 1);
    printf("kv store     pages of %d positions, %sB each (absorbed, %s, MTP included); the engine's default "
           "%d sequences x %d positions: %sB at most, touched only as used; forks share their prefix's pages\n",
           eo.page_tokens, human(page, b1, sizeof b1), es == 2 ? "bf16" : "f32", eo.max_seqs, eo.max_len, human(page * pages, b2, sizeof b2));
    return 0;
}
