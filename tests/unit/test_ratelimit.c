/* Unit tests for delivery/ratelimit: scripts of acquire/next calls on a fake
 * clock against the global, relay and domain buckets, the connection cap,
 * the bounded per-domain state, and refused settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "delivery/ratelimit.h"

/* One step of a script: at `now`, acquire (or only ask, peek) for relay and
 * domain; expect ok and, when refused, the time given. */
typedef struct step {
    int64_t now;
    int relay;
    const char *domain;
    bool peek;
    bool ok;
    int64_t when; /* expected ratelimit_next / *when */
} step;

typedef struct script {
    const char *name;
    double global_per_s;
    unsigned global_burst;
    double relay_per_s; /* relay 0 */
    unsigned relay_burst;
    double dflt_per_min; /* default domain limit */
    const char *dom;     /* a domain with its own limit */
    double dom_per_min;
    unsigned dom_burst;
    step steps[16];
} script;

static const script scripts[] = {
    {"global 10/s, burst 1",
     10,
     1,
     0,
     0,
     0,
     NULL,
     0,
     0,
     {{0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, false, 100},
      {99, -1, NULL, false, false, 100},
      {100, -1, NULL, false, true, 100},
      {150, -1, NULL, false, false, 200},
      {1000, -1, NULL, false, true, 1000},
      {-1, 0, NULL, 0, 0, 0}}},
    {"global 10/s, burst 5: five at once, then one per 100 ms",
     10,
     5,
     0,
     0,
     0,
     NULL,
     0,
     0,
     {{0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, false, 100},
      {100, -1, NULL, false, true, 100},
      {100, -1, NULL, false, false, 200},
      {-1, 0, NULL, 0, 0, 0}}},
    {"default 60/min and gmail.com 600/min",
     0,
     0,
     0,
     0,
     60,
     "gmail.com",
     600,
     1,
     {{0, -1, "example.org", false, true, 0},
      {500, -1, "example.org", true, false, 1000},
      {500, -1, "example.org", false, false, 1000},
      {0, -1, "gmail.com", false, true, 0},
      {100, -1, "GMAIL.COM.", false, true, 100}, /* same bucket */
      {150, -1, "gmail.com", false, false, 200},
      {150, -1, "other.org", false, true, 150}, /* each domain its own */
      {1000, -1, "example.org", false, true, 1000},
      {-1, 0, NULL, 0, 0, 0}}},
    {"a domain set to 0/min is unlimited under a default",
     0,
     0,
     0,
     0,
     60,
     "free.test",
     0,
     0,
     {{0, -1, "free.test", false, true, 0},
      {0, -1, "free.test", false, true, 0},
      {0, -1, "x.test", false, true, 0},
      {0, -1, "x.test", false, false, 1000},
      {-1, 0, NULL, 0, 0, 0}}},
    {"a refused acquire takes nothing",
     1,
     1,
     0,
     0,
     30,
     NULL,
     0,
     0,
     {{0, -1, "d.test", false, true, 0},
      {1000, -1, "d.test", false, false, 2000}, /* domain: 2 s apart */
      {1000, -1, "e.test", false, true, 1000},  /* global token still there */
      {1500, -1, "f.test", false, false, 2000}, /* global now spent */
      {-1, 0, NULL, 0, 0, 0}}},
    {"relay rate, and relay -1 skips it",
     0,
     0,
     2,
     1,
     0,
     NULL,
     0,
     0,
     {{0, 0, NULL, false, true, 0},
      {0, 0, NULL, false, false, 500},
      {0, -1, NULL, false, true, 0},
      {499, 0, "a.test", true, false, 500},
      {500, 0, NULL, false, true, 500},
      {-1, 0, NULL, 0, 0, 0}}},
    {"all three: the latest decides",
     10,
     1,
     5,
     1,
     120,
     NULL,
     0,
     0,
     {{0, 0, "a.test", false, true, 0},
      {0, 0, "a.test", true, false, 500},  /* domain 500 > relay 200 > global 100 */
      {0, 0, "b.test", true, false, 200},  /* relay */
      {0, -1, "b.test", true, false, 100}, /* global */
      {-1, 0, NULL, 0, 0, 0}}},
    {"rates that do not divide a second round up",
     3,
     1,
     0,
     0,
     0,
     NULL,
     0,
     0,
     {{0, -1, NULL, false, true, 0},
      {0, -1, NULL, false, false, 334}, /* 333.33 ms, rounded up */
      {334, -1, NULL, false, true, 334},
      {-1, 0, NULL, 0, 0, 0}}},
};

