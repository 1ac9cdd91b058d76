/* mailbox: IMAP and POP3 intake through libcurl, each message exactly once
 * (see mailbox.h and docs/internals/inbound.md). */
#include "inbound/mailbox.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "inbound/act.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#define LIST_CAP (16u << 20) /* bytes of a UIDL or FETCH listing */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- URLs ------------------------------------------------------------------ */

typedef struct url_parts {
    char scheme[8];
    char *host;
    long port;
    char *mailbox; /* decoded; IMAP only */
    bool imap, tls;
} url_parts;

static void url_parts_clear(url_parts *u)
{
    free(u->host);
    free(u->mailbox);
    memset(u, 0, sizeof *u);
}

static int url_split(const char *url, const char *user, url_parts *u, td_error *e)
{
    memset(u, 0, sizeof *u);
    pthread_once(&curl_once, curl_setup);
    if (!url || !*url)
        return td_err_set(e, TD_EINVAL, "no mailbox URL");
    if (utf8_has_ctl(url, strlen(url)) || strlen(url) > 2000)
        return td_err_set(e, TD_EINVAL, "the mailbox URL holds control characters or is too long");
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *pw = NULL, *q = NULL;
    int rc = TD_OK;
    if (curl_url_set(h, CURLUPART_URL, url, 0)) {
        rc = td_err_set(e, TD_EINVAL, "'%s' is not a URL", url);
        goto out;
    }
    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(h, CURLUPART_HOST, &host, 0);
    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    curl_url_get(h, CURLUPART_PATH, &path, CURLU_URLDECODE);
    curl_url_get(h, CURLUPART_PASSWORD, &pw, 0);
    curl_url_get(h, CURLUPART_QUERY, &q, 0);
    if (!scheme || (strcasecmp(scheme, "imap") && strcasecmp(scheme, "imaps") &&
                    strcasecmp(scheme, "pop3") && strcasecmp(scheme, "pop3s"))) {
        rc = td_err_set(e, TD_EINVAL, "a mailbox URL starts imap://, imaps://, pop3:// or pop3s://");
        goto out;
    }
    if (pw) {
        rc = td_err_set(e, TD_EINVAL,
                        "put no password in the URL (it is shown and logged): use --password-file");
        goto out;
    }
    if (!host || !*host || q) {
        rc = td_err_set(e, TD_EINVAL, "the mailbox URL needs a host (and takes no ?query)");
        goto out;
    }
    for (size_t i = 0; scheme[i] && i < sizeof u->scheme - 1; i++)
        u->scheme[i] = (char)(scheme[i] | 0x20);
    u->imap = !strncmp(u->scheme, "imap", 4);
    u->tls = u->scheme[strlen(u->scheme) - 1] == 's';
    u->host = xstrdup(host);
    for (char *p = u->host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    u->port = port ? strtol(port, NULL, 10) : 0;
    const char *mb = path && path[0] == '/' ? path + 1 : (path ? path : "");
    if (u->imap) {
        /* A path with ;UID= or the like is a message, not a mailbox. */
        if (strpbrk(mb, ";\"\\") || utf8_has_ctl(mb, strlen(mb)) ||
            (*mb && mb[strlen(mb) - 1] == '/')) {
            rc = td_err_set(e, TD_EINVAL, "'%s' is not a mailbox name this poller takes", mb);
            goto out;
        }
        u->mailbox = xstrdup(*mb ? mb : "INBOX");
    } else if (*mb) {
        rc = td_err_set(e, TD_EINVAL, "a POP3 URL has no path (POP3 has one mailbox)");
        goto out;
    }
    if (user && (utf8_has_ctl(user, strlen(user)) || strlen(user) > 320))
        rc = td_err_set(e, TD_EINVAL, "the user name holds control characters or is too long");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(pw);
    curl_free(q);
    curl_url_cleanup(h);
    if (rc)
        url_parts_clear(u);
    return rc;
}

int mailbox_check_url(const char *url, td_error *e)
{
    url_parts u;
    int rc = url_split(url, NULL, &u, e);
    url_parts_clear(&u);
    return rc;
}

char *mailbox_identity(const char *url, const char *username, td_error *e)
{
    url_parts u;
    if (url_split(url, username, &u, e))
        return NULL;
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_printf(&b, "%s://", u.scheme);
    if (username && *username)
        buf_printf(&b, "%s@", username);
    buf_printf(&b, "%s:%ld/%s", u.host, u.port, u.mailbox ? u.mailbox : "");
    url_parts_clear(&u);
    char *r = buf_steal(&b);
    buf_free(&b);
    return r;
}

/* ---- the libcurl session ------------------------------------------------------ */

typedef struct sess {
    CURL *c;
    url_parts u;
    char *base;        /* scheme://host:port/ */
    char *mbox;        /* IMAP: base + escaped mailbox */
    char uidvalidity[24];
    buf out;           /* the response being read */
    char err[CURL_ERROR_SIZE];
    long connects;     /* connections made so far */
} sess;

/* A malloc'd formatted string (URLs and commands have no fixed size). */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *r = buf_steal(&b);
    buf_free(&b);
    return r;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    return buf_append(b, p, size * n) ? 0 : size * n;
}

