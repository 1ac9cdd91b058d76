/* store: picks a backend by location and dispatches (see store.h). */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite.h"
#include "util/xalloc.h"

int store_open_at_version(const char *location, int max_version, store **out, td_error *e)
{
    *out = NULL;
    if (!location || !*location)
        return td_err_set(e, TD_EINVAL, "no database location given");
    if (!strncmp(location, "postgres://", 11) || !strncmp(location, "postgresql://", 13))
        return td_err_set(e, TD_EINVAL,
                          "PostgreSQL is not available in this build; use a SQLite file path");
    int rc = store_sqlite_open(location, max_version, out, e);
    if (!rc)
        (*out)->location = xstrdup(location);
    return rc;
}

const char *store_location(const store *s)
{
    return s->location;
}

int store_open(const char *location, store **out, td_error *e)
{
    return store_open_at_version(location, store_latest_version(), out, e);
}

void store_close(store *s)
{
    if (s) {
        free(s->location);
        s->location = NULL;
        s->ops->close(s);
    }
}

int store_latest_version(void)
{
    return store_sqlite_latest_version();
}

/* The dispatchers: one line each, so callers never see the table. */
int store_schema_version(store *s, int *v, td_error *e) { return s->ops->schema_version(s, v, e); }
int store_begin(store *s, td_error *e) { return s->ops->begin(s, e); }
int store_commit(store *s, td_error *e) { return s->ops->commit(s, e); }
void store_rollback(store *s) { s->ops->rollback(s); }
int store_setting_get(store *s, const char *k, char **v, td_error *e) { return s->ops->setting_get(s, k, v, e); }
int store_setting_set(store *s, const char *k, const char *v, td_error *e) { return s->ops->setting_set(s, k, v, e); }
int store_team_add(store *s, const team_rec *t, int64_t *id, td_error *e) { return s->ops->team_add(s, t, id, e); }
int store_team_find(store *s, const char *n, team_rec *o, td_error *e) { return s->ops->team_find(s, n, o, e); }
int store_team_get(store *s, int64_t id, team_rec *o, td_error *e) { return s->ops->team_get(s, id, o, e); }
int store_team_each(store *s, team_cb cb, void *ud, td_error *e) { return s->ops->team_each(s, cb, ud, e); }
int store_user_add(store *s, const user_rec *u, int64_t *id, td_error *e) { return s->ops->user_add(s, u, id, e); }
int store_user_find(store *s, const char *m, user_rec *o, td_error *e) { return s->ops->user_find(s, m, o, e); }
int store_user_get(store *s, int64_t id, user_rec *o, td_error *e) { return s->ops->user_get(s, id, o, e); }
int store_user_each(store *s, user_cb cb, void *ud, td_error *e) { return s->ops->user_each(s, cb, ud, e); }
int store_list_add(store *s, const list_rec *l, int64_t *id, td_error *e) { return s->ops->list_add(s, l, id, e); }
int store_list_find(store *s, const char *n, list_rec *o, td_error *e) { return s->ops->list_find(s, n, o, e); }
int store_list_each(store *s, list_cb cb, void *ud, td_error *e) { return s->ops->list_each(s, cb, ud, e); }
int store_list_delete(store *s, int64_t id, td_error *e) { return s->ops->list_delete(s, id, e); }
int store_sub_add(store *s, const sub_rec *r, int64_t *id, td_error *e) { return s->ops->sub_add(s, r, id, e); }
int store_sub_upsert(store *s, const sub_rec *r, sub_mode m, int64_t *id, sub_outcome *o, td_error *e) { return s->ops->sub_upsert(s, r, m, id, o, e); }
int store_sub_find(store *s, const char *m, sub_rec *o, td_error *e) { return s->ops->sub_find(s, m, o, e); }
int store_sub_get(store *s, int64_t id, sub_rec *o, td_error *e) { return s->ops->sub_get(s, id, o, e); }
int store_sub_update(store *s, const sub_rec *r, td_error *e) { return s->ops->sub_update(s, r, e); }
int store_sub_delete(store *s, int64_t id, td_error *e) { return s->ops->sub_delete(s, id, e); }
int store_member_set(store *s, int64_t l, int64_t sub, const char *st, bool keep, sub_outcome *o, td_error *e) { return s->ops->member_set(s, l, sub, st, keep, o, e); }
int store_member_each(store *s, int64_t l, member_cb cb, void *ud, td_error *e) { return s->ops->member_each(s, l, cb, ud, e); }
int store_member_lists(store *s, int64_t sub, membership_cb cb, void *ud, td_error *e) { return s->ops->member_lists(s, sub, cb, ud, e); }
int store_bulk_begin(store *s, const bulk_opts *o, td_error *e) { return s->ops->bulk_begin(s, o, e); }
int store_bulk_add(store *s, const sub_rec *r, const char *sub, td_error *e) { return s->ops->bulk_add(s, r, sub, e); }
int store_bulk_flush(store *s, bulk_stats *st, td_error *e) { return s->ops->bulk_flush(s, st, e); }
int store_bulk_wait(store *s, bulk_stats *st, td_error *e) { return s->ops->bulk_wait(s, st, e); }
void store_bulk_end(store *s) { s->ops->bulk_end(s); }
int store_suppress_add(store *s, const char *a, const char *r, td_error *e) { return s->ops->suppress_add(s, a, r, e); }
int store_suppress_check(store *s, const char *a, bool *y, td_error *e) { return s->ops->suppress_check(s, a, y, e); }
int store_audit_add(store *s, const audit_rec *a, td_error *e) { return s->ops->audit_add(s, a, e); }
int store_counts_get(store *s, store_counts *c, td_error *e) { return s->ops->counts(s, c, e); }
int store_dkim_key_add(store *s, const dkim_key_rec *k, int64_t *id, td_error *e) { return s->ops->dkim_key_add(s, k, id, e); }
int store_dkim_key_each(store *s, const char *d, dkim_key_cb cb, void *ud, td_error *e) { return s->ops->dkim_key_each(s, d, cb, ud, e); }
int store_block_put(store *s, const block_rec *b, int64_t *id, td_error *e) { return s->ops->block_put(s, b, id, e); }
int store_block_get(store *s, const char *n, block_rec *o, td_error *e) { return s->ops->block_get(s, n, o, e); }
int store_block_each(store *s, const char *k, block_cb cb, void *ud, td_error *e) { return s->ops->block_each(s, k, cb, ud, e); }
int store_block_delete(store *s, const char *n, td_error *e) { return s->ops->block_delete(s, n, e); }
int store_relay_add(store *s, const relay_rec *r, int64_t *id, td_error *e) { return s->ops->relay_add(s, r, id, e); }
int store_relay_each(store *s, relay_cb cb, void *ud, td_error *e) { return s->ops->relay_each(s, cb, ud, e); }
int store_relay_delete(store *s, int64_t id, td_error *e) { return s->ops->relay_delete(s, id, e); }
int store_campaign_add(store *s, const campaign_rec *c, const int64_t *l, size_t n, int64_t *id, td_error *e) { return s->ops->campaign_add(s, c, l, n, id, e); }
int store_campaign_get(store *s, int64_t id, campaign_rec *o, td_error *e) { return s->ops->campaign_get(s, id, o, e); }
int store_campaign_each(store *s, campaign_cb cb, void *ud, td_error *e) { return s->ops->campaign_each(s, cb, ud, e); }
int store_campaign_list_names(store *s, int64_t id, name_cb cb, void *ud, td_error *e) { return s->ops->campaign_list_names(s, id, cb, ud, e); }
int store_campaign_set_state(store *s, int64_t id, const char *f, const char *t, int64_t now, td_error *e) { return s->ops->campaign_set_state(s, id, f, t, now, e); }
int store_campaign_freeze(store *s, int64_t id, int64_t now, uint64_t *n, td_error *e) { return s->ops->campaign_freeze(s, id, now, n, e); }
int store_campaign_counts(store *s, int64_t id, campaign_counts *c, td_error *e) { return s->ops->campaign_counts(s, id, c, e); }
int store_delivery_each(store *s, int64_t c, const char *st, delivery_cb cb, void *ud, td_error *e) { return s->ops->delivery_each(s, c, st, cb, ud, e); }
int store_delivery_due(store *s, int64_t c, int64_t now, unsigned lim, due_cb cb, void *ud, td_error *e) { return s->ops->delivery_due(s, c, now, lim, cb, ud, e); }
int store_delivery_update(store *s, const delivery_rec *d, td_error *e) { return s->ops->delivery_update(s, d, e); }
int store_delivery_requeue(store *s, int64_t c, const char *st, bool dup, int64_t now, uint64_t *n, td_error *e) { return s->ops->delivery_requeue(s, c, st, dup, now, n, e); }
int store_event_add(store *s, const event_rec *ev, size_t n, td_error *e) { return s->ops->event_add(s, ev, n, e); }
int store_unsubscribe(store *s, int64_t sub_id, int64_t list_id, int64_t campaign_id, int64_t now,
                      uint64_t *n, td_error *e)
{
    return s->ops->unsubscribe(s, sub_id, list_id, campaign_id, now, n, e);
}
int store_member_confirm(store *s, int64_t list_id, int64_t sub_id, int64_t now, bool *changed,
                         td_error *e)
{
    return s->ops->member_confirm(s, list_id, sub_id, now, changed, e);
}
int store_event_counts(store *s, int64_t c, event_counts *o, td_error *e) { return s->ops->event_counts(s, c, o, e); }
int store_delivery_get(store *s, int64_t id, delivery_rec *o, td_error *e) { return s->ops->delivery_get(s, id, o, e); }
int store_delivery_by_message_id(store *s, const char *m, delivery_rec *o, td_error *e) { return s->ops->delivery_by_message_id(s, m, o, e); }
int store_delivery_of(store *s, int64_t c, int64_t sub, delivery_rec *o, td_error *e) { return s->ops->delivery_of(s, c, sub, o, e); }
int store_delivery_last_to(store *s, const char *m, delivery_rec *o, td_error *e) { return s->ops->delivery_last_to(s, m, o, e); }
int store_soft_bounce_add(store *s, const char *a, int64_t c, int64_t at, int64_t *n, td_error *e) { return s->ops->soft_bounce_add(s, a, c, at, n, e); }
int store_inbound_find(store *s, const char *src, const char *k, bool *f, bool *keep, td_error *e) { return s->ops->inbound_find(s, src, k, f, keep, e); }
int store_inbound_add(store *s, const inbound_rec *r, int64_t *id, td_error *e) { return s->ops->inbound_add(s, r, id, e); }
int store_reply_add(store *s, const reply_rec *r, int64_t *id, td_error *e) { return s->ops->reply_add(s, r, id, e); }
int store_mailbox_add(store *s, const mailbox_rec *m, int64_t *id, td_error *e) { return s->ops->mailbox_add(s, m, id, e); }
int store_mailbox_each(store *s, mailbox_cb cb, void *ud, td_error *e) { return s->ops->mailbox_each(s, cb, ud, e); }
int store_mailbox_delete(store *s, int64_t id, td_error *e) { return s->ops->mailbox_delete(s, id, e); }
int store_mailbox_polled(store *s, int64_t id, int64_t at, int64_t n, const char *err, td_error *e) { return s->ops->mailbox_polled(s, id, at, n, err, e); }