static void test_scripts(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof scripts / sizeof scripts[0]; s++) {
        const script *sc = &scripts[s];
        ratelimit *rl = ratelimit_new(0);
        td_error e;
        assert_int_equal(ratelimit_set_global(rl, sc->global_per_s, sc->global_burst, &e), 0);
        assert_int_equal(ratelimit_add_relay(rl, sc->relay_per_s, sc->relay_burst, 0), 0);
        assert_int_equal(ratelimit_set_domain(rl, NULL, sc->dflt_per_min, 1, &e), 0);
        if (sc->dom)
            assert_int_equal(ratelimit_set_domain(rl, sc->dom, sc->dom_per_min, sc->dom_burst, &e),
                             0);
        for (size_t i = 0; sc->steps[i].now >= 0; i++) {
            const step *st = &sc->steps[i];
            int64_t when = -7;
            bool ok;
            if (st->peek) {
                when = ratelimit_next(rl, st->relay, st->domain, st->now);
                ok = when == st->now;
            } else {
                ok = ratelimit_acquire(rl, st->relay, st->domain, st->now, &when);
            }
            if (ok != st->ok || when != st->when) {
                fprintf(stderr, "%s: step %zu: ok %d when %lld, want %d %lld\n", sc->name, i, ok,
                        (long long)when, st->ok, (long long)st->when);
                fail();
            }
        }
        ratelimit_free(rl);
    }
}

