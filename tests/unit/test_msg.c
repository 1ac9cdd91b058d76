/* Unit tests for mime/msg.
 *
 * Golden files: each case of golden_cases is built with a fixed Date and
 * Message-ID and compared byte for byte with tests/data/mime/NAME.eml.
 * After a deliberate change to the output, regenerate them with
 *   TIDINGS_REGEN_GOLDEN=1 build/h/tests/test_msg
 * (any build directory), review the diff, and commit it. Every built message
 * is also checked for structure: CRLF only, no line over 998 octets, header
 * lines within 78, boundaries only where parts begin and end. Then come the
 * transfer-encoding choice, hostile values, VERP and the unescaping of
 * template output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/hdr.h"
#include "mime/msg.h"
#include "util/err.h"

#define AR_NAME                                                                                    \
    "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xd8\xb9\xd8\xa8\xd8\xaf \xd8\xa7\xd9\x84\xd9\x84\xd9\x87"
#define TH_NAME                                                                                    \
    "\xe0\xb8\xaa\xe0\xb8\xa1\xe0\xb8\x8a\xe0\xb8\xb2\xe0\xb8\xa2 "                                \
    "\xe0\xb9\x83\xe0\xb8\x88\xe0\xb8\x94\xe0\xb8\xb5"
#define TH_SUBJ                                                                                    \
    "\xe0\xb8\x82\xe0\xb9\x88\xe0\xb8\xb2\xe0\xb8\xa7\xe0\xb8\xaa\xe0\xb8\xb2\xe0\xb8\xa3\xe0\xb8" \
    "\x9b\xe0\xb8\xa3\xe0\xb8\xb0\xe0\xb8\x88\xe0\xb8\xb3\xe0\xb8\xaa\xe0\xb8\xb1\xe0\xb8\x9b\xe0" \
    "\xb8\x94\xe0\xb8\xb2\xe0\xb8\xab\xe0\xb9\x8c"
#define AR_TEXT                                                                                    \
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd9\x83\xd9\x85 \xd9\x81\xd9\x8a "          \
    "\xd9\x86\xd8\xb4\xd8\xb1\xd8\xaa\xd9\x86\xd8\xa7"
#define DATE 1751364000 /* Tue, 01 Jul 2025 10:00:00 +0000 */

static char data_dir[512];

static void find_data_dir(void)
{
    const char *f = __FILE__; /* tests/unit/test_msg.c, as make passes it */
    const char *slash = strrchr(f, '/');
    snprintf(data_dir, sizeof data_dir, "%.*s/../data/mime", slash ? (int)(slash - f) : 1,
             slash ? f : ".");
}

/* ---- structure ---- */

static bool has(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, w, k))
            return true;
    return false;
}

static void check_structure(const char *what, const char *m, size_t n)
{
    size_t ls = 0;
    bool in_headers = true;
    size_t delims = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
            fail_msg("%s: a bare LF at byte %zu", what, i);
        if (m[i] == '\r' && (i + 1 >= n || m[i + 1] != '\n'))
            fail_msg("%s: a bare CR at byte %zu", what, i);
        if (m[i] == '\n') {
            size_t len = i - 1 - ls;
            if (len > 998)
                fail_msg("%s: a line of %zu octets at byte %zu", what, len, ls);
            if (in_headers && len > HDR_FOLD)
                fail_msg("%s: a header line of %zu octets: %.*s", what, len, (int)len, m + ls);
            if (len == 0)
                in_headers = false;
            if (len >= 4 && !memcmp(m + ls, "--=_", 4))
                delims++;
            else if (has(m + ls, len, "=_td_") && !has(m + ls, len, "boundary="))
                fail_msg("%s: a boundary inside a part: %.*s", what, (int)len, m + ls);
            ls = i + 1;
        }
    }
    if (n < 2 || memcmp(m + n - 2, "\r\n", 2))
        fail_msg("%s: the message does not end with CRLF", what);
    (void)delims;
}

/* ---- golden files ---- */

static const char basic_html[] =
    "<!DOCTYPE html>\n<html><head><title>Weekly</title></head><body>\n"
    "<h1>Spring sale</h1>\n<p>Hello Jane, our <a href=\"https://shop.example.com/sale\">spring "
    "sale</a> starts today.</p>\n<ul><li>Shoes</li><li>Bags</li></ul>\n"
    "<p><a href=\"https://news.example.com/u/tok123\">Unsubscribe</a></p>\n</body></html>\n";

static const char intl_html[] =
    "<html dir=\"rtl\"><body><h1>" AR_TEXT "</h1><p>" AR_TEXT " " AR_TEXT " " AR_TEXT "</p>"
    "<p>" TH_SUBJ " " TH_SUBJ "</p></body></html>";

static const char intl_text[] = AR_TEXT "\n\n" TH_SUBJ "\n";

