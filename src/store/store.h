/* store: the one storage interface of Tidings.
 *
 * A backend is a table of functions (struct store_ops), picked by the form of
 * the location given to store_open, the way OpenSMTPD picks a queue backend:
 * a path is SQLite (store_sqlite.c). Callers see only these functions and the
 * records of store/model.h: no SQL, no backend types. Each backend keeps its
 * own SQL in named, parameterised queries and its own numbered migrations,
 * applied at open so an older database upgrades in place.
 *
 * Conventions: every function returns 0 or a TD_E* code and fills e (may be
 * NULL). TD_ENOTFOUND for a missing object, TD_EEXISTS for a uniqueness
 * conflict, TD_ETEMP when the database is busy (retry), TD_EINVAL when a
 * reference or value is refused by the schema. Records filled by the store are
 * the caller's to clear (model.h); records passed to an *_each callback are
 * borrowed for the duration of the call. A callback returning non-zero stops
 * the walk and that value is returned. */
#ifndef TD_STORE_STORE_H
#define TD_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/model.h"
#include "util/err.h"

typedef struct store store;

typedef int (*team_cb)(void *ud, const team_rec *t);
typedef int (*user_cb)(void *ud, const user_rec *u);
typedef int (*list_cb)(void *ud, const list_rec *l);
typedef int (*member_cb)(void *ud, const member_rec *m);
typedef int (*membership_cb)(void *ud, const char *list_name, const char *status);
typedef int (*dkim_key_cb)(void *ud, const dkim_key_rec *k);
typedef int (*block_cb)(void *ud, const block_rec *b);
typedef int (*relay_cb)(void *ud, const relay_rec *r);
typedef int (*campaign_cb)(void *ud, const campaign_rec *c);
typedef int (*delivery_cb)(void *ud, const delivery_rec *d);
typedef int (*name_cb)(void *ud, const char *name);
typedef int (*due_cb)(void *ud, const due_rec *d);
typedef int (*mailbox_cb)(void *ud, const mailbox_rec *m);
typedef int (*sub_cb)(void *ud, const sub_rec *r);
typedef int (*token_cb)(void *ud, const token_rec *t);
typedef int (*reply_view_cb)(void *ud, const reply_view *r);

struct store_ops {
    const char *name;
    void (*close)(store *s);
    int (*schema_version)(store *s, int *version, td_error *e);
    int (*begin)(store *s, td_error *e);
    int (*commit)(store *s, td_error *e);
    void (*rollback)(store *s);
    int (*setting_get)(store *s, const char *key, char **value, td_error *e);
    int (*setting_set)(store *s, const char *key, const char *value, td_error *e);

    int (*team_add)(store *s, const team_rec *t, int64_t *id, td_error *e);
    int (*team_find)(store *s, const char *name, team_rec *out, td_error *e);
    int (*team_get)(store *s, int64_t id, team_rec *out, td_error *e);
    int (*team_each)(store *s, team_cb cb, void *ud, td_error *e);

    int (*user_add)(store *s, const user_rec *u, int64_t *id, td_error *e);
    int (*user_find)(store *s, const char *email, user_rec *out, td_error *e);
    int (*user_get)(store *s, int64_t id, user_rec *out, td_error *e);
    int (*user_each)(store *s, user_cb cb, void *ud, td_error *e);

    int (*list_add)(store *s, const list_rec *l, int64_t *id, td_error *e);
    int (*list_find)(store *s, const char *name, list_rec *out, td_error *e);
    int (*list_each)(store *s, list_cb cb, void *ud, td_error *e);
    int (*list_delete)(store *s, int64_t id, td_error *e);

    int (*sub_add)(store *s, const sub_rec *r, int64_t *id, td_error *e);
    int (*sub_upsert)(store *s, const sub_rec *r, sub_mode mode, int64_t *id,
                      sub_outcome *outcome, td_error *e);
    int (*sub_find)(store *s, const char *email, sub_rec *out, td_error *e);
    int (*sub_get)(store *s, int64_t id, sub_rec *out, td_error *e);
    int (*sub_update)(store *s, const sub_rec *r, td_error *e);
    int (*sub_delete)(store *s, int64_t id, td_error *e);

