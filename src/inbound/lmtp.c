/* inbound/lmtp: the LMTP listener (see lmtp.h). */
#include "inbound/lmtp.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* SHA256() is the simplest call for a one-shot digest (see track/token.c
 * for why the low-level API is used at all). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "inbound/act.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- the protocol ------------------------------------------------------------ */

void lmtp_session_init(lmtp_session *s, size_t max_size, lmtp_deliver_fn deliver, void *ud)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->data, BUF_NOCAP);
    s->max_size = max_size;
    s->deliver = deliver;
    s->ud = ud;
}

static void reset_tx(lmtp_session *s)
{
    for (size_t i = 0; i < s->nrcpt; i++)
        free(s->rcpt[i]);
    s->nrcpt = 0;
    s->have_from = false;
    s->from[0] = '\0';
    s->in_data = s->too_big = false;
    buf_reset(&s->data);
}

void lmtp_session_clear(lmtp_session *s)
{
    reset_tx(s);
    buf_free(&s->data);
}

void lmtp_greeting(buf *out)
{
    buf_puts(out, "220 tidings LMTP ready\r\n");
}

/* verb: the line starts with the command word w (any case), followed by
 * the end of the line or a space; *rest is where the arguments start. */
static bool verb(const char *l, size_t n, const char *w, size_t *rest)
{
    size_t k = strlen(w);
    if (n < k || strncasecmp(l, w, k) || (n > k && l[k] != ' '))
        return false;
    *rest = k;
    while (*rest < n && l[*rest] == ' ')
        (*rest)++;
    return true;
}

/* path reads "<addr>" (and ignores parameters after it) into out; "<>"
 * only when null_ok. No control characters, nothing over LMTP_ADDR_MAX. */
static bool path(const char *p, size_t n, char *out, bool null_ok)
{
    while (n && *p == ' ')
        p++, n--;
    if (!n || *p != '<')
        return false;
    const char *end = memchr(p, '>', n);
    if (!end)
        return false;
    size_t len = (size_t)(end - p - 1);
    if (len > LMTP_ADDR_MAX || (!len && !null_ok))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[1 + i];
        if (c < 0x21 || c == 0x7f || c == '<')
            return false;
    }
    if (len && !memchr(p + 1, '@', len))
        return false;
    memcpy(out, p + 1, len);
    out[len] = '\0';
    return true;
}

static void reply(buf *out, const char *s)
{
    buf_puts(out, s);
    buf_puts(out, "\r\n");
}

