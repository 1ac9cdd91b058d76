/* Unit tests for campaign/campaign and the campaign tables of the store:
 * creation checks, the audience freeze, state moves, send times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "campaign/campaign.h"
#include "store/store.h"

struct fx {
    char dir[64], path[96];
    store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tdcamp.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    td_error e = {0};
    assert_int_equal(store_open(f->path, &f->s, &e), TD_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int64_t list(store *s, const char *name, const char *optin)
{
    list_rec l = {.name = (char *)name, .optin = (char *)optin, .visibility = "private"};
    int64_t id;
    assert_int_equal(store_list_add(s, &l, &id, NULL), TD_OK);
    return id;
}

static int64_t sub(store *s, const char *email, const char *status)
{
    sub_rec r = {.email = (char *)email, .name = "", .attribs = "{}", .status = (char *)status};
    int64_t id;
    assert_int_equal(store_sub_add(s, &r, &id, NULL), TD_OK);
    return id;
}

static void member(store *s, int64_t l, int64_t sid, const char *status)
{
    assert_int_equal(store_member_set(s, l, sid, status, false, NULL, NULL), TD_OK);
}

struct seen {
    char emails[1024];
};

static int collect(void *ud, const delivery_rec *d)
{
    struct seen *se = ud;
    strcat(se->emails, d->email);
    strcat(se->emails, " ");
    assert_string_equal(d->status, "queued");
    return 0;
}

struct ids {
    int64_t id[8];
    size_t n;
};

static int collect_ids(void *ud, const delivery_rec *d)
{
    struct ids *x = ud;
    if (x->n < 8)
        x->id[x->n++] = d->id;
    return 0;
}

static void test_freeze(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    int64_t a = list(s, "A", "single"), b = list(s, "B", "double"), other = list(s, "C", "single");
    int64_t both = sub(s, "both@x.com", NULL), unsub_a = sub(s, "unsuba@x.com", NULL),
            unconf_b = sub(s, "unconfb@x.com", NULL), unconf_a = sub(s, "unconfa@x.com", NULL),
            blocked = sub(s, "blocked@x.com", "blocklisted"), supp = sub(s, "supp@x.com", NULL),
            elsewhere = sub(s, "elsewhere@x.com", NULL), gone = sub(s, "gone@x.com", NULL);
    member(s, a, both, "confirmed");
    member(s, b, both, "confirmed");            /* on both lists: one delivery */
    member(s, a, unsub_a, "unsubscribed");
    member(s, b, unsub_a, "confirmed");         /* still wants B: one delivery */
    member(s, b, unconf_b, "unconfirmed");      /* double opt-in, unconfirmed: none */
    member(s, a, unconf_a, "unconfirmed");      /* single opt-in: counts */
    member(s, a, blocked, "confirmed");         /* blocklisted: none */
    member(s, a, supp, "confirmed");            /* suppressed: none */
    member(s, other, elsewhere, "confirmed");   /* not the campaign's list: none */
    member(s, a, gone, "unsubscribed");         /* unsubscribed everywhere: none */
    assert_int_equal(store_suppress_add(s, "supp@x.com", "hard bounce", NULL), TD_OK);

    const char *lists[] = {"A", "B"};
    campaign_spec sp = {.name = "Spring", .subject = "Hi {{subscriber.first_name}}",
                        .from = "News <news@x.com>", .html = "<p>{{subscriber.email}}</p>",
                        .lists = lists, .nlists = 2};
    int64_t id;
    td_error e = {0};
    assert_int_equal(campaign_create(s, &sp, 1000, &id, &e), TD_OK);
    const char *st;
    uint64_t n;
    assert_int_equal(campaign_start(s, id, 2000, &st, &n, &e), TD_OK);
    assert_string_equal(st, "running");
    assert_int_equal(n, 3);
    struct seen se = {{0}};
    assert_int_equal(store_delivery_each(s, id, NULL, collect, &se, &e), TD_OK);
    assert_string_equal(se.emails, "both@x.com unsuba@x.com unconfa@x.com ");
    campaign_counts c;
    assert_int_equal(store_campaign_counts(s, id, &c, &e), TD_OK);
    assert_true(c.total == 3 && c.queued == 3 && c.sent == 0);
    /* Frozen: a subscriber who joins later gets nothing, and the campaign
     * cannot be started (frozen) again. */
    member(s, a, sub(s, "late@x.com", NULL), "confirmed");
    assert_int_equal(campaign_start(s, id, 3000, &st, &n, &e), TD_EDENIED);
    assert_int_equal(store_campaign_counts(s, id, &c, &e), TD_OK);
    assert_true(c.total == 3);
    assert_non_null(strstr(e.msg, "is running"));
    /* Sent rows are left out of the work index and counted by difference:
     * every status still counts, and failures still list. */
    struct ids ids = {0};
    assert_int_equal(store_delivery_each(s, id, NULL, collect_ids, &ids, &e), TD_OK);
    char *to[] = {"sent", "failed", "deferred"};
    for (int i = 0; i < 3; i++) {
        delivery_rec d = {.id = ids.id[i], .status = to[i], .attempts = 1};
        assert_int_equal(store_delivery_update(s, &d, &e), TD_OK);
    }
    assert_int_equal(store_campaign_counts(s, id, &c, &e), TD_OK);
    assert_true(c.total == 3 && c.sent == 1 && c.failed == 1 && c.deferred == 1 && !c.queued);
    assert_int_equal(store_campaign_counts(s, 0, &c, &e), TD_OK);
    assert_true(c.total == 3 && c.sent == 1 && c.failed == 1 && c.deferred == 1);
    struct ids failed = {0};
    assert_int_equal(store_delivery_each(s, id, "failed", collect_ids, &failed, &e), TD_OK);
    assert_true(failed.n == 1 && failed.id[0] == ids.id[1]);
    campaign_rec cr = {0};
    assert_int_equal(store_campaign_get(s, id, &cr, &e), TD_OK);
    assert_string_equal(cr.state, "running");
    assert_true(cr.started_at == 2000);
    campaign_rec_clear(&cr);
}

