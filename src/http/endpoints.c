/* endpoints: what each route does (see endpoints.h). */
#include "http/endpoints.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "campaign/view.h"
#include "http/api.h"
#include "http/html.h"
#include "http/webhooks.h"
#include "mime/addr.h"
#include "mime/msg.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_maildir.h"
#include "smtp/smtp_url.h"
#include "store/store.h"
#include "track/evq.h"
#include "track/token.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/text.h"
#include "util/xalloc.h"

#define POOL_MAX 64        /* idle database connections kept */
#define SIGNUP_NAME_MAX 200

struct endpoints {
    char *location;
    char *public_url;
    uint8_t key[TRACK_KEY_LEN];
    evq *q;
    webhook *wh; /* provider webhooks (http/webhooks) */
    http_server *srv;
    api_env api;
    pthread_mutex_t mu; /* guards the pool */
    store *pool[POOL_MAX];
    int npool;
};

/* A transparent 1x1 GIF: 43 bytes, the smallest image every client shows. */
static const unsigned char pixel[43] = {
    'G',  'I',  'F',  '8',  '9',  'a',  0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

static const char html_type[] = "text/html; charset=utf-8";

/* ---- database connections, one per thread at a time ------------------------ */

static store *db_take(endpoints *ep, td_error *e)
{
    pthread_mutex_lock(&ep->mu);
    store *s = ep->npool ? ep->pool[--ep->npool] : NULL;
    pthread_mutex_unlock(&ep->mu);
    if (!s && store_open(ep->location, &s, e))
        return NULL;
    return s;
}

static void db_put(endpoints *ep, store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&ep->mu);
    if (ep->npool < POOL_MAX) {
        ep->pool[ep->npool++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&ep->mu);
    store_close(s);
}

/* ---- answers -------------------------------------------------------------- */

static void page_begin(http_resp *r, int status, const char *title)
{
    r->status = status;
    r->ctype = html_type;
    r->no_cache = true;
    buf_reset(&r->body);
    buf_puts(&r->body, "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width\">"
                       "<meta name=\"robots\" content=\"noindex\"><title>");
    html_escape_str(&r->body, title);
    buf_puts(&r->body, "</title><style>body{font-family:sans-serif;max-width:36em;margin:3em "
                       "auto;padding:0 1em;line-height:1.5}label{display:block;margin:.5em 0}"
                       "</style></head><body>\n<h1>");
    html_escape_str(&r->body, title);
    buf_puts(&r->body, "</h1>\n");
}

static void page_end(http_resp *r)
{
    buf_puts(&r->body, "</body></html>\n");
}

/* message_page is a page of one escaped paragraph. */
static void message_page(http_resp *r, int status, const char *title, const char *text)
{
    page_begin(r, status, title);
    buf_puts(&r->body, "<p>");
    html_escape_str(&r->body, text);
    buf_puts(&r->body, "</p>\n");
    page_end(r);
}

static void plain(http_resp *r, int status, const char *text)
{
    r->status = status;
    r->ctype = NULL;
    buf_reset(&r->body);
    buf_puts(&r->body, text);
}

static void not_found(http_resp *r)
{
    plain(r, 404, "not found\n");
}

static void server_error(http_resp *r, const char *what, const td_error *e)
{
    log_error("http: %s: %s", what, e->msg);
    message_page(r, 503, "Please try again",
                 "Something went wrong on our side. Please try again in a few minutes.");
}

/* open_token checks the request's token and that it is of kind k. */
static bool open_token(endpoints *ep, const http_req *req, track_kind k, track_claims *c)
{
    if (track_open(ep->key, req->m.arg, req->m.arg_len, c, NULL))
        return false;
    if (c->kind != k) {
        track_claims_clear(c);
        return false;
    }
    return true;
}

/* The action URL of a page's form: the path it was fetched at. */
static void form_action(http_resp *r, const char *prefix, const http_req *req)
{
    buf_puts(&r->body, prefix);
    html_escape(&r->body, req->m.arg, req->m.arg_len);
}

/* ---- open and click ------------------------------------------------------------ */

static void do_open(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_OPEN, &c))
        return not_found(r);
    event_rec ev = {.kind = "open",
                    .campaign_id = c.campaign_id,
                    .subscriber_id = c.subscriber_id,
                    .list_id = c.list_id};
    int rc = evq_push(ep->q, &ev);
    track_claims_clear(&c);
    if (rc)
        return plain(r, 503, "stopping\n");
    r->status = 200;
    r->ctype = "image/gif";
    r->no_cache = true;
    buf_append(&r->body, pixel, sizeof pixel);
}

