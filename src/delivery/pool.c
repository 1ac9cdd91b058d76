/* pool: relays, their connections and the jobs waiting for them, in one poll
 * loop. See pool.h for the contract, docs/internals/delivery.md for why. */
#include "delivery/pool.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_maildir.h"
#include "util/log.h"
#include "util/xalloc.h"

/* How many waiting jobs one idle connection looks at for one whose domain
 * is open: bounds the work per round when the head of the queue waits on a
 * domain limit. And how many messages a maildir relay writes per round, so
 * sockets are not starved. */
#define SCAN_MAX 1024
#define MAILDIR_BATCH 256

typedef struct pjob {
    void *job;
    smtp_msg msg;
    int avoid;
    char domain[RATELIMIT_DOMAIN_MAX + 1];
    struct pjob *prev, *next;
} pjob;

typedef struct presult {
    pool_result r;
    uint64_t conn_serial; /* the connection held until this is taken; 0: none */
    struct presult *next;
} presult;

typedef struct prelay {
    smtp_url url;
    char *name; /* masked URL */
    int rl_id;
    smtp_addr addr[POOL_MAX_ADDRS];
    int naddr, next_addr;
    smtp_maildir *md;
    int64_t down_until; /* 0: up */
    unsigned failures;  /* consecutive failed connection attempts */
    td_error last_err;
    unsigned opening; /* its connections not READY yet */
} prelay;

typedef struct pconn {
    smtp_conn *c;
    int relay;
    pjob *job;  /* in flight, until its result is taken */
    pjob *next; /* queued behind it (smtp_conn_queue) */
    int64_t idle_since;
    bool was_ready;
    bool held;      /* hold_until_taken: its last result is not taken yet */
    uint64_t serial; /* unique in the pool, for results to find it */
    int fd, pidx; /* socket and index in the last pool_fds answer */
} pconn;

struct pool {
    pool_opts o;
    ratelimit *rl;
    prelay *relays[POOL_MAX_RELAYS];
    int nrelays;
    pconn **conns;
    size_t nconns, aconns;
    pjob *pend_head, *pend_tail;
    size_t npend, ninflight;
    presult *res_head, *res_tail;
    size_t nres;
    int64_t wake; /* earliest rate-limit opening seen in the last round, -1 */
    int rr;       /* round robin over relays for new connections */
    bool draining;
    uint64_t next_serial;
    struct pollfd *pfd; /* pool_poll's own array */
    size_t apfd;
};

void pool_opts_init(pool_opts *o)
{
    memset(o, 0, sizeof *o);
    smtp_opts_init(&o->smtp);
    o->idle_ms = 60 * 1000;
    o->down.base_ms = 10 * 1000;
    o->down.max_delay_ms = 10 * 60 * 1000;
    o->down.factor = 2;
    o->down.jitter = 0.2;
    o->max_domains = 65536;
    o->maildir_fsync = true;
    o->max_pending = 10000;
}

pool *pool_new(const pool_opts *o)
{
    pool *p = xcalloc(1, sizeof *p);
    if (o)
        p->o = *o;
    else
        pool_opts_init(&p->o);
    if (!p->o.max_pending)
        p->o.max_pending = 10000;
    p->rl = ratelimit_new(p->o.max_domains);
    p->wake = -1;
    return p;
}

static void job_unlink(pool *p, pjob *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->pend_head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->pend_tail = j->prev;
    j->prev = j->next = NULL;
    p->npend--;
}

/* job_link adds j to the waiting jobs: at the tail, or at the head for
 * one that goes back (it was taken for a connection and never sent). */
static void job_link(pool *p, pjob *j, bool front)
{
    if (front) {
        j->prev = NULL;
        j->next = p->pend_head;
        if (p->pend_head)
            p->pend_head->prev = j;
        else
            p->pend_tail = j;
        p->pend_head = j;
    } else {
        j->next = NULL;
        j->prev = p->pend_tail;
        if (p->pend_tail)
            p->pend_tail->next = j;
        else
            p->pend_head = j;
        p->pend_tail = j;
    }
    p->npend++;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nconns; i++) {
        smtp_conn_free(p->conns[i]->c);
        free(p->conns[i]->job);
        free(p->conns[i]->next);
        free(p->conns[i]);
    }
    free(p->conns);
    while (p->pend_head) {
        pjob *j = p->pend_head;
        job_unlink(p, j);
        free(j);
    }
    for (presult *r = p->res_head, *n; r; r = n) {
        n = r->next;
        pool_result_clear(&r->r);
        free(r);
    }
    for (int i = 0; i < p->nrelays; i++) {
        prelay *r = p->relays[i];
        smtp_url_clear(&r->url);
        free(r->name);
        smtp_maildir_free(r->md);
        free(r);
    }
    ratelimit_free(p->rl);
    free(p->pfd);
    free(p);
}