    int (*member_set)(store *s, int64_t list_id, int64_t sub_id, const char *status,
                      bool keep_existing, sub_outcome *outcome, td_error *e);
    int (*member_each)(store *s, int64_t list_id, member_cb cb, void *ud, td_error *e);
    int (*member_lists)(store *s, int64_t sub_id, membership_cb cb, void *ud, td_error *e);

    /* Bulk import: rows are staged cheaply, then merged a batch at a time
     * with set-based statements in one transaction per batch. */
    int (*bulk_begin)(store *s, const bulk_opts *o, td_error *e);
    int (*bulk_add)(store *s, const sub_rec *r, const char *subscription, td_error *e);
    int (*bulk_flush)(store *s, bulk_stats *st, td_error *e);
    int (*bulk_wait)(store *s, bulk_stats *st, td_error *e);
    void (*bulk_end)(store *s);

    int (*suppress_add)(store *s, const char *address, const char *reason, td_error *e);
    int (*suppress_check)(store *s, const char *address, bool *suppressed, td_error *e);
    int (*audit_add)(store *s, const audit_rec *a, td_error *e);
    int (*counts)(store *s, store_counts *c, td_error *e);

    int (*dkim_key_add)(store *s, const dkim_key_rec *k, int64_t *id, td_error *e);
    int (*dkim_key_each)(store *s, const char *domain, dkim_key_cb cb, void *ud, td_error *e);

    int (*block_put)(store *s, const block_rec *b, int64_t *id, td_error *e);
    int (*block_get)(store *s, const char *name, block_rec *out, td_error *e);
    int (*block_each)(store *s, const char *kind, block_cb cb, void *ud, td_error *e);
    int (*block_delete)(store *s, const char *name, td_error *e);

    int (*relay_add)(store *s, const relay_rec *r, int64_t *id, td_error *e);
    int (*relay_each)(store *s, relay_cb cb, void *ud, td_error *e);
    int (*relay_delete)(store *s, int64_t id, td_error *e);

    int (*campaign_add)(store *s, const campaign_rec *c, const int64_t *list_ids, size_t nlists,
                        int64_t *id, td_error *e);
    int (*campaign_get)(store *s, int64_t id, campaign_rec *out, td_error *e);
    int (*campaign_each)(store *s, campaign_cb cb, void *ud, td_error *e);
    int (*campaign_list_names)(store *s, int64_t id, name_cb cb, void *ud, td_error *e);
    int (*campaign_set_state)(store *s, int64_t id, const char *from, const char *to, int64_t now,
                              td_error *e);
    int (*campaign_freeze)(store *s, int64_t id, int64_t now, uint64_t *added, td_error *e);
    int (*campaign_counts)(store *s, int64_t id, campaign_counts *c, td_error *e);
    int (*delivery_each)(store *s, int64_t campaign_id, const char *status, delivery_cb cb,
                         void *ud, td_error *e);
    int (*delivery_due)(store *s, int64_t campaign_id, int64_t now, unsigned limit, due_cb cb,
                        void *ud, td_error *e);
    int (*delivery_update)(store *s, const delivery_rec *d, td_error *e);
    int (*delivery_requeue)(store *s, int64_t campaign_id, const char *status, bool maybe_dup,
                            int64_t now, uint64_t *n, td_error *e);

    int (*event_add)(store *s, const event_rec *ev, size_t n, td_error *e);
    int (*unsubscribe)(store *s, int64_t sub_id, int64_t list_id, int64_t campaign_id,
                       int64_t now, uint64_t *n, td_error *e);
    int (*member_confirm)(store *s, int64_t list_id, int64_t sub_id, int64_t now, bool *changed,
                          td_error *e);

