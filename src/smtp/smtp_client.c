/* smtp_client: the non-blocking ESMTP state machine (see smtp_client.h and
 * docs/internals/smtp.md).
 *
 * Shape: an output buffer, an input buffer feeding the reply parser, and a
 * queue of the replies we expect (one entry per command written, so the same
 * code serves pipelined and one-at-a-time sessions). Each reply pops one
 * expectation and moves the machine on; a connection failure is one
 * function, conn_fail, that settles any message in flight. */
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define IN_SIZE 16384
#define BODY_CHUNK 65536 /* input bytes of the message turned into output at a time */

/* What the next reply answers. */
enum expect {
    X_GREETING,
    X_EHLO,
    X_HELO,
    X_STARTTLS,
    X_AUTH_PLAIN,
    X_AUTH_LOGIN_USER,
    X_AUTH_LOGIN_PASS,
    X_AUTH_DONE,
    X_MAIL,
    X_RCPT,
    X_DATA,
    X_DOT,
    X_DOT_IGNORE,
    X_RSET,
    X_QUIT,
};

static const int expect_stage[] = {
    [X_GREETING] = SMTP_STAGE_GREETING,
    [X_EHLO] = SMTP_STAGE_EHLO,
    [X_HELO] = SMTP_STAGE_EHLO,
    [X_STARTTLS] = SMTP_STAGE_TLS,
    [X_AUTH_PLAIN] = SMTP_STAGE_AUTH,
    [X_AUTH_LOGIN_USER] = SMTP_STAGE_AUTH,
    [X_AUTH_LOGIN_PASS] = SMTP_STAGE_AUTH,
    [X_AUTH_DONE] = SMTP_STAGE_AUTH,
    [X_MAIL] = SMTP_STAGE_MAIL,
    [X_RCPT] = SMTP_STAGE_RCPT,
    [X_DATA] = SMTP_STAGE_DATA,
    [X_DOT] = SMTP_STAGE_DOT,
    [X_DOT_IGNORE] = SMTP_STAGE_DOT,
    [X_RSET] = SMTP_STAGE_RSET,
    [X_QUIT] = SMTP_STAGE_QUIT,
};

/* What a message needs of the session, found once when it is given: SMTPUTF8
 * and 8BITMIME, and whether it can go out as it is (msg_needs). */
struct needs {
    bool utf8, eightbit, crlf;
};

struct smtp_conn {
    /* configuration */
    char *host;
    unsigned port;
    int tls_mode;
    bool verify;
    char *user, *pass;
    char *helo;
    char *ca_file;
    unsigned tmo[SMTP_STAGE_COUNT];

    /* transport */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    bool connecting, handshaking, ssl_want_write, ssl_want_read;
    bool ready_once, quitting, closed;
    int stage;
    int64_t deadline;
    buf out;
    size_t out_off;
    char in[IN_SIZE];
    size_t in_off, in_len;
    smtp_rparser rp;
    int *exp;
    size_t exp_head, exp_n, exp_cap;
    smtp_caps caps;
    td_error err;

    /* the message in flight */
    bool in_tx;
    smtp_msg m;
    bool pipelined, mail_failed, body, body_done, dot_sent, need_utf8, eightbit;
    size_t rcpt_sent, rcpt_replied, accepted;
    size_t data_pos;
    bool bol, pending_cr;
    bool crlf; /* the message's line ends are all CRLF (smtp_data_crlf_only) */
    smtp_reply mail_reply;
    smtp_result res;
    bool res_ready;

    /* the next message, queued behind the final dot (smtp_conn_queue): its
     * envelope is on the wire, its replies wait in `in` until the result
     * above is taken; then it becomes the message in flight, its body held
     * back (gated) until smtp_conn_release */
    bool has_next, gated, go_pending;
    struct needs next_needs; /* msg_needs of next, found at queueing */
    bool next_env; /* its envelope waits in next_out for the final dot */
    buf next_out;
    smtp_msg next;
};

/* ---- small helpers ---- */

int64_t smtp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *smtp_stage_name(int stage)
{
    static const char *names[] = {"connect", "greeting", "EHLO",       "TLS",       "AUTH", "MAIL",
                                  "RCPT",    "DATA",     "data block", "final dot", "RSET", "QUIT"};
    return stage >= 0 && stage < SMTP_STAGE_COUNT ? names[stage] : "?";
}

static const unsigned default_tmo[SMTP_STAGE_COUNT] = {
    [SMTP_STAGE_CONNECT] = 30000, [SMTP_STAGE_GREETING] = 300000, [SMTP_STAGE_EHLO] = 300000,
    [SMTP_STAGE_TLS] = 300000,    [SMTP_STAGE_AUTH] = 300000,     [SMTP_STAGE_MAIL] = 300000,
    [SMTP_STAGE_RCPT] = 300000,   [SMTP_STAGE_DATA] = 120000,     [SMTP_STAGE_BLOCK] = 180000,
    [SMTP_STAGE_DOT] = 600000,    [SMTP_STAGE_RSET] = 300000,     [SMTP_STAGE_QUIT] = 30000,
};

void smtp_opts_init(smtp_opts *o)
{
    memset(o, 0, sizeof *o);
    memcpy(o->timeout_ms, default_tmo, sizeof default_tmo);
}

void smtp_result_clear(smtp_result *r)
{
    for (size_t i = 0; i < r->nrcpt; i++)
        smtp_reply_clear(&r->rcpt[i].reply);
    free(r->rcpt);
    smtp_reply_clear(&r->reply);
    memset(r, 0, sizeof *r);
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = '\0';
    free(s);
}

static void set_stage(smtp_conn *c, int stage)
{
    c->stage = stage;
    c->deadline = smtp_now_ms() + c->tmo[stage];
}

static void push_expect(smtp_conn *c, int x)
{
    if (c->exp_n == c->exp_cap) {
        size_t ncap = c->exp_cap ? c->exp_cap * 2 : 8;
        int *n = xmalloc(ncap * sizeof *n);
        for (size_t i = 0; i < c->exp_n; i++)
            n[i] = c->exp[(c->exp_head + i) % c->exp_cap];
        free(c->exp);
        c->exp = n;
        c->exp_cap = ncap;
        c->exp_head = 0;
    }
    c->exp[(c->exp_head + c->exp_n) % c->exp_cap] = x;
    if (c->exp_n++ == 0)
        set_stage(c, expect_stage[x]);
}

static int pop_expect(smtp_conn *c)
{
    int x = c->exp[c->exp_head];
    c->exp_head = (c->exp_head + 1) % c->exp_cap;
    c->exp_n--;
    if (c->exp_n)
        set_stage(c, expect_stage[c->exp[c->exp_head]]);
    else
        c->deadline = -1; /* until the next command or data sets one */
    return x;
}

