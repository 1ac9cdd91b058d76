/* Unit tests for smtp/smtp_reply: the incremental parser on whole replies,
 * on every split of their bytes, on hostile input; and the classifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "util/err.h"

/* Parses all of s (expects exactly one reply, consuming every byte), feeding
 * it in pieces of `step` bytes. Returns the feed error, if any. */
static int parse_one(const char *s, size_t n, size_t step, smtp_reply *out, td_error *e)
{
    smtp_rparser p;
    smtp_rparser_init(&p, 0, 0);
    size_t off = 0;
    bool done = false;
    int rc = TD_OK;
    while (off < n && !done) {
        size_t k = n - off < step ? n - off : step;
        size_t used = 0;
        rc = smtp_rparser_feed(&p, s + off, k, &used, out, &done, e);
        if (rc)
            break;
        off += used;
    }
    smtp_rparser_free(&p);
    if (!rc && (!done || off != n))
        fail_msg("no single complete reply (done=%d off=%zu n=%zu)", done, off, n);
    return rc;
}

static void test_replies(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int code;
        const char *enh;
        const char *text;
        size_t nlines;
        int status;
    } cases[] = {
        {"250 OK\r\n", 250, "", "OK", 1, SMTP_OK},
        {"250\r\n", 250, "", "", 1, SMTP_OK},
        {"354 End data with <CR><LF>.<CR><LF>\r\n", 354, "", "End data with <CR><LF>.<CR><LF>", 1,
         SMTP_OK},
        {"250 2.1.5 Ok\r\n", 250, "2.1.5", "Ok", 1, SMTP_OK},
        {"451 4.7.1 Greylisted, try again\r\n", 451, "4.7.1", "Greylisted, try again", 1,
         SMTP_TEMP},
        {"421 Service not available\r\n", 421, "", "Service not available", 1, SMTP_TEMP},
        /* Gmail-style multi-line 5xx: enhanced code repeated on every line */
        {"550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550-5.1.1 Please try double-checking the recipient's email\r\n"
         "550 5.1.1 address. x11si123 - gsmtp\r\n",
         550, "5.1.1",
         "The email account that you tried to reach does not exist. Please try "
         "double-checking the recipient's email address. x11si123 - gsmtp",
         3, SMTP_PERM},
        /* EHLO */
        {"250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 SMTPUTF8\r\n", 250,
         "", "mx.example.com Hello PIPELINING SIZE 10240000 SMTPUTF8", 4, SMTP_OK},
        /* bare LF line ends */
        {"250-first\n250 second\n", 250, "", "first second", 2, SMTP_OK},
        /* an enhanced code of the wrong class is not kept (RFC 3463: the
         * basic code wins) */
        {"250 5.1.1 odd\r\n", 250, "", "5.1.1 odd", 1, SMTP_OK},
        {"554 5.7.1 <a@b>: Relay access denied\r\n", 554, "5.7.1", "<a@b>: Relay access denied", 1,
         SMTP_PERM},
        /* controls and invalid UTF-8 are made safe for people; valid UTF-8 kept */
        {"550 bad\x01\tbyte \xff and \xe0\xb8\xaa ok\r\n", 550, "",
         "bad? byte ? and \xe0\xb8\xaa ok", 1, SMTP_PERM},
        {"452 4.5.3 Too many recipients\r\n", 452, "4.5.3", "Too many recipients", 1, SMTP_TEMP},
        {"552-5.3.4 Message size\r\n552 exceeds fixed limit\r\n", 552, "5.3.4",
         "Message size exceeds fixed limit", 2, SMTP_PERM},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        /* every split: whole, byte by byte, and odd pieces */
        size_t steps[] = {n, 1, 2, 3, 7};
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            smtp_reply r;
            td_error e;
            int rc = parse_one(cases[i].in, n, steps[k], &r, &e);
            if (rc)
                fail_msg("case %zu step %zu: %s", i, steps[k], e.msg);
            assert_int_equal(r.code, cases[i].code);
            assert_string_equal(r.enh, cases[i].enh);
            if (strcmp(r.text, cases[i].text) != 0)
                fail_msg("case %zu: text '%s' want '%s'", i, r.text, cases[i].text);
            assert_int_equal(r.nlines, cases[i].nlines);
            assert_int_equal(smtp_status_of(r.code), cases[i].status);
            smtp_reply_clear(&r);
        }
    }
}

static void test_pipelined_stream(void **state)
{
    (void)state;
    /* MAIL, three RCPT and DATA replies arrive in one read */
    const char *s = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n"
                    "450-4.2.0 mailbox busy\r\n450 4.2.0 try later\r\n354 go ahead\r\n250 par";
    static const int codes[] = {250, 250, 550, 450, 354};
    smtp_rparser p;
    smtp_rparser_init(&p, 0, 0);
    size_t off = 0, n = strlen(s);
    for (size_t i = 0; i < 5; i++) {
        smtp_reply r;
        bool done;
        size_t used;
        td_error e;
        assert_int_equal(smtp_rparser_feed(&p, s + off, n - off, &used, &r, &done, &e), TD_OK);
        assert_true(done);
        assert_int_equal(r.code, codes[i]);
        off += used;
        smtp_reply_clear(&r);
    }
    /* the partial line waits for more */
    smtp_reply r;
    bool done;
    size_t used;
    td_error e;
    assert_int_equal(smtp_rparser_feed(&p, s + off, n - off, &used, &r, &done, &e), TD_OK);
    assert_false(done);
    assert_int_equal(used, n - off);
    assert_int_equal(smtp_rparser_feed(&p, "tial\r\n", 6, &used, &r, &done, &e), TD_OK);
    assert_true(done);
    assert_string_equal(r.text, "partial");
    smtp_reply_clear(&r);
    smtp_rparser_free(&p);
}