    /* Inbound mail (inbound/act.h, inbound/mailbox.h). */
    int (*event_counts)(store *s, int64_t campaign_id, event_counts *c, td_error *e);
    int (*delivery_get)(store *s, int64_t id, delivery_rec *out, td_error *e);
    int (*delivery_by_message_id)(store *s, const char *message_id, delivery_rec *out,
                                  td_error *e);
    int (*delivery_of)(store *s, int64_t campaign_id, int64_t subscriber_id, delivery_rec *out,
                       td_error *e);
    int (*delivery_last_to)(store *s, const char *email, delivery_rec *out, td_error *e);
    int (*soft_bounce_add)(store *s, const char *address, int64_t campaign_id, int64_t at,
                           int64_t *count, td_error *e);
    int (*inbound_find)(store *s, const char *source, const char *key, bool *found, bool *keep,
                        td_error *e);
    int (*inbound_add)(store *s, const inbound_rec *r, int64_t *id, td_error *e);
    int (*reply_add)(store *s, const reply_rec *r, int64_t *id, td_error *e);
    int (*mailbox_add)(store *s, const mailbox_rec *m, int64_t *id, td_error *e);
    int (*mailbox_each)(store *s, mailbox_cb cb, void *ud, td_error *e);
    int (*mailbox_delete)(store *s, int64_t id, td_error *e);
    int (*mailbox_polled)(store *s, int64_t id, int64_t at, int64_t next_at, const char *error,
                          td_error *e);

    /* Accounts and the API (http/auth, http/api). */
    int (*session_add)(store *s, const session_rec *r, int64_t *id, td_error *e);
    int (*session_get)(store *s, const char *token_hash, session_rec *out, td_error *e);
    int (*session_delete)(store *s, const char *token_hash, td_error *e);
    int (*token_add)(store *s, const token_rec *r, int64_t *id, td_error *e);
    int (*token_find)(store *s, const char *token_hash, token_rec *out, td_error *e);
    int (*token_each)(store *s, int64_t user_id, token_cb cb, void *ud, td_error *e);
    int (*token_delete)(store *s, int64_t id, td_error *e);
    int (*login_fail_add)(store *s, const char *key, int64_t now, int64_t since, td_error *e);
    int (*login_fail_count)(store *s, const char *key, int64_t since, int64_t *n, td_error *e);
    int (*login_fail_clear)(store *s, const char *key, td_error *e);
    int (*sub_page)(store *s, const store_scope *f, int64_t after, unsigned limit, sub_cb cb,
                    void *ud, int64_t *total, td_error *e);
    int (*list_get)(store *s, int64_t id, list_rec *out, td_error *e);
    int (*reply_page)(store *s, const store_scope *f, int64_t after, unsigned limit,
                      reply_view_cb cb, void *ud, int64_t *total, td_error *e);
    int (*campaign_update_from)(store *s, int64_t id, int64_t from_id, td_error *e);
    int (*campaign_set_send_at)(store *s, int64_t id, int64_t send_at, td_error *e);
};

/* Every backend's handle starts with this. */
struct store {
    const struct store_ops *ops;
    char *location; /* as given to store_open (set by it, freed by store_close) */
};

/* store_open opens the database at location (a file path for SQLite; a
 * postgres:// URL is refused until that backend exists), creating it if
 * needed, and applies every pending migration. *out is the caller's, closed
 * with store_close. */
int store_open(const char *location, store **out, td_error *e);

/* store_open_at_version is store_open for tests of upgrades: it applies
 * migrations only up to max_version. */
int store_open_at_version(const char *location, int max_version, store **out, td_error *e);

/* store_location returns the location s was opened at (borrowed), so that
 * a thread that needs a connection of its own can open the same database. */
const char *store_location(const store *s);

/* store_close closes s; NULL is a no-op. */
void store_close(store *s);

/* store_latest_version is the newest schema version this build knows. */
int store_latest_version(void);