ratelimit *pool_ratelimit(pool *p)
{
    return p->rl;
}

int pool_add_relay(pool *p, const char *url, unsigned max_conns, double per_s, int *id, td_error *e)
{
    if (p->nrelays >= POOL_MAX_RELAYS)
        return td_err_set(e, TD_ETOOBIG, "more than %d relays", POOL_MAX_RELAYS);
    prelay *r = xcalloc(1, sizeof *r);
    int rc = smtp_url_parse(url, &r->url, e);
    if (rc)
        goto fail;
    if (r->url.kind == SMTP_URL_MAILDIR) {
        r->md = smtp_maildir_open(r->url.path, p->o.maildir_fsync, e);
        if (!r->md) {
            rc = TD_EIO;
            goto fail;
        }
    } else {
        int n = smtp_resolve(&r->url, r->addr, POOL_MAX_ADDRS, e);
        if (n < 0) {
            rc = e ? e->code : TD_ETEMP;
            goto fail;
        }
        if (n == 0) {
            rc = td_err_set(e, TD_EINVAL, "%s: no address", r->url.host);
            goto fail;
        }
        r->naddr = n;
    }
    if (!(per_s >= 0) || !isfinite(per_s)) {
        rc = td_err_set(e, TD_EINVAL, "relay rate: a number >= 0 is needed");
        goto fail;
    }
    r->name = smtp_url_format(&r->url, true);
    r->rl_id = ratelimit_add_relay(p->rl, per_s, 0, max_conns ? max_conns : 1);
    if (id)
        *id = p->nrelays;
    p->relays[p->nrelays++] = r;
    return 0;
fail:
    smtp_url_clear(&r->url);
    free(r);
    return rc;
}

int pool_relay_refresh(pool *p, int id, td_error *e)
{
    if (id < 0 || id >= p->nrelays)
        return td_err_set(e, TD_EINVAL, "no relay %d", id);
    prelay *r = p->relays[id];
    if (r->md)
        return 0;
    smtp_addr a[POOL_MAX_ADDRS];
    int n = smtp_resolve(&r->url, a, POOL_MAX_ADDRS, e);
    if (n < 0)
        return e ? e->code : TD_ETEMP;
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "%s: no address", r->url.host);
    memcpy(r->addr, a, sizeof a);
    r->naddr = n;
    r->next_addr = 0;
    r->down_until = 0;
    return 0;
}

int pool_relay_count(const pool *p)
{
    return p->nrelays;
}

const char *pool_relay_name(const pool *p, int id)
{
    return id >= 0 && id < p->nrelays ? p->relays[id]->name : "?";
}

bool pool_relay_down(const pool *p, int id, int64_t *until, const td_error **why)
{
    if (id < 0 || id >= p->nrelays)
        return false;
    const prelay *r = p->relays[id];
    if (r->down_until <= smtp_now_ms())
        return false;
    if (until)
        *until = r->down_until;
    if (why)
        *why = &r->last_err;
    return true;
}

int pool_submit(pool *p, void *job, const smtp_msg *msg, int avoid_relay, td_error *e)
{
    if (p->nrelays == 0)
        return td_err_set(e, TD_EINVAL, "the pool has no relay");
    if (p->npend >= p->o.max_pending)
        return td_err_set(e, TD_ETOOBIG, "%zu jobs wait already", p->npend);
    int rc = smtp_msg_check(msg, e);
    if (rc)
        return rc;
    pjob *j = xcalloc(1, sizeof *j);
    j->job = job;
    j->msg = *msg;
    j->avoid = avoid_relay;
    const char *at = strrchr(msg->rcpt[0], '@');
    size_t n = at ? strlen(at + 1) : 0;
    if (n > RATELIMIT_DOMAIN_MAX)
        n = RATELIMIT_DOMAIN_MAX;
    if (at)
        memcpy(j->domain, at + 1, n);
    j->domain[n] = '\0';
    job_link(p, j, false);
    return 0;
}

