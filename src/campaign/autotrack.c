/* autotrack: tracking links and the open pixel in HTML templates (see
 * autotrack.h). A small scanner, not an HTML parser: it needs only to know
 * when it is inside a tag, inside a quoted attribute value, in a comment,
 * or in a mustache tag, and that much survives the malformed HTML
 * newsletters are made of. */
#include "campaign/autotrack.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/xalloc.h"

static const char pixel[] = "<img src=\"{{open_url}}\" width=\"1\" height=\"1\" alt=\"\" "
                            "style=\"display:block;border:0;width:1px;height:1px\">";

/* value_trackable: v[0..n) starts with http:// or https:// and has no
 * white space outside mustache tags (context.c refuses such a URL). */
static bool value_trackable(const char *v, size_t n)
{
    if (!((n > 7 && !strncasecmp(v, "http://", 7)) || (n > 8 && !strncasecmp(v, "https://", 8))))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '{' && i + 1 < n && v[i + 1] == '{') {
            const char *end = strstr(v + i, "}}");
            if (!end || (size_t)(end - v) >= n)
                return false;
            i = (size_t)(end - v) + 1;
            continue;
        }
        if ((unsigned char)v[i] <= 0x20)
            return false;
    }
    return true;
}

/* rewrite_clicks copies src to out, wrapping trackable href values. */
static void rewrite_clicks(const char *src, buf *out)
{
    size_t n = strlen(src), i = 0, copied = 0;
    bool in_tag = false;
    while (i < n) {
        if (src[i] == '{' && src[i + 1] == '{') { /* a mustache tag: skip it whole */
            const char *end = strstr(src + i + 2, "}}");
            i = end ? (size_t)(end - src) + 2 : n;
            continue;
        }
        if (!in_tag) {
            if (!strncmp(src + i, "<!--", 4)) {
                const char *end = strstr(src + i + 4, "-->");
                i = end ? (size_t)(end - src) + 3 : n;
            } else if (src[i] == '<' && isalpha((unsigned char)src[i + 1])) {
                in_tag = true;
                i++;
            } else {
                i++;
            }
            continue;
        }
        if (src[i] == '>') {
            in_tag = false;
            i++;
            continue;
        }
        if (src[i] == '"' || src[i] == '\'') { /* a value of another attribute */
            const char *end = strchr(src + i + 1, src[i]);
            i = end ? (size_t)(end - src) + 1 : n;
            continue;
        }
        /* An attribute called href, after white space. */
        if (!(isspace((unsigned char)src[i - 1]) && !strncasecmp(src + i, "href", 4))) {
            i++;
            continue;
        }
        size_t j = i + 4;
        while (isspace((unsigned char)src[j]))
            j++;
        if (src[j] != '=') {
            i = j;
            continue;
        }
        j++;
        while (isspace((unsigned char)src[j]))
            j++;
        char q = src[j] == '"' || src[j] == '\'' ? src[j] : 0;
        size_t vs = q ? j + 1 : j, ve = vs;
        if (q) {
            const char *end = strchr(src + vs, q);
            ve = end ? (size_t)(end - src) : n;
        } else {
            while (ve < n && !isspace((unsigned char)src[ve]) && src[ve] != '>')
                ve++;
        }
        /* Spaces inside the quotes are layout: wrap what is between them. */
        size_t a = vs, b = ve;
        while (a < b && isspace((unsigned char)src[a]))
            a++;
        while (b > a && isspace((unsigned char)src[b - 1]))
            b--;
        if (value_trackable(src + a, b - a)) {
            buf_append(out, src + copied, a - copied);
            buf_puts(out, "{{#track}}");
            buf_append(out, src + a, b - a);
            buf_puts(out, "{{/track}}");
            copied = b;
        }
        i = ve < n && q ? ve + 1 : ve;
    }
    buf_append(out, src + copied, n - copied);
}

/* last_ci finds the last case-insensitive occurrence of needle in s. */
static const char *last_ci(const char *s, const char *needle)
{
    size_t nl = strlen(needle);
    const char *found = NULL;
    for (const char *p = s; *p; p++)
        if (!strncasecmp(p, needle, nl))
            found = p;
    return found;
}

char *autotrack_html(const char *src, bool opens, bool clicks)
{
    /* Changed delimiters: the scanner could not see the tags. */
    if (strstr(src, "{{="))
        return xstrdup(src);
    buf out;
    buf_init(&out, BUF_NOCAP);
    if (clicks)
        rewrite_clicks(src, &out);
    else
        buf_puts(&out, src);
    if (opens && !strstr(out.data, "{{open_url}}") && !strstr(out.data, "{{{open_url}}}") &&
        !strstr(out.data, "{{& open_url}}")) {
        const char *body_end = last_ci(out.data, "</body");
        if (body_end) {
            size_t at = (size_t)(body_end - out.data);
            char *tail = xstrdup(body_end);
            buf_truncate(&out, at);
            buf_puts(&out, pixel);
            buf_puts(&out, tail);
            free(tail);
        } else {
            buf_puts(&out, pixel);
        }
    }
    char *r = buf_steal(&out);
    buf_free(&out);
    return r;
}
