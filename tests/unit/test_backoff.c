/* Unit tests for delivery/backoff: delays with and without jitter, the
 * classification of every kind of result, and relay down periods, all on a
 * fake clock and given random numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "delivery/backoff.h"

static backoff_policy test_policy(void)
{
    backoff_policy p;
    backoff_policy_init(&p);
    p.base_ms = 1000;
    p.max_delay_ms = 60000;
    p.factor = 2;
    p.jitter = 0.5;
    p.max_attempts = 5;
    p.max_age_ms = 100000;
    return p;
}

static void test_defaults(void **state)
{
    (void)state;
    backoff_policy p;
    backoff_policy_init(&p);
    assert_int_equal(p.base_ms, 5 * 60 * 1000);
    assert_int_equal(p.max_attempts, 8);
    /* the defaults reach their 4 h cap and keep within 3 days */
    assert_int_equal(backoff_delay(&p, 7, 0), 4 * 3600 * 1000);
    assert_int_equal(backoff_delay(&p, 6, 0), 160 * 60 * 1000);
}

static void test_delay(void **state)
{
    (void)state;
    static const struct {
        unsigned attempts;
        uint32_t rnd;
        double factor, jitter;
        int64_t want;
    } cases[] = {
        {1, 0, 2, 0.5, 1000},
        {2, 0, 2, 0.5, 2000},
        {3, 0, 2, 0.5, 4000},
        {6, 0, 2, 0.5, 32000},
        {7, 0, 2, 0.5, 60000},         /* 64 s capped */
        {1000000, 0, 2, 0.5, 60000},   /* no overflow */
        {0, 0, 2, 0.5, 1000},          /* 0 taken as the first */
        {1, 0x80000000u, 2, 0.5, 750}, /* half of the jitter */
        {1, 0xffffffffu, 2, 0.5, 500}, /* all of it */
        {3, 0xffffffffu, 2, 0.5, 2000},
        {7, 0x80000000u, 2, 0.5, 45000}, /* jitter applies under the cap too */
        {4, 0xffffffffu, 2, 0, 8000},    /* no jitter */
        {4, 0, 1, 0.5, 1000},            /* factor 1: constant */
        {4, 0, 0.5, 0.5, 1000},          /* a factor below 1 is taken as 1 */
        {3, 0, 3, 1, 9000},
        {3, 0xffffffffu, 3, 1, 0}, /* full jitter can reach 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        backoff_policy p = test_policy();
        p.factor = cases[i].factor;
        p.jitter = cases[i].jitter;
        int64_t d = backoff_delay(&p, cases[i].attempts, cases[i].rnd);
        if (d != cases[i].want) {
            fprintf(stderr, "case %zu: %lld, want %lld\n", i, (long long)d,
                    (long long)cases[i].want);
            fail();
        }
    }
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        int status, code;
        unsigned attempts;
        int64_t first, now;
        bool other;
        int want;
        int64_t when;
    } cases[] = {
        {"ok", SMTP_OK, 250, 1, 0, 5000, true, BACKOFF_DONE, 0},
        {"5xx", SMTP_PERM, 550, 1, 0, 5000, true, BACKOFF_FAILED, 0},
        {"refused locally (SIZE)", SMTP_PERM, 0, 1, 0, 5000, true, BACKOFF_FAILED, 0},
        {"maybe delivered", SMTP_UNKNOWN, 0, 1, 0, 5000, true, BACKOFF_UNKNOWN, 0},
        {"unknown is never retried, even early", SMTP_UNKNOWN, 0, 1, 0, 0, false, BACKOFF_UNKNOWN,
         0},
        {"4xx: later", SMTP_TEMP, 450, 1, 0, 5000, true, BACKOFF_LATER, 6000},
        {"4xx third attempt", SMTP_TEMP, 451, 3, 0, 5000, false, BACKOFF_LATER, 9000},
        {"connection failed, another relay: now", SMTP_TEMP, 0, 1, 0, 5000, true, BACKOFF_NOW,
         5000},
        {"connection failed, no other relay: later", SMTP_TEMP, 0, 1, 0, 5000, false, BACKOFF_LATER,
         6000},
        {"421 is the relay's failure", SMTP_TEMP, 421, 2, 0, 5000, true, BACKOFF_NOW, 5000},
        {"421 alone: later", SMTP_TEMP, 421, 2, 0, 5000, false, BACKOFF_LATER, 7000},
        {"attempts used up", SMTP_TEMP, 450, 5, 0, 5000, true, BACKOFF_FAILED, 0},
        {"attempts used up, relay failure too", SMTP_TEMP, 0, 5, 0, 5000, true, BACKOFF_FAILED, 0},
        {"too old", SMTP_TEMP, 450, 2, 0, 100000, true, BACKOFF_FAILED, 0},
        {"the last try at the deadline", SMTP_TEMP, 450, 2, 0, 99500, false, BACKOFF_LATER, 100000},
        {"age counts from the first attempt", SMTP_TEMP, 450, 1, 50000, 120000, false,
         BACKOFF_LATER, 121000},
    };
    backoff_policy p = test_policy();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        smtp_rcpt_result r;
        memset(&r, 0, sizeof r);
        r.status = cases[i].status;
        r.reply.code = cases[i].code;
        int64_t when = -1;
        int a = backoff_classify(&p, &r, cases[i].attempts, cases[i].first, cases[i].now,
                                 cases[i].other, 0, &when);
        if (a != cases[i].want || when != cases[i].when) {
            fprintf(stderr, "%s: %s at %lld, want %s at %lld\n", cases[i].what,
                    backoff_action_name(a), (long long)when, backoff_action_name(cases[i].want),
                    (long long)cases[i].when);
            fail();
        }
    }
    smtp_rcpt_result r = {.status = SMTP_TEMP};
    assert_int_equal(backoff_classify(&p, &r, 1, 0, 0, false, 0, NULL), BACKOFF_LATER);
    /* no limits at all: retries for ever */
    p.max_attempts = 0;
    p.max_age_ms = 0;
    r.reply.code = 450;
    assert_int_equal(backoff_classify(&p, &r, 1000, 0, INT64_MAX / 2, false, 0, NULL),
                     BACKOFF_LATER);
    assert_string_equal(backoff_action_name(BACKOFF_NOW), "now");
}

static void test_relay_down(void **state)
{
    (void)state;
    backoff_policy p = test_policy();
    assert_int_equal(backoff_relay_down(&p, TD_ETEMP, 1, 0), 1000);
    assert_int_equal(backoff_relay_down(&p, TD_ETEMP, 0, 0), 1000);
    assert_int_equal(backoff_relay_down(&p, TD_ETEMP, 3, 0), 4000);
    assert_int_equal(backoff_relay_down(&p, TD_ETEMP, 50, 0), 60000);
    assert_int_equal(backoff_relay_down(&p, TD_EPERM, 1, 0), 60000);
    assert_int_equal(backoff_relay_down(&p, TD_EDENIED, 1, 0xffffffffu), 60000);
    uint32_t a = backoff_rand(), b = backoff_rand(), c = backoff_rand();
    assert_false(a == b && b == c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_relay_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