size_t pool_withdraw(pool *p, void **jobs, size_t max)
{
    size_t n = 0;
    while (n < max && p->pend_tail) {
        pjob *j = p->pend_tail;
        job_unlink(p, j);
        jobs[n++] = j->job;
        free(j);
    }
    return n;
}

size_t pool_pending(const pool *p)
{
    return p->npend + p->ninflight + p->nres;
}

size_t pool_results(const pool *p)
{
    return p->nres;
}

size_t pool_conns(const pool *p)
{
    return p->nconns;
}

void pool_drain(pool *p)
{
    p->draining = true;
}

static void push_result(pool *p, presult *pr)
{
    if (p->res_tail)
        p->res_tail->next = pr;
    else
        p->res_head = pr;
    p->res_tail = pr;
    p->nres++;
}

/* A result made here, for a job that reached no server: every recipient
 * gets status with the same local reply. */
static void result_local(pool *p, pjob *j, int relay, int status, const td_error *why)
{
    presult *pr = xcalloc(1, sizeof *pr);
    pr->r.job = j->job;
    pr->r.relay = relay;
    smtp_result *res = &pr->r.res;
    res->status = status;
    smtp_reply_set_local(&res->reply, status == SMTP_TEMP ? "4.4.1" : "5.0.0", "%s", why->msg);
    res->nrcpt = j->msg.nrcpt;
    res->rcpt = xcalloc(res->nrcpt, sizeof *res->rcpt);
    for (size_t i = 0; i < res->nrcpt; i++) {
        res->rcpt[i].status = status;
        smtp_reply_copy(&res->rcpt[i].reply, &res->reply);
    }
    pr->r.conn = *why;
    push_result(p, pr);
    free(j);
}

static bool relay_usable(const prelay *r, int64_t now)
{
    return r->down_until <= now;
}

static bool other_relay_usable(const pool *p, int not, int64_t now)
{
    for (int i = 0; i < p->nrelays; i++)
        if (i != not &&relay_usable(p->relays[i], now))
            return true;
    return false;
}

static void wake_at(pool *p, int64_t t)
{
    if (p->wake < 0 || t < p->wake)
        p->wake = t;
}

/* relay_fail marks relay i down after a failed connection attempt. Several
 * connections opened together fail together: only the first failure of a
 * down period lengthens the next one. */
static void relay_fail(pool *p, int i, const td_error *err, int64_t now)
{
    prelay *r = p->relays[i];
    r->last_err = *err;
    if (r->naddr > 1)
        r->next_addr = (r->next_addr + 1) % r->naddr;
    if (r->down_until > now)
        return;
    r->failures++;
    int64_t d = backoff_relay_down(&p->o.down, err->code, r->failures, backoff_rand());
    r->down_until = now + (d > 0 ? d : 1);
    log_warn("relay=%s status=down failures=%u down_ms=%lld error=\"%s\"", r->name, r->failures,
             (long long)d, err->msg);
}

/* next_job finds the first waiting job that may go via relay i now, takes
 * its rate tokens and unlinks it; NULL when none (p->wake then says when a
 * domain opens). */
static pjob *next_job(pool *p, int i, int64_t now)
{
    prelay *r = p->relays[i];
    int64_t t = ratelimit_next(p->rl, r->rl_id, NULL, now);
    if (t > now) { /* the global or relay limit: no job can go */
        wake_at(p, t);
        return NULL;
    }
    bool other = other_relay_usable(p, i, now);
    size_t scanned = 0;
    for (pjob *j = p->pend_head; j && scanned < SCAN_MAX; j = j->next, scanned++) {
        if (j->avoid == i && other)
            continue;
        int64_t when;
        if (ratelimit_acquire(p->rl, r->rl_id, j->domain, now, &when)) {
            job_unlink(p, j);
            return j;
        }
        wake_at(p, when);
    }
    return NULL;
}

