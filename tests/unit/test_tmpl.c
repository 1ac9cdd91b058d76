/* Unit tests for tmpl and tmpl_dir: syntax errors, escaping, values,
 * compile-once-render-many, non-Latin text, caps and hostile templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpl/tmpl.h"
#include "tmpl/tmpl_dir.h"
#include "util/xalloc.h"

/* render compiles src, renders it with data (JSON text) and partials (a JSON
 * object of name -> source, or NULL); returns the code, output in *out. */
static const char *obj_partial(void *ud, const char *name, size_t *len)
{
    json_t *v = json_object_get((json_t *)ud, name);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int render(const char *src, const char *data, const char *partials, char **out,
                  td_error *e)
{
    tmpl *t = NULL;
    td_err_clear(e);
    int rc = tmpl_compile(src, strlen(src), &t, e);
    if (rc)
        return rc;
    json_t *d = json_loads(data, JSON_DECODE_ANY, NULL);
    json_t *p = partials ? json_loads(partials, 0, NULL) : NULL;
    assert_non_null(d);
    buf b;
    buf_init(&b, BUF_NOCAP);
    rc = tmpl_render(t, d, p ? obj_partial : NULL, p, &b, e);
    *out = buf_steal(&b);
    buf_free(&b);
    json_decref(d);
    json_decref(p);
    tmpl_free(t);
    return rc;
}

static void test_syntax_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        int code;
        const char *msg;
    } cases[] = {
        {"<ul>{{#items}}\n  <li>{{name}}</li>\n</ul> closing", TD_EINVAL,
         "line 3, column 14: unclosed section 'items' (opened at line 1, column 5): expected "
         "{{/items}}"},
        {"{{#a}}\n{{/b}}", TD_EINVAL,
         "line 2, column 1: closing tag {{/b}} does not match the open section 'a'"},
        {"x {{name", TD_EINVAL, "line 1, column 3: unterminated tag: expected '}}'"},
        {"x\n  {{{name}}", TD_EINVAL, "line 2, column 3: unterminated tag: expected '}}}'"},
        {"{{! never closed", TD_EINVAL, "line 1, column 1: unterminated tag: expected '}}'"},
        {"{{=<% %>}}", TD_EINVAL, "line 1, column 1: unterminated tag: expected '=}}'"},
        {"a {{=<%=}}", TD_EINVAL,
         "line 1, column 3: bad set-delimiter tag: expected two delimiters of 1 to 32 "
         "characters, without '=' or spaces, like {{=<% %>=}}"},
        {"{{=<% %>=}}\n<%#list%>\n", TD_EINVAL,
         "line 3, column 1: unclosed section 'list' (opened at line 2, column 1): expected "
         "<%/list%>"},
        {"{{}}", TD_EINVAL, "line 1, column 1: empty tag: expected a name"},
        {"{{#  }}", TD_EINVAL, "line 1, column 1: empty tag: expected a name"},
        {"hi {{first name}}", TD_EINVAL,
         "line 1, column 4: bad tag name 'first name': expected no spaces"},
        {"{{a..b}}", TD_EINVAL,
         "line 1, column 1: bad name 'a..b': expected names separated by single dots"},
        {"{{.a}}", TD_EINVAL,
         "line 1, column 1: bad name '.a': expected names separated by single dots"},
        {"ok\n{{/a}}", TD_EINVAL, "line 2, column 1: closing tag {{/a}} has no open section"},
        {"{{^a}}{{/b}}", TD_EINVAL,
         "line 1, column 7: closing tag {{/b}} does not match the open inverted section 'a'"},
        {"{{<p}}{{$b}}x{{/p}}", TD_EINVAL,
         "line 1, column 14: closing tag {{/p}} does not match the open block 'b'"},
        {"{{<p}}", TD_EINVAL,
         "line 1, column 7: unclosed parent 'p' (opened at line 1, column 1): expected {{/p}}"},
        {"{{<*dyn}}{{/dyn}}", TD_EINVAL,
         "line 1, column 10: closing tag {{/dyn}} does not match the open parent '*dyn'"},
        /* columns count characters, not bytes */
        {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 {{x", TD_EINVAL,
         "line 1, column 7: unterminated tag: expected '}}'"},
        {"ok\n\xe0\xb8\xaa\xff", TD_EINVAL,
         "line 2, column 2: invalid UTF-8 at byte offset 6: expected UTF-8 text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tmpl *t = NULL;
        td_error e;
        td_err_clear(&e);
        int rc = tmpl_compile(cases[i].src, strlen(cases[i].src), &t, &e);
        if (rc != cases[i].code || strcmp(e.msg, cases[i].msg) != 0)
            fail_msg("case %zu: got %d \"%s\"\n  want %d \"%s\"", i, rc, e.msg, cases[i].code,
                     cases[i].msg);
        assert_null(t);
    }
}

static void test_render_table(void **state)
{
    (void)state;
    static const struct {
        const char *src, *data, *want;
    } cases[] = {
        /* escaping: & < > " and ' in {{x}}, nothing in {{{x}}} and {{& x}} */
        {"{{x}}", "{\"x\": \"<a href=\\\"u?a=1&b=2\\\">it's</a>\"}",
         "&lt;a href=&quot;u?a=1&amp;b=2&quot;&gt;it&#39;s&lt;/a&gt;"},
        {"{{{x}}}|{{& x}}", "{\"x\": \"<b>&'\\\"\"}", "<b>&'\"|<b>&'\""},
        /* numbers and booleans as the spec interpolates them */
        {"{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}}",
         "{\"a\": 1.5, \"b\": 3, \"c\": 1.0, \"d\": -0.1, \"e\": 1e100, \"f\": true, \"g\": "
         "9007199254740993}",
         "1.5 3 1 -0.1 1e+100 true 9007199254740993"},
        {"[{{o}}][{{l}}][{{n}}]", "{\"o\": {\"k\": 1}, \"l\": [1], \"n\": null}", "[][][]"},
        /* falsey: false, null, missing, [], "" and 0 */
        {"{{#a}}A{{/a}}{{#b}}B{{/b}}{{#c}}C{{/c}}{{#d}}D{{/d}}{{#e}}E{{/e}}{{#m}}M{{/m}}",
         "{\"a\": false, \"b\": null, \"c\": [], \"d\": \"\", \"e\": 0}", ""},
        {"{{^d}}no name{{/d}}{{^e}} zero{{/e}}{{#f}} {{f}}{{/f}}",
         "{\"d\": \"\", \"e\": 0.0, \"f\": 0.5}", "no name zero 0.5"},
        /* context stack, dotted names, implicit iterator */
        {"{{#items}}<a href=\"{{url}}?u={{uid}}\">{{.}}</a>{{/items}}",
         "{\"uid\": 7, \"items\": [{\"url\": \"/a\"}, {\"url\": \"/b\", \"uid\": 8}]}",
         "<a href=\"/a?u=7\"></a><a href=\"/b?u=8\"></a>"},
        {"{{#l}}{{.}},{{/l}}", "{\"l\": [\"x\", 2, 2.5, true]}", "x,2,2.5,true,"},
        /* Arabic, Hebrew and Thai, with RTL marks, pass through intact */
        {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 {{name}}\xe2\x80\x8f!",
         "{\"name\": \"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1"
         "\"}",
         "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d "
         "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe2\x80\x8f!"},
        {"{{#\xd8\xa7\xd8\xb3\xd9\x85}}<{{.}}>{{/\xd8\xa7\xd8\xb3\xd9\x85}}",
         "{\"\xd8\xa7\xd8\xb3\xd9\x85\": \"\xe0\xb8\x81\"}", "<\xe0\xb8\x81>"},
        /* a standalone section line in an HTML email leaves no blank line */
        {"<ul>\n  {{#l}}\n  <li>{{.}}</li>\n  {{/l}}\n</ul>\n", "{\"l\": [1, 2]}",
         "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n"},
        /* CRLF templates (as mail often is) */
        {"a\r\n{{#t}}\r\nb\r\n{{/t}}\r\nc", "{\"t\": true}", "a\r\nb\r\nc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = NULL;
        td_error e;
        int rc = render(cases[i].src, cases[i].data, NULL, &got, &e);
        if (rc || strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: rc %d (%s)\n  got  \"%s\"\n  want \"%s\"", i, rc, e.msg,
                     got ? got : "", cases[i].want);
        free(got);
    }
}

/* lookup memoises names resolved against the data alone, keyed by the key
 * array all uses of a name share: a name must still resolve afresh inside
 * sections that push a context, in partials, and past memo collisions. */
static void test_name_memo(void **state)
{
    (void)state;
    char *got = NULL;
    td_error e;
    assert_int_equal(render("{{a.b}}|{{#l}}{{a.b}}{{/l}}|{{a.b}}|{{#a}}{{b}}{{/a}}|{{b}}|"
                            "{{^l}}{{/l}}{{>p}}|{{a.b}}",
                            "{\"a\": {\"b\": \"root\"}, \"b\": \"top\", "
                            "\"l\": [{\"a\": {\"b\": \"inner\"}}, {}]}",
                            "{\"p\": \"[{{a.b}}{{#l}}{{a.b}}{{/l}}{{b}}]\"}", &got, &e),
                     0);
    assert_string_equal(got, "root|innerroot|root|root|top|[rootinnerroottop]|root");
    free(got);

    /* 300 names, each used twice, far more than the memo's slots */
    buf src, data, want;
    buf_init(&src, BUF_NOCAP);
    buf_init(&data, BUF_NOCAP);
    buf_init(&want, BUF_NOCAP);
    buf_puts(&data, "{");
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            int k = round ? 299 - i : i;
            buf_printf(&src, "{{g.n%d}},", k);
            buf_printf(&want, "%d,", k * 7);
        }
    buf_puts(&data, "\"g\": {");
    for (int i = 0; i < 300; i++)
        buf_printf(&data, "%s\"n%d\": %d", i ? ", " : "", i, i * 7);
    buf_puts(&data, "}}");
    assert_int_equal(render(src.data, data.data, NULL, &got, &e), 0);
    assert_string_equal(got, want.data);
    free(got);
    buf_free(&src);
    buf_free(&data);
    buf_free(&want);
}

static void test_invalid_utf8_in_data(void **state)
{
    (void)state;
    static const struct {
        const char *data, *want;
    } cases[] = {
        {"a\xff<b", "a\xef\xbf\xbd&lt;b|a\xef\xbf\xbd<b"},
        {"\xe0\xb8", "\xef\xbf\xbd|\xef\xbf\xbd"},                   /* truncated */
        {"\xc0\xafx", "\xef\xbf\xbd\xef\xbf\xbdx|\xef\xbf\xbd\xef\xbf\xbdx"}, /* overlong */
        {"\xed\xa0\x80.", "\xef\xbf\xbd.|\xef\xbf\xbd."}, /* surrogate: one unit */
    };
    tmpl *t = NULL;
    td_error e;
    assert_int_equal(tmpl_compile("{{x}}|{{{x}}}", 13, &t, &e), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* jansson refuses invalid UTF-8 in json_string, not in the nocheck form */
        json_t *d = json_object();
        json_object_set_new(d, "x", json_stringn_nocheck(cases[i].data, strlen(cases[i].data)));
        buf b;
        buf_init(&b, BUF_NOCAP);
        assert_int_equal(tmpl_render(t, d, NULL, NULL, &b, &e), 0);
        if (strcmp(b.data, cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\"", i, b.data);
        buf_free(&b);
        json_decref(d);
    }
    tmpl_free(t);
}

static int calls;

static const char *counting_partial(void *ud, const char *name, size_t *len)
{
    (void)ud;
    calls++;
    if (strcmp(name, "footer") == 0) {
        static const char footer[] = "<p>Bye {{name}}</p>\n{{>x}}";
        *len = sizeof footer - 1;
        return footer;
    }
    return NULL;
}

static void test_compile_once_render_many(void **state)
{
    (void)state;
    const char *src = "Hello {{name}}!\n{{#items}}- {{title}} ({{price}})\n{{/items}}{{>footer}}";
    tmpl *t = NULL;
    td_error e;
    assert_int_equal(tmpl_compile(src, strlen(src), &t, &e), 0);
    calls = 0;
    buf b;
    buf_init(&b, BUF_NOCAP);
    for (int i = 0; i < 2000; i++) {
        json_t *d = json_pack("{s:s+, s:[{s:s, s:i}, {s:s, s:f}]}", "name", "user", i % 2 ? "A" : "B",
                              "items", "title", "pen", "price", i, "title", "ink", "price", 1.25);
        char want[256];
        snprintf(want, sizeof want, "Hello user%s!\n- pen (%d)\n- ink (1.25)\n<p>Bye user%s</p>\n",
                 i % 2 ? "A" : "B", i, i % 2 ? "A" : "B");
        buf_reset(&b);
        assert_int_equal(tmpl_render(t, d, counting_partial, NULL, &b, &e), 0);
        assert_string_equal(b.data, want);
        json_decref(d);
    }
    /* footer and the missing x were each asked for once, then cached */
    assert_int_equal(calls, 2);
    tmpl_forget_partials(t);
    buf_reset(&b);
    json_t *d = json_pack("{s:s}", "name", "z");
    assert_int_equal(tmpl_render(t, d, counting_partial, NULL, &b, &e), 0);
    assert_int_equal(calls, 4);
    json_decref(d);
    buf_free(&b);
    tmpl_free(t);
}

static void test_partial_recursion_cap(void **state)
{
    (void)state;
    char *out = NULL;
    td_error e;
    assert_int_equal(render("{{>p}}", "{}", "{\"p\": \"x{{>p}}\"}", &out, &e), TD_ETOOBIG);
    assert_string_equal(e.msg, "partials nested more than 64 deep (is partial 'p' recursive?)");
    assert_string_equal(out, ""); /* nothing half-rendered is left */
    free(out);
    /* recursion through parents and dynamic names is capped the same way */
    assert_int_equal(render("{{<p}}{{/p}}", "{}", "{\"p\": \"{{<p}}{{/p}}\"}", &out, &e),
                     TD_ETOOBIG);
    free(out);
    assert_int_equal(render("{{>*n}}", "{\"n\": \"p\"}", "{\"p\": \"{{>*n}}\"}", &out, &e),
                     TD_ETOOBIG);
    free(out);
    /* bounded recursion driven by the data is fine */
    assert_int_equal(render("{{>node}}",
                            "{\"c\": 1, \"k\": [{\"c\": 2, \"k\": [{\"c\": 3, \"k\": []}]}]}",
                            "{\"node\": \"{{c}}({{#k}}{{>node}}{{/k}})\"}", &out, &e),
                     0);
    assert_string_equal(out, "1(2(3()))");
    free(out);
    /* a partial that does not compile fails the render and says which */
    assert_int_equal(render("a{{>bad}}", "{}", "{\"bad\": \"\\n{{#x}}\"}", &out, &e), TD_EINVAL);
    assert_string_equal(e.msg, "partial 'bad': line 2, column 7: unclosed section 'x' (opened "
                               "at line 2, column 1): expected {{/x}}");
    free(out);
}

static void test_output_cap(void **state)
{
    (void)state;
    tmpl *t = NULL;
    td_error e;
    const char *src = "{{#l}}0123456789{{/l}}";
    assert_int_equal(tmpl_compile(src, strlen(src), &t, &e), 0);
    json_t *d = json_pack("{s:[iiiiiiiiii]}", "l", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    tmpl_limits lim = {.max_output = 95};
    tmpl_set_limits(t, &lim);
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_puts(&b, "kept:");
    assert_int_equal(tmpl_render(t, d, NULL, NULL, &b, &e), TD_ETOOBIG);
    assert_string_equal(e.msg, "rendered output passes the cap of 95 bytes");
    assert_string_equal(b.data, "kept:"); /* put back as it was */
    lim.max_output = 100;
    tmpl_set_limits(t, &lim);
    assert_int_equal(tmpl_render(t, d, NULL, NULL, &b, &e), 0);
    assert_int_equal(b.len, 105);
    buf_free(&b);
    /* the output buffer's own cap counts too */
    buf_init(&b, 50);
    assert_int_equal(tmpl_render(t, d, NULL, NULL, &b, &e), TD_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    /* exponential partials hit the output cap or the step cap, not the clock */
    tmpl_free(t);
    char *out = NULL;
    int rc = render("{{>a}}", "{}",
                    "{\"a\": \"{{>b}}{{>b}}{{>b}}{{>b}}\", \"b\": \"{{>c}}{{>c}}{{>c}}{{>c}}\","
                    " \"c\": \"{{>d}}{{>d}}{{>d}}{{>d}}\", \"d\": \"{{>e}}{{>e}}{{>e}}{{>e}}\","
                    " \"e\": \"{{>f}}{{>f}}{{>f}}{{>f}}\", \"f\": \"{{>g}}{{>g}}{{>g}}{{>g}}\","
                    " \"g\": \"{{>h}}{{>h}}{{>h}}{{>h}}\", \"h\": \"{{>i}}{{>i}}{{>i}}{{>i}}\","
                    " \"i\": \"{{>j}}{{>j}}{{>j}}{{>j}}\", \"j\": \"{{>k}}{{>k}}{{>k}}{{>k}}\","
                    " \"k\": \"{{>l}}{{>l}}{{>l}}{{>l}}\", \"l\": \"{{>m}}{{>m}}{{>m}}{{>m}}\","
                    " \"m\": \"{{>n}}{{>n}}{{>n}}{{>n}}\", \"n\": \"{{>o}}{{>o}}{{>o}}{{>o}}\"}",
                    &out, &e);
    assert_int_equal(rc, TD_ETOOBIG);
    assert_non_null(strstr(e.msg, "steps"));
    free(out);
    json_decref(d);
}

static void test_hostile(void **state)
{
    (void)state;
    td_error e;
    tmpl *t = NULL;
    /* 10,000 nested sections: refused, no deep recursion */
    buf b;
    buf_init(&b, BUF_NOCAP);
    for (int i = 0; i < 10000; i++)
        buf_printf(&b, "{{#s%d}}", i);
    for (int i = 9999; i >= 0; i--)
        buf_printf(&b, "{{/s%d}}", i);
    assert_int_equal(tmpl_compile(b.data, b.len, &t, &e), TD_ETOOBIG);
    assert_string_equal(e.msg, "line 1, column 791: sections nested more than 100 deep");
    assert_null(t);
    /* 100 levels are allowed and render */
    buf_reset(&b);
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "{{#a}}");
    buf_puts(&b, "{{v}}");
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "{{/a}}");
    assert_int_equal(tmpl_compile(b.data, b.len, &t, &e), 0);
    json_t *d = json_pack("{s:{s:b}, s:s}", "a", "a", 1, "v", "deep");
    buf out;
    buf_init(&out, BUF_NOCAP);
    assert_int_equal(tmpl_render(t, d, NULL, NULL, &out, &e), 0);
    assert_string_equal(out.data, "deep");
    tmpl_free(t);
    json_decref(d);
    /* a very long tag name is refused; a very long comment is fine */
    buf_reset(&b);
    buf_puts(&b, "{{");
    for (int i = 0; i < 100000; i++)
        buf_putc(&b, 'x');
    buf_puts(&b, "}}");
    assert_int_equal(tmpl_compile(b.data, b.len, &t, &e), TD_ETOOBIG);
    assert_string_equal(e.msg, "line 1, column 1: tag name longer than 1024 bytes");
    b.data[2] = '!';
    assert_int_equal(tmpl_compile(b.data, b.len, &t, &e), 0);
    buf_reset(&out);
    assert_int_equal(tmpl_render(t, NULL, NULL, NULL, &out, &e), 0);
    assert_int_equal(out.len, 0);
    tmpl_free(t);
    /* many unterminated openers fail at the first, quickly */
    buf_reset(&b);
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "{{ ");
    assert_int_equal(tmpl_compile(b.data, b.len, &t, &e), TD_EINVAL);
    /* NUL bytes in a tag name */
    assert_int_equal(tmpl_compile("{{a\0b}}", 7, &t, &e), TD_EINVAL);
    /* a template over the size cap */
    assert_int_equal(tmpl_compile("", (size_t)TMPL_MAX_SRC + 1, &t, &e), TD_ETOOBIG);
    buf_free(&out);
    buf_free(&b);
}

static void test_inheritance_email(void **state)
{
    (void)state;
    /* the way a campaign uses a layout: blocks overridden, indentation kept */
    char *out = NULL;
    td_error e;
    assert_int_equal(
        render("{{<layout}}\n{{$body}}\n<p>Hi {{name}}</p>\n<p>News</p>\n{{/body}}\n{{/layout}}\n",
               "{\"name\": \"Ann\"}",
               "{\"layout\": \"<html>\\n  <body>\\n    {{$body}}\\n    default\\n    "
               "{{/body}}\\n  </body>\\n</html>\\n\"}",
               &out, &e),
        0);
    assert_string_equal(out,
                        "<html>\n  <body>\n    <p>Hi Ann</p>\n    <p>News</p>\n  </body>\n</html>\n");
    free(out);
}

static void test_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/tmpl-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *p = xasprintf("%s/footer.mustache", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("-- {{name}}\n", f);
    fclose(f);
    char *outside = xasprintf("%s.mustache", dir); /* a sibling file, dir/../X */
    f = fopen(outside, "w");
    assert_non_null(f);
    fputs("SECRET", f);
    fclose(f);

    tmpl_dir *d = NULL;
    td_error e;
    assert_int_equal(tmpl_dir_open("/nonexistent/tmpl", &d, &e), TD_ENOTFOUND);
    assert_int_equal(tmpl_dir_open(dir, &d, &e), 0);
    size_t len = 0;
    const char *s = tmpl_dir_partial(d, "footer", &len);
    assert_non_null(s);
    assert_int_equal(len, 12);
    assert_null(tmpl_dir_partial(d, "missing", &len));
    const char *base = strrchr(dir, '/') + 1;
    char *up = xasprintf("../%s", base);
    static const char *refused[] = {"../etc/passwd", "a/b", "..", ".hidden", "a\\b", "", "x\n"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        assert_null(tmpl_dir_partial(d, refused[i], &len));
    assert_null(tmpl_dir_partial(d, up, &len));

    const char *src = "Hi\n  {{>footer}}\n{{>../x}}";
    tmpl *t = NULL;
    assert_int_equal(tmpl_compile(src, strlen(src), &t, &e), 0);
    json_t *data = json_pack("{s:s}", "name", "Bo");
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(tmpl_render(t, data, tmpl_dir_partial, d, &b, &e), 0);
    assert_string_equal(b.data, "Hi\n  -- Bo\n");
    buf_free(&b);
    json_decref(data);
    tmpl_free(t);
    tmpl_dir_free(d);
    unlink(p);
    unlink(outside);
    rmdir(dir);
    free(p);
    free(outside);
    free(up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_render_table),
        cmocka_unit_test(test_name_memo),
        cmocka_unit_test(test_invalid_utf8_in_data),
        cmocka_unit_test(test_compile_once_render_many),
        cmocka_unit_test(test_partial_recursion_cap),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_inheritance_email),
        cmocka_unit_test(test_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