/* The end of DATA: one answer per recipient, in their order (RFC 2033 4.2). */
static void deliver_all(lmtp_session *s, buf *out)
{
    for (size_t i = 0; i < s->nrcpt; i++) {
        if (s->too_big) {
            buf_printf(out, "552 5.3.4 the message is over %zu bytes\r\n", s->max_size);
            continue;
        }
        char text[400] = "";
        int code = s->deliver(s->ud, s->data.data ? s->data.data : "", s->data.len, s->from,
                              s->rcpt[i], text, sizeof text);
        /* the text is a single line, whatever the callback wrote */
        for (char *p = text; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        buf_printf(out, "%03d %s\r\n", code >= 200 && code <= 599 ? code : 451, text);
    }
    reset_tx(s);
}

bool lmtp_line(lmtp_session *s, const char *l, size_t n, buf *out)
{
    if (s->quit)
        return false;
    if (s->in_data) {
        if (n == 1 && l[0] == '.') {
            deliver_all(s, out);
            return true;
        }
        if (n && l[0] == '.') /* dot-stuffing (RFC 5321 4.5.2) */
            l++, n--;
        if (!s->too_big && s->data.len + n + 2 > s->max_size) {
            s->too_big = true;
            buf_free(&s->data);
            buf_init(&s->data, BUF_NOCAP);
        }
        if (!s->too_big && (buf_append(&s->data, l, n) || buf_append(&s->data, "\r\n", 2)))
            s->too_big = true;
        return true;
    }
    size_t a = 0;
    if (n > LMTP_LINE_MAX) {
        reply(out, "500 5.5.2 line too long");
    } else if (memchr(l, '\0', n)) {
        reply(out, "500 5.5.2 a NUL byte in a command");
    } else if (verb(l, n, "LHLO", &a)) {
        if (a == n) {
            reply(out, "501 5.5.4 LHLO needs a host name");
        } else {
            reset_tx(s);
            s->lhlo = true;
            buf_printf(out, "250-tidings\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
                            "250-8BITMIME\r\n250 SIZE %zu\r\n", s->max_size);
        }
    } else if (verb(l, n, "HELO", &a) || verb(l, n, "EHLO", &a)) {
        reply(out, "500 5.5.1 this is LMTP: say LHLO");
    } else if (n >= 10 && !strncasecmp(l, "MAIL FROM:", 10)) {
        if (!s->lhlo)
            reply(out, "503 5.5.1 LHLO first");
        else if (s->have_from)
            reply(out, "503 5.5.1 a sender is given already");
        else if (!path(l + 10, n - 10, s->from, true))
            reply(out, "501 5.1.7 MAIL FROM:<address> is expected");
        else {
            s->have_from = true;
            reply(out, "250 2.1.0 sender ok");
        }
    } else if (n >= 8 && !strncasecmp(l, "RCPT TO:", 8)) {
        char addr[LMTP_ADDR_MAX + 1];
        if (!s->have_from)
            reply(out, "503 5.5.1 MAIL first");
        else if (s->nrcpt == LMTP_RCPT_MAX)
            reply(out, "452 4.5.3 too many recipients");
        else if (!path(l + 8, n - 8, addr, false))
            reply(out, "501 5.1.3 RCPT TO:<address> is expected");
        else {
            s->rcpt[s->nrcpt++] = xstrdup(addr);
            reply(out, "250 2.1.5 recipient ok");
        }
    } else if (verb(l, n, "DATA", &a)) {
        if (!s->nrcpt)
            reply(out, "503 5.5.1 no valid recipient");
        else if (a != n)
            reply(out, "501 5.5.4 DATA takes no argument");
        else {
            s->in_data = true;
            reply(out, "354 end with <CRLF>.<CRLF>");
        }
    } else if (verb(l, n, "RSET", &a)) {
        reset_tx(s);
        reply(out, "250 2.0.0 reset");
    } else if (verb(l, n, "NOOP", &a)) {
        reply(out, "250 2.0.0 ok");
    } else if (verb(l, n, "VRFY", &a)) {
        reply(out, "252 2.5.0 not verified");
    } else if (verb(l, n, "QUIT", &a)) {
        reply(out, "221 2.0.0 bye");
        s->quit = true;
        return false;
    } else {
        reply(out, "500 5.5.2 unknown command");
    }
    return true;
}

/* ---- the server ------------------------------------------------------------- */

#define LMTP_MESSAGE_MAX (64u << 20) /* as the mailbox poller takes */
#define LMTP_TIMEOUT_S 300           /* RFC 5321 4.5.3.2: minutes, not seconds */

struct lmtp_server {
    char *location;
    int fd;
    unsigned max_conns, nconns;
    int *conn_fd; /* max_conns slots; -1 free */
    bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t gone;
    pthread_t accept_thread;
};

struct conn {
    lmtp_server *srv;
    int fd, slot;
    store *s;
};

/* Takes the message in for one recipient: the reply is sent only after
 * act_message committed (or found it taken already). */
static int deliver(void *ud, const char *data, size_t len, const char *from, const char *rcpt,
                   char *text, size_t cap)
{
    struct conn *c = ud;
    (void)from;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, len, d);
    /* The key names bytes and recipient: the same message sent again (its
     * 250 lost) is a duplicate, the same bytes for another recipient not. */
    char key[2 * SHA256_DIGEST_LENGTH + LMTP_ADDR_MAX + 16];
    int k = snprintf(key, sizeof key, "sha256:");
    for (size_t i = 0; i < sizeof d; i++)
        k += snprintf(key + k, sizeof key - (size_t)k, "%02x", d[i]);
    snprintf(key + k, sizeof key - (size_t)k, "/%s", rcpt);
    act_source src = {.source = "lmtp", .key = key, .rcpt = rcpt};
    act_result r;
    td_error e = {0};
    if (act_message(c->s, data, len, &src, &r, &e)) {
        log_warn("lmtp: %s: %s", rcpt, e.msg);
        snprintf(text, cap, "4.3.0 not taken now (%s); try again later", td_strerror(e.code));
        return 451;
    }
    log_info("lmtp: %s: %s%s (%s)", rcpt, r.kind, r.duplicate ? ", taken before" : "", r.note);
    snprintf(text, cap, "2.0.0 <%s> %s%s", rcpt, r.kind, r.duplicate ? " (taken before)" : "");
    return 250;
}