static void test_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *words;
    } cases[] = {
        {"hello there\r\n", TD_EINVAL, "not an SMTP reply"},
        {"25\r\n", TD_EINVAL, "not an SMTP reply"},
        {"650 no\r\n", TD_EINVAL, "not an SMTP reply"},
        {"150 no\r\n", TD_EINVAL, "not an SMTP reply"},
        {"250x\r\n", TD_EINVAL, "not an SMTP reply"},
        {"2a0 x\r\n", TD_EINVAL, "not an SMTP reply"},
        {"250-a\r\n550 b\r\n", TD_EINVAL, "changed the reply code"},
        {"250 a\0b\r\n", TD_EINVAL, "NUL"},
        {"\r\n", TD_EINVAL, "not an SMTP reply"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        if (i == 7)
            n = 9; /* the embedded NUL */
        smtp_rparser p;
        smtp_rparser_init(&p, 0, 0);
        smtp_reply r;
        bool done;
        size_t used;
        td_error e;
        int rc = smtp_rparser_feed(&p, cases[i].in, n, &used, &r, &done, &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d", i, rc);
        if (!strstr(e.msg, cases[i].words))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].words);
        if (done)
            smtp_reply_clear(&r);
        smtp_rparser_free(&p);
    }
}

static void test_caps(void **state)
{
    (void)state;
    smtp_rparser p;
    smtp_reply r;
    bool done;
    size_t used;
    td_error e;

    /* an endless line: refused at the cap, whatever the pieces */
    smtp_rparser_init(&p, 64, 5);
    char chunk[40];
    memset(chunk, 'x', sizeof chunk);
    memcpy(chunk, "250 ", 4);
    assert_int_equal(smtp_rparser_feed(&p, chunk, sizeof chunk, &used, &r, &done, &e), TD_OK);
    assert_false(done);
    assert_int_equal(smtp_rparser_feed(&p, chunk, sizeof chunk, &used, &r, &done, &e), TD_ETOOBIG);
    assert_non_null(strstr(e.msg, "longer than 64"));
    smtp_rparser_free(&p);

    /* exactly at the cap is fine */
    smtp_rparser_init(&p, 8, 5);
    assert_int_equal(smtp_rparser_feed(&p, "250 abcd\r\n", 10, &used, &r, &done, &e), TD_OK);
    assert_true(done);
    assert_string_equal(r.text, "abcd");
    smtp_reply_clear(&r);
    smtp_rparser_free(&p);

    /* too many lines */
    smtp_rparser_init(&p, 0, 3);
    const char *many = "250-a\r\n250-b\r\n250-c\r\n250 d\r\n";
    assert_int_equal(smtp_rparser_feed(&p, many, strlen(many), &used, &r, &done, &e), TD_ETOOBIG);
    assert_non_null(strstr(e.msg, "more than 3 lines"));
    smtp_rparser_free(&p);

    /* defaults: a 10 MB reply is refused long before its end */
    smtp_rparser_init(&p, 0, 0);
    size_t big = 10 * 1024 * 1024;
    char *b = malloc(big);
    for (size_t i = 0; i < big; i += 8)
        memcpy(b + i, "250-xx\r\n", 8);
    int rc = smtp_rparser_feed(&p, b, big, &used, &r, &done, &e);
    assert_int_equal(rc, TD_ETOOBIG);
    assert_true(used <= 8 * (SMTP_REPLY_LINES_MAX + 1));
    free(b);
    smtp_rparser_free(&p);
}

static void test_status(void **state)
{
    (void)state;
    static const struct {
        int code;
        int status;
    } cases[] = {
        {220, SMTP_OK},   {250, SMTP_OK},   {251, SMTP_OK},   {354, SMTP_OK},   {421, SMTP_TEMP},
        {450, SMTP_TEMP}, {451, SMTP_TEMP}, {452, SMTP_TEMP}, {500, SMTP_PERM}, {550, SMTP_PERM},
        {552, SMTP_PERM}, {554, SMTP_PERM}, {0, SMTP_TEMP},   {199, SMTP_TEMP}, {600, SMTP_TEMP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(smtp_status_of(cases[i].code), cases[i].status);
    assert_string_equal(smtp_status_name(SMTP_OK), "ok");
    assert_string_equal(smtp_status_name(SMTP_TEMP), "temp");
    assert_string_equal(smtp_status_name(SMTP_PERM), "perm");
    assert_string_equal(smtp_status_name(SMTP_UNKNOWN), "unknown");

    smtp_reply r, c;
    smtp_reply_set_local(&r, "5.6.7", "needs %s", "SMTPUTF8");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.enh, "5.6.7");
    assert_string_equal(r.text, "needs SMTPUTF8");
    smtp_reply_copy(&c, &r);
    smtp_reply_clear(&r);
    assert_string_equal(c.text, "needs SMTPUTF8");
    smtp_reply_clear(&c);
    smtp_reply_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies), cmocka_unit_test(test_pipelined_stream),
        cmocka_unit_test(test_hostile), cmocka_unit_test(test_caps),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
