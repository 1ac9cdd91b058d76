/* worker: one running campaign to the end (see worker.h). */
#include "delivery/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/blocks.h"
#include "campaign/context.h"
#include "delivery/backoff.h"
#include "delivery/pool.h"
#include "delivery/ratelimit.h"
#include "mime/addr.h"
#include "mime/dkim.h"
#include "mime/msg.h"
#include "tmpl/tmpl.h"
#include "smtp/smtp_client.h"
#include "track/token.h"
#include "util/xalloc.h"

/* A message between its render and its result. */
struct job {
    int64_t delivery_id;
    int attempts; /* including this one */
    char rcpt[ADDR_MAX + 3];
    char mail_from[ADDR_MAX + 3];
    char message_id[MSG_ID_MAX + 1];
    const char *rcpts[1];
    buf msg;
    smtp_msg sm;
    bool maybe_dup;
    struct job *next_free;
};

struct worker {
    store *s;
    campaign_rec c;
    const worker_opts *o;
    tmpl *subject, *html, *text;
    msg_context mc;
    char *base_url, *secret, *sender_name;
    msg_envelope *env;
    dkim_keyset *keys;
    blocks *blocks;
    pool *p;
    int64_t relay_db_id[64]; /* pool relay id -> relays.id */
    int nrelays;
    backoff_policy bp;
    int64_t first_ms;         /* monotonic ms when the campaign started */
    unsigned max_inflight, inflight;
    struct job *free_jobs;
    worker_progress prog;
    char list_id[300], feedback_id[64], from_domain[ADDR_DOMAIN_MAX + 1];
    struct first_list *list; /* the campaign's first list, named in List-Id and {{list.name}} */
    /* Scratch for build, kept from one message to the next: grown once to
     * a message's size instead of from nothing for every message (the
     * reallocations' copies and the allocator were a tenth of the worker's
     * CPU). */
    buf s_subj, s_html, s_text, s_body;
    td_error *e;
};

static int64_t unix_now(void) { return (int64_t)time(NULL); }

static void job_free_list(struct job *j)
{
    while (j) {
        struct job *n = j->next_free;
        buf_free(&j->msg);
        free(j);
        j = n;
    }
}

static struct job *job_get(struct worker *w)
{
    struct job *j = w->free_jobs;
    if (j) {
        w->free_jobs = j->next_free;
        buf_reset(&j->msg);
    } else {
        j = xcalloc(1, sizeof *j);
        buf_init(&j->msg, BUF_NOCAP);
    }
    return j;
}

static void job_put(struct worker *w, struct job *j)
{
    j->next_free = w->free_jobs;
    w->free_jobs = j;
}

static int compile(const char *what, const char *src, tmpl **out, td_error *e)
{
    if (!src) {
        *out = NULL;
        return TD_OK;
    }
    td_error te = {0};
    int rc = tmpl_compile(src, strlen(src), out, &te);
    if (rc)
        td_err_set(e, rc, "%s: %s", what, te.msg);
    return rc;
}

struct first_list {
    char name[256];
};


static int take_first(void *ud, const char *name)
{
    struct first_list *f = ud;
    if (!f->name[0])
        snprintf(f->name, sizeof f->name, "%s", name);
    return 0;
}

static int add_relay(void *ud, const relay_rec *r)
{
    struct worker *w = ud;
    if (w->nrelays == (int)(sizeof w->relay_db_id / sizeof w->relay_db_id[0]))
        return 0;
    int id;
    td_error re = {0};
    /* A relay whose name does not resolve is left out with a note; the
     * others carry the campaign. */
    if (pool_add_relay(w->p, r->url, (unsigned)r->max_conns, r->rate, &id, &re)) {
        fprintf(stderr, "tidings: relay %lld left out: %s\n", (long long)r->id, re.msg);
        return 0;
    }
    w->relay_db_id[id] = r->id;
    w->nrelays++;
    w->max_inflight += (unsigned)r->max_conns;
    return 0;
}