/* queue a command (without its CRLF) and the reply it expects */
static void command(smtp_conn *c, int expect, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void command(smtp_conn *c, int expect, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&c->out, fmt, ap);
    va_end(ap);
    buf_append(&c->out, "\r\n", 2);
    push_expect(c, expect);
}

static bool out_pending(const smtp_conn *c)
{
    return c->out_off < c->out.len;
}

/* ---- failure ---- */

static void close_socket(smtp_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->closed = true;
    c->connecting = c->handshaking = false;
    c->deadline = -1;
    c->exp_n = 0;
    buf_reset(&c->out);
    c->out_off = 0;
    c->in_len = c->in_off = 0;
}

static void summarise(smtp_result *r)
{
    bool all_ok = true, any_temp = false, any_unknown = false;
    for (size_t i = 0; i < r->nrcpt; i++) {
        int s = r->rcpt[i].status;
        all_ok &= s == SMTP_OK;
        any_temp |= s == SMTP_TEMP;
        any_unknown |= s == SMTP_UNKNOWN;
    }
    r->status = any_unknown ? SMTP_UNKNOWN : all_ok ? SMTP_OK : any_temp ? SMTP_TEMP : SMTP_PERM;
}

static void set_rcpt(smtp_conn *c, size_t i, int status, const smtp_reply *r)
{
    smtp_reply_clear(&c->res.rcpt[i].reply);
    smtp_reply_copy(&c->res.rcpt[i].reply, r);
    c->res.rcpt[i].status = status;
}

/* The transaction is over (its recipients all settled): publish the result. */
static void tx_done(smtp_conn *c, const smtp_reply *ending)
{
    smtp_reply_clear(&c->res.reply);
    smtp_reply_copy(&c->res.reply, ending);
    summarise(&c->res);
    c->res_ready = true;
    c->in_tx = false;
    c->body = false;
    smtp_reply_clear(&c->mail_reply);
}

/* The connection failed: close it, settle the message in flight (recipients
 * not yet settled: unknown when the final dot was written, temp otherwise),
 * and record why. */
static void conn_fail(smtp_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(smtp_conn *c, int code, const char *fmt, ...)
{
    if (c->closed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof c->err.msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    td_err_set(&c->err, code, "%s:%u: %s", c->host, c->port, msg);
    if (c->in_tx) {
        smtp_reply r;
        bool maybe = c->dot_sent;
        smtp_reply_set_local(&r, "4.4.2", "%s%s", msg,
                             maybe ? " (after the end of data was sent: the message may "
                                     "have been delivered)"
                                   : "");
        for (size_t i = 0; i < c->res.nrcpt; i++) {
            int s = c->res.rcpt[i].status;
            /* -1: no reply yet; SMTP_OK before tx_done: RCPT accepted only */
            if (c->mail_failed)
                set_rcpt(c, i, smtp_status_of(c->mail_reply.code), &c->mail_reply);
            else if (s == -1 || s == SMTP_OK)
                set_rcpt(c, i, maybe && s == SMTP_OK ? SMTP_UNKNOWN : SMTP_TEMP, &r);
        }
        tx_done(c, &r);
        smtp_reply_clear(&r);
    }
    close_socket(c);
}

/* A reply in a message for people: "550 5.1.1 text". */
#define REPLY_FMT "%d%s%s %s"
#define REPLY_ARGS(r) (r)->code, (r)->enh[0] ? " " : "", (r)->enh, (r)->text

static int reply_err_code(const smtp_reply *r)
{
    return smtp_status_of(r->code) == SMTP_PERM ? TD_EPERM : TD_ETEMP;
}

/* ---- TLS ---- */

/* A socket BIO that writes with MSG_NOSIGNAL: a peer that resets the
 * connection must give EPIPE, not kill the process with SIGPIPE. */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int nosig_write(BIO *b, const char *data, int n)
{
    int fd = BIO_get_fd(b, NULL);
    ssize_t w = send(fd, data, (size_t)n, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)w;
}

static int nosig_read(BIO *b, char *data, int n)
{
    int fd = BIO_get_fd(b, NULL);
    ssize_t r = recv(fd, data, (size_t)n, 0);
    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)r;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_C_SET_FD:
        BIO_set_data(b, (void *)(intptr_t) * (int *)ptr);
        BIO_set_init(b, 1);
        return 1;
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = (int)(intptr_t)BIO_get_data(b);
        return (long)(intptr_t)BIO_get_data(b);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static void nosig_make(void)
{
    /* Built once; the process keeps it (a few bytes, never freed). */
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "tidings socket");
    BIO_meth_set_write(m, nosig_write);
    BIO_meth_set_read(m, nosig_read);
    BIO_meth_set_ctrl(m, nosig_ctrl);
    nosig_method = m;
}

static BIO *nosig_bio(int fd)
{
    pthread_once(&nosig_once, nosig_make);
    BIO *b = BIO_new(nosig_method);
    BIO_ctrl(b, BIO_C_SET_FD, 0, &fd);
    return b;
}

static void ssl_errors(char *out, size_t n)
{
    unsigned long e;
    out[0] = '\0';
    while ((e = ERR_get_error()) != 0)
        ERR_error_string_n(e, out, n); /* keep the last, the most specific */
}

static bool host_is_ip(const char *h)
{
    struct in6_addr a;
    return inet_pton(AF_INET, h, &a) == 1 || inet_pton(AF_INET6, h, &a) == 1;
}

static int tls_start(smtp_conn *c)
{
    if (!c->ctx) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx)
            return -1;
        if (c->verify) {
            SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
            int ok = c->ca_file ? SSL_CTX_load_verify_locations(c->ctx, c->ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(c->ctx);
            if (ok != 1)
                return -1;
        } else {
            SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
        }
        SSL_CTX_set_mode(c->ctx,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl)
        return -1;
    BIO *b = nosig_bio(c->fd);
    SSL_set_bio(c->ssl, b, b);
    if (!host_is_ip(c->host))
        SSL_set_tlsext_host_name(c->ssl, c->host);
    if (c->verify) {
        if (host_is_ip(c->host))
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host);
        else
            SSL_set1_host(c->ssl, c->host);
    }
    c->handshaking = true;
    set_stage(c, SMTP_STAGE_TLS);
    return 0;
}

static void after_handshake(smtp_conn *c);

static void tls_handshake(smtp_conn *c)
{
    c->ssl_want_read = c->ssl_want_write = false;
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->handshaking = false;
        after_handshake(c);
        return;
    }
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        c->ssl_want_read = true;
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        c->ssl_want_write = true;
        return;
    }
    char detail[256];
    ssl_errors(detail, sizeof detail);
    long vr = SSL_get_verify_result(c->ssl);
    if (c->verify && vr != X509_V_OK)
        conn_fail(c, TD_ETEMP, "TLS handshake failed: certificate not trusted: %s",
                  X509_verify_cert_error_string(vr));
    else if (detail[0])
        conn_fail(c, TD_ETEMP, "TLS handshake failed: %s", detail);
    else
        conn_fail(c, TD_ETEMP, "TLS handshake failed: the server closed the connection");
}

