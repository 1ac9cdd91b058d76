/* Unit tests for http/perm (the rules, row by row, against the words of
 * perm.h) and http/api's route table against its OpenAPI document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "http/perm.h"
#include "http/router.h"

/* Whose object: the actor's own, another of their team's, another team's,
 * nobody's (company-wide). The actor is user 10 of team 1. */
enum whose { OWN, TEAM, OTHER, NOBODY };
static const int64_t owner_of[] = {10, 11, 21, 0}, team_of[] = {1, 1, 2, 0};

static const struct row {
    const char *role;
    perm_obj o;
    perm_act a;
    enum whose w;
    bool allow;
} rows[] = {
    /* admin: everything */
    {"admin", PERM_SUBSCRIBER, PERM_DELETE, OTHER, true},
    {"admin", PERM_RELAY, PERM_CREATE, NOBODY, true},
    {"admin", PERM_DKIM, PERM_CREATE, NOBODY, true},
    {"admin", PERM_USER, PERM_CREATE, OTHER, true},
    {"admin", PERM_TEAM, PERM_CREATE, NOBODY, true},
    {"admin", PERM_CAMPAIGN, PERM_SEND, OTHER, true},
    /* director: reads all, approves (sends) all, changes nothing else */
    {"director", PERM_SUBSCRIBER, PERM_READ, OTHER, true},
    {"director", PERM_SUBSCRIBER, PERM_UPDATE, OWN, false},
    {"director", PERM_CAMPAIGN, PERM_READ, OTHER, true},
    {"director", PERM_CAMPAIGN, PERM_SEND, OTHER, true},
    {"director", PERM_CAMPAIGN, PERM_UPDATE, OTHER, false},
    {"director", PERM_CAMPAIGN, PERM_CREATE, OWN, false},
    {"director", PERM_REPLY, PERM_READ, OTHER, true},
    {"director", PERM_RELAY, PERM_READ, NOBODY, false},
    {"director", PERM_USER, PERM_CREATE, OWN, false},
    /* designer: templates, all of them; reads campaigns */
    {"designer", PERM_TEMPLATE, PERM_UPDATE, OTHER, true},
    {"designer", PERM_TEMPLATE, PERM_DELETE, OTHER, true},
    {"designer", PERM_CAMPAIGN, PERM_READ, OTHER, true},
    {"designer", PERM_CAMPAIGN, PERM_SEND, OWN, false},
    {"designer", PERM_SUBSCRIBER, PERM_READ, OWN, false},
    {"designer", PERM_LIST, PERM_CREATE, OWN, false},
    /* operator: their team */
    {"operator", PERM_SUBSCRIBER, PERM_UPDATE, TEAM, true},
    {"operator", PERM_SUBSCRIBER, PERM_UPDATE, OTHER, false},
    {"operator", PERM_LIST, PERM_DELETE, TEAM, true},
    {"operator", PERM_CAMPAIGN, PERM_SEND, TEAM, true},
    {"operator", PERM_CAMPAIGN, PERM_SEND, OTHER, false},
    {"operator", PERM_TEMPLATE, PERM_CREATE, TEAM, true},
    {"operator", PERM_TEMPLATE, PERM_READ, NOBODY, true},
    {"operator", PERM_TEMPLATE, PERM_UPDATE, NOBODY, false},
    {"operator", PERM_REPLY, PERM_READ, TEAM, true},
    {"operator", PERM_USER, PERM_READ, TEAM, true},
    {"operator", PERM_USER, PERM_CREATE, TEAM, false},
    {"operator", PERM_RELAY, PERM_READ, NOBODY, false},
    /* seller: their own */
    {"seller", PERM_SUBSCRIBER, PERM_READ, OWN, true},
    {"seller", PERM_SUBSCRIBER, PERM_READ, TEAM, false},
    {"seller", PERM_SUBSCRIBER, PERM_DELETE, OWN, true},
    {"seller", PERM_LIST, PERM_UPDATE, TEAM, false},
    {"seller", PERM_CAMPAIGN, PERM_SEND, OWN, true},
    {"seller", PERM_CAMPAIGN, PERM_READ, TEAM, false},
    {"seller", PERM_TEMPLATE, PERM_UPDATE, OWN, true},
    {"seller", PERM_TEMPLATE, PERM_UPDATE, TEAM, false},
    {"seller", PERM_TEMPLATE, PERM_READ, NOBODY, true},
    {"seller", PERM_DKIM, PERM_READ, NOBODY, false},
    /* responder: replies of the team */
    {"responder", PERM_REPLY, PERM_READ, TEAM, true},
    {"responder", PERM_REPLY, PERM_READ, OTHER, false},
    {"responder", PERM_SUBSCRIBER, PERM_READ, OWN, false},
    {"responder", PERM_CAMPAIGN, PERM_READ, TEAM, false},
    {"responder", PERM_TEMPLATE, PERM_READ, NOBODY, false},
    /* everyone: their own tokens, nobody else's */
    {"seller", PERM_TOKEN, PERM_CREATE, OWN, true},
    {"responder", PERM_TOKEN, PERM_DELETE, OWN, true},
    {"operator", PERM_TOKEN, PERM_DELETE, TEAM, false},
    {"admin", PERM_TOKEN, PERM_DELETE, OTHER, true},
    /* an unknown role has no rights */
    {"root", PERM_SUBSCRIBER, PERM_READ, OWN, false},
    {NULL, PERM_SUBSCRIBER, PERM_READ, OWN, false},
};

