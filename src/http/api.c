/* api: the JSON API and the login pages (see api.h). */
#include "http/api.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audience/import.h"
#include "audience/subscriber.h"
#include "campaign/blocks.h"
#include "campaign/campaign.h"
#include "http/auth.h"
#include "http/html.h"
#include "http/perm.h"
#include "mime/dkim.h"
#include "smtp/smtp_url.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/text.h"
#include "util/xalloc.h"

#define API_PREFIX "/api/v1"
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define NAME_MAX_LEN 200       /* list, team and token names */
#define PASSWORD_MIN 10
#define IMPORT_ERRORS_MAX 100  /* rejected rows listed in an import's answer */
#define TOKEN_TTL_MAX (10LL * 365 * 86400)

static const char ctype_json[] = "application/json";
static const char html_type[] = "text/html; charset=utf-8";

/* One call of a handler: what it reads and where it answers. */
typedef struct api_call {
    store *s;
    const api_env *env;
    const http_req *req;
    http_resp *resp;
    auth_ctx who;
    perm_actor actor;
    json_t *body;    /* the request's JSON object, or NULL */
    int64_t id;      /* the path's {id} */
    char name[BLOCK_MAX_NAME + 1]; /* the path's {name} */
    int64_t now;
} api_call;

typedef void (*api_fn)(api_call *c);

/* ---- answers ---------------------------------------------------------------- */

/* reply answers status with v (stolen; NULL: no body, as for a 204). */
static void reply(api_call *c, int status, json_t *v)
{
    http_resp *r = c->resp;
    r->status = status;
    r->ctype = ctype_json;
    r->no_cache = true;
    buf_reset(&r->body);
    if (!v) {
        if (status != 204) { /* a json_pack that failed: a bug, said as one */
            r->status = 500;
            buf_puts(&r->body, "{\"error\":{\"code\":\"internal\",\"message\":\"the answer "
                               "could not be made\",\"field\":null}}\n");
        }
        return;
    }
    /* Escaping '/' keeps "</script>" out of any page that might embed it;
     * the string a client decodes is the same. */
    char *t = json_dumps(v, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY);
    json_decref(v);
    if (!t || buf_puts(&r->body, t) || buf_putc(&r->body, '\n')) {
        buf_reset(&r->body);
        r->status = 500;
        buf_puts(&r->body, "{\"error\":{\"code\":\"too_big\",\"message\":\"the answer is too "
                           "large: ask for a smaller page\",\"field\":null}}\n");
    }
    free(t);
}

/* fail answers an error; returns -1 so handlers can `return fail(...)`. */
__attribute__((format(printf, 5, 6))) static int fail(api_call *c, int status, const char *code,
                                                      const char *field, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply(c, status,
          json_pack("{s:{s:s, s:s, s:s?}}", "error", "code", code, "message", msg, "field",
                    field));
    return -1;
}

/* fail_td answers a TD_E* failure of the store or a module. */
static int fail_td(api_call *c, int rc, const td_error *e, const char *field)
{
    const char *m = e && e->msg[0] ? e->msg : td_strerror(rc);
    switch (rc) {
    case TD_EINVAL:
    case TD_ETOOBIG: return fail(c, 422, "invalid", field, "%s", m);
    case TD_ENOTFOUND: return fail(c, 404, "not_found", field, "%s", m);
    case TD_EEXISTS: return fail(c, 409, "exists", field, "%s", m);
    case TD_EDENIED: return fail(c, 409, "conflict", field, "%s", m);
    case TD_ETEMP: return fail(c, 503, "busy", NULL, "%s", m);
    default:
        log_error("api: %s %s: %s", c->req->method, c->req->m.arg, m);
        return fail(c, 500, "internal", NULL, "the server failed; the log says why");
    }
}

static int forbid(api_call *c, perm_obj o, perm_act a)
{
    return fail(c, 403, "forbidden", NULL, "a %s may not %s this %s", c->actor.role,
                perm_act_name(a), perm_obj_name(o));
}

/* allowed asks http/perm; answers 403 when not. */
static bool allowed(api_call *c, perm_obj o, perm_act a, int64_t owner, int64_t team)
{
    if (perm_allow(&c->actor, o, a, owner, team))
        return true;
    forbid(c, o, a);
    return false;
}

static void audit(api_call *c, const char *action, const char *type, int64_t id,
                  const char *detail)
{
    audit_rec a = {.actor_id = c->who.user.id, .actor = c->who.user.email, .action = action,
                   .object_type = type, .object_id = id, .detail = detail};
    td_error e = {0};
    if (store_audit_add(c->s, &a, &e))
        log_error("api: audit %s %s %lld not written: %s", action, type, (long long)id, e.msg);
}

/* ---- request fields ----------------------------------------------------------- */

/* Each getter leaves *out alone when the field is absent (or null), answers
 * and returns -1 for a wrong type or value, else 0. */
static int f_str(api_call *c, const char *k, bool required, size_t max, const char **out)
{
    json_t *v = json_object_get(c->body, k);
    if (!v || json_is_null(v)) {
        if (required)
            return fail(c, 422, "required", k, "'%s' is required", k);
        return 0;
    }
    if (!json_is_string(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be a string", k);
    if (max && json_string_length(v) > max)
        return fail(c, 422, "too_long", k, "'%s' is longer than %zu bytes", k, max);
    if (required && !json_string_length(v))
        return fail(c, 422, "required", k, "'%s' must not be empty", k);
    *out = json_string_value(v);
    return 0;
}

static int f_int(api_call *c, const char *k, bool required, int64_t min, int64_t max,
                 int64_t *out, bool *given)
{
    json_t *v = json_object_get(c->body, k);
    if (given)
        *given = false;
    if (!v || json_is_null(v)) {
        if (required)
            return fail(c, 422, "required", k, "'%s' is required", k);
        return 0;
    }
    if (!json_is_integer(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be an integer", k);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return fail(c, 422, "out_of_range", k, "'%s' must be from %lld to %lld", k,
                    (long long)min, (long long)max);
    *out = n;
    if (given)
        *given = true;
    return 0;
}

static int f_num(api_call *c, const char *k, double min, double max, double *out)
{
    json_t *v = json_object_get(c->body, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be a number", k);
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return fail(c, 422, "out_of_range", k, "'%s' must be from %g to %g", k, min, max);
    *out = d;
    return 0;
}

static int f_bool(api_call *c, const char *k, bool *out)
{
    json_t *v = json_object_get(c->body, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be true or false", k);
    *out = json_is_true(v);
    return 0;
}

/* f_obj gives the field's object as canonical text (caller frees), via
 * check (subscriber_attribs and the like); *out stays NULL when absent. */
static int f_obj(api_call *c, const char *k, char **out)
{
    json_t *v = json_object_get(c->body, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be an object", k);
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!t)
        return fail(c, 422, "invalid", k, "'%s' cannot be written as JSON", k);
    td_error e = {0};
    *out = subscriber_attribs(t, strlen(t), &e);
    free(t);
    if (!*out)
        return fail(c, 422, "invalid", k, "%s", e.msg);
    return 0;
}

/* f_ids reads an array of positive integers (at most max). */
static int f_ids(api_call *c, const char *k, bool required, size_t max, int64_t **out, size_t *n,
                 bool *given)
{
    json_t *v = json_object_get(c->body, k);
    *out = NULL;
    *n = 0;
    if (given)
        *given = false;
    if (!v || json_is_null(v)) {
        if (required)
            return fail(c, 422, "required", k, "'%s' is required", k);
        return 0;
    }
    if (!json_is_array(v))
        return fail(c, 400, "wrong_type", k, "'%s' must be an array of ids", k);
    size_t len = json_array_size(v);
    if (len > max)
        return fail(c, 422, "too_many", k, "'%s' has more than %zu ids", k, max);
    int64_t *ids = xcalloc(len ? len : 1, sizeof *ids);
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) <= 0) {
            free(ids);
            return fail(c, 400, "wrong_type", k, "'%s' must be an array of ids", k);
        }
        ids[i] = json_integer_value(x);
    }
    *out = ids;
    *n = len;
    if (given)
        *given = true;
    return 0;
}

/* only answers 422 for a field the handler does not know (a typo would
 * otherwise be ignored without a word). names ends with NULL. */
static int only(api_call *c, ...)
{
    const char *k;
    json_t *v;
    json_object_foreach(c->body, k, v) {
        va_list ap;
        va_start(ap, c);
        const char *n;
        bool known = false;
        while (!known && (n = va_arg(ap, const char *)))
            known = !strcmp(n, k);
        va_end(ap);
        if (!known) {
            char f[100];
            snprintf(f, sizeof f, "%.90s", k);
            return fail(c, 422, "unknown_field", f, "there is no field '%.90s' here", k);
        }
    }
    return 0;
}

/* text answers 422 unless s (when set) is one line of at most max bytes. */
static int text(api_call *c, const char *field, const char *s, size_t max)
{
    td_error e = {0};
    if (s && text_check(field, s, strlen(s), max, &e))
        return fail(c, 422, "invalid", field, "%s", e.msg);
    return 0;
}

/* ---- pages of results ------------------------------------------------------------- */

typedef struct page {
    int64_t after;
    unsigned limit;
} page;

static int parse_u64(const char *s, int64_t max, int64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int get_page(api_call *c, page *p)
{
    p->after = 0;
    p->limit = PAGE_DEFAULT;
    const char *l = http_query(c->req, "limit"), *a = http_query(c->req, "after");
    int64_t v;
    if (l) {
        if (parse_u64(l, PAGE_MAX, &v) || v < 1)
            return fail(c, 400, "bad_query", "limit", "limit is a number from 1 to %d",
                        PAGE_MAX);
        p->limit = (unsigned)v;
    }
    if (a) {
        if (parse_u64(a, INT64_MAX, &v))
            return fail(c, 400, "bad_query", "after", "after is the last id of the page before");
        p->after = v;
    }
    return 0;
}

/* A collection gathered in C (the small kinds: lists, campaigns, ...),
 * sorted by id and cut to a page. */
typedef struct coll_item {
    int64_t id;
    json_t *v;
} coll_item;

typedef struct coll {
    api_call *c;
    coll_item *it;
    size_t n, cap;
} coll;

static void coll_add(coll *k, int64_t id, json_t *v)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 16;
        k->it = xrealloc(k->it, k->cap * sizeof *k->it);
    }
    k->it[k->n++] = (coll_item){id, v};
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const coll_item *)a)->id, y = ((const coll_item *)b)->id;
    return (x > y) - (x < y);
}

static json_t *page_wrap(json_t *data, int64_t total, const page *p, int64_t next)
{
    json_t *o = json_pack("{s:o, s:I, s:i}", "data", data, "total", (json_int_t)total, "limit",
                          (int)p->limit);
    json_object_set_new(o, "next_after", next ? json_integer(next) : json_null());
    return o;
}

/* coll_reply answers the page of k that p asks for, and frees k. */
static void coll_reply(coll *k, const page *p)
{
    if (k->n) /* qsort of NULL, even for 0 items, is undefined */
        qsort(k->it, k->n, sizeof *k->it, by_id);
    json_t *data = json_array();
    int64_t next = 0;
    unsigned taken = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (k->it[i].id > p->after && taken < p->limit) {
            json_array_append(data, k->it[i].v);
            taken++;
            if (taken == p->limit && i + 1 < k->n)
                next = k->it[i].id;
        }
        json_decref(k->it[i].v);
    }
    reply(k->c, 200, page_wrap(data, (int64_t)k->n, p, next));
    free(k->it);
}

