/* Unit tests for mime/hdr: exact output for chosen fields, a strict
 * round trip (tests/unit/hdr_check.h: folding, encoded-word length, no split
 * UTF-8, decoding back to the input) over a table of values in several
 * scripts, and the values that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hdr_check.h"
#include "mime/addr.h"
#include "mime/hdr.h"
#include "util/err.h"

#define AR "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7" /* مرحبا */
#define TH "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5" /* สวัสดี */

/* ---- exact output ---- */

static const struct exact_case {
    const char *name, *value, *expected;
} text_cases[] = {
    {"Subject", "Hello world", "Subject: Hello world\r\n"},
    {"Subject", "", "Subject:\r\n"},
    /* folded at the last blank that keeps the line within 78 columns */
    {"Subject",
     "The quick brown fox jumps over the lazy dog and keeps running past the "
     "farm gate",
     "Subject: The quick brown fox jumps over the lazy dog and keeps running past\r\n"
     " the farm gate\r\n"},
    /* non-ASCII: Q when shorter (Latin), B when shorter (Arabic, Thai) */
    {"Subject", "Caf\xc3\xa9 cr\xc3\xa8me", "Subject: =?UTF-8?B?Q2Fmw6kgY3LDqG1l?=\r\n"},
    {"Subject", "Our caf\xc3\xa9 opens on Monday",
     "Subject: =?UTF-8?Q?Our_caf=C3=A9_opens_on_Monday?=\r\n"},
    {"Subject", AR, "Subject: =?UTF-8?B?2YXYsdit2KjYpw==?=\r\n"},
    {"Subject", TH, "Subject: =?UTF-8?B?4Liq4Lin4Lix4Liq4LiU4Li1?=\r\n"},
    /* ASCII that a decoder would take for an encoded word is encoded */
    {"Subject", "=?UTF-8?Q?x?=", "Subject: =?UTF-8?B?PT9VVEYtOD9RP3g/PQ==?=\r\n"},
    {"Subject", "Price =? ask us", "Subject: =?UTF-8?Q?Price_=3D=3F_ask_us?=\r\n"},
    /* leading and trailing blanks survive only inside an encoded word */
    {"Subject", " padded ", "Subject: =?UTF-8?Q?_padded_?=\r\n"},
    {"X-Campaign", "spring\tsale", "X-Campaign: spring\tsale\r\n"},
};

static void test_text_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        const struct exact_case *c = &text_cases[i];
        buf b;
        buf_init(&b, BUF_NOCAP);
        td_error e = {0};
        int rc = hdr_text(&b, c->name, c->value, strlen(c->value), &e);
        if (rc || strcmp(b.data, c->expected))
            fail_msg("case %zu: rc=%d (%s)\n got: %s\nwant: %s", i, rc, e.msg, b.data, c->expected);
        buf_free(&b);
    }
}

/* ---- round trip ---- */

static void roundtrip(const char *name, const char *v, size_t n)
{
    buf b, d;
    buf_init(&b, BUF_NOCAP);
    buf_init(&d, BUF_NOCAP);
    td_error e = {0};
    int rc = hdr_text(&b, name, v, n, &e);
    if (rc)
        fail_msg("%s (%zu bytes): rc=%d %s", name, n, rc, e.msg);
    const char *why = hc_unstructured(b.data, b.len, HDR_FOLD, &d);
    if (why)
        fail_msg("%s (%zu bytes): %s\n%s", name, n, why, b.data);
    if (d.len != n || memcmp(d.data, v, n))
        fail_msg("%s (%zu bytes): decodes to\n%s\ninstead of\n%.*s", name, n, d.data, (int)n, v);
    buf_free(&b);
    buf_free(&d);
}