/* Thin dispatchers, one per operation (see struct store_ops). */
int store_schema_version(store *s, int *version, td_error *e);
int store_begin(store *s, td_error *e);
int store_commit(store *s, td_error *e);
void store_rollback(store *s);
int store_setting_get(store *s, const char *key, char **value, td_error *e);
int store_setting_set(store *s, const char *key, const char *value, td_error *e);
int store_team_add(store *s, const team_rec *t, int64_t *id, td_error *e);
int store_team_find(store *s, const char *name, team_rec *out, td_error *e);
int store_team_get(store *s, int64_t id, team_rec *out, td_error *e);
int store_team_each(store *s, team_cb cb, void *ud, td_error *e);
int store_user_add(store *s, const user_rec *u, int64_t *id, td_error *e);
int store_user_find(store *s, const char *email, user_rec *out, td_error *e);
int store_user_get(store *s, int64_t id, user_rec *out, td_error *e);
int store_user_each(store *s, user_cb cb, void *ud, td_error *e);
int store_list_add(store *s, const list_rec *l, int64_t *id, td_error *e);
int store_list_find(store *s, const char *name, list_rec *out, td_error *e);
int store_list_each(store *s, list_cb cb, void *ud, td_error *e);
int store_list_delete(store *s, int64_t id, td_error *e);
int store_sub_add(store *s, const sub_rec *r, int64_t *id, td_error *e);
int store_sub_upsert(store *s, const sub_rec *r, sub_mode mode, int64_t *id,
                     sub_outcome *outcome, td_error *e);
int store_sub_find(store *s, const char *email, sub_rec *out, td_error *e);
int store_sub_get(store *s, int64_t id, sub_rec *out, td_error *e);
int store_sub_update(store *s, const sub_rec *r, td_error *e);
int store_sub_delete(store *s, int64_t id, td_error *e);
int store_member_set(store *s, int64_t list_id, int64_t sub_id, const char *status,
                     bool keep_existing, sub_outcome *outcome, td_error *e);
int store_member_each(store *s, int64_t list_id, member_cb cb, void *ud, td_error *e);
int store_member_lists(store *s, int64_t sub_id, membership_cb cb, void *ud, td_error *e);
/* store_bulk_begin starts a bulk import session into o->list_id. Rows given
 * to store_bulk_add (validated by the caller; subscription may be NULL) are
 * kept as a batch; store_bulk_flush writes the batch in one transaction,
 * adding what it did to *st. Within a batch, the first row of an address wins
 * in subscribe mode and the last in upsert mode, as if the rows were applied
 * in order. An existing membership is kept, except that an unsubscription is
 * always applied.
 *
 * With o->background, store_bulk_flush only hands the batch over: it returns
 * once the batch before it is written (its counts and error are what it
 * returns), so the caller prepares the next batch while this one is written;
 * store_bulk_wait waits for the last one. Between begin and end the caller
 * uses no other store function. store_bulk_end drops what is not flushed
 * (waiting for a batch being written). */
int store_bulk_begin(store *s, const bulk_opts *o, td_error *e);
int store_bulk_add(store *s, const sub_rec *r, const char *subscription, td_error *e);
int store_bulk_flush(store *s, bulk_stats *st, td_error *e);
int store_bulk_wait(store *s, bulk_stats *st, td_error *e);
void store_bulk_end(store *s);
int store_suppress_add(store *s, const char *address, const char *reason, td_error *e);
int store_suppress_check(store *s, const char *address, bool *suppressed, td_error *e);
int store_audit_add(store *s, const audit_rec *a, td_error *e);
int store_counts_get(store *s, store_counts *c, td_error *e);
/* store_dkim_key_add stores a DKIM key; TD_EEXISTS when the domain has a key
 * of that selector already. */
int store_dkim_key_add(store *s, const dkim_key_rec *k, int64_t *id, td_error *e);
/* store_dkim_key_each walks the DKIM keys of domain (every domain when NULL),
 * ordered by domain, selector. */