static int setup(struct worker *w, int64_t id)
{
    td_error *e = w->e;
    int rc = store_campaign_get(w->s, id, &w->c, e);
    if (rc)
        return rc;
    if (strcmp(w->c.state, "running"))
        return td_err_set(e, TD_EDENIED, "campaign %lld is %s, not running", (long long)id,
                          w->c.state);
    if ((rc = compile("the subject", w->c.subject, &w->subject, e)) ||
        (rc = compile("the HTML template", w->c.html, &w->html, e)) ||
        (rc = compile("the text template", w->c.text, &w->text, e)))
        return rc;
    if ((rc = store_setting_get(w->s, "public_url", &w->base_url, e)) ||
        (rc = store_setting_get(w->s, "secret", &w->secret, e)))
        return rc;
    addr from = {0};
    if ((rc = addr_parse_mailbox(w->c.from, &w->sender_name, &from, e)))
        return rc;
    snprintf(w->from_domain, sizeof w->from_domain, "%s", from.domain);
    /* Kept in w: the context and the envelope point into it. */
    w->list = xcalloc(1, sizeof *w->list);
    store_campaign_list_names(w->s, id, take_first, w->list, NULL);
    struct first_list *fl = w->list;
    w->mc = (msg_context){.base_url = w->base_url,
                          .campaign_id = id,
                          .campaign_name = w->c.name,
                          .subject = w->c.subject,
                          .list_name = fl->name,
                          .sender_name = w->sender_name ? w->sender_name : "",
                          .sender_email = NULL};
    track_key(w->secret, w->mc.key);
    w->mc.sender_email = xstrdup(from.address);
    addr_clear(&from);
    snprintf(w->list_id, sizeof w->list_id, "campaign-%lld.%s", (long long)id, w->from_domain);
    snprintf(w->feedback_id, sizeof w->feedback_id, "%lld:tidings:campaign", (long long)id);
    msg_envelope_spec es = {.from = w->c.from,
                            .reply_to = w->c.reply_to,
                            .list_id = w->list_id,
                            .list_name = fl->name[0] ? fl->name : NULL,
                            .feedback_id = w->feedback_id};
    if ((rc = msg_envelope_new(&es, &w->env, e)))
        return rc;
    rc = dkim_keyset_load(w->s, w->from_domain, &w->keys, e);
    if (rc == TD_ENOTFOUND)
        w->keys = NULL; /* unsigned: the domain has no key */
    else if (rc)
        return rc;
    w->blocks = blocks_new(w->s, 0);
    pool_opts po;
    pool_opts_init(&po);
    po.maildir_fsync = w->o->maildir_fsync;
    po.hold_until_taken = true; /* results are recorded before more go out */
    for (int i = 0; w->o->timeout_ms && i < SMTP_STAGE_COUNT; i++)
        po.smtp.timeout_ms[i] = w->o->timeout_ms;
    w->p = pool_new(&po);
    /* The limits across relays (`tidings relay limits`). */
    char *lim_text = NULL;
    if (!store_setting_get(w->s, "limits", &lim_text, NULL)) {
        json_t *lim = json_loads(lim_text, 0, NULL);
        json_t *g = json_object_get(lim, "global");
        if (json_is_number(g))
            ratelimit_set_global(pool_ratelimit(w->p), json_number_value(g), 0, NULL);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(lim, "domains"), k, v)
        {
            if (json_is_number(v))
                ratelimit_set_domain(pool_ratelimit(w->p), strcmp(k, "default") ? k : NULL,
                                     json_number_value(v), 0, NULL);
        }
        json_decref(lim);
        free(lim_text);
    }
    if ((rc = store_relay_each(w->s, add_relay, w, e)))
        return rc;
    if (!w->nrelays)
        return td_err_set(e, TD_EINVAL,
                          "there is no relay to send through; add one with `tidings relay add`");
    /* Several messages waiting per connection, so that each turn of the
     * loop makes and commits a batch of them: a transaction per message or
     * two cost a seventh of the time (bench/send). Those waiting are
     * `sending` in the log; after a crash they are sent again, flagged,
     * though only the ones on a connection can really arrive twice: the
     * pool holds a connection until its last result is taken, and the
     * worker commits the results it took before the pool runs again. */
    w->max_inflight *= 8;
    backoff_policy_init(&w->bp);
    if (w->o->retry_base_s)
        w->bp.base_ms = (int64_t)w->o->retry_base_s * 1000;
    int64_t started = w->c.started_at ? w->c.started_at : unix_now();
    w->first_ms = smtp_now_ms() - (unix_now() - started) * 1000;
    return TD_OK;
}

