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
    if (d == 0)
        return buf_putc(b, '0'); /* -0.0 too: "-0" would read back as integer 0 */
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
    return i == n;
}

bool jsonstr_number(buf *b, const char *s, size_t n)
{
    bool integer;
    if (n > 32 || !is_number_syntax(s, n, &integer))
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
    /* The common case, a plain decimal such as 87.10: what printf's %.15g
     * would write is the text without its trailing fraction zeros, so write
     * that without printf (a CSV import meets one per cell). */
    const char *dot = memchr(tmp, '.', n);
    if (dot && !memchr(tmp, 'e', n) && !memchr(tmp, 'E', n)) {
        size_t end = n;
        while (end > (size_t)(dot - tmp) + 1 && tmp[end - 1] == '0')
            end--;
        size_t ilen = (size_t)(dot - tmp) - (tmp[0] == '-');
        const char *ip = tmp + (tmp[0] == '-');
        size_t flen = end - (size_t)(dot - tmp) - 1, sig, lead = 0;
        if (ilen == 1 && ip[0] == '0') {
            while (lead < flen && dot[1 + lead] == '0')
                lead++;
            sig = flen - lead;
        } else {
            sig = ilen + flen;
        }
        if (sig > 0 && sig <= 15 && ilen <= 15 && lead <= 3) {
            if (flen == 0)
                end--; /* "4." -> "4" */
            return buf_append(b, tmp, end) == 0;
        }
    }
    errno = 0;
    double d = strtod(tmp, NULL);
    if (errno == ERANGE || !isfinite(d))
        return false;
    return real_shortest(b, d) == 0;
}

/* ---- validation without a tree ---- */

struct scan {
    const char *p, *end;
};

static void ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static bool scan_string(struct scan *sc)
{
    if (sc->p >= sc->end || *sc->p != '"')
        return false;
    sc->p++;
    while (sc->p < sc->end) {
        unsigned char c = (unsigned char)*sc->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (sc->p >= sc->end)
                return false;
            char x = *sc->p++;
            if (x == 'u') {
                for (int i = 0; i < 4; i++, sc->p++)
                    if (sc->p >= sc->end || !strchr("0123456789abcdefABCDEF", *sc->p) || !*sc->p)
                        return false;
            } else if (!strchr("\"\\/bfnrt", x) || !x) {
                return false;
            }
        }
    }
    return false;
}

static bool scan_value(struct scan *sc, int depth)
{
    ws(sc);
    if (sc->p >= sc->end || depth > 64)
        return false;
    char c = *sc->p;
    if (c == '"')
        return scan_string(sc);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        sc->p++;
        ws(sc);
        if (sc->p < sc->end && *sc->p == close) {
            sc->p++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                ws(sc);
                if (!scan_string(sc))
                    return false;
                ws(sc);
                if (sc->p >= sc->end || *sc->p++ != ':')
                    return false;
            }
            if (!scan_value(sc, depth + 1))
                return false;
            ws(sc);
            if (sc->p >= sc->end)
                return false;
            if (*sc->p == close) {
                sc->p++;
                return true;
            }
            if (*sc->p++ != ',')
                return false;
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(words[i]);
        if ((size_t)(sc->end - sc->p) >= l && !memcmp(sc->p, words[i], l)) {
            sc->p += l;
            return true;
        }
    }
    const char *start = sc->p;
    while (sc->p < sc->end && strchr("+-.0123456789eE", *sc->p) && *sc->p)
        sc->p++;
    bool integer;
    return sc->p > start && is_number_syntax(start, (size_t)(sc->p - start), &integer);
}

bool jsonstr_is_object(const char *s, size_t n)
{
    struct scan sc = {s, s + n};
    ws(&sc);
    if (sc.p >= sc.end || *sc.p != '{' || !scan_value(&sc, 0))
        return false;
    ws(&sc);
    return sc.p == sc.end;
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
