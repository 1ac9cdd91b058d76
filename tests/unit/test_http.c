/* Unit tests for http/router, http/html and campaign/autotrack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/autotrack.h"
#include "http/html.h"
#include "http/router.h"
#include "http/server.h"
#include "tmpl/tmpl.h"
#include "util/err.h"

static void test_router(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        int status;
        route_id route;
        const char *arg;
    } cases[] = {
        {"GET", "/o/AQEFBgA-vIH7W4e_", 200, ROUTE_OPEN, "AQEFBgA-vIH7W4e_"},
        {"HEAD", "/o/abc", 200, ROUTE_OPEN, "abc"},
        {"GET", "/c/abc", 200, ROUTE_CLICK, "abc"},
        {"GET", "/u/abc", 200, ROUTE_UNSUB, "abc"},
        {"POST", "/u/abc", 200, ROUTE_UNSUB, "abc"},
        {"GET", "/confirm/abc", 200, ROUTE_CONFIRM, "abc"},
        {"POST", "/confirm/abc", 200, ROUTE_CONFIRM, "abc"},
        {"GET", "/s/Shop news", 200, ROUTE_SIGNUP, "Shop news"},
        {"POST", "/s/\xe0\xb8\x82\xe0\xb9\x88\xe0\xb8\xb2\xe0\xb8\xa7", 200, ROUTE_SIGNUP,
         "\xe0\xb8\x82\xe0\xb9\x88\xe0\xb8\xb2\xe0\xb8\xa7"},
        {"GET", "/healthz", 200, ROUTE_HEALTHZ, NULL},
        {"GET", "/metrics", 200, ROUTE_METRICS, NULL},
        /* methods */
        {"POST", "/o/abc", 405, ROUTE_NONE, NULL},
        {"DELETE", "/c/abc", 405, ROUTE_NONE, NULL},
        {"PUT", "/u/abc", 405, ROUTE_NONE, NULL},
        {"POST", "/healthz", 405, ROUTE_NONE, NULL},
        {"get", "/healthz", 405, ROUTE_NONE, NULL},
        /* paths that are nobody's */
        {"GET", "/", 404, ROUTE_NONE, NULL},
        {"GET", "/o/", 404, ROUTE_NONE, NULL},
        {"GET", "/o", 404, ROUTE_NONE, NULL},
        {"GET", "/o/../../etc/passwd", 404, ROUTE_NONE, NULL},
        {"GET", "/o/..", 404, ROUTE_NONE, NULL},
        {"GET", "/o/abc/", 404, ROUTE_NONE, NULL},
        {"GET", "/o/abc/def", 404, ROUTE_NONE, NULL},
        {"GET", "/o/ab=c", 404, ROUTE_NONE, NULL},
        {"GET", "/o/ab%2e", 404, ROUTE_NONE, NULL},
        {"GET", "/s/..", 404, ROUTE_NONE, NULL},
        {"GET", "/s/.", 404, ROUTE_NONE, NULL},
        {"GET", "/s/a/b", 404, ROUTE_NONE, NULL},
        {"GET", "/s/a\nb", 404, ROUTE_NONE, NULL},
        {"GET", "/healthz/", 404, ROUTE_NONE, NULL},
        {"GET", "/healthzz", 404, ROUTE_NONE, NULL},
        {"GET", "//o/abc", 404, ROUTE_NONE, NULL},
        {"GET", "/O/abc", 404, ROUTE_NONE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        route_match m;
        int st = router_match(cases[i].method, cases[i].path, strlen(cases[i].path), &m);
        if (st != cases[i].status)
            fail_msg("%s %s: %d, want %d", cases[i].method, cases[i].path, st, cases[i].status);
        if (st == 405) {
            assert_non_null(m.allow);
            continue;
        }
        assert_int_equal(m.route, cases[i].route);
        if (cases[i].arg) {
            assert_int_equal(m.arg_len, strlen(cases[i].arg));
            assert_memory_equal(m.arg, cases[i].arg, m.arg_len);
        } else {
            assert_null(m.arg);
        }
    }
    /* the cap on an argument */
    size_t n = ROUTER_ARG_MAX + 4;
    char *p = malloc(n + 1);
    memcpy(p, "/o/", 3);
    memset(p + 3, 'a', n - 3);
    route_match m;
    assert_int_equal(router_match("GET", p, 3 + ROUTER_ARG_MAX, &m), 200);
    assert_int_equal(router_match("GET", p, n, &m), 404);
    free(p);
    assert_string_equal(router_name(ROUTE_CLICK), "click");
    assert_string_equal(router_name(ROUTE_NONE), "none");
}

static void test_unescape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/o/abc", "/o/abc"},
        {"/o/%2e%2E/x", "/o/../x"},
        {"/s/Shop%20news", "/s/Shop news"},
        {"/s/%e0%b8%82", "/s/\xe0\xb8\x82"},
        {"/c/tok%00", "/c/tok%00"},
        {"/c/%zz%4", "/c/%zz%4"},
        {"%", "%"},
        {"%2", "%2"},
        {"%2f%2F", "//"},
        {"%252e", "%2e"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[64];
        snprintf(b, sizeof b, "%s", cases[i].in);
        size_t n = router_unescape(b);
        assert_string_equal(b, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
    }
}

