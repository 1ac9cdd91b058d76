/* smtp_reply: incremental reply parser and classifier (see smtp_reply.h). */
#include "smtp/smtp_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void smtp_rparser_init(smtp_rparser *p, size_t max_line, size_t max_lines)
{
    memset(p, 0, sizeof *p);
    p->max_line = max_line ? max_line : SMTP_REPLY_LINE_MAX;
    /* the cap is on the text of a line; its CR is read in before it goes */
    buf_init(&p->line, p->max_line + 1);
    p->max_lines = max_lines ? max_lines : SMTP_REPLY_LINES_MAX;
    /* every line is capped, so the whole reply is too */
    buf_init(&p->lines, (p->max_line + 1) * p->max_lines);
}

void smtp_rparser_free(smtp_rparser *p)
{
    buf_free(&p->line);
    buf_free(&p->lines);
}

void smtp_reply_clear(smtp_reply *r)
{
    free(r->text);
    free(r->lines);
    memset(r, 0, sizeof *r);
}

void smtp_reply_copy(smtp_reply *dst, const smtp_reply *src)
{
    *dst = *src;
    dst->text = xstrdup(src->text);
    dst->lines = xstrdup(src->lines);
}

void smtp_reply_set_local(smtp_reply *r, const char *enh, const char *fmt, ...)
{
    memset(r, 0, sizeof *r);
    if (enh)
        snprintf(r->enh, sizeof r->enh, "%s", enh);
    buf b;
    buf_init(&b, 1024);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    r->text = buf_steal(&b);
    buf_free(&b);
}

int smtp_status_of(int code)
{
    if (code >= 200 && code < 400)
        return SMTP_OK;
    if (code >= 500 && code < 600)
        return SMTP_PERM;
    return SMTP_TEMP;
}

const char *smtp_status_name(int status)
{
    switch (status) {
    case SMTP_OK:
        return "ok";
    case SMTP_TEMP:
        return "temp";
    case SMTP_PERM:
        return "perm";
    case SMTP_UNKNOWN:
        return "unknown";
    }
    return "?";
}

/* length of the enhanced status code at the start of s (class.subject.detail
 * with 1-3 digits each, followed by a space or the end), or 0. */
static size_t enh_len(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 4) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

/* length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t u8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* append s[0..n) to b for people: controls and invalid UTF-8 become '?'. */
static void put_clean(buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] == '\t') {
            buf_putc(b, ' ');
            i++;
            continue;
        }
        if (u[i] < 0x20 || u[i] == 0x7f) {
            buf_putc(b, '?');
            i++;
            continue;
        }
        size_t k = u8_seq(u + i, n - i);
        if (k == 0) {
            buf_putc(b, '?');
            i++;
        } else {
            buf_append(b, s + i, k);
            i += k;
        }
    }
}

/* The reply in p is complete: build *out and reset p. */
static void finish(smtp_rparser *p, smtp_reply *out)
{
    memset(out, 0, sizeof *out);
    out->code = p->code;
    out->nlines = p->nlines;
    out->lines = xstrndup(p->lines.data, p->lines.len);

    const char *first = p->lines.data;
    size_t flen = strcspn(first, "\n");
    size_t el = enh_len(first, flen);
    if (el && el < sizeof out->enh && first[0] == (char)('0' + p->code / 100))
        memcpy(out->enh, first, el);
    else
        el = 0;

    buf t;
    buf_init(&t, BUF_NOCAP);
    const char *s = p->lines.data;
    for (size_t i = 0; i < p->nlines; i++) {
        size_t len = strcspn(s, "\n");
        const char *x = s;
        size_t xl = len;
        /* continuation lines usually repeat the enhanced code: drop it */
        if (el && xl >= el && memcmp(x, out->enh, el) == 0 && (xl == el || x[el] == ' ')) {
            x += el;
            xl -= el;
        }
        while (xl && *x == ' ') {
            x++;
            xl--;
        }
        while (xl && x[xl - 1] == ' ')
            xl--;
        if (xl) {
            if (t.len)
                buf_putc(&t, ' ');
            put_clean(&t, x, xl);
        }
        s += len + (s[len] == '\n');
    }
    out->text = buf_steal(&t);
    buf_free(&t);

    buf_reset(&p->lines);
    p->nlines = 0;
    p->code = 0;
}

/* One line of a reply is in p->line (without its line end). */
static int take_line(smtp_rparser *p, bool *last, td_error *e)
{
    const char *l = p->line.data;
    size_t n = p->line.len;
    if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9')
        return td_err_set(e, TD_EINVAL, "the server sent a line that is not an SMTP reply");
    if (n > 3 && l[3] != ' ' && l[3] != '-')
        return td_err_set(e, TD_EINVAL, "the server sent a line that is not an SMTP reply");
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (p->nlines > 0 && code != p->code)
        return td_err_set(e, TD_EINVAL,
                          "the server changed the reply code inside a reply (%d then %d)", p->code,
                          code);
    if (memchr(l, '\0', n))
        return td_err_set(e, TD_EINVAL, "the server sent a NUL byte in a reply");
    if (p->nlines >= p->max_lines)
        return td_err_set(e, TD_ETOOBIG, "the server sent a reply of more than %zu lines",
                          p->max_lines);
    p->code = code;
    if (p->nlines)
        buf_putc(&p->lines, '\n');
    if (n > 4)
        buf_append(&p->lines, l + 4, n - 4);
    p->nlines++;
    *last = n == 3 || l[3] == ' ';
    buf_reset(&p->line);
    return TD_OK;
}

int smtp_rparser_feed(smtp_rparser *p, const char *data, size_t n, size_t *used, smtp_reply *out,
                      bool *done, td_error *e)
{
    size_t i = 0;
    *done = false;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t chunk = nl ? (size_t)(nl - (data + i)) : n - i;
        if (buf_append(&p->line, data + i, chunk)) {
            *used = i;
            return td_err_set(e, TD_ETOOBIG, "the server sent a reply line longer than %zu bytes",
                              p->max_line);
        }
        i += chunk;
        if (!nl)
            break;
        i++; /* the LF */
        if (p->line.len && p->line.data[p->line.len - 1] == '\r')
            buf_truncate(&p->line, p->line.len - 1);
        if (p->line.len > p->max_line) {
            *used = i;
            return td_err_set(e, TD_ETOOBIG, "the server sent a reply line longer than %zu bytes",
                              p->max_line);
        }
        bool last = false;
        int rc = take_line(p, &last, e);
        if (rc) {
            *used = i;
            return rc;
        }
        if (last) {
            finish(p, out);
            *done = true;
            break;
        }
    }
    *used = i;
    return TD_OK;
}
