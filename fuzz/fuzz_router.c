/* fuzz_router: libFuzzer target for http/router. The first byte picks the
 * method, the rest is the path. Checks what a match promises: the argument
 * lies inside the path, after the route's prefix, within the cap, with
 * only token characters for a token route and no '/' or control character
 * for a list name; a 405 names the allowed methods; a 404 fills nothing.
 * router_unescape never lengthens the path, leaves no NUL inside it, and
 * is the identity on a path without '%'. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % 6];
    size_t n = size - 1;
    char *path = malloc(n + 1);
    memcpy(path, data + 1, n);
    path[n] = '\0';
    route_match m;
    int st = router_match(method, path, n, &m);
    CHECK(st == 200 || st == 404 || st == 405);
    if (st == 404) {
        CHECK(m.route == ROUTE_NONE && !m.arg && !m.allow);
    } else if (st == 405) {
        CHECK(m.allow && m.route > ROUTE_NONE && m.route < ROUTE_COUNT);
    } else {
        CHECK(m.route > ROUTE_NONE && m.route < ROUTE_COUNT);
        CHECK(path[0] == '/');
        if (m.arg) {
            CHECK(m.arg > path && m.arg + m.arg_len == path + n);
            CHECK(m.arg_len >= 1 && m.arg_len <= ROUTER_ARG_MAX);
            CHECK(m.arg[-1] == '/');
            for (size_t i = 0; i < m.arg_len; i++) {
                unsigned char c = (unsigned char)m.arg[i];
                CHECK(c >= 0x20 && c != 0x7f);
                if (m.route == ROUTE_API) /* /api/v1/REST: http/api matches the rest */
                    continue;
                CHECK(c != '/');
                if (m.route != ROUTE_SIGNUP)
                    CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_');
            }
            if (m.route != ROUTE_API)
                CHECK(!(m.arg_len <= 2 && strspn(m.arg, ".") >= m.arg_len));
        } else {
            CHECK(m.route == ROUTE_HEALTHZ || m.route == ROUTE_METRICS ||
                  m.route == ROUTE_LOGIN || m.route == ROUTE_LOGOUT);
        }
    }
    char *u = malloc(n + 1);
    memcpy(u, path, n + 1);
    size_t before = strlen(u);
    size_t un = router_unescape(u);
    CHECK(un <= before && strlen(u) == un);
    if (!memchr(path, '%', before))
        CHECK(un == before && !memcmp(u, path, before));
    free(u);
    free(path);
    return 0;
}
