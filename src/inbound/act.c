/* act: matching an inbound message to what it answers and applying it,
 * exactly once (see act.h and docs/internals/inbound.md). */
#include "inbound/act.h"

#include <jansson.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mime/addr.h"
#include "mime/msg.h"
#include "track/token.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- small helpers ------------------------------------------------------- */

/* The number after prefix when s is exactly prefix and 1 to 18 digits, else 0. */
static int64_t id_after(const char *s, char prefix)
{
    if (!s || s[0] != prefix || !s[1])
        return 0;
    int64_t v = 0;
    for (const char *p = s + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - s > 18)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* Digits at p as an id (0 when none or too long); *end after them. */
static int64_t digits(const char *p, const char **end)
{
    int64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9' && n < 18) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (end)
        *end = p;
    return n && !(*p >= '0' && *p <= '9') ? v : 0;
}

/* Appends to the note, cut at its size (a note is for a person to read). */
static void note_add(act_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(act_result *out, const char *fmt, ...)
{
    size_t n = strlen(out->note);
    if (n >= sizeof out->note - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->note + n, sizeof out->note - n, fmt, ap);
    va_end(ap);
}

/* The address in its stored form (mime/addr.h normalisation), or a
 * lower-cased copy when it does not parse. */
static void norm_addr(const char *a, char out[320])
{
    char *n = addr_normalize(a, NULL);
    snprintf(out, 320, "%s", n ? n : a);
    free(n);
    if (!n)
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
}

static void take_delivery(act_match *out, const char *by, const delivery_rec *d)
{
    out->by = by;
    out->campaign_id = d->campaign_id;
    out->subscriber_id = d->subscriber_id;
    out->delivery_id = d->id;
    snprintf(out->email, sizeof out->email, "%s", d->email ? d->email : "");
}

/* Runs a delivery lookup; TD_ENOTFOUND becomes "no match". */
static int found(int rc, bool *yes, td_error *e)
{
    *yes = rc == TD_OK;
    if (rc == TD_ENOTFOUND) {
        td_err_clear(e);
        return TD_OK;
    }
    return rc;
}

/* ---- matching ------------------------------------------------------------- */

/* signing_key derives the installation's token key (track_key of the
 * 'secret' setting) into key; false when there is no secret. */
static bool signing_key(store *s, uint8_t key[TRACK_KEY_LEN])
{
    char *secret = NULL;
    if (store_setting_get(s, "secret", &secret, NULL) || !secret) {
        free(secret);
        return false;
    }
    track_key(secret, key);
    free(secret);
    return true;
}

/* A VERP return path among the addresses (the envelope recipient, those
 * the message was delivered to, the returned original's envelope sender):
 * the delivery it names, when that delivery is of the campaign it names
 * too. */
static int match_verp(store *s, const char *rcpt, const inmsg *m, const char *orig_rp,
                      act_match *out, td_error *e)
{
    size_t n = m ? m->nrcpts : 0;
    uint8_t key[TRACK_KEY_LEN];
    bool have_key = false;
    for (size_t i = 0; i <= n + 1; i++) {
        const char *a = i == 0 ? rcpt : i <= n ? m->rcpts[i - 1] : orig_rp;
        msg_verp v;
        if (!a || msg_verp_parse(a, ACT_VERP_BASE, &v, NULL))
            continue;
        int64_t cid = id_after(v.campaign, 'c');
        if (!cid)
            continue;
        /* Only a tagged token the installation made (track/token.h): the
         * bare delivery id, readable and changeable in any recipient's own
         * copy, would let anyone suppress or unsubscribe anyone. */
        if (!have_key && !(have_key = signing_key(s, key)))
            return TD_OK;
        int64_t did = track_verp_check(key, cid, v.token);
        if (!did)
            continue;
        delivery_rec d = {0};
        bool yes;
        int rc = found(store_delivery_get(s, did, &d, e), &yes, e);
        if (!rc && yes && d.campaign_id == cid)
            take_delivery(out, "verp", &d);
        delivery_rec_clear(&d);
        if (rc || out->by)
            return rc;
    }
    return TD_OK;
}

static int match_message_id(store *s, const char *mid, const char *by, act_match *out,
                            td_error *e)
{
    if (!mid || !*mid || strlen(mid) > MSG_ID_MAX)
        return TD_OK;
    delivery_rec d = {0};
    bool yes;
    int rc = found(store_delivery_by_message_id(s, mid, &d, e), &yes, e);
    if (!rc && yes)
        take_delivery(out, by, &d);
    delivery_rec_clear(&d);
    return rc;
}

static const char *orig_header(const bounce_result *br, const char *name)
{
    for (size_t i = 0; br && i < br->norig_headers; i++)
        if (!strcasecmp(br->orig_headers[i].name, name))
            return br->orig_headers[i].value;
    return NULL;
}

/* The returned original's List-Unsubscribe URL carries a signed token
 * (track/token.h) naming the campaign and subscriber: it survives when
 * both the VERP and the Message-ID are lost, and cannot be forged. */
static int match_token(store *s, const bounce_result *br, act_match *out, td_error *e)
{
    const char *lu = orig_header(br, "List-Unsubscribe");
    const char *u = lu ? strstr(lu, "/u/") : NULL;
    if (!u)
        return TD_OK;
    u += 3;
    size_t n = strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    uint8_t key[TRACK_KEY_LEN];
    if (!n || !signing_key(s, key))
        return TD_OK;
    track_claims c = {0};
    int rc = TD_OK;
    if (!track_open(key, u, n, &c, NULL) && c.kind == TRACK_UNSUB && c.campaign_id &&
        c.subscriber_id) {
        delivery_rec d = {0};
        bool yes;
        rc = found(store_delivery_of(s, c.campaign_id, c.subscriber_id, &d, e), &yes, e);
        if (!rc && yes)
            take_delivery(out, "token", &d);
        delivery_rec_clear(&d);
    }
    track_claims_clear(&c);
    return rc;
}

int act_match_message(store *s, const bounce_result *br, const inmsg *m, const char *rcpt,
                      act_match *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = match_verp(s, rcpt, m, br ? br->orig_return_path : NULL, out, e);
    if (!rc && !out->by && br)
        rc = match_message_id(s, br->orig_message_id, "message-id", out, e);
    if (!rc && !out->by && br)
        rc = match_token(s, br, out, e);
    return rc;
}

/* The campaign the returned original's List-Id ("campaign-N.domain") or
 * Feedback-ID ("N:tidings:campaign") names, or 0. */
static int64_t orig_campaign(const bounce_result *br)
{
    const char *li = orig_header(br, "List-Id");
    const char *p = li ? strstr(li, "campaign-") : NULL;
    const char *end;
    if (p) {
        int64_t id = digits(p + 9, &end);
        if (id && *end == '.')
            return id;
    }
    const char *fb = orig_header(br, "Feedback-ID");
    if (fb) {
        while (*fb == ' ')
            fb++;
        int64_t id = digits(fb, &end);
        if (id && !strncmp(end, ":tidings:campaign", 17))
            return id;
    }
    return 0;
}

/* One try of act_match_address with the address as stored. */
static int match_address_as(store *s, int64_t cid, const char *a, act_match *out, td_error *e)
{
    int rc = TD_OK;
    bool yes = false;
    delivery_rec d = {0};
    if (cid) {
        sub_rec sub = {0};
        rc = found(store_sub_find(s, a, &sub, e), &yes, e);
        if (!rc && yes)
            rc = found(store_delivery_of(s, cid, sub.id, &d, e), &yes, e);
        sub_rec_clear(&sub);
        if (!rc && yes)
            take_delivery(out, "headers", &d);
        delivery_rec_clear(&d);
    }
    if (!rc && !out->by) {
        rc = found(store_delivery_last_to(s, a, &d, e), &yes, e);
        if (!rc && yes)
            take_delivery(out, "address", &d);
        delivery_rec_clear(&d);
    }
    return rc;
}

int act_match_address(store *s, const bounce_result *br, const char *address, act_match *out,
                      td_error *e)
{
    memset(out, 0, sizeof *out);
    char a[320], lower[320];
    norm_addr(address, a);
    int64_t cid = orig_campaign(br);
    int rc = match_address_as(s, cid, a, out, e);
    /* Servers change the case of local parts; the stored address keeps the
     * subscriber's. Lower case is the usual form: try it too. */
    snprintf(lower, sizeof lower, "%s", a);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!rc && !out->by && strcmp(lower, a))
        rc = match_address_as(s, cid, lower, out, e);
    return rc;
}

int act_match_reply(store *s, const inmsg *m, const char *rcpt, act_match *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = match_verp(s, rcpt, m, NULL, out, e);
    for (size_t i = 0; !rc && !out->by && m && i < m->nrefs; i++)
        rc = match_message_id(s, m->refs[i], "in-reply-to", out, e);
    if (rc || out->by || !m || !m->from)
        return rc;
    char a[320];
    norm_addr(m->from, a);
    sub_rec sub = {0};
    bool yes;
    rc = found(store_sub_find(s, a, &sub, e), &yes, e);
    if (!rc && yes) {
        out->by = "sender";
        out->subscriber_id = sub.id;
        snprintf(out->email, sizeof out->email, "%s", sub.email);
        delivery_rec d = {0};
        rc = found(store_delivery_last_to(s, a, &d, e), &yes, e);
        if (!rc && yes) {
            out->campaign_id = d.campaign_id;
            out->delivery_id = d.id;
        }
        delivery_rec_clear(&d);
    }
    sub_rec_clear(&sub);
    return rc;
}

int act_soft_limit(store *s)
{
    char *v = NULL;
    int limit = ACT_SOFT_LIMIT_DEFAULT;
    if (!store_setting_get(s, ACT_SETTING_SOFT_LIMIT, &v, NULL) && v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*end && end != v && n >= 1 && n <= 1000)
            limit = (int)n;
    }
    free(v);
    return limit;
}