/* long lines, trailing blanks, empty lines, "From " and "=_" in the text */
static const char hard_text[] =
    "First line with trailing blanks   \n"
    "\n"
    "\n"
    "From the editor: a line that mbox tools would change.\n"
    "Tabs\tand = signs and =_ that look like a boundary.\n"
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9\t\n"
    "A very long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.\n"
    "last line without a newline ";

static unsigned char binary[3000];

static const msg_header camp_headers[] = {{"X-Campaign", "spring-2025"}};

static const struct golden_case {
    const char *name;
    msg_envelope_spec env;
    msg_spec spec;
} golden_cases[] = {
    {"basic",
     {.from = "Shop Example <news@shop.example.com>",
      .reply_to = "\"Support, Shop\" <support@shop.example.com>",
      .list_id = "weekly.shop.example.com",
      .list_name = "Weekly News",
      .feedback_id = "42:7:newsletter:tidings",
      .headers = camp_headers,
      .nheaders = 1},
     {.to = "Jane Doe <jane@example.org>",
      .subject = "Spring sale starts today",
      .html = basic_html,
      .unsubscribe_url = "https://news.example.com/u/tok123",
      .unsubscribe_mailto = "unsubscribe+tok123@news.example.com",
      .message_id = "basic.1@shop.example.com",
      .date = DATE}},
    {"international",
     {.from = AR_NAME " <ahmed@shop.example.com>"},
     {.to = TH_NAME " <somchai@example.co.th>",
      .subject = TH_SUBJ " " AR_TEXT,
      .html = intl_html,
      .text = intl_text,
      .message_id = "intl.1@shop.example.com",
      .date = DATE}},
    {"hard_text",
     {.from = "news@shop.example.com"},
     {.to = "jane@example.org",
      .subject = "Plain text, hard lines",
      .text = hard_text,
      .message_id = "<hard.1@shop.example.com>",
      .date = DATE}},
    {"attachments",
     {.from = "Shop <news@shop.example.com>"},
     {.to = "jane@example.org",
      .subject = "Your invoice",
      .html = "<p>Invoice attached.</p>",
      .attachments =
          (const msg_attachment[]){
              {"invoice.pdf", "application/pdf", binary, sizeof binary},
              {"\xd9\x81\xd8\xa7\xd8\xaa\xd9\x88\xd8\xb1\xd8\xa9 " AR_TEXT " " AR_TEXT ".txt",
               "text/plain", "hello\n", 6},
              {"empty \"quoted\".bin", NULL, "", 0},
          },
      .nattachments = 3,
      .message_id = "att.1@shop.example.com",
      .date = DATE}},
    {"smtputf8",
     {.from = "news@shop.example.com"},
     {.to = "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc"
            "cher.example>",
      .subject = "x",
      .text = "short ASCII text\n",
      .message_id = "u8.1@shop.example.com",
      .date = DATE}},
};

static void test_golden(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (unsigned char)(i * 7 + i / 256);
    bool regen = getenv("TIDINGS_REGEN_GOLDEN") != NULL;
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++) {
        const struct golden_case *c = &golden_cases[i];
        msg_spec s = c->spec;
        if (s.subject)
            s.subject_len = strlen(s.subject);
        if (s.html)
            s.html_len = strlen(s.html);
        if (s.text)
            s.text_len = strlen(s.text);
        msg_envelope *env = NULL;
        td_error e = {0};
        if (msg_envelope_new(&c->env, &env, &e))
            fail_msg("%s: envelope: %s", c->name, e.msg);
        buf b;
        buf_init(&b, BUF_NOCAP);
        msg_info info;
        if (msg_build(env, &s, &b, &info, &e))
            fail_msg("%s: %s", c->name, e.msg);
        check_structure(c->name, b.data, b.len);
        char path[600];
        snprintf(path, sizeof path, "%s/%s.eml", data_dir, c->name);
        if (regen) {
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            fwrite(b.data, 1, b.len, f);
            fclose(f);
        }
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("%s: cannot open %s (regenerate: see the top of this file)", c->name, path);
        static char want[1 << 20];
        size_t n = fread(want, 1, sizeof want, f);
        fclose(f);
        if (n != b.len || memcmp(want, b.data, n)) {
            size_t k = 0;
            while (k < n && k < b.len && want[k] == b.data[k])
                k++;
            fail_msg("%s: differs from %s at byte %zu:\n got: %.60s\nwant: %.60s", c->name, path, k,
                     b.data + k, want + k);
        }
        if (!strcmp(c->name, "smtputf8")) {
            assert_true(info.smtputf8);
            assert_string_equal(info.rcpt_to, "j\xc3\xb6rg@xn--bcher-kva.example");
        } else {
            assert_false(info.smtputf8);
        }
        buf_free(&b);
        msg_envelope_free(env);
    }
}

/* ---- transfer encodings, chosen by content ---- */

