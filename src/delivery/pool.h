/* pool: a pool of relays and their SMTP connections, driven by one poll()
 * loop in the caller's thread. The delivery worker submits jobs (a message
 * and an opaque pointer); the pool puts each on an open connection of a relay
 * that is up, within the global, per-relay and per-domain limits of its
 * ratelimit, opens connections on demand (up to each relay's max), reuses
 * them for many messages, QUITs them when idle, marks a relay down for a
 * while when connecting to it fails (and sends elsewhere meanwhile), and
 * hands back one result per job: per-recipient outcomes, the relay used and
 * the server's reply. It never retries by itself: what to do with a result
 * is the caller's decision (backoff_classify), because only the caller can
 * record it in the delivery log first.
 *
 * Relays are smtp:// and smtps:// URLs (names resolved when the relay is
 * added or refreshed: blocking, outside the loop) and maildir: (written
 * synchronously in the loop). The contract is in docs/internals/delivery.md.
 * Not thread-safe: one pool per delivery thread. */
#ifndef TD_DELIVERY_POOL_H
#define TD_DELIVERY_POOL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/backoff.h"
#include "delivery/ratelimit.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_url.h"
#include "util/err.h"

#define POOL_MAX_RELAYS 64
#define POOL_MAX_ADDRS 8 /* addresses kept per relay name */

/* Options of a pool. Start from pool_opts_init. */
typedef struct pool_opts {
    smtp_opts smtp;       /* every connection's (timeouts, EHLO name, CA file) */
    unsigned idle_ms;     /* QUIT a connection unused this long */
    backoff_policy down;  /* how long a failing relay stays down */
    size_t max_domains;   /* per-domain limiter state cap (ratelimit_new) */
    bool maildir_fsync;   /* maildir relays sync each file (true but in tests) */
    unsigned max_pending; /* jobs waiting for a connection (pool_submit refuses more) */
    /* A connection takes no new job until the result of its last one has
     * been taken (pool_take_result): a caller that records each result
     * before the next pool_poll then knows that a crash leaves at most one
     * delivered-but-unrecorded message per connection. */
    bool hold_until_taken;
} pool_opts;

/* pool_opts_init fills o with the defaults: smtp_opts_init, idle 60 s, a
 * relay down for 10 s after a first failure doubling to 10 min (jitter
 * 0.2), 65536 domains, fsync on, 10,000 pending jobs. */
void pool_opts_init(pool_opts *o);

typedef struct pool pool;

/* The outcome of one job; the caller's after pool_take_result (free its
 * contents with pool_result_clear). */
typedef struct pool_result {
    void *job;       /* the caller's pointer from pool_submit */
    int relay;       /* id of the relay that had it; -1 when none could take it */
    smtp_result res; /* per recipient (in the message's order) and the
                      * summary reply that ended the message */
    td_error conn;   /* code != 0: the connection closed with this message
                      * on it (or none could be opened), and why */
} pool_result;

/* pool_new returns an empty pool with options o (NULL: defaults; copied).
 * Never NULL; free with pool_free. */
pool *pool_new(const pool_opts *o);

/* pool_free closes every connection (without QUIT) and frees p and the
 * results not taken; jobs still pending or in flight are dropped (the
 * caller owns their pointers and must treat them as not done, or unknown
 * for those in flight). NULL is a no-op. For a clean stop: pool_drain,
 * then pool_poll until pool_conns is 0. */
void pool_free(pool *p);

/* pool_ratelimit returns p's limiter (borrowed, lives as long as p): set the
 * global and per-domain limits on it (ratelimit_set_global,
 * ratelimit_set_domain). Relay limits are set by pool_add_relay. */
ratelimit *pool_ratelimit(pool *p);

/* pool_add_relay adds the relay url (smtp, smtps or maildir) with at most
 * max_conns connections (0: 1) and per_s messages a second (0: no limit),
 * and sets *id (may be NULL). smtp relays have their name resolved here
 * (BLOCKS: call it outside the loop); maildir ones are opened. Returns 0, or
 * TD_EINVAL (bad URL, unknown host), TD_ETEMP (name lookup failed for now),
 * TD_EIO (maildir not writable), TD_ETOOBIG (POOL_MAX_RELAYS) with a
 * message in e; then nothing was added. */
int pool_add_relay(pool *p, const char *url, unsigned max_conns, double per_s, int *id,
                   td_error *e);

