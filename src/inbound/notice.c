/* notice: failed recipients and their diagnostics from the prose of a
 * bounce (see notice.h). */
#include "inbound/notice.h"

#include "util/buf.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOTICE_MAX_LINES 20000
#define NOTICE_BLOCK_MAX 8192

typedef struct line {
    const char *s;
    size_t n;
} line;

typedef struct pos {
    size_t line;
    size_t b, e; /* address span inside the line */
} pos;

static size_t split_lines(const char *text, size_t len, line **out)
{
    size_t cap = 64, n = 0;
    line *v = xmalloc(cap * sizeof *v);
    size_t p = 0;
    while (p < len && n < NOTICE_MAX_LINES) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t ln = nl ? (size_t)(nl - (text + p)) : len - p;
        if (n == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n].s = text + p;
        v[n].n = (ln && text[p + ln - 1] == '\r') ? ln - 1 : ln;
        n++;
        p += ln + (nl ? 1 : 0);
    }
    *out = v;
    return n;
}

/* ci_contains: does s[0..n) contain the lower-case ASCII needle? */
static bool ci_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0 || k > n)
        return k == 0;
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k) {
            unsigned char c = (unsigned char)s[i + j];
            if (c >= 'A' && c <= 'Z')
                c += 32;
            if (c != (unsigned char)needle[j])
                break;
            j++;
        }
        if (j == k)
            return true;
    }
    return false;
}

static bool ci_starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !strncasecmp(s, prefix, k);
}

static bool ci_ends(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !strncasecmp(s + n - k, suffix, k);
}

static void ltrim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
}

static bool is_decoration(char c)
{
    return c == '-' || c == '=' || c == '*' || c == '_' || c == '#' || c == '~';
}

/* A marker line that announces the returned original. */
static bool is_cut_marker(const char *s, size_t n)
{
    ltrim(&s, &n);
    static const char *const prose[] = {
        "message headers follow", "included is a copy of the message header", "below this line is a copy of the message",
        "enclosed is a copy of the message", "original message follows", "the header of the original message",
        "this is a copy of the message", "unsent message follows", "returned message follows",
        "original message header", "headers of your message follow", "header of the message follows",
        "a copy of the original message", "copy of your message",
    };
    for (size_t i = 0; i < sizeof prose / sizeof prose[0]; i++)
        if (ci_contains(s, n, prose[i]))
            return true;
    if (n >= 2 && is_decoration(s[0]) && is_decoration(s[1])) {
        static const char *const deco[] = {
            "original message", "returned message", "copy of the message", "rfc822", "undelivered message",
            "message header", "original mail", "message text",
        };
        for (size_t i = 0; i < sizeof deco / sizeof deco[0]; i++)
            if (ci_contains(s, n, deco[i]))
                return true;
    }
    return false;
}

static bool is_header_line(const char *s, size_t n)
{
    static const char *const h[] = {"received: ", "return-path:", "dkim-signature:", "x-received:", "arc-seal:",
                                    "delivered-to:", "authentication-results:"};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
        if (ci_starts(s, n, h[i]))
            return true;
    return false;
}

size_t notice_cut(const char *text, size_t len)
{
    line *v;
    size_t n = split_lines(text, len, &v);
    size_t cut = len;
    for (size_t i = 0; i < n; i++) {
        if (is_cut_marker(v[i].s, v[i].n) ||
            (i > 0 && is_header_line(v[i].s, v[i].n) && i + 1 < n &&
             (v[i + 1].n == 0 || v[i + 1].s[0] == ' ' || v[i + 1].s[0] == '\t' || memchr(v[i + 1].s, ':', v[i + 1].n)))) {
            cut = (size_t)(v[i].s - text);
            break;
        }
    }
    free(v);
    return cut;
}

static bool local_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
           strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL;
}

static bool domain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c >= 0x80;
}