/* A click target must be what campaign/context puts in a token: http or
 * https, no space or control character (so no header can be split). */
static bool target_ok(const char *u, size_t n)
{
    if (!((n > 7 && !strncasecmp(u, "http://", 7)) || (n > 8 && !strncasecmp(u, "https://", 8))))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
            return false;
    return true;
}

static void do_click(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_CLICK, &c))
        return not_found(r);
    if (!c.data || !target_ok(c.data, c.data_len)) {
        track_claims_clear(&c);
        return not_found(r);
    }
    event_rec ev = {.kind = "click",
                    .campaign_id = c.campaign_id,
                    .subscriber_id = c.subscriber_id,
                    .list_id = c.list_id,
                    .data = c.data};
    if (evq_push(ep->q, &ev)) {
        track_claims_clear(&c);
        return plain(r, 503, "stopping\n");
    }
    r->status = 302;
    r->ctype = NULL;
    r->no_cache = true;
    r->location = c.data; /* the server frees it */
    c.data = NULL;
    track_claims_clear(&c);
}

/* ---- unsubscribe ------------------------------------------------------------------ */

struct memberships {
    http_resp *r;
    int n;
};

static int show_membership(void *ud, const char *list, const char *status)
{
    struct memberships *m = ud;
    if (m->n++ == 0)
        buf_puts(&m->r->body, "<p>Your lists:</p>\n<ul>\n");
    buf_puts(&m->r->body, "<li>");
    html_escape_str(&m->r->body, list);
    buf_puts(&m->r->body, ": ");
    html_escape_str(&m->r->body, !strcmp(status, "confirmed")      ? "subscribed"
                                 : !strcmp(status, "unconfirmed") ? "not yet confirmed"
                                                                  : "unsubscribed");
    buf_puts(&m->r->body, "</li>\n");
    return 0;
}

static void unsub_page(endpoints *ep, const http_req *req, http_resp *r, const track_claims *c)
{
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "unsubscribe page", &e);
    sub_rec sub = {0};
    int rc = store_sub_get(s, c->subscriber_id, &sub, &e);
    if (rc == TD_ENOTFOUND) {
        db_put(ep, s);
        return message_page(r, 200, "Unsubscribe",
                            "This address is no longer on any of our lists.");
    }
    if (rc) {
        db_put(ep, s);
        return server_error(r, "unsubscribe page", &e);
    }
    page_begin(r, 200, "Unsubscribe");
    buf_puts(&r->body, "<p>Stop these emails to <strong>");
    html_escape_str(&r->body, sub.email);
    buf_puts(&r->body, "</strong>?</p>\n");
    struct memberships m = {.r = r};
    store_member_lists(s, sub.id, show_membership, &m, NULL);
    if (m.n)
        buf_puts(&r->body, "</ul>\n");
    db_put(ep, s);
    sub_rec_clear(&sub);
    buf_puts(&r->body, "<form method=\"post\" action=\"");
    form_action(r, "/u/", req);
    buf_puts(&r->body,
             "\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n"
             "<label><input type=\"checkbox\" name=\"all\" value=\"1\"> from every list, not only "
             "this one</label>\n<button type=\"submit\">Unsubscribe</button>\n</form>\n");
    page_end(r);
}

