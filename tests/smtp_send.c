/* smtp_send: the end-to-end tests' driver for the SMTP client (and the
 * maildir writer). Sends N messages to a relay URL and prints one JSON line
 * per event: the connection's capabilities, each message's per-recipient
 * result, a connection that closed, and a summary with the rate.
 *
 *   smtp_send URL [--from A] [--rcpt A]... [--count N] [--size BYTES]
 *             [--data FILE] [--timeout MS] [--ca FILE] [--helo NAME]
 *             [--conns K]
 *
 * With --conns 1 (the default) it uses the blocking wrapper (smtp_open,
 * smtp_send, smtp_close) on one connection; with K > 1 it drives K
 * connections through the non-blocking API in one poll() loop, as a delivery
 * worker does. Exit status: 0 when it ran (whatever the results), 2 on bad
 * arguments. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_maildir.h"
#include "smtp/smtp_url.h"
#include "util/buf.h"
#include "util/xalloc.h"

static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    puts(s ? s : "{\"event\":\"unprintable\"}");
    fflush(stdout);
    free(s);
    json_decref(o);
}

static json_t *str(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("<invalid utf-8>");
}

static json_t *reply_json(const smtp_reply *r)
{
    return json_pack("{s:i,s:o,s:o}", "code", r->code, "enh", str(r->enh), "text", str(r->text));
}

static void emit_result(size_t i, const smtp_msg *m, const smtp_result *r)
{
    json_t *rc = json_array();
    for (size_t k = 0; k < r->nrcpt; k++) {
        const smtp_rcpt_result *x = &r->rcpt[k];
        json_array_append_new(rc,
                              json_pack("{s:o,s:s,s:i,s:o,s:o}", "to", str(m->rcpt[k]), "status",
                                        smtp_status_name(x->status), "code", x->reply.code, "enh",
                                        str(x->reply.enh), "text", str(x->reply.text)));
    }
    emit(json_pack("{s:s,s:i,s:s,s:o,s:o}", "event", "result", "msg", (int)i, "status",
                   smtp_status_name(r->status), "reply", reply_json(&r->reply), "rcpt", rc));
}

static void emit_caps(const smtp_conn *c)
{
    const smtp_caps *k = smtp_conn_caps(c);
    emit(json_pack("{s:s,s:{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:I,s:b,s:b,s:b}}", "event", "open",
                   "caps", "esmtp", k->esmtp, "pipelining", k->pipelining, "8bitmime",
                   k->eightbitmime, "smtputf8", k->smtputf8, "enhanced", k->enhanced, "starttls",
                   k->starttls, "auth_plain", k->auth_plain, "auth_login", k->auth_login, "size",
                   k->size, "size_max", (json_int_t)k->size_max, "tls", k->tls, "tls_verified",
                   k->tls_verified, "authenticated", k->authenticated));
}

static void emit_error(const char *event, const td_error *e)
{
    emit(json_pack("{s:s,s:s,s:o}", "event", event, "code", td_strerror(e->code), "error",
                   str(e->msg)));
}

/* A generated message: headers and `size` bytes of body lines. */
static char *make_message(size_t i, const char *from, const char *to, size_t size, size_t *len)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_printf(&b,
               "From: <%s>\r\nTo: <%s>\r\nSubject: test message %zu\r\n"
               "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
               "Message-ID: <%zu.smtp-send@tidings.test>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
               from, to, i, i);
    size_t start = b.len;
    while (b.len - start < size)
        buf_printf(&b, "message %zu line %zu: the quick brown fox jumps over the lazy dog\r\n", i,
                   b.len - start);
    *len = b.len;
    char *out = buf_steal(&b);
    buf_free(&b);
    return out;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "smtp_send: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    buf b;
    buf_init(&b, BUF_NOCAP);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    char *out = buf_steal(&b);
    buf_free(&b);
    return out;
}

struct tally {
    size_t n[4];
};

