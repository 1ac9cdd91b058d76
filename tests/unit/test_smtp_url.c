/* Unit tests for smtp/smtp_url: accepted URLs with their parts and canonical
 * form, refused URLs with the words of their message, masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_url.h"
#include "util/err.h"

static void test_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int kind;
        const char *host;
        unsigned port;
        const char *user, *pass;
        int tls;
        bool verify;
        const char *path;
        const char *canon; /* unmasked */
    } cases[] = {
        {"smtp://mail.example.com", SMTP_URL_SMTP, "mail.example.com", 25, NULL, NULL,
         SMTP_TLS_OPPORTUNISTIC, false, NULL, "smtp://mail.example.com:25"},
        {"SMTP://Mail.Example.COM:2525/", SMTP_URL_SMTP, "mail.example.com", 2525, NULL, NULL,
         SMTP_TLS_OPPORTUNISTIC, false, NULL, "smtp://mail.example.com:2525"},
        {"smtp://user:pass@relay.example.net:587?tls=required", SMTP_URL_SMTP, "relay.example.net",
         587, "user", "pass", SMTP_TLS_REQUIRED, true, NULL,
         "smtp://user:pass@relay.example.net:587?tls=required"},
        {"smtp://u%40x.org:p%3Aa%2Fs%25s@h:25?tls=required&verify=no", SMTP_URL_SMTP, "h", 25,
         "u@x.org", "p:a/s%s", SMTP_TLS_REQUIRED, false, NULL,
         "smtp://u%40x.org:p%3Aa%2Fs%25s@h:25?tls=required&verify=no"},
        /* an unencoded '@' in the password: credentials end at the last '@' */
        {"smtp://me:p@ss@h:25", SMTP_URL_SMTP, "h", 25, "me", "p@ss", SMTP_TLS_OPPORTUNISTIC, false,
         NULL, "smtp://me:p%40ss@h:25"},
        {"smtp://h?tls=none", SMTP_URL_SMTP, "h", 25, NULL, NULL, SMTP_TLS_NONE, false, NULL,
         "smtp://h:25?tls=none"},
        {"smtp://h?tls=opportunistic&verify=yes", SMTP_URL_SMTP, "h", 25, NULL, NULL,
         SMTP_TLS_OPPORTUNISTIC, true, NULL, "smtp://h:25?verify=yes"},
        {"smtps://smtp.example.com", SMTP_URL_SMTPS, "smtp.example.com", 465, NULL, NULL,
         SMTP_TLS_IMPLICIT, true, NULL, "smtps://smtp.example.com:465"},
        {"smtps://a:b@127.0.0.1:1465?verify=no", SMTP_URL_SMTPS, "127.0.0.1", 1465, "a", "b",
         SMTP_TLS_IMPLICIT, false, NULL, "smtps://a:b@127.0.0.1:1465?verify=no"},
        {"smtp://[::1]:2525", SMTP_URL_SMTP, "::1", 2525, NULL, NULL, SMTP_TLS_OPPORTUNISTIC, false,
         NULL, "smtp://[::1]:2525"},
        {"smtp://[2001:DB8::25]", SMTP_URL_SMTP, "2001:db8::25", 25, NULL, NULL,
         SMTP_TLS_OPPORTUNISTIC, false, NULL, "smtp://[2001:db8::25]:25"},
        {"smtp://mx.example.com.:25", SMTP_URL_SMTP, "mx.example.com", 25, NULL, NULL,
         SMTP_TLS_OPPORTUNISTIC, false, NULL, "smtp://mx.example.com:25"},
        /* UTF-8 password (Thai), percent-encoded and raw */
        {"smtp://somchai:%E0%B8%AA%E0%B8%A7%E0%B8%B1@h:25", SMTP_URL_SMTP, "h", 25, "somchai",
         "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1", SMTP_TLS_OPPORTUNISTIC, false, NULL,
         "smtp://somchai:%E0%B8%AA%E0%B8%A7%E0%B8%B1@h:25"},
        {"maildir:/var/spool/tidings/out", SMTP_URL_MAILDIR, NULL, 0, NULL, NULL, 0, false,
         "/var/spool/tidings/out", "maildir:/var/spool/tidings/out"},
        {"MAILDIR:/tmp/a b", SMTP_URL_MAILDIR, NULL, 0, NULL, NULL, 0, false, "/tmp/a b",
         "maildir:/tmp/a b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_url u;
        td_error e;
        td_err_clear(&e);
        int rc = smtp_url_parse(cases[i].in, &u, &e);
        if (rc)
            fail_msg("%s: refused: %s", cases[i].in, e.msg);
        assert_int_equal(u.kind, cases[i].kind);
        if (cases[i].host)
            assert_string_equal(u.host, cases[i].host);
        else
            assert_null(u.host);
        assert_int_equal(u.port, cases[i].port);
        if (cases[i].user) {
            assert_string_equal(u.user, cases[i].user);
            assert_string_equal(u.pass, cases[i].pass);
        } else {
            assert_null(u.user);
            assert_null(u.pass);
        }
        if (u.kind != SMTP_URL_MAILDIR) {
            assert_int_equal(u.tls, cases[i].tls);
            assert_int_equal(u.verify, cases[i].verify);
        }
        if (cases[i].path)
            assert_string_equal(u.path, cases[i].path);
        char *canon = smtp_url_format(&u, false);
        assert_string_equal(canon, cases[i].canon);
        /* the canonical form parses back to itself */
        smtp_url v;
        assert_int_equal(smtp_url_parse(canon, &v, &e), TD_OK);
        char *again = smtp_url_format(&v, false);
        assert_string_equal(again, canon);
        free(again);
        free(canon);
        smtp_url_clear(&v);
        smtp_url_clear(&u);
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *words; /* must appear in the message */
    } cases[] = {
        {"", "empty"},
        {"http://example.com", "not a relay URL"},
        {"smtp:/host", "not a relay URL"},
        {"smtp://", "no host"},
        {"smtp://:25", "no host"},
        {"smtp://host:0", "port"},
        {"smtp://host:65536", "port"},
        {"smtp://host:25x", "port"},
        {"smtp://host:", "port"},
        {"smtp://ho_st", "not allowed"},
        {"smtp://ho..st", "empty label"},
        {"smtp://.host", "empty label"},
        {"smtp://h\xc3\xa9llo.example", "xn--"},
        {"smtp://[::1", "[address]"},
        {"smtp://[zz::1]", "not an IPv6"},
        {"smtp://[::1]x", "after the IPv6"},
        {"smtp://user@host", "password is missing"},
        {"smtp://:pw@host", "user name is empty"},
        {"smtp://u:@host", "password is empty"},
        {"smtp://u:p%zz@host", "two hex digits"},
        {"smtp://u:p%0d%0aRSET@host", "control character"},
        {"smtp://u:p%00@host", "control character"},
        {"smtp://host/path", "no path"},
        {"smtp://host?tls=maybe", "tls=required"},
        {"smtp://host?tls=required&tls=none", "twice"},
        {"smtp://host?verify=perhaps", "verify=yes"},
        {"smtp://host?tls=none&verify=yes", "no sense"},
        {"smtp://host?port=25", "unknown option"},
        {"smtp://host?tls", "no '=value'"},
        {"smtps://host?tls=required", "always TLS"},
        {"smtp://host#frag", "fragment"},
        {"smtp://host\r\nRSET", "control character"},
        {"maildir:", "needs a directory"},
        {"maildir:relative/dir", "absolute"},
        {"maildir:/tmp/x\ny", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_url u;
        td_error e;
        td_err_clear(&e);
        int rc = smtp_url_parse(cases[i].in, &u, &e);
        if (rc != TD_EINVAL)
            fail_msg("case %zu (%s): accepted", i, cases[i].in);
        if (!strstr(e.msg, cases[i].words))
            fail_msg("case %zu (%s): message '%s' lacks '%s'", i, cases[i].in, e.msg,
                     cases[i].words);
        assert_null(u.host);
        assert_null(u.user);
        assert_null(u.pass);
        assert_null(u.path);
        smtp_url_clear(&u);
    }
}

static void test_caps(void **state)
{
    (void)state;
    char big[SMTP_URL_MAX + 16];
    memset(big, 'a', sizeof big);
    memcpy(big, "smtp://", 7);
    big[sizeof big - 1] = '\0';
    smtp_url u;
    td_error e;
    assert_int_equal(smtp_url_parse(big, &u, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "longer than"));

    /* a 64-byte label is one too many */
    char lab[128] = "smtp://";
    memset(lab + 7, 'b', 64);
    lab[71] = '\0';
    assert_int_equal(smtp_url_parse(lab, &u, &e), TD_EINVAL);
    lab[70] = '\0';
    assert_int_equal(smtp_url_parse(lab, &u, &e), TD_OK);
    smtp_url_clear(&u);

    char cred[600] = "smtp://u:";
    memset(cred + 9, 'p', 256);
    strcpy(cred + 265, "@h");
    assert_int_equal(smtp_url_parse(cred, &u, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "longer than 255"));
}

static void test_masked(void **state)
{
    (void)state;
    smtp_url u;
    td_error e;
    assert_int_equal(smtp_url_parse("smtp://ann:s3cr%2Bt@relay:587?tls=required", &u, &e), TD_OK);
    char *m = smtp_url_format(&u, true);
    assert_string_equal(m, "smtp://ann:****@relay:587?tls=required");
    assert_null(strstr(m, "s3cr"));
    free(m);
    smtp_url_clear(&u);
    assert_int_equal(smtp_url_parse("smtp://relay", &u, &e), TD_OK);
    m = smtp_url_format(&u, true);
    assert_string_equal(m, "smtp://relay:25");
    free(m);
    smtp_url_clear(&u);
    smtp_url_clear(&u); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