static void do_unsub(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_UNSUB, &c))
        return not_found(r);
    track_claims_clear(&c); /* an unsubscribe token carries no data */
    if (strcmp(req->method, "POST")) {
        unsub_page(ep, req, r, &c);
        return;
    }
    /* RFC 8058: the body is "List-Unsubscribe=One-Click"; our own page
     * sends the same field, with "all" when asked. */
    const char *v = http_form_get(req, "List-Unsubscribe");
    if (!v || strcmp(v, "One-Click")) {
        plain(r, 400, "a one-click unsubscribe is a POST of List-Unsubscribe=One-Click\n");
        return;
    }
    const char *all = http_form_get(req, "all");
    bool every = all && !strcmp(all, "1");
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "unsubscribe", &e);
    /* The consent change and its event together, before the answer: a
     * message made after this answer must not go to this subscriber. */
    uint64_t n = 0;
    event_rec ev = {.kind = "unsubscribe",
                    .campaign_id = c.campaign_id,
                    .subscriber_id = c.subscriber_id,
                    .list_id = c.list_id,
                    .data = every ? "all" : NULL};
    int rc = store_begin(s, &e);
    if (!rc) {
        if ((rc = store_unsubscribe(s, c.subscriber_id, every ? 0 : c.list_id,
                                    every ? 0 : c.campaign_id, time(NULL), &n, &e)) ||
            (rc = store_event_add(s, &ev, 1, &e)) || (rc = store_commit(s, &e)))
            store_rollback(s);
    }
    db_put(ep, s);
    if (rc)
        return server_error(r, "unsubscribe", &e);
    evq_note(ep->q, "unsubscribe");
    log_info("http: unsubscribe subscriber=%lld campaign=%lld list=%lld all=%d changed=%llu",
             (long long)c.subscriber_id, (long long)c.campaign_id, (long long)c.list_id, every,
             (unsigned long long)n);
    message_page(r, 200, "Unsubscribed",
                 every ? "You will not get any more emails from us."
                       : "You will not get any more emails from this list.");
}

/* ---- preferences ---------------------------------------------------------------- */

/* The preferences page: every list the subscriber is on, a box each,
 * ticked while subscribed. Its form names each box "list:" + the list's
 * name (names are unique), so a POST says which lists stay ticked. */
struct prefs {
    http_resp *r;
    int n;
};

static int pref_box(void *ud, const char *list, const char *status)
{
    struct prefs *p = ud;
    if (p->n++ == 0)
        buf_puts(&p->r->body, "<fieldset><legend>Your lists</legend>\n");
    buf_puts(&p->r->body, "<label><input type=\"checkbox\" name=\"list:");
    html_escape_str(&p->r->body, list);
    buf_puts(&p->r->body, "\" value=\"1\"");
    if (strcmp(status, "unsubscribed"))
        buf_puts(&p->r->body, " checked");
    buf_puts(&p->r->body, "> <span dir=\"auto\">");
    html_escape_str(&p->r->body, list);
    buf_puts(&p->r->body, "</span></label>\n");
    return 0;
}

static void prefs_page(endpoints *ep, const http_req *req, http_resp *r, int64_t sub_id,
                       const char *note)
{
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "preferences page", &e);
    sub_rec sub = {0};
    int rc = store_sub_get(s, sub_id, &sub, &e);
    if (rc) {
        db_put(ep, s);
        if (rc == TD_ENOTFOUND)
            return message_page(r, 200, "Your preferences",
                                "This address is no longer on any of our lists.");
        return server_error(r, "preferences page", &e);
    }
    page_begin(r, 200, "Your preferences");
    if (note) {
        buf_puts(&r->body, "<p role=\"status\"><strong>");
        html_escape_str(&r->body, note);
        buf_puts(&r->body, "</strong></p>\n");
    }
    buf_puts(&r->body, "<p>The emails <strong>");
    html_escape_str(&r->body, sub.email);
    buf_puts(&r->body, "</strong> gets from us: untick a list to leave it.</p>\n"
                       "<form method=\"post\" action=\"");
    form_action(r, "/p/", req);
    buf_puts(&r->body, "\">\n");
    struct prefs p = {.r = r};
    store_member_lists(s, sub.id, pref_box, &p, NULL);
    db_put(ep, s);
    sub_rec_clear(&sub);
    if (p.n)
        buf_puts(&r->body, "</fieldset>\n<button type=\"submit\">Save</button>\n");
    else
        buf_puts(&r->body, "<p>You are on none of our lists.</p>\n");
    buf_puts(&r->body, "</form>\n");
    page_end(r);
}

/* A POST of the preferences form: each membership whose box is missing is
 * unsubscribed, each ticked one that was unsubscribed is subscribed again
 * (confirmed: the signed link proves the address), one event each. */
