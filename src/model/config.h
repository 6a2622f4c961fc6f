/*
 * config.h — internal helpers around dc_config (the public struct lives in
 * deepc.h): parsing from a cJSON tree and writing config.json.
 */
#ifndef DC_CONFIG_H
#define DC_CONFIG_H
#include "deepc.h"

/* config_parse: fill *cfg from config.json text; `where` names the file in
 * messages. Checks the result with dc_config_check. */
int config_parse(const char *text, size_t n, const char *where, dc_config *cfg, dc_err *err);
/* config_to_json: a malloc'd config.json text in the Hugging Face form. */
char *config_to_json(const dc_config *cfg);
/* config_softmax_scale / config_rope_mscale: YaRN's corrections (1 without it). */
float config_softmax_scale(const dc_config *cfg);
double config_yarn_get_mscale(double factor, double mscale);
#endif