static void coll_free(coll *k)
{
    for (size_t i = 0; i < k->n; i++)
        json_decref(k->it[i].v);
    free(k->it);
}

/* ---- records as JSON ------------------------------------------------------------------ */

static json_t *id_or_null(int64_t id)
{
    return id ? json_integer(id) : json_null();
}

static json_t *j_user(const user_rec *u)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:I}", "id", (json_int_t)u->id, "email",
                     u->email, "name", u->name ? u->name : "", "role", u->role, "team_id",
                     id_or_null(u->team_id), "created_at", (json_int_t)u->created_at);
}

static json_t *j_team(const team_rec *t)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:I}", "id", (json_int_t)t->id, "name", t->name,
                     "model", t->model, "parent_id", id_or_null(t->parent_id), "created_at",
                     (json_int_t)t->created_at);
}

static json_t *j_sub(const sub_rec *r)
{
    json_error_t je;
    json_t *attrs = json_loads(r->attribs ? r->attribs : "{}", 0, &je);
    return json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:s?, s:s?, s:I, s:I}", "id",
                     (json_int_t)r->id, "email", r->email, "name", r->name ? r->name : "",
                     "attributes", attrs ? attrs : json_object(), "status", r->status,
                     "owner_id", id_or_null(r->owner_id), "team_id", id_or_null(r->team_id),
                     "timezone", r->timezone, "locale", r->locale, "created_at",
                     (json_int_t)r->created_at, "updated_at", (json_int_t)r->updated_at);
}

static json_t *j_list(const list_rec *l)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:{s:I, s:I, s:I}}", "id",
                     (json_int_t)l->id, "name", l->name, "optin", l->optin, "visibility",
                     l->visibility, "owner_id", id_or_null(l->owner_id), "team_id",
                     id_or_null(l->team_id), "created_at", (json_int_t)l->created_at,
                     "members", "confirmed", (json_int_t)l->n_confirmed, "unconfirmed",
                     (json_int_t)l->n_unconfirmed, "unsubscribed",
                     (json_int_t)l->n_unsubscribed);
}

static json_t *j_block(const block_rec *b, bool body)
{
    json_error_t je;
    json_t *data = json_loads(b->data ? b->data : "{}", 0, &je);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I}", "id",
                          (json_int_t)b->id, "name", b->name, "kind", b->kind, "title", b->title,
                          "data", data ? data : json_object(), "owner_id",
                          id_or_null(b->owner_id), "team_id", id_or_null(b->team_id),
                          "created_at", (json_int_t)b->created_at, "updated_at",
                          (json_int_t)b->updated_at);
    if (body)
        json_object_set_new(o, "body", json_string(b->body ? b->body : ""));
    return o;
}

static int add_name(void *ud, const char *name)
{
    json_array_append_new(ud, json_string(name));
    return 0;
}

static json_t *j_campaign(store *s, const campaign_rec *k)
{
    json_t *lists = json_array();
    store_campaign_list_names(s, k->id, add_name, lists, NULL);
    return json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:o, s:s?, s:o, s:o, s:I, "
                     "s:I, s:o, s:o, s:b, s:b, s:o}",
                     "id", (json_int_t)k->id, "name", k->name, "subject", k->subject, "from",
                     k->from, "reply_to", k->reply_to, "html", k->html, "text", k->text, "state",
                     k->state, "send_at", id_or_null(k->send_at), "timezone", k->timezone,
                     "owner_id", id_or_null(k->owner_id), "team_id", id_or_null(k->team_id),
                     "created_at", (json_int_t)k->created_at, "updated_at",
                     (json_int_t)k->updated_at, "started_at", id_or_null(k->started_at),
                     "finished_at", id_or_null(k->finished_at), "track_opens",
                     !k->no_track_opens, "track_clicks", !k->no_track_clicks, "lists", lists);
}

/* ---- the session and tokens ------------------------------------------------------------- */

static void h_me(api_call *c)
{
    json_t *o = j_user(&c->who.user);
    json_object_set_new(o, "csrf_token", c->who.session ? json_string(c->who.csrf) : json_null());
    json_object_set_new(o, "expires_at", id_or_null(c->who.expires_at));
    json_object_set_new(o, "auth", json_string(c->who.session ? "session" : "token"));
    reply(c, 200, o);
}

static json_t *j_token(const token_rec *t)
{
    return json_pack("{s:I, s:I, s:s, s:I, s:o}", "id", (json_int_t)t->id, "user_id",
                     (json_int_t)t->user_id, "name", t->name ? t->name : "", "created_at",
                     (json_int_t)t->created_at, "expires_at", id_or_null(t->expires_at));
}

static int coll_token(void *ud, const token_rec *t)
{
    coll *k = ud;
    if (perm_allow(&k->c->actor, PERM_TOKEN, PERM_READ, t->user_id, 0))
        coll_add(k, t->id, j_token(t));
    return 0;
}

static void h_tokens(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    coll k = {.c = c};
    td_error e = {0};
    int64_t uid = perm_scope(&c->actor, PERM_TOKEN, PERM_READ) == PERM_SC_ALL ? 0 : c->actor.user_id;
    int rc = store_token_each(c->s, uid, coll_token, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static void h_token_create(api_call *c)
{
    const char *name = "";
    int64_t ttl = 0;
    if (only(c, "name", "expires_in", NULL) || f_str(c, "name", false, NAME_MAX_LEN, &name) ||
        f_int(c, "expires_in", false, 60, TOKEN_TTL_MAX, &ttl, NULL) || text(c, "name", name, NAME_MAX_LEN))
        return;
    if (!allowed(c, PERM_TOKEN, PERM_CREATE, c->actor.user_id, 0))
        return;
    char *tok = NULL;
    int64_t id = 0, exp = ttl ? c->now + ttl : 0;
    td_error e = {0};
    int rc = auth_token_create(c->s, c->actor.user_id, name, exp, &tok, &id, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        return;
    }
    audit(c, "token.create", "token", id, name);
    reply(c, 201, json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)id, "name", name, "token",
                            tok, "expires_at", id_or_null(exp)));
    free(tok);
}

struct find_token {
    int64_t id, user_id;
    bool found;
};

static int match_token(void *ud, const token_rec *t)
{
    struct find_token *f = ud;
    if (t->id != f->id)
        return 0;
    f->user_id = t->user_id;
    f->found = true;
    return 1;
}

static void h_token_delete(api_call *c)
{
    struct find_token f = {.id = c->id};
    td_error e = {0};
    int rc = store_token_each(c->s, 0, match_token, &f, &e);
    if (!f.found && rc) {
        fail_td(c, rc, &e, NULL);
        return;
    }
    if (!f.found) {
        fail(c, 404, "not_found", NULL, "there is no token %lld", (long long)c->id);
        return;
    }
    if (!allowed(c, PERM_TOKEN, PERM_DELETE, f.user_id, 0))
        return;
    if ((rc = store_token_delete(c->s, c->id, &e))) {
        fail_td(c, rc, &e, NULL);
        return;
    }
    audit(c, "token.delete", "token", c->id, NULL);
    reply(c, 204, NULL);
}

/* ---- subscribers -------------------------------------------------------------------- */

/* scope_of turns the actor's reach for reading o into a store filter;
 * false (answered 403) when they may read none. */
static bool scope_of(api_call *c, perm_obj o, store_scope *f)
{
    memset(f, 0, sizeof *f);
    switch (perm_scope(&c->actor, o, PERM_READ)) {
    case PERM_SC_ALL: return true;
    case PERM_SC_TEAM:
        f->team_id = c->actor.team_id;
        f->owner_id = c->actor.user_id;
        return true;
    case PERM_SC_OWN: f->owner_id = c->actor.user_id; return true;
    default: forbid(c, o, PERM_READ); return false;
    }
}

struct sub_page {
    json_t *data;
    int64_t last;
    unsigned n, limit;
    bool more;
};

static int page_sub(void *ud, const sub_rec *r)
{
    struct sub_page *sp = ud;
    if (sp->n == sp->limit) {
        sp->more = true;
        return 1;
    }
    json_array_append_new(sp->data, j_sub(r));
    sp->last = r->id;
    sp->n++;
    return 0;
}

static void h_subs(api_call *c)
{
    page p;
    store_scope f;
    if (get_page(c, &p) || !scope_of(c, PERM_SUBSCRIBER, &f))
        return;
    struct sub_page sp = {.data = json_array(), .limit = p.limit};
    int64_t total = 0;
    td_error e = {0};
    /* One more than the page: whether there is a next page. */
    int rc = store_sub_page(c->s, &f, p.after, p.limit + 1, page_sub, &sp, &total, &e);
    if (rc && !sp.more) {
        json_decref(sp.data);
        fail_td(c, rc, &e, NULL);
        return;
    }
    reply(c, 200, page_wrap(sp.data, total, &p, sp.more ? sp.last : 0));
}

static int add_membership(void *ud, const char *list, const char *status)
{
    json_array_append_new(ud, json_pack("{s:s, s:s}", "list", list, "status", status));
    return 0;
}

/* load_sub gets {id} and checks act on it; false when answered. */
static bool load_sub(api_call *c, perm_act act, sub_rec *r)
{
    td_error e = {0};
    int rc = store_sub_get(c->s, c->id, r, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        return false;
    }
    if (!allowed(c, PERM_SUBSCRIBER, act, r->owner_id, r->team_id)) {
        sub_rec_clear(r);
        return false;
    }
    return true;
}

static void reply_sub(api_call *c, int status, const sub_rec *r)
{
    json_t *o = j_sub(r);
    json_t *m = json_array();
    store_member_lists(c->s, r->id, add_membership, m, NULL);
    json_object_set_new(o, "lists", m);
    reply(c, status, o);
}

static void h_sub_get(api_call *c)
{
    sub_rec r = {0};
    if (!load_sub(c, PERM_READ, &r))
        return;
    reply_sub(c, 200, &r);
    sub_rec_clear(&r);
}

/* owner_team reads owner_id and team_id (the defaults: the actor and their
 * team), for a new object or a change of hands. */
static int owner_team(api_call *c, int64_t *owner, int64_t *team)
{
    bool g;
    int64_t v = 0;
    if (f_int(c, "owner_id", false, 0, INT64_MAX, &v, &g))
        return -1;
    if (g)
        *owner = v;
    if (f_int(c, "team_id", false, 0, INT64_MAX, &v, &g))
        return -1;
    if (g)
        *team = v;
    return 0;
}

/* sub_fields reads the fields of a subscriber into r (strings borrowed
 * from the body, except *attribs and *email, which the caller frees). */
static int sub_fields(api_call *c, bool create, sub_rec *r, char **email, char **attribs)
{
    const char *em = NULL, *name = NULL, *status = NULL, *tz = NULL, *loc = NULL;
    *email = *attribs = NULL;
    if (f_str(c, "email", create, 320, &em) || f_str(c, "name", false, SUB_NAME_MAX, &name) ||
        f_str(c, "status", false, 20, &status) || f_str(c, "timezone", false, 64, &tz) ||
        f_str(c, "locale", false, 35, &loc) || f_obj(c, "attributes", attribs) ||
        owner_team(c, &r->owner_id, &r->team_id))
        return -1;
    td_error e = {0};
    if (em && !(*email = subscriber_email(em, strlen(em), &e)))
        return fail(c, 422, "invalid", "email", "%s", e.msg);
    if (*email)
        r->email = *email;
    if (name)
        r->name = (char *)name;
    if (status)
        r->status = (char *)status;
    /* "" clears the time zone or locale. */
    if (tz)
        r->timezone = *tz ? (char *)tz : NULL;
    if (loc)
        r->locale = *loc ? (char *)loc : NULL;
    if (*attribs)
        r->attribs = *attribs;
    if (subscriber_check(r, &e)) {
        const char *f = strstr(e.msg, "zone") ? "timezone" : strstr(e.msg, "locale") ? "locale"
                        : strstr(e.msg, "status")                               ? "status"
                                                                                : "name";
        return fail(c, 422, "invalid", f, "%s", e.msg);
    }
    return 0;
}

