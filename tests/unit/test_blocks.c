/* Unit tests for the content library: the store's block operations
 * (migration 4, put/get/each/delete, the checks in C and in the schema,
 * hostile names, titles, bodies and data refused or stored verbatim) and
 * campaign/blocks (the partial resolver, what a block's body sees, the
 * chain of two resolvers, templates rendered for real, per recipient from
 * one compiled template). Every test works on a fresh database. */
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

#include "campaign/blocks.h"
#include "store/store.h"
#include "tmpl/tmpl.h"
#include "util/err.h"
#include "util/log.h"

/* ---- fixture: a fresh database in a temporary directory ---------------- */

struct fx {
    char dir[64];
    char path[96];
    store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/tdblocks.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    td_error e = {0};
    if (store_open(f->path, &f->s, &e))
        fail_msg("store_open: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t put(store *s, const char *kind, const char *name, const char *title,
                   const char *body, const char *data, int64_t team)
{
    block_rec b = {.kind = (char *)kind, .name = (char *)name, .title = (char *)title,
                   .body = (char *)body, .data = (char *)data, .team_id = team};
    int64_t id = 0;
    td_error e = {0};
    if (store_block_put(s, &b, &id, &e))
        fail_msg("block_put %s: %s", name, e.msg);
    assert_true(id > 0);
    return id;
}

static int count_cb(void *ud, const block_rec *b)
{
    (void)b;
    (*(int *)ud)++;
    return 0;
}

static int count(store *s, const char *kind)
{
    int n = 0;
    assert_int_equal(store_block_each(s, kind, count_cb, &n, NULL), TD_OK);
    return n;
}

/* ---- store ------------------------------------------------------------------ */

static void test_put_get_replace_delete(void **state)
{
    struct fx *f = *state;
    td_error e = {0};
    int64_t id = put(f->s, "article", "spring-sale", "Spring sale", "<h2>{{title}}</h2>",
                     "{ \"url\" : \"https://shop.example/s\", \"b\": [1, 2.50, true] }", 0);
    block_rec r = {0};
    assert_int_equal(store_block_get(f->s, "spring-sale", &r, &e), TD_OK);
    assert_int_equal(r.id, id);
    assert_string_equal(r.kind, "article");
    assert_string_equal(r.title, "Spring sale");
    assert_string_equal(r.body, "<h2>{{title}}</h2>");
    /* canonical: compact, keys sorted, numbers in their shortest form */
    assert_string_equal(r.data, "{\"b\":[1,2.5,true],\"url\":\"https://shop.example/s\"}");
    assert_int_equal(r.team_id, 0);
    assert_true(r.created_at > 0 && r.updated_at >= r.created_at);
    int64_t created = r.created_at;
    block_rec_clear(&r);
    assert_null(r.name);

    /* NULL data is an empty object. */
    put(f->s, "product", "blue-mug", "Blue mug", "{{price}}", NULL, 0);
    assert_int_equal(store_block_get(f->s, "blue-mug", &r, &e), TD_OK);
    assert_string_equal(r.data, "{}");
    block_rec_clear(&r);

    /* Put again by name: replaced in place, same id and created_at. */
    int64_t id2 = put(f->s, "product", "spring-sale", "Spring sale 2", "new body", "{\"a\":1}", 0);
    assert_int_equal(id2, id);
    assert_int_equal(store_block_get(f->s, "spring-sale", &r, &e), TD_OK);
    assert_string_equal(r.kind, "product");
    assert_string_equal(r.title, "Spring sale 2");
    assert_string_equal(r.body, "new body");
    assert_string_equal(r.data, "{\"a\":1}");
    assert_int_equal(r.created_at, created);
    block_rec_clear(&r);
    assert_int_equal(count(f->s, NULL), 2);
    assert_int_equal(count(f->s, "product"), 2);
    assert_int_equal(count(f->s, "article"), 0);

    assert_int_equal(store_block_get(f->s, "nope", &r, &e), TD_ENOTFOUND);
    assert_int_equal(store_block_delete(f->s, "nope", &e), TD_ENOTFOUND);
    assert_int_equal(store_block_delete(f->s, "spring-sale", &e), TD_OK);
    assert_int_equal(store_block_delete(f->s, "spring-sale", &e), TD_ENOTFOUND);
    assert_int_equal(store_block_get(f->s, "spring-sale", &r, &e), TD_ENOTFOUND);
    assert_int_equal(count(f->s, NULL), 1);
}

struct walk {
    char names[8][80];
    int n;
};

static int walk_cb(void *ud, const block_rec *b)
{
    struct walk *w = ud;
    if (w->n == 8)
        return 42;
    snprintf(w->names[w->n++], sizeof w->names[0], "%s/%s", b->kind, b->name);
    return 0;
}

static void test_each_order_and_kind(void **state)
{
    struct fx *f = *state;
    put(f->s, "product", "zeta", "Z", "z", NULL, 0);
    put(f->s, "article", "beta", "B", "b", NULL, 0);
    put(f->s, "product", "alpha", "A", "a", NULL, 0);
    put(f->s, "article", "alpha-2", "A2", "a2", NULL, 0);
    struct walk w = {0};
    assert_int_equal(store_block_each(f->s, NULL, walk_cb, &w, NULL), TD_OK);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.names[0], "article/alpha-2");
    assert_string_equal(w.names[1], "article/beta");
    assert_string_equal(w.names[2], "product/alpha");
    assert_string_equal(w.names[3], "product/zeta");
    memset(&w, 0, sizeof w);
    assert_int_equal(store_block_each(f->s, "product", walk_cb, &w, NULL), TD_OK);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.names[0], "product/alpha");
    /* a kind that is not one matches nothing, and is only a bound value */
    assert_int_equal(count(f->s, "article' OR '1'='1"), 0);
    /* a callback's non-zero return stops the walk and is returned */
    w.n = 8;
    assert_int_equal(store_block_each(f->s, NULL, walk_cb, &w, NULL), 42);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    static char long_name[BLOCK_MAX_NAME + 2], ok_name[BLOCK_MAX_NAME + 1];
    memset(long_name, 'a', BLOCK_MAX_NAME + 1);
    memset(ok_name, 'b', BLOCK_MAX_NAME);
    char *long_title = calloc(1, BLOCK_MAX_TITLE + 2);
    memset(long_title, 't', BLOCK_MAX_TITLE + 1);
    char *big_body = calloc(1, BLOCK_MAX_BODY + 2);
    memset(big_body, 'x', BLOCK_MAX_BODY + 1);
    char *big_data = calloc(1, BLOCK_MAX_DATA + 16);
    snprintf(big_data, 16, "{\"a\":\"");
    memset(big_data + 6, 'd', BLOCK_MAX_DATA);
    strcpy(big_data + 6 + BLOCK_MAX_DATA, "\"}");

    const struct {
        const char *kind, *name, *title, *body, *data;
        int code;
        const char *msg; /* words the message must hold */
    } cases[] = {
        {NULL, "a", "t", "b", NULL, TD_EINVAL, "kind"},
        {"Article", "a", "t", "b", NULL, TD_EINVAL, "kind"},
        {"news", "a", "t", "b", NULL, TD_EINVAL, "kind"},
        {"article' --", "a", "t", "b", NULL, TD_EINVAL, "kind"},
        {"article", NULL, "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "Spring", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "spring sale", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "spring_sale", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "a/b", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "../etc", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "a.b", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "x'); DROP TABLE content_blocks; --", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "caf\xc3\xa9", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "a\nb", "t", "b", NULL, TD_EINVAL, "name"},
        {"article", long_name, "t", "b", NULL, TD_EINVAL, "name"},
        {"article", "a", NULL, "b", NULL, TD_EINVAL, "title"},
        {"article", "a", "", "b", NULL, TD_EINVAL, "title"},
        {"article", "a", "two\nlines", "b", NULL, TD_EINVAL, "title"},
        {"article", "a", "cr\rhere", "b", NULL, TD_EINVAL, "title"},
        {"article", "a", "bad \xff utf8", "b", NULL, TD_EINVAL, "title"},
        {"article", "a", long_title, "b", NULL, TD_ETOOBIG, "title"},
        {"article", "a", "t", NULL, NULL, TD_EINVAL, "body"},
        {"article", "a", "t", "bad \xc0\xaf overlong", NULL, TD_EINVAL, "UTF-8"},
        {"article", "a", "t", "\xed\xa0\x80 surrogate", NULL, TD_EINVAL, "UTF-8"},
        {"article", "a", "t", big_body, NULL, TD_ETOOBIG, "body"},
        {"article", "a", "t", "b", "", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{'a':1}", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{\"a\":1} x", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{\"a\":1,\"a\":2}", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{\"a\":\"\\u0000\"}", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "{\"a\":\"\xff\"}", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", "[1,2]", TD_EINVAL, "object"},
        {"article", "a", "t", "b", "\"str\"", TD_EINVAL, "object"},
        {"article", "a", "t", "b", "null", TD_EINVAL, "object"},
        {"article", "a", "t", "b", "{\"a\":\n\x01}", TD_EINVAL, "not JSON"},
        {"article", "a", "t", "b", big_data, TD_ETOOBIG, "data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        block_rec b = {.kind = (char *)cases[i].kind, .name = (char *)cases[i].name,
                       .title = (char *)cases[i].title, .body = (char *)cases[i].body,
                       .data = (char *)cases[i].data};
        td_error e = {0};
        int64_t id = -1;
        int rc = store_block_put(f->s, &b, &id, &e);
        if (rc != cases[i].code || !strstr(e.msg, cases[i].msg) || strchr(e.msg, '\n'))
            fail_msg("case %zu: got %s '%s', want %s '%s'", i, td_strerror(rc), e.msg,
                     td_strerror(cases[i].code), cases[i].msg);
        assert_int_equal(id, -1);
    }
    assert_int_equal(count(f->s, NULL), 0);

    /* At the caps exactly: accepted. */
    big_body[BLOCK_MAX_BODY] = '\0';
    long_title[BLOCK_MAX_TITLE] = '\0';
    put(f->s, "article", ok_name, long_title, big_body, NULL, 0);
    block_rec r = {0};
    assert_int_equal(store_block_get(f->s, ok_name, &r, NULL), TD_OK);
    assert_int_equal(strlen(r.body), BLOCK_MAX_BODY);
    block_rec_clear(&r);

    /* A team that does not exist is refused by the schema. */
    block_rec b = {.kind = "article", .name = "t", .title = "t", .body = "b", .team_id = 999};
    td_error e = {0};
    assert_int_equal(store_block_put(f->s, &b, NULL, &e), TD_EINVAL);
    assert_int_equal(count(f->s, NULL), 1);
    free(long_title);
    free(big_body);
    free(big_data);
}

static void test_hostile_verbatim(void **state)
{
    struct fx *f = *state;
    static const char *const texts[] = {
        "Robert'); DROP TABLE content_blocks; --",
        "\" OR 1=1 -- /* */ ; %s %n %% \\ \\\\ ` $(id) :name ?1 @x",
        /* Arabic, Thai */
        "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa",
        "<script>alert(1)</script> &amp; &lt;",
        "tab\tinside",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "b-%zu", i);
        /* the body keeps line breaks and control characters as written */
        char body[512];
        snprintf(body, sizeof body, "%s\r\n\x01{{! %s }}\n", texts[i], texts[i]);
        json_t *d = json_pack("{ss}", "q", texts[i]);
        char *data = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
        put(f->s, "article", name, texts[i], body, data, 0);
        block_rec r = {0};
        assert_int_equal(store_block_get(f->s, name, &r, NULL), TD_OK);
        assert_string_equal(r.title, texts[i]);
        assert_string_equal(r.body, body);
        assert_string_equal(r.data, data);
        block_rec_clear(&r);
        free(data);
        json_decref(d);
    }
    assert_int_equal(count(f->s, NULL), 5);
    /* The table is still there and holds what it should. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM content_blocks", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 5);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The schema holds to the same rules when C is bypassed. */
static void test_schema_checks(void **state)
{
    struct fx *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    static const char *const bad[] = {
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('news','a','t','b','{}',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','A','t','b','{}',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','a/b','t','b','{}',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','','t','b','{}',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article',printf('%.65c','a'),'t','b','{}',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','a','t','b','[1]',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','a','t','b','{',0,0)",
        "INSERT INTO content_blocks (kind,name,title,body,data,created_at,updated_at)"
        " VALUES ('article','a','t',printf('%.262145c','x'),'{}',0,0)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sqlite3_exec(db, bad[i], NULL, NULL, NULL);
        if (rc != SQLITE_CONSTRAINT)
            fail_msg("case %zu: got %d, want a constraint failure", i, rc);
    }
    static const char good[] = "INSERT INTO content_blocks (kind,name,title,body,data,created_at,"
                               "updated_at) VALUES ('product','a-1','t','b','{}',0,0)";
    assert_int_equal(sqlite3_exec(db, good, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(count(f->s, NULL), 1);
}

static void test_migration(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    f->s = NULL;
    unlink(f->path);
    td_error e = {0};
    int v;
    assert_true(store_latest_version() >= 4);
    assert_int_equal(store_open_at_version(f->path, 3, &f->s, &e), TD_OK);
    assert_int_equal(store_schema_version(f->s, &v, &e), TD_OK);
    assert_int_equal(v, 3);
    block_rec r = {0};
    assert_int_not_equal(store_block_get(f->s, "x", &r, &e), TD_OK);
    assert_int_not_equal(store_block_get(f->s, "x", &r, &e), TD_ENOTFOUND);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(f->path, &f->s, &e), TD_OK);
    assert_int_equal(store_schema_version(f->s, &v, &e), TD_OK);
    assert_int_equal(v, store_latest_version());
    put(f->s, "article", "x", "X", "x", NULL, 0);
    assert_int_equal(store_block_get(f->s, "x", &r, &e), TD_OK);
    block_rec_clear(&r);
}

/* ---- the resolver ------------------------------------------------------------ */

/* render compiles src and renders it with data through fn/ud into a new
 * string (the caller frees it), or fails the test. */
static char *render(const char *src, json_t *data, tmpl_partial_fn fn, void *ud)
{
    tmpl *t = NULL;
    td_error e = {0};
    if (tmpl_compile(src, strlen(src), &t, &e))
        fail_msg("compile: %s", e.msg);
    buf out;
    buf_init(&out, BUF_NOCAP);
    if (tmpl_render(t, data, fn, ud, &out, &e))
        fail_msg("render: %s", e.msg);
    tmpl_free(t);
    char *s = buf_steal(&out);
    buf_free(&out);
    return s;
}

static void test_two_blocks_rendered(void **state)
{
    struct fx *f = *state;
    put(f->s, "article", "spring-sale", "Spring <sale>",
        "<h2>{{title}}</h2>\n<p>{{summary}}, {{subscriber.name}}!</p>\n",
        "{\"summary\":\"Up to 30% off\"}", 0);
    /* This body changes its delimiters: the wrapper must not be affected. */
    put(f->s, "product", "blue-mug", "Blue mug",
        "{{=<% %>=}}<b><%title%></b> <%price%> EUR (<%kind%>/<%name%>) <%url%>\n",
        "{\"price\":12.5,\"url\":\"https://shop.example/mug?a=1&b=2\",\"title\":\"ignored\"}", 0);
    blocks *lib = blocks_new(f->s, 0);
    const char *src = "Hi {{subscriber.name}}\n"
                      "  {{> article/spring-sale}}\n"
                      "{{> product/blue-mug}}\n"
                      "{{title}}|{{price}}|end\n";
    tmpl *t = NULL;
    td_error e = {0};
    assert_int_equal(tmpl_compile(src, strlen(src), &t, &e), TD_OK);
    static const char *const who[] = {"Ann", "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf"};
    for (size_t i = 0; i < 2; i++) {
        /* One compiled template, one data object per recipient: the
         * second render does not ask the resolver again. */
        json_t *data = json_pack("{s{ss}}", "subscriber", "name", who[i]);
        assert_int_equal(blocks_attach(lib, data, &e), TD_OK);
        buf out;
        buf_init(&out, BUF_NOCAP);
        if (tmpl_render(t, data, blocks_partial, lib, &out, &e))
            fail_msg("render: %s", e.msg);
        char want[1024];
        snprintf(want, sizeof want,
                 "Hi %s\n"
                 "  <h2>Spring &lt;sale&gt;</h2>\n"
                 "  <p>Up to 30%% off, %s!</p>\n"
                 "<b>Blue mug</b> 12.5 EUR (product/blue-mug) "
                 "https://shop.example/mug?a=1&amp;b=2\n"
                 "||end\n",
                 who[i], who[i]);
        assert_string_equal(out.data, want);
        buf_free(&out);
        json_decref(data);
    }
    assert_int_equal(blocks_status(lib, &e), TD_OK);
    tmpl_free(t);
    blocks_free(lib);
}

static void test_missing_and_wrong(void **state)
{
    struct fx *f = *state;
    int64_t team_a, team_b;
    team_rec tr = {.name = "A", .model = "local"};
    assert_int_equal(store_team_add(f->s, &tr, &team_a, NULL), TD_OK);
    tr.name = "B";
    assert_int_equal(store_team_add(f->s, &tr, &team_b, NULL), TD_OK);
    put(f->s, "article", "news", "News", "n={{title}}", NULL, 0);
    put(f->s, "product", "a-only", "A only", "a={{title}}", NULL, team_a);

    const struct {
        const char *partial;
        int64_t team;
        int code;        /* what blocks_status says after */
        const char *out; /* rendered */
        const char *msg;
    } cases[] = {
        {"article/news", 0, TD_OK, "n=News", ""},
        {"product/a-only", 0, TD_OK, "a=A only", ""},
        {"product/a-only", team_a, TD_OK, "a=A only", ""},
        {"article/news", team_b, TD_OK, "n=News", ""},
        {"product/a-only", team_b, TD_EDENIED, "", "another team"},
        {"article/missing", 0, TD_ENOTFOUND, "", "no article 'missing'"},
        {"product/news", 0, TD_ENOTFOUND, "", "is an article, not a product"},
        {"article/Bad_Name", 0, TD_ENOTFOUND, "", "a-z"},
        {"article/a/b", 0, TD_ENOTFOUND, "", "no '/'"},
        {"article/x'--", 0, TD_ENOTFOUND, "", "a-z"},
        {"article/", 0, TD_ENOTFOUND, "", "a-z"},
        {"article/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         0, TD_ENOTFOUND, "", "too long"},
        /* not the library's: empty as the spec says, nothing recorded */
        {"news", 0, TD_OK, "", ""},
        {"articles/news", 0, TD_OK, "", ""},
        {"Article/news", 0, TD_OK, "", ""},
        /* the body only comes through its wrapper */
        {"article/news/body", 0, TD_OK, "", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        blocks *lib = blocks_new(f->s, cases[i].team);
        json_t *data = json_object();
        blocks_attach(lib, data, NULL);
        char src[160];
        snprintf(src, sizeof src, "{{> %s}}", cases[i].partial);
        char *out = render(src, data, blocks_partial, lib);
        td_error e = {0};
        int rc = blocks_status(lib, &e);
        if (strcmp(out, cases[i].out) || rc != cases[i].code || !strstr(e.msg, cases[i].msg) ||
            strchr(e.msg, '\n'))
            fail_msg("case %zu (%s): got '%s' %s '%s'", i, cases[i].partial, out,
                     td_strerror(rc), e.msg);
        free(out);
        json_decref(data);
        blocks_free(lib);
    }
    json_t *arr = json_array();
    blocks *lib = blocks_new(f->s, 0);
    assert_int_equal(blocks_attach(lib, arr, NULL), TD_EINVAL);
    blocks_free(lib);
    json_decref(arr);
}

static void test_body_sees(void **state)
{
    struct fx *f = *state;
    /* Nested blocks, outer names, a block whose data tries to hide the
     * library key, and a body that leaves a section open. */
    put(f->s, "article", "outer", "Outer", "[{{title}} {{> product/inner}} {{title}} {{who}}]",
        "{\"__blocks\":\"hidden?\"}", 0);
    put(f->s, "product", "inner", "Inner", "({{title}} {{price}} {{who}})", "{\"price\":\"9\"}", 0);
    put(f->s, "article", "open", "Open", "{{#title}}never closed", NULL, 0);
    put(f->s, "article", "loop", "Loop", "{{> article/loop}}", NULL, 0);
    blocks *lib = blocks_new(f->s, 0);
    json_t *data = json_pack("{ss}", "who", "me");
    blocks_attach(lib, data, NULL);
    char *out = render("{{> article/outer}}", data, blocks_partial, lib);
    assert_string_equal(out, "[Outer (Inner 9 me) Outer me]");
    free(out);
    assert_int_equal(blocks_status(lib, NULL), TD_OK);

    /* A body that does not compile fails the render, naming it. */
    tmpl *t = NULL;
    td_error e = {0};
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(tmpl_compile("x{{> article/open}}y", 19, &t, &e), TD_OK);
    assert_int_equal(tmpl_render(t, data, blocks_partial, lib, &b, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "article/open/body"));
    assert_int_equal(b.len, 0);
    tmpl_free(t);
    /* Recursion meets the depth cap. */
    assert_int_equal(tmpl_compile("{{> article/loop}}", 18, &t, &e), TD_OK);
    assert_int_equal(tmpl_render(t, data, blocks_partial, lib, &b, &e), TD_ETOOBIG);
    tmpl_free(t);
    buf_free(&b);

    /* The compile check the CLI runs before storing. */
    assert_int_equal(blocks_check_body("{{#title}}never closed", 22, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "line 1"));
    assert_int_equal(blocks_check_body("{{title}}", 9, &e), TD_OK);
    json_decref(data);
    blocks_free(lib);
}

static void test_forget_after_change(void **state)
{
    struct fx *f = *state;
    put(f->s, "product", "mug", "Mug", "{{title}} {{price}}", "{\"price\":10}", 0);
    blocks *lib = blocks_new(f->s, 0);
    tmpl *t = NULL;
    td_error e = {0};
    assert_int_equal(tmpl_compile("{{> product/mug}}", 17, &t, &e), TD_OK);
    const char *want[] = {"Mug 10", "Mug 10", "Big mug 12"};
    for (int i = 0; i < 3; i++) {
        if (i == 1) /* changed in the library: cached until forgotten */
            put(f->s, "product", "mug", "Big mug", "{{title}} {{price}}", "{\"price\":12}", 0);
        if (i == 2)
            tmpl_forget_partials(t);
        json_t *data = json_object();
        blocks_attach(lib, data, NULL);
        buf out;
        buf_init(&out, BUF_NOCAP);
        assert_int_equal(tmpl_render(t, data, blocks_partial, lib, &out, &e), TD_OK);
        assert_string_equal(out.data, want[i]);
        buf_free(&out);
        json_decref(data);
    }
    tmpl_free(t);
    blocks_free(lib);
}

/* A stand-in for a partials folder: answers "footer" and "article/news"
 * (which a folder could never hold) and counts the questions. */
struct fake {
    int asked;
    char last[80];
};

static const char *fake_partial(void *ud, const char *name, size_t *len)
{
    struct fake *k = ud;
    k->asked++;
    snprintf(k->last, sizeof k->last, "%s", name);
    const char *s = !strcmp(name, "footer") ? "(file footer)"
                    : !strcmp(name, "article/news") ? "(file news)"
                                                    : NULL;
    if (s)
        *len = strlen(s);
    return s;
}

static void test_chain(void **state)
{
    struct fx *f = *state;
    put(f->s, "article", "news", "News", "{{title}} {{> footer}}", NULL, 0);
    blocks *lib = blocks_new(f->s, 0);
    struct fake k = {0};
    blocks_chain c = {fake_partial, &k, blocks_partial, lib};
    json_t *data = json_object();
    blocks_attach(lib, data, NULL);
    char *out = render("{{> article/news}} | {{> footer}} | {{> nothing}}", data,
                       blocks_chain_partial, &c);
    /* the library's names never reach the first; the rest do, first */
    assert_string_equal(out, "News (file footer) | (file footer) | ");
    assert_int_equal(k.asked, 2); /* footer once (cached per template), nothing once */
    assert_string_equal(k.last, "nothing");
    free(out);
    assert_true(blocks_is_name("article/x") && blocks_is_name("product/"));
    assert_false(blocks_is_name("articles/x") || blocks_is_name("article") ||
                 blocks_is_name(NULL) || blocks_is_name("footer"));
    /* Either side may be missing. */
    blocks_chain only_first = {fake_partial, &k, NULL, NULL};
    out = render("{{> footer}}{{> article/news}}", data, blocks_chain_partial, &only_first);
    assert_string_equal(out, "(file footer)");
    free(out);
    blocks_chain none = {0};
    out = render("a{{> footer}}b", data, blocks_chain_partial, &none);
    assert_string_equal(out, "ab");
    free(out);
    json_decref(data);
    blocks_free(lib);
}

int main(void)
{
    log_level = LOG_LVL_NONE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_order_and_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_blocks_rendered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_sees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_after_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