/* ---- I/O ---- */

/* Writes what can be written; returns bytes written (0 when it would block),
 * -1 after conn_fail. */
static ssize_t do_write(smtp_conn *c)
{
    size_t n = c->out.len - c->out_off;
    const char *p = c->out.data + c->out_off;
    ssize_t w;
    c->ssl_want_write = false;
    if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_WRITE) {
                c->ssl_want_write = true;
                return 0;
            }
            if (err == SSL_ERROR_WANT_READ)
                return 0;
            char detail[256];
            ssl_errors(detail, sizeof detail);
            conn_fail(c, TD_ETEMP, "the connection was lost while sending (%s)",
                      detail[0] ? detail : strerror(errno ? errno : EPIPE));
            return -1;
        }
        w = r;
    } else {
        w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            conn_fail(c, TD_ETEMP, "the connection was lost while sending (%s)", strerror(errno));
            return -1;
        }
    }
    c->out_off += (size_t)w;
    if (c->out_off == c->out.len) {
        buf_reset(&c->out);
        c->out_off = 0;
    }
    return w;
}

/* Reads into c->in when it is empty; returns bytes read, 0 when it would
 * block, -1 after conn_fail (including the peer closing). */
static ssize_t do_read(smtp_conn *c)
{
    if (c->in_off < c->in_len)
        return 0;
    c->in_off = c->in_len = 0;
    ssize_t r;
    c->ssl_want_read = false;
    if (c->ssl) {
        ERR_clear_error();
        errno = 0; /* SSL_ERROR_SYSCALL with errno 0 is a plain EOF */
        int k = SSL_read(c->ssl, c->in, sizeof c->in);
        if (k <= 0) {
            int err = SSL_get_error(c->ssl, k);
            if (err == SSL_ERROR_WANT_READ)
                return 0;
            if (err == SSL_ERROR_WANT_WRITE) {
                c->ssl_want_write = true;
                return 0;
            }
            r = err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0) ? 0 : -1;
            goto closed;
        }
        r = k;
    } else {
        r = recv(c->fd, c->in, sizeof c->in, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (r <= 0)
            goto closed;
    }
    c->in_len = (size_t)r;
    return r;
closed:
    if (c->quitting) {
        /* the server closed after (or instead of) its 221: a clean end */
        td_err_clear(&c->err);
        close_socket(c);
        return -1;
    }
    if (r == 0)
        conn_fail(c, TD_ETEMP, "the server closed the connection%s%s",
                  c->exp_n ? " while we waited for the " : "",
                  c->exp_n ? smtp_stage_name(c->stage) : "");
    else
        conn_fail(c, TD_ETEMP, "reading from the server failed (%s)",
                  strerror(errno ? errno : ECONNRESET));
    return -1;
}

/* ---- the message body: CRLF line ends and dot-stuffing ---- */

static void flush_next_envelope(smtp_conn *c);

/* line_dot returns the first p in [from, to) (from >= 1) where a line
 * starts with '.', or to. */
static size_t line_dot(const char *d, size_t from, size_t to)
{
    size_t p = from;
#if defined(__SSE2__)
    const __m128i vlf = _mm_set1_epi8('\n'), vdot = _mm_set1_epi8('.');
    for (; p + 16 <= to; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + p));
        __m128i prev = _mm_loadu_si128((const __m128i *)(const void *)(d + p - 1));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(v, vdot), _mm_cmpeq_epi8(prev, vlf)));
        if (m)
            return p + (size_t)__builtin_ctz(m);
    }
#endif
    for (; p < to; p++)
        if (d[p] == '.' && d[p - 1] == '\n')
            return p;
    return to;
}

/* Turns up to BODY_CHUNK bytes of the message into wire form in c->out;
 * appends the final ".\r\n" after the last (and a queued message's
 * envelope after that). */
static void body_fill(smtp_conn *c)
{
    const char *d = c->m.data;
    size_t end = c->m.len;
    size_t lim = c->data_pos + BODY_CHUNK < end ? c->data_pos + BODY_CHUNK : end;
    buf *o = &c->out;
    size_t i = c->data_pos;
    /* Line ends all CRLF already (found when it was given, as for every
     * message msg_build makes): copied as it is between the lines that
     * start with '.', whose dot is doubled. */
    while (c->crlf && i < lim) {
        if (c->bol && d[i] == '.')
            buf_putc(o, '.');
        size_t k = line_dot(d, i + 1, lim);
        buf_append(o, d + i, k - i);
        c->bol = d[k - 1] == '\n';
        i = k;
    }
    while (i < lim) {
        if (c->pending_cr) {
            c->pending_cr = false;
            buf_append(o, "\r\n", 2);
            c->bol = true;
            if (d[i] == '\n') {
                i++;
                continue;
            }
        }
        /* fastest path: a run of lines already in wire form (CRLF ends,
         * no bare CR, none starting with '.') goes out in one copy, as a
         * built message almost always is */
        size_t run = i;
        bool bol = c->bol;
        for (;;) {
            const char *lf = memchr(d + run, '\n', lim - run);
            if (!lf)
                break;
            size_t p = (size_t)(lf - d);
            if (p == run || d[p - 1] != '\r' || (bol && d[run] == '.') ||
                memchr(d + run, '\r', p - 1 - run))
                break;
            run = p + 1;
            bol = true;
        }
        if (run > i) {
            buf_append(o, d + i, run - i);
            c->bol = true;
            i = run;
            continue;
        }
        /* fast path: a whole line with no bare CR inside */
        const char *nl = memchr(d + i, '\n', lim - i);
        if (nl) {
            size_t ll = (size_t)(nl - (d + i));
            size_t body = ll && d[i + ll - 1] == '\r' ? ll - 1 : ll;
            if (!memchr(d + i, '\r', body)) {
                if (c->bol && body && d[i] == '.')
                    buf_putc(o, '.');
                buf_append(o, d + i, body);
                buf_append(o, "\r\n", 2);
                c->bol = true;
                i += ll + 1;
                continue;
            }
        }
        /* slow path, one byte */
        char ch = d[i++];
        if (ch == '\r') {
            c->pending_cr = true;
        } else if (ch == '\n') {
            buf_append(o, "\r\n", 2);
            c->bol = true;
        } else {
            if (c->bol && ch == '.')
                buf_putc(o, '.');
            buf_putc(o, ch);
            c->bol = false;
        }
    }
    c->data_pos = i;
    if (i == end) {
        if (c->pending_cr) {
            buf_append(o, "\r\n", 2);
            c->pending_cr = false;
            c->bol = true;
        }
        if (!c->bol)
            buf_append(o, "\r\n", 2);
        buf_append(o, ".\r\n", 3);
        c->body_done = true;
        push_expect(c, X_DOT);
        flush_next_envelope(c);
    }
    /* the final-dot timeout starts once the dot is out (smtp_conn_step) */
    set_stage(c, SMTP_STAGE_BLOCK);
}