/* Puts jobs on connection pc while it is READY and free. */
static void conn_assign(pool *p, pconn *pc, int64_t now)
{
    while (!pc->job && !pc->held && smtp_conn_state(pc->c) == SMTP_CONN_READY && p->pend_head) {
        pjob *j = next_job(p, pc->relay, now);
        if (!j)
            return;
        td_error e;
        if (smtp_conn_send(pc->c, &j->msg, &e)) {
            /* checked at submit, so only a bug gets here */
            result_local(p, j, pc->relay, SMTP_TEMP, &e);
            continue;
        }
        pc->job = j;
        p->ninflight++;
        smtp_result res;
        if (smtp_conn_take_result(pc->c, &res)) { /* refused without a word sent */
            presult *pr = xcalloc(1, sizeof *pr);
            pr->r.job = j->job;
            pr->r.relay = pc->relay;
            pr->r.res = res;
            push_result(p, pr);
            free(j);
            pc->job = NULL;
            p->ninflight--;
        }
    }
}

/* Queues the next waiting job behind the message in flight on pc, so its
 * envelope goes out with that message's final dot (smtp_conn_queue): the
 * server answers both in one turn. */
static void conn_queue(pool *p, pconn *pc, int64_t now)
{
    if (pc->next || !pc->job || !p->pend_head || !smtp_conn_can_queue(pc->c))
        return;
    pjob *j = next_job(p, pc->relay, now);
    if (!j)
        return;
    td_error e;
    if (smtp_conn_queue(pc->c, &j->msg, &e)) {
        /* this relay refuses it without a word (SIZE, SMTPUTF8): it goes on
         * its own when a connection is READY, for that refusal */
        job_link(p, j, true);
        return;
    }
    pc->next = j;
    p->ninflight++;
}

static void maildir_run(pool *p, int i, int64_t now)
{
    prelay *r = p->relays[i];
    for (int n = 0; n < MAILDIR_BATCH && p->pend_head && relay_usable(r, now); n++) {
        pjob *j = next_job(p, i, now);
        if (!j)
            return;
        presult *pr = xcalloc(1, sizeof *pr);
        td_error e;
        if (smtp_maildir_deliver(r->md, &j->msg, &pr->r.res, &e)) {
            free(pr);
            result_local(p, j, i, SMTP_PERM, &e);
            continue;
        }
        pr->r.job = j->job;
        pr->r.relay = i;
        if (pr->r.res.status == SMTP_TEMP) { /* disk full, permissions */
            td_err_set(&pr->r.conn, TD_ETEMP, "%s", pr->r.res.reply.text);
            relay_fail(p, i, &pr->r.conn, now);
        } else {
            r->failures = 0;
        }
        push_result(p, pr);
        free(j);
    }
}

static void conn_open(pool *p, int i, int64_t now)
{
    prelay *r = p->relays[i];
    pconn *pc = xcalloc(1, sizeof *pc);
    pc->c = smtp_conn_new(&r->url, &p->o.smtp);
    pc->relay = i;
    pc->idle_since = now;
    pc->pidx = -1;
    pc->serial = ++p->next_serial;
    const smtp_addr *a = &r->addr[r->next_addr];
    td_error e;
    smtp_conn_connect(pc->c, (const struct sockaddr *)&a->sa, a->len, &e);
    pc->fd = smtp_conn_fd(pc->c);
    r->opening++;
    if (p->nconns == p->aconns) {
        p->aconns = p->aconns ? p->aconns * 2 : 8;
        p->conns = xrealloc(p->conns, p->aconns * sizeof *p->conns);
    }
    p->conns[p->nconns++] = pc;
}

/* conn_collect takes pc's result and notes its state changes; frees it and
 * returns true when it has CLOSED. */