static void test_states(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    list(s, "A", "single");
    const char *lists[] = {"A"};
    campaign_spec sp = {.name = "Later", .subject = "s", .from = "a@x.com", .text = "t",
                        .lists = lists, .nlists = 1, .at = "2030-01-01 09:00",
                        .tz = "Asia/Bangkok"};
    int64_t id;
    td_error e = {0};
    assert_int_equal(campaign_create(s, &sp, 1000, &id, &e), TD_OK);
    campaign_rec cr = {0};
    assert_int_equal(store_campaign_get(s, id, &cr, &e), TD_OK);
    assert_true(cr.send_at == 1893463200); /* 2030-01-01 02:00 UTC */
    assert_string_equal(cr.timezone, "Asia/Bangkok");
    campaign_rec_clear(&cr);
    const char *st;
    uint64_t n;
    /* Before its time: scheduled; starting again before the time keeps it so. */
    assert_int_equal(campaign_start(s, id, 2000, &st, &n, &e), TD_OK);
    assert_string_equal(st, "scheduled");
    assert_int_equal(campaign_pause(s, id, 2001, &e), TD_EDENIED);
    assert_non_null(strstr(e.msg, "scheduled"));
    /* Its time has come: running. */
    assert_int_equal(campaign_start(s, id, 1893463200, &st, &n, &e), TD_OK);
    assert_string_equal(st, "running");
    assert_int_equal(campaign_pause(s, id, 1893463300, &e), TD_OK);
    assert_int_equal(campaign_pause(s, id, 1893463301, &e), TD_EDENIED);
    assert_int_equal(campaign_resume(s, id, 1893463302, &e), TD_OK);
    assert_int_equal(campaign_resume(s, id, 1893463303, &e), TD_EDENIED);
    assert_int_equal(campaign_cancel(s, id, 1893463304, &e), TD_OK);
    assert_int_equal(campaign_cancel(s, id, 1893463305, &e), TD_EDENIED);
    assert_non_null(strstr(e.msg, "cancelled"));
    assert_int_equal(store_campaign_get(s, id, &cr, &e), TD_OK);
    assert_true(cr.finished_at == 1893463304);
    campaign_rec_clear(&cr);
    assert_int_equal(campaign_pause(s, 999, 1, &e), TD_ENOTFOUND);
}