/* ---- the session ---- */

static void b64(buf *o, const char *s, size_t n)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    unsigned char *t = xmalloc(need);
    int k = EVP_EncodeBlock(t, (const unsigned char *)s, (int)n);
    buf_append(o, t, (size_t)k);
    OPENSSL_cleanse(t, need);
    free(t);
}

static void become_ready(smtp_conn *c)
{
    c->ready_once = true;
    c->deadline = -1;
}

static void start_auth(smtp_conn *c)
{
    if (!c->caps.tls && c->tls_mode != SMTP_TLS_NONE) {
        conn_fail(c, TD_EPERM,
                  "the server offers no STARTTLS, and the password is not sent "
                  "in clear text (add ?tls=none to the relay URL to allow it)");
        return;
    }
    if (c->caps.auth_plain) {
        size_t ul = strlen(c->user), pl = strlen(c->pass);
        size_t n = ul + pl + 2;
        char *t = xmalloc(n);
        t[0] = '\0';
        memcpy(t + 1, c->user, ul);
        t[1 + ul] = '\0';
        memcpy(t + 2 + ul, c->pass, pl);
        buf_puts(&c->out, "AUTH PLAIN ");
        b64(&c->out, t, n);
        buf_append(&c->out, "\r\n", 2);
        OPENSSL_cleanse(t, n);
        free(t);
        push_expect(c, X_AUTH_PLAIN);
    } else if (c->caps.auth_login) {
        command(c, X_AUTH_LOGIN_USER, "AUTH LOGIN");
    } else {
        conn_fail(c, TD_EPERM,
                  "the relay URL has credentials but the server offers no "
                  "AUTH PLAIN or LOGIN");
    }
}

/* After EHLO (or HELO): STARTTLS, then AUTH, then READY. */
static void after_ehlo(smtp_conn *c, bool starttls_refused)
{
    if (!c->caps.tls &&
        (c->tls_mode == SMTP_TLS_OPPORTUNISTIC || c->tls_mode == SMTP_TLS_REQUIRED)) {
        if (c->caps.starttls && !starttls_refused) {
            command(c, X_STARTTLS, "STARTTLS");
            return;
        }
        if (c->tls_mode == SMTP_TLS_REQUIRED) {
            conn_fail(c, TD_EPERM,
                      "the relay requires TLS (tls=required) but the server "
                      "does not offer STARTTLS");
            return;
        }
    }
    if (c->user && !c->caps.authenticated) {
        start_auth(c);
        return;
    }
    become_ready(c);
}

static void after_handshake(smtp_conn *c)
{
    c->caps.tls = true;
    c->caps.tls_verified = c->verify && SSL_get_verify_result(c->ssl) == X509_V_OK;
    if (c->tls_mode == SMTP_TLS_IMPLICIT)
        push_expect(c, X_GREETING);
    else
        command(c, X_EHLO, "EHLO %s", c->helo);
}

static void parse_caps(smtp_conn *c, const smtp_reply *r)
{
    bool tls = c->caps.tls, verified = c->caps.tls_verified;
    memset(&c->caps, 0, sizeof c->caps);
    c->caps.tls = tls;
    c->caps.tls_verified = verified;
    c->caps.esmtp = true;
    const char *s = r->lines;
    bool first = true;
    while (*s) {
        size_t n = strcspn(s, "\n");
        if (!first) {
            char kw[32];
            size_t k = strcspn(s, " =\n");
            if (k < sizeof kw) {
                memcpy(kw, s, k);
                kw[k] = '\0';
                size_t astart = k < n ? k + 1 : n;
                const char *arg = s + astart;
                size_t alen = n - astart;
                if (!strcasecmp(kw, "PIPELINING"))
                    c->caps.pipelining = true;
                else if (!strcasecmp(kw, "8BITMIME"))
                    c->caps.eightbitmime = true;
                else if (!strcasecmp(kw, "SMTPUTF8"))
                    c->caps.smtputf8 = true;
                else if (!strcasecmp(kw, "ENHANCEDSTATUSCODES"))
                    c->caps.enhanced = true;
                else if (!strcasecmp(kw, "STARTTLS"))
                    c->caps.starttls = true;
                else if (!strcasecmp(kw, "SIZE")) {
                    c->caps.size = true;
                    uint64_t v = 0;
                    for (size_t i = 0; i < alen && arg[i] >= '0' && arg[i] <= '9'; i++)
                        v = v > UINT64_MAX / 10 - 10 ? UINT64_MAX
                                                     : v * 10 + (uint64_t)(arg[i] - '0');
                    c->caps.size_max = v;
                } else if (!strcasecmp(kw, "AUTH")) {
                    size_t i = 0;
                    while (i < alen) {
                        while (i < alen && arg[i] == ' ')
                            i++;
                        size_t w = i;
                        while (i < alen && arg[i] != ' ')
                            i++;
                        if (i - w == 5 && !strncasecmp(arg + w, "PLAIN", 5))
                            c->caps.auth_plain = true;
                        if (i - w == 5 && !strncasecmp(arg + w, "LOGIN", 5))
                            c->caps.auth_login = true;
                    }
                }
            }
        }
        first = false;
        s += n + (s[n] == '\n');
    }
}

static void send_rcpt(smtp_conn *c)
{
    command(c, X_RCPT, "RCPT TO:<%s>", c->m.rcpt[c->rcpt_sent]);
    c->rcpt_sent++;
}

/* Ends a transaction that failed before the end of data: settles the
 * recipients that have no final word with r (status: -1 to take it from r's
 * code, where a 2xx/3xx ending counts as temp), publishes the result, and
 * (when anything was said on the wire) ends the empty message and resets. */
static void tx_abort(smtp_conn *c, const smtp_reply *r, int status, bool send_dot, bool rset)
{
    if (status < 0) {
        status = smtp_status_of(r->code);
        if (status == SMTP_OK)
            status = SMTP_TEMP;
    }
    for (size_t i = 0; i < c->res.nrcpt; i++) {
        int s = c->res.rcpt[i].status;
        if (s == -1 || s == SMTP_OK)
            set_rcpt(c, i, status, r);
    }
    tx_done(c, r);
    if (send_dot) {
        buf_append(&c->out, ".\r\n", 3);
        push_expect(c, X_DOT_IGNORE);
    }
    if (rset)
        command(c, X_RSET, "RSET");
    flush_next_envelope(c);
}