static const char *cte_of(const char *text)
{
    static char got[64];
    msg_envelope_spec es = {.from = "a@example.com"};
    msg_envelope *env;
    td_error e;
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    msg_spec s = {.to = "b@example.com",
                  .subject = "s",
                  .subject_len = 1,
                  .text = text,
                  .text_len = strlen(text),
                  .date = DATE,
                  .message_id = "a@b"};
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(msg_build(env, &s, &b, NULL, &e), 0);
    check_structure("cte", b.data, b.len);
    const char *p = strstr(b.data, "Content-Transfer-Encoding: ");
    assert_non_null(p);
    snprintf(got, sizeof got, "%.*s", (int)strcspn(p + 27, "\r"), p + 27);
    buf_free(&b);
    msg_envelope_free(env);
    return got;
}

static void test_cte(void **state)
{
    (void)state;
    static const struct {
        const char *text, *cte;
    } cases[] = {
        {"short ASCII lines\nonly\n", "7bit"},
        {"trailing blanks are fine in 7bit   \n", "7bit"},
        {"From the start of a line\n", "quoted-printable"},
        {"=_ could be a boundary\n", "quoted-printable"},
        {"a bell \a is a control\n", "quoted-printable"},
        {"mostly ASCII with one caf\xc3\xa9\n", "quoted-printable"},
        {AR_TEXT " " AR_TEXT " " AR_TEXT "\n", "base64"},
        {TH_SUBJ TH_SUBJ "\n", "base64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(cte_of(cases[i].text), cases[i].cte))
            fail_msg("case %zu: %s, want %s", i, cte_of(cases[i].text), cases[i].cte);
    /* a line of 79 ASCII characters is too long for 7bit; one of 78 is not */
    char l[100];
    memset(l, 'x', 78);
    l[78] = '\0';
    assert_string_equal(cte_of(l), "7bit");
    memset(l, 'x', 79);
    l[79] = '\0';
    assert_string_equal(cte_of(l), "quoted-printable");
    /* a 100 KB line of HTML-ish ASCII stays within 76 by soft breaks */
    char *big = malloc(100001);
    memset(big, 'y', 100000);
    big[100000] = '\0';
    assert_string_equal(cte_of(big), "quoted-printable");
    free(big);
}

/* cte_want is choose_cte read byte by byte, as RFC 2045 and the comment
 * in msg.c put it: the oracle for the builder's 16-byte scan. */
static const char *cte_want(const char *s, size_t n)
{
    size_t hi = 0, esc = 0, lines = 1, maxline = 0, ls = 0;
    bool not7 = n >= 5 && !memcmp(s, "From ", 5);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n') {
            if (i - ls > maxline)
                maxline = i - ls;
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            lines++;
            ls = i + 1;
            if (n - ls >= 5 && !memcmp(s + ls, "From ", 5))
                not7 = true;
        } else if (c >= 0x80) {
            hi++;
        } else if (c == '=') {
            esc++;
            if (i + 1 < n && s[i + 1] == '_')
                not7 = true;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            esc++;
            not7 = true;
        }
    }
    if (n - ls > maxline)
        maxline = n - ls;
    if (!hi && !not7 && maxline <= 78)
        return "7bit";
    size_t qp = n + 2 * (hi + esc);
    qp += qp / 73 * 3 + lines;
    size_t b64 = (n + lines + 2) / 3 * 4;
    b64 += b64 / 76 * 2;
    return qp <= b64 ? "quoted-printable" : "base64";
}

/* The encoding chosen for random texts (each piece at every offset of a
 * 16-byte block, CRLF split across blocks, long and short lines, more or
 * less non-ASCII) is the oracle's. */
static void test_cte_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a",  "a",      "a",   "a",     "a",     "a",       "a",    "a",   "a",
        "a",  "a",      "a",   "a",     "a",     "b",       " ",    " ",   "\t",
        "=",  "=_",     "_",   "\n",    "\r\n",  "\r",       "From ", "F",  "\x01",
        "\x1f", "\x7f", "\xc3\xa9", "\xe0\xb8\xaa", "\xd9\x85", "\xf0\x9f\x99\x82"};
    buf in;
    buf_init(&in, BUF_NOCAP);
    uint32_t x = 2463534242u;
    int seen[3] = {0};
    for (int k = 0; k < 4000; k++) {
        buf_reset(&in);
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t n = 1 + x % 600;
        /* some texts are nearly all plain, some have no line ends */
        unsigned mode = (x >> 12) % 4;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t np = sizeof pieces / sizeof pieces[0];
            size_t pick = mode == 0 ? x % 14 : x % np;
            if (mode == 1 && (pick == 21 || pick == 22 || pick == 23))
                pick = 0;
            buf_puts(&in, pieces[pick]);
        }
        const char *got = cte_of(in.data), *want = cte_want(in.data, in.len);
        if (strcmp(got, want))
            fail_msg("case %d: %s, want %s for [%s]", k, got, want, in.data);
        seen[!strcmp(want, "7bit") ? 0 : !strcmp(want, "base64") ? 2 : 1]++;
    }
    /* every outcome was tried */
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    /* "=_" (and a control, and DEL) at every offset of the 16-byte
     * blocks, straddling two of them too, in otherwise 7bit text */
    static const char *const marks[] = {"=_", "\x01", "\x7f"};
    for (size_t m = 0; m < 3; m++)
        for (size_t at = 0; at < 40; at++) {
            buf_reset(&in);
            for (size_t i = 0; i < at; i++)
                buf_putc(&in, i == 30 ? '\n' : 'a');
            buf_puts(&in, marks[m]);
            buf_puts(&in, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
            assert_string_equal(cte_of(in.data), "quoted-printable");
        }
    buf_free(&in);
}

