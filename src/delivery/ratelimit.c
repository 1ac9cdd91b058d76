/* ratelimit: global, per-relay and per-domain sending limits (GCRA buckets),
 * with bounded per-domain state. See ratelimit.h. */
#include "delivery/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* One bucket. interval 0: no limit. tat: the "theoretical arrival time" of
 * the next message; a message may go when now >= tat - tau. Microseconds,
 * so that rates such as 7/s or 600/min are exact enough. */
typedef struct gcra {
    int64_t interval, tau, tat;
} gcra;

/* A domain with state: either configured (pinned: its own limit, kept for
 * ever) or seen in traffic under the default limit (in the LRU list). */
typedef struct dom {
    char *name;
    uint32_t hash;
    bool pinned;
    gcra g; /* pinned: own interval/tau; otherwise only tat is used */
    struct dom *hnext;
    struct dom *prev, *next; /* LRU: head most recent (dynamic entries only) */
} dom;

typedef struct relay_lim {
    gcra g;
    unsigned max_conns, conns;
} relay_lim;

struct ratelimit {
    gcra global;
    gcra dflt; /* default per-domain limit: interval and tau */
    relay_lim *relays;
    size_t nrelays, arelays;
    dom **tab;
    size_t tabsize; /* power of two */
    size_t nconf, ndyn, max_domains;
    dom *lru_head, *lru_tail;
};

#define US_PER_MS 1000
#define PRUNE_PER_CALL 16

static int64_t ms_to_us(int64_t ms)
{
    return ms * US_PER_MS;
}

/* Rounded up: a scheduler that sleeps until the answer must find the
 * bucket open. */
static int64_t us_to_ms_up(int64_t us)
{
    return us >= 0 ? (us + US_PER_MS - 1) / US_PER_MS : us / US_PER_MS;
}

/* gcra_set gives g the rate per_s (0: none) and burst (0: dflt_burst). */
static void gcra_set(gcra *g, double per_s, unsigned burst, unsigned dflt_burst)
{
    if (!(per_s > 0) || !isfinite(per_s)) {
        g->interval = g->tau = 0;
        return;
    }
    double iv = 1e6 / per_s;
    if (iv < 1)
        iv = 1;
    if (iv > 1e15) /* one message in 30 years is as good as none */
        iv = 1e15;
    if (burst == 0)
        burst = dflt_burst ? dflt_burst : 1;
    if (burst > 1000000)
        burst = 1000000;
    g->interval = (int64_t)llround(iv);
    g->tau = (int64_t)(burst - 1) * g->interval;
}

/* The earliest time (us) a message may go through g (interval, tau of lim). */
static int64_t gcra_next(const gcra *lim, int64_t tat, int64_t now_us)
{
    if (!lim->interval)
        return now_us;
    int64_t t = tat - lim->tau;
    return t > now_us ? t : now_us;
}

static int64_t gcra_take(const gcra *lim, int64_t tat, int64_t now_us)
{
    if (!lim->interval)
        return tat;
    return (tat > now_us ? tat : now_us) + lim->interval;
}

static unsigned burst_per_s(double per_s)
{
    return per_s >= 1 && per_s < 1e6 ? (unsigned)per_s : 1;
}

static int check_rate(double r, const char *what, td_error *e)
{
    if (!isfinite(r) || r < 0)
        return td_err_set(e, TD_EINVAL, "%s: the rate must be a number >= 0", what);
    return 0;
}

ratelimit *ratelimit_new(size_t max_domains)
{
    ratelimit *rl = xcalloc(1, sizeof *rl);
    rl->max_domains = max_domains ? max_domains : 65536;
    rl->tabsize = 64;
    rl->tab = xcalloc(rl->tabsize, sizeof *rl->tab);
    return rl;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->tabsize; i++)
        for (dom *d = rl->tab[i], *n; d; d = n) {
            n = d->hnext;
            free(d->name);
            free(d);
        }
    free(rl->tab);
    free(rl->relays);
    free(rl);
}

int ratelimit_set_global(ratelimit *rl, double per_s, unsigned burst, td_error *e)
{
    if (check_rate(per_s, "global limit", e))
        return TD_EINVAL;
    gcra_set(&rl->global, per_s, burst, burst_per_s(per_s));
    return 0;
}