static void teardown(struct worker *w)
{
    pool_free(w->p);
    blocks_free(w->blocks);
    dkim_keyset_free(w->keys);
    msg_envelope_free(w->env);
    tmpl_free(w->subject);
    tmpl_free(w->html);
    tmpl_free(w->text);
    free(w->base_url);
    free(w->secret);
    free(w->sender_name);
    free((char *)w->mc.sender_email);
    job_free_list(w->free_jobs);
    buf_free(&w->s_subj);
    buf_free(&w->s_html);
    buf_free(&w->s_text);
    buf_free(&w->s_body);
    free(w->list);
    campaign_rec_clear(&w->c);
}

static int render(struct worker *w, tmpl *t, json_t *data, bool html, buf *out, td_error *e)
{
    tmpl_helper h = msg_context_helper(&w->mc, html);
    return tmpl_render_with(t, data, blocks_partial, w->blocks, &h, 1, out, e);
}

/* build makes job j's message for due row r. TD_EINVAL: this recipient's
 * message cannot be made (recorded as failed); other codes stop the run. */
static int build(struct worker *w, const due_rec *r, struct job *j, td_error *e)
{
    json_t *data = msg_context_data(&w->mc, &r->sub, e);
    if (!data)
        return TD_EINVAL;
    int rc = blocks_attach(w->blocks, data, e);
    buf *subj = &w->s_subj, *html = &w->s_html, *text = &w->s_text;
    buf_reset(subj);
    buf_reset(html);
    buf_reset(text);
    if (!rc)
        rc = render(w, w->subject, data, false, subj, e);
    /* {{campaign.subject}} in the body is this recipient's subject, not
     * the subject's template. */
    if (!rc) {
        size_t sl = msg_text_unescape(subj->data, subj->len);
        json_object_set_new(json_object_get(data, "campaign"), "subject",
                            json_stringn(subj->data ? subj->data : "", sl));
        subj->len = sl;
    }
    if (!rc && w->html)
        rc = render(w, w->html, data, true, html, e);
    if (!rc && w->text)
        rc = render(w, w->text, data, false, text, e);
    /* The VERP names the delivery with a tag only this installation can
     * make (track/token.h): mail to it suppresses or unsubscribes. */
    char verp[ADDR_MAX + 3], camp[32], tok[TRACK_VERP_MAX + 1];
    snprintf(camp, sizeof camp, "c%lld", (long long)w->c.id);
    track_verp_token(w->mc.key, w->c.id, r->d.id, tok);
    if (!rc)
        rc = msg_verp_build("bounces", camp, tok, w->from_domain, verp, e);
    const char *unsub = json_string_value(json_object_get(data, "unsubscribe_url"));
    char to[2 * ADDR_MAX];
    /* The To header: the subscriber's name when it has one (msg quotes or
     * encodes it). */
    if (r->sub.name && *r->sub.name)
        snprintf(to, sizeof to, "\"%s\" <%s>", r->sub.name, r->d.email);
    else
        snprintf(to, sizeof to, "%s", r->d.email);
    if (strchr(r->sub.name ? r->sub.name : "", '"') || strchr(r->sub.name ? r->sub.name : "", '\\'))
        snprintf(to, sizeof to, "%s", r->d.email);
    /* The Message-ID starts with the delivery id, zero-padded: ids rise as
     * a campaign goes, so the index inbound mail finds a message by (its
     * In-Reply-To, a bounce's copy) grows at its end instead of at random
     * places (random IDs cost a quarter of the send rate in index pages
     * written); the tag, keyed by the installation's secret, keeps it
     * unique across installations and unguessable from another message's
     * (a bounce quoting it acts on its delivery), and the same for every
     * attempt of one delivery. */
    char msgid[40 + ADDR_DOMAIN_MAX], mtag[TRACK_TAG_LEN + 1];
    track_tag(w->mc.key, 'm', w->c.id, r->d.id, mtag);
    snprintf(msgid, sizeof msgid, "d%012lld.%s@%s", (long long)r->d.id, mtag, w->from_domain);
    msg_spec ms = {.to = to,
                   .message_id = msgid,
                   .subject = subj->data ? subj->data : "",
                   .subject_len = subj->len,
                   .html = w->html ? (html->data ? html->data : "") : NULL,
                   .html_len = html->len,
                   .text = w->text ? (text->data ? text->data : "") : NULL,
                   .text_len = w->text ? msg_text_unescape(text->data, text->len) : 0,
                   /* One-click (RFC 8058) needs https; the mailto, to this
                    * message's own return path, always works: inbound mail
                    * to it saying "unsubscribe" unsubscribes (inbound/act). */
                   .unsubscribe_url = unsub && !strncmp(unsub, "https://", 8) ? unsub : NULL,
                   .unsubscribe_mailto = verp,
                   .return_path = verp};
    msg_info info;
    /* Signed, the DKIM-Signature field comes first: the message is built
     * apart and follows it; unsigned, it is built in the job's buffer. */
    buf *body = w->keys ? &w->s_body : &j->msg;
    buf_reset(body);
    if (!rc)
        rc = msg_build(w->env, &ms, body, &info, e);
    if (!rc && w->keys &&
        !(rc = dkim_keyset_sign(w->keys, body->data, body->len, unix_now(), &j->msg, e)))
        rc = buf_append(&j->msg, body->data, body->len);
    if (!rc) {
        snprintf(j->rcpt, sizeof j->rcpt, "%s", info.rcpt_to);
        snprintf(j->message_id, sizeof j->message_id, "%s", info.message_id);
        snprintf(j->mail_from, sizeof j->mail_from, "%s", info.mail_from);
        j->rcpts[0] = j->rcpt;
        j->sm = (smtp_msg){.from = j->mail_from, .rcpt = j->rcpts, .nrcpt = 1,
                           .data = j->msg.data, .len = j->msg.len};
    }
    json_decref(data);
    return rc;
}