static void test_text_roundtrip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "plain",
        "a  b   c", /* runs of blanks kept */
        "tab\tinside",
        "Thai " TH " and Arabic " AR " mixed with Latin caf\xc3\xa9",
        AR " " AR " " AR " " AR " " AR " " AR " " AR " " AR " " AR " " AR,
        TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH TH,
        "emoji \xf0\x9f\x8e\x89\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89 party \xf0\x9f\x8e\x89",
        "question? equals= underscore_ quotes\" (parens) <angle> 100%",
        "=?",
        "a=?b",
        "?=",
        "trailing ",
        " leading",
        ("https://example.com/a/very/long/url/that/has/no/blanks/at/all/and/goes/on/and/on/"
         "for/more/than/one/line"),
        "x",
    };
    static const char *const names[] = {"Subject", "X",
                                        "X-A-Rather-Long-Header-Name-To-Push-The-First-Line"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
            roundtrip(names[k], values[i], strlen(values[i]));
    /* the largest value accepted, all of it 3-byte characters */
    size_t n = HDR_VALUE_MAX / 18 * 18;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i += 18)
        memcpy(big + i, TH TH, 18 > n - i ? n - i : 18);
    roundtrip("Subject", big, n);
    /* and as long ASCII words with blanks */
    for (size_t i = 0; i < n; i++)
        big[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 26);
    roundtrip("Subject", big, n);
    free(big);
}

/* ---- refused values ---- */

static const struct bad_case {
    const char *value;
    size_t len;
    int code;
    const char *words;
} bad_cases[] = {
    {"Hi\r\nBcc: victim@example.com", 26, TD_EINVAL,
     "the value of the Subject holds a carriage return (CR) at byte 3"},
    {"Hi\nthere", 8, TD_EINVAL, "line feed (LF) at byte 3"},
    {"Hi\rthere", 8, TD_EINVAL, "carriage return"},
    {"nul\0byte", 8, TD_EINVAL, "NUL byte at byte 4"},
    {"bell\a", 5, TD_EINVAL, "control character"},
    {"del\x7f", 4, TD_EINVAL, "DEL"},
    {"c1 \xc2\x85 next line", 14, TD_EINVAL, "C1 control"},
    {"bad \xff utf8", 10, TD_EINVAL, "not valid UTF-8 (byte 5)"},
    {"overlong \xc0\xaf", 11, TD_EINVAL, "not valid UTF-8"},
    {"cut \xe0\xb8", 6, TD_EINVAL, "not valid UTF-8"},
    {"surrogate \xed\xa0\x80", 13, TD_EINVAL, "not valid UTF-8"},
};

static void test_text_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        buf b;
        buf_init(&b, BUF_NOCAP);
        buf_puts(&b, "Before: x\r\n");
        td_error e = {0};
        int rc = hdr_text(&b, "Subject", c->value, c->len, &e);
        if (rc != c->code || !strstr(e.msg, c->words))
            fail_msg("case %zu: rc=%d msg='%s', want %d with '%s'", i, rc, e.msg, c->code,
                     c->words);
        assert_string_equal(b.data, "Before: x\r\n"); /* nothing written */
        buf_free(&b);
    }
    /* a 1 MB subject is refused with a message that says the limit */
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'a', n);
    buf b;
    buf_init(&b, BUF_NOCAP);
    td_error e = {0};
    assert_int_equal(hdr_text(&b, "Subject", big, n, &e), TD_ETOOBIG);
    assert_non_null(strstr(e.msg, "1048576 bytes; at most 16384"));
    assert_int_equal(b.len, 0);
    assert_int_equal(hdr_text(&b, "Subject", big, HDR_VALUE_MAX + 1, &e), TD_ETOOBIG);
    /* bad field names */
    static const char *const names[] = {"", "Sub ject", "Subject:", "Sub\r\nject", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(hdr_text(&b, names[i], "x", 1, &e), TD_EINVAL);
    /* the buf's own cap */
    buf small;
    buf_init(&small, 20);
    assert_int_equal(hdr_text(&small, "Subject", "a subject too long for 20 bytes", 31, &e),
                     TD_ETOOBIG);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&b);
    free(big);
}

/* ---- mailboxes ---- */