/* Texts longer than the start the builder samples to guess the encoding
 * (4 KB): a light start and a dense rest make it encode quoted-printable
 * first and then switch to base64; the other way round, it counts first.
 * The choice is always the oracle's, the part has one set of headers, and
 * a base64 body decodes back to the text. */
static void test_cte_long(void **state)
{
    (void)state;
    msg_envelope_spec es = {.from = "a@example.com"};
    msg_envelope *env;
    td_error e;
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    buf in, b;
    buf_init(&in, BUF_NOCAP);
    buf_init(&b, BUF_NOCAP);
    int seen[3] = {0};
    for (size_t light = 0; light <= 12000; light += 500)
        for (int order = 0; order < 2; order++) {
            buf_reset(&in);
            for (int part = 0; part < 2; part++) {
                if (part == order) /* long lines of HTML */
                    for (size_t i = 0; i < light; i += 25)
                        buf_puts(&in, i % 2000 < 25 ? "<td style=\"a\">abcdefghi\n"
                                                    : "<td style=\"a\">abcdefghij");
                else /* Thai, three bytes a letter */
                    for (size_t i = 0; i < 1500; i += 3)
                        buf_puts(&in, i % 300 ? "\xe0\xb8\xaa" : "\n");
            }
            const char *want = cte_want(in.data, in.len);
            seen[!strcmp(want, "7bit") ? 0 : !strcmp(want, "base64") ? 2 : 1]++;
            msg_spec s = {.to = "b@example.com", .subject = "s", .subject_len = 1,
                          .text = in.data, .text_len = in.len, .date = DATE,
                          .message_id = "a@b"};
            buf_reset(&b);
            assert_int_equal(msg_build(env, &s, &b, NULL, &e), 0);
            check_structure("cte long", b.data, b.len);
            const char *h = strstr(b.data, "Content-Transfer-Encoding: ");
            assert_non_null(h);
            if (strncmp(h + 27, want, strlen(want)))
                fail_msg("light %zu, order %d: %.20s, want %s", light, order, h + 27, want);
            assert_null(strstr(h + 1, "Content-Transfer-Encoding: "));
            assert_int_equal(b.data[b.len - 1], '\n');
            if (!strcmp(want, "base64")) {
                const char *body = strstr(h, "\r\n\r\n") + 4;
                unsigned char *dec = malloc(b.len);
                size_t dn = 0;
                assert_int_equal(sodium_base642bin(dec, b.len, body, strlen(body), "\r\n",
                                                   &dn, NULL, sodium_base64_VARIANT_ORIGINAL),
                                 0);
                /* the text with CRLF line ends */
                size_t j = 0;
                for (size_t i = 0; i < in.len; i++) {
                    if (in.data[i] == '\n')
                        assert_true(j < dn && dec[j++] == '\r');
                    assert_true(j < dn && dec[j++] == (unsigned char)in.data[i]);
                }
                assert_int_equal(j, dn);
                free(dec);
            }
        }
    assert_true(seen[1] > 0 && seen[2] > 0);
    /* A light start and a long dense rest into an output capped at what
     * base64 needs: the quoted-printable tried first passes the cap, and
     * the part still goes out as base64, as it would uncapped. */
    buf_reset(&in);
    while (in.len < 4500)
        buf_puts(&in, "<td style=\"a\">abcdefghij\n");
    while (in.len < 40000)
        buf_puts(&in, "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\n");
    {
        msg_spec s = {.to = "b@example.com", .subject = "s", .subject_len = 1,
                      .html = in.data, .html_len = in.len, .text = "t", .text_len = 1,
                      .date = DATE, .message_id = "a@b"};
        buf_reset(&b);
        assert_int_equal(msg_build(env, &s, &b, NULL, &e), 0);
        assert_non_null(strstr(b.data, "Content-Transfer-Encoding: base64"));
        buf capped;
        buf_init(&capped, b.len);
        if (msg_build(env, &s, &capped, NULL, &e))
            fail_msg("capped at %zu: %s", b.len, e.msg);
        assert_int_equal(capped.len, b.len);
        assert_memory_equal(capped.data, b.data, b.len);
        buf_free(&capped);
    }
    /* Near the line between the two, where the count of lines decides: a
     * light start of short lines, then short lines holding more and more
     * Thai letters. */
    for (size_t thai = 0; thai < 3000; thai += 7) {
        buf_reset(&in);
        while (in.len < 4200)
            buf_puts(&in, "abcdefghijklmnopqrstuvw\n");
        for (size_t line = 0, put = 0; line < 300; line++) {
            buf_puts(&in, "abcdefghij");
            for (size_t k = 0; k < 10 && put < thai; k++, put++)
                buf_puts(&in, "\xe0\xb8\xaa");
            buf_puts(&in, "\n");
        }
        const char *want = cte_want(in.data, in.len);
        if (strcmp(cte_of(in.data), want))
            fail_msg("%zu Thai letters: %s, want %s", thai, cte_of(in.data), want);
    }
    buf_free(&in);
    buf_free(&b);
    msg_envelope_free(env);
}

