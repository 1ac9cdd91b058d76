/* Unit tests for mime/html2text: a table of HTML and the exact text it must
 * give, wrapping checks, and refused input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uniwidth.h>

#include "mime/html2text.h"
#include "util/err.h"
#include "util/utf8.h"

static const struct h2t_case {
    const char *what;
    unsigned width;
    const char *html, *text;
} cases[] = {
    {"headings", 0, "<h1>Title</h1><h2>Sub</h2><h3>Third</h3><p>Body</p>",
     "Title\n=====\n\nSub\n---\n\n### Third\n\nBody\n"},
    {"paragraphs and br", 0, "<p>one<br>two<br><br>four</p><p>next</p>",
     "one\ntwo\n\nfour\n\nnext\n"},
    {"whitespace collapsed", 0, "<p>  a \n\t b   </p>\n\n<div>c</div><div>d</div>",
     "a b\n\nc\nd\n"},
    {"ordered list with start, nested bullets", 0,
     "<ol start=\"9\"><li>nine</li><li>ten<ul><li>inner</li></ul></li></ol>",
     "9. nine\n10. ten\n    * inner\n"},
    {"unclosed tags", 0, "<p>one<p>two<ul><li>x<li>y</ul>tail", "one\n\ntwo\n\n* x\n* y\n\ntail\n"},
    {"links numbered once each; self, fragment and javascript links not", 0,
     "<p><a href=\"https://a.example/x\">A</a> <a href=\"https://a.example/x\">again</a> "
     "<a href=\"https://b.example/\">https://b.example/</a> <a href=\"#top\">top</a> "
     "<a href=\"javascript:alert(1)\">js</a> <a href=\"mailto:me@example.com\">"
     "me@example.com</a> <a href=\" https://c.example/\n\">C</a></p>",
     "A [1] again [1] https://b.example/ top js me@example.com C [2]\n\nLinks:\n"
     "[1] https://a.example/x\n[2] https://c.example/\n"},
    {"images by alt text; an image link without alt keeps its number", 0,
     "<a href=\"https://a.example/\"><img src=\"x\" alt=\"\"></a> <img alt=\"Logo\"> "
     "<img src=\"pixel.gif\">",
     "[1] Logo\n\nLinks:\n[1] https://a.example/\n"},
    {"head, script, style, hidden and display:none dropped", 0,
     "<head><title>T</title><style>p{}</style></head><body><div style=\"DISPLAY : none\">"
     "preheader</div><p hidden>h</p><script>x()</script><p>seen</p></body>",
     "seen\n"},
    {"entities", 0, "<p>&amp; &lt;b&gt; &eacute; &#x627;&#x644; a&nbsp;&nbsp;b &copy;</p>",
     "& <b> \xc3\xa9 \xd8\xa7\xd9\x84 a  b \xc2\xa9\n"},
    {"right-to-left text kept in logical order", 0,
     "<p dir=\"rtl\">\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 <a href=\"https://ar.example/\">"
     "\xd9\x85\xd9\x88\xd9\x82\xd8\xb9\xd9\x86\xd8\xa7</a> \xd8\xa7\xd9\x84\xd9\x8a\xd9\x88"
     "\xd9\x85</p>",
     "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd9\x85\xd9\x88\xd9\x82\xd8\xb9\xd9\x86\xd8\xa7"
     " [1] \xd8\xa7\xd9\x84\xd9\x8a\xd9\x88\xd9\x85\n\nLinks:\n[1] https://ar.example/\n"},
    {"pre kept, blockquote prefixed", 0,
     "<pre>  a\n    b</pre><blockquote><p>q1</p><p>q2</p></blockquote><p>after</p>",
     "  a\n    b\n\n> q1\n>\n> q2\n\nafter\n"},
    {"table cells and rows", 0,
     "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", "a b\nc d\n"},
    {"a charset named in the HTML is ignored: input is UTF-8", 0,
     "<meta charset=\"iso-8859-1\"><p>caf\xc3\xa9</p>", "caf\xc3\xa9\n"},
    {"hr", 0, "<p>a</p><hr><p>b</p>", "a\n\n------------------------------\n\nb\n"},
    {"text only", 0, "plain text only", "plain text only\n"},
    {"empty", 0, "", ""},
    {"control characters dropped", 0,
     "<p>a&#1;b\x01"
     "c\x7f"
     "d</p>",
     "abcd\n"},
    {"wrapping at 40", 40,
     "<p>The quick brown fox jumps over the lazy dog and keeps running past the farm "
     "gate.</p><ul><li>An item that is long enough to wrap onto a second line here</li></ul>"
     "<blockquote>A quoted paragraph that is long enough to wrap too.</blockquote>",
     "The quick brown fox jumps over the lazy\ndog and keeps running past the farm\ngate.\n\n"
     "* An item that is long enough to wrap\n  onto a second line here\n\n"
     "> A quoted paragraph that is long\n> enough to wrap too.\n"},
    {"URLs never broken", 40,
     "<p>see https://example.com/a/very/long/url/that/cannot/be/broken/anywhere ok</p>",
     "see\nhttps://example.com/a/very/long/url/that/cannot/be/broken/anywhere\nok\n"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct h2t_case *c = &cases[i];
        buf b;
        buf_init(&b, BUF_NOCAP);
        td_error e = {0};
        int rc = html2text(c->html, strlen(c->html), c->width, &b, &e);
        if (rc || strcmp(b.data, c->text))
            fail_msg("%s: rc=%d %s\n got: [%s]\nwant: [%s]", c->what, rc, e.msg, b.data, c->text);
        buf_free(&b);
    }
}

/* Thai and Arabic paragraphs wrap at blanks, never inside a character, and
 * every line fits the width unless it is one unbreakable word. */