static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        perm_actor a = {.role = r->role, .user_id = 10, .team_id = 1};
        bool got = perm_allow(&a, r->o, r->a, owner_of[r->w], team_of[r->w]);
        if (got != r->allow)
            fail_msg("row %zu: %s %s %s (whose %d): got %d", i, r->role ? r->role : "(null)",
                     perm_act_name(r->a), perm_obj_name(r->o), r->w, got);
    }
}

/* Without a team, a team rule reaches only one's own. */
static void test_no_team(void **state)
{
    (void)state;
    perm_actor a = {.role = "operator", .user_id = 10, .team_id = 0};
    assert_true(perm_allow(&a, PERM_LIST, PERM_UPDATE, 10, 0));
    assert_false(perm_allow(&a, PERM_LIST, PERM_UPDATE, 11, 0));
    assert_int_equal(perm_scope(&a, PERM_LIST, PERM_READ), PERM_SC_OWN);
}

/* A listing's scope agrees with perm_allow for every role, kind and whose. */
static void test_scope_agrees(void **state)
{
    (void)state;
    static const char *const roles[] = {"admin", "director", "designer",
                                        "operator", "seller", "responder"};
    for (size_t r = 0; r < 6; r++)
        for (int o = 0; o < PERM_OBJ_COUNT; o++)
            for (int w = OWN; w <= OTHER; w++) {
                perm_actor a = {.role = roles[r], .user_id = 10, .team_id = 1};
                perm_scope_t sc = perm_scope(&a, (perm_obj)o, PERM_READ);
                bool want = sc == PERM_SC_ALL || (sc == PERM_SC_TEAM && w != OTHER) ||
                            (sc == PERM_SC_OWN && w == OWN);
                assert_int_equal(perm_allow(&a, (perm_obj)o, PERM_READ, owner_of[w], team_of[w]),
                                 want);
            }
}

/* Every route is in the document, and the document has no other path
 * under /api/v1; the router takes every documented path. */
static void test_openapi_matches_table(void **state)
{
    (void)state;
    char *t = api_openapi();
    assert_non_null(t);
    json_error_t je;
    json_t *doc = json_loads(t, 0, &je);
    free(t);
    assert_non_null(doc);
    json_t *paths = json_object_get(doc, "paths");
    size_t documented = 0;
    const char *p;
    json_t *item;
    json_object_foreach(paths, p, item) {
        if (strncmp(p, "/api/v1/", 8))
            continue;
        documented += json_object_size(item);
        route_match m;
        assert_int_equal(router_match("GET", p, strlen(p), &m), 200);
        assert_int_equal(m.route, ROUTE_API);
    }
    assert_int_equal(documented, api_route_count());
    for (size_t i = 0; i < api_route_count(); i++) {
        const char *method, *path;
        api_route_at(i, &method, &path);
        char lower[10];
        size_t n = strlen(method);
        assert_true(n < sizeof lower);
        for (size_t j = 0; j <= n; j++)
            lower[j] = (char)(method[j] >= 'A' && method[j] <= 'Z' ? method[j] + 32 : method[j]);
        json_t *op = json_object_get(json_object_get(paths, path), lower);
        if (!op)
            fail_msg("%s %s is not documented", method, path);
        assert_non_null(json_object_get(op, "summary"));
        assert_non_null(json_object_get(op, "responses"));
    }
    assert_non_null(json_object_get(paths, "/login"));
    assert_non_null(json_object_get(paths, "/logout"));
    json_decref(doc);
}

static void test_body_caps(void **state)
{
    (void)state;
    assert_int_equal(router_body_max("/u/abc"), HTTP_BODY_MAX);
    assert_int_equal(router_body_max("/api/v1/lists"), HTTP_API_BODY_MAX);
    assert_int_equal(router_body_max("/api/v1/lists/3/import"), HTTP_IMPORT_BODY_MAX);
    assert_int_equal(router_body_max("/api/v1/lists/3/import/x"), HTTP_API_BODY_MAX);
    route_match m;
    assert_int_equal(router_match("PATCH", "/api/v1/x", 9, &m), 200);
    assert_int_equal(router_match("OPTIONS", "/api/v1/x", 9, &m), 405);
    assert_int_equal(router_match("GET", "/api/v1/", 8, &m), 404);
    assert_int_equal(router_match("DELETE", "/logout", 7, &m), 405);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_no_team),
        cmocka_unit_test(test_scope_agrees),
        cmocka_unit_test(test_openapi_matches_table),
        cmocka_unit_test(test_body_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
