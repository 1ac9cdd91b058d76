/* worker: one running campaign to the end (see worker.h). */
#include "delivery/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
#include "util/secret.h"
#include "util/xalloc.h"

/* A message from its row's claim to its result. */
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
    /* What the builder makes the message of: the recipient as the row and
     * the subscriber had them when claimed (owned copies). */
    sub_rec sub;
    char *email;
    int build_rc;        /* 0, or why the message could not be made */
    char build_err[512];
    struct job *next;    /* in a builder queue */
    struct job *next_free;
};

/* The builder: a thread that renders, builds and signs the messages of
 * claimed rows while the worker's own thread runs the database and the
 * connections. Those two halves cost about the same, and a machine with
 * two cores ran them one after the other (bench/send). */
struct builder {
    pthread_t thread;
    bool started, quit, busy;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct job *in_head, *in_tail;   /* claimed, to build */
    struct job *out_head, *out_tail; /* built (or failed), to send */
    unsigned nout;
    int wake[2];                     /* a byte on it ends the worker's pool_poll */
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
    char msgid_salt[17]; /* random per run: Message-IDs unique across installations */
    struct first_list *list; /* the campaign's first list, named in List-Id and {{list.name}} */
    td_error *e;
    struct builder b;
    /* The store handle is the worker thread's, but for the builder's loads
     * of content blocks (blocks_partial, on a block's first use): whoever
     * uses the store holds store_mu. The worker thread lets go of it only
     * while it waits in pool_poll. */
    pthread_mutex_t store_mu;
};

static int64_t unix_now(void) { return (int64_t)time(NULL); }