/* The quoted-printable encoder skips plain text 16 (or 8) bytes at a time
 * and writes in place: random texts with long plain runs, blanks before
 * line ends, '=', tabs, "From " and UTF-8 must decode back to the text
 * (every line end made CRLF), in lines of at most 76 characters, with no
 * blank at a line's end and no line starting "From ". */
static void test_qp_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {"a", "a", "a", "a", "a", "a", "a", "a", "a", "a",
                                         "b", "c", " ", " ", " ", "\t", "=", "\n", "\r\n",
                                         "\r", ".", "From ", "\xc3\xa9", "  \n", " \t\r\n"};
    static const char *const html_pieces[] = {"<td style=\"padding:8px\">", "<a href=\"x\">",
                                              "=",  "==", "a", "ab", "abc", "abcdefghijklmnopq",
                                              " ",  "F",  "From ", "\xc3\xa9", "\t", "=\n"};
    msg_envelope_spec es = {.from = "a@example.com"};
    msg_envelope *env;
    td_error e;
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    buf in, want, got, b;
    buf_init(&in, BUF_NOCAP);
    buf_init(&want, BUF_NOCAP);
    buf_init(&got, BUF_NOCAP);
    buf_init(&b, BUF_NOCAP);
    uint32_t x = 88172645u;
    int qp = 0;
    for (int k = 0; k < 3000; k++) {
        buf_reset(&in);
        buf_reset(&want);
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t n = 1 + x % 400;
        /* a third of the texts are long lines of HTML: soft breaks land
         * on every kind of byte, '=' the most common */
        bool html = (x >> 9) % 3 == 0;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            if (html)
                buf_puts(&in, html_pieces[x % (sizeof html_pieces / sizeof html_pieces[0])]);
            else
                buf_puts(&in, pieces[x % (sizeof pieces / sizeof pieces[0])]);
        }
        for (const char *p = in.data; *p; p++) /* every line end, CR, LF or CRLF: CRLF */
            if (*p == '\r' || *p == '\n')
                buf_puts(&want, "\r\n"), p += p[0] == '\r' && p[1] == '\n';
            else
                buf_putc(&want, *p);
        msg_spec s = {.to = "b@example.com", .subject = "s", .subject_len = 1,
                      .text = in.data, .text_len = in.len, .date = DATE,
                      .message_id = "a@b"};
        buf_reset(&b);
        assert_int_equal(msg_build(env, &s, &b, NULL, &e), 0);
        if (!strstr(b.data, "Content-Transfer-Encoding: quoted-printable\r\n"))
            continue;
        qp++;
        const char *body = strstr(b.data, "\r\n\r\n") + 4;
        buf_reset(&got);
        for (const char *l = body; *l;) {
            const char *eol = strstr(l, "\r\n");
            size_t len = eol ? (size_t)(eol - l) : strlen(l);
            if (len > 76 || (len && (l[len - 1] == ' ' || l[len - 1] == '\t')) ||
                !strncmp(l, "From ", 5))
                fail_msg("case %d: bad line [%.*s]", k, (int)len, l);
            bool soft = len && l[len - 1] == '=';
            for (size_t i = 0; i < len - soft; i++) {
                unsigned char c = (unsigned char)l[i];
                if (c == '=') {
                    unsigned v;
                    assert_true(i + 2 < len + 1 - soft);
                    assert_int_equal(sscanf(l + i + 1, "%2X", &v), 1);
                    buf_putc(&got, (char)v);
                    i += 2;
                } else {
                    assert_true(c == ' ' || c == '\t' || (c > 32 && c < 127));
                    buf_putc(&got, (char)c);
                }
            }
            if (!eol)
                break;
            if (!soft)
                buf_puts(&got, "\r\n");
            l = eol + 2;
        }
        /* the part may end with a line end of the message's own */
        if (got.len == want.len + 2 && !memcmp(got.data + want.len, "\r\n", 2))
            got.len -= 2;
        if (got.len != want.len || memcmp(got.data, want.data, want.len))
            fail_msg("case %d: decoded text differs (%zu bytes, want %zu)", k, got.len,
                     want.len);
    }
    assert_true(qp > 1000);
    buf_free(&in);
    buf_free(&want);
    buf_free(&got);
    buf_free(&b);
    msg_envelope_free(env);
}

