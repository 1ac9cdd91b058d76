/* evq: batched event writes on a thread of their own (see evq.h). */
#include "track/evq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

static const char *const kinds[EVQ_KINDS] = {"open",   "click",  "unsubscribe", "signup",
                                             "confirm", "bounce", "complaint",   "reply"};

struct evq {
    store *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* the writer: a batch is ready, or stop */
    pthread_cond_t room;  /* pushers: the queue has room again */
    event_rec *pending;   /* queued, in order; data strings owned */
    size_t n, alloc;
    struct timespec oldest; /* when pending[0] was queued (monotonic) */
    bool stopping;
    evq_stats st;
};

int evq_kind_index(const char *kind)
{
    for (int i = 0; kind && i < EVQ_KINDS; i++)
        if (!strcmp(kind, kinds[i]))
            return i;
    return -1;
}

const char *evq_kind_name(int i)
{
    return i >= 0 && i < EVQ_KINDS ? kinds[i] : "";
}

static int64_t ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void free_events(event_rec *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)ev[i].data);
}

/* write_batch stores ev[0..n) in one transaction. */
static int write_batch(store *s, const event_rec *ev, size_t n, td_error *e)
{
    int rc = store_begin(s, e);
    if (rc)
        return rc;
    if ((rc = store_event_add(s, ev, n, e)) || (rc = store_commit(s, e)))
        store_rollback(s);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *writer(void *arg)
{
    evq *q = arg;
    event_rec *batch = NULL;
    size_t bn = 0, balloc = 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        /* Wait for a full batch, the oldest event's deadline, or stop. */
        while (!q->stopping && q->n < EVQ_BATCH_MAX) {
            if (q->n == 0) {
                pthread_cond_wait(&q->wake, &q->mu);
                continue;
            }
            int64_t left = EVQ_FLUSH_MS - ms_since(&q->oldest);
            if (left <= 0)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)left * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&q->wake, &q->mu, &until);
        }
        if (q->n == 0 && q->stopping)
            break;
        /* Take everything queued: the swap keeps the lock short. */
        event_rec *t = batch;
        size_t ta = balloc;
        batch = q->pending;
        bn = q->n;
        balloc = q->alloc;
        q->pending = t;
        q->alloc = ta;
        q->n = 0;
        bool stopping = q->stopping;
        pthread_cond_broadcast(&q->room);
        pthread_mutex_unlock(&q->mu);

        td_error e = {0};
        int rc;
        struct timespec first;
        clock_gettime(CLOCK_MONOTONIC, &first);
        long wait = 10;
        /* A busy or failing database: keep the batch and try again, since
         * an event handed to the queue was answered as recorded. */
        while ((rc = write_batch(q->s, batch, bn, &e))) {
            pthread_mutex_lock(&q->mu);
            q->st.failed_batches++;
            stopping = q->stopping;
            pthread_mutex_unlock(&q->mu);
            log_warn("evq: storing %zu events failed, trying again: %s", bn, e.msg);
            if (stopping && ms_since(&first) > EVQ_STOP_RETRY_MS)
                break;
            sleep_ms(wait);
            if (wait < 1000)
                wait *= 2;
        }
        pthread_mutex_lock(&q->mu);
        if (rc) {
            q->st.lost += bn;
            log_error("evq: %zu events lost at the stop: %s", bn, e.msg);
        } else {
            for (size_t i = 0; i < bn; i++)
                q->st.stored[evq_kind_index(batch[i].kind)]++;
        }
        free_events(batch, bn);
        bn = 0;
        (void)stopping;
    }
    pthread_mutex_unlock(&q->mu);
    free(batch);
    return NULL;
}

int evq_new(const char *location, evq **out, td_error *e)
{
    *out = NULL;
    evq *q = xcalloc(1, sizeof *q);
    int rc = store_open(location, &q->s, e);
    if (rc) {
        free(q);
        return rc;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->wake, NULL);
    pthread_cond_init(&q->room, NULL);
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        store_close(q->s);
        free(q);
        return td_err_set(e, TD_EINTERNAL, "cannot start the event writer thread");
    }
    *out = q;
    return TD_OK;
}

int evq_push(evq *q, const event_rec *ev)
{
    int k = evq_kind_index(ev->kind);
    if (k < 0)
        return TD_EINVAL;
    char *data = ev->data ? xstrdup(ev->data) : NULL;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping && q->n >= EVQ_CAP)
        pthread_cond_wait(&q->room, &q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        free(data);
        return TD_EDENIED;
    }
    if (q->n == q->alloc) {
        q->alloc = q->alloc ? q->alloc * 2 : 1024;
        q->pending = xrealloc(q->pending, q->alloc * sizeof *q->pending);
    }
    if (q->n == 0)
        clock_gettime(CLOCK_MONOTONIC, &q->oldest);
    q->pending[q->n++] = (event_rec){.kind = kinds[k],
                                     .campaign_id = ev->campaign_id,
                                     .subscriber_id = ev->subscriber_id,
                                     .list_id = ev->list_id,
                                     .data = data,
                                     .at = ev->at ? ev->at : (int64_t)time(NULL)};
    /* Wake the writer for the first event (to arm its deadline) and for a
     * full batch; in between it sleeps. */
    if (q->n == 1 || q->n == EVQ_BATCH_MAX)
        pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->mu);
    return TD_OK;
}

void evq_note(evq *q, const char *kind)
{
    int k = evq_kind_index(kind);
    if (k < 0)
        return;
    pthread_mutex_lock(&q->mu);
    q->st.stored[k]++;
    pthread_mutex_unlock(&q->mu);
}

void evq_get_stats(evq *q, evq_stats *st)
{
    pthread_mutex_lock(&q->mu);
    *st = q->st;
    st->queued = q->n;
    pthread_mutex_unlock(&q->mu);
}

void evq_free(evq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->wake);
    pthread_cond_broadcast(&q->room);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    free_events(q->pending, q->n);
    free(q->pending);
    store_close(q->s);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->room);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
