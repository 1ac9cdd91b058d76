/* worker: one running campaign to the end (see worker.h). */
#include "delivery/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
#include "track/token.h"
#include "util/log.h"
#include "util/xalloc.h"

/* A message between its claim and its result. */
struct job {
    int64_t delivery_id;
    int attempts; /* including this one */
    due_rec due;  /* the recipient, copied for the builder */
    char rcpt[ADDR_MAX + 3];
    char mail_from[ADDR_MAX + 3];
    /* Room for any From domain: msg_build refuses one over MSG_ID_MAX. */
    char message_id[40 + ADDR_DOMAIN_MAX];
    const char *rcpts[1];
    buf msg;
    smtp_msg sm;
    bool maybe_dup;
    int build_rc; /* the builder's answer, with build_err */
    td_error build_err;
    struct job *next; /* on the free list or a builders' queue */
};

/* A builder makes messages. Each has its own templates (a compiled template
 * caches its partials as it renders), recipient context, content library
 * (on a database connection of its own when it is a thread), signers and
 * scratch buffers, kept from one message to the next: grown once to a
 * message's size instead of from nothing for every message (reallocation
 * copies and the allocator were a tenth of the worker's CPU). */
struct builder {
    struct worker *w;
    store *st; /* its own, or the worker's when not a thread */
    tmpl *subject, *html, *text;
    msg_context mc;
    blocks *blocks;
    dkim_keyset *keys;
    buf s_subj, s_html, s_text, s_body;
    pthread_t thread;
    bool started;
};

/* A FIFO of jobs. */
struct jobq {
    struct job *head, **tail;
};

struct worker {
    store *s;
    campaign_rec c;
    const worker_opts *o;
    char *base_url, *secret, *sender_name;
    msg_context mc; /* the campaign's part, copied into each builder */
    msg_envelope *env;
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
    /* Message building: with threads (nb > 0) the loop claims deliveries
     * and queues them in to_build; the builders put them, made or refused, in
     * done and wake the loop through wake_fd. Without, the loop builds with
     * b[0] itself and only uses done. */
    struct builder *b;
    int nb;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct jobq to_build, done;
    bool quit;
    int wake_fd;
    td_error *e;
};

static void jobq_init(struct jobq *q)
{
    q->head = NULL;
    q->tail = &q->head;
}

static void jobq_push(struct jobq *q, struct job *j)
{
    j->next = NULL;
    *q->tail = j;
    q->tail = &j->next;
}

static struct job *jobq_pop(struct jobq *q)
{
    struct job *j = q->head;
    if (j && !(q->head = j->next))
        q->tail = &q->head;
    return j;
}

/* jobq_take empties q, shared with the builders, and returns its jobs in
 * order (linked by next). */
static struct job *jobq_take(struct worker *w, struct jobq *q)
{
    pthread_mutex_lock(&w->mu);
    struct job *j = q->head;
    jobq_init(q);
    pthread_mutex_unlock(&w->mu);
    return j;
}

static int64_t unix_now(void) { return (int64_t)time(NULL); }

