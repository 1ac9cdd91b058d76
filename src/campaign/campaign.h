/* campaign: creating campaigns and moving them through their states.
 *
 *   draft --start--> scheduled --(send time)--> running <--pause/resume--> paused
 *   running --(every delivery done)--> finished
 *   draft | scheduled | running | paused --cancel--> cancelled
 *
 * A campaign's audience is frozen when it enters running (one delivery row
 * per recipient, see store_campaign_freeze); later changes to its lists do
 * not change who gets it, but an unsubscribe still stops a message that has
 * not gone out (the delivery layer checks at send time). */
#ifndef TD_CAMPAIGN_CAMPAIGN_H
#define TD_CAMPAIGN_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CAMPAIGN_MAX_NAME 200
#define CAMPAIGN_MAX_LISTS 64

/* What `tidings campaign create` gathers; strings are borrowed. */
typedef struct campaign_spec {
    const char *name;
    const char *subject;           /* a mustache template */
    const char *from, *reply_to;   /* mailboxes ("Name <addr>"); reply_to may be NULL */
    const char *html, *text;       /* template sources; at least one */
    const char *const *lists;      /* list names */
    size_t nlists;
    const char *at, *tz;           /* send time in zone tz, or both NULL: when started */
    int64_t team_id, owner_id;     /* 0: none */
    bool no_track_opens;           /* no open pixel added to the HTML */
    bool no_track_clicks;          /* the HTML's links left as written */
} campaign_spec;

/* campaign_create checks sp (every template compiles, addresses are
 * valid, the lists exist, the send time is in the future) and adds the
 * campaign as a draft, its HTML with open and click tracking as sp asks
 * (campaign/autotrack). Returns 0 with *id, TD_EINVAL with a message naming
 * what is wrong (a template error gives its line and column), TD_ENOTFOUND
 * for a list that does not exist, or a store error. */
int campaign_create(store *s, const campaign_spec *sp, int64_t now, int64_t *id, td_error *e);

/* campaign_parse_time reads "YYYY-MM-DD HH:MM[:SS]" (or with a 'T') as a
 * local time in the IANA zone tz (UTC when tz is NULL) and gives the unix
 * time. TD_EINVAL for anything else, a zone the system does not know, or a
 * local time that does not exist there (inside a DST gap). Not thread-safe:
 * it sets TZ for the conversion (the CLI's use). */
int campaign_parse_time(const char *at, const char *tz, int64_t *out, td_error *e);

/* campaign_start starts a draft (or a scheduled campaign whose time has
 * come): scheduled when its send time is still ahead, else its audience is
 * frozen and it is running, in one transaction. *state is the new state (a
 * static string), *recipients the deliveries made. TD_EDENIED when the
 * campaign is in another state. */
int campaign_start(store *s, int64_t id, int64_t now, const char **state, uint64_t *recipients,
                   td_error *e);

/* campaign_pause, campaign_resume and campaign_cancel make those moves;
 * TD_EDENIED (with the current state in the message) when the campaign is
 * not in a state they start from. */
int campaign_pause(store *s, int64_t id, int64_t now, td_error *e);
int campaign_resume(store *s, int64_t id, int64_t now, td_error *e);
int campaign_cancel(store *s, int64_t id, int64_t now, td_error *e);

#endif
