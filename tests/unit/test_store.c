/* Unit tests for store (the storage interface, SQLite backend): opening and
 * migrations (an older database upgrades in place and keeps its data), CRUD
 * of teams, users, lists, subscribers and memberships, the schema's
 * constraints, suppressions and the audit log, the bulk import API in each
 * mode, and hostile text (SQL metacharacters) stored verbatim. Every test
 * works on a fresh database in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/err.h"

/* ---- fixture: a fresh database in a temporary directory ---------------- */

struct fx {
    char dir[64];
    char path[96];
    store *s;
};

static void rm_db(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/tdstore.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    return f;
}

static void fx_free(struct fx *f)
{
    store_close(f->s);
    rm_db(f->path);
    char p[128];
    snprintf(p, sizeof p, "%s/junk", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
}

static int setup(void **state)
{
    struct fx *f = fx_new();
    td_error e = {0};
    if (store_open(f->path, &f->s, &e)) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_nodb(void **state)
{
    *state = fx_new();
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

#define S(state) (((struct fx *)*(state))->s)

/* Helpers that add a record and assert success, returning the id. */
static int64_t add_team(store *s, const char *name, const char *model, int64_t parent)
{
    team_rec t = {.name = (char *)name, .model = (char *)model, .parent_id = parent};
    int64_t id = 0;
    td_error e = {0};
    int rc = store_team_add(s, &t, &id, &e);
    if (rc)
        fail_msg("team_add(%s): %s", name, e.msg);
    assert_true(id > 0);
    return id;
}

static int64_t add_user(store *s, const char *email, const char *role, int64_t team)
{
    user_rec u = {.email = (char *)email, .name = "U", .role = (char *)role, .team_id = team};
    int64_t id = 0;
    td_error e = {0};
    if (store_user_add(s, &u, &id, &e))
        fail_msg("user_add(%s): %s", email, e.msg);
    return id;
}

static int64_t add_list(store *s, const char *name, const char *optin)
{
    list_rec l = {.name = (char *)name, .optin = (char *)optin, .visibility = "private"};
    int64_t id = 0;
    td_error e = {0};
    if (store_list_add(s, &l, &id, &e))
        fail_msg("list_add(%s): %s", name, e.msg);
    return id;
}

static int64_t add_sub(store *s, const char *email, const char *name)
{
    sub_rec r = {.email = (char *)email, .name = (char *)name, .attribs = "{\"a\":1}"};
    int64_t id = 0;
    td_error e = {0};
    if (store_sub_add(s, &r, &id, &e))
        fail_msg("sub_add(%s): %s", email, e.msg);
    return id;
}

static store_counts counts(store *s)
{
    store_counts c;
    td_error e = {0};
    assert_int_equal(store_counts_get(s, &c, &e), TD_OK);
    return c;
}

/* Collects a list's members as "email=status" lines. */
struct members {
    char text[4096];
    int n;
};

static int collect_member(void *ud, const member_rec *m)
{
    struct members *x = ud;
    size_t len = strlen(x->text);
    snprintf(x->text + len, sizeof x->text - len, "%s=%s;", m->sub.email, m->status);
    x->n++;
    return 0;
}

static struct members members_of(store *s, int64_t list)
{
    struct members x = {{0}, 0};
    td_error e = {0};
    assert_int_equal(store_member_each(s, list, collect_member, &x, &e), TD_OK);
    return x;
}

/* sql_text runs a one-value query on the database file behind the store's
 * back, for what the interface has no reader for (audit log, suppression
 * reasons, sqlite_master). Returns a malloc'd string or NULL. */
static char *sql_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *out = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* ---- open and migrations ------------------------------------------------ */

static void test_open_refusals(void **state)
{
    struct fx *f = *state;
    char junk[128], newer[128];
    snprintf(junk, sizeof junk, "%s/junk", f->dir);
    FILE *j = fopen(junk, "wb");
    assert_non_null(j);
    for (int i = 0; i < 256; i++)
        fputs("this is not a database, it is a text file\n", j);
    fclose(j);

    /* A database from a newer tidings: refuse it rather than damage it. */
    snprintf(newer, sizeof newer, "%s", f->path);
    store *s = NULL;
    assert_int_equal(store_open(newer, &s, NULL), TD_OK);
    store_close(s);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, 0)",
             store_latest_version() + 1);
    sql_exec(newer, sql);

    static const struct {
        const char *loc;
        int code;
        const char *msg; /* a word the message must hold */
    } cases[] = {
        {"", TD_EINVAL, "location"},
        {"postgres://localhost/tidings", TD_EINVAL, "PostgreSQL"},
        {"postgresql://localhost/tidings", TD_EINVAL, "PostgreSQL"},
        {"/nonexistent-dir/sub/t.db", TD_EIO, "cannot open"},
        {NULL, TD_EINVAL, "newer"},                  /* newer schema */
        {NULL, TD_EINVAL, "not a Tidings database"}, /* junk file */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *loc = cases[i].loc ? cases[i].loc : i == 4 ? newer : junk;
        td_error e = {0};
        s = (store *)1;
        int rc = store_open(loc, &s, &e);
        if (rc != cases[i].code || !strstr(e.msg, cases[i].msg))
            fail_msg("case %zu (%s): got %s '%s', want %s '%s'", i, loc, td_strerror(rc), e.msg,
                     td_strerror(cases[i].code), cases[i].msg);
        assert_null(s);
    }
    assert_int_equal(store_open(NULL, &s, NULL), TD_EINVAL);
}

static void test_migration_upgrade(void **state)
{
    struct fx *f = *state;
    td_error e = {0};
    store *s = NULL;
    int v = -1;
    assert_true(store_latest_version() >= 2);

    /* Version 1: the core tables only. */
    assert_int_equal(store_open_at_version(f->path, 1, &s, &e), TD_OK);
    assert_int_equal(store_schema_version(s, &v, &e), TD_OK);
    assert_int_equal(v, 1);
    int64_t team = add_team(s, "Head Office", "central", 0);
    int64_t user = add_user(s, "seller@example.com", "seller", team);
    int64_t list = add_list(s, "News", "double");
    int64_t sub = add_sub(s, "ann@example.com", "Ann");
    assert_int_equal(store_member_set(s, list, sub, "unconfirmed", false, NULL, &e), TD_OK);
    assert_int_equal(store_setting_set(s, "secret", "abc", &e), TD_OK);
    /* Suppressions arrive with version 2. */
    assert_int_not_equal(store_suppress_add(s, "x@example.com", "bounce", &e), TD_OK);
    store_close(s);
    s = NULL;

    /* Opening again at version 1 changes nothing. */
    assert_int_equal(store_open_at_version(f->path, 1, &s, &e), TD_OK);
    assert_int_equal(store_schema_version(s, &v, &e), TD_OK);
    assert_int_equal(v, 1);
    store_close(s);
    s = NULL;

    /* store_open upgrades in place. */
    assert_int_equal(store_open(f->path, &s, &e), TD_OK);
    assert_int_equal(store_schema_version(s, &v, &e), TD_OK);
    assert_int_equal(v, store_latest_version());
    team_rec t = {0};
    user_rec u = {0};
    sub_rec r = {0};
    char *val = NULL;
    assert_int_equal(store_team_find(s, "Head Office", &t, &e), TD_OK);
    assert_int_equal(t.id, team);
    assert_int_equal(store_user_find(s, "seller@example.com", &u, &e), TD_OK);
    assert_int_equal(u.team_id, team);
    assert_int_equal(store_sub_find(s, "ann@example.com", &r, &e), TD_OK);
    assert_string_equal(r.name, "Ann");
    assert_int_equal(store_setting_get(s, "secret", &val, &e), TD_OK);
    assert_string_equal(val, "abc");
    assert_string_equal(members_of(s, list).text, "ann@example.com=unconfirmed;");
    assert_int_equal(u.id, user);
    team_rec_clear(&t);
    user_rec_clear(&u);
    sub_rec_clear(&r);
    free(val);
    bool sup = false;
    assert_int_equal(store_suppress_add(s, "x@example.com", "bounce", &e), TD_OK);
    assert_int_equal(store_suppress_check(s, "x@example.com", &sup, &e), TD_OK);
    assert_true(sup);
    audit_rec a = {.actor = "test", .action = "x", .object_type = "team", .object_id = team};
    assert_int_equal(store_audit_add(s, &a, &e), TD_OK);
    store_close(s);
    s = NULL;

    /* Each migration is recorded once. */
    char *n = sql_text(f->path, "SELECT count(*) || ':' || max(version) FROM schema_migrations");
    char want[32];
    snprintf(want, sizeof want, "%d:%d", store_latest_version(), store_latest_version());
    assert_string_equal(n, want);
    free(n);
    /* And opening an up-to-date database again is a no-op. */
    assert_int_equal(store_open(f->path, &s, &e), TD_OK);
    assert_int_equal(counts(s).subscribers, 1);
    store_close(s);
}

static void test_pragmas(void **state)
{
    struct fx *f = *state;
    char *mode = sql_text(f->path, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    /* Foreign keys are per connection: check the store's own by their
     * effect (a membership of a missing list is refused). */
    td_error e = {0};
    int64_t sub = add_sub(f->s, "a@example.com", "A");
    assert_int_equal(store_member_set(f->s, 999, sub, "confirmed", false, NULL, &e), TD_EINVAL);
}

/* ---- teams, users, lists ---------------------------------------------------- */

static void test_teams(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t hq = add_team(s, "HQ", "central", 0);
    int64_t th = add_team(s, "Sales Thailand", "local", hq);

    static const struct {
        const char *name, *model;
        int64_t parent;
        int code;
    } bad[] = {
        {"HQ", "central", 0, TD_EEXISTS},       /* duplicate name */
        {"Other", "federal", 0, TD_EINVAL},     /* unknown model */
        {"Orphan", "local", 9999, TD_EINVAL},   /* unknown parent */
        {NULL, "local", 0, TD_EINVAL},          /* no name */
        {"No model", NULL, 0, TD_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        team_rec t = {.name = (char *)bad[i].name, .model = (char *)bad[i].model,
                      .parent_id = bad[i].parent};
        int64_t id = -7;
        int rc = store_team_add(s, &t, &id, &e);
        if (rc != bad[i].code)
            fail_msg("bad team %zu: got %s (%s), want %s", i, td_strerror(rc), e.msg,
                     td_strerror(bad[i].code));
        assert_true(e.msg[0] != '\0');
    }
    assert_int_equal(counts(s).teams, 2);

    team_rec t = {0};
    assert_int_equal(store_team_get(s, th, &t, &e), TD_OK);
    assert_string_equal(t.name, "Sales Thailand");
    assert_string_equal(t.model, "local");
    assert_int_equal(t.parent_id, hq);
    assert_true(t.created_at > 1600000000);
    team_rec_clear(&t);
    assert_int_equal(store_team_find(s, "HQ", &t, &e), TD_OK);
    assert_int_equal(t.parent_id, 0);
    team_rec_clear(&t);
    assert_int_equal(store_team_find(s, "hq", &t, &e), TD_ENOTFOUND);
    assert_int_equal(store_team_get(s, 12345, &t, &e), TD_ENOTFOUND);
    assert_null(t.name);
}

struct walk {
    int n;
    int stop_at;
    char names[512];
};

static int walk_team(void *ud, const team_rec *t)
{
    struct walk *w = ud;
    strcat(w->names, t->name);
    strcat(w->names, ",");
    return ++w->n == w->stop_at ? 42 : 0;
}

static int walk_user(void *ud, const user_rec *u)
{
    struct walk *w = ud;
    strcat(w->names, u->email);
    strcat(w->names, ",");
    return ++w->n == w->stop_at ? 42 : 0;
}

static void test_each_stops(void **state)
{
    store *s = S(state);
    td_error e = {0};
    add_team(s, "a", "central", 0);
    add_team(s, "b", "catalyst", 0);
    add_team(s, "c", "local", 0);
    struct walk w = {0, 0, ""};
    assert_int_equal(store_team_each(s, walk_team, &w, &e), TD_OK);
    assert_string_equal(w.names, "a,b,c,");
    struct walk w2 = {0, 2, ""};
    assert_int_equal(store_team_each(s, walk_team, &w2, &e), 42);
    assert_string_equal(w2.names, "a,b,");
    /* The statement was reset: a new walk starts from the beginning. */
    struct walk w3 = {0, 0, ""};
    assert_int_equal(store_team_each(s, walk_team, &w3, &e), TD_OK);
    assert_string_equal(w3.names, "a,b,c,");
}

static void test_users(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t team = add_team(s, "T", "central", 0);
    user_rec nu = {.email = "boss@example.com", .name = "Boss", .role = "admin",
                   .team_id = team, .password_hash = "$argon2id$v=19$m=65536,t=2,p=1$x$y"};
    int64_t id = 0;
    assert_int_equal(store_user_add(s, &nu, &id, &e), TD_OK);
    add_user(s, "nopass@example.com", "seller", 0);

    static const struct {
        const char *email, *role;
        int64_t team;
        int code;
    } bad[] = {
        {"boss@example.com", "seller", 0, TD_EEXISTS}, /* duplicate email */
        {"x@example.com", "king", 0, TD_EINVAL},       /* unknown role */
        {"y@example.com", "seller", 777, TD_EINVAL},   /* unknown team */
        {NULL, "seller", 0, TD_EINVAL},                /* no email */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        user_rec u = {.email = (char *)bad[i].email, .role = (char *)bad[i].role,
                      .team_id = bad[i].team};
        int rc = store_user_add(s, &u, NULL, &e);
        if (rc != bad[i].code)
            fail_msg("bad user %zu: got %s (%s)", i, td_strerror(rc), e.msg);
    }
    user_rec u = {0};
    assert_int_equal(store_user_get(s, id, &u, &e), TD_OK);
    assert_string_equal(u.email, "boss@example.com");
    assert_string_equal(u.name, "Boss");
    assert_string_equal(u.role, "admin");
    assert_int_equal(u.team_id, team);
    assert_string_equal(u.password_hash, nu.password_hash);
    user_rec_clear(&u);
    assert_int_equal(store_user_find(s, "nopass@example.com", &u, &e), TD_OK);
    assert_null(u.password_hash);
    assert_string_equal(u.name, "U");
    user_rec_clear(&u);
    assert_int_equal(store_user_find(s, "nobody@example.com", &u, &e), TD_ENOTFOUND);
    struct walk w = {0, 0, ""};
    assert_int_equal(store_user_each(s, walk_user, &w, &e), TD_OK);
    assert_string_equal(w.names, "boss@example.com,nopass@example.com,");
    assert_int_equal(counts(s).users, 2);
}

static int grab_list(void *ud, const list_rec *l)
{
    list_rec *out = ud;
    if (!strcmp(l->name, out->name)) {
        out->n_confirmed = l->n_confirmed;
        out->n_unconfirmed = l->n_unconfirmed;
        out->n_unsubscribed = l->n_unsubscribed;
        out->id = l->id;
    }
    return 0;
}

static void test_lists(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t team = add_team(s, "T", "central", 0);
    int64_t owner = add_user(s, "o@example.com", "operator", team);
    list_rec nl = {.name = "Newsletter", .team_id = team, .owner_id = owner, .optin = "double",
                   .visibility = "public"};
    int64_t list = 0;
    assert_int_equal(store_list_add(s, &nl, &list, &e), TD_OK);

    static const struct {
        const char *name, *optin, *vis;
        int64_t team, owner;
        int code;
    } bad[] = {
        {"Newsletter", "single", "public", 0, 0, TD_EEXISTS},
        {"L1", "triple", "public", 0, 0, TD_EINVAL},
        {"L2", "single", "secret", 0, 0, TD_EINVAL},
        {"L3", "single", "public", 555, 0, TD_EINVAL}, /* unknown team */
        {"L4", "single", "public", 0, 555, TD_EINVAL}, /* unknown owner */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        list_rec l = {.name = (char *)bad[i].name, .optin = (char *)bad[i].optin,
                      .visibility = (char *)bad[i].vis, .team_id = bad[i].team,
                      .owner_id = bad[i].owner};
        int rc = store_list_add(s, &l, NULL, &e);
        if (rc != bad[i].code)
            fail_msg("bad list %zu: got %s (%s)", i, td_strerror(rc), e.msg);
    }

    list_rec l = {0};
    assert_int_equal(store_list_find(s, "Newsletter", &l, &e), TD_OK);
    assert_int_equal(l.id, list);
    assert_int_equal(l.team_id, team);
    assert_int_equal(l.owner_id, owner);
    assert_string_equal(l.optin, "double");
    assert_string_equal(l.visibility, "public");
    list_rec_clear(&l);

    /* Counts by membership status, as list_each reports them. */
    const char *st[] = {"confirmed", "confirmed", "unconfirmed", "unsubscribed"};
    for (int i = 0; i < 4; i++) {
        char em[32];
        snprintf(em, sizeof em, "s%d@example.com", i);
        int64_t sub = add_sub(s, em, "S");
        assert_int_equal(store_member_set(s, list, sub, st[i], false, NULL, &e), TD_OK);
    }
    list_rec want = {.name = "Newsletter"};
    assert_int_equal(store_list_each(s, grab_list, &want, &e), TD_OK);
    assert_int_equal(want.id, list);
    assert_int_equal(want.n_confirmed, 2);
    assert_int_equal(want.n_unconfirmed, 1);
    assert_int_equal(want.n_unsubscribed, 1);

    /* Deleting a list removes its memberships, not its subscribers. */
    assert_int_equal(store_list_delete(s, list, &e), TD_OK);
    store_counts c = counts(s);
    assert_int_equal(c.lists, 0);
    assert_int_equal(c.memberships, 0);
    assert_int_equal(c.subscribers, 4);
    assert_int_equal(store_list_delete(s, list, &e), TD_ENOTFOUND);
    assert_int_equal(store_list_find(s, "Newsletter", &l, &e), TD_ENOTFOUND);
}

/* ---- subscribers and memberships ---------------------------------------------- */

static void test_subscribers(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t team = add_team(s, "T", "local", 0);
    int64_t owner = add_user(s, "seller@example.com", "seller", team);
    sub_rec nr = {.email = "Ann@example.com", .name = "Ann", .attribs = "{\"city\":\"Cairo\"}",
                  .status = "enabled", .owner_id = owner, .team_id = team,
                  .timezone = "Africa/Cairo", .locale = "ar-EG"};
    int64_t id = 0;
    assert_int_equal(store_sub_add(s, &nr, &id, &e), TD_OK);
    sub_rec r = {0};
    assert_int_equal(store_sub_get(s, id, &r, &e), TD_OK);
    assert_string_equal(r.email, "Ann@example.com");
    assert_string_equal(r.name, "Ann");
    assert_string_equal(r.attribs, "{\"city\":\"Cairo\"}");
    assert_string_equal(r.status, "enabled");
    assert_int_equal(r.owner_id, owner);
    assert_int_equal(r.team_id, team);
    assert_string_equal(r.timezone, "Africa/Cairo");
    assert_string_equal(r.locale, "ar-EG");
    assert_true(r.created_at > 1600000000 && r.updated_at == r.created_at);
    sub_rec_clear(&r);

    /* Defaults: no name is '', no attributes {}, no status enabled. */
    sub_rec bare = {.email = "bare@example.com"};
    int64_t bid;
    assert_int_equal(store_sub_add(s, &bare, &bid, &e), TD_OK);
    assert_int_equal(store_sub_find(s, "bare@example.com", &r, &e), TD_OK);
    assert_string_equal(r.name, "");
    assert_string_equal(r.attribs, "{}");
    assert_string_equal(r.status, "enabled");
    assert_null(r.timezone);
    assert_null(r.locale);
    assert_int_equal(r.owner_id, 0);
    sub_rec_clear(&r);

    static const struct {
        const char *email, *attribs, *status;
        int64_t owner, team;
        int code;
    } bad[] = {
        {"Ann@example.com", NULL, NULL, 0, 0, TD_EEXISTS},     /* duplicate */
        {"b@example.com", "{not json", NULL, 0, 0, TD_EINVAL}, /* attributes */
        {"c@example.com", NULL, "deleted", 0, 0, TD_EINVAL},   /* status */
        {"d@example.com", NULL, NULL, 4242, 0, TD_EINVAL},     /* unknown owner */
        {"e@example.com", NULL, NULL, 0, 4242, TD_EINVAL},     /* unknown team */
        {NULL, NULL, NULL, 0, 0, TD_EINVAL},                   /* no email */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sub_rec b = {.email = (char *)bad[i].email, .attribs = (char *)bad[i].attribs,
                     .status = (char *)bad[i].status, .owner_id = bad[i].owner,
                     .team_id = bad[i].team};
        int rc = store_sub_add(s, &b, NULL, &e);
        if (rc != bad[i].code)
            fail_msg("bad subscriber %zu: got %s (%s)", i, td_strerror(rc), e.msg);
    }
    assert_int_equal(counts(s).subscribers, 2);

    /* Update, including the address. */
    sub_rec up = {.id = id, .email = "ann@example.net", .name = "Ann B", .attribs = "{}",
                  .status = "blocklisted"};
    assert_int_equal(store_sub_update(s, &up, &e), TD_OK);
    assert_int_equal(store_sub_find(s, "Ann@example.com", &r, &e), TD_ENOTFOUND);
    assert_int_equal(store_sub_find(s, "ann@example.net", &r, &e), TD_OK);
    assert_int_equal(r.id, id);
    assert_string_equal(r.name, "Ann B");
    assert_string_equal(r.status, "blocklisted");
    assert_int_equal(r.owner_id, 0);
    sub_rec_clear(&r);
    up.email = "bare@example.com"; /* taken */
    assert_int_equal(store_sub_update(s, &up, &e), TD_EEXISTS);
    up.id = 999;
    up.email = "ghost@example.com";
    assert_int_equal(store_sub_update(s, &up, &e), TD_ENOTFOUND);

    /* Delete removes the memberships too. */
    int64_t list = add_list(s, "L", "single");
    assert_int_equal(store_member_set(s, list, id, "confirmed", false, NULL, &e), TD_OK);
    assert_int_equal(store_sub_delete(s, id, &e), TD_OK);
    assert_int_equal(store_sub_delete(s, id, &e), TD_ENOTFOUND);
    assert_int_equal(store_sub_get(s, id, &r, &e), TD_ENOTFOUND);
    assert_int_equal(counts(s).memberships, 0);
}

static void test_upsert_modes(void **state)
{
    store *s = S(state);
    td_error e = {0};
    static const struct {
        sub_mode mode;
        const char *name, *attribs;
        sub_outcome want;
        const char *want_name, *want_status;
    } cases[] = {
        /* Each applied to "k@example.com", created first as Kay {"n":1}. */
        {SUB_MODE_SUBSCRIBE, "Other", "{\"n\":2}", SUB_UNCHANGED, "Kay", "enabled"},
        {SUB_MODE_UPSERT, "Kay", "{\"n\":1}", SUB_UNCHANGED, "Kay", "enabled"},
        {SUB_MODE_UPSERT, "Kay B", "{\"n\":1}", SUB_UPDATED, "Kay B", "enabled"},
        {SUB_MODE_UPSERT, "Kay", "{\"n\":3}", SUB_UPDATED, "Kay", "enabled"},
        {SUB_MODE_BLOCKLIST, "Ignored", "{}", SUB_UPDATED, "Kay", "blocklisted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char email[32];
        snprintf(email, sizeof email, "k%zu@example.com", i);
        sub_rec first = {.email = email, .name = "Kay", .attribs = "{\"n\":1}"};
        int64_t id1 = 0, id2 = 0;
        sub_outcome o;
        assert_int_equal(store_sub_upsert(s, &first, cases[i].mode, &id1, &o, &e), TD_OK);
        assert_int_equal(o, SUB_CREATED);
        sub_rec again = {.email = email, .name = (char *)cases[i].name,
                         .attribs = (char *)cases[i].attribs};
        assert_int_equal(store_sub_upsert(s, &again, cases[i].mode, &id2, &o, &e), TD_OK);
        if (o != cases[i].want)
            fail_msg("case %zu: outcome %d, want %d", i, o, cases[i].want);
        assert_int_equal(id1, id2);
        sub_rec r = {0};
        assert_int_equal(store_sub_get(s, id1, &r, &e), TD_OK);
        assert_string_equal(r.name, cases[i].want_name);
        assert_string_equal(r.status, cases[i].want_status);
        sub_rec_clear(&r);
        /* The same again changes nothing. */
        assert_int_equal(store_sub_upsert(s, &again, cases[i].mode, &id2, &o, &e), TD_OK);
        assert_int_equal(o, SUB_UNCHANGED);
        assert_int_equal(id1, id2);
    }
}

struct probe {
    int n;
    char text[256];
};

static int probe(void *ud, const char *list, const char *status)
{
    struct probe *p = ud;
    size_t len = strlen(p->text);
    snprintf(p->text + len, sizeof p->text - len, "%s=%s;", list, status);
    p->n++;
    return 0;
}

static void test_memberships(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t l1 = add_list(s, "B list", "single"), l2 = add_list(s, "A list", "double");
    int64_t a = add_sub(s, "a@example.com", "A"), b = add_sub(s, "b@example.com", "B");
    sub_outcome o;
    assert_int_equal(store_member_set(s, l1, a, "confirmed", true, &o, &e), TD_OK);
    assert_int_equal(o, SUB_CREATED);
    /* keep_existing: an existing membership is not touched. */
    assert_int_equal(store_member_set(s, l1, a, "unsubscribed", true, &o, &e), TD_OK);
    assert_int_equal(o, SUB_UNCHANGED);
    assert_string_equal(members_of(s, l1).text, "a@example.com=confirmed;");
    /* Without it the status changes, once. */
    assert_int_equal(store_member_set(s, l1, a, "unsubscribed", false, &o, &e), TD_OK);
    assert_int_equal(o, SUB_CREATED);
    assert_int_equal(store_member_set(s, l1, a, "unsubscribed", false, &o, &e), TD_OK);
    assert_int_equal(o, SUB_UNCHANGED);
    assert_int_equal(store_member_set(s, l1, b, "unconfirmed", false, NULL, &e), TD_OK);
    assert_int_equal(store_member_set(s, l2, a, "confirmed", false, NULL, &e), TD_OK);
    assert_string_equal(members_of(s, l1).text,
                        "a@example.com=unsubscribed;b@example.com=unconfirmed;");

    static const struct {
        int64_t list, sub;
        const char *status;
    } bad[] = {{999, 0, "confirmed"}, {0, 999, "confirmed"}, {0, 0, "maybe"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = store_member_set(s, bad[i].list ? bad[i].list : l1, bad[i].sub ? bad[i].sub : b,
                                  bad[i].status, false, NULL, &e);
        if (rc != TD_EINVAL)
            fail_msg("bad membership %zu: got %s (%s)", i, td_strerror(rc), e.msg);
    }

    /* member_lists: by list name. */
    struct probe p = {0, ""};
    assert_int_equal(store_member_lists(s, a, probe, &p, &e), TD_OK);
    assert_string_equal(p.text, "A list=confirmed;B list=unsubscribed;");

    /* Timestamps follow the status. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(((struct fx *)*state)->path, &db, SQLITE_OPEN_READONLY,
                                     NULL),
                     SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT confirmed_at IS NOT NULL, unsubscribed_at IS NOT "
                                        "NULL FROM memberships WHERE list_id = ?1 AND "
                                        "subscriber_id = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, l1);
    sqlite3_bind_int64(st, 2, a);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1); /* was confirmed */
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 2, b);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    assert_int_equal(sqlite3_column_int(st, 1), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_transactions(void **state)
{
    store *s = S(state);
    td_error e = {0};
    assert_int_equal(store_begin(s, &e), TD_OK);
    add_sub(s, "gone@example.com", "G");
    store_rollback(s);
    assert_int_equal(counts(s).subscribers, 0);
    store_rollback(s); /* no transaction: harmless */
    assert_int_equal(store_begin(s, &e), TD_OK);
    add_sub(s, "kept@example.com", "K");
    assert_int_equal(store_commit(s, &e), TD_OK);
    assert_int_equal(counts(s).subscribers, 1);
}

/* A second handle waits for the writer and then reports a temporary failure
 * (TD_ETEMP: retry), not a permanent one. Takes the busy timeout (5 s). */
static void test_busy_is_temporary(void **state)
{
    struct fx *f = *state;
    td_error e = {0};
    store *other = NULL;
    assert_int_equal(store_open(f->path, &other, &e), TD_OK);
    assert_int_equal(store_begin(f->s, &e), TD_OK);
    add_sub(f->s, "w@example.com", "W");
    int rc = store_begin(other, &e);
    assert_int_equal(rc, TD_ETEMP);
    assert_non_null(strstr(e.msg, "busy"));
    /* Readers are not blocked by the writer (WAL). */
    assert_int_equal(counts(other).subscribers, 0);
    assert_int_equal(store_commit(f->s, &e), TD_OK);
    assert_int_equal(counts(other).subscribers, 1);
    store_close(other);
}

/* ---- settings, suppressions, audit ------------------------------------------------ */

static void test_settings(void **state)
{
    store *s = S(state);
    td_error e = {0};
    char *v = (char *)1;
    assert_int_equal(store_setting_get(s, "public_url", &v, &e), TD_ENOTFOUND);
    assert_null(v);
    assert_int_equal(store_setting_set(s, "public_url", "http://a", &e), TD_OK);
    assert_int_equal(store_setting_set(s, "public_url", "http://b", &e), TD_OK);
    assert_int_equal(store_setting_get(s, "public_url", &v, &e), TD_OK);
    assert_string_equal(v, "http://b");
    free(v);
}

static void test_suppress_audit(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    td_error e = {0};
    bool yes = true;
    assert_int_equal(store_suppress_check(s, "x@example.com", &yes, &e), TD_OK);
    assert_false(yes);
    assert_int_equal(store_suppress_add(s, "x@example.com", "hard bounce", &e), TD_OK);
    assert_int_equal(store_suppress_add(s, "x@example.com", "complaint", &e), TD_OK);
    assert_int_equal(store_suppress_check(s, "x@example.com", &yes, &e), TD_OK);
    assert_true(yes);
    assert_int_equal(store_suppress_check(s, "y@example.com", &yes, &e), TD_OK);
    assert_false(yes);
    assert_int_equal(counts(s).suppressions, 1);
    char *reason = sql_text(f->path, "SELECT reason FROM suppressions");
    assert_string_equal(reason, "complaint"); /* the latest reason wins */
    free(reason);
    assert_int_not_equal(store_suppress_add(s, "z@example.com", NULL, &e), TD_OK);

    int64_t user = add_user(s, "admin@example.com", "admin", 0);
    audit_rec ok[] = {
        {.actor_id = user, .actor = "admin@example.com", .action = "list.create",
         .object_type = "list", .object_id = 7, .detail = "{\"optin\":\"double\"}"},
        {.actor = NULL, .action = "demo.create", .object_type = "database"},
    };
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(store_audit_add(s, &ok[i], &e), TD_OK);
    assert_int_equal(counts(s).audit, 2);
    char *row = sql_text(f->path,
                         "SELECT group_concat(coalesce(actor_id,'-') || '|' || actor || '|' || "
                         "action || '|' || object_type || '|' || coalesce(object_id,'-') || '|' "
                         "|| coalesce(detail,'-') || '|' || (at > 1600000000), ';') FROM "
                         "(SELECT * FROM audit_log ORDER BY id)");
    char want[256];
    snprintf(want, sizeof want,
             "%lld|admin@example.com|list.create|list|7|{\"optin\":\"double\"}|1;"
             "-|system|demo.create|database|-|-|1",
             (long long)user);
    assert_string_equal(row, want);
    free(row);
    audit_rec bad[] = {
        {.actor = "x", .action = NULL, .object_type = "list"},
        {.actor = "x", .action = "a", .object_type = NULL},
        {.actor_id = 999, .actor = "x", .action = "a", .object_type = "list"},
    };
    for (size_t i = 0; i < 3; i++)
        if (store_audit_add(s, &bad[i], &e) != TD_EINVAL)
            fail_msg("bad audit row %zu was not refused with TD_EINVAL", i);
    assert_int_equal(counts(s).audit, 2);
}

/* ---- bulk import ------------------------------------------------------------------- */

struct brow {
    const char *email, *name, *attribs, *subscription;
};

/* bulk runs one session over rows with the given mode, flushing every
 * `every` rows (0: once at the end), and returns the totals. */
static bulk_stats bulk(store *s, int64_t list, sub_mode mode, const char *def,
                       const struct brow *rows, size_t n, size_t every)
{
    td_error e = {0};
    bulk_opts o = {.list_id = list, .mode = mode, .default_status = def};
    bulk_stats st = {0};
    assert_int_equal(store_bulk_begin(s, &o, &e), TD_OK);
    for (size_t i = 0; i < n; i++) {
        sub_rec r = {.email = (char *)rows[i].email, .name = (char *)rows[i].name,
                     .attribs = (char *)rows[i].attribs};
        if (store_bulk_add(s, &r, rows[i].subscription, &e))
            fail_msg("bulk_add %s: %s", rows[i].email, e.msg);
        if (every && (i + 1) % every == 0 && store_bulk_flush(s, &st, &e))
            fail_msg("bulk_flush: %s", e.msg);
    }
    if (store_bulk_flush(s, &st, &e))
        fail_msg("bulk_flush: %s", e.msg);
    store_bulk_end(s);
    return st;
}

#define BULK(s, l, m, d, rows, every) bulk(s, l, m, d, rows, sizeof rows / sizeof rows[0], every)

static char *name_of(store *s, const char *email)
{
    sub_rec r = {0};
    td_error e = {0};
    if (store_sub_find(s, email, &r, &e))
        return NULL;
    char *n = strdup(r.name);
    sub_rec_clear(&r);
    return n;
}

static void expect_stats(const bulk_stats *got, uint64_t c, uint64_t u, uint64_t un, uint64_t m,
                         const char *what)
{
    if (got->created != c || got->updated != u || got->unchanged != un || got->memberships != m)
        fail_msg("%s: created %llu updated %llu unchanged %llu memberships %llu; want %llu %llu "
                 "%llu %llu",
                 what, (unsigned long long)got->created, (unsigned long long)got->updated,
                 (unsigned long long)got->unchanged, (unsigned long long)got->memberships,
                 (unsigned long long)c, (unsigned long long)u, (unsigned long long)un,
                 (unsigned long long)m);
}

static void test_events(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    td_error e = {0};
    event_rec ev[] = {
        {.kind = "open", .campaign_id = 3, .subscriber_id = 9},
        {.kind = "click", .campaign_id = 3, .subscriber_id = 9, .data = "https://x.test/'; --"},
        {.kind = "signup", .list_id = 4, .at = 1700000000},
    };
    assert_int_equal(store_begin(s, &e), TD_OK);
    assert_int_equal(store_event_add(s, ev, 3, &e), TD_OK);
    assert_int_equal(store_commit(s, &e), TD_OK);
    char *rows = sql_text(f->path, "SELECT group_concat(kind || '|' || coalesce(campaign_id,'-') || "
                                   "'|' || coalesce(list_id,'-') || '|' || coalesce(data,'-'), ';') "
                                   "FROM (SELECT * FROM events ORDER BY id)");
    assert_string_equal(rows, "open|3|-|-;click|3|-|https://x.test/'; --;signup|-|4|-");
    free(rows);
    char *at = sql_text(f->path, "SELECT created_at FROM events WHERE kind = 'signup'");
    assert_string_equal(at, "1700000000");
    free(at);
    /* An unknown kind is refused, with nothing stored. */
    event_rec bad = {.kind = "purchase'); DROP TABLE events; --"};
    assert_int_equal(store_event_add(s, &bad, 1, &e), TD_EINVAL);
    char *n = sql_text(f->path, "SELECT count(*) FROM events");
    assert_string_equal(n, "3");
    free(n);
}

static void test_bulk_subscribe_reimport(void **state)
{
    store *s = S(state);
    int64_t list = add_list(s, "L", "single");
    static const struct brow rows[] = {
        {"a@example.com", "A", "{}", NULL},
        {"b@example.com", "B", "{\"n\":1}", NULL},
        {"c@example.com", "C", "{}", "unconfirmed"},
        {"d@example.com", "D", "{}", NULL},
        {"e@example.com", "E", "{}", NULL},
    };
    for (size_t every = 0; every <= 2; every++) {
        /* every: flush at the end, after each row, every two rows */
        if (every) {
            int64_t l2;
            char nm[8];
            snprintf(nm, sizeof nm, "L%zu", every);
            l2 = add_list(s, nm, "single");
            bulk_stats st = BULK(s, l2, SUB_MODE_SUBSCRIBE, "confirmed", rows, every);
            expect_stats(&st, 0, 0, 5, 5, "same rows into another list");
            continue;
        }
        bulk_stats st = BULK(s, list, SUB_MODE_SUBSCRIBE, "confirmed", rows, 0);
        expect_stats(&st, 5, 0, 0, 5, "first import");
        st = BULK(s, list, SUB_MODE_SUBSCRIBE, "confirmed", rows, 0);
        expect_stats(&st, 0, 0, 5, 0, "re-import");
        st = BULK(s, list, SUB_MODE_SUBSCRIBE, "confirmed", rows, 1);
        expect_stats(&st, 0, 0, 5, 0, "re-import, one row per flush");
    }
    assert_string_equal(members_of(s, list).text,
                        "a@example.com=confirmed;b@example.com=confirmed;c@example.com="
                        "unconfirmed;d@example.com=confirmed;e@example.com=confirmed;");
    store_counts c = counts(s);
    assert_int_equal(c.subscribers, 5);
    assert_int_equal(c.memberships, 15);
}

static void test_bulk_modes(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t team = add_team(s, "T", "local", 0);
    int64_t owner = add_user(s, "o@example.com", "seller", team);
    int64_t list = add_list(s, "L", "single");
    static const struct brow first[] = {
        {"a@example.com", "A", "{}", NULL},
        {"b@example.com", "B", "{}", NULL},
        {"c@example.com", "C", "{}", NULL},
    };
    bulk_opts o = {.list_id = list, .mode = SUB_MODE_SUBSCRIBE, .default_status = "confirmed",
                   .owner_id = owner, .team_id = team};
    bulk_stats st = {0};
    assert_int_equal(store_bulk_begin(s, &o, &e), TD_OK);
    for (size_t i = 0; i < 3; i++) {
        sub_rec r = {.email = (char *)first[i].email, .name = (char *)first[i].name,
                     .attribs = "{}", .timezone = "Asia/Bangkok", .locale = "th-TH"};
        assert_int_equal(store_bulk_add(s, &r, NULL, &e), TD_OK);
    }
    assert_int_equal(store_bulk_flush(s, &st, &e), TD_OK);
    store_bulk_end(s);
    expect_stats(&st, 3, 0, 0, 3, "first");
    sub_rec r = {0};
    assert_int_equal(store_sub_find(s, "b@example.com", &r, &e), TD_OK);
    assert_int_equal(r.owner_id, owner);
    assert_int_equal(r.team_id, team);
    assert_string_equal(r.timezone, "Asia/Bangkok");
    assert_string_equal(r.locale, "th-TH");
    sub_rec_clear(&r);

    /* Subscribe keeps existing records as they are. */
    static const struct brow renamed[] = {
        {"a@example.com", "A2", "{\"x\":1}", NULL},
        {"b@example.com", "B", "{}", NULL},
    };
    st = BULK(s, list, SUB_MODE_SUBSCRIBE, "confirmed", renamed, 0);
    expect_stats(&st, 0, 0, 2, 0, "subscribe, renamed");
    char *n = name_of(s, "a@example.com");
    assert_string_equal(n, "A");
    free(n);
    /* Upsert overwrites what differs, and only that; timezone and locale
     * absent from the rows are kept. */
    st = BULK(s, list, SUB_MODE_UPSERT, "confirmed", renamed, 0);
    expect_stats(&st, 0, 1, 1, 0, "upsert, renamed");
    n = name_of(s, "a@example.com");
    assert_string_equal(n, "A2");
    free(n);
    assert_int_equal(store_sub_find(s, "a@example.com", &r, &e), TD_OK);
    assert_string_equal(r.attribs, "{\"x\":1}");
    assert_string_equal(r.timezone, "Asia/Bangkok");
    sub_rec_clear(&r);
    st = BULK(s, list, SUB_MODE_UPSERT, "confirmed", renamed, 0);
    expect_stats(&st, 0, 0, 2, 0, "upsert again");

    /* Blocklist: every address blocked, its membership unsubscribed, new
     * addresses created blocked. */
    static const struct brow block[] = {
        {"c@example.com", "C", "{}", NULL},
        {"new@example.com", "N", "{}", NULL},
    };
    st = BULK(s, list, SUB_MODE_BLOCKLIST, "unsubscribed", block, 0);
    expect_stats(&st, 1, 1, 0, 2, "blocklist");
    assert_int_equal(store_sub_find(s, "c@example.com", &r, &e), TD_OK);
    assert_string_equal(r.status, "blocklisted");
    sub_rec_clear(&r);
    assert_int_equal(store_sub_find(s, "new@example.com", &r, &e), TD_OK);
    assert_string_equal(r.status, "blocklisted");
    sub_rec_clear(&r);
    assert_string_equal(members_of(s, list).text,
                        "a@example.com=confirmed;b@example.com=confirmed;c@example.com="
                        "unsubscribed;new@example.com=unsubscribed;");
    st = BULK(s, list, SUB_MODE_BLOCKLIST, "unsubscribed", block, 0);
    expect_stats(&st, 0, 0, 2, 0, "blocklist again");
}

static void test_bulk_memberships(void **state)
{
    store *s = S(state);
    td_error e = {0};
    int64_t list = add_list(s, "L", "double");
    int64_t a = add_sub(s, "a@example.com", "A"), b = add_sub(s, "b@example.com", "B");
    assert_int_equal(store_member_set(s, list, a, "unsubscribed", false, NULL, &e), TD_OK);
    assert_int_equal(store_member_set(s, list, b, "confirmed", false, NULL, &e), TD_OK);
    /* An unsubscription is never turned back into a subscription; an
     * existing confirmation is kept; an unsubscription in the file is
     * applied. */
    static const struct brow rows[] = {
        {"a@example.com", "A", "{\"a\":1}", "confirmed"},
        {"b@example.com", "B", "{\"a\":1}", "unconfirmed"},
        {"c@example.com", "C", "{}", NULL},
        {"d@example.com", "D", "{}", "unsubscribed"},
    };
    bulk_stats st = BULK(s, list, SUB_MODE_SUBSCRIBE, "unconfirmed", rows, 0);
    expect_stats(&st, 2, 0, 2, 2, "memberships");
    assert_string_equal(members_of(s, list).text,
                        "a@example.com=unsubscribed;b@example.com=confirmed;c@example.com="
                        "unconfirmed;d@example.com=unsubscribed;");
    static const struct brow leave[] = {{"b@example.com", "B", "{}", "unsubscribed"}};
    st = BULK(s, list, SUB_MODE_SUBSCRIBE, "unconfirmed", leave, 0);
    expect_stats(&st, 0, 0, 1, 1, "unsubscribe");
    assert_string_equal(members_of(s, list).text,
                        "a@example.com=unsubscribed;b@example.com=unsubscribed;c@example.com="
                        "unconfirmed;d@example.com=unsubscribed;");
}

static void test_bulk_duplicates(void **state)
{
    store *s = S(state);
    int64_t l1 = add_list(s, "L1", "single"), l2 = add_list(s, "L2", "single");
    static const struct brow rows[] = {
        {"dup@example.com", "First", "{}", NULL},
        {"x@example.com", "X", "{}", NULL},
        {"dup@example.com", "Second", "{}", NULL},
        {"dup@example.com", "Third", "{}", NULL},
    };
    /* Subscribe: the first row of an address wins, in one flush or many. */
    bulk_stats st = BULK(s, l1, SUB_MODE_SUBSCRIBE, "confirmed", rows, 0);
    assert_int_equal(st.created, 2);
    assert_int_equal(st.memberships, 2);
    char *n = name_of(s, "dup@example.com");
    assert_string_equal(n, "First");
    free(n);
    /* Upsert: the last row wins. */
    st = BULK(s, l2, SUB_MODE_UPSERT, "confirmed", rows, 0);
    assert_int_equal(st.created, 0);
    assert_int_equal(st.memberships, 2);
    n = name_of(s, "dup@example.com");
    assert_string_equal(n, "Third");
    free(n);
    assert_int_equal(counts(s).subscribers, 2);
    st = BULK(s, l2, SUB_MODE_UPSERT, "confirmed", rows, 1);
    n = name_of(s, "dup@example.com");
    assert_string_equal(n, "Third");
    free(n);
}

static void test_bulk_session_rules(void **state)
{
    store *s = S(state);
    td_error e = {0};
    bulk_stats st = {0};
    /* A flush without a session is a caller's bug. */
    assert_int_equal(store_bulk_flush(s, &st, &e), TD_EINTERNAL);
    int64_t list = add_list(s, "L", "single");
    bulk_opts o = {.list_id = list, .mode = SUB_MODE_SUBSCRIBE, .default_status = "confirmed"};
    /* Ending a session drops what was staged and not flushed. */
    assert_int_equal(store_bulk_begin(s, &o, &e), TD_OK);
    sub_rec r = {.email = "lost@example.com", .name = "L", .attribs = "{}"};
    assert_int_equal(store_bulk_add(s, &r, NULL, &e), TD_OK);
    store_bulk_end(s);
    assert_int_equal(counts(s).subscribers, 0);
    store_bulk_end(s); /* twice: harmless */
    /* A flush of nothing is fine and counts nothing. */
    assert_int_equal(store_bulk_begin(s, &o, &e), TD_OK);
    assert_int_equal(store_bulk_flush(s, &st, &e), TD_OK);
    assert_int_equal(st.created + st.updated + st.unchanged + st.memberships, 0);
    /* A row the schema would refuse (attributes not a JSON object, an
     * unknown subscription) is refused when added; the session goes on. */
    sub_rec good = {.email = "good@example.com", .name = "G", .attribs = "{}"};
    sub_rec bad = {.email = "bad@example.com", .name = "B", .attribs = "[not json"};
    sub_rec arr = {.email = "arr@example.com", .name = "A", .attribs = "[1]"};
    assert_int_equal(store_bulk_add(s, &bad, NULL, &e), TD_EINVAL);
    assert_int_equal(store_bulk_add(s, &arr, NULL, &e), TD_EINVAL);
    assert_int_equal(store_bulk_add(s, &good, "maybe", &e), TD_EINVAL);
    assert_int_equal(counts(s).subscribers, 0);
    assert_int_equal(store_bulk_add(s, &good, NULL, &e), TD_OK);
    assert_int_equal(store_bulk_flush(s, &st, &e), TD_OK);
    store_bulk_end(s);
    assert_int_equal(counts(s).subscribers, 1);
    assert_int_equal(st.created, 1);
    /* Ordinary calls work after a session (no transaction left open). */
    add_sub(s, "after@example.com", "After");
    assert_int_equal(store_begin(s, &e), TD_OK);
    assert_int_equal(store_commit(s, &e), TD_OK);
}

/* ---- hostile text ------------------------------------------------------------------ */

static const char *const hostile[] = {
    "'; DROP TABLE subscribers; --",
    "\"; DROP TABLE teams; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "x' OR '1'='1",
    "100% _wild_ [card] \\ escape",
    ":name @p ?1 $v", /* parameter markers */
    "O'Brien \"Bob\" `tick`",
    "/* comment */ -- line",
    "ليلى حداد ; سلام",
    "สมชาย' ใจดี",
};

static void test_sql_metacharacters(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    td_error e = {0};
    size_t n = sizeof hostile / sizeof hostile[0];
    for (size_t i = 0; i < n; i++) {
        const char *h = hostile[i];
        char email[96], json[256];
        snprintf(email, sizeof email, "h%zu@example.com", i);
        snprintf(json, sizeof json, "{\"k\":\"x\"}"); /* JSON quoting is not the store's job */
        int64_t team = add_team(s, h, "local", 0);
        user_rec u = {.email = email, .name = (char *)h, .role = "seller", .team_id = team,
                      .password_hash = (char *)h};
        int64_t uid, lid, sid;
        assert_int_equal(store_user_add(s, &u, &uid, &e), TD_OK);
        list_rec l = {.name = (char *)h, .team_id = team, .owner_id = uid, .optin = "single",
                      .visibility = "public"};
        assert_int_equal(store_list_add(s, &l, &lid, &e), TD_OK);
        char semail[128];
        snprintf(semail, sizeof semail, "\"%zu'--\"@example.com", i); /* quoted local part */
        sub_rec r = {.email = semail, .name = (char *)h, .attribs = json, .timezone = (char *)h,
                     .locale = (char *)h, .owner_id = uid, .team_id = team};
        assert_int_equal(store_sub_add(s, &r, &sid, &e), TD_OK);
        assert_int_equal(store_member_set(s, lid, sid, "confirmed", false, NULL, &e), TD_OK);
        assert_int_equal(store_setting_set(s, h, h, &e), TD_OK);
        assert_int_equal(store_suppress_add(s, h, h, &e), TD_OK);
        audit_rec a = {.actor = h, .action = h, .object_type = h, .detail = h};
        assert_int_equal(store_audit_add(s, &a, &e), TD_OK);

        team_rec t = {0};
        assert_int_equal(store_team_find(s, h, &t, &e), TD_OK);
        assert_string_equal(t.name, h);
        team_rec_clear(&t);
        user_rec ur = {0};
        assert_int_equal(store_user_get(s, uid, &ur, &e), TD_OK);
        assert_string_equal(ur.name, h);
        assert_string_equal(ur.password_hash, h);
        user_rec_clear(&ur);
        list_rec lr = {0};
        assert_int_equal(store_list_find(s, h, &lr, &e), TD_OK);
        assert_int_equal(lr.id, lid);
        list_rec_clear(&lr);
        sub_rec sr = {0};
        assert_int_equal(store_sub_find(s, semail, &sr, &e), TD_OK);
        assert_string_equal(sr.name, h);
        assert_string_equal(sr.timezone, h);
        assert_string_equal(sr.locale, h);
        sub_rec_clear(&sr);
        char *v = NULL;
        assert_int_equal(store_setting_get(s, h, &v, &e), TD_OK);
        assert_string_equal(v, h);
        free(v);
        bool sup = false;
        assert_int_equal(store_suppress_check(s, h, &sup, &e), TD_OK);
        assert_true(sup);
        /* A near miss is not found: no pattern matching. */
        assert_int_equal(store_team_find(s, "%", &t, &e), TD_ENOTFOUND);
        assert_int_equal(store_suppress_check(s, "x' OR '1'='1' --", &sup, &e), TD_OK);
        assert_false(sup);
    }
    /* Bulk path too. */
    int64_t list = add_list(s, "bulk", "single");
    bulk_opts o = {.list_id = list, .mode = SUB_MODE_UPSERT, .default_status = "confirmed"};
    bulk_stats st = {0};
    assert_int_equal(store_bulk_begin(s, &o, &e), TD_OK);
    for (size_t i = 0; i < n; i++) {
        char email[64];
        snprintf(email, sizeof email, "b%zu@example.com", i);
        sub_rec r = {.email = email, .name = (char *)hostile[i], .attribs = "{}",
                     .timezone = (char *)hostile[i]};
        assert_int_equal(store_bulk_add(s, &r, NULL, &e), TD_OK);
    }
    assert_int_equal(store_bulk_flush(s, &st, &e), TD_OK);
    store_bulk_end(s);
    assert_int_equal(st.created, n);
    for (size_t i = 0; i < n; i++) {
        char email[64];
        snprintf(email, sizeof email, "b%zu@example.com", i);
        char *nm = name_of(s, email);
        assert_string_equal(nm, hostile[i]);
        free(nm);
    }
    store_counts c = counts(s);
    assert_int_equal(c.teams, n);
    assert_int_equal(c.users, n);
    assert_int_equal(c.lists, n + 1);
    assert_int_equal(c.subscribers, 2 * n);
    assert_int_equal(c.memberships, 2 * n);
    /* Every table is still there. */
    char *tables = sql_text(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                                     "sqlite_master WHERE type = 'table' ORDER BY name)");
    assert_string_equal(tables, "api_tokens,audit_log,campaign_lists,campaigns,content_blocks,"
                                "deliveries,dkim_keys,events,inbound_messages,lists,"
                                "login_failures,mailboxes,memberships,relays,replies,"
                                "schema_migrations,sessions,settings,soft_bounces,"
                                "subscribers,suppressions,teams,users");
    free(tables);
    char *audit = sql_text(f->path, "SELECT detail FROM audit_log ORDER BY id LIMIT 1");
    assert_string_equal(audit, hostile[0]);
    free(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_refusals, setup_nodb, teardown),
        cmocka_unit_test_setup_teardown(test_migration_upgrade, setup_nodb, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memberships, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_is_temporary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suppress_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_subscribe_reimport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_memberships, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_session_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_metacharacters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