int store_dkim_key_each(store *s, const char *domain, dkim_key_cb cb, void *ud, td_error *e);
/* store_block_put adds the content block b, or replaces the one of the same
 * name (keeping its id and created_at); *id (may be NULL) is its id. The
 * fields are checked first: TD_EINVAL for a bad kind or name, a title that
 * is not one line of UTF-8, a body that is not UTF-8 or data that is not a
 * JSON object; TD_ETOOBIG past a BLOCK_MAX_* cap; the data is stored in
 * canonical form (util/jsonstr.h); NULL data is "{}". */
int store_block_put(store *s, const block_rec *b, int64_t *id, td_error *e);
/* store_block_get fills *out (the caller clears it) with the block called
 * name; TD_ENOTFOUND when there is none. */
int store_block_get(store *s, const char *name, block_rec *out, td_error *e);
/* store_block_each walks the blocks of kind (every kind when NULL), ordered
 * by kind, then name. */
int store_block_each(store *s, const char *kind, block_cb cb, void *ud, td_error *e);
/* store_block_delete removes the block called name; TD_ENOTFOUND when there
 * is none. */
int store_block_delete(store *s, const char *name, td_error *e);

/* store_relay_add adds relay r; TD_EEXISTS when its URL is there already. */
int store_relay_add(store *s, const relay_rec *r, int64_t *id, td_error *e);
/* store_relay_each walks the relays by id. */
int store_relay_each(store *s, relay_cb cb, void *ud, td_error *e);
/* store_relay_delete removes relay id; TD_ENOTFOUND when there is none. */
int store_relay_delete(store *s, int64_t id, td_error *e);

/* store_campaign_add adds campaign c (state as given) with its lists, in
 * one transaction; TD_ENOTFOUND when a list id does not exist. */
int store_campaign_add(store *s, const campaign_rec *c, const int64_t *list_ids, size_t nlists,
                       int64_t *id, td_error *e);
/* store_campaign_get fills *out (the caller clears it); TD_ENOTFOUND. */
int store_campaign_get(store *s, int64_t id, campaign_rec *out, td_error *e);
/* store_campaign_each walks the campaigns, newest first. */
int store_campaign_each(store *s, campaign_cb cb, void *ud, td_error *e);
/* store_campaign_list_names gives the names of the campaign's lists. */
int store_campaign_list_names(store *s, int64_t id, name_cb cb, void *ud, td_error *e);
/* store_campaign_set_state moves campaign id from state `from` to `to`
 * (compare and set: TD_EDENIED when it is not in `from` any more), setting
 * started_at on entering running the first time and finished_at on
 * finished or cancelled. TD_ENOTFOUND when there is no such campaign. */
int store_campaign_set_state(store *s, int64_t id, const char *from, const char *to, int64_t now,
                             td_error *e);
/* store_campaign_freeze adds a queued delivery for every recipient of the
 * campaign's lists: members confirmed (or unconfirmed on a single opt-in
 * list), enabled, not suppressed; one per subscriber however many of the
 * lists they are on. Idempotent. *added is the number of rows added. */
int store_campaign_freeze(store *s, int64_t id, int64_t now, uint64_t *added, td_error *e);
/* store_campaign_counts counts the campaign's deliveries by status; id 0
 * counts those of every campaign. */
int store_campaign_counts(store *s, int64_t id, campaign_counts *c, td_error *e);
/* store_delivery_each walks the campaign's deliveries of one status (all
 * when NULL), by id. */
int store_delivery_each(store *s, int64_t campaign_id, const char *status, delivery_cb cb,
                        void *ud, td_error *e);
/* store_delivery_due walks up to limit deliveries of the campaign that are
 * due at now (queued, or deferred with next_at <= now), by id, each with
 * its subscriber and whether they still want it. */
int store_delivery_due(store *s, int64_t campaign_id, int64_t now, unsigned limit, due_cb cb,
                       void *ud, td_error *e);