/* A libcurl result as a TD_E* code with a message. */
static int curl_fail(sess *ss, CURLcode cc, const char *what, td_error *e)
{
    const char *why = ss->err[0] ? ss->err : curl_easy_strerror(cc);
    if (cc == CURLE_LOGIN_DENIED)
        return td_err_set(e, TD_EDENIED, "%s: the server refused the login (%s)", what, why);
    if (cc == CURLE_WRITE_ERROR)
        return td_err_set(e, TD_ETOOBIG, "%s: the answer passed its cap", what);
    if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
        return td_err_set(e, TD_EINVAL, "%s: %s", what, why);
    return td_err_set(e, TD_ETEMP, "%s: %s", what, why);
}

/* Runs one request: url with an optional custom command; the answer in
 * ss->out, capped at cap bytes. */
static CURLcode run(sess *ss, const char *url, const char *custom, bool nobody, size_t cap)
{
    buf_free(&ss->out);
    buf_init(&ss->out, cap);
    ss->err[0] = '\0';
    curl_easy_setopt(ss->c, CURLOPT_URL, url);
    curl_easy_setopt(ss->c, CURLOPT_CUSTOMREQUEST, custom);
    curl_easy_setopt(ss->c, CURLOPT_NOBODY, nobody ? 1L : 0L);
    CURLcode cc = curl_easy_perform(ss->c);
    long n = 0;
    curl_easy_getinfo(ss->c, CURLINFO_NUM_CONNECTS, &n);
    ss->connects += n;
    return cc;
}

/* Aborts a transfer when the caller asked the poll to stop (libcurl calls
 * this about once a second, and often while data flows). */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const volatile _Atomic bool *stop = ud;
    return atomic_load(stop) ? 1 : 0;
}

static int sess_open(sess *ss, const mailbox_account *a, td_error *e)
{
    memset(ss, 0, sizeof *ss);
    buf_init(&ss->out, 1);
    int rc = url_split(a->url, a->username, &ss->u, e);
    if (rc)
        return rc;
    ss->base = strf("%s://%s:%ld/", ss->u.scheme, ss->u.host, ss->u.port);
    ss->c = curl_easy_init();
    if (!ss->c)
        return td_err_set(e, TD_EINTERNAL, "libcurl did not start");
    if (ss->u.imap) {
        char *esc = curl_easy_escape(ss->c, ss->u.mailbox, 0);
        ss->mbox = strf("%s%s", ss->base, esc ? esc : "INBOX");
        curl_free(esc);
    }
    CURL *c = ss->c;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ss->err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &ss->out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled server: under 100 bytes/s for a minute ends the request. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 100L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps,pop3,pop3s");
    if (!ss->u.tls)
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (a->username && *a->username)
        curl_easy_setopt(c, CURLOPT_USERNAME, a->username);
    if (a->password && *a->password)
        curl_easy_setopt(c, CURLOPT_PASSWORD, a->password);
    if (a->stop) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)a->stop);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    return TD_OK;
}

static void sess_close(sess *ss)
{
    if (ss->c)
        curl_easy_cleanup(ss->c); /* POP3: QUIT, which commits the DELEs */
    buf_free(&ss->out);
    url_parts_clear(&ss->u);
    free(ss->base);
    free(ss->mbox);
}

