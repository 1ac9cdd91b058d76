/* server: the HTTP server on libmicrohttpd (see server.h).
 *
 * The access handler is called several times per request. It answers on
 * its second call at the earliest: queueing a response on the first call
 * (before MHD has looked for a body) makes MHD close the connection after
 * it, which cost five sixths of the rate under keep-alive (deps.md). */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* The statuses counted one by one in the metrics; others go to "other". */
static const int counted[] = {200, 201, 204, 302, 303, 400, 401, 403, 404, 405, 409, 413, 422,
                              429, 500, 503};
#define NCOUNTED (sizeof counted / sizeof counted[0])

struct http_server {
    struct MHD_Daemon *d;
    http_handler fn;
    void *ud;
    unsigned port;
    atomic_int active; /* requests between their first call and completion */
    atomic_uint_fast64_t count[ROUTE_COUNT][NCOUNTED + 1];
};

/* One request's state, from the first call of the access handler to the
 * completion notice. */
struct conn_req {
    bool started;
    bool too_big;
    buf body;
};

const char *http_form_get(const http_req *r, const char *name)
{
    for (size_t i = 0; i < r->nform; i++)
        if (!strcmp(r->form[i].name, name))
            return r->form[i].value;
    return NULL;
}

int http_listen_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len, td_error *e)
{
    memset(sa, 0, sizeof *sa);
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon = strrchr(s, ':');
    size_t hl;
    const char *h = s;
    if (!colon)
        goto bad;
    hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        h = s + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof host)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port < 0 || port > 65535)
        goto bad;
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return TD_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return TD_OK;
    }
bad:
    return td_err_set(e, TD_EINVAL,
                      "'%.100s' is not ADDRESS:PORT with a numeric address (e.g. 127.0.0.1:8080, "
                      "[::1]:8080, 0.0.0.0:80)",
                      s);
}

static void count(http_server *s, route_id r, int status)
{
    size_t i = 0;
    while (i < NCOUNTED && counted[i] != status)
        i++;
    atomic_fetch_add_explicit(&s->count[r][i], 1, memory_order_relaxed);
}

const char *http_header(const http_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *http_query(const http_req *r, const char *name)
{
    if (!r->conn)
        return NULL;
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v && MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                            NULL, NULL) == MHD_YES)
        v = "";
    return v;
}

static void peer_of(struct MHD_Connection *c, char *out, size_t n)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, http_resp *r, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body.len, r->body.data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->ctype ? r->ctype : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->no_cache) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store, no-cache, must-revalidate, max-age=0");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, "0");
    }
    if (!allow)
        allow = r->allow;
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (r->set_cookie)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
    if (r->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result simple(http_server *s, struct MHD_Connection *c, route_id route,
                              int status, const char *text, const char *allow)
{
    http_resp r = {.status = status};
    buf_init(&r.body, HTTP_RESP_MAX);
    buf_puts(&r.body, text);
    count(s, route, status);
    enum MHD_Result rc = send_resp(c, &r, allow);
    buf_free(&r.body);
    return rc;
}

/* Form fields come from MHD's post processor, which reads both
 * application/x-www-form-urlencoded and multipart/form-data. */
static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    http_req *r = cls;
    http_field *f = NULL;
    for (size_t i = 0; i < r->nform && !f; i++)
        if (!strcmp(r->form[i].name, key))
            f = &r->form[i];
    if (!f) {
        if (r->nform == HTTP_FORM_FIELDS || strlen(key) >= sizeof f->name)
            return MHD_YES; /* more fields than any form here has: ignored */
        f = &r->form[r->nform++];
        memset(f, 0, sizeof *f);
        memcpy(f->name, key, strlen(key) + 1);
    }
    /* A value comes in pieces at offsets; keep what fits. */
    if (off != f->value_len)
        return MHD_YES;
    size_t room = HTTP_FORM_VALUE_MAX - f->value_len;
    if (size > room) {
        f->truncated = true;
        size = room;
    }
    memcpy(f->value + f->value_len, data, size);
    f->value_len += size;
    f->value[f->value_len] = '\0';
    return MHD_YES;
}