/* ---- hostile values ---- */

/* The body check reads 16 bytes at a time: a NUL or a bad UTF-8 byte at
 * any offset of the blocks (and past them) is refused with its position,
 * and UTF-8 sequences across the blocks' edges are accepted. */
static void test_body_check(void **state)
{
    (void)state;
    msg_envelope_spec es = {.from = "a@example.com"};
    msg_envelope *env;
    td_error e;
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    buf b;
    buf_init(&b, BUF_NOCAP);
    char body[80];
    static const char *const faults[] = {"\0", "\xff", "\xc3", "\xe0\xb8", "\x80"};
    static const char *const wants[] = {"NUL byte", "not valid UTF-8", "not valid UTF-8",
                                        "not valid UTF-8", "not valid UTF-8"};
    for (int html = 0; html < 2; html++)
        for (size_t f = 0; f < 5; f++)
            for (size_t at = 0; at < 70; at++) {
                memset(body, 'a', sizeof body);
                size_t fl = f == 0 ? 1 : strlen(faults[f]);
                memcpy(body + at, faults[f], fl);
                size_t n = at + fl + (at % 3) * 4; /* the fault last or not */
                msg_spec sp = {.to = "b@example.com", .subject = "s", .subject_len = 1,
                               .date = DATE, .message_id = "a@b"};
                if (html)
                    sp.html = body, sp.html_len = n;
                else
                    sp.text = body, sp.text_len = n;
                buf_reset(&b);
                assert_int_equal(msg_build(env, &sp, &b, NULL, &e), TD_EINVAL);
                char pos[32];
                snprintf(pos, sizeof pos, "(byte %zu)", at + 1);
                if (!strstr(e.msg, wants[f]) || !strstr(e.msg, pos))
                    fail_msg("fault %zu at %zu: %s", f, at, e.msg);
            }
    /* a Thai letter (3 bytes) and an emoji (4) at every offset */
    static const char *const good[] = {"\xe0\xb8\xaa", "\xf0\x9f\x99\x82"};
    for (size_t g = 0; g < 2; g++)
        for (size_t at = 0; at < 40; at++) {
            memset(body, 'a', sizeof body);
            memcpy(body + at, good[g], strlen(good[g]));
            msg_spec sp = {.to = "b@example.com", .subject = "s", .subject_len = 1,
                           .html = body, .html_len = 60, .date = DATE, .message_id = "a@b"};
            buf_reset(&b);
            assert_int_equal(msg_build(env, &sp, &b, NULL, &e), 0);
        }
    buf_free(&b);
    msg_envelope_free(env);
}

