/* router: maps a request's method and path to one of the server's routes.
 *
 * The routes are fixed (design.md's HTTP surface): /o/T, /c/T, /u/T, /p/T, /v/T,
 * /confirm/T (T a signed token: base64url, 1 to ROUTER_ARG_MAX bytes),
 * /s/LIST (LIST a list name: any bytes but '/' and control characters,
 * 1 to ROUTER_ARG_MAX bytes), /healthz and /metrics; /webhooks/PROVIDER;
 * /login and /logout; and /api/v1/REST (REST: 1 to ROUTER_ARG_MAX bytes
 * without control characters, matched further by http/api's own table).
 * Nothing maps to a
 * file, so a path that is not exactly one of these (a "..", an empty or
 * extra segment, a character a token never has) is simply not found. The
 * path is the decoded one (percent escapes already undone by the server);
 * no query string. */
#ifndef TD_HTTP_ROUTER_H
#define TD_HTTP_ROUTER_H

#include <stddef.h>

#define ROUTER_ARG_MAX 8192

typedef enum route_id {
    ROUTE_NONE = 0, /* no route: 404 */
    ROUTE_OPEN,     /* GET /o/TOKEN */
    ROUTE_CLICK,    /* GET /c/TOKEN */
    ROUTE_UNSUB,    /* GET, POST /u/TOKEN */
    ROUTE_PREFS,    /* GET, POST /p/TOKEN */
    ROUTE_VIEW,     /* GET /v/TOKEN */
    ROUTE_SIGNUP,   /* GET, POST /s/LIST */
    ROUTE_CONFIRM,  /* GET, POST /confirm/TOKEN */
    ROUTE_HEALTHZ,  /* GET /healthz */
    ROUTE_METRICS,  /* GET /metrics */
    ROUTE_WEBHOOK,  /* POST /webhooks/PROVIDER (PROVIDER: token characters) */
    ROUTE_LOGIN,    /* GET, POST /login */
    ROUTE_LOGOUT,   /* POST /logout */
    ROUTE_API,      /* any method, /api/v1/REST */
    ROUTE_COUNT
} route_id;

typedef struct route_match {
    route_id route;
    const char *arg; /* into the path: the token or list name; NULL when none */
    size_t arg_len;
    const char *allow; /* the methods the route takes, for a 405's Allow header */
} route_match;

/* router_match matches method and path[0..len). Returns 200 with *m filled,
 * 404 when no route has that path (m->route is ROUTE_NONE), or 405 when the
 * path is a route's but the method is not (m->route is that route and
 * m->allow says which methods it takes). HEAD
 * is taken wherever GET is. */
int router_match(const char *method, const char *path, size_t len, route_match *m);

/* router_unescape decodes the percent escapes of path in place, the way
 * the server hands paths to router_match: %XX becomes its byte, except
 * that %00 (a NUL would cut the path short where a check looks at it as a
 * C string) and a '%' not followed by two hex digits are left as written,
 * where no route takes them. Returns the new length. */
size_t router_unescape(char *path);

/* router_body_max is the largest body a request to path may have: the
 * CSV import route takes HTTP_IMPORT_BODY_MAX, the rest of the API
 * HTTP_API_BODY_MAX, every other route HTTP_BODY_MAX (server.h). */
size_t router_body_max(const char *path);

/* router_name is the route's name for metrics ("open", "click", ...; "none"). */
const char *router_name(route_id r);

#endif
