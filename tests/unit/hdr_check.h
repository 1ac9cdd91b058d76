/* hdr_check: a strict checker for header fields written by mime/hdr, shared
 * by tests/unit/test_hdr.c and fuzz/fuzz_hdr.c. It is written apart from
 * hdr.c on purpose (its own RFC 2047 decoder), so a bug in the encoder is
 * not mirrored here.
 *
 * hc_unstructured checks one field "Name: value CRLF": CRLF only at the end
 * of lines, every continuation line starting with a blank, no line over
 * max_line octets, no line holding only blanks, every encoded word at most 75
 * characters, in UTF-8, decoding by itself to valid UTF-8 (so no character
 * was split between words); then it decodes the value (blanks between two
 * adjacent encoded words dropped, RFC 2047 6.2) into out. Returns NULL when
 * all holds, else what did not. */
#ifndef TD_TESTS_HDR_CHECK_H
#define TD_TESTS_HDR_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "util/buf.h"
#include "util/utf8.h"

static int hc_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower-case hex is not what the encoder writes */
}

static int hc_b64(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* hc_ew decodes token t[0..n) when it is an encoded word: 1 decoded (into
 * out), 0 not an encoded word, -1 a malformed one. */
static int hc_ew(const char *t, size_t n, buf *out, const char **why)
{
    if (n < 12 || memcmp(t, "=?", 2) || memcmp(t + n - 2, "?=", 2))
        return 0;
    if (n > 75) {
        *why = "an encoded word is longer than 75 characters";
        return -1;
    }
    if (memcmp(t, "=?UTF-8?Q?", 10) && memcmp(t, "=?UTF-8?B?", 10)) {
        *why = "an encoded word is not =?UTF-8?Q? or =?UTF-8?B?";
        return -1;
    }
    bool q = t[8] == 'Q';
    const char *p = t + 10, *end = t + n - 2;
    size_t start = out->len;
    if (q) {
        for (; p < end; p++) {
            if (*p == '_') {
                buf_putc(out, ' ');
            } else if (*p == '=') {
                if (end - p < 3 || hc_hex(p[1]) < 0 || hc_hex(p[2]) < 0) {
                    *why = "a bad =XX in a Q encoded word";
                    return -1;
                }
                buf_putc(out, (char)(hc_hex(p[1]) * 16 + hc_hex(p[2])));
                p += 2;
            } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || strchr("!*+-/", *p)) {
                buf_putc(out, *p);
            } else {
                *why = "a character a Q word in a phrase may not hold";
                return -1;
            }
        }
    } else {
        size_t m = (size_t)(end - p);
        if (m == 0 || m % 4) {
            *why = "a B encoded word whose length is not a multiple of 4";
            return -1;
        }
        for (size_t i = 0; i < m; i += 4) {
            int v[4];
            int pad = 0;
            for (int k = 0; k < 4; k++) {
                char c = p[i + (size_t)k];
                if (c == '=' && i + 4 == m && k >= 2) {
                    v[k] = 0;
                    pad++;
                } else if ((v[k] = hc_b64(c)) < 0 || pad) {
                    *why = "a bad character in a B encoded word";
                    return -1;
                }
            }
            unsigned x = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
            buf_putc(out, (char)(x >> 16));
            if (pad < 2)
                buf_putc(out, (char)(x >> 8 & 255));
            if (pad < 1)
                buf_putc(out, (char)(x & 255));
        }
    }
    if (!utf8_valid(out->data + start, out->len - start, NULL)) {
        *why = "an encoded word does not decode to whole UTF-8 characters";
        return -1;
    }
    return 1;
}

/* hc_lines checks the line structure of field f[0..n) and writes it
 * unfolded (CRLFs removed) into u. */
static const char *hc_lines(const char *f, size_t n, size_t max_line, buf *u)
{
    if (n < 2 || memcmp(f + n - 2, "\r\n", 2))
        return "the field does not end with CRLF";
    size_t ls = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] == '\r' || f[i] == '\n') {
            if (f[i] != '\r' || i + 1 >= n || f[i + 1] != '\n')
                return "a bare CR or LF";
            size_t len = i - ls;
            if (len > max_line)
                return "a line is too long";
            bool blank = true;
            for (size_t k = ls; k < i; k++)
                blank = blank && (f[k] == ' ' || f[k] == '\t');
            if (blank)
                return "a line holds only blanks";
            if (ls > 0 && f[ls] != ' ' && f[ls] != '\t')
                return "a continuation line does not start with a blank";
            if (ls == 0 && (f[0] == ' ' || f[0] == '\t'))
                return "the field starts with a blank";
            buf_append(u, f + ls, len);
            i++;
            ls = i + 1;
        } else if ((unsigned char)f[i] < 0x20 && f[i] != '\t') {
            return "a control character";
        }
    }
    return NULL;
}

static const char *hc_unstructured(const char *f, size_t n, size_t max_line, buf *out)
{
    buf u;
    buf_init(&u, BUF_NOCAP);
    const char *why = hc_lines(f, n, max_line, &u);
    if (why)
        goto done;
    const char *colon = memchr(u.data, ':', u.len);
    if (!colon) {
        why = "no colon";
        goto done;
    }
    const char *p = colon + 1, *end = u.data + u.len;
    if (p < end && *p == ' ') /* the one space the writer puts after ':' */
        p++;
    bool prev_ew = false;
    while (p < end) {
        const char *ws = p;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *tk = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        size_t before = out->len;
        int r = tk < p ? hc_ew(tk, (size_t)(p - tk), out, &why) : 0;
        if (r < 0)
            goto done;
        if (r == 1) {
            if (!prev_ew) { /* keep the blanks before it */
                buf u2;
                buf_init(&u2, BUF_NOCAP);
                buf_append(&u2, out->data + before, out->len - before);
                buf_truncate(out, before);
                buf_append(out, ws, (size_t)(tk - ws));
                buf_append(out, u2.data, u2.len);
                buf_free(&u2);
            }
            prev_ew = true;
        } else {
            bool looks = false;
            for (const char *c = tk; c + 1 < p; c++)
                looks = looks || (c[0] == '=' && c[1] == '?');
            if (looks) {
                why = "plain text that a decoder could take for an encoded word";
                goto done;
            }
            buf_append(out, ws, (size_t)(p - ws));
            prev_ew = false;
        }
    }
done:
    buf_free(&u);
    return why;
}

#endif
