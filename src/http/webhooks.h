/* webhooks: the HTTP side of POST /webhooks/PROVIDER: hands the body and
 * the request's headers to inbound/webhook and answers with the status it
 * decides (see inbound/webhook.h). */
#ifndef TD_HTTP_WEBHOOKS_H
#define TD_HTTP_WEBHOOKS_H

#include "http/server.h"
#include "inbound/webhook.h"
#include "store/store.h"

/* webhooks_serve answers req (route ROUTE_WEBHOOK) in resp, using the
 * caller's database connection s (its own thread's) and the state w. */
void webhooks_serve(webhook *w, store *s, const http_req *req, http_resp *resp);

#endif
