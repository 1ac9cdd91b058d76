/* endpoints: the pages and answers behind the server's routes: the open
 * pixel, the click redirect, the unsubscribe page and RFC 8058 one-click,
 * the signup form, double opt-in confirmation, /healthz and /metrics.
 *
 * Opens and clicks go to the event queue (track/evq) and are answered at
 * once; an unsubscribe, a signup and a confirmation change consent, so
 * they and their events are written in one transaction before the answer.
 * Each server thread takes a database connection of its own from a small
 * pool (the store's SQLite handles are not shared between threads). A
 * token that does not check out (forged, altered, cut short, another kind)
 * gets 404 and nothing is stored. */
#ifndef TD_HTTP_ENDPOINTS_H
#define TD_HTTP_ENDPOINTS_H

#include "http/server.h"
#include "util/err.h"

typedef struct endpoints endpoints;

/* endpoints_new reads the signing secret and public URL from the database
 * at location and starts the event queue's writer. Returns 0 with *out
 * (endpoints_free), or an error (no secret: the database was not made by
 * `tidings init`). */
int endpoints_new(const char *location, endpoints **out, td_error *e);

/* endpoints_set_server names the server whose request counts /metrics
 * shows (may be NULL). */
void endpoints_set_server(endpoints *ep, http_server *s);

/* endpoints_handle is the server's http_handler (ud is the endpoints). */
void endpoints_handle(void *ud, const http_req *req, http_resp *resp);

/* endpoints_free stores every queued event, then closes the connections.
 * Call after the server has stopped. NULL is a no-op. */
void endpoints_free(endpoints *ep);

#endif
