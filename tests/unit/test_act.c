/* Unit tests for inbound/act: the matching of bounces, complaints and
 * replies to deliveries (VERP, returned Message-ID, signed List-Unsubscribe
 * token, List-Id with the address, the address alone; In-Reply-To,
 * References, the sender), table-driven over one seeded database, and the
 * effects of act_message: suppression, soft bounce limit, complaint
 * unsubscribes, reply routing, exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inbound/act.h"
#include "store/store.h"
#include "track/token.h"
#include "util/buf.h"

#define SECRET "unit-test-secret"

struct fx {
    char dir[64], path[96];
    store *s;
    int64_t camp, camp2, seller, team, opteam, op;
    int64_t sub[4];     /* a@x (owned by seller), b@x, c@x, d@x (never mailed) */
    int64_t dlv[3];     /* deliveries of camp to a, b, c */
    char token_b[128];  /* the unsubscribe token of b in camp */
};

static void ok(int rc, const td_error *e, const char *what)
{
    if (rc)
        fail_msg("%s: %s", what, e->msg);
}

static int64_t find_delivery_id(store *s, int64_t camp, int64_t sub)
{
    delivery_rec d = {0};
    td_error e = {0};
    ok(store_delivery_of(s, camp, sub, &d, &e), &e, "delivery_of");
    int64_t id = d.id;
    delivery_rec_clear(&d);
    return id;
}