/* store_delivery_update writes d's status, attempts, next_at, last_reply,
 * relay_id, message_id and maybe_duplicate (by d->id), updated_at = now;
 * a NULL message_id leaves the stored one as it is. */
int store_delivery_update(store *s, const delivery_rec *d, td_error *e);
/* store_delivery_requeue puts the campaign's deliveries of `status` back to
 * queued (setting maybe_duplicate when asked: a message that was on the
 * wire at a crash); *n is how many. */
int store_delivery_requeue(store *s, int64_t campaign_id, const char *status, bool maybe_dup,
                           int64_t now, uint64_t *n, td_error *e);

/* store_event_add stores n events (in the caller's transaction, if any: a
 * caller with many wraps them in store_begin/store_commit). An event whose
 * at is 0 gets the current time. TD_EINVAL for an unknown kind. */
int store_event_add(store *s, const event_rec *ev, size_t n, td_error *e);

/* store_unsubscribe marks subscriber sub_id unsubscribed (at now) from list
 * list_id; with list_id 0, from the lists of campaign campaign_id; with
 * both 0, from every list. Only memberships that exist and are not
 * unsubscribed change; *n (may be NULL) is how many did. */
int store_unsubscribe(store *s, int64_t sub_id, int64_t list_id, int64_t campaign_id,
                      int64_t now, uint64_t *n, td_error *e);

/* store_member_confirm confirms the membership of sub_id in list_id when
 * it is unconfirmed (a double opt-in's link), at now; any other state is
 * left alone. *changed (may be NULL) says whether it was confirmed now. */
int store_member_confirm(store *s, int64_t list_id, int64_t sub_id, int64_t now, bool *changed,
                         td_error *e);

/* ---- inbound mail -------------------------------------------------------- */

/* store_event_counts counts the campaign's events by kind. */
int store_event_counts(store *s, int64_t campaign_id, event_counts *c, td_error *e);
/* store_delivery_get fills *out (the caller clears it) with delivery id;
 * TD_ENOTFOUND. */
int store_delivery_get(store *s, int64_t id, delivery_rec *out, td_error *e);
/* store_delivery_by_message_id fills *out with the delivery whose message
 * had that Message-ID (without <>); TD_ENOTFOUND. */
int store_delivery_by_message_id(store *s, const char *message_id, delivery_rec *out,
                                 td_error *e);
/* store_delivery_of fills *out with the campaign's delivery to the
 * subscriber; TD_ENOTFOUND. */
int store_delivery_of(store *s, int64_t campaign_id, int64_t subscriber_id, delivery_rec *out,
                      td_error *e);
/* store_delivery_last_to fills *out with the newest delivery to email that
 * went out (sent, or tried: not queued); TD_ENOTFOUND when it was never
 * mailed. */
int store_delivery_last_to(store *s, const char *email, delivery_rec *out, td_error *e);
/* store_soft_bounce_add records a soft bounce of address in campaign_id (0:
 * unknown) and sets *count to the number of campaigns address soft-bounced
 * in; a second soft bounce in the same campaign (a delay notice, then the
 * failure) counts once. */
int store_soft_bounce_add(store *s, const char *address, int64_t campaign_id, int64_t at,
                          int64_t *count, td_error *e);
/* store_inbound_find says whether the message (source, key) was taken in
 * already (*found) and, if so, whether it was to stay on the server
 * (*keep). */
int store_inbound_find(store *s, const char *source, const char *key, bool *found, bool *keep,
                       td_error *e);
/* store_inbound_add records a message taken in; TD_EEXISTS when (source,
 * key) is there already; *id (may be NULL) is its id. */
int store_inbound_add(store *s, const inbound_rec *r, int64_t *id, td_error *e);
/* store_reply_add stores a reply for the inbox (status open, not yet
 * answered); *id (may be NULL) is its id. */