static void parse_form(struct MHD_Connection *c, http_req *r)
{
    if (!r->content_type || !r->body_len)
        return;
    if (strncasecmp(r->content_type, "application/x-www-form-urlencoded", 33) &&
        strncasecmp(r->content_type, "multipart/form-data", 19))
        return;
    struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 4096, form_field, r);
    if (!pp)
        return;
    MHD_post_process(pp, r->body, r->body_len);
    MHD_destroy_post_processor(pp);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    http_server *s = cls;
    struct conn_req *cr = *con_cls;
    if (!cr) {
        cr = xcalloc(1, sizeof *cr);
        size_t max = router_body_max(url);
        buf_init(&cr->body, max);
        *con_cls = cr;
        atomic_fetch_add(&s->active, 1);
        /* Refuse a body that announces itself too big before reading it:
         * MHD then closes the connection instead of draining it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > max) {
                cr->too_big = true;
                return simple(s, c, ROUTE_NONE, 413, "request body too large\n", NULL);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cr->too_big && buf_append(&cr->body, upload_data, *upload_data_size)) {
            cr->too_big = true;
            /* A chunked body past the cap: answer now if MHD lets us,
             * else drop the connection rather than read on. */
            if (simple(s, c, ROUTE_NONE, 413, "request body too large\n", NULL) != MHD_YES)
                return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cr->too_big || cr->started)
        return MHD_YES;
    cr->started = true;

    http_req req = {.method = method, .conn = c};
    peer_of(c, req.peer, sizeof req.peer);
    int st = router_match(method, url, strlen(url), &req.m);
    if (st == 404)
        return simple(s, c, ROUTE_NONE, 404, "not found\n", NULL);
    if (st == 405)
        return simple(s, c, req.m.route, 405, "method not allowed\n", req.m.allow);
    req.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    req.body = cr->body.data;
    req.body_len = cr->body.len;
    if (!strcmp(method, "POST"))
        parse_form(c, &req);
    http_resp resp = {.status = 500};
    buf_init(&resp.body, HTTP_RESP_MAX);
    s->fn(s->ud, &req, &resp);
    count(s, req.m.route, resp.status);
    enum MHD_Result rc = send_resp(c, &resp, NULL);
    buf_free(&resp.body);
    free(resp.location);
    free(resp.set_cookie);
    return rc;
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    http_server *s = cls;
    struct conn_req *cr = *con_cls;
    if (!cr)
        return;
    buf_free(&cr->body);
    free(cr);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* MHD's own unescaping turns %00 into a NUL, and the path a handler sees
 * would end there: router_unescape keeps it as text, which no route takes. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *uri)
{
    (void)cls, (void)c;
    return router_unescape(uri);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("http: %s", line);
}

int http_server_start(const char *listen, unsigned threads, http_handler fn, void *ud,
                      http_server **out, td_error *e)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t sl;
    int rc = http_listen_parse(listen, &sa, &sl, e);
    if (rc)
        return rc;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
    }
    http_server *s = xcalloc(1, sizeof *s);
    s->fn = fn;
    s->ud = ud;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_LIMIT, 10000u,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return td_err_set(e, TD_EIO, "cannot listen on %s (in use, or not allowed)", listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    *out = s;
    return TD_OK;
}

unsigned http_server_port(http_server *s)
{
    return s->port;
}

int http_server_metrics(http_server *s, buf *out)
{
    int rc = buf_puts(out, "# HELP tidings_http_requests_total HTTP requests answered, by route "
                           "and status.\n# TYPE tidings_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT && !rc; r++)
        for (size_t i = 0; i <= NCOUNTED && !rc; i++) {
            uint64_t n = atomic_load_explicit(&s->count[r][i], memory_order_relaxed);
            if (!n)
                continue;
            char status[16];
            if (i < NCOUNTED)
                snprintf(status, sizeof status, "%d", counted[i]);
            else
                snprintf(status, sizeof status, "other");
            rc = buf_printf(out, "tidings_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                            router_name((route_id)r), status, (unsigned long long)n);
        }
    return rc;
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    /* Stop accepting, then give the requests being handled time to be
     * answered before the connections are closed. */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    for (int waited = 0; atomic_load(&s->active) > 0 && waited < HTTP_DRAIN_MS; waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    free(s);
}
