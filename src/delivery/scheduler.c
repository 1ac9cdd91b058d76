/* scheduler: start scheduled campaigns, run running ones (see scheduler.h). */
#include "delivery/scheduler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/campaign.h"
#include "delivery/worker.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

struct slot {
    int64_t campaign_id; /* 0: free */
    pthread_t thread;
    _Atomic bool done;
    const char *location;
    const volatile _Atomic bool *stop;
};

static void *worker_thread(void *arg)
{
    struct slot *sl = arg;
    td_error e = {0};
    store *s = NULL;
    const char *state = "?";
    int rc = store_open(sl->location, &s, &e);
    if (!rc) {
        worker_opts o = {.maildir_fsync = true, .stop = sl->stop};
        rc = worker_run(s, sl->campaign_id, &o, &state, &e);
    }
    if (rc)
        log_error("campaign=%lld error=\"%s\"", (long long)sl->campaign_id, e.msg);
    else
        log_info("campaign=%lld state=%s", (long long)sl->campaign_id, state);
    store_close(s);
    atomic_store(&sl->done, true);
    return NULL;
}

struct tick {
    store *s;
    struct slot *slots;
    const char *location;
    const volatile _Atomic bool *stop;
    int64_t now;
};

static bool has_worker(struct tick *t, int64_t id)
{
    for (int i = 0; i < SCHEDULER_MAX_WORKERS; i++)
        if (t->slots[i].campaign_id == id)
            return true;
    return false;
}

static int visit(void *ud, const campaign_rec *c)
{
    struct tick *t = ud;
    td_error e = {0};
    if (!strcmp(c->state, "scheduled") && c->send_at <= t->now) {
        const char *state;
        uint64_t n;
        if (campaign_start(t->s, c->id, t->now, &state, &n, &e))
            log_error("campaign=%lld start error=\"%s\"", (long long)c->id, e.msg);
        else
            log_info("campaign=%lld state=%s recipients=%llu", (long long)c->id, state,
                     (unsigned long long)n);
        return 0; /* its worker starts on the next tick */
    }
    if (strcmp(c->state, "running") || has_worker(t, c->id))
        return 0;
    for (int i = 0; i < SCHEDULER_MAX_WORKERS; i++) {
        struct slot *sl = &t->slots[i];
        if (sl->campaign_id)
            continue;
        sl->campaign_id = c->id;
        atomic_store(&sl->done, false);
        sl->location = t->location;
        sl->stop = t->stop;
        if (pthread_create(&sl->thread, NULL, worker_thread, sl)) {
            log_error("campaign=%lld error=\"no thread\"", (long long)c->id);
            sl->campaign_id = 0;
        }
        return 0;
    }
    return 0; /* all slots busy: a later tick */
}

static void reap(struct slot *slots, bool all)
{
    for (int i = 0; i < SCHEDULER_MAX_WORKERS; i++)
        if (slots[i].campaign_id && (all || atomic_load(&slots[i].done))) {
            pthread_join(slots[i].thread, NULL);
            slots[i].campaign_id = 0;
        }
}

int scheduler_run(const char *location, const volatile _Atomic bool *stop, td_error *e)
{
    store *s = NULL;
    int rc = store_open(location, &s, e);
    if (rc)
        return rc;
    struct slot *slots = xcalloc(SCHEDULER_MAX_WORKERS, sizeof *slots);
    log_info("scheduler started");
    while (!atomic_load(stop)) {
        reap(slots, false);
        struct tick t = {.s = s, .slots = slots, .location = location, .stop = stop,
                         .now = (int64_t)time(NULL)};
        td_error te = {0};
        if (store_campaign_each(s, visit, &t, &te))
            log_error("scheduler error=\"%s\"", te.msg);
        /* Sleep a tick in small steps, so a stop is seen at once. */
        for (int i = 0; i < SCHEDULER_TICK_MS / 50 && !atomic_load(stop); i++) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    reap(slots, true); /* the workers see *stop too */
    free(slots);
    store_close(s);
    log_info("scheduler stopped");
    return TD_OK;
}