static const struct mb_case {
    const char *in; /* what addr_parse_mailbox gets */
    const char *expected;
    bool smtputf8;
} mb_cases[] = {
    {"jane@example.org", "To: jane@example.org\r\n", false},
    {"Jane Doe <jane@example.org>", "To: Jane Doe <jane@example.org>\r\n", false},
    {"\"Doe, Jane\" <jane@example.org>", "To: \"Doe, Jane\" <jane@example.org>\r\n", false},
    {"\"Jane \\\"JD\\\" Doe\" <jane@example.org>",
     "To: \"Jane \\\"JD\\\" Doe\" <jane@example.org>\r\n", false},
    {"J. Doe <jane@example.org>", "To: \"J. Doe\" <jane@example.org>\r\n", false},
    {AR " <m@example.org>", "To: =?UTF-8?B?2YXYsdit2KjYpw==?= <m@example.org>\r\n", false},
    {"Zo\xc3\xab <z@example.org>", "To: =?UTF-8?Q?Zo=C3=AB?= <z@example.org>\r\n", false},
    {"Zo\xc3\xab Martin <z@example.org>", "To: =?UTF-8?Q?Zo=C3=AB_Martin?= <z@example.org>\r\n",
     false},
    {"\"=?UTF-8?Q?x?=\" <z@example.org>",
     "To: =?UTF-8?B?PT9VVEYtOD9RP3g/PQ==?= <z@example.org>\r\n", false},
    /* an IDN domain is written in A-labels; a UTF-8 local part as is, flagged */
    {"user@b\xc3\xbc"
     "cher.example",
     "To: user@xn--bcher-kva.example\r\n", false},
    {"J\xc3\xb6rg <j\xc3\xb6rg@example.org>",
     "To: =?UTF-8?B?SsO2cmc=?= <j\xc3\xb6rg@example.org>\r\n", true},
};

static void test_mailboxes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mb_cases / sizeof mb_cases[0]; i++) {
        const struct mb_case *c = &mb_cases[i];
        char *dn = NULL;
        addr a;
        td_error e = {0};
        if (addr_parse_mailbox(c->in, &dn, &a, &e))
            fail_msg("case %zu: %s", i, e.msg);
        hdr_mailbox mb = {dn, &a};
        buf b;
        buf_init(&b, BUF_NOCAP);
        bool u = false;
        int rc = hdr_mailboxes(&b, "To", &mb, 1, &u, &e);
        if (rc || strcmp(b.data, c->expected) || u != c->smtputf8)
            fail_msg("case %zu: rc=%d %s smtputf8=%d\n got: %s\nwant: %s", i, rc, e.msg, u, b.data,
                     c->expected);
        buf_free(&b);
        free(dn);
        addr_clear(&a);
    }
}

static void test_mailbox_list_and_hostile(void **state)
{
    (void)state;
    addr a, b2;
    td_error e = {0};
    assert_int_equal(addr_parse("a@example.com", 13, &a, &e), 0);
    assert_int_equal(addr_parse("b@example.com", 13, &b2, &e), 0);
    hdr_mailbox mbs[4] = {
        {"First Person", &a}, {"Second Person", &b2}, {"Third, Person", &a}, {AR " " TH, &b2}};
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(hdr_mailboxes(&b, "To", mbs, 4, NULL, &e), 0);
    assert_string_equal(
        b.data, "To: First Person <a@example.com>, Second Person <b@example.com>,\r\n"
                " \"Third, Person\" <a@example.com>,\r\n"
                " =?UTF-8?B?2YXYsdit2KjYpyDguKrguKfguLHguKrguJTguLU=?= <b@example.com>\r\n");
    /* a display name given directly (not through addr_parse_mailbox) with a
     * line break is refused, never written */
    buf_reset(&b);
    hdr_mailbox evil = {"Eve\r\nBcc: x@example.com", &a};
    assert_int_equal(hdr_mailboxes(&b, "From", &evil, 1, NULL, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "the display name of the From holds"));
    assert_int_equal(b.len, 0);
    hdr_mailbox badu = {"bad \xff", &a};
    assert_int_equal(hdr_mailboxes(&b, "From", &badu, 1, NULL, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "UTF-8"));
    assert_int_equal(hdr_mailboxes(&b, "From", mbs, 0, NULL, &e), TD_EINVAL);
    buf_free(&b);
    addr_clear(&a);
    addr_clear(&b2);
}

