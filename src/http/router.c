/* router: the fixed route table of the HTTP server (see router.h). */
#include "http/router.h"

#include "http/server.h"

#include <stdbool.h>
#include <string.h>

enum arg_kind { ARG_NONE, ARG_TOKEN, ARG_NAME, ARG_REST };
enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_PATCH = 8, M_DELETE = 16, M_ANY = 31 };

static const struct route {
    route_id id;
    const char *prefix; /* the whole path when arg is ARG_NONE */
    enum arg_kind arg;
    unsigned methods;
    const char *allow;
    const char *name;
} routes[] = {
    {ROUTE_OPEN, "/o/", ARG_TOKEN, M_GET, "GET, HEAD", "open"},
    {ROUTE_CLICK, "/c/", ARG_TOKEN, M_GET, "GET, HEAD", "click"},
    {ROUTE_UNSUB, "/u/", ARG_TOKEN, M_GET | M_POST, "GET, HEAD, POST", "unsubscribe"},
    {ROUTE_PREFS, "/p/", ARG_TOKEN, M_GET | M_POST, "GET, HEAD, POST", "preferences"},
    {ROUTE_VIEW, "/v/", ARG_TOKEN, M_GET, "GET, HEAD", "view"},
    {ROUTE_SIGNUP, "/s/", ARG_NAME, M_GET | M_POST, "GET, HEAD, POST", "signup"},
    {ROUTE_CONFIRM, "/confirm/", ARG_TOKEN, M_GET | M_POST, "GET, HEAD, POST", "confirm"},
    {ROUTE_HEALTHZ, "/healthz", ARG_NONE, M_GET, "GET, HEAD", "healthz"},
    {ROUTE_METRICS, "/metrics", ARG_NONE, M_GET, "GET, HEAD", "metrics"},
    {ROUTE_WEBHOOK, "/webhooks/", ARG_TOKEN, M_POST, "POST", "webhook"},
    {ROUTE_LOGIN, "/login", ARG_NONE, M_GET | M_POST, "GET, HEAD, POST", "login"},
    {ROUTE_LOGOUT, "/logout", ARG_NONE, M_POST, "POST", "logout"},
    /* The API matches its own paths and methods (http/api). */
    {ROUTE_API, "/api/v1/", ARG_REST, M_ANY, "GET, HEAD, POST, PUT, PATCH, DELETE", "api"},
};

static bool token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

static bool arg_ok(enum arg_kind k, const char *p, size_t n)
{
    if (n == 0 || n > ROUTER_ARG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (k == ARG_TOKEN  ? !token_char(c)
            : k == ARG_REST ? (c < 0x20 || c == 0x7f)
                            : (c < 0x20 || c == 0x7f || c == '/'))
            return false;
    }
    /* A list name of dots alone is a path step, never a list's name. */
    if (k == ARG_NAME && strspn(p, ".") >= n)
        return false;
    return true;
}

int router_match(const char *method, const char *path, size_t len, route_match *m)
{
    memset(m, 0, sizeof *m);
    unsigned meth = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? M_GET
                    : !strcmp(method, "POST")                        ? M_POST
                    : !strcmp(method, "PUT")                         ? M_PUT
                    : !strcmp(method, "PATCH")                       ? M_PATCH
                    : !strcmp(method, "DELETE")                      ? M_DELETE
                                                                     : 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        size_t pl = strlen(r->prefix);
        if (len < pl || memcmp(path, r->prefix, pl))
            continue;
        if (r->arg == ARG_NONE ? len != pl : !arg_ok(r->arg, path + pl, len - pl))
            continue;
        m->allow = r->allow;
        m->route = r->id;
        if (!(meth & r->methods))
            return 405;
        if (r->arg != ARG_NONE) {
            m->arg = path + pl;
            m->arg_len = len - pl;
        }
        return 200;
    }
    return 404;
}

size_t router_body_max(const char *path)
{
    static const char api[] = "/api/v1/";
    /* Providers post batches of events (SendGrid's reach ~768 KiB). */
    if (!strncmp(path, "/webhooks/", 10))
        return HTTP_WEBHOOK_BODY_MAX;
    if (strncmp(path, api, sizeof api - 1))
        return HTTP_BODY_MAX;
    /* lists/ID/import: the one route that takes a file. */
    const char *p = path + sizeof api - 1;
    if (!strncmp(p, "lists/", 6)) {
        const char *slash = strchr(p + 6, '/');
        if (slash && !strcmp(slash, "/import"))
            return HTTP_IMPORT_BODY_MAX;
    }
    return HTTP_API_BODY_MAX;
}

const char *router_name(route_id r)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == r)
            return routes[i].name;
    return "none";
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

size_t router_unescape(char *path)
{
    size_t o = 0;
    for (size_t i = 0; path[i]; i++) {
        int h, l;
        if (path[i] == '%' && (h = hexval(path[i + 1])) >= 0 && (l = hexval(path[i + 2])) >= 0 &&
            (h | l)) {
            path[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            path[o++] = path[i];
        }
    }
    path[o] = '\0';
    return o;
}
