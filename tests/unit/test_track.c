/* Unit tests for track/token, campaign/context and the tmpl helper hook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/context.h"
#include "tmpl/tmpl.h"
#include "track/token.h"

static uint8_t key[TRACK_KEY_LEN], other[TRACK_KEY_LEN];

static int setup(void **state)
{
    (void)state;
    track_key("0123456789abcdef", key);
    track_key("another secret", other);
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const struct {
        track_kind kind;
        int64_t campaign, sub, list;
        const char *data;
    } cases[] = {
        {TRACK_OPEN, 1, 2, 3, NULL},
        {TRACK_UNSUB, 0, 0, 0, NULL},
        {TRACK_CLICK, 987654321, INT64_MAX, 7, "https://shop.example/a?b=1&c=%20"},
        {TRACK_VIEW, 5, 6, 0, NULL},
        {TRACK_PREFS, 127, 128, 16384, NULL},
        {TRACK_CONFIRM, 0, 42, 9, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        track_claims c = {.kind = cases[i].kind,
                          .campaign_id = cases[i].campaign,
                          .subscriber_id = cases[i].sub,
                          .list_id = cases[i].list,
                          .data = (char *)cases[i].data,
                          .data_len = cases[i].data ? strlen(cases[i].data) : 0};
        buf b;
        buf_init(&b, BUF_NOCAP);
        assert_int_equal(track_token(key, &c, &b, NULL), TD_OK);
        for (size_t k = 0; k < b.len; k++) /* URL-safe without escaping */
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_",
                                   b.data[k]));
        track_claims out;
        assert_int_equal(track_open(key, b.data, b.len, &out, NULL), TD_OK);
        assert_int_equal(out.kind, c.kind);
        assert_true(out.campaign_id == c.campaign_id);
        assert_true(out.subscriber_id == c.subscriber_id);
        assert_true(out.list_id == c.list_id);
        if (cases[i].data)
            assert_string_equal(out.data, cases[i].data);
        else
            assert_null(out.data);
        track_claims_clear(&out);
        /* another installation's key, and every single-character edit, fail */
        assert_int_equal(track_open(other, b.data, b.len, &out, NULL), TD_EINVAL);
        for (size_t k = 0; k < b.len; k++) {
            char saved = b.data[k];
            b.data[k] = saved == 'A' ? 'B' : 'A';
            td_error e = {0};
            assert_int_equal(track_open(key, b.data, b.len, &out, &e), TD_EINVAL);
            assert_non_null(strstr(e.msg, "not valid"));
            b.data[k] = saved;
        }
        buf_free(&b);
    }
}

/* Known answers, computed with Python's hmac and base64 modules: the token
 * format is a contract with links already sent, whatever computes it. */
static void test_known_tokens(void **state)
{
    (void)state;
    static const struct {
        track_claims c;
        const char *token;
    } cases[] = {
        {{TRACK_OPEN, 1, 2, 3, NULL, 0}, "AQEBAgPDUAG9KrZaonhD-3VdF8AE"},
        {{TRACK_CLICK, 987654321, INT64_MAX, 7, (char *)"https://shop.example/a?b=1&c=%20", 32},
         "AQKx0fnWA___________fwdodHRwczovL3Nob3AuZXhhbXBsZS9hP2I9MSZjPSUyML_zMo4RMDobQKkOoeZdYg0"},
        {{TRACK_VIEW, 5, 6, 0, NULL, 0}, "AQUFBgA-vIH7W4eCtV7aY1v6aYNs"},
    };
    for (int round = 0; round < 2; round++) /* a second key in between: re-keying */
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            buf b;
            buf_init(&b, BUF_NOCAP);
            assert_int_equal(track_token(key, &cases[i].c, &b, NULL), TD_OK);
            assert_string_equal(b.data, cases[i].token);
            buf_reset(&b);
            assert_int_equal(track_token(other, &cases[i].c, &b, NULL), TD_OK);
            assert_string_not_equal(b.data, cases[i].token);
            buf_free(&b);
        }
}

/* VERP tokens and Message-ID tags: the expected tags were computed with
 * Python's hmac and base64 modules (HMAC-SHA-256 of 0xfe, the use, the ids
 * as varints; the first 50 bits in lower-case base32). */