static void job_free_list(struct job *j)
{
    while (j) {
        struct job *n = j->next_free;
        buf_free(&j->msg);
        sub_rec_clear(&j->sub);
        free(j->email);
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
    sub_rec_clear(&j->sub);
    free(j->email);
    j->email = NULL;
    j->build_rc = 0;
    j->build_err[0] = '\0';
    j->next = NULL;
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
    char *salt = secret_random_hex(8);
    snprintf(w->msgid_salt, sizeof w->msgid_salt, "%s", salt);
    free(salt);
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

static void builder_stop(struct worker *w);

static void teardown(struct worker *w)
{
    builder_stop(w); /* first: it uses all that follows */
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
    free(w->list);
    campaign_rec_clear(&w->c);
}

/* blocks_partial, holding the store (a block's first use loads it). */
static const char *partial_locked(void *ud, const char *name, size_t *len)
{
    struct worker *w = ud;
    pthread_mutex_lock(&w->store_mu);
    const char *p = blocks_partial(w->blocks, name, len);
    pthread_mutex_unlock(&w->store_mu);
    return p;
}

static int render(struct worker *w, tmpl *t, json_t *data, bool html, buf *out, td_error *e)
{
    tmpl_helper h = msg_context_helper(&w->mc, html);
    return tmpl_render_with(t, data, partial_locked, w, &h, 1, out, e);
}

/* message_id writes the Message-ID of delivery id (without <>). It starts
 * with the id, zero-padded: ids rise as a campaign goes, so the index that
 * inbound mail finds a message by (its In-Reply-To, a bounce's copy) grows
 * at its end instead of at random places (random IDs cost a quarter of the
 * send rate in index pages written); the salt keeps it unique across
 * installations. Known before the message is made: the row says it from
 * its claim on. */
static void message_id(const struct worker *w, int64_t id, char out[MSG_ID_MAX + 1])
{
    char full[64 + ADDR_DOMAIN_MAX];
    int n = snprintf(full, sizeof full, "d%012lld.%s@%s", (long long)id, w->msgid_salt,
                     w->from_domain);
    /* A sender's domain near the 255-byte limit leaves no room: the right
     * side of a Message-ID need not be a real domain (RFC 5322 3.6.4). */
    if (n < 0 || n > MSG_ID_MAX)
        n = snprintf(full, sizeof full, "d%012lld.%s@tidings.invalid", (long long)id,
                     w->msgid_salt);
    memcpy(out, full, (size_t)n + 1);
}

/* build makes job j's message (in the builder's thread). TD_EINVAL or
 * TD_ETOOBIG: this recipient's message cannot be made (recorded as failed);
 * other codes stop the run. */
static int build(struct worker *w, struct job *j, td_error *e)
{
    json_t *data = msg_context_data(&w->mc, &j->sub, e);
    if (!data)
        return TD_EINVAL;
    int rc = blocks_attach(w->blocks, data, e);
    buf subj, html, text;
    buf_init(&subj, BUF_NOCAP);
    buf_init(&html, BUF_NOCAP);
    buf_init(&text, BUF_NOCAP);
    if (!rc)
        rc = render(w, w->subject, data, false, &subj, e);
    /* {{campaign.subject}} in the body is this recipient's subject, not
     * the subject's template. */
    if (!rc) {
        size_t sl = msg_text_unescape(subj.data, subj.len);
        json_object_set_new(json_object_get(data, "campaign"), "subject",
                            json_stringn(subj.data ? subj.data : "", sl));
        subj.len = sl;
    }
    if (!rc && w->html)
        rc = render(w, w->html, data, true, &html, e);
    if (!rc && w->text)
        rc = render(w, w->text, data, false, &text, e);
    char verp[ADDR_MAX + 3], camp[32], tok[32];
    snprintf(camp, sizeof camp, "c%lld", (long long)w->c.id);
    snprintf(tok, sizeof tok, "d%lld", (long long)j->delivery_id);
    if (!rc)
        rc = msg_verp_build("bounces", camp, tok, w->from_domain, verp, e);
    const char *unsub = json_string_value(json_object_get(data, "unsubscribe_url"));
    char to[2 * ADDR_MAX];
    /* The To header: the subscriber's name when it has one (msg quotes or
     * encodes it). */
    const char *name = j->sub.name;
    if (name && *name)
        snprintf(to, sizeof to, "\"%s\" <%s>", name, j->email);
    else
        snprintf(to, sizeof to, "%s", j->email);
    if (strchr(name ? name : "", '"') || strchr(name ? name : "", '\\'))
        snprintf(to, sizeof to, "%s", j->email);
    msg_spec ms = {.to = to,
                   .message_id = j->message_id,
                   .subject = subj.data ? subj.data : "",
                   .subject_len = subj.len,
                   .html = w->html ? (html.data ? html.data : "") : NULL,
                   .html_len = html.len,
                   .text = w->text ? (text.data ? text.data : "") : NULL,
                   .text_len = w->text ? msg_text_unescape(text.data, text.len) : 0,
                   /* One-click (RFC 8058) needs https; the mailto, to this
                    * message's own return path, always works: inbound mail
                    * to it saying "unsubscribe" unsubscribes (inbound/act). */
                   .unsubscribe_url = unsub && !strncmp(unsub, "https://", 8) ? unsub : NULL,
                   .unsubscribe_mailto = verp,
                   .return_path = verp};
    msg_info info;
    buf body;
    buf_init(&body, BUF_NOCAP);
    if (!rc)
        rc = msg_build(w->env, &ms, &body, &info, e);
    if (!rc && w->keys)
        rc = dkim_keyset_sign(w->keys, body.data, body.len, unix_now(), &j->msg, e);
    if (!rc) {
        buf_append(&j->msg, body.data, body.len);
        snprintf(j->rcpt, sizeof j->rcpt, "%s", info.rcpt_to);
        snprintf(j->mail_from, sizeof j->mail_from, "%s", info.mail_from);
        j->rcpts[0] = j->rcpt;
        j->sm = (smtp_msg){.from = j->mail_from, .rcpt = j->rcpts, .nrcpt = 1,
                           .data = j->msg.data, .len = j->msg.len};
    }
    buf_free(&body);
    buf_free(&subj);
    buf_free(&html);
    buf_free(&text);
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

/* One due delivery: claim it (sending, in the caller's transaction) and
 * copy what its message is made of into a job for the builder; a
 * recipient who no longer wants it is recorded as failed with the reason. */
static int take_due(void *ud, const due_rec *r)
{
    struct fill *f = ud;
    struct worker *w = f->w;
    delivery_rec d = r->d;
    if (!r->wanted || !r->d.subscriber_id) {
        d.status = "failed";
        d.last_reply = "not sent: unsubscribed, blocklisted or suppressed since the campaign "
                       "started";
        w->prog.skipped++;
        return store_delivery_update(w->s, &d, w->e);
    }
    struct job *j = job_get(w);
    j->delivery_id = r->d.id;
    j->attempts = r->d.attempts + 1;
    j->maybe_dup = r->d.maybe_duplicate;
    message_id(w, r->d.id, j->message_id);
    j->email = xstrdup(r->d.email);
    j->sub = (sub_rec){.id = r->sub.id,
                       .email = xstrdup(r->sub.email ? r->sub.email : r->d.email),
                       .name = r->sub.name ? xstrdup(r->sub.name) : NULL,
                       .attribs = r->sub.attribs ? xstrdup(r->sub.attribs) : NULL,
                       .timezone = r->sub.timezone ? xstrdup(r->sub.timezone) : NULL,
                       .locale = r->sub.locale ? xstrdup(r->sub.locale) : NULL};
    d.status = "sending";
    d.attempts = j->attempts;
    d.message_id = j->message_id;
    int rc = store_delivery_update(w->s, &d, w->e);
    if (rc) {
        job_put(w, j);
        return rc;
    }
    f->batch[f->n++] = j;
    return 0;
}

/* ---- the builder -------------------------------------------------------------------- */

#define BUILDER_BATCH 16

static void *builder_main(void *ud)
{
    struct worker *w = ud;
    struct builder *b = &w->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->quit && !b->in_head)
            pthread_cond_wait(&b->work, &b->mu);
        if (b->quit)
            break;
        struct job *j = b->in_head;
        b->in_head = j->next;
        if (!b->in_head)
            b->in_tail = NULL;
        j->next = NULL;
        b->busy = true;
        pthread_mutex_unlock(&b->mu);
        td_error be = {0};
        j->build_rc = build(w, j, &be);
        if (j->build_rc)
            snprintf(j->build_err, sizeof j->build_err, "%s", be.msg);
        pthread_mutex_lock(&b->mu);
        if (b->out_tail)
            b->out_tail->next = j;
        else
            b->out_head = j;
        b->out_tail = j;
        b->busy = false;
        pthread_cond_broadcast(&b->idle);
        /* The worker takes them all at once; waking it for each one cost
         * it a turn of its loop per message. The pool has messages waiting
         * for connections meanwhile. */
        if (++b->nout == BUILDER_BATCH || !b->in_head)
            (void)!write(b->wake[1], "", 1);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static int builder_start(struct worker *w, td_error *e)
{
    struct builder *b = &w->b;
    if (pipe(b->wake) || fcntl(b->wake[0], F_SETFL, O_NONBLOCK) ||
        fcntl(b->wake[1], F_SETFL, O_NONBLOCK))
        return td_err_set(e, TD_EINTERNAL, "the builder's pipe: %s", strerror(errno));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->idle, NULL);
    if (pthread_create(&b->thread, NULL, builder_main, w)) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->work);
        pthread_cond_destroy(&b->idle);
        return td_err_set(e, TD_EINTERNAL, "cannot start the builder thread");
    }
    b->started = true;
    pool_set_wake_fd(w->p, b->wake[0]);
    return TD_OK;
}