struct prefs_change {
    const http_req *req;
    store *s;
    int64_t sub_id, campaign_id;
    int changed;
    td_error *e;
    int rc;
};

static int pref_apply(void *ud, const char *list, const char *status)
{
    struct prefs_change *pc = ud;
    char field[300];
    if ((size_t)snprintf(field, sizeof field, "list:%s", list) >= sizeof field)
        return 0;
    bool want = http_form_get(pc->req, field) != NULL;
    bool on = strcmp(status, "unsubscribed") != 0;
    if (want == on)
        return 0;
    list_rec l = {0};
    if ((pc->rc = store_list_find(pc->s, list, &l, pc->e)))
        return 1;
    event_rec ev = {.kind = want ? "signup" : "unsubscribe",
                    .campaign_id = want ? 0 : pc->campaign_id,
                    .subscriber_id = pc->sub_id,
                    .list_id = l.id,
                    .data = "preferences"};
    if (want)
        pc->rc = store_member_set(pc->s, l.id, pc->sub_id, "confirmed", false, NULL, pc->e);
    else
        pc->rc = store_unsubscribe(pc->s, pc->sub_id, l.id, 0, time(NULL), NULL, pc->e);
    if (!pc->rc)
        pc->rc = store_event_add(pc->s, &ev, 1, pc->e);
    list_rec_clear(&l);
    pc->changed++;
    return pc->rc ? 1 : 0;
}

static void do_prefs(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_PREFS, &c))
        return not_found(r);
    track_claims_clear(&c);
    if (strcmp(req->method, "POST"))
        return prefs_page(ep, req, r, c.subscriber_id, NULL);
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "preferences", &e);
    struct prefs_change pc = {.req = req, .s = s, .sub_id = c.subscriber_id,
                              .campaign_id = c.campaign_id, .e = &e};
    /* Every change and its event in one transaction, before the answer. */
    int rc = store_begin(s, &e);
    if (!rc) {
        rc = store_member_lists(s, c.subscriber_id, pref_apply, &pc, &e);
        rc = rc ? rc : pc.rc;
        if (rc || (rc = store_commit(s, &e)))
            store_rollback(s);
    }
    db_put(ep, s);
    if (rc)
        return server_error(r, "preferences", &e);
    if (pc.changed)
        evq_note(ep->q, "unsubscribe");
    log_info("http: preferences subscriber=%lld changed=%d", (long long)c.subscriber_id,
             pc.changed);
    prefs_page(ep, req, r, c.subscriber_id, pc.changed ? "Saved." : "Nothing changed.");
}

/* ---- view in browser -------------------------------------------------------------- */

static void do_view(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_VIEW, &c))
        return not_found(r);
    track_claims_clear(&c);
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "view", &e);
    char *subject = NULL;
    buf_reset(&r->body);
    int rc = campaign_view(s, c.campaign_id, c.subscriber_id, &r->body, &subject, &e);
    db_put(ep, s);
    free(subject);
    if (rc == TD_ENOTFOUND)
        return message_page(r, 404, "Not available", "This message is no longer available.");
    if (rc)
        return server_error(r, "view", &e);
    r->status = 200;
    r->ctype = html_type;
    r->no_cache = true;
}

/* ---- signup and confirmation -------------------------------------------------------- */

/* The first relay, where confirmation messages go. */
static int first_relay(void *ud, const relay_rec *rr)
{
    char **url = ud;
    if (!*url)
        *url = xstrdup(rr->url);
    return 1;
}

/* public_host is the host of the public URL, for the sender's address. */
static void public_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, ":/?#");
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* send_confirm sends sub's confirmation message for list through the
 * first relay, synchronously: signups are few, and the answer can then
 * say whether it went. */