int notice_addr_at(const char *s, size_t n, size_t at, size_t *b, size_t *e)
{
    if (at >= n || s[at] != '@')
        return 0;
    size_t l = at;
    while (l > 0 && local_char((unsigned char)s[l - 1]) && at - l < 128)
        l--;
    /* A quote or a leading dot is not part of the local part here. */
    while (l < at && (s[l] == '.' || s[l] == '\''))
        l++;
    size_t r = at + 1;
    while (r < n && domain_char((unsigned char)s[r]) && r - at < 256)
        r++;
    while (r > at + 1 && (s[r - 1] == '.' || s[r - 1] == '-'))
        r--;
    if (l == at || r <= at + 1)
        return 0;
    if (!memchr(s + at + 1, '.', r - at - 1) && !(r - at - 1 >= 9 && ci_starts(s + at + 1, r - at - 1, "localhost")))
        return 0;
    *b = l;
    *e = r;
    return 1;
}

static bool is_daemon(const char *a, size_t n)
{
    static const char *const d[] = {"postmaster@", "mailer-daemon@", "mailer_daemon@", "maildaemon@", "mail-daemon@",
                                    "mdaemon@", "post_master@"};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (ci_starts(a, n, d[i]))
            return true;
    return false;
}

static bool excluded(const char *a, size_t n, const char *const *ex, size_t nex)
{
    if (is_daemon(a, n))
        return true;
    for (size_t i = 0; i < nex; i++)
        if (ex[i] && strlen(ex[i]) == n && !strncasecmp(ex[i], a, n))
            return true;
    return false;
}

/* Does the prefix before an address put it in a recipient position? */
static bool recipient_position(const char *ls, size_t ln, size_t b)
{
    const char *p = ls;
    size_t pn = b;
    ltrim(&p, &pn);
    /* Strip what wraps an address: quotes, brackets, spaces. */
    while (pn && strchr(" \t<\"'([", p[pn - 1]))
        pn--;
    static const char *const cue[] = {
        "rcpt to:", "rcpt to", "rcpt:", "recipient:", "recipients:", "recipient address:", "address:", "addresses:",
        "delivered to:", "delivered to", "deliver to:", "deliver to", "delivery to", "mail to", "message to",
        "undeliverable to", "failed:", "addressed to", "original-rcpt-to:", "user", "mailbox", "recipient",
        "failed recipient:", "to the following address:", "destinataire:", "empf\xc3\xa4nger:",
    };
    for (size_t i = 0; i < sizeof cue / sizeof cue[0]; i++)
        if (ci_ends(p, pn, cue[i]) && (pn == strlen(cue[i]) || !local_char((unsigned char)p[pn - strlen(cue[i]) - 1]) ||
                                       cue[i][strlen(cue[i]) - 1] == ':'))
            return true;
    static const char *const label[] = {
        "to:", "from:", "cc:", "bcc:", "sender:", "reply-to:", "return-path:", "envelope-from", "x-", "mail from",
        "message-id", "subject:", "date:", "received:", "for ", "(envelope", "by ", "delivered-to:", "in-reply-to",
        "references:", "from ", "hello", "hi ", "dear", "sent by",
    };
    for (size_t i = 0; i < sizeof label / sizeof label[0]; i++)
        if (ci_starts(p, pn, label[i]))
            return false;
    /* Alone at the start of the line, after bullets or a reply code. */
    size_t i = 0;
    if (pn >= 3 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
        (pn == 3 || p[3] == ' ' || p[3] == '-'))
        i = 3;
    for (; i < pn; i++)
        if (!strchr(" \t>*-#.)]:\xe2\x80\xa2", p[i]) && !(p[i] >= '0' && p[i] <= '9'))
            return false;
    (void)ln;
    return true;
}

static size_t find_positions(const line *v, size_t nl, const char *const *ex, size_t nex, pos **out)
{
    size_t cap = 16, n = 0;
    pos *ps = xmalloc(cap * sizeof *ps);
    for (size_t i = 0; i < nl && n < NOTICE_MAX_RCPT * 8; i++) {
        const char *s = v[i].s;
        size_t ln = v[i].n;
        for (size_t k = 0; k < ln; k++) {
            if (s[k] != '@')
                continue;
            size_t b, e;
            if (!notice_addr_at(s, ln, k, &b, &e))
                continue;
            k = e;
            if (excluded(s + b, e - b, ex, nex) || !recipient_position(s, ln, b))
                continue;
            if (n == cap) {
                cap *= 2;
                ps = xrealloc(ps, cap * sizeof *ps);
            }
            ps[n].line = i;
            ps[n].b = b;
            ps[n].e = e;
            n++;
        }
    }
    *out = ps;
    return n;
}