int ratelimit_add_relay(ratelimit *rl, double per_s, unsigned burst, unsigned max_conns)
{
    if (rl->nrelays == rl->arelays) {
        rl->arelays = rl->arelays ? rl->arelays * 2 : 4;
        rl->relays = xrealloc(rl->relays, rl->arelays * sizeof *rl->relays);
    }
    relay_lim *r = &rl->relays[rl->nrelays];
    memset(r, 0, sizeof *r);
    gcra_set(&r->g, per_s, burst, burst_per_s(per_s));
    r->max_conns = max_conns;
    return (int)rl->nrelays++;
}

int ratelimit_set_relay(ratelimit *rl, int id, double per_s, unsigned burst, unsigned max_conns,
                        td_error *e)
{
    if (id < 0 || (size_t)id >= rl->nrelays)
        return td_err_set(e, TD_EINVAL, "no relay %d in the limiter", id);
    if (check_rate(per_s, "relay limit", e))
        return TD_EINVAL;
    relay_lim *r = &rl->relays[id];
    int64_t tat = r->g.tat;
    gcra_set(&r->g, per_s, burst, burst_per_s(per_s));
    r->g.tat = tat;
    r->max_conns = max_conns;
    return 0;
}

/* Domain names: lower-case, no trailing dot, cut at the cap. */
static size_t dom_norm(const char *in, char *out)
{
    size_t n = 0;
    for (; in[n] && n < RATELIMIT_DOMAIN_MAX; n++) {
        char c = in[n];
        out[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    if (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return n;
}

static uint32_t dom_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static dom *dom_find(const ratelimit *rl, const char *name, uint32_t h)
{
    for (dom *d = rl->tab[h & (rl->tabsize - 1)]; d; d = d->hnext)
        if (d->hash == h && !strcmp(d->name, name))
            return d;
    return NULL;
}

static void lru_unlink(ratelimit *rl, dom *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        rl->lru_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        rl->lru_tail = d->prev;
    d->prev = d->next = NULL;
}

static void lru_push_head(ratelimit *rl, dom *d)
{
    d->prev = NULL;
    d->next = rl->lru_head;
    if (rl->lru_head)
        rl->lru_head->prev = d;
    rl->lru_head = d;
    if (!rl->lru_tail)
        rl->lru_tail = d;
}

/* dom_remove unhooks and frees a dynamic entry. */
static void dom_remove(ratelimit *rl, dom *d)
{
    dom **pp = &rl->tab[d->hash & (rl->tabsize - 1)];
    while (*pp != d)
        pp = &(*pp)->hnext;
    *pp = d->hnext;
    lru_unlink(rl, d);
    rl->ndyn--;
    free(d->name);
    free(d);
}

static void tab_grow(ratelimit *rl)
{
    size_t nsize = rl->tabsize * 2;
    dom **nt = xcalloc(nsize, sizeof *nt);
    for (size_t i = 0; i < rl->tabsize; i++)
        for (dom *d = rl->tab[i], *n; d; d = n) {
            n = d->hnext;
            d->hnext = nt[d->hash & (nsize - 1)];
            nt[d->hash & (nsize - 1)] = d;
        }
    free(rl->tab);
    rl->tab = nt;
    rl->tabsize = nsize;
}

static dom *dom_insert(ratelimit *rl, const char *name, uint32_t h)
{
    if (rl->nconf + rl->ndyn + 1 > rl->tabsize)
        tab_grow(rl);
    dom *d = xcalloc(1, sizeof *d);
    d->name = xstrdup(name);
    d->hash = h;
    d->hnext = rl->tab[h & (rl->tabsize - 1)];
    rl->tab[h & (rl->tabsize - 1)] = d;
    return d;
}

/* An entry whose tat has passed holds nothing a fresh one would not: idle
 * domains at the cold end of the LRU list go, a few per call. */
static void prune(ratelimit *rl, int64_t now_us)
{
    for (int i = 0; i < PRUNE_PER_CALL && rl->lru_tail && rl->lru_tail->g.tat <= now_us; i++)
        dom_remove(rl, rl->lru_tail);
}

int ratelimit_set_domain(ratelimit *rl, const char *domain, double per_min, unsigned burst,
                         td_error *e)
{
    if (check_rate(per_min, domain ? domain : "default domain limit", e))
        return TD_EINVAL;
    unsigned dburst = per_min >= 60 && per_min < 6e7 ? (unsigned)(per_min / 60) : 1;
    if (!domain) {
        gcra_set(&rl->dflt, per_min / 60, burst, dburst);
        if (!rl->dflt.interval) /* no default limit: no domain needs state */
            while (rl->lru_tail)
                dom_remove(rl, rl->lru_tail);
        return 0;
    }
    size_t len = strlen(domain);
    if (len > 0 && domain[len - 1] == '.')
        len--;
    char name[RATELIMIT_DOMAIN_MAX + 1];
    if (len == 0 || len > RATELIMIT_DOMAIN_MAX || strpbrk(domain, "@ \t\r\n"))
        return td_err_set(e, TD_EINVAL, "a domain limit needs a domain name of 1 to %d bytes",
                          RATELIMIT_DOMAIN_MAX);
    dom_norm(domain, name);
    uint32_t h = dom_hash(name);
    dom *d = dom_find(rl, name, h);
    if (!d || !d->pinned) {
        if (rl->nconf >= RATELIMIT_CONF_MAX)
            return td_err_set(e, TD_ETOOBIG, "more than %d domains with limits of their own",
                              RATELIMIT_CONF_MAX);
        if (!d) {
            d = dom_insert(rl, name, h);
        } else {
            lru_unlink(rl, d);
            rl->ndyn--;
        }
        d->pinned = true;
        rl->nconf++;
    }
    int64_t tat = d->g.tat;
    gcra_set(&d->g, per_min / 60, burst, dburst);
    d->g.tat = tat;
    return 0;
}

/* The limit that applies to an entry. */
static const gcra *dom_limit(const ratelimit *rl, const dom *d)
{
    return d && d->pinned ? &d->g : &rl->dflt;
}

int64_t ratelimit_next(ratelimit *rl, int relay, const char *domain, int64_t now)
{
    int64_t now_us = ms_to_us(now);
    prune(rl, now_us);
    int64_t t = gcra_next(&rl->global, rl->global.tat, now_us);
    if (relay >= 0 && (size_t)relay < rl->nrelays) {
        const gcra *g = &rl->relays[relay].g;
        int64_t r = gcra_next(g, g->tat, now_us);
        if (r > t)
            t = r;
    }
    if (domain && *domain) {
        char name[RATELIMIT_DOMAIN_MAX + 1];
        dom_norm(domain, name);
        dom *d = dom_find(rl, name, dom_hash(name));
        const gcra *lim = dom_limit(rl, d);
        int64_t r = gcra_next(lim, d ? d->g.tat : 0, now_us);
        if (r > t)
            t = r;
    }
    return t <= now_us ? now : us_to_ms_up(t);
}

bool ratelimit_acquire(ratelimit *rl, int relay, const char *domain, int64_t now, int64_t *when)
{
    int64_t t = ratelimit_next(rl, relay, domain, now);
    if (t > now) {
        if (when)
            *when = t;
        return false;
    }
    if (when)
        *when = now;
    int64_t now_us = ms_to_us(now);
    rl->global.tat = gcra_take(&rl->global, rl->global.tat, now_us);
    if (relay >= 0 && (size_t)relay < rl->nrelays) {
        gcra *g = &rl->relays[relay].g;
        g->tat = gcra_take(g, g->tat, now_us);
    }
    if (domain && *domain) {
        char name[RATELIMIT_DOMAIN_MAX + 1];
        dom_norm(domain, name);
        uint32_t h = dom_hash(name);
        dom *d = dom_find(rl, name, h);
        if (d && d->pinned) {
            d->g.tat = gcra_take(&d->g, d->g.tat, now_us);
        } else if (rl->dflt.interval) {
            if (!d) {
                if (rl->ndyn >= rl->max_domains) /* cap: the coldest goes */
                    dom_remove(rl, rl->lru_tail);
                d = dom_insert(rl, name, h);
                rl->ndyn++;
            } else {
                lru_unlink(rl, d);
            }
            lru_push_head(rl, d);
            d->g.tat = gcra_take(&rl->dflt, d->g.tat, now_us);
        }
    }
    return true;
}

bool ratelimit_conn_acquire(ratelimit *rl, int relay)
{
    if (relay < 0 || (size_t)relay >= rl->nrelays)
        return false;
    relay_lim *r = &rl->relays[relay];
    if (r->max_conns && r->conns >= r->max_conns)
        return false;
    r->conns++;
    return true;
}

void ratelimit_conn_release(ratelimit *rl, int relay)
{
    if (relay >= 0 && (size_t)relay < rl->nrelays && rl->relays[relay].conns > 0)
        rl->relays[relay].conns--;
}

unsigned ratelimit_conns(const ratelimit *rl, int relay)
{
    return relay >= 0 && (size_t)relay < rl->nrelays ? rl->relays[relay].conns : 0;
}

size_t ratelimit_domains(const ratelimit *rl)
{
    return rl->ndyn;
}