static void on_reply(smtp_conn *c, smtp_reply *r)
{
    if (c->exp_n == 0) {
        conn_fail(c, TD_ETEMP, "the server sent a reply nobody asked for: " REPLY_FMT,
                  REPLY_ARGS(r));
        return;
    }
    int x = pop_expect(c);
    int st = smtp_status_of(r->code);
    switch (x) {
    case X_GREETING:
        if (r->code / 100 != 2) {
            conn_fail(c, reply_err_code(r), "greeting: " REPLY_FMT, REPLY_ARGS(r));
            return;
        }
        command(c, X_EHLO, "EHLO %s", c->helo);
        return;
    case X_EHLO:
        if (r->code / 100 == 2) {
            parse_caps(c, r);
            after_ehlo(c, false);
        } else if (st == SMTP_PERM && !c->caps.tls) {
            command(c, X_HELO, "HELO %s", c->helo);
        } else {
            conn_fail(c, reply_err_code(r), "EHLO: " REPLY_FMT, REPLY_ARGS(r));
        }
        return;
    case X_HELO:
        if (r->code / 100 != 2) {
            conn_fail(c, reply_err_code(r), "HELO: " REPLY_FMT, REPLY_ARGS(r));
            return;
        }
        c->caps.esmtp = false;
        after_ehlo(c, false);
        return;
    case X_STARTTLS:
        if (r->code != 220) {
            if (c->tls_mode == SMTP_TLS_REQUIRED) {
                conn_fail(c, TD_ETEMP, "STARTTLS refused: " REPLY_FMT, REPLY_ARGS(r));
                return;
            }
            after_ehlo(c, true); /* opportunistic: carry on in clear text */
            return;
        }
        /* RFC 3207 section 4.2: anything the server sent after its 220
         * and before the handshake is discarded (it could be injected). */
        c->in_off = c->in_len = 0;
        buf_reset(&c->rp.line);
        if (tls_start(c)) {
            char detail[256];
            ssl_errors(detail, sizeof detail);
            conn_fail(c, TD_ETEMP, "TLS setup failed: %s", detail);
        }
        return;
    case X_AUTH_PLAIN:
    case X_AUTH_DONE:
        if (r->code != 235) {
            conn_fail(c, st == SMTP_PERM ? TD_EDENIED : TD_ETEMP,
                      "authentication failed: " REPLY_FMT, REPLY_ARGS(r));
            return;
        }
        c->caps.authenticated = true;
        become_ready(c);
        return;
    case X_AUTH_LOGIN_USER:
    case X_AUTH_LOGIN_PASS:
        if (r->code != 334) {
            conn_fail(c, st == SMTP_PERM ? TD_EDENIED : TD_ETEMP,
                      "authentication failed: " REPLY_FMT, REPLY_ARGS(r));
            return;
        }
        if (x == X_AUTH_LOGIN_USER) {
            b64(&c->out, c->user, strlen(c->user));
            buf_append(&c->out, "\r\n", 2);
            push_expect(c, X_AUTH_LOGIN_PASS);
        } else {
            b64(&c->out, c->pass, strlen(c->pass));
            buf_append(&c->out, "\r\n", 2);
            push_expect(c, X_AUTH_DONE);
        }
        return;
    case X_MAIL:
        if (st != SMTP_OK) {
            c->mail_failed = true;
            smtp_reply_copy(&c->mail_reply, r);
            if (!c->pipelined)
                tx_abort(c, r, -1, false, true);
            return;
        }
        if (!c->pipelined)
            send_rcpt(c);
        return;
    case X_RCPT: {
        size_t i = c->rcpt_replied++;
        if (c->mail_failed)
            return; /* settled by the MAIL reply at DATA */
        set_rcpt(c, i, st == SMTP_OK ? SMTP_OK : st, r);
        if (st == SMTP_OK)
            c->accepted++;
        if (!c->pipelined) {
            if (c->rcpt_sent < c->m.nrcpt)
                send_rcpt(c);
            else if (c->accepted)
                command(c, X_DATA, "DATA");
            else {
                smtp_reply nr;
                smtp_reply_set_local(&nr, NULL, "no recipient was accepted");
                tx_abort(c, &nr, -1, false, true);
                smtp_reply_clear(&nr);
            }
        }
        return;
    }
    case X_DATA:
        if (c->mail_failed) {
            smtp_reply mr;
            smtp_reply_copy(&mr, &c->mail_reply);
            tx_abort(c, &mr, -1, r->code == 354, true);
            smtp_reply_clear(&mr);
            return;
        }
        if (r->code == 354 && c->accepted && c->gated) {
            c->go_pending = true; /* the body waits for smtp_conn_release */
            return;
        }
        if (r->code == 354 && c->accepted) {
            c->body = true;
            c->bol = true;
            c->pending_cr = false;
            c->data_pos = 0;
            body_fill(c);
            return;
        }
        if (r->code == 354) {
            /* every RCPT failed but a pipelining server still said 354: end
             * the empty message (RFC 2920 section 3.1) */
            smtp_reply nr;
            smtp_reply_set_local(&nr, NULL, "no recipient was accepted");
            tx_abort(c, &nr, -1, true, true);
            smtp_reply_clear(&nr);
            return;
        }
        tx_abort(c, r, -1, false, true);
        return;
    case X_DOT:
        for (size_t i = 0; i < c->res.nrcpt; i++)
            if (c->res.rcpt[i].status == SMTP_OK)
                set_rcpt(c, i, st, r);
        tx_done(c, r);
        /* The reply to the final dot ends the transaction whatever it says
         * (RFC 5321 4.1.1.4); the RSET is a precaution, left out when the
         * next transaction has already begun behind it. */
        if (st != SMTP_OK && !c->has_next)
            command(c, X_RSET, "RSET");
        return;
    case X_DOT_IGNORE:
        return;
    case X_RSET:
        if (st != SMTP_OK)
            conn_fail(c, reply_err_code(r), "RSET: " REPLY_FMT, REPLY_ARGS(r));
        else if (c->exp_n == 0)
            c->deadline = -1;
        return;
    case X_QUIT:
        td_err_clear(&c->err);
        close_socket(c);
        return;
    }
}

/* Feeds buffered input to the parser; handles every complete reply. */
static void process_input(smtp_conn *c)
{
    /* With a message queued, replies after the one that ended the message
     * in flight are the queued one's: they wait until the result is taken. */
    while (!c->closed && c->in_off < c->in_len && !(c->res_ready && c->has_next)) {
        size_t used = 0;
        bool done = false;
        smtp_reply r;
        td_error e;
        int rc = smtp_rparser_feed(&c->rp, c->in + c->in_off, c->in_len - c->in_off, &used, &r,
                                   &done, &e);
        c->in_off += used;
        if (rc) {
            conn_fail(c, TD_ETEMP, "%s", e.msg);
            return;
        }
        if (!done)
            break;
        on_reply(c, &r);
        smtp_reply_clear(&r);
        if (c->handshaking)
            return; /* bytes after a STARTTLS 220 were dropped */
    }
}