static bool send_all(int fd, buf *out)
{
    size_t off = 0;
    while (off < out->len) {
        ssize_t w = send(fd, out->data + off, out->len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    buf_reset(out);
    return true;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    lmtp_server *srv = c->srv;
    struct timeval tv = {.tv_sec = LMTP_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    buf out, in;
    buf_init(&out, BUF_NOCAP);
    buf_init(&in, BUF_NOCAP);
    lmtp_session sess;
    lmtp_session_init(&sess, LMTP_MESSAGE_MAX, deliver, c);
    td_error e = {0};
    if (store_open(srv->location, &c->s, &e)) {
        log_error("lmtp: %s", e.msg);
        buf_puts(&out, "421 4.3.0 the database is not available\r\n");
        send_all(c->fd, &out);
        goto done;
    }
    lmtp_greeting(&out);
    bool open = send_all(c->fd, &out), skipping = false;
    char chunk[65536];
    while (open) {
        ssize_t r = recv(c->fd, chunk, sizeof chunk, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        buf_append(&in, chunk, (size_t)r);
        size_t start = 0;
        for (;;) {
            char *nl = memchr(in.data + start, '\n', in.len - start);
            if (!nl)
                break;
            size_t n = (size_t)(nl - (in.data + start));
            if (n && in.data[start + n - 1] == '\r')
                n--;
            if (skipping) /* the rest of an over-long line */
                skipping = false;
            else if (!lmtp_line(&sess, in.data + start, n, &out))
                open = false;
            start = (size_t)(nl - in.data) + 1;
            if (!open)
                break;
        }
        /* keep the unfinished line; one that can never fit is cut short:
         * a command gets its error, message data marks the message too big */
        memmove(in.data, in.data + start, in.len - start);
        in.len -= start;
        size_t cap = sess.in_data ? (size_t)LMTP_MESSAGE_MAX : LMTP_LINE_MAX + 2;
        if (open && in.len > cap) {
            if (sess.in_data)
                sess.too_big = true;
            else
                lmtp_line(&sess, in.data, in.len, &out); /* "line too long" */
            in.len = 0;
            skipping = true;
        }
        if (out.len && !send_all(c->fd, &out))
            break;
    }
done:
    lmtp_session_clear(&sess);
    buf_free(&in);
    buf_free(&out);
    store_close(c->s);
    close(c->fd);
    pthread_mutex_lock(&srv->mu);
    srv->conn_fd[c->slot] = -1;
    srv->nconns--;
    pthread_cond_broadcast(&srv->gone);
    pthread_mutex_unlock(&srv->mu);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    lmtp_server *srv = arg;
    for (;;) {
        int fd = accept(srv->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            pthread_mutex_lock(&srv->mu);
            bool stop = srv->stopping;
            pthread_mutex_unlock(&srv->mu);
            if (stop)
                break;
            log_warn("lmtp: accept: %s", strerror(errno));
            usleep(100 * 1000); /* out of descriptors, say: not a busy loop */
            continue;
        }
        pthread_mutex_lock(&srv->mu);
        int slot = -1;
        for (unsigned i = 0; i < srv->max_conns && slot < 0 && !srv->stopping; i++)
            if (srv->conn_fd[i] < 0)
                slot = (int)i;
        if (slot < 0) {
            pthread_mutex_unlock(&srv->mu);
            static const char busy[] = "421 4.3.2 too many connections, try again later\r\n";
            (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        struct conn *c = xcalloc(1, sizeof *c);
        *c = (struct conn){.srv = srv, .fd = fd, .slot = slot};
        srv->conn_fd[slot] = fd;
        srv->nconns++;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, conn_main, c)) {
            srv->conn_fd[slot] = -1;
            srv->nconns--;
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
        pthread_mutex_unlock(&srv->mu);
    }
    return NULL;
}

/* parse_addr reads "ADDR:PORT" or "[V6]:PORT", numeric only (a name
 * would make the listener depend on DNS at start). */
static int parse_addr(const char *s, struct addrinfo **ai, td_error *e)
{
    char host[128];
    const char *port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return td_err_set(e, TD_EINVAL, "--lmtp '%s': use [V6ADDR]:PORT", s);
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return td_err_set(e, TD_EINVAL, "--lmtp '%s': use ADDR:PORT", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    if (!*port || getaddrinfo(host, port, &hints, ai))
        return td_err_set(e, TD_EINVAL, "--lmtp '%s': not a numeric address and port", s);
    return TD_OK;
}

int lmtp_server_start(const char *location, const char *addr, unsigned max_conns,
                      lmtp_server **out, td_error *e)
{
    struct addrinfo *ai = NULL;
    int rc = parse_addr(addr, &ai, e);
    if (rc)
        return rc;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        freeaddrinfo(ai);
        return td_err_set(e, TD_EINTERNAL, "lmtp: socket: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        int err = errno;
        close(fd);
        freeaddrinfo(ai);
        return td_err_set(e, TD_EINVAL, "lmtp: cannot listen on %s: %s", addr, strerror(err));
    }
    freeaddrinfo(ai);
    lmtp_server *srv = xcalloc(1, sizeof *srv);
    srv->location = xstrdup(location);
    srv->fd = fd;
    srv->max_conns = max_conns ? max_conns : 16;
    srv->conn_fd = xcalloc(srv->max_conns, sizeof *srv->conn_fd);
    for (unsigned i = 0; i < srv->max_conns; i++)
        srv->conn_fd[i] = -1;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->gone, NULL);
    if (pthread_create(&srv->accept_thread, NULL, accept_main, srv)) {
        close(fd);
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->gone);
        free(srv->conn_fd);
        free(srv->location);
        free(srv);
        return td_err_set(e, TD_EINTERNAL, "lmtp: cannot start a thread");
    }
    *out = srv;
    return TD_OK;
}

void lmtp_server_stop(lmtp_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->mu);
    shutdown(srv->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(srv->accept_thread, NULL);
    close(srv->fd);
    /* Connections end at their next read: a message not answered yet is
     * the mail server's to send again. */
    pthread_mutex_lock(&srv->mu);
    for (unsigned i = 0; i < srv->max_conns; i++)
        if (srv->conn_fd[i] >= 0)
            shutdown(srv->conn_fd[i], SHUT_RD);
    while (srv->nconns)
        pthread_cond_wait(&srv->gone, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->gone);
    free(srv->conn_fd);
    free(srv->location);
    free(srv);
}
