/* Unit tests for smtp_data_crlf_only, the check that lets a built message
 * go out after DATA as it is (but for dot-stuffing): against a byte-wise
 * oracle on random data with CR, LF, CRLF and '.' at every offset of a
 * 16-byte block. The stuffing itself is checked on the wire by
 * tests/e2e/test_smtp.py (test_bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"
#include "util/buf.h"

/* The oracle: every CR is followed by LF, and every LF follows a CR. */
static bool want(const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n'))
            return false;
        if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
            return false;
    }
    return true;
}

static void test_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {"a", "a",  "a",    "a",  "ab",   "abcdefghijklmno",
                                         "=", "\xc3\xa9", "\r\n", "\r\n", "\r\n", "\r\n.",
                                         ".", "\r", "\n",   "\n.", "\r\r\n", " "};
    buf b;
    buf_init(&b, BUF_NOCAP);
    uint32_t x = 123456789u;
    int yes = 0, no = 0;
    for (int k = 0; k < 20000; k++) {
        buf_reset(&b);
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t n = x % 120;
        /* most texts only in wire form's pieces, so that both answers come up */
        size_t np = (x >> 8) % 2 ? 11 : sizeof pieces / sizeof pieces[0];
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf_puts(&b, pieces[x % np]);
        }
        bool w = want(b.data ? b.data : "", b.len);
        if (smtp_data_crlf_only(b.data, b.len) != w)
            fail_msg("case %d (%zu bytes): %s, want %s", k, b.len, w ? "no" : "yes",
                     w ? "yes" : "no");
        w ? yes++ : no++;
    }
    assert_true(yes > 2000 && no > 2000);
    buf_free(&b);
}

/* Each kind of fault alone, at every offset across three blocks. */
static void test_each_offset(void **state)
{
    (void)state;
    char d[64];
    assert_true(smtp_data_crlf_only(NULL, 0));
    for (size_t len = 1; len <= 48; len++)
        for (size_t at = 0; at < len; at++) {
            memset(d, 'a', sizeof d);
            /* a bare CR, a bare LF; a '.' anywhere is fine */
            d[at] = '\r';
            assert_int_equal(smtp_data_crlf_only(d, len), false);
            d[at] = '\n';
            assert_int_equal(smtp_data_crlf_only(d, len), false);
            d[at] = '.';
            assert_int_equal(smtp_data_crlf_only(d, len), true);
            if (at + 2 < len) {
                d[at] = '\r', d[at + 1] = '\n', d[at + 2] = '.';
                assert_int_equal(smtp_data_crlf_only(d, len), true);
                d[at + 1] = 'b'; /* CR b . */
                assert_int_equal(smtp_data_crlf_only(d, len), false);
                d[at] = 'b', d[at + 1] = '\n'; /* b LF . */
                assert_int_equal(smtp_data_crlf_only(d, len), false);
            }
        }
    /* a message ending without a line end passes (the connection adds the
     * CRLF before the dot); one ending in a bare CR does not */
    assert_true(smtp_data_crlf_only("Subject: a\r\n\r\nbody", 19));
    assert_false(smtp_data_crlf_only("Subject: a\r\n\r\nbody\r", 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_each_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