static void due_clear(due_rec *r)
{
    free(r->d.email);
    free(r->sub.email);
    free(r->sub.name);
    free(r->sub.attribs);
    free(r->sub.timezone);
    free(r->sub.locale);
    memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* due_copy keeps what build reads of a due row (the row's strings are only
 * the callback's). */
static void due_copy(due_rec *to, const due_rec *r)
{
    due_clear(to);
    to->d.id = r->d.id;
    to->d.campaign_id = r->d.campaign_id;
    to->d.subscriber_id = r->d.subscriber_id;
    to->d.email = dup_or_null(r->d.email);
    to->sub.id = r->sub.id;
    to->sub.email = dup_or_null(r->sub.email);
    to->sub.name = dup_or_null(r->sub.name);
    to->sub.attribs = dup_or_null(r->sub.attribs);
    to->sub.timezone = dup_or_null(r->sub.timezone);
    to->sub.locale = dup_or_null(r->sub.locale);
    to->wanted = r->wanted;
}

static void job_free_list(struct job *j)
{
    while (j) {
        struct job *n = j->next;
        buf_free(&j->msg);
        due_clear(&j->due);
        free(j);
        j = n;
    }
}

static struct job *job_get(struct worker *w)
{
    struct job *j = w->free_jobs;
    if (j) {
        w->free_jobs = j->next;
        buf_reset(&j->msg);
    } else {
        j = xcalloc(1, sizeof *j);
        buf_init(&j->msg, BUF_NOCAP);
    }
    j->build_rc = 0;
    j->build_err = (td_error){0};
    return j;
}

static void job_put(struct worker *w, struct job *j)
{
    due_clear(&j->due);
    j->next = w->free_jobs;
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

static int builders_start(struct worker *w);
static void builders_stop(struct worker *w);

static int setup(struct worker *w, int64_t id)
{
    td_error *e = w->e;
    int rc = store_campaign_get(w->s, id, &w->c, e);
    if (rc)
        return rc;
    if (strcmp(w->c.state, "running"))
        return td_err_set(e, TD_EDENIED, "campaign %lld is %s, not running", (long long)id,
                          w->c.state);
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
    if ((rc = builders_start(w)))
        return rc;
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
    builders_stop(w);
    pool_free(w->p);
    msg_envelope_free(w->env);
    free(w->base_url);
    free(w->secret);
    free(w->sender_name);
    free((char *)w->mc.sender_email);
    job_free_list(w->free_jobs);
    free(w->list);
    campaign_rec_clear(&w->c);
}

static int render(struct builder *b, tmpl *t, json_t *data, bool html, buf *out, td_error *e)
{
    tmpl_helper h = msg_context_helper(&b->mc, html);
    return tmpl_render_with(t, data, blocks_partial, b->blocks, &h, 1, out, e);
}

/* message_id names delivery id's message: the delivery id first,
 * zero-padded: ids rise as a campaign goes, so the index inbound mail finds
 * a message by (its In-Reply-To, a bounce's copy) grows at its end instead
 * of at random places (random IDs cost a quarter of the send rate in index
 * pages written); the tag, keyed by the installation's secret, keeps it
 * unique across installations and unguessable from another message's (a
 * bounce quoting it acts on its delivery), and the same for every attempt
 * of one delivery. */
static void message_id(const struct worker *w, int64_t id, char out[40 + ADDR_DOMAIN_MAX])
{
    char mtag[TRACK_TAG_LEN + 1];
    track_tag(w->mc.key, 'm', w->c.id, id, mtag);
    snprintf(out, 40 + ADDR_DOMAIN_MAX, "d%012lld.%s@%s", (long long)id, mtag, w->from_domain);
}

/* build makes job j's message (its message_id set) for due row r.
 * TD_EINVAL or TD_ETOOBIG: this recipient's message cannot be made
 * (recorded as failed); other codes stop the run. */
static int build(struct builder *b, const due_rec *r, struct job *j, td_error *e)
{
    const struct worker *w = b->w;
    json_t *data = msg_context_data(&b->mc, &r->sub, e);
    if (!data)
        return TD_EINVAL;
    int rc = blocks_attach(b->blocks, data, e);
    buf *subj = &b->s_subj, *html = &b->s_html, *text = &b->s_text;
    buf_reset(subj);
    buf_reset(html);
    buf_reset(text);
    if (!rc)
        rc = render(b, b->subject, data, false, subj, e);
    /* {{campaign.subject}} in the body is this recipient's subject, not
     * the subject's template. */
    if (!rc) {
        size_t sl = msg_text_unescape(subj->data, subj->len);
        json_object_set_new(json_object_get(data, "campaign"), "subject",
                            json_stringn(subj->data ? subj->data : "", sl));
        subj->len = sl;
    }
    if (!rc && b->html)
        rc = render(b, b->html, data, true, html, e);
    if (!rc && b->text)
        rc = render(b, b->text, data, false, text, e);
    /* The VERP names the delivery with a tag only this installation can
     * make (track/token.h): mail to it suppresses or unsubscribes. */
    char verp[ADDR_MAX + 3], camp[32], tok[TRACK_VERP_MAX + 1];
    snprintf(camp, sizeof camp, "c%lld", (long long)w->c.id);
    track_verp_token(b->mc.key, w->c.id, r->d.id, tok);
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
    msg_spec ms = {.to = to,
                   .message_id = j->message_id,
                   .subject = subj->data ? subj->data : "",
                   .subject_len = subj->len,
                   .html = b->html ? (html->data ? html->data : "") : NULL,
                   .html_len = html->len,
                   .text = b->text ? (text->data ? text->data : "") : NULL,
                   .text_len = b->text ? msg_text_unescape(text->data, text->len) : 0,
                   /* One-click (RFC 8058) needs https; the mailto, to this
                    * message's own return path, always works: inbound mail
                    * to it saying "unsubscribe" unsubscribes (inbound/act). */
                   .unsubscribe_url = unsub && !strncmp(unsub, "https://", 8) ? unsub : NULL,
                   .unsubscribe_mailto = verp,
                   .return_path = verp};
    msg_info info;
    /* Signed, the DKIM-Signature field comes first: the message is built
     * apart and follows it; unsigned, it is built in the job's buffer. */
    buf *body = b->keys ? &b->s_body : &j->msg;
    buf_reset(body);
    buf_reset(&j->msg);
    if (!rc)
        rc = msg_build(w->env, &ms, body, &info, e);
    if (!rc && b->keys &&
        !(rc = dkim_keyset_sign(b->keys, body->data, body->len, unix_now(), &j->msg, e)))
        rc = buf_append(&j->msg, body->data, body->len);
    if (!rc) {
        snprintf(j->rcpt, sizeof j->rcpt, "%s", info.rcpt_to);
        snprintf(j->mail_from, sizeof j->mail_from, "%s", info.mail_from);
        j->rcpts[0] = j->rcpt;
        j->sm = (smtp_msg){.from = j->mail_from, .rcpt = j->rcpts, .nrcpt = 1,
                           .data = j->msg.data, .len = j->msg.len};
    }
    json_decref(data);
    return rc;
}

/* ---- builders ------------------------------------------------------------------------ */

/* The number of builder threads: TIDINGS_BUILDERS when set (0: the loop
 * builds, as on one CPU), else one per CPU but the loop's, at most four.
 * Building (render, MIME, DKIM) is about half of a message's CPU, the
 * delivery log and the SMTP conversations the other half, which stays on
 * the loop's thread. */
static int builder_count(void)
{
    const char *env = getenv("TIDINGS_BUILDERS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (!*end && n >= 0 && n <= 16)
            return (int)n;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus <= 1 ? 0 : cpus - 1 > 4 ? 4 : (int)cpus - 1;
}

static int builder_init(struct worker *w, struct builder *b, store *st, td_error *e)
{
    b->w = w;
    b->st = st;
    b->mc = w->mc;
    msg_context_memo_on(&b->mc);
    buf_init(&b->s_subj, BUF_NOCAP);
    buf_init(&b->s_html, BUF_NOCAP);
    buf_init(&b->s_text, BUF_NOCAP);
    buf_init(&b->s_body, BUF_NOCAP);
    int rc;
    if ((rc = compile("the subject", w->c.subject, &b->subject, e)) ||
        (rc = compile("the HTML template", w->c.html, &b->html, e)) ||
        (rc = compile("the text template", w->c.text, &b->text, e)))
        return rc;
    rc = dkim_keyset_load(w->s, w->from_domain, &b->keys, e);
    if (rc == TD_ENOTFOUND)
        b->keys = NULL; /* unsigned: the domain has no key */
    else if (rc)
        return rc;
    b->blocks = blocks_new(st, 0);
    return TD_OK;
}

static void builder_free(struct builder *b)
{
    msg_context_memo_off(&b->mc);
    blocks_free(b->blocks);
    dkim_keyset_free(b->keys);
    tmpl_free(b->subject);
    tmpl_free(b->html);
    tmpl_free(b->text);
    buf_free(&b->s_subj);
    buf_free(&b->s_html);
    buf_free(&b->s_text);
    buf_free(&b->s_body);
    if (b->st != b->w->s)
        store_close(b->st);
}

static void wake_loop(struct worker *w)
{
    uint64_t one = 1;
    while (write(w->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void *builder_thread(void *arg)
{
    struct builder *b = arg;
    struct worker *w = b->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct job *j;
        while (!(j = jobq_pop(&w->to_build)) && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!j)
            break;
        pthread_mutex_unlock(&w->mu);
        j->build_rc = build(b, &j->due, j, &j->build_err);
        pthread_mutex_lock(&w->mu);
        bool was_empty = !w->done.head;
        jobq_push(&w->done, j);
        if (was_empty)
            wake_loop(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* builders_start sets up the builders: threads, each on a database
 * connection of its own (the content library is read while rendering), or
 * one used by the loop itself on the loop's connection when there are to be
 * none (one CPU, TIDINGS_BUILDERS=0, an in-memory database, no eventfd). A
 * connection that cannot be opened is an error, as at the loop's start. */
static int builders_start(struct worker *w)
{
    td_error *e = w->e;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    jobq_init(&w->to_build);
    jobq_init(&w->done);
    int want = builder_count();
    const char *loc = store_location(w->s);
    if (want > 0 && loc && strcmp(loc, ":memory:"))
        w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        want = 0;
    w->b = xcalloc((size_t)(want ? want : 1), sizeof *w->b);
    if (!want) {
        w->nb = 0;
        return builder_init(w, &w->b[0], w->s, e);
    }
    for (int i = 0; i < want; i++) {
        store *st = NULL;
        int rc = store_open(loc, &st, e);
        if (!rc) {
            rc = builder_init(w, &w->b[i], st, e);
            w->nb = i + 1; /* freed by builders_stop from here */
        }
        if (!rc && pthread_create(&w->b[i].thread, NULL, builder_thread, &w->b[i]))
            rc = td_err_set(e, TD_EIO, "cannot start a message builder thread");
        if (rc)
            return rc;
        w->b[i].started = true;
    }
    return TD_OK;
}

/* builders_stop ends the threads (after the job each is making) and frees
 * the builders; jobs still queued for them go back to the free list (their
 * deliveries stay as the log has them). */
static void builders_stop(struct worker *w)
{
    if (!w->b)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nb; i++)
        if (w->b[i].started)
            pthread_join(w->b[i].thread, NULL);
    for (int i = 0; i < (w->nb ? w->nb : 1); i++)
        if (w->b[i].w)
            builder_free(&w->b[i]);
    struct job *j;
    while ((j = jobq_pop(&w->to_build)) || (j = jobq_pop(&w->done)))
        job_put(w, j);
    free(w->b);
    w->b = NULL;
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* ---- the loop ---------------------------------------------------------------------- */

struct fill {
    struct worker *w;
    struct job **batch;
    size_t n;
    int rc;
};

/* One due delivery: mark it sending (in the caller's transaction) for a
 * builder to make its message, or make it here when the loop builds; a
 * recipient who no longer wants it, or whose message cannot be made here,
 * is recorded as failed with the reason. */
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
    int rc = 0;
    if (w->nb) {
        due_copy(&j->due, r);
    } else {
        td_error be = {0};
        rc = build(&w->b[0], r, j, &be);
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
    }
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

/* requeue puts job j's delivery back in the queue (never on the wire) and
 * drops the job; in the caller's transaction, or on its own with e NULL. */
static int requeue(struct worker *w, struct job *j, td_error *e)
{
    delivery_rec d = {.id = j->delivery_id, .status = "queued", .attempts = j->attempts - 1,
                      .maybe_duplicate = j->maybe_dup};
    int rc = store_delivery_update(w->s, &d, e);
    job_put(w, j);
    w->inflight--;
    return rc;
}

/* take_built takes the builders' finished jobs: a message made goes to
 * ready[] for the pool, unless the worker is stopping; the others (to go
 * back to the queue, or whose message could not be made) to *fix, for
 * settle_built. No database work, so that a turn with nothing to record
 * needs no transaction. */
static void take_built(struct worker *w, bool stopping, struct job **ready, size_t *nready,
                       struct jobq *fix)
{
    uint64_t v;
    if (read(w->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
        log_warn("worker: reading the builders' wake-up: %s", strerror(errno));
    struct job *j = jobq_take(w, &w->done);
    while (j) {
        struct job *next = j->next;
        if (!j->build_rc && !stopping)
            ready[(*nready)++] = j;
        else
            jobq_push(fix, j);
        j = next;
    }
}

/* settle_built records (in the caller's transaction) the jobs take_built
 * set apart: one made while stopping goes back to the queue; a recipient
 * whose message cannot be made is recorded as failed; another failure
 * stops the run. Every job is dropped. */
static int settle_built(struct worker *w, struct jobq *fix)
{
    int rc = 0;
    struct job *j;
    while ((j = jobq_pop(fix))) {
        if (rc) {
            job_put(w, j);
            w->inflight--;
        } else if (!j->build_rc) {
            rc = requeue(w, j, w->e);
        } else if (j->build_rc == TD_EINVAL || j->build_rc == TD_ETOOBIG) {
            delivery_rec d = {.id = j->delivery_id, .status = "failed",
                              .attempts = j->attempts, .last_reply = j->build_err.msg,
                              .maybe_duplicate = j->maybe_dup};
            w->prog.failed++;
            rc = store_delivery_update(w->s, &d, w->e);
            job_put(w, j);
            w->inflight--;
        } else {
            *w->e = j->build_err;
            rc = j->build_rc;
            job_put(w, j);
            w->inflight--;
        }
    }
    return rc;
}

/* submit hands job j, committed as sending, to the pool; one the pool
 * refuses before any wire goes back to the queue at once. */
static void submit(struct worker *w, struct job *j)
{
    td_error se = {0};
    if (pool_submit(w->p, j, &j->sm, -1, &se))
        requeue(w, j, NULL);
}

/* record writes the result of job j (in the caller's transaction). */
static int record(struct worker *w, struct job *j, const pool_result *pr)
{
    delivery_rec d = {.id = j->delivery_id,
                      .attempts = j->attempts,
                      .maybe_duplicate = j->maybe_dup, /* message_id: as claimed */
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
    struct worker w = {.s = s, .o = o ? o : &none, .e = e, .wake_fd = -1};
    *state = "running";
    int rc = setup(&w, id);
    uint64_t n = 0;
    /* Left `sending` by a crash: they may have been on the wire. */
    if (!rc)
        rc = store_delivery_requeue(s, id, "sending", true, unix_now(), &n, e);
    size_t cap = w.max_inflight ? w.max_inflight : 1;
    struct job **batch = xcalloc(cap, sizeof *batch), **ready = xcalloc(cap, sizeof *ready);
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
                /* Messages not on a connection yet go back to the queue:
                 * those waiting for a builder now, those being made when
                 * they are taken from the builders (take_built). */
                void *back[256];
                size_t k;
                if ((rc = store_begin(s, e)))
                    break;
                for (struct job *j = w.nb ? jobq_take(&w, &w.to_build) : NULL, *next; j;
                     j = next) {
                    next = j->next;
                    if (!rc) {
                        rc = requeue(&w, j, e);
                    } else { /* the store failed: the run stops; they stay sending */
                        job_put(&w, j);
                        w.inflight--;
                    }
                }
                while (!rc && (k = pool_withdraw(w.p, back, 256)) > 0)
                    for (size_t i = 0; i < k && !rc; i++)
                        rc = requeue(&w, back[i], e);
                rc = rc ? rc : store_commit(s, e);
                if (rc)
                    store_rollback(s);
            }
            campaign_rec_clear(&c);
        }
        if (rc)
            break;
        /* Results in, new messages out: one transaction for both, and
         * none when there is nothing to record or claim (most turns with
         * builders only hand made messages to the pool). */
        size_t nready = 0;
        struct jobq fix;
        jobq_init(&fix);
        if (w.nb)
            take_built(&w, stopping, ready, &nready, &fix);
        bool claim = !stopping && w.inflight <= w.max_inflight * 3 / 4;
        struct fill f = {.w = &w, .batch = batch};
        bool more_due = false;
        if (claim || fix.head || pool_results(w.p)) {
            if ((rc = store_begin(s, e)))
                goto failed;
            pool_result pr;
            while (!rc && pool_take_result(w.p, &pr)) {
                struct job *j = pr.job;
                rc = record(&w, j, &pr);
                pool_result_clear(&pr);
                job_put(&w, j);
                w.inflight--;
            }
            if (!rc)
                rc = settle_built(&w, &fix);
            if (!rc && claim) {
                unsigned room = w.max_inflight - w.inflight;
                rc = store_delivery_due(s, id, unix_now(), room, take_due, &f, e);
                more_due = f.n > 0;
            }
            rc = rc ? rc : store_commit(s, e);
            if (rc)
                store_rollback(s);
        }
    failed:
        if (rc) {
            for (size_t i = 0; i < f.n; i++)
                job_put(&w, batch[i]);
            for (size_t i = 0; i < nready; i++) {
                job_put(&w, ready[i]);
                w.inflight--;
            }
            for (struct job *j; (j = jobq_pop(&fix));) {
                job_put(&w, j);
                w.inflight--;
            }
            break;
        }
        /* Committed as `sending`: now they may be made and go on the
         * wire. */
        for (size_t i = 0; i < nready; i++)
            submit(&w, ready[i]);
        w.inflight += (unsigned)f.n;
        if (w.nb && f.n) {
            pthread_mutex_lock(&w.mu);
            for (size_t i = 0; i < f.n; i++)
                jobq_push(&w.to_build, batch[i]);
            pthread_cond_broadcast(&w.cv);
            pthread_mutex_unlock(&w.mu);
        } else {
            for (size_t i = 0; i < f.n; i++)
                submit(&w, batch[i]);
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
        pool_poll_fd(w.p, w.nb ? w.wake_fd : -1, NULL, w.inflight ? 50 : 0);
    }
    if (rc) {
        /* Whatever is still in the pool or with the builders stays marked
         * sending: a restart queues it again. Free the jobs without
         * recording anything (builders_stop frees the builders'). */
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
    free(ready);
    teardown(&w);
    return rc;
}