int store_reply_add(store *s, const reply_rec *r, int64_t *id, td_error *e);
/* store_mailbox_add adds a polled mailbox; TD_EEXISTS when the same URL and
 * user are there already. */
int store_mailbox_add(store *s, const mailbox_rec *m, int64_t *id, td_error *e);
/* store_mailbox_each walks the mailboxes by id. */
int store_mailbox_each(store *s, mailbox_cb cb, void *ud, td_error *e);
/* store_mailbox_delete removes mailbox id (what was taken from it stays
 * recorded); TD_ENOTFOUND. */
int store_mailbox_delete(store *s, int64_t id, td_error *e);
/* store_mailbox_polled records a poll of mailbox id: last_at = at when it
 * went well (at 0 leaves it), next_at, and the error (NULL: none). */
int store_mailbox_polled(store *s, int64_t id, int64_t at, int64_t next_at, const char *error,
                         td_error *e);

/* ---- accounts and the API -------------------------------------------------- */

/* store_session_add stores a login session (removing every expired one);
 * *id (may be NULL) is its id. */
int store_session_add(store *s, const session_rec *r, int64_t *id, td_error *e);
/* store_session_get fills *out (the caller clears it) with the session
 * whose token hashes to token_hash, expired or not; TD_ENOTFOUND. */
int store_session_get(store *s, const char *token_hash, session_rec *out, td_error *e);
/* store_session_delete ends a session; TD_ENOTFOUND when there is none. */
int store_session_delete(store *s, const char *token_hash, td_error *e);
/* store_token_add stores an API token; TD_EINVAL for an unknown user. */
int store_token_add(store *s, const token_rec *r, int64_t *id, td_error *e);
/* store_token_find fills *out (the caller clears it); TD_ENOTFOUND. */
int store_token_find(store *s, const char *token_hash, token_rec *out, td_error *e);
/* store_token_each walks the tokens of user_id (0: every user's) by id. */
int store_token_each(store *s, int64_t user_id, token_cb cb, void *ud, td_error *e);
/* store_token_delete revokes token id; TD_ENOTFOUND. */
int store_token_delete(store *s, int64_t id, td_error *e);
/* store_login_fail_add records a failed login under key (an account or a
 * client address) at now, and forgets the key's failures before since. */
int store_login_fail_add(store *s, const char *key, int64_t now, int64_t since, td_error *e);
/* store_login_fail_count sets *n to key's failures at or after since. */
int store_login_fail_count(store *s, const char *key, int64_t since, int64_t *n, td_error *e);
/* store_login_fail_clear forgets key's failures (a login that worked). */
int store_login_fail_clear(store *s, const char *key, td_error *e);
/* store_sub_page walks at most limit subscribers of scope f (NULL: all)
 * with ids above after, by id, and sets *total to how many f holds. */
int store_sub_page(store *s, const store_scope *f, int64_t after, unsigned limit, sub_cb cb,
                   void *ud, int64_t *total, td_error *e);
/* store_list_get fills *out (with member counts) for list id; TD_ENOTFOUND. */
int store_list_get(store *s, int64_t id, list_rec *out, td_error *e);
/* store_reply_page is store_sub_page for the replies of the inbox. */
int store_reply_page(store *s, const store_scope *f, int64_t after, unsigned limit,
                     reply_view_cb cb, void *ud, int64_t *total, td_error *e);
/* store_campaign_update_from gives draft id the content and lists of
 * campaign from_id (a draft campaign_create just made from the merged
 * fields, so every check and the tracking are campaign/campaign's), then
 * removes from_id, in one transaction. TD_EDENIED when id is no draft
 * (from_id is removed all the same). */
int store_campaign_update_from(store *s, int64_t id, int64_t from_id, td_error *e);
/* store_campaign_set_send_at sets draft id's send time (0: when started);
 * TD_EDENIED when it is no draft. */
int store_campaign_set_send_at(store *s, int64_t id, int64_t send_at, td_error *e);

#endif