void smtp_conn_step(smtp_conn *c, short revents)
{
    if (c->closed)
        return;
    if (c->connecting) {
        if (revents & (POLLOUT | POLLERR | POLLHUP)) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            if (soerr) {
                conn_fail(c, TD_ETEMP, "connect failed: %s", strerror(soerr));
                return;
            }
            c->connecting = false;
            if (c->tls_mode == SMTP_TLS_IMPLICIT) {
                if (tls_start(c)) {
                    char detail[256];
                    ssl_errors(detail, sizeof detail);
                    conn_fail(c, TD_ETEMP, "TLS setup failed: %s", detail);
                    return;
                }
            } else {
                push_expect(c, X_GREETING);
            }
        }
    }
    /* Read only what poll said is there: a pool steps every connection
     * each round, and a recv() that would block on each idle one was 2.6
     * wasted system calls a message. A short read drained the socket; poll
     * tells when more comes. TLS may hold records already read: it always
     * tries. */
    bool readable = (revents & (POLLIN | POLLERR | POLLHUP)) || c->ssl;
    for (int rounds = 0; !c->closed && !c->connecting && rounds < 64; rounds++) {
        bool progress = false;
        if (c->handshaking) {
            tls_handshake(c);
            if (c->closed || c->handshaking)
                break;
            progress = true;
        }
        if (out_pending(c)) {
            ssize_t w = do_write(c);
            if (w < 0)
                return;
            if (w > 0) {
                progress = true;
                if (c->body && !c->dot_sent)
                    set_stage(c, SMTP_STAGE_BLOCK);
            }
        }
        if (!out_pending(c) && c->body) {
            if (c->body_done) {
                if (!c->dot_sent) {
                    c->dot_sent = true;
                    set_stage(c, SMTP_STAGE_DOT);
                }
            } else {
                body_fill(c);
                progress = true;
            }
        }
        if (readable || c->ssl) {
            bool had_input = c->in_off < c->in_len;
            ssize_t r = do_read(c);
            if (r < 0)
                return;
            if (!c->ssl && !had_input && (size_t)r < sizeof c->in)
                readable = false;
        }
        if (c->in_off < c->in_len) {
            process_input(c);
            progress = true;
        }
        if (!progress)
            break;
    }
    if (!c->closed && c->deadline >= 0 && smtp_now_ms() >= c->deadline) {
        if (c->quitting) {
            td_err_clear(&c->err);
            close_socket(c);
            return;
        }
        conn_fail(c, TD_ETEMP, "timed out after %u ms waiting in the %s stage", c->tmo[c->stage],
                  smtp_stage_name(c->stage));
    }
}

/* ---- the public face ---- */

smtp_conn *smtp_conn_new(const smtp_url *u, const smtp_opts *o)
{
    smtp_conn *c = xcalloc(1, sizeof *c);
    smtp_opts def;
    if (!o) {
        smtp_opts_init(&def);
        o = &def;
    }
    c->host = xstrdup(u->host ? u->host : "");
    c->port = u->port;
    c->tls_mode = u->tls;
    c->verify = u->verify && u->tls != SMTP_TLS_NONE;
    if (u->user && u->pass) {
        c->user = xstrdup(u->user);
        c->pass = xstrdup(u->pass);
    }
    if (o->helo_name && o->helo_name[0]) {
        c->helo = xstrdup(o->helo_name);
    } else {
        char hn[256];
        if (gethostname(hn, sizeof hn) == 0 && hn[0]) {
            hn[sizeof hn - 1] = '\0';
            c->helo = xstrdup(hn);
        } else {
            c->helo = xstrdup("localhost");
        }
    }
    /* the name goes on the wire after EHLO: nothing but printable ASCII */
    for (char *p = c->helo; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            *p = '-';
    c->ca_file = xstrdup(o->ca_file);
    for (int i = 0; i < SMTP_STAGE_COUNT; i++)
        c->tmo[i] = o->timeout_ms[i] ? o->timeout_ms[i] : default_tmo[i];
    c->fd = -1;
    c->deadline = -1;
    buf_init(&c->out, BUF_NOCAP);
    buf_init(&c->next_out, BUF_NOCAP);
    smtp_rparser_init(&c->rp, o->max_reply_line, o->max_reply_lines);
    return c;
}

int smtp_conn_connect(smtp_conn *c, const struct sockaddr *sa, socklen_t salen, td_error *e)
{
    if (c->fd >= 0 || c->closed)
        return td_err_set(e, TD_EINTERNAL, "smtp_conn_connect called twice");
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_fail(c, TD_ETEMP, "no socket: %s", strerror(errno));
        c->closed = true;
        return td_err_set(e, TD_ETEMP, "%s", c->err.msg);
    }
    int one = 1;
    /* we coalesce our own writes; Nagle would only add delay to them */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
        conn_fail(c, TD_ETEMP, "connect failed: %s", strerror(errno));
        return td_err_set(e, TD_ETEMP, "%s", c->err.msg);
    }
    c->connecting = true;
    set_stage(c, SMTP_STAGE_CONNECT);
    return TD_OK;
}

int smtp_conn_fd(const smtp_conn *c)
{
    return c->closed ? -1 : c->fd;
}

short smtp_conn_events(const smtp_conn *c)
{
    if (c->closed || c->fd < 0)
        return 0;
    if (c->connecting)
        return POLLOUT;
    if (c->handshaking)
        return c->ssl_want_write ? POLLOUT : POLLIN;
    short ev = POLLIN;
    if (out_pending(c) || c->ssl_want_write)
        ev |= POLLOUT;
    return ev;
}

int64_t smtp_conn_deadline(const smtp_conn *c)
{
    if (c->closed)
        return -1;
    /* replies read before a queued message became the one in flight: no
     * socket event will come for them */
    if (c->in_off < c->in_len && !c->res_ready)
        return smtp_now_ms();
    return c->deadline;
}

int smtp_conn_state(const smtp_conn *c)
{
    if (c->closed)
        return SMTP_CONN_CLOSED;
    if (c->quitting)
        return SMTP_CONN_CLOSING;
    if (!c->ready_once)
        return SMTP_CONN_OPENING;
    if (c->in_tx || c->exp_n || out_pending(c))
        return SMTP_CONN_BUSY;
    return SMTP_CONN_READY;
}

const td_error *smtp_conn_error(const smtp_conn *c)
{
    return &c->err;
}

const smtp_caps *smtp_conn_caps(const smtp_conn *c)
{
    return &c->caps;
}

static bool bad_path(const char *s)
{
    size_t n = strlen(s);
    if (n > SMTP_MAX_PATH)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
            return true;
    }
    return false;
}

static bool non_ascii(const char *s, size_t n)
{
    /* Eight bytes at a time: this runs over every message's whole body
     * (it was 7% of a campaign's CPU byte by byte). */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            return true;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* The end of the header section (offset of the empty line), or len. */
static size_t header_end(const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const char *nl = memchr(d + i, '\n', len - i);
        if (!nl)
            return len;
        size_t j = (size_t)(nl - d) + 1;
        if (j < len && d[j] == '\n')
            return j;
        if (j + 1 < len && d[j] == '\r' && d[j + 1] == '\n')
            return j;
        i = j - 1;
    }
    return len;
}

