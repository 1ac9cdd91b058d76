/* server: the HTTP server of `tidings serve`, on libmicrohttpd.
 *
 * One port. An epoll loop per thread of a small pool (MHD's
 * MHD_USE_EPOLL_INTERNAL_THREAD with MHD_OPTION_THREAD_POOL_SIZE), with
 * caps on what a client can make it hold: the request line and headers
 * share HTTP_CONN_MEMORY bytes per connection (past it MHD answers 414 or
 * 431), a body is at most HTTP_BODY_MAX bytes (a larger Content-Length gets
 * 413 before any of the body is read; a chunked body that grows past it is
 * cut off), and an idle connection is closed after HTTP_TIMEOUT_S. The
 * routes are router.h's; the pages behind them are endpoints.h's. Request
 * counts by route and status are kept for /metrics. */
#ifndef TD_HTTP_SERVER_H
#define TD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/router.h"
#include "util/buf.h"
#include "util/err.h"

#define HTTP_DEFAULT_LISTEN "127.0.0.1:8080" /* matches `tidings init`'s public URL */
#define HTTP_CONN_MEMORY (64u << 10)          /* request line + headers, per connection */
#define HTTP_BODY_MAX (64u << 10)             /* a request body */
#define HTTP_WEBHOOK_BODY_MAX (1u << 20)      /* a /webhooks/ body (SendGrid batches ~768 KiB) */
#define HTTP_API_BODY_MAX (1u << 20)          /* a JSON body of the API */
#define HTTP_IMPORT_BODY_MAX (32u << 20)      /* a CSV file POSTed to a list's import */
#define HTTP_TIMEOUT_S 30                     /* an idle connection */
#define HTTP_FORM_FIELDS 8                    /* form fields kept from a POST */
#define HTTP_FORM_VALUE_MAX 1024              /* bytes of one form value */
#define HTTP_DRAIN_MS 10000                   /* how long a stop waits for requests */

/* One form field of a POST (application/x-www-form-urlencoded or
 * multipart/form-data), decoded. */
typedef struct http_field {
    char name[64];
    char value[HTTP_FORM_VALUE_MAX + 1];
    size_t value_len;
    bool truncated; /* the value was longer than HTTP_FORM_VALUE_MAX */
} http_field;

/* What a handler sees of a request. Borrowed for the handler's call. */
typedef struct http_req {
    const char *method;
    route_match m;
    char peer[64];            /* the client's address, numeric ("" when unknown) */
    void *conn;               /* the server's; for http_header and http_query */
    const char *content_type; /* NULL when none */
    const char *body;         /* the raw body (POST), NUL-terminated */
    size_t body_len;
    http_field form[HTTP_FORM_FIELDS];
    size_t nform;
} http_req;

/* What a handler answers. The server sets status 500 and frees what the
 * handler left in it. */
typedef struct http_resp {
    int status;
    const char *ctype;   /* a static string; NULL: text/plain; charset=utf-8 */
    buf body;            /* capped at HTTP_RESP_MAX */
    char *location;      /* for a redirect; the server frees it */
    bool no_cache;       /* Cache-Control: no-store and friends */
    char *set_cookie;    /* a Set-Cookie value, or NULL; the server frees it */
    const char *allow;   /* a static Allow value (with a 405), or NULL */
    int retry_after;     /* seconds for a Retry-After header (with a 429); 0: none */
} http_resp;
#define HTTP_RESP_MAX (1u << 20)

/* http_form_get is the value of form field name, or NULL. */
const char *http_form_get(const http_req *r, const char *name);

/* http_header is the value of request header name (case-insensitive), or
 * NULL; borrowed for the handler's call. */
const char *http_header(const http_req *r, const char *name);

/* http_query is the decoded value of query argument name, or NULL (an
 * argument given without '=' is ""); borrowed for the handler's call. */
const char *http_query(const http_req *r, const char *name);

/* The function behind the routes: fills resp for req. */
typedef void (*http_handler)(void *ud, const http_req *req, http_resp *resp);

typedef struct http_server http_server;

/* http_listen_parse reads "ADDR:PORT" ("[v6]:PORT" for IPv6; ADDR a
 * numeric address) into *sa. TD_EINVAL with a message otherwise. */
int http_listen_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len, td_error *e);

/* http_server_start listens on listen (http_listen_parse's form) with
 * threads loops (0: one per CPU, at most 8) and serves every request
 * through fn(ud, ...). Returns 0 with *out, TD_EINVAL for a bad address,
 * or TD_EIO when the port cannot be had (in use, not allowed). */
int http_server_start(const char *listen, unsigned threads, http_handler fn, void *ud,
                      http_server **out, td_error *e);

/* http_server_port is the port listened on (useful with port 0). */
unsigned http_server_port(http_server *s);

/* http_server_metrics appends the request counters in Prometheus text
 * format (tidings_http_requests_total{route,status}). */
int http_server_metrics(http_server *s, buf *out);

/* http_server_stop stops accepting connections, lets requests being
 * handled finish (up to HTTP_DRAIN_MS), closes every connection and frees
 * s. After it returns fn is not called any more. NULL is a no-op. */
void http_server_stop(http_server *s);

#endif
