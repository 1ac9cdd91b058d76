/* libFuzzer target for the JSON API's path matching (http/api api_match):
 * the first byte picks a method, the rest is the path. A match must name
 * a route of that method whose {id} is positive and whose {name} is a
 * valid block name; no match leaves allow a list of methods or "". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "X"};
    if (size < 1 || size > 4096)
        return 0;
    const char *method = methods[data[0] % 7];
    char *path = malloc(size);
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    int64_t id = 0;
    char name[BLOCK_MAX_NAME + 1] = "";
    char allow[80];
    int at = api_match(method, path, &id, name, allow, sizeof allow);
    if (at >= 0) {
        const char *m, *p;
        api_route_at((size_t)at, &m, &p);
        if (!m || (strcmp(m, method) && !(strcmp(method, "HEAD") == 0 && !strcmp(m, "GET"))))
            abort();
        if (strstr(p, "{id}") && id < 1)
            abort();
        if (strstr(p, "{name}") && !model_block_name_ok(name))
            abort();
    } else if (strlen(allow) >= sizeof allow) {
        abort();
    }
    free(path);
    return 0;
}
