/* test_config.c — config.json parsing, checks and presets (src/model/config.c). */
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "model/config.h"

/* the official DeepSeek-V3 config.json, as released */
static const char *V3 =
    "{\"architectures\": [\"DeepseekV3ForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    "\"auto_map\": {\"AutoConfig\": \"configuration_deepseek.DeepseekV3Config\"}, \"aux_loss_alpha\": 0.001,"
    "\"bos_token_id\": 0, \"eos_token_id\": 1, \"ep_size\": 1, \"first_k_dense_replace\": 3,"
    "\"hidden_act\": \"silu\", \"hidden_size\": 7168, \"initializer_range\": 0.02, \"intermediate_size\": 18432,"
    "\"kv_lora_rank\": 512, \"max_position_embeddings\": 163840, \"model_type\": \"deepseek_v3\","
    "\"moe_intermediate_size\": 2048, \"moe_layer_freq\": 1, \"n_group\": 8, \"n_routed_experts\": 256,"
    "\"n_shared_experts\": 1, \"norm_topk_prob\": true, \"num_attention_heads\": 128, \"num_experts_per_tok\": 8,"
    "\"num_hidden_layers\": 61, \"num_key_value_heads\": 128, \"num_nextn_predict_layers\": 1,"
    "\"q_lora_rank\": 1536, \"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64,"
    "\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\","
    "\"weight_block_size\": [128, 128]}, \"rms_norm_eps\": 1e-06, \"rope_scaling\": {\"beta_fast\": 32,"
    "\"beta_slow\": 1, \"factor\": 40, \"mscale\": 1.0, \"mscale_all_dim\": 1.0,"
    "\"original_max_position_embeddings\": 4096, \"type\": \"yarn\"}, \"rope_theta\": 10000,"
    "\"routed_scaling_factor\": 2.5, \"scoring_func\": \"sigmoid\", \"tie_word_embeddings\": false,"
    "\"topk_group\": 4, \"topk_method\": \"noaux_tc\", \"torch_dtype\": \"bfloat16\","
    "\"transformers_version\": \"4.33.1\", \"use_cache\": true, \"v_head_dim\": 128, \"vocab_size\": 129280}";

/* the official DeepSeek-V2-Lite config.json fields that matter */
static const char *V2LITE =
    "{\"architectures\": [\"DeepseekV2ForCausalLM\"], \"aux_loss_alpha\": 0.001, \"bos_token_id\": 100000,"
    "\"eos_token_id\": 100001, \"first_k_dense_replace\": 1, \"hidden_act\": \"silu\", \"hidden_size\": 2048,"
    "\"intermediate_size\": 10944, \"kv_lora_rank\": 512, \"max_position_embeddings\": 163840,"
    "\"model_type\": \"deepseek_v2\", \"moe_intermediate_size\": 1408, \"moe_layer_freq\": 1, \"n_group\": 1,"
    "\"n_routed_experts\": 64, \"n_shared_experts\": 2, \"norm_topk_prob\": false, \"num_attention_heads\": 16,"
    "\"num_experts_per_tok\": 6, \"num_hidden_layers\": 27, \"num_key_value_heads\": 16, \"q_lora_rank\": null,"
    "\"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64, \"rms_norm_eps\": 1e-06, \"rope_scaling\": {"
    "\"beta_fast\": 32, \"beta_slow\": 1, \"factor\": 40, \"mscale\": 0.707, \"mscale_all_dim\": 0.707,"
    "\"original_max_position_embeddings\": 4096, \"type\": \"yarn\"}, \"rope_theta\": 10000,"
    "\"routed_scaling_factor\": 1.0, \"scoring_func\": \"softmax\", \"seq_aux\": true,"
    "\"tie_word_embeddings\": false, \"topk_group\": 1, \"topk_method\": \"greedy\", \"torch_dtype\": \"bfloat16\","
    "\"v_head_dim\": 128, \"vocab_size\": 102400}";

static int parse(const char *txt, dc_config *c, dc_err *e) { return config_parse(txt, strlen(txt), "cfg", c, e); }

