/* Unit tests for util/jsonstr: canonical numbers and values, the validator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonstr.h"

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: not kept as a number */
    } cases[] = {
        {"0", "0"},         {"-0", "0"},          {"42", "42"},
        {"-7", "-7"},       {"4.1", "4.1"},       {"4.10", "4.1"},
        {"4.0", "4"},       {"1e3", "1000"},      {"1E3", "1000"},
        {"2.5e-3", "0.0025"}, {"0.0001", "0.0001"}, {"0.00001", "1e-05"},
        {"1e20", "1e+20"},  {"123456789012345678", "123456789012345678"},
        {"0.1", "0.1"},     {"87.123456789012345", "87.12345678901235"},
        {"9223372036854775807", "9223372036854775807"},
        {"9223372036854775808", NULL}, {"12345678901234567890", NULL},
        {"1e400", NULL},    {"007", NULL},        {"+1", NULL},
        {"1.", NULL},       {".5", NULL},         {"1e", NULL},
        {"0x10", NULL},     {"", NULL},           {"-", NULL},
        {"12a", NULL},      {" 1", NULL},         {"NaN", NULL},
        {"Infinity", NULL}, {"1234567890.12345678", "1234567890.1234567"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        bool ok = jsonstr_number(&b, cases[i].in, strlen(cases[i].in));
        if (cases[i].out) {
            if (!ok || strcmp(b.data, cases[i].out))
                fail_msg("'%s': got %s, want %s", cases[i].in, ok ? b.data : "(text)",
                         cases[i].out);
        } else if (ok) {
            fail_msg("'%s': got %s, want text", cases[i].in, b.data);
        }
        buf_free(&b);
    }
}

/* The plain-decimal fast path writes what the general path writes: the
 * shortest of %.15g/%.16g/%.17g that reads back, checked here on many
 * random decimals. */
static void test_fast_path_agrees(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 200000; i++) {
        char in[48];
        int ilen = rand() % 16, flen = 1 + rand() % 15;
        size_t n = 0;
        if (rand() % 4 == 0)
            in[n++] = '-';
        if (ilen == 0)
            in[n++] = '0';
        for (int k = 0; k < ilen; k++)
            in[n++] = (char)('0' + (k == 0 ? 1 + rand() % 9 : rand() % 10));
        in[n++] = '.';
        for (int k = 0; k < flen; k++)
            in[n++] = (char)('0' + (rand() % 3 ? rand() % 10 : 0));
        in[n] = 0;
        double d = strtod(in, NULL);
        char want[40] = "0"; /* zero, of either sign, is written 0 */
        for (int prec = 15; d != 0 && prec <= 17; prec++) {
            snprintf(want, sizeof want, "%.*g", prec, d);
            if (strtod(want, NULL) == d)
                break;
        }
        buf b;
        buf_init(&b, BUF_NOCAP);
        assert_true(jsonstr_number(&b, in, n));
        if (strcmp(b.data, want))
            fail_msg("'%s': got %s, want %s", in, b.data, want);
        buf_free(&b);
    }
}

static void test_value(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"b\":[1,2.50,\"x\\u00e9\",null,true,false],\"a\":{\"z\":1,\"y\":-0.0}}",
                           0, NULL);
    assert_non_null(v);
    buf b;
    buf_init(&b, BUF_NOCAP);
    assert_int_equal(jsonstr_value(&b, v), 0);
    assert_string_equal(b.data, "{\"a\":{\"y\":0,\"z\":1},\"b\":[1,2.5,\"x\xc3\xa9\",null,true,false]}");
    buf_free(&b);
    json_decref(v);
}

static void test_is_object(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"{}", true},
        {" { } ", true},
        {"{\"a\":1}", true},
        {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\n\"}", true},
        {"{\"a\":-1.5e+3}", true},
        {"[]", false},
        {"1", false},
        {"\"s\"", false},
        {"", false},
        {"{", false},
        {"{\"a\"}", false},
        {"{\"a\":}", false},
        {"{\"a\":1,}", false},
        {"{a:1}", false},
        {"{\"a\":01}", false},
        {"{\"a\":\"\x01\"}", false},
        {"{\"a\":\"\\x\"}", false},
        {"{\"a\":\"\\u12\"}", false},
        {"{} {}", false},
        {"{\"a\":tru}", false},
        {"{\"a\":NaN}", false},
        {"{\"a\":'x'}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (jsonstr_is_object(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("'%s': want %s", cases[i].s, cases[i].ok ? "valid" : "refused");
    /* nesting is capped, not a stack overflow */
    char deep[2000];
    memset(deep, '[', sizeof deep);
    deep[0] = '{';
    assert_false(jsonstr_is_object(deep, sizeof deep));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_fast_path_agrees),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_is_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