static void test_verp(void **state)
{
    (void)state;
    char tag[TRACK_TAG_LEN + 1], tok[TRACK_VERP_MAX + 1];
    track_tag(key, 'v', 5, 123, tag);
    assert_string_equal(tag, "rj5rzy6abr");
    track_tag(key, 'm', 5, 123, tag);
    assert_string_equal(tag, "nqyjsa4w25");
    track_verp_token(key, 987654321, 9007199254740993LL, tok);
    assert_string_equal(tok, "d9007199254740993-u3rgfv25aq");
    assert_int_equal(track_verp_check(key, 987654321, tok), 9007199254740993LL);
    track_verp_token(key, 5, 123, tok);
    assert_string_equal(tok, "d123-rj5rzy6abr");
    assert_int_equal(track_verp_check(key, 5, tok), 123);
    assert_int_equal(track_verp_check(key, 5, "D123-RJ5RZY6ABR"), 0); /* 'D' is not 'd' */
    assert_int_equal(track_verp_check(key, 5, "d123-RJ5RZY6ABR"), 123); /* case of the tag */
    assert_int_equal(track_verp_check(other, 5, tok), 0);              /* another install */
    assert_int_equal(track_verp_check(key, 6, tok), 0);                /* another campaign */
    static const char *const bad[] = {
        "d123",           "d124-rj5rzy6abr", "d123-rj5rzy6abs", "d123-rj5rzy6ab",
        "d123-rj5rzy6abrr", "d0123-rj5rzy6abr", "d-rj5rzy6abr",  "d123_rj5rzy6abr",
        "d99999999999999999999-rj5rzy6abr", "", "x123-rj5rzy6abr", "d123-nqyjsa4w25",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (track_verp_check(key, 5, bad[i]))
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(track_verp_check(key, 5, NULL), 0);
}

static void test_hostile_tokens(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "x", "....", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                      "%00", "a b", "AAAA\nAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        track_claims out;
        assert_int_equal(track_open(key, bad[i], strlen(bad[i]), &out, NULL), TD_EINVAL);
    }
    char *big = malloc(100000);
    memset(big, 'A', 100000);
    track_claims out;
    assert_int_equal(track_open(key, big, 100000, &out, NULL), TD_EINVAL);
    free(big);
    /* an over-long click target is refused when making the token */
    char *url = malloc(TRACK_DATA_MAX + 2);
    memset(url, 'a', TRACK_DATA_MAX + 1);
    url[TRACK_DATA_MAX + 1] = 0;
    track_claims c = {.kind = TRACK_CLICK, .data = url, .data_len = TRACK_DATA_MAX + 1};
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(track_token(key, &c, &b, NULL), TD_EINVAL);
    buf_free(&b);
    free(url);
}

static void test_url(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, BUF_NOCAP);
    track_claims c = {.kind = TRACK_UNSUB, .campaign_id = 1, .subscriber_id = 2};
    assert_int_equal(track_url(key, "https://news.example.com/", &c, &b, NULL), TD_OK);
    assert_memory_equal(b.data, "https://news.example.com/u/", 27);
    buf_reset(&b);
    c.kind = TRACK_CONFIRM;
    assert_int_equal(track_url(key, "https://news.example.com", &c, &b, NULL), TD_OK);
    assert_memory_equal(b.data, "https://news.example.com/confirm/", 33);
    buf_reset(&b);
    c.kind = (track_kind)(TRACK_CONFIRM + 1);
    assert_int_equal(track_url(key, "https://news.example.com", &c, &b, NULL), TD_EINVAL);
    buf_free(&b);
}

/* Renders tpl for one subscriber with the context and the helper. */
static int render(msg_context *mc, const char *tpl, bool html, char **out, td_error *e)
{
    sub_rec s = {.id = 42,
                 .email = "layla@example.com",
                 .name = "ليلى حداد",
                 .attribs = "{\"city\":\"Amman\",\"orders\":3}",
                 .timezone = "Asia/Amman"};
    json_t *d = msg_context_data(mc, &s, e);
    if (!d)
        return TD_EINVAL;
    tmpl *t;
    int rc = tmpl_compile(tpl, strlen(tpl), &t, e);
    if (!rc) {
        tmpl_helper h = msg_context_helper(mc, html);
        buf b;
        buf_init(&b, BUF_NOCAP);
        rc = tmpl_render_with(t, d, NULL, NULL, &h, 1, &b, e);
        *out = rc ? NULL : buf_steal(&b);
        buf_free(&b);
        tmpl_free(t);
    }
    json_decref(d);
    return rc;
}