static void official_configs(void) {
    dc_config c, p;
    dc_err e = {0};
    CHECK(parse(V3, &c, &e) == 0, "V3: %s", e.msg);
    CHECK(c.is_v3 && c.q_lora_rank == 1536 && c.topk_method == DC_TOPK_NOAUX_TC && c.scoring_func == DC_SCORE_SIGMOID,
          "V3 gate fields");
    CHECK(c.has_yarn && c.rope_factor == 40 && c.rope_original_max_position_embeddings == 4096, "V3 yarn");
    CHECK(c.fp8_block_m == 128 && c.fp8_block_n == 128, "V3 fp8 block");
    CHECK(dc_config_preset("v3", &p, &e) == 0, "%s", e.msg);
    p.fp8_block_m = p.fp8_block_n = 128;
    CHECK(memcmp(&c, &p, sizeof c) == 0, "the v3 preset equals the official config");
    CHECK(parse(V2LITE, &c, &e) == 0, "V2-Lite: %s", e.msg);
    CHECK(!c.is_v3 && c.q_lora_rank == 0 && c.topk_method == DC_TOPK_GREEDY && c.scoring_func == DC_SCORE_SOFTMAX &&
              !c.norm_topk_prob && c.num_nextn_predict_layers == 0,
          "V2-Lite fields");
    CHECK(dc_config_preset("v2-lite", &p, &e) == 0, "%s", e.msg);
    CHECK(memcmp(&c, &p, sizeof c) == 0, "the v2-lite preset equals the official config");
    dc_counts k;
    dc_config_counts(&c, &k);
    CHECK(k.params_total == 15706484224LL, "V2-Lite has 15.71B parameters, counted %lld", (long long)k.params_total);
    CHECK(llabs(k.params_active - 2450000000LL) < 10000000LL, "V2-Lite has 2.45B active, counted %lld",
          (long long)k.params_active);
    CHECK(dc_config_preset("mini", &p, &e) == 0, "%s", e.msg);
    dc_config_counts(&p, &k);
    CHECK(k.params_total == 604756192LL && llabs(k.params_active - 191600000LL) < 100000,
          "mini: 604.8M total / 191.6M active (BENCHMARKS.md), counted %lld / %lld", (long long)k.params_total,
          (long long)k.params_active);
    CHECK(k.kv_absorb_per_token == 8 * (256 + 32), "absorbed cache per token");
}

/* replace the first occurrence of `from` in V3 by `to` and expect an error naming `field` */
static void expect_field_error(const char *from, const char *to, const char *field) {
    size_t n = strlen(V3) + strlen(to) + 1;
    char *txt = malloc(n);
    const char *at = strstr(V3, from);
    CHECK(at != NULL, "pattern %s not in V3", from);
    if (!at) {
        free(txt);
        return;
    }
    snprintf(txt, n, "%.*s%s%s", (int)(at - V3), V3, to, at + strlen(from));
    dc_config c;
    dc_err e = {0};
    int rc = parse(txt, &c, &e);
    CHECK(rc == DC_ECONFIG, "%s -> %s: rc %d (%s)", from, to, rc, e.msg);
    CHECK(strstr(e.msg, field) != NULL, "message \"%s\" does not name %s", e.msg, field);
    free(txt);
}

static void bad_configs(void) {
    expect_field_error("\"hidden_size\": 7168,", "", "hidden_size");
    expect_field_error("\"kv_lora_rank\": 512,", "", "kv_lora_rank");
    expect_field_error("\"num_experts_per_tok\": 8,", "", "num_experts_per_tok");
    expect_field_error("\"num_experts_per_tok\": 8", "\"num_experts_per_tok\": 300", "num_experts_per_tok");
    expect_field_error("\"n_group\": 8", "\"n_group\": 7", "n_group");
    expect_field_error("\"topk_group\": 4", "\"topk_group\": 9", "topk_group");
    expect_field_error("\"topk_method\": \"noaux_tc\"", "\"topk_method\": \"best\"", "topk_method");
    expect_field_error("\"scoring_func\": \"sigmoid\"", "\"scoring_func\": 3", "scoring_func");
    expect_field_error("\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 63", "qk_rope_head_dim");
    expect_field_error("\"vocab_size\": 129280", "\"vocab_size\": \"big\"", "vocab_size");
    expect_field_error("\"type\": \"yarn\"", "\"type\": \"linear\"", "rope_scaling.type");
    expect_field_error("\"factor\": 40,", "", "rope_scaling.factor");
    expect_field_error("\"quant_method\": \"fp8\"", "\"quant_method\": \"gptq\"", "quant_method");
    expect_field_error("\"weight_block_size\": [128, 128]", "\"weight_block_size\": [128]", "weight_block_size");
    expect_field_error("\"model_type\": \"deepseek_v3\"", "\"model_type\": \"llama\"", "model_type");
    expect_field_error("\"eos_token_id\": 1", "\"eos_token_id\": 200000", "eos_token_id");
    expect_field_error("\"num_attention_heads\": 128", "\"num_attention_heads\": 1.5", "num_attention_heads");
    dc_config c;
    dc_err e = {0};
    CHECK(parse("{\"vocab_size\": 10,", &c, &e) == DC_EFORMAT && strstr(e.msg, "JSON"), "truncated JSON: %s", e.msg);
    CHECK(parse("[1, 2]", &c, &e) == DC_EFORMAT, "not an object: %s", e.msg);
    CHECK(dc_config_load("/nonexistent/dir", &c, &e) == DC_EIO, "missing file: %s", e.msg);
    CHECK(dc_config_preset("huge", &c, &e) == DC_EARG && strstr(e.msg, "huge"), "unknown preset: %s", e.msg);
}

/* every preset survives config_to_json -> config_parse unchanged */
static void presets_round_trip(void) {
    const char *names[] = {"tiny", "small", "mini", "train-bench", "v2-lite", "v3"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        dc_config a, b;
        dc_err e = {0};
        CHECK(dc_config_preset(names[i], &a, &e) == 0, "%s: %s", names[i], e.msg);
        char *js = config_to_json(&a);
        CHECK(parse(js, &b, &e) == 0, "%s: %s", names[i], e.msg);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "%s changes through config.json", names[i]);
        free(js);
    }
}

int main(void) {
    RUN(official_configs);
    RUN(bad_configs);
    RUN(presets_round_trip);
    return harness_done();
}