static void test_create_refusals(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    list(s, "A", "single");
    const char *a[] = {"A"}, *nope[] = {"Nope"};
    static const struct {
        campaign_spec sp;
        int rc;
        const char *msg;
    } cases[] = {
        {{.subject = "s", .from = "a@x.com", .html = "h", .nlists = 1}, TD_EINVAL, "needs a name"},
        {{.name = "n", .from = "a@x.com", .html = "h", .nlists = 1}, TD_EINVAL, "needs a subject"},
        {{.name = "n", .subject = "{{#x}}", .from = "a@x.com", .html = "h", .nlists = 1},
         TD_EINVAL, "the subject: line 1"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "{{/x}}", .nlists = 1},
         TD_EINVAL, "the HTML template: line 1, column 1"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .nlists = 1}, TD_EINVAL,
         "HTML or a text"},
        {{.name = "n", .subject = "s", .from = "not an address", .html = "h", .nlists = 1},
         TD_EINVAL, "the From address"},
        {{.name = "n", .subject = "s", .from = "a@x.com\r\nBcc: x@y.z", .html = "h", .nlists = 1},
         TD_EINVAL, "the From address"},
        {{.name = "n\nx", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 1}, TD_EINVAL,
         "name"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 0}, TD_EINVAL,
         "at least one list"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 1,
          .at = "2030-02-30 10:00"}, TD_EINVAL, "does not exist"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 1,
          .at = "tomorrow"}, TD_EINVAL, "not a time like"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 1,
          .at = "2030-01-01 10:00", .tz = "Mars/Olympus"}, TD_EINVAL, "time zone"},
        {{.name = "n", .subject = "s", .from = "a@x.com", .html = "h", .nlists = 1,
          .at = "2000-01-01 10:00"}, TD_EINVAL, "in the past"},
        {{.name = "n'; DROP TABLE campaigns; --", .subject = "s", .from = "a@x.com",
          .html = "h", .nlists = 1}, TD_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        campaign_spec sp = cases[i].sp;
        sp.lists = a;
        int64_t id = 0;
        td_error e = {0};
        int rc = campaign_create(s, &sp, 1000000000, &id, &e);
        if (rc != cases[i].rc || (cases[i].msg && !strstr(e.msg, cases[i].msg)))
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, e.msg, cases[i].rc,
                     cases[i].msg ? cases[i].msg : "");
    }
    campaign_spec sp = {.name = "n", .subject = "s", .from = "a@x.com", .html = "h",
                        .lists = nope, .nlists = 1};
    int64_t id;
    td_error e = {0};
    assert_int_equal(campaign_create(s, &sp, 1, &id, &e), TD_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no list 'Nope'"));
}

static void test_parse_time(void **state)
{
    (void)state;
    static const struct {
        const char *at, *tz;
        int rc;
        int64_t want;
    } cases[] = {
        {"2026-12-01 09:30", NULL, TD_OK, 1796117400},
        {"2026-12-01T09:30:15", "UTC", TD_OK, 1796117415},
        {"2026-12-01 09:30", "Asia/Bangkok", TD_OK, 1796117400 - 7 * 3600},
        {"2026-07-01 12:00", "Europe/Paris", TD_OK, 1782900000}, /* 10:00 UTC in summer */
        {"2026-03-08 02:30", "America/New_York", TD_EINVAL, 0}, /* the DST gap */
        {"2026-13-01 00:00", NULL, TD_EINVAL, 0},
        {"2026-12-01 24:00", NULL, TD_EINVAL, 0},
        {"2026-12-01 09:30 ", NULL, TD_EINVAL, 0},
        {"2026-12-01 09:30:1x", NULL, TD_EINVAL, 0},
        {"2026-12-01", NULL, TD_EINVAL, 0},
        {"", NULL, TD_EINVAL, 0},
        {"2026-12-01 09:30", "../../etc/passwd", TD_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = 0;
        td_error e = {0};
        int rc = campaign_parse_time(cases[i].at, cases[i].tz, &t, &e);
        if (rc != cases[i].rc || (rc == TD_OK && t != cases[i].want))
            fail_msg("case %zu (%s %s): got %d %lld '%s'", i, cases[i].at,
                     cases[i].tz ? cases[i].tz : "-", rc, (long long)t, e.msg);
    }
}

static void test_relays(void **state)
{
    struct fx *f = *state;
    store *s = f->s;
    relay_rec r = {.url = "smtp://user:secret@relay.example:587", .max_conns = 8, .rate = 50};
    int64_t id;
    td_error e = {0};
    assert_int_equal(store_relay_add(s, &r, &id, &e), TD_OK);
    assert_int_equal(store_relay_add(s, &r, &id, &e), TD_EEXISTS);
    r.max_conns = 0; /* the schema refuses what C should have */
    r.url = "smtp://other:25";
    assert_int_not_equal(store_relay_add(s, &r, &id, &e), TD_OK);
    assert_int_equal(store_relay_delete(s, 1, &e), TD_OK);
    assert_int_equal(store_relay_delete(s, 1, &e), TD_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_freeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_relays, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