int smtp_msg_check(const smtp_msg *m, td_error *e)
{
    if (m->nrcpt == 0 || m->nrcpt > SMTP_MAX_RCPT || !m->rcpt)
        return td_err_set(e, TD_EINVAL, "a message needs 1 to %d recipients", SMTP_MAX_RCPT);
    if (!m->from || bad_path(m->from))
        return td_err_set(e, TD_EINVAL, "the envelope sender is not a valid address");
    for (size_t i = 0; i < m->nrcpt; i++)
        if (!m->rcpt[i] || !m->rcpt[i][0] || bad_path(m->rcpt[i]))
            return td_err_set(e, TD_EINVAL, "recipient %zu is not a valid address", i + 1);
    if (!m->data && m->len)
        return td_err_set(e, TD_EINVAL, "the message has a length but no data");
    return TD_OK;
}

bool smtp_data_crlf_only(const char *d, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time: the LFs must be the CRs moved on by one (a CR
     * in the last byte carries into the next block) */
    const __m128i vcr = _mm_set1_epi8('\r'), vlf = _mm_set1_epi8('\n');
    unsigned cr_in = 0;
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
        unsigned cr = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vcr));
        unsigned lf = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vlf));
        if (lf != (((cr << 1) | cr_in) & 0xffffu))
            return false;
        cr_in = cr >> 15;
    }
    if (cr_in) { /* the LF of a CRLF split by the blocks */
        if (i == len || d[i] != '\n')
            return false;
        i++;
    }
#endif
    for (; i < len; i++) {
        if (d[i] == '\r') {
            if (i + 1 == len || d[i + 1] != '\n')
                return false;
            i++; /* the LF */
        } else if (d[i] == '\n') {
            return false;
        }
    }
    return true;
}

/* The message's need for SMTPUTF8 and 8BITMIME, from its envelope and
 * content, and whether its line ends are all CRLF already. */
static struct needs msg_needs(const smtp_msg *m)
{
    struct needs n;
    size_t hend = header_end(m->data, m->len);
    bool u = non_ascii(m->from, strlen(m->from)) || non_ascii(m->data, hend);
    for (size_t i = 0; i < m->nrcpt && !u; i++)
        u = non_ascii(m->rcpt[i], strlen(m->rcpt[i]));
    n.utf8 = u;
    n.eightbit = u || non_ascii(m->data + hend, m->len - hend);
    n.crlf = smtp_data_crlf_only(m->data, m->len);
    return n;
}

/* The local refusal of a message this server cannot take (it needs
 * SMTPUTF8 the server lacks, or is over its SIZE), in *r; false when none. */
static bool local_refusal(const smtp_conn *c, const smtp_msg *m, bool utf8, smtp_reply *r)
{
    if (utf8 && !c->caps.smtputf8) {
        smtp_reply_set_local(r, "5.6.7",
                             "the message needs SMTPUTF8 (a non-ASCII address "
                             "or header) and the relay does not offer it");
        return true;
    }
    if (c->caps.size && c->caps.size_max && m->len > c->caps.size_max) {
        smtp_reply_set_local(r, "5.3.4",
                             "the message (%zu bytes) is larger than the relay's "
                             "limit of %llu bytes",
                             m->len, (unsigned long long)c->caps.size_max);
        return true;
    }
    return false;
}

/* write_envelope appends MAIL FROM, and with PIPELINING every RCPT TO and
 * DATA, for m to o; push_envelope then expects their replies. */
static void write_envelope(const smtp_conn *c, buf *o, const smtp_msg *m, bool utf8,
                           bool eightbit)
{
    buf_printf(o, "MAIL FROM:<%s>", m->from);
    if (c->caps.size)
        buf_printf(o, " SIZE=%zu", m->len);
    if (eightbit && c->caps.eightbitmime)
        buf_puts(o, " BODY=8BITMIME");
    if (utf8)
        buf_puts(o, " SMTPUTF8");
    buf_append(o, "\r\n", 2);
    if (c->caps.pipelining) {
        for (size_t i = 0; i < m->nrcpt; i++)
            buf_printf(o, "RCPT TO:<%s>\r\n", m->rcpt[i]);
        buf_append(o, "DATA\r\n", 6);
    }
}

static void push_envelope(smtp_conn *c, size_t nrcpt)
{
    push_expect(c, X_MAIL);
    if (c->caps.pipelining) {
        for (size_t i = 0; i < nrcpt; i++)
            push_expect(c, X_RCPT);
        push_expect(c, X_DATA);
    }
}

/* A queued message's envelope goes out once the message in flight has
 * ended on the wire: after its final dot, or after the RSET or dot that
 * closed a failed transaction. */
static void flush_next_envelope(smtp_conn *c)
{
    if (!c->next_env)
        return;
    c->next_env = false;
    buf_append(&c->out, c->next_out.data, c->next_out.len);
    buf_reset(&c->next_out);
    push_envelope(c, c->next.nrcpt);
}

/* tx_begin makes m the message in flight, every recipient unanswered;
 * utf8 and eightbit are its msg_needs. */
static void tx_begin(smtp_conn *c, const smtp_msg *m, struct needs n)
{
    c->m = *m;
    memset(&c->res, 0, sizeof c->res);
    c->res.nrcpt = m->nrcpt;
    c->res.rcpt = xcalloc(m->nrcpt, sizeof *c->res.rcpt);
    for (size_t i = 0; i < m->nrcpt; i++)
        c->res.rcpt[i].status = -1;
    c->in_tx = true;
    c->mail_failed = c->body = c->body_done = c->dot_sent = false;
    c->gated = c->go_pending = false;
    c->rcpt_sent = c->rcpt_replied = c->accepted = 0;
    c->pipelined = c->caps.pipelining;
    c->need_utf8 = n.utf8;
    c->eightbit = n.eightbit;
    c->crlf = n.crlf;
}

int smtp_conn_send(smtp_conn *c, const smtp_msg *m, td_error *e)
{
    if (smtp_conn_state(c) != SMTP_CONN_READY || c->res_ready)
        return td_err_set(e, TD_EINTERNAL, "smtp_conn_send: the connection is not ready");
    int rc = smtp_msg_check(m, e);
    if (rc)
        return rc;
    tx_begin(c, m, msg_needs(m));
    smtp_reply r;
    if (local_refusal(c, m, c->need_utf8, &r)) {
        tx_abort(c, &r, SMTP_PERM, false, false);
        smtp_reply_clear(&r);
        return TD_OK;
    }
    write_envelope(c, &c->out, m, c->need_utf8, c->eightbit);
    push_envelope(c, m->nrcpt);
    if (c->pipelined)
        c->rcpt_sent = m->nrcpt;
    return TD_OK;
}