/* ---- applying ------------------------------------------------------------- */

typedef struct ctx {
    store *s;
    const bounce_result *br;
    const inmsg *m;
    const act_source *src;
    const char *source, *key;
    size_t len;
    int64_t now;
    act_result *out;
} ctx;

static char *json_text(json_t *j)
{
    char *t = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!t)
        abort(); /* only when out of memory */
    return t;
}

static int event(ctx *c, const char *kind, int64_t campaign_id, int64_t sub_id, int64_t list_id,
                 json_t *data, td_error *e)
{
    char *d = data ? json_text(data) : NULL;
    event_rec ev = {.kind = kind, .campaign_id = campaign_id, .subscriber_id = sub_id,
                    .list_id = list_id, .data = d, .at = c->now};
    int rc = store_event_add(c->s, &ev, 1, e);
    free(d);
    return rc;
}

static int suppress(ctx *c, const char *email, const char *reason, td_error *e)
{
    bool already = false;
    int rc = store_suppress_check(c->s, email, &already, e);
    if (rc || already)
        return rc;
    if (!(rc = store_suppress_add(c->s, email, reason, e)))
        c->out->suppressed++;
    return rc;
}

static int record(ctx *c, const char *kind, bool keep, const act_match *mt, td_error *e)
{
    act_result *o = c->out;
    size_t n = strlen(o->note);
    while (n && (o->note[n - 1] == ' ' || o->note[n - 1] == ';'))
        o->note[--n] = '\0';
    o->kind = kind;
    o->keep = keep;
    if (mt && mt->by && !o->matched_by) {
        o->matched_by = mt->by;
        o->campaign_id = mt->campaign_id;
        o->subscriber_id = mt->subscriber_id;
    }
    inbound_rec r = {.source = c->source, .key = c->key, .kind = kind, .note = o->note,
                     .message_id = c->m ? c->m->message_id : NULL,
                     .campaign_id = o->campaign_id, .subscriber_id = o->subscriber_id,
                     .size = (int64_t)c->len, .keep = keep};
    return store_inbound_add(c->s, &r, &o->inbound_id, e);
}