static void test_conns(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(0);
    int a = ratelimit_add_relay(rl, 0, 0, 2), b = ratelimit_add_relay(rl, 0, 0, 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_true(ratelimit_conn_acquire(rl, a));
    assert_true(ratelimit_conn_acquire(rl, a));
    assert_false(ratelimit_conn_acquire(rl, a));
    assert_int_equal(ratelimit_conns(rl, a), 2);
    ratelimit_conn_release(rl, a);
    assert_true(ratelimit_conn_acquire(rl, a));
    for (int i = 0; i < 100; i++) /* 0: no cap */
        assert_true(ratelimit_conn_acquire(rl, b));
    assert_false(ratelimit_conn_acquire(rl, 7));
    td_error e;
    assert_int_equal(ratelimit_set_relay(rl, a, 0, 0, 3, &e), 0);
    assert_true(ratelimit_conn_acquire(rl, a));
    assert_false(ratelimit_conn_acquire(rl, a));
    assert_int_equal(ratelimit_set_relay(rl, 9, 1, 0, 0, &e), TD_EINVAL);
    ratelimit_free(rl);
}

/* Domains under the default limit are state; the cap holds and idle ones go. */
static void test_bounded(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(100);
    td_error e;
    assert_int_equal(ratelimit_set_domain(rl, NULL, 60, 1, &e), 0);
    assert_int_equal(ratelimit_set_domain(rl, "pinned.test", 6, 1, &e), 0);
    assert_true(ratelimit_acquire(rl, -1, "pinned.test", 0, NULL));
    char d[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(d, sizeof d, "d%d.test", i);
        assert_true(ratelimit_acquire(rl, -1, d, 0, NULL));
        assert_true(ratelimit_domains(rl) <= 100);
    }
    assert_int_equal(ratelimit_domains(rl), 100);
    /* the newest are kept: d999 is still limited */
    assert_false(ratelimit_acquire(rl, -1, "d999.test", 10, NULL));
    /* a second later every bucket is full again: the state drains away */
    for (int i = 0; i < 10; i++)
        ratelimit_next(rl, -1, NULL, 2000);
    assert_int_equal(ratelimit_domains(rl), 0);
    /* a configured domain is never dropped */
    int64_t when;
    assert_false(ratelimit_acquire(rl, -1, "pinned.test", 2000, &when));
    assert_int_equal(when, 10000);
    /* removing the default limit drops all state */
    assert_true(ratelimit_acquire(rl, -1, "x.test", 3000, NULL));
    assert_int_equal(ratelimit_domains(rl), 1);
    assert_int_equal(ratelimit_set_domain(rl, NULL, 0, 0, &e), 0);
    assert_int_equal(ratelimit_domains(rl), 0);
    assert_true(ratelimit_acquire(rl, -1, "x.test", 3000, NULL));
    assert_true(ratelimit_acquire(rl, -1, "x.test", 3000, NULL));
    ratelimit_free(rl);
}

/* A domain that was seen under the default and then gets a limit keeps its
 * history. */
static void test_pin_seen(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_new(0);
    td_error e;
    assert_int_equal(ratelimit_set_domain(rl, NULL, 60, 1, &e), 0);
    assert_true(ratelimit_acquire(rl, -1, "seen.test", 0, NULL));
    assert_int_equal(ratelimit_domains(rl), 1);
    assert_int_equal(ratelimit_set_domain(rl, "Seen.Test", 600, 1, &e), 0);
    assert_int_equal(ratelimit_domains(rl), 0);
    int64_t when;
    assert_false(ratelimit_acquire(rl, -1, "seen.test", 0, &when));
    assert_int_equal(when, 1000); /* the tat from before */
    assert_true(ratelimit_acquire(rl, -1, "seen.test", 1000, NULL));
    assert_false(ratelimit_acquire(rl, -1, "seen.test", 1000, &when));
    assert_int_equal(when, 1100); /* the new rate */
    ratelimit_free(rl);
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *domain;
        double rate;
        int code;
    } cases[] = {
        {"", 60, TD_EINVAL},
        {".", 60, TD_EINVAL},
        {"a@b.test", 60, TD_EINVAL},
        {"a b.test", 60, TD_EINVAL},
        {"x.test", -1, TD_EINVAL},
        {"x.test", 1.0 / 0.0, TD_EINVAL},
        {"x.test", 0, 0},
        {"x.test.", 600, 0},
    };
    ratelimit *rl = ratelimit_new(0);
    td_error e;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(ratelimit_set_domain(rl, cases[i].domain, cases[i].rate, 0, &e),
                         cases[i].code);
    char longd[300];
    memset(longd, 'a', sizeof longd - 1);
    longd[sizeof longd - 1] = '\0';
    assert_int_equal(ratelimit_set_domain(rl, longd, 60, 0, &e), TD_EINVAL);
    assert_int_equal(ratelimit_set_global(rl, -5, 0, &e), TD_EINVAL);
    /* over-long domains in traffic are cut, not refused */
    assert_true(ratelimit_acquire(rl, -1, longd, 0, NULL));
    for (int i = 0; i < RATELIMIT_CONF_MAX - 1; i++) {
        char d[32];
        snprintf(d, sizeof d, "c%d.test", i);
        assert_int_equal(ratelimit_set_domain(rl, d, 60, 0, &e), 0);
    }
    assert_int_equal(ratelimit_set_domain(rl, "one-too-many.test", 60, 0, &e), TD_ETOOBIG);
    assert_int_equal(ratelimit_set_domain(rl, "c5.test", 120, 0, &e), 0); /* a change is fine */
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts), cmocka_unit_test(test_conns),
        cmocka_unit_test(test_bounded), cmocka_unit_test(test_pin_seen),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
