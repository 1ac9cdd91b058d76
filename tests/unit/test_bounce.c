/* Unit tests for inbound/bounce and its helpers (reason, dsn, notice):
 * status code -> class, reason and hard/soft; reason from the server's
 * words; addresses from report fields and from prose; whole messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/bounce.h"
#include "inbound/dsn.h"
#include "inbound/notice.h"
#include "inbound/reason.h"

static int setup(void **state)
{
    (void)state;
    return bounce_init();
}

/* RFC 3463 code -> reason and hard/soft. NULL reason: the code says
 * nothing precise, the text decides. */
static void test_status_table(void **state)
{
    (void)state;
    static const struct {
        const char *status;
        const char *reason;
        bool hard;
    } cases[] = {
        {"5.1.1", "userunknown", true},  {"5.1.2", "hostunknown", true},   {"5.1.10", "notaccept", true},
        {"5.1.6", "hasmoved", true},     {"5.2.1", "suspend", false},      {"5.2.2", "mailboxfull", false},
        {"4.2.2", "mailboxfull", false}, {"5.3.4", "mesgtoobig", false},   {"5.4.4", "hostunknown", true},
        {"4.4.1", "expired", false},     {"4.4.7", "expired", false},      {"4.4.5", "toomanyconn", false},
        {"5.7.1", "securityerror", false}, {"5.7.26", "authfailure", false}, {"2.0.0", "delivered", false},
        {"4.1.1", "userunknown", false}, /* temporary: never suppress on a 4xx */
        {"5.0.0", NULL, false},          {"5.9.99", NULL, false},          {"x.y.z", NULL, false},
        {"", NULL, false},               {"5.0.911", NULL, false}, /* sisimai pseudo-code */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *r = reason_from_status(cases[i].status);
        if (cases[i].reason) {
            assert_non_null(r);
            assert_string_equal(r, cases[i].reason);
        } else {
            assert_null(r);
        }
        int cls = cases[i].status[0] - '0';
        assert_int_equal(reason_is_hard(r, cls), cases[i].hard);
    }
}

static void test_pseudo_status(void **state)
{
    (void)state;
    static const struct {
        const char *reason;
        int cls;
        const char *want;
    } cases[] = {
        {"userunknown", 5, "5.1.1"}, {"mailboxfull", 4, "4.2.2"}, {"expired", 4, "4.4.7"},
        {"nosuchreason", 5, "5.0.0"}, {NULL, 7, "5.0.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16];
        reason_pseudo_status(cases[i].reason, cases[i].cls, out);
        assert_string_equal(out, cases[i].want);
    }
}

/* The server's words -> reason; wrapped lines and any case still match. */
static void test_reason_text(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *reason; /* NULL: no rule matches */
    } cases[] = {
        {"550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
         "userunknown"},
        {"Sorry, no mailbox here by that name. (#5.1.1)", "userunknown"},
        {"550-5.1.1 The email account that you tried to reach does not\n   exist.", "userunknown"},
        {"552 5.2.2 Mailbox FULL", "mailboxfull"},
        {"The users mailfolder is over the allowed quota (size).", "mailboxfull"},
        {"Host or domain name not found. Name service error for name=x.example type=MX: Host not found",
         "hostunknown"},
        {"Name service error for name=x.example type=MX: Host not found, try again", "networkerror"},
        {"550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org",
         "blocked"},
        {"554 Message rejected as spam by Content Filtering", "spamdetected"},
        {"552 5.3.4 Message size exceeds fixed maximum message size", "mesgtoobig"},
        {"550 5.2.1 The email account that you tried to reach is disabled.", "suspend"},
        {"retry timeout exceeded", "expired"},
        {"421 Too many concurrent SMTP connections from this IP address", "toomanyconn"},
        {"550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
         "authfailure"},
        {"553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying "
         "(#5.7.1) relaying denied",
         "norelaying"},
        {"Thank you for your message", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool specific;
        const char *r = reason_from_text(cases[i].text, strlen(cases[i].text), &specific);
        if (cases[i].reason) {
            assert_non_null(r);
            assert_string_equal(r, cases[i].reason);
        } else {
            assert_null(r);
        }
    }
    assert_true(reason_is_temporary_text("This is a WARNING message only", 30));
    assert_false(reason_is_temporary_text("This is a permanent error", 25));
}

/* The address around an '@' in prose: brackets, quotes and trailing
 * punctuation are not part of it; an '@' with no dotted domain is none. */
static void test_addr_at(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* NULL: no address */
    } cases[] = {
        {"<user@example.com>:", "user@example.com"},
        {"RCPT TO:<first.last+tag@mail.example.org>", "first.last+tag@mail.example.org"},
        {"'quoted@example.net'.", "quoted@example.net"},
        {"  user@example.com... User unknown", "user@example.com"},
        {"j\xc3\xbcrgen@b\xc3\xbc" "cher.example)", "j\xc3\xbcrgen@b\xc3\xbc" "cher.example"},
        {"user@localhost", "user@localhost"}, /* a local bounce names its own host so */
        {"user@intranet", NULL},
        {"@example.com", NULL},
        {"name@", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].text;
        size_t n = strlen(s), at = (size_t)(strchr(s, '@') - s), b = 0, e = 0;
        int ok = notice_addr_at(s, n, at, &b, &e);
        if (!cases[i].want) {
            assert_int_equal(ok, 0);
            continue;
        }
        assert_int_equal(ok, 1);
        assert_int_equal(e - b, strlen(cases[i].want));
        assert_memory_equal(s + b, cases[i].want, e - b);
    }
}