/* The recipient entry of br for email: the one naming it, else the first. */
static const bounce_rcpt *rcpt_for(const bounce_result *br, const char *email)
{
    for (size_t i = 0; i < br->nrcpt; i++) {
        char a[320];
        norm_addr(br->rcpt[i].address, a);
        if (!strcmp(a, email))
            return &br->rcpt[i];
    }
    return br->nrcpt ? &br->rcpt[0] : NULL;
}

static int bounce_one(ctx *c, const act_match *mt, const bounce_rcpt *r, int limit, td_error *e)
{
    bool hard = r ? r->hard : false;
    const char *status = r ? r->status : "";
    const char *reason = r && r->reason ? r->reason : "unknown";
    int rc;
    char why[160];
    if (hard) {
        snprintf(why, sizeof why, "bounce: %s %s", status, reason);
        rc = suppress(c, mt->email, why, e);
        if (!rc)
            note_add(c->out, "hard bounce of %s (by %s); ", mt->email, mt->by);
    } else {
        int64_t n = 0;
        rc = store_soft_bounce_add(c->s, mt->email, mt->campaign_id, c->now, &n, e);
        if (!rc && n >= limit) {
            snprintf(why, sizeof why, "soft bounces: %lld", (long long)n);
            rc = suppress(c, mt->email, why, e);
            if (!rc)
                note_add(c->out, "soft bounce of %s (by %s), at the limit; ", mt->email, mt->by);
        } else if (!rc) {
            note_add(c->out, "soft bounce of %s (by %s); ", mt->email, mt->by);
        }
    }
    if (!rc)
        rc = event(c, "bounce", mt->campaign_id, mt->subscriber_id, 0,
                   json_pack("{s:s, s:s, s:b}", "status", status, "reason", reason, "hard", hard),
                   e);
    return rc;
}

