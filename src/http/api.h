/* api: the JSON API under /api/v1, and the /login and /logout pages.
 *
 * Every route is a row of one table (method, path pattern, handler, the
 * OpenAPI summary and request body), so the router, the 405 Allow lists
 * and the OpenAPI document (GET /api/v1/openapi.json, made from the table)
 * cannot disagree. A request is authenticated (http/auth: a Bearer token,
 * or the session cookie plus the CSRF token on state-changing requests),
 * its body parsed as a JSON object (1 MiB at most; a CSV file of at most
 * 32 MiB for an import), and the handler asks http/perm before it reads or
 * changes anything: a refusal is 403 and nothing was changed. Handlers hold
 * no business logic: they check types, call the store and the modules the
 * CLI uses (campaign/campaign, audience/import, audience/subscriber, ...),
 * write the audit log, and answer JSON.
 *
 * Errors are {"error": {"code", "message", "field"}} with 400 (malformed
 * JSON, wrong types, bad query), 401, 403, 404, 405, 409 (exists, wrong
 * state, in use), 413, 415, 422 (validation) or 429. Lists are paged by id:
 * ?limit=1..500 (50) and ?after=ID, answered as {"data", "total", "limit",
 * "next_after"}. */
#ifndef TD_HTTP_API_H
#define TD_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"
#include "store/store.h"

/* What the handlers need beyond the request. */
typedef struct api_env {
    bool secure; /* the public URL is https: cookies get Secure */
} api_env;

/* api_handle answers a request of ROUTE_API on s (the caller's connection,
 * used alone for the call). */
void api_handle(store *s, const api_env *env, const http_req *req, http_resp *resp);

/* api_login answers GET /login (the form) and POST /login (form fields or a
 * JSON object with email and password): a session cookie and the CSRF
 * token, 401 for a wrong email or password, 429 past the rate limit. */
void api_login(store *s, const api_env *env, const http_req *req, http_resp *resp);

/* api_logout answers POST /logout: ends the cookie's session (the CSRF token
 * required) and removes the cookie. */
void api_logout(store *s, const api_env *env, const http_req *req, http_resp *resp);

/* api_openapi returns the OpenAPI 3 document, made from the route table,
 * as compact JSON text (the caller frees it). */
char *api_openapi(void);

/* api_match finds the route for method and path (from "/", without the
 * "/api/v1" prefix: "/lists/7/import"), with the path's {id} in *id and its
 * {name} in name. Returns the route's index (api_route_at), or -1: then
 * allow (allow_cap bytes, at least 1) lists the methods the path takes, "" when the
 * path is no route's (a 404). HEAD matches as GET. */
int api_match(const char *method, const char *path, int64_t *id, char name[BLOCK_MAX_NAME + 1],
              char *allow, size_t allow_cap);

/* api_route_count and api_route_at walk the route table (for tests): the
 * method and the path as documented ("/api/v1/lists/{id}"). */
size_t api_route_count(void);
void api_route_at(size_t i, const char **method, const char **path);

#endif