static void test_wrap_scripts(void **state)
{
    (void)state;
    buf html, b;
    buf_init(&html, BUF_NOCAP);
    buf_init(&b, BUF_NOCAP);
    for (int i = 0; i < 30; i++)
        buf_puts(&html, "\xe0\xb8\xa0\xe0\xb8\xb2\xe0\xb8\xa9\xe0\xb8\xb2\xe0\xb9\x84\xe0\xb8"
                        "\x97\xe0\xb8\xa2 "
                        "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd9\x83\xd9\x85 ");
    td_error e = {0};
    assert_int_equal(html2text(html.data, html.len, 30, &b, &e), 0);
    assert_true(utf8_valid(b.data, b.len, NULL));
    size_t lines = 0;
    for (char *p = b.data; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(utf8_valid(p, (size_t)(nl - p), NULL));
        int w = u8_width((const uint8_t *)p, (size_t)(nl - p), "UTF-8");
        if (w > 30)
            fail_msg("line %zu is %d columns: %.*s", lines, w, (int)(nl - p), p);
        assert_true(nl == p || nl[-1] != ' ');
        lines++;
        p = nl + 1;
    }
    assert_true(lines > 10);
    buf_free(&html);
    buf_free(&b);
}

static void test_refused(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_puts(&b, "kept");
    td_error e = {0};
    assert_int_equal(html2text("<p>a\xff</p>", 8, 0, &b, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "not valid UTF-8 (byte 5)"));
    assert_int_equal(html2text("<p>a\0b</p>", 10, 0, &b, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "NUL byte (byte 5)"));
    assert_string_equal(b.data, "kept");
    /* out's own cap: the buffer is left as it was */
    buf small;
    buf_init(&small, 8);
    assert_int_equal(html2text("<p>longer than eight</p>", 24, 0, &small, &e), TD_ETOOBIG);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&b);
}

/* Many links: numbers stop at the cap and the text is still there. */
static void test_many_links(void **state)
{
    (void)state;
    buf html, b;
    buf_init(&html, BUF_NOCAP);
    buf_init(&b, BUF_NOCAP);
    for (int i = 0; i < HTML2TEXT_MAX_LINKS + 5; i++)
        buf_printf(&html, "<a href=\"https://l.example/%d\">t%d</a> ", i, i);
    td_error e = {0};
    assert_int_equal(html2text(html.data, html.len, 0, &b, &e), 0);
    assert_non_null(strstr(b.data, "t999 [1000]"));
    assert_non_null(strstr(b.data, "t1000 t1001"));
    assert_non_null(strstr(b.data, "\n[1000] https://l.example/999\n"));
    assert_null(strstr(b.data, "[1001]"));
    buf_free(&html);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_wrap_scripts),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_many_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