static void h_sub_create(api_call *c)
{
    sub_rec r = {.name = "", .attribs = "{}", .status = "enabled", .owner_id = c->actor.user_id,
                 .team_id = c->actor.team_id};
    char *email = NULL, *attribs = NULL;
    int64_t *lists = NULL;
    size_t nlists = 0;
    list_rec *ls = NULL;
    if (only(c, "email", "name", "attributes", "status", "timezone", "locale", "lists",
             "owner_id", "team_id", NULL) ||
        sub_fields(c, true, &r, &email, &attribs) ||
        f_ids(c, "lists", false, CAMPAIGN_MAX_LISTS, &lists, &nlists, NULL))
        goto out;
    if (!allowed(c, PERM_SUBSCRIBER, PERM_CREATE, r.owner_id, r.team_id))
        goto out;
    td_error e = {0};
    ls = xcalloc(nlists + 1, sizeof *ls);
    for (size_t i = 0; i < nlists; i++) {
        int rc = store_list_get(c->s, lists[i], &ls[i], &e);
        if (rc == TD_ENOTFOUND) {
            fail(c, 422, "invalid", "lists", "there is no list %lld", (long long)lists[i]);
            goto out;
        }
        if (rc) {
            fail_td(c, rc, &e, "lists");
            goto out;
        }
        if (!allowed(c, PERM_LIST, PERM_UPDATE, ls[i].owner_id, ls[i].team_id))
            goto out;
    }
    int64_t id = 0;
    int rc = store_begin(c->s, &e);
    if (!rc) {
        rc = store_sub_add(c->s, &r, &id, &e);
        for (size_t i = 0; !rc && i < nlists; i++)
            rc = store_member_set(c->s, ls[i].id, id,
                                  strcmp(ls[i].optin, "double") ? "confirmed" : "unconfirmed",
                                  false, NULL, &e);
        if (!rc)
            rc = store_commit(c->s, &e);
        if (rc)
            store_rollback(c->s);
    }
    if (rc) {
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "email" : NULL);
        goto out;
    }
    audit(c, "subscriber.add", "subscriber", id, NULL);
    sub_rec got = {0};
    if ((rc = store_sub_get(c->s, id, &got, &e)))
        fail_td(c, rc, &e, NULL);
    else
        reply_sub(c, 201, &got);
    sub_rec_clear(&got);
out:
    for (size_t i = 0; ls && i < nlists; i++)
        list_rec_clear(&ls[i]);
    free(ls);
    free(lists);
    free(email);
    free(attribs);
}

static void h_sub_update(api_call *c)
{
    sub_rec old = {0};
    if (only(c, "email", "name", "attributes", "status", "timezone", "locale", "owner_id",
             "team_id", NULL) ||
        !load_sub(c, PERM_UPDATE, &old))
        return;
    sub_rec r = old;
    char *email = NULL, *attribs = NULL;
    td_error e = {0};
    if (sub_fields(c, false, &r, &email, &attribs))
        goto out;
    if ((r.owner_id != old.owner_id || r.team_id != old.team_id) &&
        !allowed(c, PERM_SUBSCRIBER, PERM_UPDATE, r.owner_id, r.team_id))
        goto out;
    int rc = store_sub_update(c->s, &r, &e);
    if (rc) {
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "email" : NULL);
        goto out;
    }
    audit(c, "subscriber.update", "subscriber", old.id, NULL);
    sub_rec got = {0};
    if ((rc = store_sub_get(c->s, old.id, &got, &e)))
        fail_td(c, rc, &e, NULL);
    else
        reply_sub(c, 200, &got);
    sub_rec_clear(&got);
out:
    free(email);
    free(attribs);
    sub_rec_clear(&old);
}