static void test_hostile(void **state)
{
    (void)state;
    msg_envelope *env;
    td_error e = {0};
    /* envelope values */
    const struct {
        msg_envelope_spec es;
        const char *words;
    } bad_env[] = {
        {{.from = NULL}, "needs a From"},
        {{.from = "Eve <eve@example.com>\r\nBcc: x@example.com"}, "From"},
        {{.from = "Eve\n <eve@example.com>"}, "From"},
        {{.from = "not an address"}, "From"},
        {{.from = "a@example.com", .reply_to = "x\r\n@example.com"}, "Reply-To"},
        {{.from = "a@example.com", .list_id = "bad id"}, "list id"},
        {{.from = "a@example.com", .feedback_id = "a\r\nb"}, "Feedback-ID"},
        {{.from = "a@example.com",
          .headers = (const msg_header[]){{"Subject", "x"}},
          .nheaders = 1},
         "writes itself"},
        {{.from = "a@example.com", .headers = (const msg_header[]){{"X-A", "a\nb"}}, .nheaders = 1},
         "line feed"},
    };
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        int rc = msg_envelope_new(&bad_env[i].es, &env, &e);
        if (rc != TD_EINVAL || !strstr(e.msg, bad_env[i].words) || env)
            fail_msg("envelope case %zu: rc=%d '%s'", i, rc, e.msg);
    }

    msg_envelope_spec es = {.from = "a@example.com"};
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    size_t mb = 1 << 20;
    char *huge = malloc(mb);
    memset(huge, 'S', mb);
    const struct {
        msg_spec s;
        int code;
        const char *words;
    } bad[] = {
        {{.to = "b@example.com",
          .subject = "Hi\r\nBcc: v@example.com",
          .subject_len = 23,
          .text = "t",
          .text_len = 1},
         TD_EINVAL,
         "carriage return"},
        {{.to = "b@example.com",
          .subject = "Hi\nthere",
          .subject_len = 8,
          .text = "t",
          .text_len = 1},
         TD_EINVAL,
         "line feed"},
        {{.to = "b@example.com", .subject = "nul\0", .subject_len = 4, .text = "t", .text_len = 1},
         TD_EINVAL,
         "NUL"},
        {{.to = "b@example.com",
          .subject = "bad \xc3",
          .subject_len = 5,
          .text = "t",
          .text_len = 1},
         TD_EINVAL,
         "UTF-8"},
        {{.to = "b@example.com\r\nBcc: v@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1},
         TD_EINVAL,
         "To"},
        {{.to = "Name\r\n <b@example.com>",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1},
         TD_EINVAL,
         "To"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .html = "<p>\xff</p>",
          .html_len = 8},
         TD_EINVAL,
         "HTML is not valid UTF-8"},
        {{.to = "b@example.com", .subject = "s", .subject_len = 1, .text = "a\0b", .text_len = 3},
         TD_EINVAL,
         "NUL"},
        {{.to = "b@example.com", .subject = "s", .subject_len = 1}, TD_EINVAL, "HTML or a text"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .unsubscribe_url = "http://insecure.example/u"},
         TD_EINVAL,
         "https"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .unsubscribe_url = "https://x.example/u\r\nBcc: v@example.com"},
         TD_EINVAL,
         "percent-encode"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .unsubscribe_mailto = "u\n@x.example"},
         TD_EINVAL,
         "unsubscribe address"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .message_id = "no-at-sign"},
         TD_EINVAL,
         "Message-ID"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .message_id = "a@b>\r\nBcc: v@example.com"},
         TD_EINVAL,
         "Message-ID"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .return_path = "bounce\r\n@x.example"},
         TD_EINVAL,
         "return path"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .attachments = (const msg_attachment[]){{"../../etc/passwd", NULL, "x", 1}},
          .nattachments = 1},
         TD_EINVAL,
         "'/'"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .attachments = (const msg_attachment[]){{"a\r\n.txt", NULL, "x", 1}},
          .nattachments = 1},
         TD_EINVAL,
         "control"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .attachments = (const msg_attachment[]){{"a.eml", "message/rfc822", "x", 1}},
          .nattachments = 1},
         TD_EINVAL,
         "message/"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .attachments = (const msg_attachment[]){{"a.txt", "text/plain\r\nX: y", "x", 1}},
          .nattachments = 1},
         TD_EINVAL,
         "type/subtype"},
        {{.to = "b@example.com",
          .subject = "s",
          .subject_len = 1,
          .text = "t",
          .text_len = 1,
          .headers = (const msg_header[]){{"X-Bad", "v\r\nBcc: v@example.com"}},
          .nheaders = 1},
         TD_EINVAL,
         "carriage return"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        buf_puts(&b, "previous message");
        int rc = msg_build(env, &bad[i].s, &b, NULL, &e);
        if (rc != bad[i].code || !strstr(e.msg, bad[i].words))
            fail_msg("case %zu: rc=%d '%s', want %d with '%s'", i, rc, e.msg, bad[i].code,
                     bad[i].words);
        assert_string_equal(b.data, "previous message");
        buf_free(&b);
    }
    /* a 1 MB subject is refused, saying the limit */
    msg_spec s = {
        .to = "b@example.com", .subject = huge, .subject_len = mb, .text = "t", .text_len = 1};
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(msg_build(env, &s, &b, NULL, &e), TD_ETOOBIG);
    assert_non_null(strstr(e.msg, "at most 16384"));
    assert_int_equal(b.len, 0);
    /* the largest subject allowed works and folds */
    s.subject_len = HDR_VALUE_MAX;
    for (size_t i = 0; i < HDR_VALUE_MAX; i += 10)
        huge[i] = ' ';
    assert_int_equal(msg_build(env, &s, &b, NULL, &e), 0);
    check_structure("16 KB subject", b.data, b.len);
    /* the message's own cap */
    buf small;
    buf_init(&small, 200);
    s.subject_len = 10;
    assert_int_equal(msg_build(env, &s, &small, NULL, &e), TD_ETOOBIG);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&b);
    free(huge);
    msg_envelope_free(env);
}

/* ---- generated Message-ID, envelope reuse, info ---- */

static void test_ids_and_reuse(void **state)
{
    (void)state;
    msg_envelope_spec es = {.from = "Shop <news@Shop.Example.com>"};
    msg_envelope *env;
    td_error e;
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    msg_spec s = {.to = "b@example.com",
                  .subject = "s",
                  .subject_len = 1,
                  .text = "t\n",
                  .text_len = 2,
                  .return_path = "bounces+c42.r7@shop.example.com"};
    buf b;
    buf_init(&b, BUF_NOCAP);
    msg_info i1, i2;
    assert_int_equal(msg_build(env, &s, &b, &i1, &e), 0);
    assert_int_equal(msg_build(env, &s, &b, &i2, &e), 0);
    assert_int_equal(strlen(i1.message_id), 32 + 1 + strlen("shop.example.com"));
    assert_non_null(strstr(i1.message_id, "@shop.example.com"));
    assert_string_not_equal(i1.message_id, i2.message_id);
    assert_string_equal(i1.mail_from, "bounces+c42.r7@shop.example.com");
    assert_string_equal(i1.rcpt_to, "b@example.com");
    /* no Return-Path header: the receiving server writes it */
    assert_null(strstr(b.data, "Return-Path"));
    /* without a return path, MAIL FROM is the From address */
    s.return_path = NULL;
    assert_int_equal(msg_build(env, &s, &b, &i1, &e), 0);
    assert_string_equal(i1.mail_from, "news@shop.example.com");
    buf_free(&b);
    msg_envelope_free(env);

    es.msgid_domain = "mail.example.net";
    assert_int_equal(msg_envelope_new(&es, &env, &e), 0);
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(msg_build(env, &s, &b, &i1, &e), 0);
    assert_non_null(strstr(i1.message_id, "@mail.example.net"));
    buf_free(&b);
    msg_envelope_free(env);
    es.msgid_domain = "bad domain";
    assert_int_equal(msg_envelope_new(&es, &env, &e), TD_EINVAL);
}