static bool conn_collect(pool *p, size_t k, int64_t now)
{
    pconn *pc = p->conns[k];
    prelay *r = p->relays[pc->relay];
    int st = smtp_conn_state(pc->c);
    smtp_result res;
    if (smtp_conn_take_result(pc->c, &res)) {
        presult *pr = xcalloc(1, sizeof *pr);
        pr->r.job = pc->job ? pc->job->job : NULL;
        pr->r.relay = pc->relay;
        pr->r.res = res;
        if (st == SMTP_CONN_CLOSED)
            pr->r.conn = *smtp_conn_error(pc->c);
        if (p->o.hold_until_taken && pc->job) {
            pc->held = true;
            pr->conn_serial = pc->serial;
        }
        push_result(p, pr);
        free(pc->job);
        /* the queued message is in flight now; its body goes once the
         * result is taken (pool_take_result) when results are held */
        pc->job = pc->next;
        pc->next = NULL;
        if (pc->job && !pc->held)
            smtp_conn_release(pc->c);
        p->ninflight--;
        pc->idle_since = now;
    }
    if (st == SMTP_CONN_READY && !pc->was_ready) {
        pc->was_ready = true;
        pc->idle_since = now;
        r->opening--;
        if (r->failures)
            log_info("relay=%s status=up", r->name);
        r->failures = 0;
        r->down_until = 0;
    }
    if (st != SMTP_CONN_CLOSED)
        return false;
    const td_error *err = smtp_conn_error(pc->c);
    if (!pc->was_ready) {
        r->opening--;
        if (err->code != TD_OK)
            relay_fail(p, pc->relay, err, now);
    }
    /* A message in flight always ends with a result, so a job still here
     * was queued behind the last one and never went on the wire: it waits
     * again, at the head. */
    pjob *unsent[] = {pc->next, pc->job};
    for (size_t i = 0; i < 2; i++)
        if (unsent[i]) {
            job_link(p, unsent[i], true);
            p->ninflight--;
        }
    pc->job = pc->next = NULL;
    ratelimit_conn_release(p->rl, r->rl_id);
    smtp_conn_free(pc->c);
    free(pc);
    p->conns[k] = p->conns[--p->nconns];
    return true;
}

/* pool_run: one round of work that needs no socket event. */
static void pool_run(pool *p, int64_t now)
{
    p->wake = -1;
    size_t spare = 0;
    for (size_t k = 0; k < p->nconns;) {
        if (conn_collect(p, k, now))
            continue;
        pconn *pc = p->conns[k++];
        int st = smtp_conn_state(pc->c);
        if (st == SMTP_CONN_OPENING) {
            spare++;
            continue;
        }
        if (st == SMTP_CONN_READY && !pc->job)
            conn_assign(p, pc, now);
        conn_queue(p, pc, now); /* behind the message in flight, if any */
        if (pc->job || smtp_conn_state(pc->c) != SMTP_CONN_READY)
            continue;
        if (!p->pend_head && (p->draining || now - pc->idle_since >= (int64_t)p->o.idle_ms))
            smtp_conn_quit(pc->c);
        else
            spare++;
    }
    for (int i = 0; i < p->nrelays; i++)
        if (p->relays[i]->md)
            maildir_run(p, i, now);

    /* connections on demand: one per waiting job beyond those that will be
     * free soon, spread over the relays that are up */
    size_t want = p->npend > spare ? p->npend - spare : 0;
    for (int tries = 0; want > 0 && tries < p->nrelays;) {
        int i = p->rr++ % p->nrelays;
        prelay *r = p->relays[i];
        if (r->md || !relay_usable(r, now) || (r->failures && r->opening) ||
            !ratelimit_conn_acquire(p->rl, r->rl_id)) {
            tries++;
            continue;
        }
        conn_open(p, i, now);
        want--;
        tries = 0;
    }
    if (p->rr >= p->nrelays)
        p->rr = 0;

    /* nothing can take the waiting jobs before a down period ends: hand
     * them back now, for the caller's retry policy */
    if (p->pend_head && p->nconns == 0 && !other_relay_usable(p, -1, now)) {
        const prelay *last = p->relays[0];
        for (int i = 1; i < p->nrelays; i++)
            if (p->relays[i]->down_until < last->down_until)
                last = p->relays[i];
        td_error why;
        td_err_set(&why, TD_ETEMP, "no relay available (%s down: %s)", last->name,
                   last->last_err.msg);
        while (p->pend_head) {
            pjob *j = p->pend_head;
            job_unlink(p, j);
            result_local(p, j, -1, SMTP_TEMP, &why);
        }
    }
}

size_t pool_fds(pool *p, struct pollfd *fds, size_t max)
{
    pool_run(p, smtp_now_ms());
    size_t n = 0;
    for (size_t k = 0; k < p->nconns; k++) {
        pconn *pc = p->conns[k];
        pc->fd = smtp_conn_fd(pc->c);
        pc->pidx = -1;
        if (pc->fd < 0)
            continue;
        if (n < max) {
            fds[n].fd = pc->fd;
            fds[n].events = smtp_conn_events(pc->c);
            fds[n].revents = 0;
            pc->pidx = (int)n;
        }
        n++;
    }
    return n;
}