/* ---- the loop ---------------------------------------------------------------------- */

struct fill {
    struct worker *w;
    struct job **batch;
    size_t n;
    int rc;
};

/* One due delivery: make its message and mark it sending (in the caller's
 * transaction); a recipient who no longer wants it, or whose message cannot
 * be made, is recorded as failed with the reason. */
static int take_due(void *ud, const due_rec *r)
{
    struct fill *f = ud;
    struct worker *w = f->w;
    delivery_rec d = r->d;
    td_error be = {0};
    if (!r->wanted || !r->d.subscriber_id) {
        d.status = "failed";
        d.last_reply = "not sent: unsubscribed, blocklisted or suppressed since the campaign "
                       "started";
        w->prog.skipped++;
        return store_delivery_update(w->s, &d, w->e);
    }
    struct job *j = job_get(w);
    int rc = build(w, r, j, &be);
    if (rc == TD_EINVAL || rc == TD_ETOOBIG) {
        job_put(w, j);
        d.status = "failed";
        d.attempts++;
        d.last_reply = be.msg;
        w->prog.failed++;
        return store_delivery_update(w->s, &d, w->e);
    }
    if (rc) {
        job_put(w, j);
        *w->e = be;
        return rc;
    }
    j->delivery_id = r->d.id;
    j->attempts = r->d.attempts + 1;
    j->maybe_dup = r->d.maybe_duplicate;
    d.status = "sending";
    d.attempts = j->attempts;
    d.message_id = j->message_id;
    if ((rc = store_delivery_update(w->s, &d, w->e))) {
        job_put(w, j);
        return rc;
    }
    f->batch[f->n++] = j;
    return 0;
}