static void test_context(void **state)
{
    (void)state;
    msg_context mc = {.base_url = "https://news.example.com",
                      .campaign_id = 7,
                      .campaign_name = "Spring",
                      .subject = "Hello",
                      .list_id = 3,
                      .list_name = "Customers",
                      .sender_name = "Somchai Jaidee",
                      .sender_email = "somchai@example.com"};
    memcpy(mc.key, key, sizeof key);
    char *out = NULL;
    td_error e = {0};
    assert_int_equal(render(&mc,
                            "{{subscriber.first_name}}|{{subscriber.attributes.city}}|"
                            "{{subscriber.attributes.orders}}|{{list.name}}|{{campaign.id}}|"
                            "{{sender.first_name}}|{{sender.email}}",
                            true, &out, &e),
                     TD_OK);
    assert_string_equal(out, "ليلى|Amman|3|Customers|7|Somchai|somchai@example.com");
    free(out);

    /* The URLs are signed for this recipient and start from the base URL. */
    assert_int_equal(render(&mc, "{{{unsubscribe_url}}}", true, &out, &e), TD_OK);
    assert_memory_equal(out, "https://news.example.com/u/", 27);
    track_claims c;
    assert_int_equal(track_open(key, out + 27, strlen(out + 27), &c, NULL), TD_OK);
    assert_int_equal(c.kind, TRACK_UNSUB);
    assert_true(c.subscriber_id == 42 && c.campaign_id == 7 && c.list_id == 3);
    free(out);

    /* {{#track}} wraps a link: entities decoded, the target signed in. */
    assert_int_equal(render(&mc,
                            "<a href=\"{{#track}} https://shop.example/p?id={{subscriber.id}}"
                            "&amp;x=&#49; {{/track}}\">",
                            true, &out, &e),
                     TD_OK);
    assert_memory_equal(out, "<a href=\"https://news.example.com/c/", 36);
    char *tok = out + 36;
    *strchr(tok, '"') = 0;
    assert_int_equal(track_open(key, tok, strlen(tok), &c, NULL), TD_OK);
    assert_int_equal(c.kind, TRACK_CLICK);
    assert_string_equal(c.data, "https://shop.example/p?id=42&x=1");
    track_claims_clear(&c);
    free(out);

    /* The click URL is HTML-escaped in the HTML part (an odd base URL). */
    msg_context odd = mc;
    odd.base_url = "https://news.example.com/a&b";
    assert_int_equal(render(&odd, "{{#track}}https://shop.example/&quot;x&#x27;{{/track}}", true,
                            &out, &e),
                     TD_OK);
    assert_memory_equal(out, "https://news.example.com/a&amp;b/c/", 35);
    assert_int_equal(track_open(key, out + 35, strlen(out + 35), &c, NULL), TD_OK);
    assert_string_equal(c.data, "https://shop.example/\"x'");
    track_claims_clear(&c);
    free(out);

    /* A link past TRACK_DATA_MAX is refused, not cut. */
    buf big;
    buf_init(&big, BUF_NOCAP);
    buf_puts(&big, "{{#track}}https://shop.example/");
    for (int i = 0; i < TRACK_DATA_MAX; i++)
        buf_puts(&big, i % 2 ? "&amp;" : "a");
    buf_puts(&big, "{{/track}}");
    td_error e3 = {0};
    assert_int_equal(render(&mc, big.data, true, &out, &e3), TD_EINVAL);
    assert_non_null(strstr(e3.msg, "longer than"));
    buf_free(&big);

    /* Not a URL, or a javascript: one, is refused with a message. */
    static const char *const bad[] = {
        "{{#track}}javascript:alert(1){{/track}}", "{{#track}}https://a b{{/track}}",
        "{{#track}}{{/track}}",
        /* past the first 8-byte words, and in the tail after them */
        "{{#track}}https://shop.example/long/path\x7f/x{{/track}}",
        "{{#track}}https://shop.example/long/pa\tth/x{{/track}}",
        "{{#track}}https://shop.example/aaaaaaaaaaaaaaaaa b{{/track}}",
        "{{#track}}https://shop.example/aaaaaaaaaaaaaaaaaaa\x1f{{/track}}",
        "{{#track}}https://shop.example/aaaaaaaaaaaaaaaaaaaaaaa\x01{{/track}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        td_error e2 = {0};
        assert_int_equal(render(&mc, bad[i], true, &out, &e2), TD_EINVAL);
        assert_non_null(strstr(e2.msg, "not an http or https URL"));
    }
    /* UTF-8 and every printable byte are kept */
    assert_int_equal(render(&mc,
                            "{{#track}}https://shop.example/caf\xc3\xa9/\xe0\xb8\xaa!~|{}^`"
                            "[]{{/track}}",
                            false, &out, &e),
                     TD_OK);
    free(out);
}