int64_t pool_deadline(const pool *p)
{
    int64_t now = smtp_now_ms(), dl = -1;
#define AT(t)                                                                                      \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (dl < 0 || t_ < dl)                                                                     \
            dl = t_;                                                                               \
    } while (0)
    if (p->nres)
        return now;
    for (size_t k = 0; k < p->nconns; k++) {
        const pconn *pc = p->conns[k];
        int st = smtp_conn_state(pc->c);
        if (st == SMTP_CONN_CLOSED)
            return now;
        int64_t d = smtp_conn_deadline(pc->c);
        if (d >= 0)
            AT(d);
        /* idle QUIT only when no job waits (one held back by a limit
         * would otherwise make a past deadline: a busy loop) */
        if (st == SMTP_CONN_READY && !pc->job && !p->npend)
            AT(p->draining ? now : pc->idle_since + p->o.idle_ms);
    }
    if (p->npend) {
        if (p->wake >= 0)
            AT(p->wake);
        for (int i = 0; i < p->nrelays; i++)
            if (p->relays[i]->down_until > now)
                AT(p->relays[i]->down_until);
    }
#undef AT
    return dl;
}

size_t pool_step(pool *p, const struct pollfd *fds, size_t n)
{
    for (size_t k = 0; k < p->nconns; k++) {
        pconn *pc = p->conns[k];
        if (smtp_conn_state(pc->c) == SMTP_CONN_CLOSED)
            continue;
        short rev = 0;
        if (pc->pidx >= 0 && (size_t)pc->pidx < n && fds[pc->pidx].fd == pc->fd)
            rev = fds[pc->pidx].revents;
        smtp_conn_step(pc->c, rev);
        pc->pidx = -1;
    }
    pool_run(p, smtp_now_ms());
    return p->nres;
}

size_t pool_poll(pool *p, int timeout_ms)
{
    return pool_poll_fd(p, -1, NULL, timeout_ms);
}

size_t pool_poll_fd(pool *p, int fd, bool *fd_ready, int timeout_ms)
{
    size_t n;
    /* One slot more than the pool's own for fd. */
    while ((n = pool_fds(p, p->pfd, p->apfd ? p->apfd - 1 : 0)) + 1 > p->apfd) {
        p->apfd = (n + 1) * 2;
        p->pfd = xrealloc(p->pfd, p->apfd * sizeof *p->pfd);
    }
    if (fd_ready)
        *fd_ready = false;
    if (p->nres)
        return p->nres;
    int64_t dl = pool_deadline(p), now = smtp_now_ms();
    int tmo = timeout_ms;
    if (dl >= 0) {
        int64_t w = dl > now ? dl - now : 0;
        if (tmo < 0 || w < tmo)
            tmo = w > 86400000 ? 86400000 : (int)w;
    } else if (n == 0 && tmo < 0 && fd < 0) {
        return 0; /* nothing to wait for, and no time given to wait */
    }
    size_t nfds = n;
    if (fd >= 0)
        p->pfd[nfds++] = (struct pollfd){.fd = fd, .events = POLLIN};
    if (poll(p->pfd, nfds, tmo) < 0) {
        if (errno == EINTR)
            return p->nres;
        log_warn("pool: poll: %s", strerror(errno));
        n = 0;
    } else if (fd >= 0 && fd_ready) {
        *fd_ready = p->pfd[n].revents != 0;
    }
    return pool_step(p, p->pfd, n);
}

bool pool_take_result(pool *p, pool_result *out)
{
    presult *pr = p->res_head;
    if (!pr)
        return false;
    p->res_head = pr->next;
    if (!p->res_head)
        p->res_tail = NULL;
    p->nres--;
    *out = pr->r;
    if (pr->conn_serial)
        for (size_t i = 0; i < p->nconns; i++)
            if (p->conns[i]->serial == pr->conn_serial) {
                p->conns[i]->held = false;
                smtp_conn_release(p->conns[i]->c);
            }
    free(pr);
    return true;
}

void pool_result_clear(pool_result *r)
{
    smtp_result_clear(&r->res);
    memset(r, 0, sizeof *r);
}
