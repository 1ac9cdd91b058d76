/* Unit tests for util/buf and util/utf8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/utf8.h"

static void test_append_and_cap(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "hello"), TD_OK);
    assert_int_equal(buf_printf(&b, "%d", 1234), TD_OK);
    assert_string_equal(b.data, "hello1234");
    assert_int_equal(buf_puts(&b, "xy"), TD_ETOOBIG);
    assert_string_equal(b.data, "hello1234"); /* unchanged on failure */
    assert_int_equal(buf_putc(&b, '!'), TD_OK);
    assert_int_equal(buf_putc(&b, '!'), TD_ETOOBIG);
    assert_int_equal(b.len, 10);
    char *s = buf_steal(&b);
    assert_string_equal(s, "hello1234!");
    free(s);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_growth(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, BUF_NOCAP);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_putc(&b, (char)('a' + i % 26)), TD_OK);
    assert_int_equal(b.len, 100000);
    assert_int_equal(b.data[26], 'a');
    buf_truncate(&b, 3);
    assert_string_equal(b.data, "abc");
    buf_free(&b);
}

/* In-place writing: room past the contents, counted once written; no room
 * past the cap, and the buffer is left as it was. */
static void test_room(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 16);
    assert_int_equal(buf_puts(&b, "ab"), TD_OK);
    char *p = buf_room(&b, 10);
    assert_non_null(p);
    assert_ptr_equal(p, b.data + 2);
    memcpy(p, "cdef", 4);
    buf_added(&b, 4);
    assert_string_equal(b.data, "abcdef");
    assert_null(buf_room(&b, 11));
    assert_string_equal(b.data, "abcdef");
    assert_non_null(buf_room(&b, 10));
    buf_added(&b, 0);
    assert_int_equal(b.len, 6);
    buf_free(&b);
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int valid;
    } cases[] = {
        {"plain", 1},
        {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", 1}, /* Arabic */
        {"\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1", 1},     /* Thai */
        {"\xc0\xaf", 0},                                 /* overlong */
        {"\xed\xa0\x80", 0},                             /* surrogate */
        {"abc\xff", 0},
        {"\xe0\xb8", 0}, /* truncated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t off = 99;
        assert_int_equal(utf8_valid(cases[i].s, strlen(cases[i].s), &off), cases[i].valid);
    }
    size_t off = 0;
    assert_false(utf8_valid("abc\xff", 4, &off));
    assert_int_equal(off, 3);
    assert_true(utf8_has_ctl("a\nb", 3));
    assert_false(utf8_has_ctl("a\tb", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