/* builder_give queues the n claimed jobs to be built, in order. */
static void builder_give(struct builder *b, struct job **jobs, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < n; i++) {
        if (b->in_tail)
            b->in_tail->next = jobs[i];
        else
            b->in_head = jobs[i];
        b->in_tail = jobs[i];
    }
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
}

/* builder_take returns the built jobs (a list through next), or NULL. */
static struct job *builder_take(struct builder *b)
{
    pthread_mutex_lock(&b->mu);
    struct job *j = b->out_head;
    b->out_head = b->out_tail = NULL;
    b->nout = 0;
    pthread_mutex_unlock(&b->mu);
    return j;
}

/* builder_withdraw returns every job the builder holds, built or not,
 * once it is idle (a list through next). The caller must not hold store_mu:
 * the job being built may need it. */
static struct job *builder_withdraw(struct builder *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->busy)
        pthread_cond_wait(&b->idle, &b->mu);
    struct job *list = b->out_head;
    if (b->out_tail)
        b->out_tail->next = b->in_head;
    else
        list = b->in_head;
    b->in_head = b->in_tail = b->out_head = b->out_tail = NULL;
    b->nout = 0;
    pthread_mutex_unlock(&b->mu);
    return list;
}

static void builder_stop(struct worker *w)
{
    struct builder *b = &w->b;
    if (!b->started)
        return;
    pthread_mutex_lock(&b->mu);
    b->quit = true;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    b->started = false;
    for (struct job *j = builder_withdraw(b), *n; j; j = n) {
        n = j->next;
        job_put(w, j);
    }
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->idle);
    close(b->wake[0]);
    close(b->wake[1]);
}

/* wait_pool runs the pool for up to tmo ms, letting go of the store for
 * the builder meanwhile. Returns the number of results waiting. */