static int send_confirm(endpoints *ep, store *s, const list_rec *l, int64_t sub_id,
                        const char *email, td_error *e)
{
    char *relay = NULL, *from = NULL;
    store_relay_each(s, first_relay, &relay, NULL);
    if (!relay)
        return td_err_set(e, TD_EINVAL, "no relay to send the confirmation through "
                                        "(`tidings relay add`)");
    if (store_setting_get(s, "signup_from", &from, NULL)) {
        char host[256];
        public_host(ep->public_url, host, sizeof host);
        size_t n = strlen(host) + 64;
        from = xmalloc(n);
        /* An address literal or a dotless name is no sender's domain. */
        size_t hl = strlen(host);
        bool domain = strchr(host, '.') && hl && !isdigit((unsigned char)host[hl - 1]) &&
                      !strchr(host, '[');
        snprintf(from, n, "noreply@%s", domain ? host : "localhost.localdomain");
    }
    buf link, text, msg;
    buf_init(&link, BUF_NOCAP);
    buf_init(&text, BUF_NOCAP);
    buf_init(&msg, BUF_NOCAP);
    msg_envelope *env = NULL;
    smtp_url u = {0};
    smtp_result res = {0};
    track_claims c = {.kind = TRACK_CONFIRM, .subscriber_id = sub_id, .list_id = l->id};
    int rc = track_url(ep->key, ep->public_url, &c, &link, e);
    if (rc)
        goto out;
    buf_printf(&text,
               "Please confirm that you want to get the emails of \"%s\" at %s:\n\n%s\n\n"
               "If you did not ask for them, ignore this message: nothing will be sent.\n",
               l->name, email, link.data);
    char subject[400];
    snprintf(subject, sizeof subject, "Confirm your subscription to %s", l->name);
    msg_envelope_spec es = {.from = from};
    msg_info info;
    msg_spec ms = {.to = email,
                   .subject = subject,
                   .subject_len = strlen(subject),
                   .text = text.data,
                   .text_len = text.len};
    if ((rc = msg_envelope_new(&es, &env, e)) || (rc = msg_build(env, &ms, &msg, &info, e)) ||
        (rc = smtp_url_parse(relay, &u, e)))
        goto out;
    const char *rcpt[1] = {info.rcpt_to};
    smtp_msg sm = {.from = info.mail_from, .rcpt = rcpt, .nrcpt = 1, .data = msg.data,
                   .len = msg.len};
    if (u.kind == SMTP_URL_MAILDIR) {
        smtp_maildir *md = smtp_maildir_open(u.path, true, e);
        if (!md) {
            rc = TD_EIO;
            goto out;
        }
        rc = smtp_maildir_deliver(md, &sm, &res, e);
        smtp_maildir_free(md);
    } else {
        smtp_conn *conn = smtp_open(&u, NULL, e);
        if (!conn) {
            rc = TD_ETEMP;
            goto out;
        }
        rc = smtp_send(conn, &sm, &res, e);
        smtp_close(conn);
    }
    if (!rc && res.status != SMTP_OK)
        rc = td_err_set(e, TD_ETEMP, "the relay did not take the confirmation: %d %s",
                        res.reply.code, res.reply.text ? res.reply.text : "");
out:
    smtp_result_clear(&res);
    smtp_url_clear(&u);
    msg_envelope_free(env);
    buf_free(&link);
    buf_free(&text);
    buf_free(&msg);
    free(relay);
    free(from);
    return rc;
}

/* find_list finds the public list the signup path names. */
static int find_list(store *s, const http_req *req, list_rec *l, td_error *e)
{
    char name[ROUTER_ARG_MAX + 1];
    memcpy(name, req->m.arg, req->m.arg_len);
    name[req->m.arg_len] = '\0';
    int rc = store_list_find(s, name, l, e);
    if (!rc && strcmp(l->visibility, "public")) {
        list_rec_clear(l);
        rc = TD_ENOTFOUND; /* a private list is not shown to strangers */
    }
    return rc;
}

static void signup_form(http_resp *r, const http_req *req, const list_rec *l, const char *email,
                        const char *name, const char *error)
{
    page_begin(r, error ? 400 : 200, l->name);
    if (error) {
        buf_puts(&r->body, "<p role=\"alert\"><strong>");
        html_escape_str(&r->body, error);
        buf_puts(&r->body, "</strong></p>\n");
    }
    buf_puts(&r->body, "<form method=\"post\" action=\"");
    form_action(r, "/s/", req);
    buf_puts(&r->body, "\">\n<label>Email <input type=\"email\" name=\"email\" required "
                       "maxlength=\"254\" value=\"");
    html_escape_str(&r->body, email);
    buf_puts(&r->body, "\"></label>\n<label>Name <input type=\"text\" name=\"name\" "
                       "maxlength=\"200\" value=\"");
    html_escape_str(&r->body, name);
    buf_puts(&r->body, "\"></label>\n<button type=\"submit\">Subscribe</button>\n</form>\n");
    page_end(r);
}