int store_session_add(store *s, const session_rec *r, int64_t *id, td_error *e) { return s->ops->session_add(s, r, id, e); }
int store_session_get(store *s, const char *h, session_rec *o, td_error *e) { return s->ops->session_get(s, h, o, e); }
int store_session_delete(store *s, const char *h, td_error *e) { return s->ops->session_delete(s, h, e); }
int store_token_add(store *s, const token_rec *r, int64_t *id, td_error *e) { return s->ops->token_add(s, r, id, e); }
int store_token_find(store *s, const char *h, token_rec *o, td_error *e) { return s->ops->token_find(s, h, o, e); }
int store_token_each(store *s, int64_t u, token_cb cb, void *ud, td_error *e) { return s->ops->token_each(s, u, cb, ud, e); }
int store_token_delete(store *s, int64_t id, td_error *e) { return s->ops->token_delete(s, id, e); }
int store_login_fail_add(store *s, const char *k, int64_t now, int64_t since, td_error *e) { return s->ops->login_fail_add(s, k, now, since, e); }
int store_login_fail_count(store *s, const char *k, int64_t since, int64_t *n, td_error *e) { return s->ops->login_fail_count(s, k, since, n, e); }
int store_login_fail_clear(store *s, const char *k, td_error *e) { return s->ops->login_fail_clear(s, k, e); }
int store_sub_page(store *s, const store_scope *f, int64_t after, unsigned limit, sub_cb cb, void *ud, int64_t *total, td_error *e) { return s->ops->sub_page(s, f, after, limit, cb, ud, total, e); }
int store_list_get(store *s, int64_t id, list_rec *o, td_error *e) { return s->ops->list_get(s, id, o, e); }
int store_reply_page(store *s, const store_scope *f, int64_t after, unsigned limit, reply_view_cb cb, void *ud, int64_t *total, td_error *e) { return s->ops->reply_page(s, f, after, limit, cb, ud, total, e); }
int store_campaign_update_from(store *s, int64_t id, int64_t from, td_error *e) { return s->ops->campaign_update_from(s, id, from, e); }
int store_campaign_set_send_at(store *s, int64_t id, int64_t at, td_error *e) { return s->ops->campaign_set_send_at(s, id, at, e); }