/* record writes the result of job j (in the caller's transaction). */
static int record(struct worker *w, struct job *j, const pool_result *pr)
{
    delivery_rec d = {.id = j->delivery_id,
                      .attempts = j->attempts,
                      .message_id = j->message_id,
                      .maybe_duplicate = j->maybe_dup,
                      .relay_id = pr->relay >= 0 ? w->relay_db_id[pr->relay] : 0};
    const smtp_rcpt_result *rr = pr->res.nrcpt ? &pr->res.rcpt[0] : NULL;
    smtp_rcpt_result none = {.status = SMTP_TEMP};
    if (!rr) {
        none.reply.text = (char *)(pr->conn.code ? pr->conn.msg : "no result");
        rr = &none;
    }
    int64_t now_ms = smtp_now_ms(), when = 0;
    int act = backoff_classify(&w->bp, rr, (unsigned)j->attempts, w->first_ms, now_ms,
                               w->nrelays > 1, backoff_rand(), &when);
    char reply[600];
    snprintf(reply, sizeof reply, "%d%s%s %s", rr->reply.code, rr->reply.enh[0] ? " " : "",
             rr->reply.enh, rr->reply.text ? rr->reply.text : "");
    if (!rr->reply.code)
        snprintf(reply, sizeof reply, "%s",
                 rr->reply.text && *rr->reply.text ? rr->reply.text
                 : pr->conn.code                    ? pr->conn.msg
                                                    : "no reply");
    d.last_reply = reply;
    switch (act) {
    case BACKOFF_DONE:
        d.status = "sent";
        w->prog.sent++;
        break;
    case BACKOFF_UNKNOWN:
        /* The connection died after the whole message was written: it has
         * most likely arrived. Not sent again (that would be the duplicate
         * the delivery log exists to prevent); the reply says what
         * happened. */
        d.status = "sent";
        snprintf(reply, sizeof reply, "connection lost after the message was written; it has "
                 "most likely arrived (%s)", pr->conn.code ? pr->conn.msg : "no reply");
        w->prog.sent++;
        break;
    case BACKOFF_LATER:
    case BACKOFF_NOW:
        d.status = "deferred";
        d.next_at = unix_now() + (when > now_ms ? (when - now_ms + 999) / 1000 : 0);
        w->prog.deferred++;
        break;
    default:
        d.status = "failed";
        w->prog.failed++;
        break;
    }
    return store_delivery_update(w->s, &d, w->e);
}

static void report(struct worker *w)
{
    if (!w->o->progress)
        return;
    store_campaign_counts(w->s, w->c.id, &w->prog.counts, NULL);
    w->o->progress(w->o->ud, &w->prog);
}