struct status_of {
    const char *list;
    char status[16];
};

static int find_status(void *ud, const char *list, const char *status)
{
    struct status_of *so = ud;
    if (!strcmp(list, so->list))
        snprintf(so->status, sizeof so->status, "%s", status);
    return 0;
}

static void do_signup(endpoints *ep, const http_req *req, http_resp *r)
{
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "signup", &e);
    list_rec l = {0};
    int rc = find_list(s, req, &l, &e);
    if (rc) {
        db_put(ep, s);
        if (rc == TD_ENOTFOUND)
            return not_found(r);
        return server_error(r, "signup", &e);
    }
    if (strcmp(req->method, "POST")) {
        signup_form(r, req, &l, "", "", NULL);
        goto done;
    }
    const char *email_in = http_form_get(req, "email");
    const char *name = http_form_get(req, "name");
    if (!name)
        name = "";
    char *email = email_in ? addr_normalize(email_in, NULL) : NULL;
    td_error ne = {0};
    if (!email) {
        signup_form(r, req, &l, email_in ? email_in : "", name,
                    "Please give a valid email address.");
        goto done;
    }
    if (text_check("the name", name, strlen(name), SIGNUP_NAME_MAX, &ne)) {
        signup_form(r, req, &l, email, name, ne.msg);
        free(email);
        goto done;
    }
    bool dbl = !strcmp(l.optin, "double");
    int64_t sub_id = 0;
    sub_outcome out;
    sub_rec sr = {.email = email, .name = (char *)name, .attribs = "{}", .status = "enabled"};
    struct status_of so = {.list = l.name};
    if (!(rc = store_begin(s, &e))) {
        if (!(rc = store_sub_upsert(s, &sr, SUB_MODE_SUBSCRIBE, &sub_id, &out, &e)) &&
            !(rc = store_member_lists(s, sub_id, find_status, &so, &e))) {
            /* Confirmed stays confirmed; anyone else is (re)subscribed,
             * pending confirmation on a double opt-in list. */
            if (strcmp(so.status, "confirmed"))
                rc = store_member_set(s, l.id, sub_id, dbl ? "unconfirmed" : "confirmed", false,
                                      NULL, &e);
            event_rec ev = {.kind = "signup", .subscriber_id = sub_id, .list_id = l.id,
                            .data = dbl ? "double" : "single"};
            if (!rc)
                rc = store_event_add(s, &ev, 1, &e);
        }
        if (rc || (rc = store_commit(s, &e)))
            store_rollback(s);
    }
    if (rc) {
        free(email);
        db_put(ep, s);
        list_rec_clear(&l);
        return server_error(r, "signup", &e);
    }
    evq_note(ep->q, "signup");
    log_info("http: signup subscriber=%lld list=%lld optin=%s", (long long)sub_id,
             (long long)l.id, l.optin);
    if (dbl && strcmp(so.status, "confirmed")) {
        if ((rc = send_confirm(ep, s, &l, sub_id, email, &e))) {
            log_error("http: confirmation for subscriber=%lld not sent: %s", (long long)sub_id,
                      e.msg);
            message_page(r, 503, "Please try again",
                         "We could not send the confirmation email just now. Please try again "
                         "in a few minutes.");
        } else {
            page_begin(r, 200, "Check your inbox");
            buf_puts(&r->body, "<p>Thank you");
            if (*name) {
                buf_puts(&r->body, ", ");
                html_escape_str(&r->body, name);
            }
            buf_puts(&r->body, ". We sent a link to <strong>");
            html_escape_str(&r->body, email);
            buf_puts(&r->body, "</strong>: open it to confirm your subscription to ");
            html_escape_str(&r->body, l.name);
            buf_puts(&r->body, ".</p>\n");
            page_end(r);
        }
    } else {
        page_begin(r, 200, "Subscribed");
        buf_puts(&r->body, "<p>Thank you");
        if (*name) {
            buf_puts(&r->body, ", ");
            html_escape_str(&r->body, name);
        }
        buf_puts(&r->body, ". <strong>");
        html_escape_str(&r->body, email);
        buf_puts(&r->body, "</strong> is subscribed to ");
        html_escape_str(&r->body, l.name);
        buf_puts(&r->body, ".</p>\n");
        page_end(r);
    }
    free(email);