struct names {
    char **v;
    size_t n;
};

static int collect_subscribed(void *ud, const char *list, const char *status)
{
    struct names *nm = ud;
    if (list && status && strcmp(status, "unsubscribed") && nm->n < 10000) {
        nm->v = xrealloc(nm->v, (nm->n + 1) * sizeof *nm->v);
        nm->v[nm->n++] = xstrdup(list);
    }
    return 0;
}

static int complaint_one(ctx *c, const act_match *mt, td_error *e)
{
    const char *ft = c->br->feedback_type ? c->br->feedback_type : "abuse";
    char why[160];
    snprintf(why, sizeof why, "complaint: %s", ft);
    int rc = suppress(c, mt->email, why, e);
    struct names nm = {0};
    if (!rc && mt->subscriber_id)
        rc = store_member_lists(c->s, mt->subscriber_id, collect_subscribed, &nm, e);
    for (size_t i = 0; !rc && i < nm.n; i++) {
        list_rec l = {0};
        rc = store_list_find(c->s, nm.v[i], &l, e);
        if (!rc)
            rc = store_member_set(c->s, l.id, mt->subscriber_id, "unsubscribed", false, NULL, e);
        if (!rc)
            rc = event(c, "unsubscribe", mt->campaign_id, mt->subscriber_id, l.id,
                       json_pack("{s:s}", "via", "complaint"), e);
        if (!rc)
            c->out->unsubscribed++;
        list_rec_clear(&l);
    }
    for (size_t i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    if (!rc)
        rc = event(c, "complaint", mt->campaign_id, mt->subscriber_id, 0,
                   json_pack("{s:s, s:s, s:b}", "status", "", "reason", ft, "hard", 1), e);
    if (!rc)
        note_add(c->out, "complaint about %s (by %s); ", mt->email, mt->by);
    return rc;
}

/* Bounces and complaints: the message-level match names the one delivery;
 * without one, each failed address is looked up on its own. */
static int apply_failure(ctx *c, bool complaint, td_error *e)
{
    const char *kind = complaint ? "complaint" : "bounce";
    int limit = complaint ? 0 : act_soft_limit(c->s);
    act_match mt;
    int rc = act_match_message(c->s, c->br, c->m, c->src->rcpt, &mt, e);
    int acted = 0;
    act_match first = {0};
    if (!rc && mt.by) {
        rc = complaint ? complaint_one(c, &mt, e)
                       : bounce_one(c, &mt, rcpt_for(c->br, mt.email), limit, e);
        acted = 1;
        first = mt;
    }
    /* Each address once, however often the report names it. */
    char done[16][320];
    size_t ndone = 0, unknown = 0;
    for (size_t i = 0; !rc && !acted && i < c->br->nrcpt; i++) {
        rc = act_match_address(c->s, c->br, c->br->rcpt[i].address, &mt, e);
        if (rc)
            break;
        if (!mt.by) {
            char a[320];
            norm_addr(c->br->rcpt[i].address, a);
            if (!unknown++)
                note_add(c->out, "never mailed: %s", a);
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < ndone; k++)
            seen = seen || !strcmp(done[k], mt.email);
        if (seen)
            continue;
        if (ndone < 16)
            snprintf(done[ndone++], sizeof done[0], "%s", mt.email);
        rc = complaint ? complaint_one(c, &mt, e)
                       : bounce_one(c, &mt, &c->br->rcpt[i], limit, e);
        if (!first.by)
            first = mt;
    }
    if (rc)
        return rc;
    if (unknown)
        note_add(c->out, "%s; nothing changed for %s", unknown > 1 ? " and others" : "",
                 unknown > 1 ? "them" : "it");
    if (!c->br->nrcpt)
        note_add(c->out, "%s names no address; nothing changed", kind);
    bool did = first.by != NULL;
    return record(c, kind, !did, did ? &first : NULL, e);
}

static void route(ctx *c, const act_match *mt, reply_rec *r)
{
    sub_rec sub = {0};
    campaign_rec camp = {0};
    if (mt->subscriber_id && !store_sub_get(c->s, mt->subscriber_id, &sub, NULL)) {
        r->owner_id = sub.owner_id;
        r->team_id = sub.team_id;
    }
    if (mt->campaign_id && !store_campaign_get(c->s, mt->campaign_id, &camp, NULL)) {
        /* The subscriber's salesperson first; the campaign's people when the
         * subscriber has none. */
        if (!r->owner_id) {
            r->owner_id = camp.owner_id;
            if (camp.team_id)
                r->team_id = camp.team_id;
        }
        if (!r->team_id)
            r->team_id = camp.team_id;
    }
    if (r->owner_id && !r->team_id) {
        user_rec u = {0};
        if (!store_user_get(c->s, r->owner_id, &u, NULL))
            r->team_id = u.team_id;
        user_rec_clear(&u);
    }
    r->assigned_to = r->owner_id;
    sub_rec_clear(&sub);
    campaign_rec_clear(&camp);
}

static int apply_reply(ctx *c, td_error *e)
{
    act_match mt;
    int rc = act_match_reply(c->s, c->m, c->src->rcpt, &mt, e);
    if (rc)
        return rc;
    const char *from = c->m->from ? c->m->from : "";
    reply_rec r = {.campaign_id = mt.campaign_id, .subscriber_id = mt.subscriber_id,
                   .sender = from, .sender_name = c->m->from_name,
                   .subject = c->m->subject, .body = c->m->body,
                   .message_id = c->m->message_id, .in_reply_to = c->m->in_reply_to,
                   .matched_by = mt.by, .sent_at = c->m->date, .received_at = c->now};
    route(c, &mt, &r);
    if (mt.by)
        note_add(c->out, "reply threaded by %s", mt.by);
    else
        note_add(c->out, "reply from %s, not threaded to a campaign", from[0] ? "an address" : "no one");
    if (r.assigned_to)
        note_add(c->out, ", routed to its owner");
    else if (r.team_id)
        note_add(c->out, ", routed to a team");
    if ((rc = record(c, "reply", true, &mt, e)))
        return rc;
    r.inbound_id = c->out->inbound_id;
    if ((rc = store_reply_add(c->s, &r, &c->out->reply_id, e)))
        return rc;
    return event(c, "reply", mt.campaign_id, mt.subscriber_id, 0,
                 json_pack("{s:I}", "reply_id", (json_int_t)c->out->reply_id), e);
}

/* "unsubscribe", any case, alone in the subject (spaces around it), or at
 * the start of the body: what a mail client's List-Unsubscribe mailto
 * (?subject=unsubscribe) and a person writing by hand send. */
static bool says_unsubscribe(const inmsg *m)
{
    static const char word[] = "unsubscribe";
    const size_t wl = sizeof word - 1;
    const char *p = m->subject ? m->subject : "";
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n == wl && !strncasecmp(p, word, wl))
        return true;
    p = m->body ? m->body : "";
    p += strspn(p, " \t\r\n");
    if (strncasecmp(p, word, wl))
        return false;
    char next = p[wl];
    return !((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
             (next >= '0' && next <= '9'));
}

/* A message to a VERP return path saying "unsubscribe": the List-Unsubscribe
 * mailto of campaign messages. The subscriber leaves the lists of the
 * campaign; the message is recorded as other (not a reply) and deleted. */
static int apply_unsub_mail(ctx *c, const act_match *mt, td_error *e)
{
    uint64_t n = 0;
    int rc = store_unsubscribe(c->s, mt->subscriber_id, 0, mt->campaign_id, c->now, &n, e);
    if (!rc)
        rc = event(c, "unsubscribe", mt->campaign_id, mt->subscriber_id, 0,
                   json_pack("{s:s}", "via", "mail"), e);
    if (rc)
        return rc;
    c->out->unsubscribed = (int)n;
    note_add(c->out, "unsubscribe by mail of %s (by %s): %llu list%s", mt->email, mt->by,
             (unsigned long long)n, n == 1 ? "" : "s");
    rc = record(c, "other", false, mt, e);
    c->out->kind = "unsubscribe";
    return rc;
}

static int apply(ctx *c, td_error *e)
{
    if ((c->br->kind == BOUNCE_KIND_REPLY || c->br->kind == BOUNCE_KIND_OTHER) &&
        !c->m->auto_reply && says_unsubscribe(c->m)) {
        act_match mt = {0};
        int rc = match_verp(c->s, c->src->rcpt, c->m, NULL, &mt, e);
        if (rc)
            return rc;
        if (mt.by)
            return apply_unsub_mail(c, &mt, e);
    }
    switch (c->br->kind) {
    case BOUNCE_KIND_BOUNCE:
        return apply_failure(c, false, e);
    case BOUNCE_KIND_COMPLAINT:
        return apply_failure(c, true, e);
    case BOUNCE_KIND_REPLY:
        if (!c->m->auto_reply)
            return apply_reply(c, e);
        break;
    case BOUNCE_KIND_OTHER:
        break;
    }
    /* Kept for a person; matched when it can be, so the record says which
     * campaign an auto-reply answered. */
    act_match mt;
    int rc = act_match_reply(c->s, c->m, c->src->rcpt, &mt, e);
    if (rc)
        return rc;
    note_add(c->out, "%s", c->m->auto_reply ? "auto-reply (RFC 3834 or vacation): not routed"
                                            : "not a bounce, complaint or reply: kept");
    return record(c, "other", true, mt.by ? &mt : NULL, e);
}

/* "sha256:" and the hex digest of the bytes: the key of a message that
 * came without a name (a file, a pipe). */
static void content_key(const char *data, size_t len, char out[80])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    int k = snprintf(out, 80, "sha256:");
    for (unsigned i = 0; i < n && k < 78; i++)
        k += snprintf(out + k, 80 - (size_t)k, "%02x", md[i]);
}