static void count(struct tally *t, const smtp_result *r)
{
    if (r->status >= 0 && r->status < 4)
        t->n[r->status]++;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: smtp_send URL [--from A] [--rcpt A]... [--count N] "
                        "[--size B] [--data FILE] [--timeout MS] [--ca FILE] [--helo N] "
                        "[--conns K]\n");
        return 2;
    }
    const char *url = argv[1], *from = "sender@example.com", *data_file = NULL;
    const char *rcpts[64];
    size_t nrcpt = 0, count_n = 1, size = 2000, conns = 1;
    smtp_opts o;
    smtp_opts_init(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "smtp_send: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--from"))
            from = v;
        else if (!strcmp(a, "--rcpt") && nrcpt < 64)
            rcpts[nrcpt++] = v;
        else if (!strcmp(a, "--count"))
            count_n = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--data"))
            data_file = v;
        else if (!strcmp(a, "--timeout"))
            for (int s = 0; s < SMTP_STAGE_COUNT; s++)
                o.timeout_ms[s] = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--ca"))
            o.ca_file = v;
        else if (!strcmp(a, "--helo"))
            o.helo_name = v;
        else if (!strcmp(a, "--conns"))
            conns = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "smtp_send: unknown option %s\n", a);
            return 2;
        }
    }
    if (nrcpt == 0)
        rcpts[nrcpt++] = "rcpt@example.com";
    if (conns < 1)
        conns = 1;

    smtp_url u;
    td_error e;
    if (smtp_url_parse(url, &u, &e)) {
        emit_error("url_error", &e);
        return 0;
    }

    /* the messages */
    char **data = xcalloc(count_n, sizeof *data);
    size_t *len = xcalloc(count_n, sizeof *len);
    for (size_t i = 0; i < count_n; i++)
        data[i] = data_file ? read_file(data_file, &len[i])
                            : make_message(i, from, rcpts[0], size, &len[i]);
    smtp_msg *msgs = xcalloc(count_n, sizeof *msgs);
    for (size_t i = 0; i < count_n; i++)
        msgs[i] = (smtp_msg){from, rcpts, nrcpt, data[i], len[i]};

    struct tally t = {{0}};
    int64_t t0 = smtp_now_ms();
    size_t sent = 0;

    if (u.kind == SMTP_URL_MAILDIR) {
        smtp_maildir *md = smtp_maildir_open(u.path, false, &e);
        if (!md) {
            emit_error("open_error", &e);
        } else {
            for (size_t i = 0; i < count_n; i++) {
                smtp_result r;
                if (smtp_maildir_deliver(md, &msgs[i], &r, &e)) {
                    emit_error("send_error", &e);
                    continue;
                }
                emit_result(i, &msgs[i], &r);
                count(&t, &r);
                sent++;
                smtp_result_clear(&r);
            }
            smtp_maildir_free(md);
        }
    } else if (conns == 1) {
        smtp_conn *c = smtp_open(&u, &o, &e);
        if (!c) {
            emit_error("open_error", &e);
        } else {
            emit_caps(c);
            for (size_t i = 0; i < count_n; i++) {
                smtp_result r;
                if (smtp_send(c, &msgs[i], &r, &e)) {
                    emit_error("send_error", &e);
                    continue;
                }
                emit_result(i, &msgs[i], &r);
                count(&t, &r);
                sent++;
                smtp_result_clear(&r);
                if (smtp_conn_state(c) == SMTP_CONN_CLOSED) {
                    emit_error("closed", smtp_conn_error(c));
                    break;
                }
            }
            smtp_close(c);
        }
    } else {
        /* K connections in one poll loop, through the non-blocking API */
        smtp_addr addr[4];
        int na = smtp_resolve(&u, addr, 4, &e);
        if (na < 0) {
            emit_error("open_error", &e);
        } else {
            smtp_conn **cs = xcalloc(conns, sizeof *cs);
            size_t *inflight = xcalloc(conns, sizeof *inflight);
            struct pollfd *pf = xcalloc(conns, sizeof *pf);
            bool *reported = xcalloc(conns, sizeof *reported);
            size_t next = 0, done = 0, open_n = conns;
            for (size_t k = 0; k < conns; k++) {
                cs[k] = smtp_conn_new(&u, &o);
                smtp_conn_connect(cs[k], (struct sockaddr *)&addr[0].sa, addr[0].len, &e);
            }
            while (done < count_n && open_n > 0) {
                int64_t now = smtp_now_ms(), dl = -1;
                for (size_t k = 0; k < conns; k++) {
                    pf[k].fd = smtp_conn_fd(cs[k]);
                    pf[k].events = smtp_conn_events(cs[k]);
                    pf[k].revents = 0;
                    int64_t d = smtp_conn_deadline(cs[k]);
                    if (d >= 0 && (dl < 0 || d < dl))
                        dl = d;
                }
                int tmo = dl < 0 ? -1 : dl <= now ? 0 : (int)(dl - now);
                int pr = poll(pf, conns, tmo);
                if (pr < 0 && errno != EINTR)
                    break;
                for (size_t k = 0; k < conns; k++) {
                    smtp_conn *c = cs[k];
                    if (smtp_conn_state(c) == SMTP_CONN_CLOSED) {
                        if (!reported[k]) {
                            reported[k] = true;
                            open_n--;
                            emit_error("closed", smtp_conn_error(c));
                        }
                        continue;
                    }
                    int before = smtp_conn_state(c);
                    smtp_conn_step(c, pf[k].revents);
                    smtp_result r;
                    if (smtp_conn_take_result(c, &r)) {
                        emit_result(inflight[k], &msgs[inflight[k]], &r);
                        count(&t, &r);
                        smtp_result_clear(&r);
                        done++;
                    }
                    int st = smtp_conn_state(c);
                    if (before == SMTP_CONN_OPENING && st == SMTP_CONN_READY && k == 0)
                        emit_caps(c);
                    if (st == SMTP_CONN_READY && next < count_n) {
                        inflight[k] = next;
                        if (smtp_conn_send(c, &msgs[next], &e) == 0) {
                            sent++;
                            next++;
                            if (smtp_conn_take_result(c, &r)) { /* refused locally */
                                emit_result(inflight[k], &msgs[inflight[k]], &r);
                                count(&t, &r);
                                smtp_result_clear(&r);
                                done++;
                            }
                        } else {
                            emit_error("send_error", &e);
                            next++;
                            done++;
                        }
                    }
                    if (st == SMTP_CONN_CLOSED && !reported[k]) {
                        reported[k] = true;
                        open_n--;
                        emit_error("closed", smtp_conn_error(c));
                    }
                }
            }
            for (size_t k = 0; k < conns; k++)
                smtp_close(cs[k]);
            free(cs);
            free(inflight);
            free(pf);
            free(reported);
        }
    }

    double secs = (double)(smtp_now_ms() - t0) / 1000.0;
    emit(json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:f}", "event", "summary", "sent", (json_int_t)sent,
                   "ok", (json_int_t)t.n[SMTP_OK], "temp", (json_int_t)t.n[SMTP_TEMP], "perm",
                   (json_int_t)t.n[SMTP_PERM], "unknown", (json_int_t)t.n[SMTP_UNKNOWN], "seconds",
                   secs));
    for (size_t i = 0; i < count_n; i++)
        free(data[i]);
    free(data);
    free(len);
    free(msgs);
    smtp_url_clear(&u);
    return 0;
}