static void mark_sent(store *s, int64_t id, const char *mid)
{
    delivery_rec d = {0};
    td_error e = {0};
    ok(store_delivery_get(s, id, &d, &e), &e, "delivery_get");
    free(d.status);
    free(d.message_id);
    d.status = strdup("sent");
    d.message_id = strdup(mid);
    ok(store_delivery_update(s, &d, &e), &e, "delivery_update");
    delivery_rec_clear(&d);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tdact.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    td_error e = {0};
    ok(store_open(f->path, &f->s, &e), &e, "open");
    store *s = f->s;
    ok(store_setting_set(s, "secret", SECRET, &e), &e, "secret");
    team_rec t = {.name = "Sales", .model = "local"};
    ok(store_team_add(s, &t, &f->team, &e), &e, "team");
    team_rec t2 = {.name = "Central", .model = "central"};
    ok(store_team_add(s, &t2, &f->opteam, &e), &e, "team");
    user_rec u = {.email = "seller@co", .name = "S", .role = "seller", .team_id = f->team};
    ok(store_user_add(s, &u, &f->seller, &e), &e, "user");
    user_rec u2 = {.email = "op@co", .name = "O", .role = "operator", .team_id = f->opteam};
    ok(store_user_add(s, &u2, &f->op, &e), &e, "user");
    list_rec l = {.name = "L", .optin = "single", .visibility = "private"};
    int64_t lid, lid2;
    ok(store_list_add(s, &l, &lid, &e), &e, "list");
    list_rec l2 = {.name = "M", .optin = "single", .visibility = "private"};
    ok(store_list_add(s, &l2, &lid2, &e), &e, "list");
    static const char *const mails[] = {"a@x.example", "b@x.example", "c@x.example", "d@x.example"};
    for (int i = 0; i < 4; i++) {
        sub_rec r = {.email = (char *)mails[i], .name = "N", .attribs = "{}",
                     .owner_id = i == 0 ? f->seller : 0, .team_id = i == 0 ? f->team : 0};
        ok(store_sub_add(s, &r, &f->sub[i], &e), &e, "sub");
        if (i < 3)
            ok(store_member_set(s, lid, f->sub[i], "confirmed", false, NULL, &e), &e, "member");
    }
    ok(store_member_set(s, lid2, f->sub[2], "confirmed", false, NULL, &e), &e, "member");
    campaign_rec c = {.name = "C", .subject = "S", .from = "n@co.example", .text = "t",
                      .state = "running", .team_id = f->opteam, .owner_id = f->op};
    ok(store_campaign_add(s, &c, &lid, 1, &f->camp, &e), &e, "campaign");
    ok(store_campaign_add(s, &c, &lid, 1, &f->camp2, &e), &e, "campaign");
    uint64_t n;
    ok(store_campaign_freeze(s, f->camp, 1, &n, &e), &e, "freeze");
    ok(store_campaign_freeze(s, f->camp2, 1, &n, &e), &e, "freeze");
    char mid[64];
    for (int i = 0; i < 3; i++) {
        f->dlv[i] = find_delivery_id(s, f->camp, f->sub[i]);
        snprintf(mid, sizeof mid, "m%d@co.example", i);
        mark_sent(s, f->dlv[i], mid);
        snprintf(mid, sizeof mid, "second%d@co.example", i);
        mark_sent(s, find_delivery_id(s, f->camp2, f->sub[i]), mid);
    }
    uint8_t key[TRACK_KEY_LEN];
    track_key(SECRET, key);
    track_claims cl = {.kind = TRACK_UNSUB, .campaign_id = f->camp, .subscriber_id = f->sub[1]};
    buf b;
    buf_init(&b, 128);
    ok(track_token(key, &cl, &b, &e), &e, "token");
    snprintf(f->token_b, sizeof f->token_b, "%s", b.data);
    buf_free(&b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- matching ------------------------------------------------------------ */

/* verp_of writes the VERP return path the worker gives delivery dlv of
 * campaign camp (its token tagged under the fixture's secret). */
static void verp_of(char *out, size_t n, const char *base, long long camp, long long dlv)
{
    uint8_t key[TRACK_KEY_LEN];
    track_key(SECRET, key);
    char tok[TRACK_VERP_MAX + 1];
    track_verp_token(key, camp, dlv, tok);
    snprintf(out, n, "%s+c%lld.%s@co.example", base, camp, tok);
}

static void test_match_message(void **state)
{
    struct fx *f = *state;
    char verp_a[128], verp_wrong[128], verp_gone[128], verp_bare[128], verp_forged[128], lu[256];
    verp_of(verp_a, sizeof verp_a, "Bounces", (long long)f->camp, (long long)f->dlv[0]);
    verp_of(verp_wrong, sizeof verp_wrong, "bounces", (long long)f->camp + 7,
            (long long)f->dlv[0]);
    verp_of(verp_gone, sizeof verp_gone, "bounces", (long long)f->camp, 99999);
    /* Forgeries: the bare delivery id, and the tag of another delivery
     * (a recipient's own) with this one's id. */
    snprintf(verp_bare, sizeof verp_bare, "bounces+c%lld.d%lld@co.example", (long long)f->camp,
             (long long)f->dlv[0]);
    char own[128];
    verp_of(own, sizeof own, "bounces", (long long)f->camp, (long long)f->dlv[1]);
    const char *tag = strchr(own, '-');
    snprintf(verp_forged, sizeof verp_forged, "bounces+c%lld.d%lld%s", (long long)f->camp,
             (long long)f->dlv[0], tag);
    snprintf(lu, sizeof lu, "<https://news.example/u/%s>", f->token_b);
    bounce_header hlu = {.name = "List-Unsubscribe", .value = lu};
    bounce_header hbad = {.name = "List-Unsubscribe",
                          .value = "<https://news.example/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA>"};
    static const struct {
        const char *rcpt, *delivered, *mid, *orig_rp;
        int lu; /* 1: b's token, 2: a forged one */
        const char *by;
        int who; /* index into dlv, -1: none */
    } cases[] = {
        {NULL, "VERP_A", NULL, NULL, 0, "verp", 0},
        {"VERP_A", NULL, NULL, NULL, 0, "verp", 0},            /* the envelope given */
        {NULL, NULL, NULL, "VERP_A", 0, "verp", 0},            /* ARF Original-Mail-From */
        {NULL, "VERP_WRONG", NULL, NULL, 0, NULL, -1},         /* campaign does not agree */
        {NULL, "VERP_GONE", NULL, NULL, 0, NULL, -1},          /* no such delivery */
        {NULL, "bounces@co.example", "m2@co.example", NULL, 0, "message-id", 2},
        {NULL, "VERP_WRONG", "m1@co.example", NULL, 0, "message-id", 1},
        {NULL, NULL, "unknown@elsewhere", NULL, 1, "token", 1},
        {NULL, NULL, NULL, NULL, 2, NULL, -1},                 /* a forged token */
        {NULL, "bounces+c1@co.example", NULL, NULL, 0, NULL, -1},
        {NULL, "VERP_BARE", NULL, NULL, 0, NULL, -1},          /* untagged: forged */
        {"VERP_FORGED", NULL, NULL, NULL, 0, NULL, -1},        /* another's tag */
        {NULL, NULL, NULL, "VERP_FORGED", 0, NULL, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *map[3] = {cases[i].rcpt, cases[i].delivered, cases[i].orig_rp};
        for (int k = 0; k < 3; k++)
            if (map[k] && !strcmp(map[k], "VERP_A"))
                map[k] = verp_a;
            else if (map[k] && !strcmp(map[k], "VERP_WRONG"))
                map[k] = verp_wrong;
            else if (map[k] && !strcmp(map[k], "VERP_GONE"))
                map[k] = verp_gone;
            else if (map[k] && !strcmp(map[k], "VERP_BARE"))
                map[k] = verp_bare;
            else if (map[k] && !strcmp(map[k], "VERP_FORGED"))
                map[k] = verp_forged;
        char *rcpts[1] = {(char *)map[1]};
        inmsg m = {.rcpts = map[1] ? rcpts : NULL, .nrcpts = map[1] ? 1 : 0};
        bounce_result br = {.kind = BOUNCE_KIND_BOUNCE, .orig_message_id = (char *)cases[i].mid,
                            .orig_return_path = (char *)map[2],
                            .orig_headers = cases[i].lu == 1 ? &hlu : cases[i].lu == 2 ? &hbad : NULL,
                            .norig_headers = cases[i].lu ? 1 : 0};
        act_match mt;
        td_error e = {0};
        assert_int_equal(act_match_message(f->s, &br, &m, map[0], &mt, &e), TD_OK);
        if (!cases[i].by) {
            if (mt.by)
                fail_msg("case %zu: matched by %s", i, mt.by);
            continue;
        }
        if (!mt.by || strcmp(mt.by, cases[i].by))
            fail_msg("case %zu: by %s, want %s", i, mt.by ? mt.by : "(none)", cases[i].by);
        assert_int_equal(mt.delivery_id, f->dlv[cases[i].who]);
        assert_int_equal(mt.campaign_id, f->camp);
        assert_int_equal(mt.subscriber_id, f->sub[cases[i].who]);
    }
}

static void test_match_address(void **state)
{
    struct fx *f = *state;
    char listid[128], fbid[64];
    snprintf(listid, sizeof listid, "C <campaign-%lld.co.example>", (long long)f->camp);
    snprintf(fbid, sizeof fbid, "%lld:tidings:campaign", (long long)f->camp);
    bounce_header hl = {.name = "List-Id", .value = listid};
    bounce_header hf = {.name = "Feedback-ID", .value = fbid};
    static const struct {
        const char *address;
        int hdr; /* 0 none, 1 List-Id, 2 Feedback-ID */
        const char *by;
        int who;
        int camp; /* 1: camp, 2: camp2 (the newest) */
    } cases[] = {
        {"a@x.example", 1, "headers", 0, 1},
        {"B@X.EXAMPLE", 2, "headers", 1, 1},
        {"c@x.example", 0, "address", 2, 2},   /* the newest delivery to it */
        {"d@x.example", 1, NULL, -1, 0},       /* a subscriber never mailed */
        {"nobody@x.example", 1, NULL, -1, 0},  /* not a subscriber at all */
        {"not an address", 0, NULL, -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bounce_result br = {.kind = BOUNCE_KIND_BOUNCE,
                            .orig_headers = cases[i].hdr == 1 ? &hl : cases[i].hdr == 2 ? &hf : NULL,
                            .norig_headers = cases[i].hdr ? 1 : 0};
        act_match mt;
        td_error e = {0};
        assert_int_equal(act_match_address(f->s, &br, cases[i].address, &mt, &e), TD_OK);
        if (!cases[i].by) {
            if (mt.by)
                fail_msg("case %zu: matched by %s", i, mt.by);
            continue;
        }
        if (!mt.by || strcmp(mt.by, cases[i].by))
            fail_msg("case %zu: by %s, want %s", i, mt.by ? mt.by : "(none)", cases[i].by);
        assert_int_equal(mt.subscriber_id, f->sub[cases[i].who]);
        assert_int_equal(mt.campaign_id, cases[i].camp == 1 ? f->camp : f->camp2);
    }
}

static void test_match_reply(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *from;
        const char *refs[3];
        const char *by;
        int who;
        int camp;
    } cases[] = {
        {"zz@else.example", {"m0@co.example"}, "in-reply-to", 0, 1},
        {"zz@else.example", {"nope@x", "second1@co.example"}, "in-reply-to", 1, 2},
        {"c@x.example", {"nope@x"}, "sender", 2, 2},
        {"d@x.example", {NULL}, "sender", 3, 0},  /* a subscriber, never mailed */
        {"zz@else.example", {"nope@x"}, NULL, -1, 0},
        {NULL, {NULL}, NULL, -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        while (n < 3 && cases[i].refs[n])
            n++;
        inmsg m = {.from = (char *)cases[i].from, .refs = (char **)cases[i].refs, .nrefs = n};
        act_match mt;
        td_error e = {0};
        assert_int_equal(act_match_reply(f->s, &m, NULL, &mt, &e), TD_OK);
        if (!cases[i].by) {
            if (mt.by)
                fail_msg("case %zu: matched by %s", i, mt.by);
            continue;
        }
        if (!mt.by || strcmp(mt.by, cases[i].by))
            fail_msg("case %zu: by %s, want %s", i, mt.by ? mt.by : "(none)", cases[i].by);
        assert_int_equal(mt.subscriber_id, f->sub[cases[i].who]);
        assert_int_equal(mt.campaign_id, cases[i].camp == 0 ? 0 : cases[i].camp == 1 ? f->camp : f->camp2);
    }
}

/* ---- applying -------------------------------------------------------------- */

static char *dsn(const char *to, const char *rcpt, const char *status)
{
    static char m[4096];
    snprintf(m, sizeof m,
             "Delivered-To: %s\r\nFrom: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
             "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
             "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
             "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n\r\n--B--\r\n",
             to, rcpt, status);
    return m;
}

static bool suppressed(store *s, const char *a)
{
    bool y = false;
    assert_int_equal(store_suppress_check(s, a, &y, NULL), TD_OK);
    return y;
}

static void test_apply_bounces(void **state)
{
    struct fx *f = *state;
    char verp[3][128];
    for (int i = 0; i < 3; i++)
        verp_of(verp[i], sizeof verp[i], "bounces", (long long)f->camp, (long long)f->dlv[i]);
    act_source src = {.source = "unit", .key = "1"};
    act_result r;
    td_error e = {0};
    char *m = dsn(verp[0], "a@x.example", "5.1.1");
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_string_equal(r.kind, "bounce");
    assert_string_equal(r.matched_by, "verp");
    assert_int_equal(r.suppressed, 1);
    assert_false(r.keep);
    assert_true(suppressed(f->s, "a@x.example"));
    /* The same key again: nothing. */
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_true(r.duplicate);
    /* Soft: limit 2 (a setting), counted once per campaign. */
    assert_int_equal(store_setting_set(f->s, ACT_SETTING_SOFT_LIMIT, "2", &e), TD_OK);
    assert_int_equal(act_soft_limit(f->s), 2);
    m = dsn(verp[1], "b@x.example", "4.2.2");
    src.key = "2";
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    src.key = "3";
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_false(suppressed(f->s, "b@x.example"));
    /* A soft bounce in the second campaign reaches the limit. */
    char v2[128];
    verp_of(v2, sizeof v2, "bounces", (long long)f->camp2,
            (long long)find_delivery_id(f->s, f->camp2, f->sub[1]));
    m = dsn(v2, "b@x.example", "4.2.2");
    src.key = "4";
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_true(suppressed(f->s, "b@x.example"));
    /* Never mailed: nothing changes, and it stays on the server. */
    m = dsn("bounces@co.example", "stranger@else.example", "5.1.1");
    src.key = "5";
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_null(r.matched_by);
    assert_true(r.keep);
    assert_non_null(strstr(r.note, "never mailed"));
    assert_false(suppressed(f->s, "stranger@else.example"));
    /* Unreadable: recorded as other, kept. */
    src.key = "6";
    assert_int_equal(act_message(f->s, "", 0, &src, &r, &e), TD_OK);
    assert_string_equal(r.kind, "other");
    assert_true(r.keep);
    /* No key: the content's hash is the key. */
    src.key = NULL;
    m = dsn(verp[2], "c@x.example", "5.1.1");
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_false(r.duplicate);
    assert_int_equal(act_message(f->s, m, strlen(m), &src, &r, &e), TD_OK);
    assert_true(r.duplicate);
    event_counts ec;
    assert_int_equal(store_event_counts(f->s, f->camp, &ec, &e), TD_OK);
    assert_int_equal(ec.bounce, 4); /* a, b twice, c */
}

static void test_apply_complaint_and_reply(void **state)
{
    struct fx *f = *state;
    const char *arf =
        "From: fbl@isp.example\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=F\r\n\r\n"
        "--F\r\nContent-Type: text/plain\r\n\r\nAbuse report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
        "\r\n--F\r\nContent-Type: message/rfc822\r\n\r\nFrom: n@co.example\r\nTo: c@x.example\r\n"
        "Message-ID: <m2@co.example>\r\nSubject: S\r\n\r\nbody\r\n--F--\r\n";
    act_source src = {.source = "unit", .key = "c1"};
    act_result r;
    td_error e = {0};
    assert_int_equal(act_message(f->s, arf, strlen(arf), &src, &r, &e), TD_OK);
    assert_string_equal(r.kind, "complaint");
    assert_string_equal(r.matched_by, "message-id");
    assert_int_equal(r.unsubscribed, 2); /* lists L and M */
    assert_true(suppressed(f->s, "c@x.example"));

    /* A reply from a's owner-less... a is owned by the seller: routed there. */
    const char *rep = "From: A <A@x.example>\r\nTo: n@co.example\r\nSubject: Re: S\r\n"
                      "In-Reply-To: <m0@co.example>\r\nMessage-ID: <rep@a>\r\n\r\nHow much?\r\n";
    src.key = "r1";
    assert_int_equal(act_message(f->s, rep, strlen(rep), &src, &r, &e), TD_OK);
    assert_string_equal(r.kind, "reply");
    assert_true(r.keep);
    assert_true(r.reply_id > 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT owner_id, team_id, assigned_to, matched_by,"
                                            " body, campaign_id FROM replies WHERE id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, r.reply_id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), f->seller);
    assert_int_equal(sqlite3_column_int64(st, 1), f->team);
    assert_int_equal(sqlite3_column_int64(st, 2), f->seller);
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "in-reply-to");
    assert_non_null(strstr((const char *)sqlite3_column_text(st, 4), "How much?"));
    assert_int_equal(sqlite3_column_int64(st, 5), f->camp);
    sqlite3_finalize(st);
    /* b has no owner: the campaign's owner and team. */
    const char *rep2 = "From: b@x.example\r\nSubject: Re: S\r\nReferences: <m1@co.example>\r\n\r\nHi\r\n";
    src.key = "r2";
    assert_int_equal(act_message(f->s, rep2, strlen(rep2), &src, &r, &e), TD_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT owner_id, team_id FROM replies WHERE id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, r.reply_id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), f->op);
    assert_int_equal(sqlite3_column_int64(st, 1), f->opteam);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* An auto-reply is not a reply. */
    const char *ar = "From: b@x.example\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
                     "In-Reply-To: <m1@co.example>\r\n\r\nAway\r\n";
    src.key = "r3";
    assert_int_equal(act_message(f->s, ar, strlen(ar), &src, &r, &e), TD_OK);
    assert_string_equal(r.kind, "other");
    assert_int_equal(r.reply_id, 0);
}

/* Mail to the VERP return path saying "unsubscribe" (the List-Unsubscribe
 * mailto): the subscriber leaves the campaign's lists, an unsubscribe
 * event, no reply; other mail to it, or to another address, does not. */
static void test_unsubscribe_by_mail(void **state)
{
    struct fx *f = *state;
    char verp_c[96], verp_bad[96], verp_bare[96];
    verp_of(verp_c, sizeof verp_c, "bounces", (long long)f->camp, (long long)f->dlv[2]);
    verp_of(verp_bad, sizeof verp_bad, "bounces", (long long)f->camp2,
            (long long)f->dlv[2]); /* the delivery is not of that campaign */
    /* Anyone can write the bare delivery id: it must unsubscribe no one. */
    snprintf(verp_bare, sizeof verp_bare, "bounces+c%lld.d%lld@co.example", (long long)f->camp,
             (long long)f->dlv[2]);
    static const struct {
        int to; /* 0: verp of c, 1: verp naming the wrong campaign, 2: a plain address,
                 * 3: the untagged (forged) verp */
        const char *subject, *body, *extra;
        const char *kind;
        int unsub;
    } cases[] = {
        {1, "unsubscribe", "", "", "other", 0},
        {2, "unsubscribe", "", "", "other", 0},
        {3, "unsubscribe", "", "", "other", 0},
        {0, "Re: S", "please call me about unsubscribers", "", "reply", 0},
        {0, "unsubscribe me later", "", "", "reply", 0},
        {0, "Out of office", "unsubscribe", "Auto-Submitted: auto-replied\r\n", "other", 0},
        {0, "  UnSubscribe \t", "This message was automatically generated.", "", "unsubscribe", 1},
        {0, "", "\r\n  Unsubscribe.\r\nThanks", "", "unsubscribe", 0}, /* already out of L */
    };
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[1024], key[16];
        snprintf(msg, sizeof msg,
                 "From: c@x.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <u%zu@x>\r\n%s\r\n%s\r\n",
                 cases[i].to == 0   ? verp_c
                 : cases[i].to == 1 ? verp_bad
                 : cases[i].to == 3 ? verp_bare
                                    : "news@co.example",
                 cases[i].subject, i, cases[i].extra, cases[i].body);
        snprintf(key, sizeof key, "u%zu", i);
        act_source src = {.source = "unit", .key = key};
        act_result r;
        td_error e = {0};
        assert_int_equal(act_message(f->s, msg, strlen(msg), &src, &r, &e), TD_OK);
        /* Anything but an unsubscribe: the classifier's reply or other. */
        bool want_unsub = !strcmp(cases[i].kind, "unsubscribe");
        if (want_unsub != !strcmp(r.kind, "unsubscribe"))
            fail_msg("case %zu: kind %s, want %s (%s)", i, r.kind, cases[i].kind, r.note);
        assert_int_equal(r.unsubscribed, cases[i].unsub);
        if (!strcmp(cases[i].kind, "unsubscribe")) {
            assert_false(r.keep);
            assert_int_equal(r.reply_id, 0);
            assert_string_equal(r.matched_by, "verp");
            assert_int_equal(r.subscriber_id, f->sub[2]);
        }
    }
    /* c left L (the campaign's list) and stays on M; two events. */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT l.name, m.status FROM memberships m JOIN lists l"
                                            " ON l.id = m.list_id WHERE m.subscriber_id = ?"
                                            " ORDER BY l.name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, f->sub[2]);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "unsubscribed");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "confirmed");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE kind = 'unsubscribe'"
                                            " AND subscriber_id = ? AND data LIKE '%mail%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, f->sub[2]);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_bounces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_complaint_and_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe_by_mail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
