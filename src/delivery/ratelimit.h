/* ratelimit: the sending limits of the delivery layer, as token buckets on a
 * clock the caller passes in (milliseconds, monotonic; tests use a fake one).
 *
 * Three kinds of limit apply to one message together:
 *   - a global rate (messages/s for the whole process),
 *   - per relay: a rate (messages/s) and a cap on concurrent connections,
 *   - per recipient domain: N messages a minute, set per domain
 *     ("gmail.com" 600/min) with a default for every other domain.
 * ratelimit_next answers "when may a message to domain D go via relay R",
 * so a scheduler can sleep exactly that long; ratelimit_acquire takes the
 * tokens when the answer is "now".
 *
 * Each bucket is a GCRA (the "virtual scheduling" form of a token bucket):
 * one timestamp per bucket, exact with integer arithmetic. A bucket whose
 * timestamp has passed is the same as a fresh one, which is what makes the
 * per-domain state boundable: idle domains are dropped (least recently used
 * first), and at most max_domains are kept. The contract is in
 * docs/internals/delivery.md. Not thread-safe: one per delivery loop. */
#ifndef TD_DELIVERY_RATELIMIT_H
#define TD_DELIVERY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Caps: the longest domain name kept (longer ones are cut: no real domain
 * is that long), and how many domains may have a limit of their own. */
#define RATELIMIT_DOMAIN_MAX 255
#define RATELIMIT_CONF_MAX 10000

typedef struct ratelimit ratelimit;

/* ratelimit_new returns a limiter with no limit set, keeping the state of at
 * most max_domains recipient domains (0: 65536). Never NULL; the caller
 * frees it with ratelimit_free. */
ratelimit *ratelimit_new(size_t max_domains);

/* ratelimit_free releases rl; NULL is a no-op. */
void ratelimit_free(ratelimit *rl);

/* ratelimit_set_global limits the whole process to per_s messages a second
 * with bursts of up to burst (0: one second's worth, at least 1); per_s 0
 * removes the limit. Returns 0, or TD_EINVAL for a negative or non-finite
 * rate. */
int ratelimit_set_global(ratelimit *rl, double per_s, unsigned burst, td_error *e);

/* ratelimit_add_relay adds a relay with per_s messages a second (0: no
 * limit), bursts of burst (0: one second's worth) and at most max_conns
 * connections at once (0: no cap), and returns its id (0, 1, ...). A bad
 * rate is taken as no limit; use ratelimit_set_relay to check it. */
int ratelimit_add_relay(ratelimit *rl, double per_s, unsigned burst, unsigned max_conns);

/* ratelimit_set_relay changes relay id's limits (as ratelimit_add_relay;
 * the open connection count is kept). Returns 0, or TD_EINVAL for an
 * unknown id or a negative or non-finite rate. */
int ratelimit_set_relay(ratelimit *rl, int id, double per_s, unsigned burst, unsigned max_conns,
                        td_error *e);

/* ratelimit_set_domain limits messages to domain (compared without case, a
 * trailing dot ignored) to per_min a minute, with bursts of burst (0:
 * per_min/60, at least 1); per_min 0 means no limit for that domain, even
 * when the default has one. domain NULL sets the default for every domain
 * without a limit of its own. Returns 0, TD_EINVAL for an empty or too long
 * domain or a bad rate, TD_ETOOBIG past RATELIMIT_CONF_MAX domains. */
int ratelimit_set_domain(ratelimit *rl, const char *domain, double per_min, unsigned burst,
                         td_error *e);

/* ratelimit_next returns the earliest time (ms, >= now) at which a message
 * to domain may go via relay: now when it may go at once. relay -1 checks
 * only the global and domain limits; domain NULL or "" only the global and
 * relay ones. The connection cap is not part of it (see ratelimit_conn_*).
 * Takes nothing. */
int64_t ratelimit_next(ratelimit *rl, int relay, const char *domain, int64_t now);

/* ratelimit_acquire takes one message's tokens from the global, relay and
 * domain buckets and returns true when all three allow it now; otherwise
 * takes nothing, sets *when (may be NULL) to ratelimit_next's answer and
 * returns false. */
bool ratelimit_acquire(ratelimit *rl, int relay, const char *domain, int64_t now, int64_t *when);

/* ratelimit_conn_acquire counts one more open connection to relay and
 * returns true, or returns false when the relay is at its max_conns (or the
 * id is unknown). Each true is paired with one ratelimit_conn_release. */
bool ratelimit_conn_acquire(ratelimit *rl, int relay);

/* ratelimit_conn_release counts one connection to relay closed. */
void ratelimit_conn_release(ratelimit *rl, int relay);

/* ratelimit_conns returns the open connections counted for relay. */
unsigned ratelimit_conns(const ratelimit *rl, int relay);

/* ratelimit_domains returns how many domains have state now (those with a
 * limit of their own are not counted): bounded by max_domains. */
size_t ratelimit_domains(const ratelimit *rl);

#endif