bool smtp_conn_can_queue(const smtp_conn *c)
{
    return !c->closed && !c->quitting && c->in_tx && c->caps.pipelining && !c->has_next &&
           !c->res_ready;
}

int smtp_conn_queue(smtp_conn *c, const smtp_msg *m, td_error *e)
{
    if (!smtp_conn_can_queue(c))
        return td_err_set(e, TD_EINTERNAL, "smtp_conn_queue: nothing to queue behind");
    int rc = smtp_msg_check(m, e);
    if (rc)
        return rc;
    struct needs n = msg_needs(m);
    smtp_reply r;
    if (local_refusal(c, m, n.utf8, &r)) {
        smtp_reply_clear(&r);
        return td_err_set(e, TD_ETEMP, "smtp_conn_queue: the relay would refuse it");
    }
    /* RFC 2920 3.1: MAIL may follow the final dot in the same batch; DATA
     * ends it, and the body waits for 354 (and for smtp_conn_release). The
     * envelope is written now and sent with the dot. */
    c->next = *m;
    c->has_next = true;
    c->next_needs = n;
    buf_reset(&c->next_out);
    write_envelope(c, &c->next_out, m, n.utf8, n.eightbit);
    c->next_env = true;
    if (c->body_done)
        flush_next_envelope(c);
    return TD_OK;
}

void smtp_conn_release(smtp_conn *c)
{
    if (!c->gated)
        return;
    c->gated = false;
    if (c->go_pending && !c->closed) {
        c->go_pending = false;
        c->body = true;
        c->bol = true;
        c->pending_cr = false;
        c->data_pos = 0;
        body_fill(c);
    }
}

bool smtp_conn_take_result(smtp_conn *c, smtp_result *out)
{
    if (!c->res_ready) {
        memset(out, 0, sizeof *out);
        return false;
    }
    *out = c->res;
    memset(&c->res, 0, sizeof c->res);
    c->res_ready = false;
    memset(&c->m, 0, sizeof c->m);
    if (c->has_next) {
        c->has_next = c->next_env = false;
        buf_reset(&c->next_out);
        smtp_msg next = c->next;
        memset(&c->next, 0, sizeof c->next);
        /* A closed connection drops the queued message unsent: the caller
         * still holds it and settles it as not attempted. */
        if (!c->closed) {
            tx_begin(c, &next, c->next_needs);
            c->rcpt_sent = next.nrcpt; /* its envelope went with the queue */
            c->gated = true;
        }
    }
    return true;
}

void smtp_conn_quit(smtp_conn *c)
{
    if (c->closed)
        return;
    if (smtp_conn_state(c) == SMTP_CONN_READY) {
        c->quitting = true;
        command(c, X_QUIT, "QUIT");
        return;
    }
    conn_fail(c, TD_ETEMP, "closed by us before the %s stage ended", smtp_stage_name(c->stage));
}

void smtp_conn_free(smtp_conn *c)
{
    if (!c)
        return;
    close_socket(c);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    smtp_result_clear(&c->res);
    smtp_reply_clear(&c->mail_reply);
    smtp_rparser_free(&c->rp);
    buf_free(&c->out);
    buf_free(&c->next_out);
    free(c->exp);
    free(c->host);
    free(c->user);
    wipe_free(c->pass);
    free(c->helo);
    free(c->ca_file);
    free(c);
}

/* ---- the blocking wrapper ---- */

int smtp_resolve(const smtp_url *u, smtp_addr *out, int max, td_error *e)
{
    if (u->kind == SMTP_URL_MAILDIR || !u->host)
        return td_err_set(e, TD_EINVAL, "not an smtp:// or smtps:// relay"), -1;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    char port[8];
    snprintf(port, sizeof port, "%u", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc) {
        int code = rc == EAI_NONAME ? TD_EINVAL : TD_ETEMP;
        td_err_set(e, code, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int n = 0;
    for (struct addrinfo *a = res; a && n < max; a = a->ai_next) {
        if (a->ai_addrlen > sizeof out[n].sa)
            continue;
        memcpy(&out[n].sa, a->ai_addr, a->ai_addrlen);
        out[n].len = a->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        td_err_set(e, TD_ETEMP, "cannot resolve %s: no address", u->host);
        return -1;
    }
    return n;
}

/* Runs c until done(c) or CLOSED. */
static void run_until(smtp_conn *c, bool (*done)(smtp_conn *))
{
    while (!c->closed && !done(c)) {
        struct pollfd p = {.fd = smtp_conn_fd(c), .events = smtp_conn_events(c)};
        int64_t dl = smtp_conn_deadline(c);
        int tmo = -1;
        if (dl >= 0) {
            int64_t left = dl - smtp_now_ms();
            tmo = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
        }
        int r = poll(&p, 1, tmo);
        if (r < 0 && errno != EINTR) {
            conn_fail(c, TD_ETEMP, "poll failed: %s", strerror(errno));
            return;
        }
        smtp_conn_step(c, r > 0 ? p.revents : 0);
    }
}

static bool is_ready(smtp_conn *c)
{
    return smtp_conn_state(c) == SMTP_CONN_READY;
}

static bool is_settled(smtp_conn *c)
{
    return c->res_ready && smtp_conn_state(c) == SMTP_CONN_READY;
}

smtp_conn *smtp_open(const smtp_url *u, const smtp_opts *o, td_error *e)
{
    smtp_addr addrs[16];
    int n = smtp_resolve(u, addrs, 16, e);
    if (n < 0)
        return NULL;
    for (int i = 0; i < n; i++) {
        smtp_conn *c = smtp_conn_new(u, o);
        if (smtp_conn_connect(c, (struct sockaddr *)&addrs[i].sa, addrs[i].len, e) == 0)
            run_until(c, is_ready);
        if (smtp_conn_state(c) == SMTP_CONN_READY)
            return c;
        td_err_set(e, c->err.code ? c->err.code : TD_ETEMP, "%s", c->err.msg);
        bool next = c->stage == SMTP_STAGE_CONNECT;
        smtp_conn_free(c);
        if (!next)
            break; /* the server answered and refused: another address won't differ */
    }
    return NULL;
}

int smtp_send(smtp_conn *c, const smtp_msg *m, smtp_result *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = smtp_conn_send(c, m, e);
    if (rc)
        return rc;
    run_until(c, is_settled);
    if (!smtp_conn_take_result(c, out))
        return td_err_set(e, TD_EINTERNAL, "smtp_send: no result");
    return TD_OK;
}

static bool is_closed(smtp_conn *c)
{
    return c->closed;
}

void smtp_close(smtp_conn *c)
{
    if (!c)
        return;
    smtp_conn_quit(c);
    run_until(c, is_closed);
    smtp_conn_free(c);
}
