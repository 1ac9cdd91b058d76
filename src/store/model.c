/* model: record helpers and the enumerated values of the data model. */
#include "store/model.h"

#include <stdlib.h>
#include <string.h>

void team_rec_clear(team_rec *t)
{
    free(t->name);
    free(t->model);
    memset(t, 0, sizeof *t);
}

void user_rec_clear(user_rec *u)
{
    free(u->email);
    free(u->name);
    free(u->role);
    free(u->password_hash);
    memset(u, 0, sizeof *u);
}

void sub_rec_clear(sub_rec *s)
{
    free(s->email);
    free(s->name);
    free(s->attribs);
    free(s->status);
    free(s->timezone);
    free(s->locale);
    memset(s, 0, sizeof *s);
}

void list_rec_clear(list_rec *l)
{
    free(l->name);
    free(l->optin);
    free(l->visibility);
    memset(l, 0, sizeof *l);
}

void mailbox_rec_clear(mailbox_rec *m)
{
    free(m->url);
    free(m->username);
    free(m->password);
    free(m->last_error);
    memset(m, 0, sizeof *m);
}

void dkim_key_rec_clear(dkim_key_rec *k)
{
    free(k->domain);
    free(k->selector);
    free(k->algo);
    free(k->private_key);
    memset(k, 0, sizeof *k);
}

void session_rec_clear(session_rec *r)
{
    free(r->token_hash);
    free(r->csrf);
    free(r->peer);
    memset(r, 0, sizeof *r);
}

void token_rec_clear(token_rec *r)
{
    free(r->token_hash);
    free(r->name);
    memset(r, 0, sizeof *r);
}

void block_rec_clear(block_rec *b)
{
    free(b->kind);
    free(b->name);
    free(b->title);
    free(b->body);
    free(b->data);
    memset(b, 0, sizeof *b);
}

void member_rec_clear(member_rec *m)
{
    sub_rec_clear(&m->sub);
    free(m->status);
    memset(m, 0, sizeof *m);
}

static bool one_of(const char *s, const char *const *set)
{
    if (!s)
        return false;
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

bool model_team_model_ok(const char *s)
{
    static const char *const v[] = {"central", "catalyst", "local", NULL};
    return one_of(s, v);
}

bool model_role_ok(const char *s)
{
    static const char *const v[] = {"admin",  "director", "designer", "operator",
                                    "seller", "responder", NULL};
    return one_of(s, v);
}

bool model_sub_status_ok(const char *s)
{
    static const char *const v[] = {"enabled", "blocklisted", NULL};
    return one_of(s, v);
}

bool model_member_status_ok(const char *s)
{
    static const char *const v[] = {"unconfirmed", "confirmed", "unsubscribed", NULL};
    return one_of(s, v);
}

bool model_event_kind_ok(const char *s)
{
    static const char *const v[] = {"open",   "click",  "unsubscribe", "signup",
                                    "confirm", "bounce", "complaint",   "reply", NULL};
    return one_of(s, v);
}

bool model_optin_ok(const char *s)
{
    static const char *const v[] = {"single", "double", NULL};
    return one_of(s, v);
}

bool model_visibility_ok(const char *s)
{
    static const char *const v[] = {"public", "private", NULL};
    return one_of(s, v);
}

bool model_block_kind_ok(const char *s)
{
    static const char *const v[] = {"article", "product", NULL};
    return one_of(s, v);
}

bool model_block_name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (n == BLOCK_MAX_NAME ||
            !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
            return false;
    return true;
}

void relay_rec_clear(relay_rec *r)
{
    free(r->url);
    memset(r, 0, sizeof *r);
}

void campaign_rec_clear(campaign_rec *c)
{
    free(c->name);
    free(c->subject);
    free(c->from);
    free(c->reply_to);
    free(c->html);
    free(c->text);
    free(c->state);
    free(c->timezone);
    memset(c, 0, sizeof *c);
}

void delivery_rec_clear(delivery_rec *d)
{
    free(d->email);
    free(d->status);
    free(d->last_reply);
    free(d->message_id);
    memset(d, 0, sizeof *d);
}

bool model_campaign_state_ok(const char *s)
{
    static const char *const ok[] = {"draft",  "scheduled", "running",
                                     "paused", "finished",  "cancelled"};
    for (size_t i = 0; s && i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(s, ok[i]))
            return true;
    return false;
}
