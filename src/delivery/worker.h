/* worker: sends one running campaign to the end, crash-safely.
 *
 * For every due delivery it renders the message (campaign/context, tmpl),
 * builds it (mime/msg), signs it (mime/dkim, when the From domain has keys)
 * and hands it to the relay pool (delivery/pool). The delivery log is the
 * truth:
 *   - a delivery is marked `sending` (committed) before its message is handed
 *     to the pool, and its result (sent, deferred with the next time, or
 *     failed with the server's words) is committed as soon as it comes back;
 *   - on start, deliveries left `sending` by a crash are queued again with
 *     maybe_duplicate set: only those can reach a recipient twice, and those
 *     on the wire at the crash are at most one per open connection;
 *   - the campaign's state is read every WORKER_CHECK_MS: pause and cancel
 *     take the messages not yet on a connection back (queued again) and
 *     stop after the ones on the wire have their results.
 * It returns when the campaign has no delivery left to make (then it is
 * finished), or is paused or cancelled, or on an error it cannot go on
 * from. */
#ifndef TD_DELIVERY_WORKER_H
#define TD_DELIVERY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define WORKER_CHECK_MS 250

typedef struct worker_progress {
    uint64_t sent, deferred, failed, skipped; /* this run */
    campaign_counts counts;                   /* the campaign as a whole */
} worker_progress;

typedef struct worker_opts {
    unsigned timeout_ms;    /* per SMTP stage; 0: the client's defaults */
    bool maildir_fsync;     /* fsync maildir files (tests turn it off) */
    unsigned retry_base_s;  /* first retry after a temporary failure; 0: 5 min */
    /* when set (may be NULL), and *stop becomes true, the worker stops as
     * for a pause but leaves the campaign running (a server shutting
     * down): *state is then "running" */
    const volatile _Atomic bool *stop;
    /* called about every second, and at the end; may be NULL */
    void (*progress)(void *ud, const worker_progress *p);
    void *ud;
} worker_opts;

/* worker_run delivers campaign id (which must be running) through the
 * relays in the database. Returns 0 with *state the campaign's state at the
 * end ("finished", "paused" or "cancelled", static strings), or an error:
 * TD_EINVAL when there is no relay or the templates fail, TD_EDENIED when
 * the campaign is not running, a store error. */
int worker_run(store *s, int64_t id, const worker_opts *o, const char **state, td_error *e);

#endif