static void h_sub_delete(api_call *c)
{
    sub_rec old = {0};
    if (!load_sub(c, PERM_DELETE, &old))
        return;
    td_error e = {0};
    int rc = store_sub_delete(c->s, old.id, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else {
        audit(c, "subscriber.delete", "subscriber", old.id, NULL);
        reply(c, 204, NULL);
    }
    sub_rec_clear(&old);
}

/* ---- lists ------------------------------------------------------------------------ */

static int coll_list(void *ud, const list_rec *l)
{
    coll *k = ud;
    if (perm_allow(&k->c->actor, PERM_LIST, PERM_READ, l->owner_id, l->team_id))
        coll_add(k, l->id, j_list(l));
    return 0;
}

static void h_lists(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    if (perm_scope(&c->actor, PERM_LIST, PERM_READ) == PERM_SC_NONE) {
        forbid(c, PERM_LIST, PERM_READ);
        return;
    }
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_list_each(c->s, coll_list, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static bool load_list(api_call *c, perm_act act, list_rec *l)
{
    td_error e = {0};
    int rc = store_list_get(c->s, c->id, l, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        return false;
    }
    if (!allowed(c, PERM_LIST, act, l->owner_id, l->team_id)) {
        list_rec_clear(l);
        return false;
    }
    return true;
}

static void h_list_get(api_call *c)
{
    list_rec l = {0};
    if (!load_list(c, PERM_READ, &l))
        return;
    reply(c, 200, j_list(&l));
    list_rec_clear(&l);
}

static void h_list_create(api_call *c)
{
    const char *name = NULL, *optin = "single", *vis = "private";
    int64_t owner = c->actor.user_id, team = c->actor.team_id;
    if (only(c, "name", "optin", "visibility", "owner_id", "team_id", NULL) ||
        f_str(c, "name", true, NAME_MAX_LEN, &name) || f_str(c, "optin", false, 10, &optin) ||
        f_str(c, "visibility", false, 10, &vis) || owner_team(c, &owner, &team) ||
        text(c, "name", name, NAME_MAX_LEN))
        return;
    if (!model_optin_ok(optin)) {
        fail(c, 422, "invalid", "optin", "optin is single or double");
        return;
    }
    if (!model_visibility_ok(vis)) {
        fail(c, 422, "invalid", "visibility", "visibility is public or private");
        return;
    }
    if (!allowed(c, PERM_LIST, PERM_CREATE, owner, team))
        return;
    list_rec l = {.name = (char *)name, .optin = (char *)optin, .visibility = (char *)vis,
                  .owner_id = owner, .team_id = team};
    int64_t id = 0;
    td_error e = {0};
    int rc = store_list_add(c->s, &l, &id, &e);
    if (rc) {
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "name" : NULL);
        return;
    }
    audit(c, "list.create", "list", id, optin);
    list_rec got = {0};
    if ((rc = store_list_get(c->s, id, &got, &e)))
        fail_td(c, rc, &e, NULL);
    else
        reply(c, 201, j_list(&got));
    list_rec_clear(&got);
}

static void h_list_delete(api_call *c)
{
    list_rec l = {0};
    if (!load_list(c, PERM_DELETE, &l))
        return;
    td_error e = {0};
    int rc = store_list_delete(c->s, l.id, &e);
    if (rc == TD_EINVAL)
        fail(c, 409, "in_use", NULL, "a campaign uses the list: it stays");
    else if (rc)
        fail_td(c, rc, &e, NULL);
    else {
        audit(c, "list.delete", "list", l.id, NULL);
        reply(c, 204, NULL);
    }
    list_rec_clear(&l);
}

struct rejects {
    json_t *errors;
};

static void import_reject(void *ud, uint64_t line, const char *reason)
{
    struct rejects *r = ud;
    if (json_array_size(r->errors) < IMPORT_ERRORS_MAX)
        json_array_append_new(r->errors, json_pack("{s:I, s:s}", "line", (json_int_t)line,
                                                   "reason", reason));
}

static void h_list_import(api_call *c)
{
    const char *ct = c->req->content_type;
    if (!ct || (strncasecmp(ct, "text/csv", 8) && strncasecmp(ct, "application/csv", 15))) {
        fail(c, 415, "bad_content_type", NULL, "send the CSV file as text/csv");
        return;
    }
    const char *mode_s = http_query(c->req, "mode");
    sub_mode mode = SUB_MODE_SUBSCRIBE;
    if (mode_s && !strcmp(mode_s, "upsert"))
        mode = SUB_MODE_UPSERT;
    else if (mode_s && strcmp(mode_s, "subscribe")) {
        fail(c, 400, "bad_query", "mode", "mode is subscribe or upsert");
        return;
    }
    list_rec l = {0};
    if (!load_list(c, PERM_UPDATE, &l))
        return;
    /* The new subscribers are the importer's, in their team. */
    if (!allowed(c, PERM_SUBSCRIBER, PERM_CREATE, c->actor.user_id, c->actor.team_id) ||
        (mode == SUB_MODE_UPSERT &&
         perm_scope(&c->actor, PERM_SUBSCRIBER, PERM_UPDATE) != PERM_SC_ALL &&
         forbid(c, PERM_SUBSCRIBER, PERM_UPDATE))) {
        list_rec_clear(&l);
        return;
    }
    FILE *in = fmemopen((void *)(c->req->body_len ? c->req->body : ""), c->req->body_len, "r");
    if (!in) {
        list_rec_clear(&l);
        fail(c, 500, "internal", NULL, "cannot read the body");
        return;
    }
    struct rejects rj = {.errors = json_array()};
    import_opts o = {.list_id = l.id, .list_optin = l.optin, .mode = mode,
                     .team_id = c->actor.team_id, .owner_id = c->actor.user_id,
                     .reject = import_reject, .ud = &rj};
    import_stats st = {0};
    td_error e = {0};
    int rc = import_csv(c->s, in, &o, &st, &e);
    fclose(in);
    if (rc) {
        json_decref(rj.errors);
        fail_td(c, rc, &e, NULL);
    } else {
        char detail[200];
        snprintf(detail, sizeof detail, "rows=%llu created=%llu invalid=%llu",
                 (unsigned long long)st.rows, (unsigned long long)st.created,
                 (unsigned long long)st.invalid);
        audit(c, "list.import", "list", l.id, detail);
        reply(c, 200,
              json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "list_id",
                        (json_int_t)l.id, "rows", (json_int_t)st.rows, "created",
                        (json_int_t)st.created, "updated", (json_int_t)st.updated, "unchanged",
                        (json_int_t)st.unchanged, "memberships", (json_int_t)st.memberships,
                        "invalid", (json_int_t)st.invalid, "errors", rj.errors));
    }
    list_rec_clear(&l);
}

/* ---- templates (content blocks) ------------------------------------------------------- */

static int coll_block(void *ud, const block_rec *b)
{
    coll *k = ud;
    if (perm_allow(&k->c->actor, PERM_TEMPLATE, PERM_READ, b->owner_id, b->team_id))
        coll_add(k, b->id, j_block(b, false));
    return 0;
}

static void h_templates(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    const char *kind = http_query(c->req, "kind");
    if (kind && !model_block_kind_ok(kind)) {
        fail(c, 400, "bad_query", "kind", "kind is article or product");
        return;
    }
    if (perm_scope(&c->actor, PERM_TEMPLATE, PERM_READ) == PERM_SC_NONE) {
        forbid(c, PERM_TEMPLATE, PERM_READ);
        return;
    }
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_block_each(c->s, kind, coll_block, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static bool load_block(api_call *c, perm_act act, block_rec *b)
{
    td_error e = {0};
    int rc = store_block_get(c->s, c->name, b, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        return false;
    }
    if (!allowed(c, PERM_TEMPLATE, act, b->owner_id, b->team_id)) {
        block_rec_clear(b);
        return false;
    }
    return true;
}

static void h_template_get(api_call *c)
{
    block_rec b = {0};
    if (!load_block(c, PERM_READ, &b))
        return;
    reply(c, 200, j_block(&b, true));
    block_rec_clear(&b);
}

/* save_block writes b (its name, owner and team set) from the body's
 * fields and answers with it. */
static void save_block(api_call *c, block_rec *b, bool create)
{
    const char *kind = NULL, *title = NULL, *body = NULL;
    char *data = NULL;
    if (f_str(c, "kind", true, 20, &kind) || f_str(c, "title", true, BLOCK_MAX_TITLE, &title) ||
        f_str(c, "body", true, BLOCK_MAX_BODY, &body) || f_obj(c, "data", &data))
        return;
    td_error e = {0};
    if (!model_block_kind_ok(kind)) {
        fail(c, 422, "invalid", "kind", "kind is article or product");
        goto out;
    }
    if (text(c, "title", title, BLOCK_MAX_TITLE))
        goto out;
    if (blocks_check_body(body, strlen(body), &e)) {
        fail(c, 422, "invalid", "body", "%s", e.msg);
        goto out;
    }
    b->kind = (char *)kind;
    b->title = (char *)title;
    b->body = (char *)body;
    b->data = data ? data : "{}";
    int64_t id = 0;
    int rc = store_block_put(c->s, b, &id, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        goto out;
    }
    audit(c, create ? "block.add" : "block.replace", "block", id, b->name);
    block_rec got = {0};
    if ((rc = store_block_get(c->s, b->name, &got, &e)))
        fail_td(c, rc, &e, NULL);
    else
        reply(c, create ? 201 : 200, j_block(&got, true));
    block_rec_clear(&got);
out:
    free(data);
}

static void h_template_create(api_call *c)
{
    const char *name = NULL;
    int64_t owner = c->actor.user_id, team = c->actor.team_id;
    if (only(c, "name", "kind", "title", "body", "data", "owner_id", "team_id", NULL) ||
        f_str(c, "name", true, BLOCK_MAX_NAME, &name) || owner_team(c, &owner, &team))
        return;
    if (!model_block_name_ok(name)) {
        fail(c, 422, "invalid", "name", "a template's name is 1 to %d of a-z, 0-9 and '-'",
             BLOCK_MAX_NAME);
        return;
    }
    if (!allowed(c, PERM_TEMPLATE, PERM_CREATE, owner, team))
        return;
    block_rec old = {0};
    if (store_block_get(c->s, name, &old, NULL) == TD_OK) {
        block_rec_clear(&old);
        fail(c, 409, "exists", "name", "there is a template '%s' already", name);
        return;
    }
    block_rec b = {.name = (char *)name, .owner_id = owner, .team_id = team};
    save_block(c, &b, true);
}

static void h_template_put(api_call *c)
{
    block_rec old = {0};
    if (only(c, "kind", "title", "body", "data", "team_id", NULL) ||
        !load_block(c, PERM_UPDATE, &old))
        return;
    int64_t owner = old.owner_id, team = old.team_id;
    if (owner_team(c, &owner, &team))
        goto out;
    if (team != old.team_id && !allowed(c, PERM_TEMPLATE, PERM_UPDATE, owner, team))
        goto out;
    block_rec b = {.name = old.name, .owner_id = owner, .team_id = team};
    save_block(c, &b, false);
out:
    block_rec_clear(&old);
}

static void h_template_delete(api_call *c)
{
    block_rec old = {0};
    if (!load_block(c, PERM_DELETE, &old))
        return;
    td_error e = {0};
    int rc = store_block_delete(c->s, old.name, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else {
        audit(c, "block.delete", "block", old.id, old.name);
        reply(c, 204, NULL);
    }
    block_rec_clear(&old);
}

/* ---- campaigns ----------------------------------------------------------------------- */

static int coll_campaign(void *ud, const campaign_rec *k)
{
    coll *co = ud;
    if (perm_allow(&co->c->actor, PERM_CAMPAIGN, PERM_READ, k->owner_id, k->team_id))
        coll_add(co, k->id, j_campaign(co->c->s, k));
    return 0;
}

static void h_campaigns(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    if (perm_scope(&c->actor, PERM_CAMPAIGN, PERM_READ) == PERM_SC_NONE) {
        forbid(c, PERM_CAMPAIGN, PERM_READ);
        return;
    }
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_campaign_each(c->s, coll_campaign, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static bool load_campaign(api_call *c, perm_act act, campaign_rec *k)
{
    td_error e = {0};
    int rc = store_campaign_get(c->s, c->id, k, &e);
    if (rc) {
        fail_td(c, rc, &e, NULL);
        return false;
    }
    if (!allowed(c, PERM_CAMPAIGN, act, k->owner_id, k->team_id)) {
        campaign_rec_clear(k);
        return false;
    }
    return true;
}

static void reply_campaign(api_call *c, int status, int64_t id)
{
    campaign_rec k = {0};
    td_error e = {0};
    int rc = store_campaign_get(c->s, id, &k, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else
        reply(c, status, j_campaign(c->s, &k));
    campaign_rec_clear(&k);
}

static void h_campaign_get(api_call *c)
{
    campaign_rec k = {0};
    if (!load_campaign(c, PERM_READ, &k))
        return;
    reply(c, 200, j_campaign(c->s, &k));
    campaign_rec_clear(&k);
}

/* The names of lists by id, each one the actor may read. */
typedef struct names {
    char **v;
    size_t n;
} names;

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof *ns);
}

static int list_names(api_call *c, const int64_t *ids, size_t n, names *out)
{
    out->v = xcalloc(n + 1, sizeof *out->v);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        list_rec l = {0};
        td_error e = {0};
        int rc = store_list_get(c->s, ids[i], &l, &e);
        if (rc == TD_ENOTFOUND)
            return fail(c, 422, "invalid", "lists", "there is no list %lld", (long long)ids[i]);
        if (rc)
            return fail_td(c, rc, &e, "lists");
        bool ok = allowed(c, PERM_LIST, PERM_READ, l.owner_id, l.team_id);
        if (ok)
            out->v[out->n++] = xstrdup(l.name);
        list_rec_clear(&l);
        if (!ok)
            return -1;
    }
    return 0;
}

static int add_owned_name(void *ud, const char *name)
{
    names *ns = ud;
    ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
    ns->v[ns->n++] = xstrdup(name);
    return 0;
}

/* The fields of a campaign, for create and update. */
static const char *const campaign_fields[] = {"name", "subject", "from", "reply_to", "html",
                                              "text", "lists", "track_opens", "track_clicks",
                                              "send_at", "owner_id", "team_id"};

static int check_send_at(api_call *c, int64_t at)
{
    if (at && at <= c->now)
        return fail(c, 422, "invalid", "send_at", "the send time is in the past");
    return 0;
}

/* campaign_body fills sp from the body over what sp holds; *lists holds
 * the names (the caller frees them). */
static int campaign_body(api_call *c, campaign_spec *sp, names *lists, int64_t *send_at,
                         bool *send_at_given)
{
    const char *k;
    json_t *v;
    json_object_foreach(c->body, k, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof campaign_fields / sizeof *campaign_fields; i++)
            known |= !strcmp(k, campaign_fields[i]);
        if (!known) {
            char f[100];
            snprintf(f, sizeof f, "%.90s", k);
            return fail(c, 422, "unknown_field", f, "there is no field '%.90s' here", k);
        }
    }
    bool to = !sp->no_track_opens, tc = !sp->no_track_clicks, given;
    const char *rt = NULL;
    int64_t *ids = NULL;
    size_t nids = 0;
    if (f_str(c, "name", false, CAMPAIGN_MAX_NAME, &sp->name) ||
        f_str(c, "subject", false, 2000, &sp->subject) || f_str(c, "from", false, 1000, &sp->from) ||
        f_str(c, "reply_to", false, 1000, &rt) || f_str(c, "html", false, 1u << 19, &sp->html) ||
        f_str(c, "text", false, 1u << 19, &sp->text) || f_bool(c, "track_opens", &to) ||
        f_bool(c, "track_clicks", &tc) ||
        f_int(c, "send_at", false, 0, INT64_MAX, send_at, send_at_given) ||
        f_ids(c, "lists", false, CAMPAIGN_MAX_LISTS, &ids, &nids, &given))
        return -1;
    if (rt)
        sp->reply_to = *rt ? rt : NULL;
    sp->no_track_opens = !to;
    sp->no_track_clicks = !tc;
    if (given) {
        names_free(lists);
        int rc = list_names(c, ids, nids, lists);
        free(ids);
        if (rc)
            return -1;
    }
    sp->lists = (const char *const *)lists->v;
    sp->nlists = lists->n;
    if (*send_at_given && check_send_at(c, *send_at))
        return -1;
    return 0;
}

static void h_campaign_create(api_call *c)
{
    campaign_spec sp = {.owner_id = c->actor.user_id, .team_id = c->actor.team_id};
    names lists = {0};
    int64_t send_at = 0, id = 0;
    bool sa = false;
    if (owner_team(c, &sp.owner_id, &sp.team_id) || campaign_body(c, &sp, &lists, &send_at, &sa))
        goto out;
    if (!sp.name || !sp.subject || !sp.from || !json_object_get(c->body, "lists")) {
        const char *f = !sp.name ? "name" : !sp.subject ? "subject" : !sp.from ? "from" : "lists";
        fail(c, 422, "required", f, "'%s' is required", f);
        goto out;
    }
    if (!allowed(c, PERM_CAMPAIGN, PERM_CREATE, sp.owner_id, sp.team_id))
        goto out;
    td_error e = {0};
    int rc = campaign_create(c->s, &sp, c->now, &id, &e);
    if (!rc && send_at)
        rc = store_campaign_set_send_at(c->s, id, send_at, &e);
    if (rc) {
        fail_td(c, rc == TD_ENOTFOUND ? TD_EINVAL : rc, &e, NULL);
        goto out;
    }
    audit(c, "campaign.create", "campaign", id, NULL);
    reply_campaign(c, 201, id);
out:
    names_free(&lists);
}

static void h_campaign_update(api_call *c)
{
    campaign_rec old = {0};
    if (!load_campaign(c, PERM_UPDATE, &old))
        return;
    names lists = {0};
    if (strcmp(old.state, "draft")) {
        fail(c, 409, "conflict", NULL, "campaign %lld is %s: only a draft changes",
             (long long)old.id, old.state);
        goto out;
    }
    store_campaign_list_names(c->s, old.id, add_owned_name, &lists, NULL);
    /* The draft as it stands, with the body's fields over it, goes through
     * campaign_create (every check, the tracking) as a new draft whose
     * content then replaces the old one's (same id). */
    campaign_spec sp = {.name = old.name, .subject = old.subject, .from = old.from,
                        .reply_to = old.reply_to, .html = old.html, .text = old.text,
                        .owner_id = old.owner_id, .team_id = old.team_id,
                        .no_track_opens = old.no_track_opens,
                        .no_track_clicks = old.no_track_clicks};
    int64_t send_at = old.send_at, new_id = 0;
    bool sa = false;
    if (owner_team(c, &sp.owner_id, &sp.team_id) || campaign_body(c, &sp, &lists, &send_at, &sa))
        goto out;
    if ((sp.owner_id != old.owner_id || sp.team_id != old.team_id) &&
        !allowed(c, PERM_CAMPAIGN, PERM_UPDATE, sp.owner_id, sp.team_id))
        goto out;
    td_error e = {0};
    int rc = campaign_create(c->s, &sp, c->now, &new_id, &e);
    if (!rc)
        rc = store_campaign_update_from(c->s, old.id, new_id, &e);
    if (!rc)
        rc = store_campaign_set_send_at(c->s, old.id, send_at, &e);
    if (rc) {
        fail_td(c, rc == TD_ENOTFOUND ? TD_EINVAL : rc, &e, NULL);
        goto out;
    }
    audit(c, "campaign.update", "campaign", old.id, NULL);
    reply_campaign(c, 200, old.id);
out:
    names_free(&lists);
    campaign_rec_clear(&old);
}

/* campaign_move runs one of the state changes on {id}. */
static void campaign_move(api_call *c, const char *what)
{
    campaign_rec k = {0};
    if (!load_campaign(c, PERM_SEND, &k))
        return;
    td_error e = {0};
    int rc = 0;
    char detail[64] = "";
    if (!strcmp(what, "schedule")) {
        int64_t at = 0;
        if (only(c, "send_at", NULL) || f_int(c, "send_at", true, 1, INT64_MAX, &at, NULL) ||
            check_send_at(c, at))
            goto out;
        const char *state;
        uint64_t n = 0;
        if (!(rc = store_campaign_set_send_at(c->s, k.id, at, &e)))
            rc = campaign_start(c->s, k.id, c->now, &state, &n, &e);
        snprintf(detail, sizeof detail, "send_at=%lld", (long long)at);
    } else if (!strcmp(what, "start")) {
        const char *state;
        uint64_t n = 0;
        rc = campaign_start(c->s, k.id, c->now, &state, &n, &e);
        snprintf(detail, sizeof detail, "%s recipients=%llu", rc ? "" : state,
                 (unsigned long long)n);
    } else if (!strcmp(what, "pause")) {
        rc = campaign_pause(c->s, k.id, c->now, &e);
    } else if (!strcmp(what, "resume")) {
        rc = campaign_resume(c->s, k.id, c->now, &e);
    } else if (!strcmp(what, "cancel")) {
        rc = campaign_cancel(c->s, k.id, c->now, &e);
    } else { /* retry: as `campaign retry` does */
        uint64_t n = 0;
        rc = store_begin(c->s, &e);
        if (!rc)
            rc = store_delivery_requeue(c->s, k.id, "failed", false, c->now, &n, &e);
        /* A finished campaign runs again for them. */
        if (!rc && n && store_campaign_set_state(c->s, k.id, "finished", "running", c->now, &e) !=
                            TD_EDENIED)
            rc = 0;
        if (!rc)
            rc = store_commit(c->s, &e);
        if (rc)
            store_rollback(c->s);
        snprintf(detail, sizeof detail, "requeued=%llu", (unsigned long long)n);
    }
    if (rc) {
        fail_td(c, rc, &e, NULL);
        goto out;
    }
    char action[40];
    snprintf(action, sizeof action, "campaign.%s", what);
    audit(c, action, "campaign", k.id, detail[0] ? detail : NULL);
    reply_campaign(c, 200, k.id);
out:
    campaign_rec_clear(&k);
}

static void h_campaign_schedule(api_call *c) { campaign_move(c, "schedule"); }
static void h_campaign_start(api_call *c) { campaign_move(c, "start"); }
static void h_campaign_pause(api_call *c) { campaign_move(c, "pause"); }
static void h_campaign_resume(api_call *c) { campaign_move(c, "resume"); }
static void h_campaign_cancel(api_call *c) { campaign_move(c, "cancel"); }
static void h_campaign_retry(api_call *c) { campaign_move(c, "retry"); }

static void h_campaign_stats(api_call *c)
{
    campaign_rec k = {0};
    if (!load_campaign(c, PERM_READ, &k))
        return;
    campaign_counts n = {0};
    event_counts ev = {0};
    td_error e = {0};
    int rc = store_campaign_counts(c->s, k.id, &n, &e);
    if (!rc)
        rc = store_event_counts(c->s, k.id, &ev, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else
        reply(c, 200,
              json_pack("{s:I, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, "
                        "s:I, s:I}}",
                        "id", (json_int_t)k.id, "state", k.state, "deliveries", "total",
                        (json_int_t)n.total, "queued", (json_int_t)n.queued, "sending",
                        (json_int_t)n.sending, "sent", (json_int_t)n.sent, "deferred",
                        (json_int_t)n.deferred, "failed", (json_int_t)n.failed, "events", "opens",
                        (json_int_t)ev.open, "clicks", (json_int_t)ev.click, "unsubscribes",
                        (json_int_t)ev.unsubscribe, "bounces", (json_int_t)ev.bounce,
                        "complaints", (json_int_t)ev.complaint, "replies",
                        (json_int_t)ev.reply));
    campaign_rec_clear(&k);
}

static int coll_failure(void *ud, const delivery_rec *d)
{
    coll *k = ud;
    coll_add(k, d->id,
             json_pack("{s:I, s:o, s:s, s:i, s:s?, s:I}", "id", (json_int_t)d->id,
                       "subscriber_id", id_or_null(d->subscriber_id), "email", d->email,
                       "attempts", d->attempts, "reply", d->last_reply, "updated_at",
                       (json_int_t)d->updated_at));
    return 0;
}

static void h_campaign_failures(api_call *c)
{
    page p;
    campaign_rec k = {0};
    if (get_page(c, &p) || !load_campaign(c, PERM_READ, &k))
        return;
    coll co = {.c = c};
    td_error e = {0};
    int rc = store_delivery_each(c->s, k.id, "failed", coll_failure, &co, &e);
    campaign_rec_clear(&k);
    if (rc) {
        coll_free(&co);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&co, &p);
}

/* ---- replies ----------------------------------------------------------------------- */

static int page_reply(void *ud, const reply_view *r)
{
    struct sub_page *sp = ud;
    if (sp->n == sp->limit) {
        sp->more = true;
        return 1;
    }
    json_array_append_new(
        sp->data,
        json_pack("{s:I, s:o, s:o, s:s, s:s?, s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "id",
                  (json_int_t)r->id, "campaign_id", id_or_null(r->campaign_id), "subscriber_id",
                  id_or_null(r->subscriber_id), "sender", r->sender, "sender_name",
                  r->sender_name, "subject", r->subject ? r->subject : "", "body",
                  r->body ? r->body : "", "status", r->status, "owner_id",
                  id_or_null(r->owner_id), "team_id", id_or_null(r->team_id), "assigned_to",
                  id_or_null(r->assigned_to), "received_at", (json_int_t)r->received_at));
    sp->last = r->id;
    sp->n++;
    return 0;
}

static void h_replies(api_call *c)
{
    page p;
    store_scope f;
    if (get_page(c, &p) || !scope_of(c, PERM_REPLY, &f))
        return;
    struct sub_page sp = {.data = json_array(), .limit = p.limit};
    int64_t total = 0;
    td_error e = {0};
    int rc = store_reply_page(c->s, &f, p.after, p.limit + 1, page_reply, &sp, &total, &e);
    if (rc && !sp.more) {
        json_decref(sp.data);
        fail_td(c, rc, &e, NULL);
        return;
    }
    reply(c, 200, page_wrap(sp.data, total, &p, sp.more ? sp.last : 0));
}

/* ---- relays and DKIM keys --------------------------------------------------------------- */

static int coll_relay(void *ud, const relay_rec *r)
{
    coll *k = ud;
    smtp_url u = {0};
    char *masked = NULL;
    if (!smtp_url_parse(r->url, &u, NULL))
        masked = smtp_url_format(&u, true);
    smtp_url_clear(&u);
    coll_add(k, r->id,
             json_pack("{s:I, s:s, s:i, s:f, s:I}", "id", (json_int_t)r->id, "url",
                       masked ? masked : "(unreadable)", "max_conns", r->max_conns, "rate",
                       r->rate, "created_at", (json_int_t)r->created_at));
    free(masked);
    return 0;
}

static void h_relays(api_call *c)
{
    page p;
    if (get_page(c, &p) || !allowed(c, PERM_RELAY, PERM_READ, 0, 0))
        return;
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_relay_each(c->s, coll_relay, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static void h_relay_create(api_call *c)
{
    const char *url = NULL;
    int64_t conns = 4;
    double rate = 0;
    if (only(c, "url", "max_conns", "rate", NULL) || f_str(c, "url", true, 2000, &url) ||
        f_int(c, "max_conns", false, 1, 1000, &conns, NULL) ||
        f_num(c, "rate", 0, 1e6, &rate) || !allowed(c, PERM_RELAY, PERM_CREATE, 0, 0))
        return;
    smtp_url u = {0};
    td_error e = {0};
    if (smtp_url_parse(url, &u, &e)) {
        smtp_url_clear(&u);
        fail(c, 422, "invalid", "url", "%s", e.msg);
        return;
    }
    char *canon = smtp_url_format(&u, false), *masked = smtp_url_format(&u, true);
    smtp_url_clear(&u);
    relay_rec r = {.url = canon, .max_conns = (int)conns, .rate = rate};
    int64_t id = 0;
    int rc = store_relay_add(c->s, &r, &id, &e);
    if (rc)
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "url" : NULL);
    else {
        audit(c, "relay.add", "relay", id, masked);
        reply(c, 201, json_pack("{s:I, s:s, s:i, s:f}", "id", (json_int_t)id, "url", masked,
                                "max_conns", (int)conns, "rate", rate));
    }
    free(canon);
    free(masked);
}

static void h_relay_delete(api_call *c)
{
    if (!allowed(c, PERM_RELAY, PERM_DELETE, 0, 0))
        return;
    td_error e = {0};
    int rc = store_relay_delete(c->s, c->id, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else {
        audit(c, "relay.delete", "relay", c->id, NULL);
        reply(c, 204, NULL);
    }
}

static json_t *j_dkim(const dkim_key_rec *k, const char *value)
{
    char name[600];
    snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, k->domain);
    return json_pack("{s:I, s:s, s:s, s:s, s:I, s:{s:s, s:s, s:s?}}", "id", (json_int_t)k->id,
                     "domain", k->domain, "selector", k->selector, "algo", k->algo,
                     "created_at", (json_int_t)k->created_at, "dns", "name", name, "type", "TXT",
                     "value", value);
}

static int coll_dkim(void *ud, const dkim_key_rec *k)
{
    coll *co = ud;
    char *value = NULL;
    dkim_txt_record(k->private_key, &value, NULL);
    coll_add(co, k->id, j_dkim(k, value));
    free(value);
    return 0;
}

static void h_dkim_keys(api_call *c)
{
    page p;
    if (get_page(c, &p) || !allowed(c, PERM_DKIM, PERM_READ, 0, 0))
        return;
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_dkim_key_each(c->s, NULL, coll_dkim, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static void h_dkim_keygen(api_call *c)
{
    const char *domain = NULL, *selector = NULL, *algo = "rsa";
    if (only(c, "domain", "selector", "algo", NULL) || f_str(c, "domain", true, 255, &domain) ||
        f_str(c, "selector", true, 63, &selector) || f_str(c, "algo", false, 10, &algo) ||
        !allowed(c, PERM_DKIM, PERM_CREATE, 0, 0))
        return;
    td_error e = {0};
    dkim_algo a;
    char *d = NULL, *sel = xstrdup(selector), *pem = NULL, *value = NULL;
    for (char *q = sel; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    if (dkim_algo_parse(algo, &a, &e)) {
        fail(c, 422, "invalid", "algo", "algo is rsa or ed25519");
        goto out;
    }
    if (dkim_domain_normalize(domain, &d, &e)) {
        fail(c, 422, "invalid", "domain", "%s", e.msg);
        goto out;
    }
    if (dkim_selector_ok(sel, &e)) {
        fail(c, 422, "invalid", "selector", "%s", e.msg);
        goto out;
    }
    int rc = dkim_keygen(a, &pem, &value, &e);
    dkim_key_rec k = {.domain = d, .selector = sel, .algo = (char *)dkim_algo_name(a),
                      .private_key = pem, .created_at = c->now};
    if (!rc)
        rc = store_dkim_key_add(c->s, &k, &k.id, &e);
    if (rc == TD_EEXISTS) {
        fail(c, 409, "exists", "selector", "%s has a key with selector '%s' already", d, sel);
        goto out;
    }
    if (rc) {
        fail_td(c, rc, &e, NULL);
        goto out;
    }
    char detail[400];
    snprintf(detail, sizeof detail, "%s %s %s", d, sel, k.algo);
    audit(c, "dkim.keygen", "dkim_key", k.id, detail);
    reply(c, 201, j_dkim(&k, value));
out:
    if (pem) {
        memset(pem, 0, strlen(pem));
        free(pem);
    }
    free(value);
    free(sel);
    free(d);
}

/* ---- users and teams ---------------------------------------------------------------- */

static int coll_user(void *ud, const user_rec *u)
{
    coll *k = ud;
    if (perm_allow(&k->c->actor, PERM_USER, PERM_READ, u->id, u->team_id))
        coll_add(k, u->id, j_user(u));
    return 0;
}

static void h_users(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_user_each(c->s, coll_user, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static void h_user_get(api_call *c)
{
    user_rec u = {0};
    td_error e = {0};
    int rc = store_user_get(c->s, c->id, &u, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else if (allowed(c, PERM_USER, PERM_READ, u.id, u.team_id))
        reply(c, 200, j_user(&u));
    user_rec_clear(&u);
}

static void h_user_create(api_call *c)
{
    const char *email = NULL, *name = "", *role = NULL, *pw = NULL;
    int64_t team = 0;
    if (only(c, "email", "name", "role", "team_id", "password", NULL) ||
        f_str(c, "email", true, 320, &email) || f_str(c, "name", false, 256, &name) ||
        f_str(c, "role", true, 20, &role) || f_int(c, "team_id", false, 0, INT64_MAX, &team, NULL) ||
        f_str(c, "password", false, 1024, &pw) || text(c, "name", name, 256))
        return;
    if (!model_role_ok(role)) {
        fail(c, 422, "invalid", "role",
             "role is admin, director, designer, operator, seller or responder");
        return;
    }
    if (pw && strlen(pw) < PASSWORD_MIN) {
        fail(c, 422, "invalid", "password", "a password has at least %d characters",
             PASSWORD_MIN);
        return;
    }
    if (!allowed(c, PERM_USER, PERM_CREATE, 0, team))
        return;
    td_error e = {0};
    char *norm = subscriber_email(email, strlen(email), &e), *hash = NULL;
    if (!norm) {
        fail(c, 422, "invalid", "email", "%s", e.msg);
        return;
    }
    team_rec t = {0};
    int rc = team ? store_team_get(c->s, team, &t, &e) : 0;
    team_rec_clear(&t);
    if (rc == TD_ENOTFOUND) {
        fail(c, 422, "invalid", "team_id", "there is no team %lld", (long long)team);
        goto out;
    }
    if (!rc && pw && !(hash = secret_hash_password(pw, strlen(pw), &e)))
        rc = TD_EINVAL;
    user_rec u = {.email = norm, .name = (char *)name, .role = (char *)role, .team_id = team,
                  .password_hash = hash};
    int64_t id = 0;
    if (!rc)
        rc = store_user_add(c->s, &u, &id, &e);
    if (rc) {
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "email" : NULL);
        goto out;
    }
    audit(c, "user.add", "user", id, role);
    u.id = id;
    u.created_at = c->now;
    reply(c, 201, j_user(&u));
out:
    free(hash);
    free(norm);
}

static int coll_team(void *ud, const team_rec *t)
{
    coll *k = ud;
    if (perm_allow(&k->c->actor, PERM_TEAM, PERM_READ, 0, t->id))
        coll_add(k, t->id, j_team(t));
    return 0;
}

static void h_teams(api_call *c)
{
    page p;
    if (get_page(c, &p))
        return;
    coll k = {.c = c};
    td_error e = {0};
    int rc = store_team_each(c->s, coll_team, &k, &e);
    if (rc) {
        coll_free(&k);
        fail_td(c, rc, &e, NULL);
        return;
    }
    coll_reply(&k, &p);
}

static void h_team_get(api_call *c)
{
    team_rec t = {0};
    td_error e = {0};
    int rc = store_team_get(c->s, c->id, &t, &e);
    if (rc)
        fail_td(c, rc, &e, NULL);
    else if (allowed(c, PERM_TEAM, PERM_READ, 0, t.id))
        reply(c, 200, j_team(&t));
    team_rec_clear(&t);
}

static void h_team_create(api_call *c)
{
    const char *name = NULL, *model = "central";
    int64_t parent = 0;
    if (only(c, "name", "model", "parent_id", NULL) || f_str(c, "name", true, NAME_MAX_LEN, &name) ||
        f_str(c, "model", false, 20, &model) ||
        f_int(c, "parent_id", false, 0, INT64_MAX, &parent, NULL) ||
        text(c, "name", name, NAME_MAX_LEN) || !allowed(c, PERM_TEAM, PERM_CREATE, 0, 0))
        return;
    if (!model_team_model_ok(model)) {
        fail(c, 422, "invalid", "model", "model is central, catalyst or local");
        return;
    }
    team_rec t = {.name = (char *)name, .model = (char *)model, .parent_id = parent};
    int64_t id = 0;
    td_error e = {0};
    int rc = store_team_add(c->s, &t, &id, &e);
    if (rc) {
        fail_td(c, rc, &e, rc == TD_EEXISTS ? "name" : rc == TD_EINVAL ? "parent_id" : NULL);
        return;
    }
    audit(c, "team.add", "team", id, model);
    team_rec got = {0};
    if ((rc = store_team_get(c->s, id, &got, &e)))
        fail_td(c, rc, &e, NULL);
    else
        reply(c, 201, j_team(&got));
    team_rec_clear(&got);
}

/* ---- the route table ------------------------------------------------------------------- */

enum body_kind { B_NONE, B_JSON, B_CSV };

static void h_openapi(api_call *c);

static const struct api_route {
    const char *method;
    const char *path; /* {id}: a positive integer; {name}: a template's name */
    api_fn fn;
    enum body_kind body;
    const char *schema; /* the request body's schema in the document */
    int ok;             /* the status of success */
    bool paged;
    bool public;        /* no authentication */
    const char *tag, *summary;
} routes[] = {
    {"GET", "/api/v1/openapi.json", h_openapi, B_NONE, NULL, 200, false, true, "meta", "This document"},
    {"GET", "/api/v1/me", h_me, B_NONE, NULL, 200, false, false, "accounts", "Who is asking, with the session's CSRF token"},
    {"GET", "/api/v1/tokens", h_tokens, B_NONE, NULL, 200, true, false, "accounts", "API tokens (one's own; an admin sees all)"},
    {"POST", "/api/v1/tokens", h_token_create, B_JSON, "TokenIn", 201, false, false, "accounts", "Make an API token (shown once)"},
    {"DELETE", "/api/v1/tokens/{id}", h_token_delete, B_NONE, NULL, 204, false, false, "accounts", "Revoke an API token"},
    {"GET", "/api/v1/subscribers", h_subs, B_NONE, NULL, 200, true, false, "subscribers", "Subscribers one may see"},
    {"POST", "/api/v1/subscribers", h_sub_create, B_JSON, "SubscriberIn", 201, false, false, "subscribers", "Add a subscriber (and memberships)"},
    {"GET", "/api/v1/subscribers/{id}", h_sub_get, B_NONE, NULL, 200, false, false, "subscribers", "A subscriber with their lists"},
    {"PATCH", "/api/v1/subscribers/{id}", h_sub_update, B_JSON, "SubscriberPatch", 200, false, false, "subscribers", "Change a subscriber"},
    {"DELETE", "/api/v1/subscribers/{id}", h_sub_delete, B_NONE, NULL, 204, false, false, "subscribers", "Delete a subscriber"},
    {"GET", "/api/v1/lists", h_lists, B_NONE, NULL, 200, true, false, "lists", "Lists one may see, with member counts"},
    {"POST", "/api/v1/lists", h_list_create, B_JSON, "ListIn", 201, false, false, "lists", "Make a list"},
    {"GET", "/api/v1/lists/{id}", h_list_get, B_NONE, NULL, 200, false, false, "lists", "A list"},
    {"DELETE", "/api/v1/lists/{id}", h_list_delete, B_NONE, NULL, 204, false, false, "lists", "Delete a list (409 while a campaign uses it)"},
    {"POST", "/api/v1/lists/{id}/import", h_list_import, B_CSV, NULL, 200, false, false, "lists", "Import a CSV file (text/csv) into the list; ?mode=subscribe|upsert"},
    {"GET", "/api/v1/templates", h_templates, B_NONE, NULL, 200, true, false, "templates", "Templates (content blocks); ?kind=article|product"},
    {"POST", "/api/v1/templates", h_template_create, B_JSON, "TemplateIn", 201, false, false, "templates", "Make a template"},
    {"GET", "/api/v1/templates/{name}", h_template_get, B_NONE, NULL, 200, false, false, "templates", "A template with its body"},
    {"PUT", "/api/v1/templates/{name}", h_template_put, B_JSON, "TemplatePut", 200, false, false, "templates", "Replace a template"},
    {"DELETE", "/api/v1/templates/{name}", h_template_delete, B_NONE, NULL, 204, false, false, "templates", "Delete a template"},
    {"GET", "/api/v1/campaigns", h_campaigns, B_NONE, NULL, 200, true, false, "campaigns", "Campaigns one may see"},
    {"POST", "/api/v1/campaigns", h_campaign_create, B_JSON, "CampaignIn", 201, false, false, "campaigns", "Make a draft campaign"},
    {"GET", "/api/v1/campaigns/{id}", h_campaign_get, B_NONE, NULL, 200, false, false, "campaigns", "A campaign"},
    {"PATCH", "/api/v1/campaigns/{id}", h_campaign_update, B_JSON, "CampaignPatch", 200, false, false, "campaigns", "Change a draft"},
    {"POST", "/api/v1/campaigns/{id}/schedule", h_campaign_schedule, B_JSON, "Schedule", 200, false, false, "campaigns", "Schedule a draft for send_at"},
    {"POST", "/api/v1/campaigns/{id}/start", h_campaign_start, B_NONE, NULL, 200, false, false, "campaigns", "Start (or schedule, if its time is ahead)"},
    {"POST", "/api/v1/campaigns/{id}/pause", h_campaign_pause, B_NONE, NULL, 200, false, false, "campaigns", "Pause a running campaign"},
    {"POST", "/api/v1/campaigns/{id}/resume", h_campaign_resume, B_NONE, NULL, 200, false, false, "campaigns", "Resume a paused campaign"},
    {"POST", "/api/v1/campaigns/{id}/cancel", h_campaign_cancel, B_NONE, NULL, 200, false, false, "campaigns", "Cancel a campaign"},
    {"POST", "/api/v1/campaigns/{id}/retry", h_campaign_retry, B_NONE, NULL, 200, false, false, "campaigns", "Queue the failed recipients again"},
    {"GET", "/api/v1/campaigns/{id}/stats", h_campaign_stats, B_NONE, NULL, 200, false, false, "campaigns", "Deliveries and events"},
    {"GET", "/api/v1/campaigns/{id}/failures", h_campaign_failures, B_NONE, NULL, 200, true, false, "campaigns", "Recipients that failed for good"},
    {"GET", "/api/v1/replies", h_replies, B_NONE, NULL, 200, true, false, "replies", "Replies to campaigns (the inbox)"},
    {"GET", "/api/v1/relays", h_relays, B_NONE, NULL, 200, true, false, "relays", "Relays (passwords masked)"},
    {"POST", "/api/v1/relays", h_relay_create, B_JSON, "RelayIn", 201, false, false, "relays", "Add a relay"},
    {"DELETE", "/api/v1/relays/{id}", h_relay_delete, B_NONE, NULL, 204, false, false, "relays", "Remove a relay"},
    {"GET", "/api/v1/dkim-keys", h_dkim_keys, B_NONE, NULL, 200, true, false, "dkim", "DKIM keys with their DNS records (never the private key)"},
    {"POST", "/api/v1/dkim-keys", h_dkim_keygen, B_JSON, "DkimIn", 201, false, false, "dkim", "Make a DKIM key"},
    {"GET", "/api/v1/users", h_users, B_NONE, NULL, 200, true, false, "users", "Users one may see"},
    {"POST", "/api/v1/users", h_user_create, B_JSON, "UserIn", 201, false, false, "users", "Add a user"},
    {"GET", "/api/v1/users/{id}", h_user_get, B_NONE, NULL, 200, false, false, "users", "A user"},
    {"GET", "/api/v1/teams", h_teams, B_NONE, NULL, 200, true, false, "teams", "Teams one may see"},
    {"POST", "/api/v1/teams", h_team_create, B_JSON, "TeamIn", 201, false, false, "teams", "Add a team"},
    {"GET", "/api/v1/teams/{id}", h_team_get, B_NONE, NULL, 200, false, false, "teams", "A team"},
};
#define NROUTES (sizeof routes / sizeof routes[0])

size_t api_route_count(void)
{
    return NROUTES;
}

void api_route_at(size_t i, const char **method, const char **path)
{
    *method = i < NROUTES ? routes[i].method : NULL;
    *path = i < NROUTES ? routes[i].path : NULL;
}

/* match_path matches path (without the /api/v1 prefix's "/api/v1") against
 * pattern, filling c's {id} and {name}. */
static bool match_path(const char *pattern, const char *path, api_call *c)
{
    const char *p = pattern + sizeof API_PREFIX - 1, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t n = strcspn(s, "/");
            if (!pe)
                return false;
            if (!strncmp(p, "{id}", 4)) {
                char num[24];
                int64_t v;
                if (n == 0 || n >= sizeof num)
                    return false;
                memcpy(num, s, n);
                num[n] = '\0';
                if (parse_u64(num, INT64_MAX, &v) || v < 1)
                    return false;
                c->id = v;
            } else {
                char nm[BLOCK_MAX_NAME + 1];
                if (n == 0 || n > BLOCK_MAX_NAME)
                    return false;
                memcpy(nm, s, n);
                nm[n] = '\0';
                if (!model_block_name_ok(nm))
                    return false;
                memcpy(c->name, nm, n + 1);
            }
            p = pe + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return !*p && !*s;
}

static bool is_json(const char *ct)
{
    return ct && !strncasecmp(ct, ctype_json, sizeof ctype_json - 1) &&
           (ct[sizeof ctype_json - 1] == '\0' || ct[sizeof ctype_json - 1] == ';');
}

int api_match(const char *method, const char *path, int64_t *id, char name[BLOCK_MAX_NAME + 1],
              char *allow, size_t allow_cap)
{
    api_call c = {0};
    /* HEAD is answered as GET (MHD sends no body). */
    if (!strcmp(method, "HEAD"))
        method = "GET";
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        if (!match_path(routes[i].path, path, &c))
            continue;
        if (!strcmp(routes[i].method, method)) {
            *id = c.id;
            memcpy(name, c.name, sizeof c.name);
            return (int)i;
        }
        size_t al = strlen(allow);
        snprintf(allow + al, allow_cap - al, "%s%s", al ? ", " : "", routes[i].method);
    }
    return -1;
}

void api_handle(store *s, const api_env *env, const http_req *req, http_resp *resp)
{
    api_call c = {.s = s, .env = env, .req = req, .resp = resp, .now = (int64_t)time(NULL)};
    char path[ROUTER_ARG_MAX + 2];
    path[0] = '/';
    memcpy(path + 1, req->m.arg, req->m.arg_len);
    path[req->m.arg_len + 1] = '\0';
    static _Thread_local char allow[80];
    int at = api_match(req->method, path, &c.id, c.name, allow, sizeof allow);
    const struct api_route *rt = at >= 0 ? &routes[at] : NULL;
    if (!rt && allow[0]) {
        resp->allow = allow;
        fail(&c, 405, "method_not_allowed", NULL, "%s is not allowed here (allowed: %s)",
             req->method, allow);
        return;
    }
    if (!rt) {
        fail(&c, 404, "not_found", NULL, "there is no such API path");
        return;
    }
    td_error e = {0};
    if (!rt->public) {
        int rc = auth_request(s, req, c.now, &c.who, &e);
        if (rc == TD_EDENIED) {
            fail(&c, 401, "unauthenticated", NULL, "%s", e.msg);
            goto out;
        }
        if (rc) {
            fail_td(&c, rc, &e, NULL);
            goto out;
        }
        if (!auth_csrf_ok(req, &c.who)) {
            fail(&c, 403, "csrf", NULL, "a request with the session cookie that changes "
                                        "something needs the X-CSRF-Token header (GET /api/v1/me "
                                        "gives it)");
            goto out;
        }
        c.actor = (perm_actor){.role = c.who.user.role, .user_id = c.who.user.id,
                               .team_id = c.who.user.team_id};
    }
    if (rt->body == B_JSON) {
        if (!is_json(req->content_type)) {
            fail(&c, 415, "bad_content_type", NULL, "send the body as application/json");
            goto out;
        }
        json_error_t je;
        c.body = json_loadb(req->body ? req->body : "", req->body_len,
                            JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!c.body) {
            fail(&c, 400, "bad_json", NULL, "the body is not JSON: %s (line %d, column %d)",
                 je.text, je.line, je.column);
            goto out;
        }
        if (!json_is_object(c.body)) {
            fail(&c, 400, "wrong_type", NULL, "the body must be a JSON object");
            goto out;
        }
    }
    rt->fn(&c);
out:
    json_decref(c.body);
    auth_ctx_clear(&c.who);
}

/* ---- login and logout -------------------------------------------------------------------- */

static void html_page(http_resp *r, int status, const char *title)
{
    r->status = status;
    r->ctype = html_type;
    r->no_cache = true;
    buf_reset(&r->body);
    buf_puts(&r->body, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    html_escape_str(&r->body, title);
    buf_puts(&r->body, "</title></head><body>\n<h1>");
    html_escape_str(&r->body, title);
    buf_puts(&r->body, "</h1>\n");
}

static void login_form(http_resp *r, int status, const char *error, const char *email)
{
    html_page(r, status, "Sign in");
    if (error) {
        buf_puts(&r->body, "<p role=\"alert\"><strong>");
        html_escape_str(&r->body, error);
        buf_puts(&r->body, "</strong></p>\n");
    }
    buf_puts(&r->body, "<form method=\"post\" action=\"/login\">\n<label>Email <input "
                       "type=\"email\" name=\"email\" required maxlength=\"320\" value=\"");
    html_escape_str(&r->body, email);
    buf_puts(&r->body, "\"></label>\n<label>Password <input type=\"password\" name=\"password\" "
                       "required></label>\n<button type=\"submit\">Sign in</button>\n</form>\n"
                       "</body></html>\n");
}

static bool is_form(const char *ct)
{
    return ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

void api_login(store *s, const api_env *env, const http_req *req, http_resp *resp)
{
    api_call c = {.s = s, .env = env, .req = req, .resp = resp, .now = (int64_t)time(NULL)};
    if (strcmp(req->method, "POST")) {
        login_form(resp, 200, NULL, "");
        return;
    }
    bool form = is_form(req->content_type);
    const char *email = NULL, *pw = NULL;
    if (form) {
        email = http_form_get(req, "email");
        pw = http_form_get(req, "password");
    } else if (is_json(req->content_type)) {
        json_error_t je;
        c.body = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES,
                            &je);
        if (!c.body || !json_is_object(c.body)) {
            fail(&c, 400, "bad_json", NULL, "the body is not a JSON object");
            goto out;
        }
        if (f_str(&c, "email", true, 320, &email) || f_str(&c, "password", true, 1024, &pw))
            goto out;
    } else {
        fail(&c, 415, "bad_content_type", NULL,
             "send email and password as a form or as application/json");
        goto out;
    }
    if (!email || !pw || !*email || !*pw) {
        if (form)
            login_form(resp, 422, "Give your email and your password.", email ? email : "");
        else
            fail(&c, 422, "required", !email || !*email ? "email" : "password",
                 "email and password are required");
        goto out;
    }
    td_error e = {0};
    char *token = NULL;
    int rc = auth_login(s, email, pw, req->peer, c.now, &c.who, &token, &e);
    if (rc == TD_ETOOBIG) {
        resp->retry_after = AUTH_FAIL_WINDOW;
        if (form)
            login_form(resp, 429, e.msg, email);
        else
            fail(&c, 429, "rate_limited", NULL, "%s", e.msg);
        goto out;
    }
    if (rc == TD_EDENIED) {
        if (form)
            login_form(resp, 401, e.msg, email);
        else
            fail(&c, 401, "unauthenticated", NULL, "%s", e.msg);
        goto out;
    }
    if (rc) {
        fail_td(&c, rc, &e, NULL);
        goto out;
    }
    resp->set_cookie = auth_cookie(token, env->secure);
    free(token);
    if (form) {
        html_page(resp, 200, "Signed in");
        buf_puts(&resp->body, "<p>Signed in as ");
        html_escape_str(&resp->body, c.who.user.name && *c.who.user.name ? c.who.user.name
                                                                          : c.who.user.email);
        buf_puts(&resp->body, ".</p>\n<form method=\"post\" action=\"/logout\">"
                              "<input type=\"hidden\" name=\"csrf_token\" value=\"");
        html_escape_str(&resp->body, c.who.csrf);
        buf_puts(&resp->body, "\"><button type=\"submit\">Sign out</button></form>\n"
                              "</body></html>\n");
    } else {
        json_t *o = j_user(&c.who.user);
        reply(&c, 200, json_pack("{s:o, s:s, s:I}", "user", o, "csrf_token", c.who.csrf,
                                 "expires_at", (json_int_t)c.who.expires_at));
    }
out:
    json_decref(c.body);
    auth_ctx_clear(&c.who);
}

void api_logout(store *s, const api_env *env, const http_req *req, http_resp *resp)
{
    api_call c = {.s = s, .env = env, .req = req, .resp = resp, .now = (int64_t)time(NULL)};
    td_error e = {0};
    int rc = auth_request(s, req, c.now, &c.who, &e);
    if (rc == TD_EDENIED)
        fail(&c, 401, "unauthenticated", NULL, "%s", e.msg);
    else if (rc)
        fail_td(&c, rc, &e, NULL);
    else if (!c.who.session)
        fail(&c, 400, "no_session", NULL, "a token has no session: revoke it instead");
    else if (!auth_csrf_ok(req, &c.who))
        fail(&c, 403, "csrf", NULL, "signing out needs the session's CSRF token");
    else if ((rc = auth_logout(s, &c.who, &e)))
        fail_td(&c, rc, &e, NULL);
    else {
        resp->set_cookie = auth_cookie(NULL, env->secure);
        if (is_form(req->content_type)) {
            html_page(resp, 200, "Signed out");
            buf_puts(&resp->body, "<p><a href=\"/login\">Sign in again</a></p>\n</body></html>\n");
        } else {
            reply(&c, 200, json_pack("{s:b}", "signed_out", 1));
        }
    }
    auth_ctx_clear(&c.who);
}

/* ---- the OpenAPI document ------------------------------------------------------------- */

/* The request bodies, as JSON Schema. */
static const struct {
    const char *name, *schema;
} schemas[] = {
    {"Error", "{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{\"type\":"
              "\"object\",\"required\":[\"code\",\"message\"],\"properties\":{\"code\":{\"type\":"
              "\"string\"},\"message\":{\"type\":\"string\"},\"field\":{\"type\":[\"string\","
              "\"null\"]}}}}}"},
    {"Login", "{\"type\":\"object\",\"required\":[\"email\",\"password\"],\"properties\":{"
              "\"email\":{\"type\":\"string\"},\"password\":{\"type\":\"string\"}}}"},
    {"TokenIn", "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":"
                "200},\"expires_in\":{\"type\":\"integer\",\"minimum\":60}}}"},
    {"SubscriberIn", "{\"type\":\"object\",\"required\":[\"email\"],\"properties\":{\"email\":{"
                     "\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"attributes\":{\"type\":"
                     "\"object\"},\"status\":{\"enum\":[\"enabled\",\"blocklisted\"]},\"timezone\":"
                     "{\"type\":\"string\"},\"locale\":{\"type\":\"string\"},\"lists\":{\"type\":"
                     "\"array\",\"items\":{\"type\":\"integer\"}},\"owner_id\":{\"type\":"
                     "\"integer\"},\"team_id\":{\"type\":\"integer\"}}}"},
    {"SubscriberPatch", "{\"type\":\"object\",\"properties\":{\"email\":{\"type\":\"string\"},"
                        "\"name\":{\"type\":\"string\"},\"attributes\":{\"type\":\"object\"},"
                        "\"status\":{\"enum\":[\"enabled\",\"blocklisted\"]},\"timezone\":{"
                        "\"type\":\"string\"},\"locale\":{\"type\":\"string\"},\"owner_id\":{"
                        "\"type\":\"integer\"},\"team_id\":{\"type\":\"integer\"}}}"},
    {"ListIn", "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":"
               "\"string\"},\"optin\":{\"enum\":[\"single\",\"double\"]},\"visibility\":{\"enum\":"
               "[\"public\",\"private\"]},\"owner_id\":{\"type\":\"integer\"},\"team_id\":{"
               "\"type\":\"integer\"}}}"},
    {"TemplateIn", "{\"type\":\"object\",\"required\":[\"name\",\"kind\",\"title\",\"body\"],"
                   "\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{1,64}$\"},"
                   "\"kind\":{\"enum\":[\"article\",\"product\"]},\"title\":{\"type\":\"string\"},"
                   "\"body\":{\"type\":\"string\"},\"data\":{\"type\":\"object\"},\"owner_id\":{"
                   "\"type\":\"integer\"},\"team_id\":{\"type\":\"integer\"}}}"},
    {"TemplatePut", "{\"type\":\"object\",\"required\":[\"kind\",\"title\",\"body\"],"
                    "\"properties\":{\"kind\":{\"enum\":[\"article\",\"product\"]},\"title\":{"
                    "\"type\":\"string\"},\"body\":{\"type\":\"string\"},\"data\":{\"type\":"
                    "\"object\"},\"team_id\":{\"type\":\"integer\"}}}"},
    {"CampaignIn", "{\"type\":\"object\",\"required\":[\"name\",\"subject\",\"from\",\"lists\"],"
                   "\"properties\":{\"name\":{\"type\":\"string\"},\"subject\":{\"type\":"
                   "\"string\"},\"from\":{\"type\":\"string\"},\"reply_to\":{\"type\":\"string\"},"
                   "\"html\":{\"type\":\"string\"},\"text\":{\"type\":\"string\"},\"lists\":{"
                   "\"type\":\"array\",\"items\":{\"type\":\"integer\"}},\"track_opens\":{\"type\":"
                   "\"boolean\"},\"track_clicks\":{\"type\":\"boolean\"},\"send_at\":{\"type\":"
                   "\"integer\"},\"owner_id\":{\"type\":\"integer\"},\"team_id\":{\"type\":"
                   "\"integer\"}}}"},
    {"CampaignPatch", "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                      "\"subject\":{\"type\":\"string\"},\"from\":{\"type\":\"string\"},"
                      "\"reply_to\":{\"type\":\"string\"},\"html\":{\"type\":\"string\"},\"text\":"
                      "{\"type\":\"string\"},\"lists\":{\"type\":\"array\",\"items\":{\"type\":"
                      "\"integer\"}},\"track_opens\":{\"type\":\"boolean\"},\"track_clicks\":{"
                      "\"type\":\"boolean\"},\"send_at\":{\"type\":\"integer\"}}}"},
    {"Schedule", "{\"type\":\"object\",\"required\":[\"send_at\"],\"properties\":{\"send_at\":{"
                 "\"type\":\"integer\",\"description\":\"unix time, in the future\"}}}"},
    {"RelayIn", "{\"type\":\"object\",\"required\":[\"url\"],\"properties\":{\"url\":{\"type\":"
                "\"string\"},\"max_conns\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000},"
                "\"rate\":{\"type\":\"number\",\"minimum\":0}}}"},
    {"DkimIn", "{\"type\":\"object\",\"required\":[\"domain\",\"selector\"],\"properties\":{"
               "\"domain\":{\"type\":\"string\"},\"selector\":{\"type\":\"string\"},\"algo\":{"
               "\"enum\":[\"rsa\",\"ed25519\"]}}}"},
    {"UserIn", "{\"type\":\"object\",\"required\":[\"email\",\"role\"],\"properties\":{\"email\":"
               "{\"type\":\"string\"},\"name\":{\"type\":\"string\"},\"role\":{\"enum\":[\"admin\","
               "\"director\",\"designer\",\"operator\",\"seller\",\"responder\"]},\"team_id\":{"
               "\"type\":\"integer\"},\"password\":{\"type\":\"string\",\"minLength\":10}}}"},
    {"TeamIn", "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":"
               "\"string\"},\"model\":{\"enum\":[\"central\",\"catalyst\",\"local\"]},"
               "\"parent_id\":{\"type\":\"integer\"}}}"},
};

static json_t *errors_ref(void)
{
    return json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "an error", "content",
                     "application/json", "schema", "$ref", "#/components/schemas/Error");
}

static json_t *operation(const struct api_route *r)
{
    char op[120];
    snprintf(op, sizeof op, "%s %s", r->method, r->path + sizeof API_PREFIX - 1);
    char okc[8];
    snprintf(okc, sizeof okc, "%d", r->ok);
    json_t *o = json_pack("{s:s, s:s, s:[s], s:{s:{s:s}, s:o}}", "operationId", op, "summary",
                          r->summary, "tags", r->tag, "responses", okc, "description",
                          r->ok == 204 ? "done, no content" : "done", "default", errors_ref());
    json_t *params = json_array();
    if (strstr(r->path, "{id}"))
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s, s:i}}", "name", "id",
                                                "in", "path", "required", 1, "schema", "type",
                                                "integer", "minimum", 1));
    if (strstr(r->path, "{name}"))
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", "name",
                                                "in", "path", "required", 1, "schema", "type",
                                                "string", "pattern", "^[a-z0-9-]{1,64}$"));
    if (r->paged) {
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "name", "limit",
                                                "in", "query", "schema", "type", "integer",
                                                "minimum", 1, "maximum", PAGE_MAX));
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s, s:i}}", "name", "after", "in",
                                                "query", "schema", "type", "integer", "minimum",
                                                0));
    }
    if (json_array_size(params))
        json_object_set_new(o, "parameters", params);
    else
        json_decref(params);
    if (r->body == B_JSON) {
        char ref[80];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", r->schema);
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content",
                                      "application/json", "schema", "$ref", ref));
    } else if (r->body == B_CSV) {
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content",
                                      "text/csv", "schema", "type", "string"));
    }
    if (r->public)
        json_object_set_new(o, "security", json_array());
    return o;
}