static void test_raw_list_id_date(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, BUF_NOCAP);
    td_error e = {0};
    const char *v = "<https://news.example.com/u/"
                    "eyJjIjo0MiwicyI6MTIzNDU2fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ>, "
                    "<mailto:unsubscribe+42.123456@news.example.com?subject=unsubscribe>";
    assert_int_equal(hdr_raw(&b, "List-Unsubscribe", v, strlen(v), &e), 0);
    assert_string_equal(
        b.data,
        "List-Unsubscribe:\r\n"
        " <https://news.example.com/u/eyJjIjo0MiwicyI6MTIzNDU2fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ>,\r\n"
        " <mailto:unsubscribe+42.123456@news.example.com?subject=unsubscribe>\r\n");
    buf_reset(&b);
    assert_int_equal(hdr_raw(&b, "X-Raw", "caf\xc3\xa9", 5, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "non-ASCII"));
    assert_int_equal(hdr_raw(&b, "X-Raw", "a\r\nb", 4, &e), TD_EINVAL);
    char longtok[1200];
    memset(longtok, 'x', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = '\0';
    assert_int_equal(hdr_raw(&b, "X-Raw", longtok, strlen(longtok), &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "cannot be folded"));
    assert_int_equal(b.len, 0);

    assert_int_equal(hdr_list_id(&b, "List-Id", "Weekly News", "weekly.example.com", &e), 0);
    assert_int_equal(hdr_list_id(&b, "List-Id", AR, "ar.example.com", &e), 0);
    assert_int_equal(hdr_list_id(&b, "List-Id", NULL, "bare.example.com", &e), 0);
    assert_string_equal(b.data, "List-Id: Weekly News <weekly.example.com>\r\n"
                                "List-Id: =?UTF-8?B?2YXYsdit2KjYpw==?= <ar.example.com>\r\n"
                                "List-Id: <bare.example.com>\r\n");
    assert_int_equal(hdr_list_id(&b, "List-Id", "x", "bad id", &e), TD_EINVAL);
    assert_int_equal(hdr_list_id(&b, "List-Id", "x", "a..b", &e), TD_EINVAL);
    assert_int_equal(hdr_list_id(&b, "List-Id", "x\n", "a.b", &e), TD_EINVAL);

    buf_reset(&b);
    assert_int_equal(hdr_date(&b, "Date", 1751364000), 0);
    assert_int_equal(hdr_date(&b, "Date", 0), 0);
    assert_int_equal(hdr_date(&b, "Date", 951782400), 0); /* 29 Feb 2000 */
    assert_string_equal(b.data, "Date: Tue, 01 Jul 2025 10:00:00 +0000\r\n"
                                "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
                                "Date: Tue, 29 Feb 2000 00:00:00 +0000\r\n");
    /* past the cap, nothing is left of the field; a year past 9999 is
     * written whole */
    buf capped;
    buf_init(&capped, 20);
    buf_puts(&capped, "X: y\r\n");
    assert_int_equal(hdr_date(&capped, "Date", 951782400), TD_ETOOBIG);
    assert_string_equal(capped.data, "X: y\r\n");
    buf_free(&capped);
    buf_reset(&b);
    assert_int_equal(hdr_date(&b, "Date", (time_t)253402300800), 0);
    assert_string_equal(b.data, "Date: Sat, 01 Jan 10000 00:00:00 +0000\r\n");
    /* every field against strftime (the C locale's names are RFC 5322's) */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        time_t t = (time_t)(x % 253402300800ull); /* up to 9999-12-31 */
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[64];
        strftime(want, sizeof want, "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
        buf_reset(&b);
        assert_int_equal(hdr_date(&b, "Date", t), 0);
        assert_string_equal(b.data, want);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_exact),
        cmocka_unit_test(test_text_roundtrip),
        cmocka_unit_test(test_text_refused),
        cmocka_unit_test(test_mailboxes),
        cmocka_unit_test(test_mailbox_list_and_hostile),
        cmocka_unit_test(test_raw_list_id_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