static void test_html_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
        {"\"'&", "&quot;&#39;&amp;"},
        {"a\" onmouseover=\"x", "a&quot; onmouseover=&quot;x"},
        {"\xd9\x84\xd9\x8a\xd9\x84\xd9\x89 & co", "\xd9\x84\xd9\x8a\xd9\x84\xd9\x89 &amp; co"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        assert_int_equal(html_escape_str(&b, cases[i].in), TD_OK);
        assert_string_equal(b.data, cases[i].out);
        buf_free(&b);
    }
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(html_escape(&b, "a\0<b", 4), TD_OK); /* a NUL is dropped */
    assert_string_equal(b.data, "a&lt;b");
    buf_free(&b);
    buf_init(&b, 4);
    assert_int_equal(html_escape_str(&b, "<<"), TD_ETOOBIG);
    buf_free(&b);
}

static void test_listen_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"127.0.0.1:8080", 1}, {"0.0.0.0:80", 1},  {"[::1]:8080", 1},   {"::1:8080", 1},
        {"127.0.0.1:0", 1},    {"localhost:80", 0}, {"127.0.0.1", 0},   {"127.0.0.1:", 0},
        {":8080", 0},          {"1.2.3.4:65536", 0}, {"1.2.3.4:-1", 0}, {"1.2.3.4:80x", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage sa;
        socklen_t len;
        td_error e = {0};
        int rc = http_listen_parse(cases[i].s, &sa, &len, &e);
        if ((rc == 0) != cases[i].ok)
            fail_msg("'%s': %d %s", cases[i].s, rc, e.msg);
    }
}

static void test_autotrack(void **state)
{
    (void)state;
    static const char px[] = "<img src=\"{{open_url}}\" width=\"1\" height=\"1\" alt=\"\" "
                             "style=\"display:block;border:0;width:1px;height:1px\">";
    static const struct {
        const char *in;
        bool opens, clicks;
        const char *out; /* "@PX@" stands for the pixel */
    } cases[] = {
        {"<a href=\"https://x.example/a?b=1&amp;c=2\">x</a>", false, true,
         "<a href=\"{{#track}}https://x.example/a?b=1&amp;c=2{{/track}}\">x</a>"},
        {"<A HREF='http://x.example/{{subscriber.id}}'>x</A>", false, true,
         "<A HREF='{{#track}}http://x.example/{{subscriber.id}}{{/track}}'>x</A>"},
        {"<a href=https://x.example/u>x</a>", false, true,
         "<a href={{#track}}https://x.example/u{{/track}}>x</a>"},
        {"<a href=\" https://x.example/ \">x</a>", false, true,
         "<a href=\" {{#track}}https://x.example/{{/track}} \">x</a>"},
        /* left alone */
        {"<a href=\"{{#track}}https://x.example/{{/track}}\">x</a>", false, true,
         "<a href=\"{{#track}}https://x.example/{{/track}}\">x</a>"},
        {"<a href=\"{{unsubscribe_url}}\">u</a>", false, true,
         "<a href=\"{{unsubscribe_url}}\">u</a>"},
        {"<a href=\"mailto:a@b.example\">m</a><a href=\"#top\">t</a>", false, true,
         "<a href=\"mailto:a@b.example\">m</a><a href=\"#top\">t</a>"},
        {"<p>see href=\"https://x.example/\"</p>", false, true,
         "<p>see href=\"https://x.example/\"</p>"},
        {"<!-- <a href=\"https://x.example/\"> -->", false, true,
         "<!-- <a href=\"https://x.example/\"> -->"},
        {"<a title=\"href=https://x.example/\" data-href=\"https://y.example/\">x</a>", false,
         true, "<a title=\"href=https://x.example/\" data-href=\"https://y.example/\">x</a>"},
        {"<a href=\"https://x.example/a b\">x</a>", false, true,
         "<a href=\"https://x.example/a b\">x</a>"},
        {"{{=<% %>=}}<a href=\"https://x.example/\">x</a>", true, true,
         "{{=<% %>=}}<a href=\"https://x.example/\">x</a>"},
        {"<a href=\"https://x.example/\">x</a>", false, false, "<a href=\"https://x.example/\">x</a>"},
        /* the pixel */
        {"<html><body><p>x</p></body></html>", true, false,
         "<html><body><p>x</p>@PX@</body></html>"},
        {"<p>x</p>", true, false, "<p>x</p>@PX@"},
        {"<p>x</p><img src=\"{{open_url}}\">", true, false, "<p>x</p><img src=\"{{open_url}}\">"},
        {"<BODY>x</BODY >", true, true, "<BODY>x@PX@</BODY >"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[1024];
        const char *at = strstr(cases[i].out, "@PX@");
        if (at)
            snprintf(want, sizeof want, "%.*s%s%s", (int)(at - cases[i].out), cases[i].out, px,
                     at + 4);
        else
            snprintf(want, sizeof want, "%s", cases[i].out);
        char *got = autotrack_html(cases[i].in, cases[i].opens, cases[i].clicks);
        if (strcmp(got, want))
            fail_msg("case %zu:\n got %s\nwant %s", i, got, want);
        /* what comes out still compiles as a template */
        tmpl *t = NULL;
        td_error e = {0};
        assert_int_equal(tmpl_compile(got, strlen(got), &t, &e), TD_OK);
        tmpl_free(t);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_autotrack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
