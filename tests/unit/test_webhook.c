/* Unit tests for inbound/webhook: which SNS certificate and subscription
 * URLs may be fetched, and what each provider's documented payloads parse
 * to (kind, hard or soft, address, Message-ID, return path, event key),
 * table-driven. Signatures and effects are tested end to end
 * (tests/e2e/test_webhooks.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "inbound/webhook.h"

static void test_sns_url(void **state)
{
    (void)state;
    static const struct {
        const char *url, *prefix;
        int ok;
    } cases[] = {
        {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", NULL, 1},
        {"https://sns.cn-north-1.amazonaws.com.cn/x.pem", NULL, 1},
        {"https://SNS.us-east-1.amazonaws.com/x.pem", NULL, 0}, /* curl keeps the case */
        {"http://sns.us-east-1.amazonaws.com/x.pem", NULL, 0},
        {"https://sns.us-east-1.amazonaws.com.evil.example/x.pem", NULL, 0},
        {"https://evil.example/sns.us-east-1.amazonaws.com/x.pem", NULL, 0},
        {"https://sns.us-east-1.amazonaws.com:8443/x.pem", NULL, 0},
        {"https://user@sns.us-east-1.amazonaws.com/x.pem", NULL, 0},
        {"https://sns..amazonaws.com/x.pem", NULL, 0},
        {"https://sns.us_east.amazonaws.com/x.pem", NULL, 0},
        {"https://sns.us-east-1.amazonaws.com/x pem", NULL, 0},
        {"http://127.0.0.1:9/cert.pem", "http://127.0.0.1:9/", 1},
        {"http://127.0.0.1:90/cert.pem", "http://127.0.0.1:9/", 0},
        {"http://127.0.0.1:9/cert.pem", "", 0},
        {"", NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (webhook_sns_url_ok(cases[i].url, cases[i].prefix) != cases[i].ok)
            fail_msg("%s: want %d", cases[i].url, cases[i].ok);
}

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        webhook_provider p;
        const char *body;
        int rc;
        size_t n, ignored;
        bounce_kind kind; /* of the first event */
        int hard;
        const char *address, *mid, *rp, *key, *status;
    } cases[] = {
        {WEBHOOK_SES,
         "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
         "\"bouncedRecipients\":[{\"emailAddress\":\"a@b.example\",\"status\":\"5.1.1\","
         "\"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}],\"feedbackId\":\"fb1\"},"
         "\"mail\":{\"source\":\"bounces+c1.d2@x.example\",\"commonHeaders\":{\"messageId\":"
         "\"<m1@x>\"}}}",
         0, 1, 0, BOUNCE_KIND_BOUNCE, 1, "a@b.example", "m1@x", "bounces+c1.d2@x.example",
         "ses:fb1", "5.1.1"},
        {WEBHOOK_SES,
         "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Transient\","
         "\"bouncedRecipients\":[{\"emailAddress\":\"a@b.example\"}]},\"mail\":{}}",
         0, 1, 0, BOUNCE_KIND_BOUNCE, 0, "a@b.example", NULL, NULL, "ses:unnamed", "4."},
        {WEBHOOK_SES,
         "{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
         "[{\"emailAddress\":\"c@d.example\"}],\"feedbackId\":\"fb3\"},\"mail\":{\"headers\":"
         "[{\"name\":\"message-id\",\"value\":\"<m3@x>\"}]}}",
         0, 1, 0, BOUNCE_KIND_COMPLAINT, 1, "c@d.example", "m3@x", NULL, "ses:fb3", ""},
        {WEBHOOK_SES, "{\"notificationType\":\"Delivery\",\"mail\":{}}", 0, 0, 1, 0, 0, NULL,
         NULL, NULL, NULL, NULL},
        {WEBHOOK_SES, "{\"notificationType\":\"Bounce\"}", TD_EINVAL, 0, 0, 0, 0, NULL, NULL,
         NULL, NULL, NULL},
        {WEBHOOK_SENDGRID,
         "[{\"email\":\"a@b.example\",\"event\":\"bounce\",\"type\":\"blocked\",\"sg_event_id\":"
         "\"e1\",\"smtp-id\":\"<m@x>\",\"status\":\"4.7.1\"},{\"event\":\"open\",\"sg_event_id\":"
         "\"e2\"},{\"event\":\"dropped\",\"reason\":\"Unsubscribed Address\",\"email\":\"q@r.s\","
         "\"sg_event_id\":\"e3\"}]",
         0, 1, 2, BOUNCE_KIND_BOUNCE, 0, "a@b.example", "m@x", NULL, "sendgrid:e1", "4.7.1"},
        {WEBHOOK_SENDGRID, "[{\"email\":\"a@b.example\",\"event\":\"bounce\"}]", TD_EINVAL, 0,
         0, 0, 0, NULL, NULL, NULL, NULL, NULL},
        {WEBHOOK_SENDGRID, "{\"event\":\"bounce\"}", TD_EINVAL, 0, 0, 0, 0, NULL, NULL, NULL,
         NULL, NULL},
        {WEBHOOK_MAILGUN,
         "{\"event-data\":{\"event\":\"failed\",\"id\":\"i1\",\"severity\":\"permanent\","
         "\"recipient\":\"a@b.example\",\"delivery-status\":{\"code\":550,\"message\":"
         "\"5.1.1 unknown\"},\"message\":{\"headers\":{\"message-id\":\"m@x\"}},\"envelope\":"
         "{\"sender\":\"bounces+c1.d2@x.example\"}}}",
         0, 1, 0, BOUNCE_KIND_BOUNCE, 1, "a@b.example", "m@x", "bounces+c1.d2@x.example",
         "mailgun:i1", "5."},
        {WEBHOOK_MAILGUN, "{\"event-data\":{\"event\":\"delivered\",\"id\":\"i2\"}}", 0, 0, 1, 0,
         0, NULL, NULL, NULL, NULL, NULL},
        {WEBHOOK_POSTMARK,
         "{\"RecordType\":\"Bounce\",\"ID\":4323372036854775807,\"Type\":\"HardBounce\","
         "\"Email\":\"a@b.example\",\"Details\":\"smtp;550 5.1.1 unknown\"}",
         0, 1, 0, BOUNCE_KIND_BOUNCE, 1, "a@b.example", NULL, NULL,
         "postmark:Bounce:4323372036854775807", "5."},
        {WEBHOOK_POSTMARK,
         "{\"RecordType\":\"SpamComplaint\",\"ID\":42,\"Type\":\"SpamComplaint\",\"Email\":"
         "\"a@b.example\"}",
         0, 1, 0, BOUNCE_KIND_COMPLAINT, 1, "a@b.example", NULL, NULL,
         "postmark:SpamComplaint:42", ""},
        {WEBHOOK_POSTMARK,
         "{\"RecordType\":\"Bounce\",\"ID\":7,\"Type\":\"AutoResponder\",\"Email\":\"a@b.c\"}", 0,
         0, 1, 0, 0, NULL, NULL, NULL, NULL, NULL},
        {WEBHOOK_POSTMARK, "{not json", TD_EINVAL, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        webhook_batch b;
        td_error e = {0};
        int rc = webhook_parse(cases[i].p, cases[i].body, strlen(cases[i].body), &b, &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s), want %d", i, rc, e.msg, cases[i].rc);
        if (b.n != cases[i].n || b.ignored != cases[i].ignored)
            fail_msg("case %zu: %zu events %zu ignored", i, b.n, b.ignored);
        if (b.n) {
            const bounce_result *br = b.v[0].br;
            assert_int_equal(br->kind, cases[i].kind);
            assert_int_equal(br->rcpt[0].hard, cases[i].hard);
            assert_string_equal(br->rcpt[0].address, cases[i].address);
            assert_string_equal(b.v[0].key, cases[i].key);
            if (cases[i].mid)
                assert_string_equal(br->orig_message_id, cases[i].mid);
            else
                assert_null(br->orig_message_id);
            if (cases[i].rp)
                assert_string_equal(br->orig_return_path, cases[i].rp);
            if (strncmp(br->rcpt[0].status, cases[i].status, strlen(cases[i].status)))
                fail_msg("case %zu: status %s", i, br->rcpt[0].status);
        }
        webhook_batch_clear(&b);
    }
}

static void test_config(void **state)
{
    (void)state;
    td_error e = {0};
    /* SendGrid's documentation example key shape: a P-256 SPKI, base64. */
    const char *p256 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjc"
                       "MMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    assert_int_equal(webhook_check_config(WEBHOOK_SENDGRID, p256, &e), 0);
    assert_int_equal(webhook_check_config(WEBHOOK_SENDGRID, "bm90IGEga2V5", &e), TD_EINVAL);
    assert_int_equal(webhook_check_config(WEBHOOK_POSTMARK, "user:pw", &e), 0);
    assert_int_equal(webhook_check_config(WEBHOOK_POSTMARK, "userpw", &e), TD_EINVAL);
    assert_int_equal(webhook_check_config(WEBHOOK_MAILGUN, "", &e), TD_EINVAL);
    assert_int_equal(webhook_provider_find("mailgun", 7), WEBHOOK_MAILGUN);
    assert_int_equal(webhook_provider_find("mailgunx", 8), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sns_url),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
