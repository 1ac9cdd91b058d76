/* backoff: retry decisions for recipients and down periods for relays. See
 * backoff.h. */
#include "delivery/backoff.h"

#include <math.h>
#include <unistd.h>

void backoff_policy_init(backoff_policy *p)
{
    p->base_ms = 5 * 60 * 1000;
    p->max_delay_ms = 4 * 3600 * 1000;
    p->factor = 2;
    p->jitter = 0.5;
    p->max_attempts = 8;
    p->max_age_ms = 3 * 24 * 3600 * (int64_t)1000;
}

const char *backoff_action_name(int action)
{
    switch (action) {
    case BACKOFF_DONE:
        return "done";
    case BACKOFF_LATER:
        return "later";
    case BACKOFF_NOW:
        return "now";
    case BACKOFF_FAILED:
        return "failed";
    case BACKOFF_UNKNOWN:
        return "unknown";
    default:
        return "?";
    }
}

int64_t backoff_delay(const backoff_policy *p, unsigned attempts, uint32_t rnd)
{
    double cap = p->max_delay_ms > 0 ? (double)p->max_delay_ms : 0;
    double d = p->base_ms > 0 ? (double)p->base_ms : 0;
    double f = p->factor >= 1 && isfinite(p->factor) ? p->factor : 1;
    /* grow step by step: stops at the cap instead of overflowing to inf */
    for (unsigned i = 1; i < attempts && d < cap; i++)
        d *= f;
    if (d > cap)
        d = cap;
    double j = p->jitter > 0 && p->jitter <= 1 ? p->jitter : 0;
    d -= d * j * ((double)rnd / 4294967296.0);
    return (int64_t)d;
}

bool backoff_relay_failure(const smtp_rcpt_result *r)
{
    return r->status == SMTP_TEMP && (r->reply.code == 0 || r->reply.code == 421);
}

int backoff_classify(const backoff_policy *p, const smtp_rcpt_result *r, unsigned attempts,
                     int64_t first_ms, int64_t now, bool other_relay, uint32_t rnd, int64_t *when)
{
    int64_t dummy;
    if (!when)
        when = &dummy;
    *when = 0;
    switch (r->status) {
    case SMTP_OK:
        return BACKOFF_DONE;
    case SMTP_PERM:
        return BACKOFF_FAILED;
    case SMTP_UNKNOWN:
        return BACKOFF_UNKNOWN;
    default:
        break;
    }
    /* temporary: out of attempts or of time? */
    if (p->max_attempts && attempts >= p->max_attempts)
        return BACKOFF_FAILED;
    int64_t deadline = p->max_age_ms > 0 ? first_ms + p->max_age_ms : INT64_MAX;
    if (now >= deadline)
        return BACKOFF_FAILED;
    if (other_relay && backoff_relay_failure(r)) {
        *when = now;
        return BACKOFF_NOW;
    }
    int64_t t = now + backoff_delay(p, attempts, rnd);
    /* the last try comes at the deadline rather than not at all */
    *when = t < deadline ? t : deadline;
    return BACKOFF_LATER;
}

int64_t backoff_relay_down(const backoff_policy *p, int conn_err, unsigned failures, uint32_t rnd)
{
    if (conn_err == TD_EPERM || conn_err == TD_EDENIED)
        return p->max_delay_ms;
    return backoff_delay(p, failures ? failures : 1, rnd);
}

uint32_t backoff_rand(void)
{
    static _Thread_local uint64_t s;
    if (!s)
        s = ((uint64_t)smtp_now_ms() << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (uint32_t)(s >> 32);
}
