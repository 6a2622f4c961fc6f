/* json.c — see json.h. */
#include "io/json.h"
#include <stdlib.h>
#include "base/err.h"
#include "base/file.h"

int json_read_file(const char *path, cJSON **out, dc_err *err) {
    *out = NULL;
    char *text;
    size_t n;
    int rc = file_read_all(path, &text, &n, err);
    if (rc) return rc;
    *out = cJSON_ParseWithLength(text, n);
    free(text);
    return *out ? DC_OK : err_set(err, DC_EFORMAT, "%s: not valid JSON", path);
}
