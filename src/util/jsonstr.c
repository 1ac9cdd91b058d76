/* jsonstr: JSON string escaping (see jsonstr.h). */
#include "util/jsonstr.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/xalloc.h"

int jsonstr_append(buf *b, const char *s, size_t n)
{
    int rc = buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc)
            break;
        switch (c) {
        case '"': rc = buf_append(b, "\\\"", 2); break;
        case '\\': rc = buf_append(b, "\\\\", 2); break;
        case '\n': rc = buf_append(b, "\\n", 2); break;
        case '\r': rc = buf_append(b, "\\r", 2); break;
        case '\t': rc = buf_append(b, "\\t", 2); break;
        case '\b': rc = buf_append(b, "\\b", 2); break;
        case '\f': rc = buf_append(b, "\\f", 2); break;
        default: rc = buf_printf(b, "\\u%04X", c); break;
        }
    }
    if (!rc)
        rc = buf_append(b, s + run, n - run);
    if (!rc)
        rc = buf_putc(b, '"');
    return rc;
}

/* real_shortest writes d with the fewest significant digits (15 to 17)
 * that read back to exactly d. */
static int real_shortest(buf *b, double d)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* %g may write "4" for 4.0: still a valid JSON number, and the same
     * value, so "4.0" and "4" are one attribute value. */
    return buf_puts(b, tmp);
}

static bool is_number_syntax(const char *s, size_t n, bool *integer)
{
    size_t i = 0;
    *integer = true;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        *integer = false;
        size_t k = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integer = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t k = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    return i == n && n <= 32;
}

bool jsonstr_number(buf *b, const char *s, size_t n)
{
    bool integer;
    if (!is_number_syntax(s, n, &integer))
        return false;
    char tmp[40];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (integer) {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return false;
        snprintf(tmp, sizeof tmp, "%lld", v);
        return buf_puts(b, tmp) == 0;
    }
    errno = 0;
    double d = strtod(tmp, NULL);
    if (errno == ERANGE || !isfinite(d))
        return false;
    return real_shortest(b, d) == 0;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int jsonstr_value(buf *b, struct json_t *v)
{
    char tmp[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = xmalloc((n ? n : 1) * sizeof *keys);
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, key_cmp);
        int rc = buf_putc(b, '{');
        for (i = 0; !rc && i < n; i++) {
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = jsonstr_append(b, keys[i], strlen(keys[i]));
            if (!rc)
                rc = buf_putc(b, ':');
            if (!rc)
                rc = jsonstr_value(b, json_object_get(v, keys[i]));
        }
        free(keys);
        return rc ? rc : buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        int rc = buf_putc(b, '[');
        for (size_t i = 0; !rc && i < json_array_size(v); i++) {
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = jsonstr_value(b, json_array_get(v, i));
        }
        return rc ? rc : buf_putc(b, ']');
    }
    case JSON_STRING:
        return jsonstr_append(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf_puts(b, tmp);
    case JSON_REAL:
        return real_shortest(b, json_real_value(v));
    case JSON_TRUE:
        return buf_puts(b, "true");
    case JSON_FALSE:
        return buf_puts(b, "false");
    case JSON_NULL:
        return buf_puts(b, "null");
    }
    return buf_puts(b, "null");
}