/* Recipients in prose: in order, without duplicates, without the sender
 * (excluded) or postmaster, and not from quoted header lines. */
static void test_notice_scan(void **state)
{
    (void)state;
    static const char text[] =
        "I'm sorry to have to inform you that your message could not be delivered.\n"
        "\n"
        "<one@example.com>: host mx.example.com said: 550 5.1.1 user unknown\n"
        "  two@example.org\n"
        "    SMTP error from remote mail server after RCPT TO:<two@example.org>:\n"
        "    552 mailbox full\n"
        "Contact postmaster@relay.example.net or sender@news.example for help.\n"
        "To: three@example.net\n"
        "<one@example.com>: once more\n";
    const char *ex[] = {"sender@news.example"};
    notice_list l;
    notice_scan(text, sizeof text - 1, ex, 1, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].address, "one@example.com");
    assert_string_equal(l.v[1].address, "two@example.org");
    assert_non_null(strstr(l.v[1].diag, "552 mailbox full"));
    notice_list_free(&l);
    assert_int_equal(l.n, 0);

    static const char cut[] = "failed: a@example.com\n\n------ This is a copy of the message\nTo: b@example.com\n";
    size_t at = notice_cut(cut, sizeof cut - 1);
    assert_int_equal(at, strlen("failed: a@example.com\n\n"));
}

/* DSN fields: groups split on blank lines and on a repeated field, folded
 * lines joined. */
static void test_dsn_parse(void **state)
{
    (void)state;
    static const char text[] = "Reporting-MTA: dns; mx.example.com\n"
                               "\n"
                               "Final-Recipient: rfc822; a@example.com\n"
                               "Status: 5.1.1\n"
                               "Diagnostic-Code: smtp; 550 user\n"
                               "   unknown\n"
                               "Final-Recipient: rfc822; b@example.com\n"
                               "Status: 4.2.2\n";
    dsn_doc d;
    dsn_parse(text, sizeof text - 1, &d);
    assert_int_equal(d.n, 3);
    assert_false(dsn_has_recipient(&d.g[0]));
    assert_true(dsn_has_recipient(&d.g[1]));
    assert_string_equal(dsn_get(&d.g[1], "diagnostic-code"), "smtp; 550 user unknown");
    assert_string_equal(dsn_get(&d.g[2], "Status"), "4.2.2");
    assert_null(dsn_get(&d.g[2], "Action"));
    dsn_doc_free(&d);
}

/* Whole messages: kind, and each recipient's address, status, reply code
 * and hard flag. */