static bool same_addr(const line *v, const pos *a, const char *addr, size_t alen)
{
    return a->e - a->b == alen && !strncasecmp(v[a->line].s + a->b, addr, alen);
}

/* Does the line go on after the address with words of its own (a reason,
 * a date)? Other addresses and punctuation do not count. */
static bool line_has_reason(const line *l, size_t e)
{
    size_t words = 0;
    for (size_t i = e; i < l->n; i++) {
        unsigned char c = (unsigned char)l->s[i];
        if (c == '<') { /* skip a bracketed address */
            const char *gt = memchr(l->s + i, '>', l->n - i);
            if (!gt)
                break;
            i = (size_t)(gt - l->s);
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
            words++;
    }
    return words >= 5;
}

static bool blank(const line *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->s[i] != ' ' && l->s[i] != '\t')
            return false;
    return true;
}

static void put_line(buf *b, const line *l)
{
    if (buf_append(b, l->s, l->n) == 0)
        (void)buf_putc(b, '\n');
}

/* The block of lines that belongs to the recipient at ps[k]. */
static char *block_at(const line *v, size_t nl, const pos *ps, size_t np, size_t k)
{
    buf b;
    buf_init(&b, NOTICE_BLOCK_MAX);
    const pos *me = &ps[k];
    const char *addr = v[me->line].s + me->b;
    size_t alen = me->e - me->b;
    /* The next line naming a different recipient ends the block. */
    size_t stop = nl;
    for (size_t j = k + 1; j < np; j++)
        if (ps[j].line > me->line && !same_addr(v, &ps[j], addr, alen)) {
            stop = ps[j].line;
            break;
        }
    put_line(&b, &v[me->line]);
    if (line_has_reason(&v[me->line], me->e)) {
        for (size_t i = me->line + 1; i < stop; i++) {
            if (blank(&v[i]) || (v[i].s[0] != ' ' && v[i].s[0] != '\t'))
                break;
            put_line(&b, &v[i]);
        }
    } else {
        for (size_t i = me->line + 1; i < stop; i++)
            put_line(&b, &v[i]);
    }
    char *res = buf_steal(&b);
    buf_free(&b);
    return res;
}

void notice_scan(const char *text, size_t len, const char *const *exclude, size_t nexclude, notice_list *out)
{
    out->v = NULL;
    out->n = 0;
    line *v;
    size_t nl = split_lines(text, len, &v);
    pos *ps;
    size_t np = find_positions(v, nl, exclude, nexclude, &ps);
    for (size_t k = 0; k < np && out->n < NOTICE_MAX_RCPT; k++) {
        const char *a = v[ps[k].line].s + ps[k].b;
        size_t alen = ps[k].e - ps[k].b;
        bool dup = false;
        for (size_t j = 0; j < out->n && !dup; j++)
            dup = strlen(out->v[j].address) == alen && !strncasecmp(out->v[j].address, a, alen);
        if (dup)
            continue;
        out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n].address = xstrndup(a, alen);
        out->v[out->n].diag = block_at(v, nl, ps, np, k);
        out->n++;
    }
    free(ps);
    free(v);
}

char *notice_block_for(const char *text, size_t len, const char *addr)
{
    line *v;
    size_t nl = split_lines(text, len, &v);
    pos *ps;
    size_t np = find_positions(v, nl, NULL, 0, &ps);
    size_t alen = strlen(addr);
    char *res = NULL;
    for (size_t k = 0; k < np && !res; k++)
        if (same_addr(v, &ps[k], addr, alen))
            res = block_at(v, nl, ps, np, k);
    if (!res) {
        buf b;
        buf_init(&b, NOTICE_BLOCK_MAX);
        for (size_t i = 0; i < nl; i++) {
            if (!ci_contains(v[i].s, v[i].n, "@") || alen == 0)
                continue;
            bool hit = false;
            for (size_t j = 0; j + alen <= v[i].n && !hit; j++)
                hit = !strncasecmp(v[i].s + j, addr, alen);
            if (!hit)
                continue;
            for (size_t j = i; j < nl && j <= i + 2; j++)
                put_line(&b, &v[j]);
        }
        if (b.len)
            res = buf_steal(&b);
        buf_free(&b);
    }
    free(ps);
    free(v);
    return res;
}

void notice_list_free(notice_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].address);
        free(l->v[i].diag);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
