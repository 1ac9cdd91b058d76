/* evq: the tracking events' write queue.
 *
 * Request handlers must not wait for a database write per open or click
 * (SQLite has one writer, and a transaction per event costs more than the
 * request). evq_push copies an event into memory and returns; one writer
 * thread, with its own database connection, stores what is queued in one
 * transaction whenever EVQ_BATCH_MAX events are waiting or EVQ_FLUSH_MS has
 * passed since the oldest was queued. A full queue (EVQ_CAP events: the
 * database is far behind) makes evq_push wait rather than drop. evq_free
 * stores everything still queued before it returns, so a clean stop loses
 * nothing. Events that change consent (unsubscribe, confirm) are not sent
 * here: the handler writes them itself before it answers. */
#ifndef TD_TRACK_EVQ_H
#define TD_TRACK_EVQ_H

#include <stddef.h>
#include <stdint.h>

#include "store/model.h"
#include "util/err.h"

#define EVQ_FLUSH_MS 50
#define EVQ_BATCH_MAX 2000
#define EVQ_CAP 1000000

typedef struct evq evq;

/* The event kinds, in model_event_kind_ok's order, for counters. */
enum { EVQ_OPEN, EVQ_CLICK, EVQ_UNSUBSCRIBE, EVQ_SIGNUP, EVQ_CONFIRM, EVQ_BOUNCE,
       EVQ_COMPLAINT, EVQ_REPLY, EVQ_KINDS };

typedef struct evq_stats {
    uint64_t queued;              /* waiting now */
    uint64_t stored[EVQ_KINDS];   /* stored since start, by kind */
    uint64_t failed_batches;      /* writes that failed and were tried again */
    uint64_t lost;                /* events that could not be stored at the stop */
} evq_stats;

/* evq_new opens its own connection to the database at location and starts
 * the writer thread. Returns 0 with *out (freed with evq_free), or the
 * store's error. */
int evq_new(const char *location, evq **out, td_error *e);

/* evq_push queues a copy of ev (kind, ids, data, at; at 0 is now, taken
 * here). Returns 0, TD_EINVAL for an unknown kind, or TD_EDENIED once
 * evq_free has begun. Thread-safe. */
int evq_push(evq *q, const event_rec *ev);

/* evq_note counts an event stored elsewhere (an unsubscribe written by its
 * handler) in the stats, so the metrics show every event. */
void evq_note(evq *q, const char *kind);

/* evq_kind_index is the EVQ_* index of kind, or -1. */
int evq_kind_index(const char *kind);

/* evq_kind_name is the kind of EVQ_* index i. */
const char *evq_kind_name(int i);

/* evq_get_stats fills *st. Thread-safe. */
void evq_get_stats(evq *q, evq_stats *st);

/* evq_free stores every queued event (retrying a busy database for up to
 * EVQ_STOP_RETRY_MS), stops the writer and closes its connection. NULL is a
 * no-op. Events still unstored after that are counted as lost and logged. */
#define EVQ_STOP_RETRY_MS 30000
void evq_free(evq *q);

#endif