/* One message on the server. */
typedef struct item {
    char key[96];     /* "UIDVALIDITY/UID" or the UIDL */
    char ref[24];     /* how to ask for it: the UID, or the POP3 message number */
    uint64_t size;
    bool gone;        /* to delete */
} item;

typedef struct items {
    item *v;
    size_t n;
} items;

static item *item_push(items *it)
{
    it->v = xrealloc(it->v, (it->n + 1) * sizeof *it->v);
    memset(&it->v[it->n], 0, sizeof it->v[0]);
    return &it->v[it->n++];
}

/* Next line of s (CRLF or LF), NUL-terminated in place; NULL at the end. */
static char *next_line(char **s)
{
    if (!*s || !**s)
        return NULL;
    char *l = *s, *nl = strchr(l, '\n');
    if (nl) {
        *nl = '\0';
        *s = nl + 1;
        if (nl > l && nl[-1] == '\r')
            nl[-1] = '\0';
    } else {
        *s = l + strlen(l);
    }
    return l;
}

/* The number after the word `name` in an IMAP line ("UID 7"), or -1. */
static long long imap_num(const char *line, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = line; (p = strstr(p, name)); p += n) {
        bool start = p == line || p[-1] == ' ' || p[-1] == '(';
        if (start && p[n] == ' ' && p[n + 1] >= '0' && p[n + 1] <= '9')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

static int imap_list(sess *ss, items *it, td_error *e)
{
    /* STATUS on no mailbox: curl sends it as it is, without a SELECT. */
    char *cmd = strf("STATUS \"%s\" (UIDVALIDITY MESSAGES)", ss->u.mailbox);
    CURLcode cc = run(ss, ss->base, cmd, false, 64 << 10);
    free(cmd);
    if (cc)
        return curl_fail(ss, cc, "reading the mailbox's status", e);
    long long v = imap_num(ss->out.data, "UIDVALIDITY");
    long long msgs = imap_num(ss->out.data, "MESSAGES");
    if (v < 0 || msgs < 0)
        return td_err_set(e, TD_ETEMP, "the server's STATUS answer has no UIDVALIDITY");
    snprintf(ss->uidvalidity, sizeof ss->uidvalidity, "%lld", v);
    if (!msgs)
        return TD_OK;
    /* From here on every URL names the UIDVALIDITY: libcurl checks it when
     * it selects the mailbox, so a UID is never read against another
     * mailbox generation than the one its key was made with. */
    char *url = strf("%s;UIDVALIDITY=%s", ss->mbox, ss->uidvalidity);
    cc = run(ss, url, "UID FETCH 1:* (UID RFC822.SIZE)", false, LIST_CAP);
    free(url);
    if (cc)
        return curl_fail(ss, cc, "listing the mailbox", e);
    char *p = ss->out.data;
    for (char *l; (l = next_line(&p));) {
        if (strncmp(l, "* ", 2) || !strstr(l, "FETCH"))
            continue;
        long long uid = imap_num(l, "UID"), size = imap_num(l, "RFC822.SIZE");
        if (uid <= 0)
            continue;
        item *x = item_push(it);
        snprintf(x->key, sizeof x->key, "%s/%lld", ss->uidvalidity, uid);
        snprintf(x->ref, sizeof x->ref, "%lld", uid);
        x->size = size > 0 ? (uint64_t)size : 0;
    }
    return TD_OK;
}

static int pop3_list(sess *ss, items *it, td_error *e)
{
    CURLcode cc = run(ss, ss->base, NULL, false, LIST_CAP); /* LIST: numbers and sizes */
    if (cc)
        return curl_fail(ss, cc, "listing the mailbox", e);
    char *sizes = buf_steal(&ss->out);
    cc = run(ss, ss->base, "UIDL", false, LIST_CAP);
    if (cc) {
        free(sizes);
        return curl_fail(ss, cc, "listing the mailbox's UIDLs", e);
    }
    char *p = ss->out.data;
    for (char *l; (l = next_line(&p));) {
        char *end;
        long long num = strtoll(l, &end, 10);
        if (num <= 0 || *end != ' ')
            continue;
        while (*end == ' ')
            end++;
        /* RFC 1939: a UIDL is 1 to 70 printable characters. */
        size_t k = strcspn(end, " \t");
        if (!k || k > 70)
            continue;
        end[k] = '\0';
        item *x = item_push(it);
        snprintf(x->key, sizeof x->key, "%s", end);
        snprintf(x->ref, sizeof x->ref, "%lld", num);
    }
    char *q = sizes;
    for (char *l; (l = next_line(&q));) {
        char *end;
        long long num = strtoll(l, &end, 10);
        long long size = *end == ' ' ? strtoll(end + 1, NULL, 10) : 0;
        for (size_t i = 0; i < it->n; i++)
            if (num > 0 && strtoll(it->v[i].ref, NULL, 10) == num)
                it->v[i].size = size > 0 ? (uint64_t)size : 0;
    }
    free(sizes);
    return TD_OK;
}

/* Deletes message x: IMAP flags it (expunged at the end), POP3 DELEs it
 * (done at QUIT). */
static int remove_one(sess *ss, const item *x, td_error *e)
{
    char cmd[96], *url;
    CURLcode cc;
    if (ss->u.imap) {
        url = strf("%s;UIDVALIDITY=%s", ss->mbox, ss->uidvalidity);
        snprintf(cmd, sizeof cmd, "UID STORE %s +FLAGS.SILENT (\\Deleted)", x->ref);
        cc = run(ss, url, cmd, false, 64 << 10);
    } else {
        url = strf("%s%s", ss->base, x->ref);
        cc = run(ss, url, "DELE", true, 64 << 10);
    }
    free(url);
    return cc ? curl_fail(ss, cc, "deleting a message", e) : TD_OK;
}

static int fetch_one(sess *ss, const item *x, td_error *e)
{
    char *url = ss->u.imap ? strf("%s;UIDVALIDITY=%s/;UID=%s", ss->mbox, ss->uidvalidity, x->ref)
                           : strf("%s%s", ss->base, x->ref);
    CURLcode cc = run(ss, url, NULL, false, MAILBOX_MAX_MESSAGE);
    free(url);
    return cc ? curl_fail(ss, cc, "fetching a message", e) : TD_OK;
}

static void count_kind(mailbox_stats *st, const act_result *r)
{
    if (!strcmp(r->kind, "bounce"))
        st->bounces++;
    else if (!strcmp(r->kind, "complaint"))
        st->complaints++;
    else if (!strcmp(r->kind, "reply"))
        st->replies++;
    else
        st->other++;
}

/* Records a message too big to fetch: other, kept on the server. */
static int record_too_big(store *s, const char *source, const item *x, td_error *e)
{
    char note[160];
    snprintf(note, sizeof note, "too big to fetch (%llu bytes): left on the server",
             (unsigned long long)x->size);
    inbound_rec r = {.source = source, .key = x->key, .kind = "other", .note = note,
                     .size = (int64_t)x->size, .keep = true};
    int rc = store_begin(s, e);
    if (!rc)
        rc = store_inbound_add(s, &r, NULL, e);
    if (!rc)
        rc = store_commit(s, e);
    if (rc)
        store_rollback(s);
    return rc;
}

int mailbox_poll(store *s, const mailbox_account *a, mailbox_stats *st, td_error *e)
{
    mailbox_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    char *source = mailbox_identity(a->url, a->username, e);
    if (!source)
        return TD_EINVAL;
    sess ss;
    items it = {0};
    int rc = sess_open(&ss, a, e);
    if (!rc)
        rc = ss.u.imap ? imap_list(&ss, &it, e) : pop3_list(&ss, &it, e);
    long first_connects = ss.connects;
    st->listed = (unsigned)it.n;
    unsigned handled = 0;
    for (size_t i = 0; !rc && i < it.n && handled < MAILBOX_MAX_PER_POLL; i++) {
        item *x = &it.v[i];
        if (a->stop && atomic_load(a->stop)) {
            rc = td_err_set(e, TD_ETEMP, "stopped");
            break;
        }
        bool seen = false, keep = false;
        if ((rc = store_inbound_find(s, source, x->key, &seen, &keep, e)))
            break;
        if (seen) {
            st->seen++;
            x->gone = !keep; /* applied, then a crash before the delete */
        } else if (x->size > MAILBOX_MAX_MESSAGE) {
            handled++;
            if ((rc = record_too_big(s, source, x, e)))
                break;
            st->too_big++;
        } else {
            handled++;
            rc = fetch_one(&ss, x, e);
            if (rc == TD_ETOOBIG) {
                /* Bigger than the listing said: the same as too big. */
                x->size = MAILBOX_MAX_MESSAGE + 1ull;
                if ((rc = record_too_big(s, source, x, e)))
                    break;
                st->too_big++;
                continue;
            }
            if (rc)
                break;
            /* POP3 numbers hold within one session: a reconnect (the
             * server broke off) may have renumbered the mailbox, so what
             * came back is not known to be x. Stop; the rest next time. */
            if (!ss.u.imap && ss.connects != first_connects) {
                rc = td_err_set(e, TD_ETEMP, "the POP3 session was broken off and reopened");
                break;
            }
            act_result r;
            act_source src = {.source = source, .key = x->key};
            if ((rc = act_message(s, ss.out.data, ss.out.len, &src, &r, e)))
                break;
            if (r.duplicate) {
                st->seen++;
            } else {
                st->taken++;
                count_kind(st, &r);
            }
            x->gone = !r.keep;
        }
        if (x->gone) {
            if ((rc = remove_one(&ss, x, e)))
                break;
            st->removed++;
        }
    }
    if (ss.u.imap && ss.c && st->removed) {
        /* Expunge what was flagged, even when the loop stopped early. */
        char *url = strf("%s;UIDVALIDITY=%s", ss.mbox, ss.uidvalidity);
        CURLcode cc = run(&ss, url, "EXPUNGE", false, LIST_CAP);
        free(url);
        if (cc && !rc)
            rc = curl_fail(&ss, cc, "expunging deleted messages", e);
    }
    log_info("inbound source=%s listed=%u taken=%u seen=%u removed=%u too_big=%u bounces=%u "
             "complaints=%u replies=%u other=%u result=%s",
             ss.u.scheme[0] ? ss.u.scheme : "?", st->listed, st->taken, st->seen, st->removed,
             st->too_big, st->bounces, st->complaints, st->replies, st->other, td_strerror(rc));
    sess_close(&ss);
    free(it.v);
    free(source);
    return rc;
}

/* ---- stored mailboxes ---------------------------------------------------------- */

struct due {
    mailbox_rec *v;
    size_t n;
    int64_t now;
};

static int take_due(void *ud, const mailbox_rec *m)
{
    struct due *d = ud;
    if (m->next_at > d->now)
        return 0;
    d->v = xrealloc(d->v, (d->n + 1) * sizeof *d->v);
    mailbox_rec *c = &d->v[d->n++];
    *c = (mailbox_rec){.id = m->id, .url = xstrdup(m->url),
                       .username = xstrdup(m->username ? m->username : ""),
                       .password = xstrdup(m->password ? m->password : ""), .every = m->every};
    return 0;
}

int mailbox_poll_due(store *s, int64_t now, td_error *e)
{
    return mailbox_poll_due_stop(s, now, NULL, e);
}

int mailbox_poll_due_stop(store *s, int64_t now, const volatile _Atomic bool *stop, td_error *e)
{
    struct due d = {.now = now};
    int rc = store_mailbox_each(s, take_due, &d, e);
    for (size_t i = 0; !rc && i < d.n; i++) {
        mailbox_rec *m = &d.v[i];
        if (stop && atomic_load(stop))
            break;
        mailbox_account a = {.url = m->url, .username = m->username, .password = m->password,
                             .stop = stop};
        td_error pe = {0};
        int prc = mailbox_poll(s, &a, NULL, &pe);
        if (prc)
            log_warn("inbound mailbox=%lld error=%s: %s", (long long)m->id, td_strerror(prc),
                     pe.msg);
        /* A store error stops everything; a mailbox's own trouble is its
         * record's, and the next mailbox is still polled. */
        bool store_err = prc == TD_EDB || prc == TD_EIO;
        int64_t every = m->every > 0 ? m->every : MAILBOX_EVERY_DEFAULT;
        rc = store_mailbox_polled(s, m->id, prc ? 0 : now, now + every,
                                  prc ? pe.msg : NULL, e);
        if (!rc && store_err)
            rc = td_err_set(e, prc, "%s", pe.msg);
    }
    for (size_t i = 0; i < d.n; i++)
        mailbox_rec_clear(&d.v[i]);
    free(d.v);
    return rc;
}