static void test_messages(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        bounce_kind kind;
        const char *json; /* expected bounce_result_json(r, "m") */
    } cases[] = {
        {"From: MAILER-DAEMON@mx.example.com\nSubject: Undelivered Mail Returned to Sender\n"
         "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
         "--b\nContent-Type: text/plain\n\nnot delivered\n--b\nContent-Type: message/delivery-status\n\n"
         "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; A@Example.COM\nAction: failed\n"
         "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n\n"
         "Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.1\n\n"
         "Final-Recipient: rfc822; c@example.com\nAction: delivered\nStatus: 2.0.0\n\n--b--\n",
         BOUNCE_KIND_BOUNCE,
         "{\"file\":\"m\",\"kind\":\"bounce\",\"recipients\":["
         "{\"address\":\"A@example.com\",\"status\":\"5.1.1\",\"reply_code\":550,\"hard\":true,"
         "\"reason\":\"userunknown\"},"
         "{\"address\":\"b@example.com\",\"status\":\"4.4.1\",\"reply_code\":null,\"hard\":false,"
         "\"reason\":\"expired\"}]}"},
        {"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nX-Failed-Recipients: gone@example.org\n"
         "Subject: Mail delivery failed: returning message to sender\n\n"
         "A message that you sent could not be delivered to one or more of its\nrecipients. "
         "This is a permanent error. The following address(es) failed:\n\n  gone@example.org\n"
         "    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\n"
         "    550 5.2.2 mailbox full\n",
         BOUNCE_KIND_BOUNCE,
         "{\"file\":\"m\",\"kind\":\"bounce\",\"recipients\":[{\"address\":\"gone@example.org\","
         "\"status\":\"5.2.2\",\"reply_code\":550,\"hard\":false,\"reason\":\"mailboxfull\"}]}"},
        {"From: a@example.com\nSubject: Re: hello\nIn-Reply-To: <x@example.com>\n\nthanks, it could not be "
         "delivered faster\n",
         BOUNCE_KIND_REPLY, "{\"file\":\"m\",\"kind\":\"reply\",\"recipients\":[]}"},
        {"From: a@example.com\nSubject: Out of office\nAuto-Submitted: auto-replied\nIn-Reply-To: <x@y.z>\n\n"
         "away\n",
         BOUNCE_KIND_OTHER, "{\"file\":\"m\",\"kind\":\"other\",\"recipients\":[]}"},
        {"From: fbl@isp.example\nMIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=feedback-report; boundary=f\n\n"
         "--f\nContent-Type: text/plain\n\nabuse report\n--f\nContent-Type: message/feedback-report\n\n"
         "Feedback-Type: abuse\nVersion: 1\nOriginal-Rcpt-To: <reader@isp.example>\n\n--f--\n",
         BOUNCE_KIND_COMPLAINT,
         "{\"file\":\"m\",\"kind\":\"complaint\",\"recipients\":[{\"address\":\"reader@isp.example\","
         "\"status\":null,\"reply_code\":null,\"hard\":false,\"reason\":\"feedback\"}]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bounce_result *r = NULL;
        td_error e = {0};
        assert_int_equal(bounce_parse(cases[i].msg, strlen(cases[i].msg), &r, &e), 0);
        assert_int_equal(r->kind, cases[i].kind);
        char *j = bounce_result_json(r, "m");
        assert_string_equal(j, cases[i].json);
        free(j);
        bounce_result_free(r);
    }
    /* The returned original's identity, for matching without VERP. */
    static const char withorig[] =
        "From: MAILER-DAEMON@mx.example.com\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@example.com\n"
        "Action: failed\nStatus: 5.1.1\n\n--b\nContent-Type: text/rfc822-headers\n\n"
        "Message-ID: <c1.s2@news.example>\nX-Tidings-Campaign: 1\nSubject: hi\n\n--b--\n";
    bounce_result *r = NULL;
    assert_int_equal(bounce_parse(withorig, sizeof withorig - 1, &r, NULL), 0);
    assert_string_equal(r->orig_message_id, "c1.s2@news.example");
    assert_int_equal(r->norig_headers, 1);
    assert_string_equal(r->orig_headers[0].name, "X-Tidings-Campaign");
    bounce_result_free(r);
}

static void test_not_a_message(void **state)
{
    (void)state;
    bounce_result *r = (bounce_result *)1;
    td_error e = {0};
    assert_int_equal(bounce_parse("", 0, &r, &e), TD_EINVAL);
    assert_null(r);
    assert_true(strlen(e.msg) > 0);
    bounce_result_free(NULL);
    assert_string_equal(bounce_kind_name(BOUNCE_KIND_COMPLAINT), "complaint");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table), cmocka_unit_test(test_pseudo_status),
        cmocka_unit_test(test_reason_text),  cmocka_unit_test(test_addr_at),
        cmocka_unit_test(test_notice_scan),  cmocka_unit_test(test_dsn_parse),
        cmocka_unit_test(test_messages),     cmocka_unit_test(test_not_a_message),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
