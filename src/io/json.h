/*
 * json.h — a JSON file read and parsed in one call (cJSON).
 */
#ifndef DC_JSON_H
#define DC_JSON_H
#include <cjson/cJSON.h>
#include "deepc.h"

/* json_read_file: *out is the parsed document (caller frees with
 * cJSON_Delete); an unreadable file is DC_EIO, text that is not JSON
 * DC_EFORMAT, each with a message naming path. */
int json_read_file(const char *path, cJSON **out, dc_err *err);
#endif