char *api_openapi(void)
{
    json_t *paths = json_object();
    for (size_t i = 0; i < NROUTES; i++) {
        json_t *item = json_object_get(paths, routes[i].path);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, routes[i].path, item);
        }
        char m[10];
        size_t n = strlen(routes[i].method);
        for (size_t j = 0; j <= n && j < sizeof m; j++)
            m[j] = (char)tolower((unsigned char)routes[i].method[j]);
        json_object_set_new(item, m, operation(&routes[i]));
    }
    json_object_set_new(
        paths, "/login",
        json_pack("{s:{s:s, s:s, s:[s], s:o, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:o}, s:[]}}",
                  "post", "operationId", "POST /login", "summary",
                  "Sign in: a session cookie and the CSRF token (form fields or JSON)", "tags",
                  "accounts", "requestBody",
                  json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content",
                            "application/json", "schema", "$ref", "#/components/schemas/Login"),
                  "responses", "200", "description", "signed in", "401", "description",
                  "wrong email or password", "429", "description", "too many failures",
                  "default", errors_ref(), "security"));
    json_object_set_new(paths, "/logout",
                        json_pack("{s:{s:s, s:s, s:[s], s:{s:{s:s}, s:o}}}", "post",
                                  "operationId", "POST /logout", "summary",
                                  "Sign out (needs the CSRF token)", "tags", "accounts",
                                  "responses", "200", "description", "signed out", "default",
                                  errors_ref()));
    json_t *comp = json_object();
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        json_error_t je;
        json_t *v = json_loads(schemas[i].schema, 0, &je);
        if (!v) {
            log_error("api: schema %s: %s", schemas[i].name, je.text);
            continue;
        }
        json_object_set_new(comp, schemas[i].name, v);
    }
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:{s:o, s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}}}, "
        "s:[{s:[]}, {s:[]}]}",
        "openapi", "3.0.3", "info", "title", "Tidings API", "version", "1",
        "description", "Session (cookie + X-CSRF-Token) or Bearer token. Errors are "
                       "{\"error\":{\"code\",\"message\",\"field\"}}. Lists are paged by id "
                       "(?limit, ?after).",
        "servers", "url", "/", "paths", paths, "components", "schemas", comp, "securitySchemes",
        "bearer", "type", "http", "scheme", "bearer", "session", "type", "apiKey", "in",
        "cookie", "name", AUTH_COOKIE, "security", "bearer", "session");
    char *t = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return t;
}

static void h_openapi(api_call *c)
{
    char *t = api_openapi();
    http_resp *r = c->resp;
    r->status = t ? 200 : 500;
    r->ctype = ctype_json;
    buf_reset(&r->body);
    if (t)
        buf_puts(&r->body, t);
    free(t);
}