done:
    db_put(ep, s);
    list_rec_clear(&l);
}

/* GET shows a button and POST confirms: mail scanners fetch the links in
 * a message, and a fetch must not confirm on the subscriber's behalf. */
static void do_confirm(endpoints *ep, const http_req *req, http_resp *r)
{
    track_claims c;
    if (!open_token(ep, req, TRACK_CONFIRM, &c))
        return not_found(r);
    track_claims_clear(&c);
    if (strcmp(req->method, "POST")) {
        page_begin(r, 200, "Confirm your subscription");
        buf_puts(&r->body, "<form method=\"post\" action=\"");
        form_action(r, "/confirm/", req);
        buf_puts(&r->body, "\">\n<button type=\"submit\">Yes, subscribe me</button>\n</form>\n");
        page_end(r);
        return;
    }
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "confirm", &e);
    /* Only a pending membership is confirmed: an old link does not undo a
     * later unsubscribe. */
    bool changed = false;
    event_rec ev = {.kind = "confirm", .subscriber_id = c.subscriber_id, .list_id = c.list_id};
    int rc = store_begin(s, &e);
    if (!rc) {
        if ((rc = store_member_confirm(s, c.list_id, c.subscriber_id, time(NULL), &changed, &e)) ||
            (changed && (rc = store_event_add(s, &ev, 1, &e))) || (rc = store_commit(s, &e)))
            store_rollback(s);
    }
    db_put(ep, s);
    if (rc)
        return server_error(r, "confirm", &e);
    if (changed) {
        evq_note(ep->q, "confirm");
        log_info("http: confirm subscriber=%lld list=%lld", (long long)c.subscriber_id,
                 (long long)c.list_id);
    }
    message_page(r, 200, "Subscribed", "Thank you: your subscription is confirmed.");
}

/* ---- health and metrics ---------------------------------------------------------------- */

static void do_healthz(endpoints *ep, http_resp *r)
{
    td_error e = {0};
    int v = 0;
    store *s = db_take(ep, &e);
    if (s && !store_schema_version(s, &v, &e) && v > 0) {
        db_put(ep, s);
        return plain(r, 200, "ok\n");
    }
    db_put(ep, s);
    log_warn("http: healthz: %s", e.msg);
    plain(r, 503, "database not answering\n");
}

static void do_metrics(endpoints *ep, http_resp *r)
{
    r->status = 200;
    r->ctype = "text/plain; version=0.0.4; charset=utf-8";
    buf *b = &r->body;
    if (ep->srv)
        http_server_metrics(ep->srv, b);
    evq_stats st;
    evq_get_stats(ep->q, &st);
    buf_puts(b, "# HELP tidings_events_total Events stored by this process, by kind.\n"
                "# TYPE tidings_events_total counter\n");
    for (int k = 0; k < EVQ_KINDS; k++)
        buf_printf(b, "tidings_events_total{kind=\"%s\"} %llu\n", evq_kind_name(k),
                   (unsigned long long)st.stored[k]);
    buf_printf(b, "# HELP tidings_event_queue_depth Events waiting to be stored.\n"
                  "# TYPE tidings_event_queue_depth gauge\ntidings_event_queue_depth %llu\n",
               (unsigned long long)st.queued);
    td_error e = {0};
    campaign_counts cc = {0};
    store *s = db_take(ep, &e);
    if (!s || store_campaign_counts(s, 0, &cc, &e)) {
        db_put(ep, s);
        log_warn("http: metrics: %s", e.msg);
        return; /* the counters above are still worth having */
    }
    db_put(ep, s);
    buf_printf(b,
               "# HELP tidings_messages_sent_total Campaign messages sent.\n"
               "# TYPE tidings_messages_sent_total counter\ntidings_messages_sent_total %llu\n"
               "# HELP tidings_messages_failed_total Campaign messages that failed for good.\n"
               "# TYPE tidings_messages_failed_total counter\n"
               "tidings_messages_failed_total %llu\n"
               "# HELP tidings_delivery_queue_depth Deliveries waiting: queued and deferred.\n"
               "# TYPE tidings_delivery_queue_depth gauge\ntidings_delivery_queue_depth %llu\n",
               (unsigned long long)cc.sent, (unsigned long long)cc.failed,
               (unsigned long long)(cc.queued + cc.deferred));
}