/* Codes that say the message's content, not the database, is the trouble:
 * the message is recorded as other instead of being tried again forever. */
static bool content_error(int rc)
{
    return rc == TD_EINVAL || rc == TD_EEXISTS || rc == TD_ETOOBIG || rc == TD_EINTERNAL;
}

/* Applies c (c->br set unless unreadable, with why) and records it, in one
 * transaction; see act_message. */
static int transact(ctx *c, bool unreadable, const char *why, td_error *e)
{
    store *s = c->s;
    act_result *out = c->out;
    int rc = store_begin(s, e);
    if (rc)
        return rc;
    bool seen = false, keep = false;
    if ((rc = store_inbound_find(s, c->source, c->key, &seen, &keep, e)))
        goto fail;
    if (seen) {
        store_rollback(s);
        out->duplicate = true;
        out->keep = keep;
        out->kind = "other";
        snprintf(out->note, sizeof out->note, "taken in before: nothing done");
        return TD_OK;
    }
    if (unreadable) {
        note_add(out, "unreadable, kept: %s", why);
        rc = record(c, "other", true, NULL, e);
    } else if (!c->m) {
        /* A report from elsewhere than a message (a provider's webhook). */
        rc = apply_failure(c, c->br->kind == BOUNCE_KIND_COMPLAINT, e);
    } else {
        rc = apply(c, e);
    }
    if (rc)
        goto fail;
    rc = store_commit(s, e);
    if (rc)
        goto fail;
    return TD_OK;
fail:
    store_rollback(s);
    if (content_error(rc)) {
        /* Recorded as it is, with why, in a transaction of its own. */
        const char *w = e ? e->msg : td_strerror(rc);
        log_warn("inbound: a message could not be applied: %s", w);
        memset(out, 0, sizeof *out);
        note_add(out, "not applied, kept: %s", w);
        c->m = NULL;
        rc = store_begin(s, e);
        if (!rc)
            rc = record(c, "other", true, NULL, e);
        if (!rc)
            rc = store_commit(s, e);
        if (rc)
            store_rollback(s);
    }
    return rc;
}