/* pool_relay_refresh looks relay id's name up again (BLOCKS; after it was
 * reported down, say) and, when it resolves, clears its down mark. Returns
 * 0, or smtp_resolve's error (the old addresses are kept). */
int pool_relay_refresh(pool *p, int id, td_error *e);

/* pool_relay_count returns the number of relays (ids are 0..count-1). */
int pool_relay_count(const pool *p);

/* pool_relay_name returns relay id's URL with the password masked
 * (borrowed until pool_free), or "?" for an unknown id. */
const char *pool_relay_name(const pool *p, int id);

/* pool_relay_down returns true when relay id is marked down now, and then
 * sets *until (may be NULL) to the end of that period and *why (may be
 * NULL; borrowed until the next pool call) to the failure that caused it. */
bool pool_relay_down(const pool *p, int id, int64_t *until, const td_error **why);

/* pool_submit queues msg for delivery with the caller's job pointer. msg and
 * everything it points to are borrowed until the job's result is taken or
 * it is withdrawn. Limits per domain are looked up by the domain of
 * msg->rcpt[0] (a job's recipients should share a domain). avoid_relay >= 0
 * keeps the job off that relay while another one is up (for a retry after
 * that relay failed); -1 for none. Returns 0, TD_EINVAL for a message
 * smtp_msg_check refuses or a pool without relays, TD_ETOOBIG when
 * max_pending jobs wait already (poll and take results first). */
int pool_submit(pool *p, void *job, const smtp_msg *msg, int avoid_relay, td_error *e);

/* pool_withdraw takes back up to max jobs that are not on a connection yet
 * (newest first), putting their pointers in jobs[], and returns how many
 * (for pause and cancel: those messages were never sent). Jobs in flight
 * stay and end with results. */
size_t pool_withdraw(pool *p, void **jobs, size_t max);

/* pool_pending returns jobs submitted whose results are not taken yet
 * (waiting, in flight, or with a result waiting). */
size_t pool_pending(const pool *p);

/* pool_results returns the results waiting to be taken. */
size_t pool_results(const pool *p);

/* pool_conns returns the open connections (opening, ready, busy, closing). */
size_t pool_conns(const pool *p);

/* pool_fds does the pool's pending work (puts jobs on ready connections,
 * opens connections, writes maildir messages, closes idle ones), then fills
 * fds[0..max) with the sockets to poll and returns how many it wants (when
 * that is more than max, only max were filled: call again with more room).
 * For a caller with other fds in its own poll(). */
size_t pool_fds(pool *p, struct pollfd *fds, size_t max);

/* pool_deadline returns the time (smtp_now_ms) by which pool_step must be
 * called even if no fd is ready (a timeout, a rate limit opening, an idle
 * connection to close, a relay's down period ending), now when a result
 * waits, or -1 when there is nothing to wait for. */
int64_t pool_deadline(const pool *p);

/* pool_step processes poll()'s answer for the fds pool_fds gave (n of them,
 * revents filled; n 0 after a timeout), collects results and moves jobs on.
 * Returns the number of results waiting. */
size_t pool_step(pool *p, const struct pollfd *fds, size_t n);

/* pool_poll is pool_fds + poll() + pool_step for a caller with nothing else
 * to poll: waits until the pool's deadline or timeout_ms, whichever comes
 * first (-1: no timeout of the caller's; then it returns at once when the
 * pool has nothing to wait for), and returns the number of results waiting.
 * It returns without waiting when a result waits already, and early when a
 * signal interrupts poll(). */
size_t pool_poll(pool *p, int timeout_ms);

/* pool_poll_fd is pool_poll that also wakes when fd (-1: none) is readable,
 * setting *fd_ready (may be NULL) then; the caller reads fd itself. For a
 * caller woken by its own threads (the worker's message builders). */
size_t pool_poll_fd(pool *p, int fd, bool *fd_ready, int timeout_ms);

/* pool_take_result moves the oldest waiting result into *out (overwritten;
 * the caller frees it with pool_result_clear) and returns true, or returns
 * false when none waits. */
bool pool_take_result(pool *p, pool_result *out);

/* pool_result_clear frees r's contents and zeroes it. */
void pool_result_clear(pool_result *r);

/* pool_drain stops taking new work onto connections that become idle: each
 * ready connection without a job is QUIT at once (pending jobs still go
 * out first). pool_poll until pool_conns is 0 for a clean stop. */
void pool_drain(pool *p);

#endif