/* ---- VERP ---- */

static void test_verp(void **state)
{
    (void)state;
    char a[ADDR_MAX + 3];
    td_error e;
    assert_int_equal(msg_verp_build("bounces", "c42", "r7x-9_z", "Shop.Example.com", a, &e), 0);
    assert_string_equal(a, "bounces+c42.r7x-9_z@shop.example.com");
    msg_verp v;
    assert_int_equal(msg_verp_parse(a, "bounces", &v, &e), 0);
    assert_string_equal(v.campaign, "c42");
    assert_string_equal(v.token, "r7x-9_z");
    assert_string_equal(v.domain, "shop.example.com");
    /* a relay that upper-cases the local part does not break it */
    assert_int_equal(msg_verp_parse("BOUNCES+C42.R7X-9_Z@SHOP.EXAMPLE.COM", "bounces", &v, &e), 0);
    assert_string_equal(v.token, "r7x-9_z");
    /* IDN domain to A-labels */
    assert_int_equal(msg_verp_build("b", "1", "2",
                                    "b\xc3\xbc"
                                    "cher.example",
                                    a, &e),
                     0);
    assert_string_equal(a, "b+1.2@xn--bcher-kva.example");

    static const struct {
        const char *base, *campaign, *token, *domain;
    } bad_build[] = {
        {"bounces", "C42", "t", "x.example"},     /* upper case */
        {"bounces", "c.42", "t", "x.example"},    /* the separator */
        {"bounces", "c42", "", "x.example"},      /* empty */
        {"bounces", "c42", "t\r\n", "x.example"}, /* control */
        {"bounces", "c42", "t", "bad domain"},
        {"bounces", "c42",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x.example"},
        {"bounces", "c4242424242424242424242424242", "t42424242424242424242424242424242",
         "x.example"}, /* local part over 64 */
    };
    for (size_t i = 0; i < sizeof bad_build / sizeof bad_build[0]; i++)
        if (msg_verp_build(bad_build[i].base, bad_build[i].campaign, bad_build[i].token,
                           bad_build[i].domain, a, &e) != TD_EINVAL)
            fail_msg("build case %zu was accepted: %s", i, a);

    static const char *const bad_parse[] = {
        "bounces@x.example",           "bounces+c42@x.example",       "other+c42.t@x.example",
        "bounces+c42.t.u@x.example",   "bounces+.t@x.example",        "bounces+c42.@x.example",
        "\"bounces+c42.t\"@x.example", "bounces+c42.t\r\n@x.example", "not an address",
        "bounces+c%42.t@x.example"};
    for (size_t i = 0; i < sizeof bad_parse / sizeof bad_parse[0]; i++)
        if (msg_verp_parse(bad_parse[i], "bounces", &v, &e) != TD_EINVAL)
            fail_msg("parse case %zu was accepted: %s", i, bad_parse[i]);
}

static void test_unescape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Tom &amp; Jerry", "Tom & Jerry"},
        {"&lt;b&gt; &quot;q&quot; it&#39;s", "<b> \"q\" it's"},
        {"&amp;lt; stays one level", "&lt; stays one level"},
        {"&nbsp; &eacute; &#x27; untouched", "&nbsp; &eacute; &#x27; untouched"},
        {"trailing &amp", "trailing &amp"},
        {"", ""},
        {"&", "&"},
        {"&&amp;&", "&&&"},
        {"&amp;&amp;&amp;", "&&&"},
        {"a &lt; b &gt; c", "a < b > c"},
        {"x&amp;", "x&"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[100];
        snprintf(s, sizeof s, "%s", cases[i].in);
        size_t n = msg_text_unescape(s, strlen(s));
        assert_int_equal(n, strlen(cases[i].out));
        assert_memory_equal(s, cases[i].out, n);
    }
}

int main(void)
{
    find_data_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),  cmocka_unit_test(test_cte),
        cmocka_unit_test(test_qp_random), cmocka_unit_test(test_cte_random),
        cmocka_unit_test(test_cte_long), cmocka_unit_test(test_body_check),
        cmocka_unit_test(test_hostile), cmocka_unit_test(test_ids_and_reuse),
        cmocka_unit_test(test_verp),    cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