int worker_run(store *s, int64_t id, const worker_opts *o, const char **state, td_error *e)
{
    static const worker_opts none = {0};
    struct worker w = {.s = s, .o = o ? o : &none, .e = e};
    buf_init(&w.s_subj, BUF_NOCAP);
    buf_init(&w.s_html, BUF_NOCAP);
    buf_init(&w.s_text, BUF_NOCAP);
    buf_init(&w.s_body, BUF_NOCAP);
    *state = "running";
    int rc = setup(&w, id);
    uint64_t n = 0;
    /* Left `sending` by a crash: they may have been on the wire. */
    if (!rc)
        rc = store_delivery_requeue(s, id, "sending", true, unix_now(), &n, e);
    struct job **batch = xcalloc(w.max_inflight ? w.max_inflight : 1, sizeof *batch);
    int64_t next_check = 0, next_report = 0;
    bool stopping = false;
    while (!rc) {
        int64_t now_ms = smtp_now_ms();
        /* The campaign's state: pause and cancel take effect here. */
        if (now_ms >= next_check) {
            next_check = now_ms + WORKER_CHECK_MS;
            campaign_rec c = {0};
            if ((rc = store_campaign_get(s, id, &c, e)))
                break;
            bool shutdown = w.o->stop && atomic_load(w.o->stop);
            if ((strcmp(c.state, "running") || shutdown) && !stopping) {
                stopping = true;
                *state = shutdown                      ? "running"
                         : !strcmp(c.state, "paused") ? "paused"
                                                       : "cancelled";
                /* Messages not on a connection yet go back to the queue. */
                void *back[256];
                size_t k;
                if ((rc = store_begin(s, e)))
                    break;
                while (!rc && (k = pool_withdraw(w.p, back, 256)) > 0)
                    for (size_t i = 0; i < k && !rc; i++) {
                        struct job *j = back[i];
                        delivery_rec d = {.id = j->delivery_id, .status = "queued",
                                          .attempts = j->attempts - 1,
                                          .maybe_duplicate = j->maybe_dup};
                        rc = store_delivery_update(s, &d, e);
                        job_put(&w, j);
                        w.inflight--;
                    }
                rc = rc ? rc : store_commit(s, e);
                if (rc)
                    store_rollback(s);
            }
            campaign_rec_clear(&c);
        }
        if (rc)
            break;
        /* Results in, new messages out: one transaction for both. */
        if ((rc = store_begin(s, e)))
            break;
        pool_result pr;
        while (!rc && pool_take_result(w.p, &pr)) {
            struct job *j = pr.job;
            rc = record(&w, j, &pr);
            pool_result_clear(&pr);
            job_put(&w, j);
            w.inflight--;
        }
        struct fill f = {.w = &w, .batch = batch};
        bool more_due = false;
        if (!rc && !stopping && w.inflight <= w.max_inflight * 3 / 4) {
            unsigned room = w.max_inflight - w.inflight;
            rc = store_delivery_due(s, id, unix_now(), room, take_due, &f, e);
            more_due = f.n > 0;
        }
        rc = rc ? rc : store_commit(s, e);
        if (rc) {
            store_rollback(s);
            for (size_t i = 0; i < f.n; i++)
                job_put(&w, batch[i]);
            break;
        }
        /* Committed as `sending`: now they may go on the wire. */
        for (size_t i = 0; i < f.n; i++) {
            td_error se = {0};
            if (pool_submit(w.p, batch[i], &batch[i]->sm, -1, &se)) {
                /* Refused before any wire: back to the queue at once. */
                delivery_rec d = {.id = batch[i]->delivery_id, .status = "queued",
                                  .attempts = batch[i]->attempts - 1};
                store_delivery_update(s, &d, NULL);
                job_put(&w, batch[i]);
                continue;
            }
            w.inflight++;
        }
        if (now_ms >= next_report) {
            next_report = now_ms + 1000;
            report(&w);
        }
        if (w.inflight == 0 && !more_due) {
            if (stopping)
                break;
            campaign_counts cc;
            if ((rc = store_campaign_counts(s, id, &cc, e)))
                break;
            if (cc.queued == 0 && cc.deferred == 0 && cc.sending == 0) {
                rc = store_campaign_set_state(s, id, "running", "finished", unix_now(), e);
                if (rc == TD_EDENIED) { /* paused or cancelled just now */
                    rc = 0;
                    continue;
                }
                if (!rc)
                    *state = "finished";
                break;
            }
            /* Only deferred ones, not due yet: wait (checking the state). */
            pool_poll(w.p, WORKER_CHECK_MS);
            continue;
        }
        pool_poll(w.p, w.inflight ? 50 : 0);
    }
    if (rc) {
        /* Whatever is still in the pool stays marked sending: a restart
         * queues it again. Free the jobs without recording anything. */
        void *back[256];
        size_t k;
        while ((k = pool_withdraw(w.p, back, 256)) > 0)
            for (size_t i = 0; i < k; i++)
                job_put(&w, back[i]);
        for (int spins = 0; pool_pending(w.p) && spins < 200; spins++) {
            pool_poll(w.p, 50);
            pool_result pr;
            while (pool_take_result(w.p, &pr)) {
                job_put(&w, pr.job);
                pool_result_clear(&pr);
            }
        }
    }
    report(&w);
    free(batch);
    teardown(&w);
    return rc;
}