static size_t wait_pool(struct worker *w, int tmo)
{
    pthread_mutex_unlock(&w->store_mu);
    size_t n = pool_poll(w->p, tmo);
    pthread_mutex_lock(&w->store_mu);
    return n;
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

/* requeue puts a claimed job's row back to queued, as it was. */
static int requeue(struct worker *w, struct job *j, td_error *e)
{
    delivery_rec d = {.id = j->delivery_id, .status = "queued", .attempts = j->attempts - 1,
                      .maybe_duplicate = j->maybe_dup};
    return store_delivery_update(w->s, &d, e);
}

/* send_built hands the builder's finished jobs to the pool; a message that
 * could not be made is recorded as failed. Returns 0, or the error that
 * stops the run (a build error other than this recipient's own). */
static int send_built(struct worker *w, td_error *e)
{
    int rc = 0;
    for (struct job *j = builder_take(&w->b), *n; j; j = n) {
        n = j->next;
        j->next = NULL;
        if (!rc && !j->build_rc) {
            td_error se = {0};
            if (!pool_submit(w->p, j, &j->sm, -1, &se))
                continue;
            /* Refused before any wire: back to the queue at once. */
            requeue(w, j, NULL);
        } else if (!rc && (j->build_rc == TD_EINVAL || j->build_rc == TD_ETOOBIG)) {
            delivery_rec d = {.id = j->delivery_id, .status = "failed", .attempts = j->attempts,
                              .last_reply = j->build_err, .message_id = j->message_id};
            w->prog.failed++;
            rc = store_delivery_update(w->s, &d, e);
        } else if (!rc) {
            rc = j->build_rc;
            td_err_set(e, rc, "%s", j->build_err);
        }
        /* After an error the job stays sending: a restart sends it. */
        job_put(w, j);
        w->inflight--;
    }
    return rc;
}

int worker_run(store *s, int64_t id, const worker_opts *o, const char **state, td_error *e)
{
    static const worker_opts none = {0};
    struct worker w = {.s = s, .o = o ? o : &none, .e = e};
    *state = "running";
    pthread_mutex_init(&w.store_mu, NULL);
    pthread_mutex_lock(&w.store_mu);
    int rc = setup(&w, id);
    if (!rc)
        rc = builder_start(&w, e);
    uint64_t n = 0;
    /* Left `sending` by a crash: they may have been on the wire. */
    if (!rc)
        rc = store_delivery_requeue(s, id, "sending", true, unix_now(), &n, e);
    struct job **batch = xcalloc(w.max_inflight ? w.max_inflight : 1, sizeof *batch);
    int64_t next_check = 0, next_report = 0, next_due = 0;
    bool stopping = false, more_due = true;
    size_t ready = 0;
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
                /* Messages not on a connection yet go back to the queue:
                 * the builder's, and those waiting in the pool. */
                pthread_mutex_unlock(&w.store_mu);
                struct job *held = builder_withdraw(&w.b);
                pthread_mutex_lock(&w.store_mu);
                void *back[256];
                size_t k;
                if ((rc = store_begin(s, e)))
                    break;
                for (struct job *j = held, *nj; j; j = nj) {
                    nj = j->next;
                    if (!rc)
                        rc = requeue(&w, j, e);
                    job_put(&w, j);
                    w.inflight--;
                }
                while (!rc && (k = pool_withdraw(w.p, back, 256)) > 0)
                    for (size_t i = 0; i < k && !rc; i++) {
                        struct job *j = back[i];
                        rc = requeue(&w, j, e);
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
        /* Results in, new rows claimed: one transaction for both, and
         * none when there is neither (a turn may be only the builder's
         * messages going out). Once the queue ran dry, rows are looked for
         * again every WORKER_CHECK_MS (deferred ones coming due). */
        if (stopping)
            more_due = false;
        bool claim = !stopping && w.inflight <= w.max_inflight * 3 / 4 &&
                     (more_due || now_ms >= next_due);
        struct fill f = {.w = &w, .batch = batch};
        if (ready || claim) {
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
            if (!rc && claim) {
                unsigned room = w.max_inflight - w.inflight;
                rc = store_delivery_due(s, id, unix_now(), room, take_due, &f, e);
                more_due = f.n == room;
                if (!more_due)
                    next_due = now_ms + WORKER_CHECK_MS;
            }
            rc = rc ? rc : store_commit(s, e);
            if (rc) {
                store_rollback(s);
                for (size_t i = 0; i < f.n; i++)
                    job_put(&w, batch[i]);
                break;
            }
        }
        /* Committed as `sending`: now they may be built and go out. */
        builder_give(&w.b, batch, f.n);
        w.inflight += (unsigned)f.n;
        if ((rc = send_built(&w, e)))
            break;
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
            ready = wait_pool(&w, WORKER_CHECK_MS);
            continue;
        }
        ready = wait_pool(&w, w.inflight ? 50 : 0);
    }
    if (rc) {
        /* Whatever is still in the pool or the builder stays marked
         * sending: a restart queues it again. Free the jobs without
         * recording anything. */
        pthread_mutex_unlock(&w.store_mu);
        builder_stop(&w);
        pthread_mutex_lock(&w.store_mu);
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
    pthread_mutex_unlock(&w.store_mu);
    teardown(&w);
    pthread_mutex_destroy(&w.store_mu);
    return rc;
}
