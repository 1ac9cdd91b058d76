/* webhooks: POST /webhooks/PROVIDER (see webhooks.h). */
#include "http/webhooks.h"

static const char *header(const void *ud, const char *name)
{
    return http_header(ud, name);
}

void webhooks_serve(webhook *w, store *s, const http_req *req, http_resp *resp)
{
    resp->ctype = NULL;
    resp->no_cache = true;
    buf_reset(&resp->body);
    resp->status = webhook_handle(w, s, req->m.arg, req->m.arg_len, req->body ? req->body : "",
                                  req->body_len, header, req, &resp->body);
}
