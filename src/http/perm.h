/* perm: who may do what, in one place.
 *
 * One pure function of the actor (role, user id, team), the kind of object,
 * the action, and the object's owner and team: no database, no request. The
 * API asks it before every read and change (http/api) and uses perm_scope
 * to narrow listings to what a read would allow, so a listing never shows
 * what a GET of the same object would refuse.
 *
 * The rules (design.md's roles):
 *   admin      everything: users, teams, relays, DKIM keys included.
 *   director   reads every object and report; approves: starts, schedules,
 *              pauses, resumes, cancels and retries any campaign. Changes
 *              nothing else.
 *   designer   manages every template (content block); reads campaigns.
 *   operator   everything on subscribers, lists, campaigns and templates of
 *              their own team; reads the team's users and replies.
 *   seller     subscribers, lists, campaigns and templates they own.
 *   responder  reads the replies of their team (or their own).
 * Anyone reads company-wide templates (no team, no owner) when they may read
 * templates at all, and manages their own API tokens. A team rule needs a
 * team: an actor without one has no team scope. */
#ifndef TD_HTTP_PERM_H
#define TD_HTTP_PERM_H

#include <stdbool.h>
#include <stdint.h>

typedef enum perm_obj {
    PERM_SUBSCRIBER,
    PERM_LIST,
    PERM_CAMPAIGN,
    PERM_TEMPLATE,
    PERM_REPLY,
    PERM_USER,
    PERM_TEAM,
    PERM_RELAY,
    PERM_DKIM,
    PERM_TOKEN,
    PERM_OBJ_COUNT
} perm_obj;

typedef enum perm_act {
    PERM_READ,   /* get, list, stats, failures */
    PERM_CREATE,
    PERM_UPDATE, /* includes importing into a list */
    PERM_DELETE,
    PERM_SEND,   /* schedule, start, pause, resume, cancel, retry */
    PERM_ACT_COUNT
} perm_act;

/* How far an actor's right reaches for one object kind and action. */
typedef enum perm_scope_t {
    PERM_SC_NONE = 0, /* nothing */
    PERM_SC_OWN,   /* objects whose owner is the actor */
    PERM_SC_TEAM,  /* objects of the actor's team (and their own) */
    PERM_SC_ALL,   /* every object */
} perm_scope_t;

typedef struct perm_actor {
    const char *role;  /* model.h's roles; anything else has no rights */
    int64_t user_id;
    int64_t team_id;   /* 0: none */
} perm_actor;

/* perm_scope is how far a's right to act on kind o reaches. */
perm_scope_t perm_scope(const perm_actor *a, perm_obj o, perm_act act);

/* perm_allow is true when a may do act on an object of kind o owned by
 * owner_id in team team_id (0: none). For a creation, owner and team are
 * those the new object would get. */
bool perm_allow(const perm_actor *a, perm_obj o, perm_act act, int64_t owner_id,
                int64_t team_id);

/* perm_obj_name and perm_act_name name them for messages and tests
 * ("subscriber", "read"). Static strings. */
const char *perm_obj_name(perm_obj o);
const char *perm_act_name(perm_act a);

#endif