/* ---- provider webhooks ---------------------------------------------------------------- */

static void do_webhook(endpoints *ep, const http_req *req, http_resp *r)
{
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s) {
        log_error("http: webhook: %s", e.msg);
        return plain(r, 503, "try again\n");
    }
    webhooks_serve(ep->wh, s, req, r);
    db_put(ep, s);
}

/* ---- the API and accounts -------------------------------------------------------------- */

static void do_api(endpoints *ep, const http_req *req, http_resp *r)
{
    td_error e = {0};
    store *s = db_take(ep, &e);
    if (!s)
        return server_error(r, "api", &e);
    switch (req->m.route) {
    case ROUTE_LOGIN: api_login(s, &ep->api, req, r); break;
    case ROUTE_LOGOUT: api_logout(s, &ep->api, req, r); break;
    default: api_handle(s, &ep->api, req, r); break;
    }
    db_put(ep, s);
}

/* ---- the handler --------------------------------------------------------------------- */

void endpoints_handle(void *ud, const http_req *req, http_resp *resp)
{
    endpoints *ep = ud;
    switch (req->m.route) {
    case ROUTE_OPEN: do_open(ep, req, resp); break;
    case ROUTE_CLICK: do_click(ep, req, resp); break;
    case ROUTE_UNSUB: do_unsub(ep, req, resp); break;
    case ROUTE_PREFS: do_prefs(ep, req, resp); break;
    case ROUTE_VIEW: do_view(ep, req, resp); break;
    case ROUTE_SIGNUP: do_signup(ep, req, resp); break;
    case ROUTE_CONFIRM: do_confirm(ep, req, resp); break;
    case ROUTE_HEALTHZ: do_healthz(ep, resp); break;
    case ROUTE_METRICS: do_metrics(ep, resp); break;
    case ROUTE_WEBHOOK: do_webhook(ep, req, resp); break;
    case ROUTE_LOGIN:
    case ROUTE_LOGOUT:
    case ROUTE_API: do_api(ep, req, resp); break;
    default: not_found(resp); break;
    }
}

int endpoints_new(const char *location, endpoints **out, td_error *e)
{
    *out = NULL;
    endpoints *ep = xcalloc(1, sizeof *ep);
    pthread_mutex_init(&ep->mu, NULL);
    ep->location = xstrdup(location);
    ep->wh = webhook_new();
    char *secret = NULL;
    store *s = NULL;
    int rc = secret_init() ? td_err_set(e, TD_EINTERNAL, "libsodium did not start") : TD_OK;
    if (!rc)
        rc = store_open(location, &s, e);
    if (!rc && (rc = store_setting_get(s, "secret", &secret, e)) == TD_ENOTFOUND)
        rc = td_err_set(e, TD_EINVAL, "the database has no signing secret: run `tidings init`");
    if (!rc && store_setting_get(s, "public_url", &ep->public_url, NULL))
        ep->public_url = xstrdup("http://127.0.0.1:8080");
    if (!rc) {
        /* Behind https the session cookie must never go out in clear. */
        ep->api.secure = !strncasecmp(ep->public_url, "https://", 8);
        track_key(secret, ep->key);
        rc = evq_new(location, &ep->q, e);
    }
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
    if (rc) {
        store_close(s);
        endpoints_free(ep);
        return rc;
    }
    ep->pool[ep->npool++] = s;
    *out = ep;
    return TD_OK;
}

void endpoints_set_server(endpoints *ep, http_server *s)
{
    ep->srv = s;
}

void endpoints_free(endpoints *ep)
{
    if (!ep)
        return;
    evq_free(ep->q);
    webhook_free(ep->wh);
    for (int i = 0; i < ep->npool; i++)
        store_close(ep->pool[i]);
    pthread_mutex_destroy(&ep->mu);
    free(ep->location);
    free(ep->public_url);
    free(ep);
}