int act_message(store *s, const char *data, size_t len, const act_source *src, act_result *out,
                td_error *e)
{
    memset(out, 0, sizeof *out);
    char key[80];
    if (src->key)
        snprintf(key, sizeof key, "%s", src->key);
    else
        content_key(data ? data : "", data ? len : 0, key);
    ctx c = {.s = s, .src = src, .source = src->source ? src->source : "file", .key = key,
             .len = len, .now = src->now ? src->now : (int64_t)time(NULL), .out = out};
    /* Parsed before the transaction: no lock is held for the CPU work. */
    bounce_result *br = NULL;
    inmsg *m = NULL;
    td_error pe = {0};
    int prc = bounce_parse(data, len, &br, &pe);
    if (!prc)
        prc = inmsg_parse(data, len, &m, &pe);
    c.br = br;
    c.m = m;
    int rc = transact(&c, prc != 0, pe.msg, e);
    bounce_result_free(br);
    inmsg_free(m);
    return rc;
}

int act_report(store *s, const bounce_result *br, const act_source *src, size_t len,
               act_result *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    if (!src->key || !*src->key || strlen(src->key) > 512 ||
        (br->kind != BOUNCE_KIND_BOUNCE && br->kind != BOUNCE_KIND_COMPLAINT))
        return td_err_set(e, TD_EINVAL, "a report is a bounce or complaint with a key");
    ctx c = {.s = s, .src = src, .br = br, .source = src->source ? src->source : "report",
             .key = src->key, .len = len,
             .now = src->now ? src->now : (int64_t)time(NULL), .out = out};
    return transact(&c, false, NULL, e);
}