/* The memo (a campaign's builders keep one): a link made for the HTML is
 * reused in the text, never across recipients, and what comes out is what
 * the helper makes without one. */
static void test_memo(void **state)
{
    (void)state;
    msg_context plain = {.base_url = "https://news.example.com",
                         .campaign_id = 7,
                         .list_id = 3,
                         .campaign_name = "April",
                         .subject = "Picks",
                         .list_name = "Weekly",
                         .sender_name = "Sam Seller",
                         .sender_email = "sam@example.com"};
    memcpy(plain.key, key, sizeof key);
    msg_context memo = plain;
    msg_context_memo_on(&memo);
    static const char html[] =
        "<a href=\"{{#track}}https://shop.example/p/a?ref={{subscriber.id}}&amp;x=1{{/track}}\">"
        "<a href=\"{{#track}}https://shop.example/p/b?ref={{subscriber.id}}{{/track}}\">"
        "<a href=\"{{#track}}https://shop.example/p/a?ref={{subscriber.id}}&amp;x=1{{/track}}\">";
    static const char text[] = "{{#track}}https://shop.example/p/b?ref={{subscriber.id}}{{/track}}\n"
                               "{{#track}}https://shop.example/p/a?ref={{subscriber.id}}&x=1"
                               "{{/track}}\n{{#track}}https://shop.example/p/c{{/track}}\n";
    tmpl *th, *tt;
    td_error e = {0};
    assert_int_equal(tmpl_compile(html, strlen(html), &th, &e), TD_OK);
    assert_int_equal(tmpl_compile(text, strlen(text), &tt, &e), TD_OK);
    for (int64_t id = 1; id <= 3; id++) {
        sub_rec s = {.id = id, .email = "a@example.com", .name = "A", .attribs = "{}"};
        buf out[2][2];
        json_t *data[2];
        for (int m = 0; m < 2; m++) {
            msg_context *c = m ? &memo : &plain;
            json_t *d = data[m] = msg_context_data(c, &s, &e);
            assert_non_null(d);
            for (int h = 0; h < 2; h++) {
                tmpl_helper hp = msg_context_helper(c, h == 0);
                buf_init(&out[m][h], BUF_NOCAP);
                assert_int_equal(tmpl_render_with(h == 0 ? th : tt, d, NULL, NULL, &hp, 1,
                                                  &out[m][h], &e),
                                 TD_OK);
            }
        }
        /* the same data (the memo shares its campaign parts) */
        assert_true(json_equal(data[0], data[1]));
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(data[1], "sender"), "first_name")),
                            "Sam");
        json_t *sub = json_object_get(data[1], "subscriber");
        assert_int_equal(json_integer_value(json_object_get(sub, "id")), id);
        /* the delivery worker sets campaign.subject to the recipient's
         * rendered subject: the next recipient must not see it */
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(data[1], "campaign"), "subject")),
                            "Picks");
        json_object_set_new(json_object_get(data[1], "campaign"), "subject",
                            json_string("Picks for recipient"));
        json_decref(data[0]);
        json_decref(data[1]);
        for (int h = 0; h < 2; h++) {
            assert_int_equal(out[0][h].len, out[1][h].len);
            assert_memory_equal(out[0][h].data, out[1][h].data, out[0][h].len);
            buf_free(&out[0][h]);
            buf_free(&out[1][h]);
        }
    }
    /* a link refused stays refused after good ones were memoised */
    sub_rec s = {.id = 9, .email = "a@example.com", .attribs = "{}"};
    json_t *d = msg_context_data(&memo, &s, &e);
    tmpl *bad;
    static const char bad_src[] = "{{#track}}https://shop.example/p/b?ref=9{{/track}}"
                                  "{{#track}}https://shop.example/p/b?r ef=9{{/track}}"
                                  "{{#track}}https://shop.example/p/b?ref=9\x7f{{/track}}";
    assert_int_equal(tmpl_compile(bad_src, strlen(bad_src), &bad, &e), TD_OK);
    tmpl_helper hp = msg_context_helper(&memo, false);
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(tmpl_render_with(bad, d, NULL, NULL, &hp, 1, &b, &e), TD_EINVAL);
    assert_non_null(strstr(e.msg, "not an http or https URL"));
    buf_free(&b);
    tmpl_free(bad);
    json_decref(d);
    tmpl_free(th);
    tmpl_free(tt);
    msg_context_memo_off(&memo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_known_tokens),
        cmocka_unit_test(test_verp),
        cmocka_unit_test(test_hostile_tokens),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_memo),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
