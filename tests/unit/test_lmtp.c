/* Unit tests for inbound/lmtp's protocol side (lmtp_session): dialogues
 * line by line, with a delivery callback that records what it was given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/lmtp.h"

struct got {
    int n;
    char rcpt[4][64];
    char data[4][256];
    int answer; /* what deliver says for rcpt "temp@x.example": 451 */
};

static int deliver(void *ud, const char *data, size_t len, const char *from, const char *rcpt,
                   char *text, size_t cap)
{
    struct got *g = ud;
    (void)from;
    if (g->n < 4) {
        snprintf(g->rcpt[g->n], sizeof g->rcpt[0], "%s", rcpt);
        snprintf(g->data[g->n], sizeof g->data[0], "%.*s", (int)len, data);
    }
    g->n++;
    if (!strcmp(rcpt, "temp@x.example")) {
        snprintf(text, cap, "4.3.0 later\r\ninjected");
        return 451;
    }
    snprintf(text, cap, "2.0.0 ok");
    return 250;
}

/* talk feeds the lines (separated by \n in script) and returns the replies'
 * codes, space-separated (continuation lines left out). */
static void talk(lmtp_session *s, const char *script, char *codes, size_t cap)
{
    buf out;
    buf_init(&out, BUF_NOCAP);
    const char *p = script;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!lmtp_line(s, p, n, &out))
            break;
        p += n + (nl ? 1 : 0);
    }
    codes[0] = '\0';
    size_t k = 0;
    for (char *l = out.data; l && *l;) {
        char *e = strstr(l, "\r\n");
        if (!e)
            fail_msg("a reply without CRLF: %s", l);
        if (e - l >= 4 && l[3] == ' ')
            k += (size_t)snprintf(codes + k, cap - k, "%s%.3s", k ? " " : "", l);
        l = e + 2;
    }
    buf_free(&out);
}

static void test_dialogues(void **state)
{
    (void)state;
    static const struct {
        const char *script, *codes;
    } cases[] = {
        {"LHLO mx\nMAIL FROM:<>\nRCPT TO:<a@x.example>\nDATA\nSubject: s\n\nhi\n.\nQUIT",
         "250 250 250 354 250 221"},
        {"EHLO mx\nHELO mx\nLHLO\nLHLO mx", "500 500 501 250"},
        {"MAIL FROM:<a@x.example>\nRCPT TO:<a@x.example>\nDATA", "503 503 503"},
        {"LHLO mx\nMAIL FROM:<a@x.example>\nMAIL FROM:<b@x.example>\nRSET\nMAIL FROM:<b@x.example>",
         "250 250 503 250 250"},
        {"LHLO mx\nMAIL FROM:a@x.example\nMAIL FROM:<a@x.example\nMAIL FROM:<a b@x>",
         "250 501 501 501"},
        {"LHLO mx\nMAIL FROM:<>\nRCPT TO:<>\nRCPT TO:<nodomain>\nDATA\nDATA x", "250 250 501 501 503 503"},
        {"LHLO mx\nNOOP\nVRFY a\nWHAT\nQUIT\nNOOP", "250 250 252 500 221"},
        {"lhlo mx\nmail from:<a@x.example> SIZE=10\nrcpt to:<b@x.example> NOTIFY=NEVER\ndata x",
         "250 250 250 501"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct got g = {0};
        lmtp_session s;
        lmtp_session_init(&s, 1 << 20, deliver, &g);
        char codes[256];
        talk(&s, cases[i].script, codes, sizeof codes);
        if (strcmp(codes, cases[i].codes))
            fail_msg("case %zu: got '%s', want '%s'", i, codes, cases[i].codes);
        lmtp_session_clear(&s);
    }
}

static void test_data_and_answers(void **state)
{
    (void)state;
    struct got g = {0};
    lmtp_session s;
    lmtp_session_init(&s, 1 << 20, deliver, &g);
    char codes[256];
    /* One answer per recipient, in order; dot-stuffing undone; a callback's
     * line break cannot split an answer. */
    talk(&s, "LHLO mx\nMAIL FROM:<>\nRCPT TO:<a@x.example>\nRCPT TO:<temp@x.example>\n"
             "RCPT TO:<c@x.example>\nDATA\nSubject: s\n\n..leading dot\n...\n.\n",
         codes, sizeof codes);
    assert_string_equal(codes, "250 250 250 250 250 354 250 451 250");
    assert_int_equal(g.n, 3);
    assert_string_equal(g.rcpt[1], "temp@x.example");
    assert_string_equal(g.data[0], "Subject: s\r\n\r\n.leading dot\r\n..\r\n");
    /* The transaction is over: a new one needs MAIL again. */
    talk(&s, "RCPT TO:<a@x.example>", codes, sizeof codes);
    assert_string_equal(codes, "503");
    lmtp_session_clear(&s);

    /* Too big: every recipient gets 552, nothing is delivered. */
    struct got g2 = {0};
    lmtp_session_init(&s, 32, deliver, &g2);
    talk(&s, "LHLO mx\nMAIL FROM:<>\nRCPT TO:<a@x.example>\nRCPT TO:<b@x.example>\nDATA\n"
             "0123456789012345678901234567890123456789\n.\nNOOP",
         codes, sizeof codes);
    assert_string_equal(codes, "250 250 250 250 354 552 552 250");
    assert_int_equal(g2.n, 0);
    lmtp_session_clear(&s);
}

static void test_limits(void **state)
{
    (void)state;
    struct got g = {0};
    lmtp_session s;
    lmtp_session_init(&s, 1 << 20, deliver, &g);
    buf out;
    buf_init(&out, BUF_NOCAP);
    assert_true(lmtp_line(&s, "LHLO mx", 7, &out));
    assert_true(lmtp_line(&s, "MAIL FROM:<>", 12, &out));
    char line[64];
    for (int i = 0; i < LMTP_RCPT_MAX + 1; i++) {
        int n = snprintf(line, sizeof line, "RCPT TO:<r%d@x.example>", i);
        buf_reset(&out);
        assert_true(lmtp_line(&s, line, (size_t)n, &out));
    }
    assert_memory_equal(out.data, "452 ", 4); /* the 101st */
    char *big = malloc(LMTP_LINE_MAX + 10);
    memset(big, 'A', LMTP_LINE_MAX + 10);
    buf_reset(&out);
    assert_true(lmtp_line(&s, big, LMTP_LINE_MAX + 10, &out));
    assert_memory_equal(out.data, "500 ", 4);
    free(big);
    buf_reset(&out);
    assert_true(lmtp_line(&s, "NOOP\0x", 6, &out));
    assert_memory_equal(out.data, "500 ", 4);
    buf_free(&out);
    lmtp_session_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialogues),
        cmocka_unit_test(test_data_and_answers),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
