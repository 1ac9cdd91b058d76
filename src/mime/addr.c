/* addr: email address validation and normalisation (see addr.h and
 * docs/internals/addr.md for the contract). */
#include "mime/addr.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unictype.h>
#include <unistr.h>

#include "util/buf.h"
#include "util/utf8.h"
#include "util/xalloc.h"

/* Bound on the trimmed input before any work is done. Generous on purpose: a
 * U-label domain can take more octets than its A-label form (three or four
 * per letter against one or two), so an address that fits ADDR_MAX once
 * converted may be far longer as typed. */
#define ADDR_INPUT_MAX 2048
/* Bound on a whole mailbox (name and address) for addr_parse_mailbox. */
#define ADDR_MAILBOX_MAX 4096

#define ASCII_LOWER(c) ((c) >= 'A' && (c) <= 'Z' ? (char)((c) - 'A' + 'a') : (c))

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-';
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* quote_msg copies at most about 60 bytes of s[0..n) into out for use inside
 * an error message, cut on a character boundary and marked with "..." when
 * cut. The text was checked for control characters and UTF-8 before any
 * message quotes it, so it is safe to show. */
static const char *quote_msg(char out[72], const char *s, size_t n)
{
    size_t k = n;
    if (k > 60) {
        k = 60;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
    }
    memcpy(out, s, k);
    if (k < n)
        memcpy(out + k, "...", 4);
    else
        out[k] = '\0';
    return out;
}

/* A code point that changes the direction of text or is invisible: allowed by
 * UTF-8 but used to make one address look like another in a list. */
static bool is_invisible_control(ucs4_t u)
{
    return u == 0x061C || u == 0x200E || u == 0x200F || (u >= 0x202A && u <= 0x202E) ||
           (u >= 0x2066 && u <= 0x2069) || u == 0xFEFF;
}

/* check_text refuses control characters (C0, DEL, C1; TAB too unless
 * tab_ok), invalid UTF-8 and invisible direction controls in s[0..n); base is
 * the offset of s in what the caller was given, so positions in messages
 * match the input. */
static int check_text(const char *s, size_t n, size_t base, bool tab_ok, td_error *e)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(c == '\t' && tab_ok)) || c == 0x7f)
            return td_err_set(e, TD_EINVAL,
                              "control characters (line breaks, NUL) are not allowed in an "
                              "address");
    }
    size_t bad = 0;
    if (!utf8_valid(s, n, &bad))
        return td_err_set(e, TD_EINVAL, "invalid UTF-8 at byte %zu", base + bad + 1);
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        ucs4_t u;
        int k = u8_mbtouc(&u, (const uint8_t *)s + i, n - i);
        if (u >= 0x80 && u <= 0x9f)
            return td_err_set(e, TD_EINVAL,
                              "control characters (line breaks, NUL) are not allowed in an "
                              "address");
        if (is_invisible_control(u))
            return td_err_set(e, TD_EINVAL,
                              "invisible text-direction characters are not allowed in an "
                              "address");
        i += (size_t)(k > 0 ? k : 1);
    }
    return TD_OK;
}

/* decode returns the code point at s[i] (valid UTF-8 checked already) and
 * its length in *k. */
static ucs4_t decode(const char *s, size_t n, size_t i, size_t *k)
{
    ucs4_t u;
    int r = u8_mbtouc(&u, (const uint8_t *)s + i, n - i);
    *k = (size_t)(r > 0 ? r : 1);
    return u;
}

/* scan_quoted checks the quoted local part at the start of p and sets *at to
 * the index of the '@' that follows it. RFC 5321 qtextSMTP and
 * quoted-pairSMTP, widened by RFC 6531 to UTF-8 in qtext. */
static int scan_quoted(const char *p, size_t n, size_t *at, td_error *e)
{
    size_t i = 1;
    while (i < n && p[i] != '"') {
        if (p[i] == '\\') {
            if (i + 1 >= n)
                break;
            unsigned char d = (unsigned char)p[i + 1];
            if (d < 0x20 || d > 0x7e)
                return td_err_set(e, TD_EINVAL,
                                  "a backslash in a quoted local part must be followed by a "
                                  "printable ASCII character");
            i += 2;
            continue;
        }
        i++;
    }
    if (i >= n)
        return td_err_set(e, TD_EINVAL, "the quoted local part has no closing double quote");
    if (i == 1)
        return td_err_set(e, TD_EINVAL, "the local part is empty");
    if (i + 1 >= n)
        return td_err_set(e, TD_EINVAL, "the address has no '@' after the quoted local part");
    if (p[i + 1] != '@')
        return td_err_set(e, TD_EINVAL,
                          "the closing double quote of the local part must be followed by '@'");
    *at = i + 1;
    return TD_OK;
}

/* scan_dot_atom checks the unquoted local part p[0..at). */
static int scan_dot_atom(const char *p, size_t at, td_error *e)
{
    for (size_t i = 0; i < at;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '.') {
            if (i == 0)
                return td_err_set(e, TD_EINVAL, "the local part starts with a dot");
            if (i == at - 1)
                return td_err_set(e, TD_EINVAL, "the local part ends with a dot");
            if (p[i - 1] == '.')
                return td_err_set(e, TD_EINVAL, "the local part has two dots in a row");
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k;
            ucs4_t u = decode(p, at, i, &k);
            if (uc_is_property_white_space(u))
                return td_err_set(e, TD_EINVAL,
                                  "the local part has a space in it; spaces are only allowed "
                                  "inside a quoted local part");
            i += k;
            continue;
        }
        if (is_atext(c)) {
            i++;
            continue;
        }
        if (is_wsp((char)c))
            return td_err_set(e, TD_EINVAL,
                              "the local part has a space in it; spaces are only allowed "
                              "inside a quoted local part");
        if (c == '"')
            return td_err_set(e, TD_EINVAL,
                              "the local part has a double quote in the middle; quote the "
                              "whole local part or none of it");
        return td_err_set(e, TD_EINVAL,
                          "the local part has the character '%c', which is only allowed "
                          "inside a quoted local part",
                          c);
    }
    return TD_OK;
}

/* parse_literal handles an address literal `[IPv4]` or `[IPv6:...]` (RFC
 * 5321 section 4.1.3) and returns its canonical text (inet_ntop form). */
static int parse_literal(const char *d, size_t n, char **a_out, td_error *e)
{
    char q[72];
    if (n < 2 || d[n - 1] != ']')
        return td_err_set(e, TD_EINVAL, "the address literal '%s' has no closing ']'",
                          quote_msg(q, d, n));
    const char *in = d + 1;
    size_t inl = n - 2;
    bool v6 = inl >= 5 && strncasecmp(in, "IPv6:", 5) == 0;
    if (v6) {
        in += 5;
        inl -= 5;
    } else if (memchr(in, ':', inl)) {
        return td_err_set(e, TD_EINVAL,
                          "the address literal '%s' is not supported: only [IPv4] and "
                          "[IPv6:...] are",
                          quote_msg(q, d, n));
    }
    char tmp[INET6_ADDRSTRLEN + 8], txt[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    int af = v6 ? AF_INET6 : AF_INET;
    bool ok = inl < sizeof tmp;
    if (ok) {
        memcpy(tmp, in, inl);
        tmp[inl] = '\0';
        ok = inet_pton(af, tmp, bin) == 1;
    }
    if (!ok)
        return td_err_set(e, TD_EINVAL, "'%s' is not a valid %s address literal",
                          quote_msg(q, d, n), v6 ? "IPv6" : "IPv4");
    if (!inet_ntop(af, bin, txt, sizeof txt))
        return td_err_set(e, TD_EINTERNAL, "inet_ntop failed on a parsed address");
    *a_out = xasprintf(v6 ? "[IPv6:%s]" : "[%s]", txt);
    return TD_OK;
}

/* The characters that UTS #46 transitional and nontransitional processing
 * map differently: ß, ẞ, ς, ZWNJ, ZWJ. With any of them the two modes name
 * different domains, so there is no falling back from one to the other. */
static bool has_deviation(const char *u)
{
    static const char *const dev[] = {"\xc3\x9f", "\xe1\xba\x9e", "\xcf\x82",
                                      "\xe2\x80\x8c", "\xe2\x80\x8d"};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (strstr(u, dev[i]))
            return true;
    return false;
}

static int idn_error(int rc, bool alabel, const char *dq, td_error *e)
{
    if (alabel)
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has an 'xn--' label that is not a valid "
                          "internationalised label",
                          dq);
    switch (rc) {
    case IDN2_INVALID_NONTRANSITIONAL:
    case IDN2_DISALLOWED:
    case IDN2_UNASSIGNED:
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has a character that is not allowed in domain names",
                          dq);
    case IDN2_CONTEXTJ:
    case IDN2_CONTEXTJ_NO_RULE:
    case IDN2_CONTEXTO:
    case IDN2_CONTEXTO_NO_RULE:
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has a joiner or punctuation character in a place "
                          "where it is not allowed",
                          dq);
    case IDN2_BIDI:
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' mixes right-to-left and left-to-right text in a "
                          "way domain names do not allow",
                          dq);
    case IDN2_LEADING_COMBINING:
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has a label that starts with a combining mark", dq);
    case IDN2_HYPHEN_STARTEND:
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has a label that starts or ends with a hyphen", dq);
    case IDN2_TOO_BIG_LABEL:
        return td_err_set(e, TD_EINVAL, "the domain '%s' has a label longer than 63 characters",
                          dq);
    case IDN2_TOO_BIG_DOMAIN:
        return td_err_set(e, TD_EINVAL, "the domain is longer than 255 characters");
    }
    return td_err_set(e, TD_EINVAL, "the domain '%s' is not a valid internationalised name (%s)",
                      dq, idn2_strerror(rc));
}

/* The UTS #46 processing flags: IDNA2008 with nontransitional mapping, and
 * the transitional (IDNA2003-compatible) fallback. */
#define IDN_NONTRANS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)
#define IDN_TRANS (IDN2_NFC_INPUT | IDN2_TRANSITIONAL)

/* idn_core converts the Unicode label u to its A-label form in *out (freed
 * with idn2_free; it may hold dots, as UTS #46 maps some characters to
 * them) and returns an idn2 code: nontransitional processing, or the
 * transitional fallback when that refuses a character and u holds no
 * deviation character. */
static int idn_core(const char *u, uint8_t **out)
{
    *out = NULL;
    int rc = idn2_lookup_u8((const uint8_t *)u, out, IDN_NONTRANS);
    if (rc == IDN2_DISALLOWED && !has_deviation(u)) {
        idn2_free(*out);
        *out = NULL;
        rc = idn2_lookup_u8((const uint8_t *)u, out, IDN_TRANS) == IDN2_OK ? IDN2_OK
                                                                         : IDN2_DISALLOWED;
    }
    if (rc != IDN2_OK) {
        idn2_free(*out);
        *out = NULL;
    }
    return rc;
}

/* idn_ascii checks the ASCII "xn--" label and returns an idn2 code. An
 * A-label is valid when what it decodes to converts back to it (RFC 5891
 * section 5.4): libidn2's lookup of an A-label alone is laxer than that
 * (xn--nnk passes, though the U+322E it encodes is refused). */
static int idn_ascii(const char *label)
{
    char *dec = NULL;
    uint8_t *out = NULL;
    int rc = idn2_to_unicode_8z8z(label, &dec, 0);
    if (rc == IDN2_OK)
        rc = idn_core(dec, &out);
    if (rc == IDN2_OK && strcasecmp((const char *)out, label) != 0)
        rc = IDN2_INVALID_ALABEL;
    idn2_free(dec);
    idn2_free(out);
    return rc;
}

/* idn_unicode converts the non-ASCII label like idn_core, and refuses a
 * result that is not its own normal form: each "xn--" label in it must be
 * accepted as itself when it comes back as an A-label, so that the
 * normalised address parses to itself. */
static int idn_unicode(const char *label, uint8_t **out)
{
    int rc = idn_core(label, out);
    for (const char *p = rc == IDN2_OK ? (const char *)*out : ""; *p;) {
        size_t k = strcspn(p, ".");
        char *piece = xstrndup(p, k);
        if (k >= 4 && strncasecmp(piece, "xn--", 4) == 0 && idn_ascii(piece) != IDN2_OK)
            rc = IDN2_DISALLOWED;
        free(piece);
        p += k + (p[k] == '.');
    }
    if (rc != IDN2_OK) {
        idn2_free(*out);
        *out = NULL;
    }
    return rc;
}

/* idn_label converts one label that is non-ASCII or starts with "xn--" to
 * its A-label (*a) and U-label (*u), both the caller's. IDNA2008 with UTS #46
 * nontransitional mapping first; when that refuses a character, the
 * transitional (IDNA2003-compatible) result is taken, as curl and wget do,
 * but only when the two modes cannot disagree on which domain is meant (no
 * deviation character) and the result is its own normal form. */
static int idn_label(const char *label, const char *dq, char **a, char **u, td_error *e)
{
    uint8_t *out = NULL;
    bool ascii = utf8_is_ascii(label, strlen(label));
    int rc;
    if (ascii) {
        rc = idn_ascii(label);
        if (rc == IDN2_OK) {
            out = (uint8_t *)xstrdup(label);
            for (uint8_t *p = out; *p; p++)
                *p = (uint8_t)ASCII_LOWER(*p);
        }
    } else {
        rc = idn_unicode(label, &out);
    }
    if (rc != IDN2_OK)
        return idn_error(rc, ascii, dq, e);
    char *ul = NULL;
    if (idn2_to_unicode_8z8z((const char *)out, &ul, 0) != IDN2_OK)
        ul = NULL;
    *a = xstrdup((const char *)out);
    *u = xstrdup(ul ? ul : (const char *)out);
    if (ascii)
        free(out);
    else
        idn2_free(out);
    idn2_free(ul);
    return TD_OK;
}

/* check_alabels is the last word on a domain in its A-label form: labels of
 * 1..63 LDH characters, no hyphen at either end, at least two labels, a
 * top-level label that is not all digits, 255 octets at most. */
static int check_alabels(const char *a, const char *dq, td_error *e)
{
    size_t n = strlen(a), labels = 0, start = 0;
    if (n > ADDR_DOMAIN_MAX)
        return td_err_set(e, TD_EINVAL, "the domain is longer than 255 characters");
    bool all_digits = true;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && a[i] != '.') {
            if (!is_ldh((unsigned char)a[i]))
                return td_err_set(e, TD_EINVAL,
                                  "the domain '%s' has a label with a character other than "
                                  "letters, digits and hyphens",
                                  dq);
            if (a[i] < '0' || a[i] > '9')
                all_digits = false;
            continue;
        }
        size_t len = i - start;
        if (len == 0)
            return td_err_set(e, TD_EINVAL, "the domain '%s' has an empty label", dq);
        if (len > ADDR_LABEL_MAX)
            return td_err_set(e, TD_EINVAL,
                              "the domain '%s' has a label longer than 63 characters", dq);
        if (a[start] == '-' || a[i - 1] == '-')
            return td_err_set(e, TD_EINVAL,
                              "the domain '%s' has a label that starts or ends with a hyphen",
                              dq);
        labels++;
        if (i < n)
            all_digits = true;
        start = i + 1;
    }
    if (labels < 2)
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' has no dot; a full domain such as example.com is "
                          "needed",
                          dq);
    if (all_digits)
        return td_err_set(e, TD_EINVAL,
                          "the domain '%s' ends in a number; an IP address must be written in "
                          "brackets, like [192.0.2.1]",
                          dq);
    return TD_OK;
}

/* map_dots returns a copy of d[0..*n) with the full stops UTS #46 treats as
 * label separators (U+3002, U+FF0E, U+FF61) made '.', and sets *n to its
 * length. Done first, so that every later step sees the real labels. */
static char *map_dots(const char *d, size_t *n)
{
    char *m = xmalloc(*n + 1);
    size_t j = 0;
    for (size_t i = 0; i < *n;) {
        if (*n - i >= 3 && (memcmp(d + i, "\xe3\x80\x82", 3) == 0 ||
                            memcmp(d + i, "\xef\xbc\x8e", 3) == 0 ||
                            memcmp(d + i, "\xef\xbd\xa1", 3) == 0)) {
            m[j++] = '.';
            i += 3;
        } else {
            m[j++] = d[i++];
        }
    }
    m[j] = '\0';
    *n = j;
    return m;
}

/* parse_name validates the domain name d[0..n) (dots mapped) and returns its
 * A-label form and its U-label form (both the caller's). */
static int parse_name(const char *d, size_t n, char **a_out, char **u_out, td_error *e)
{
    char dq[72];
    quote_msg(dq, d, n);
    if (d[0] == '.')
        return td_err_set(e, TD_EINVAL, "the domain '%s' starts with a dot", dq);
    if (d[n - 1] == '.')
        return td_err_set(e, TD_EINVAL, "the domain '%s' ends with a dot", dq);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.' && d[i + 1] == '.')
            return td_err_set(e, TD_EINVAL, "the domain '%s' has two dots in a row", dq);
        if (c >= 0x80) {
            size_t k;
            if (uc_is_property_white_space(decode(d, n, i, &k)))
                return td_err_set(e, TD_EINVAL, "the domain '%s' has a space in it", dq);
            i += k;
            continue;
        }
        if (is_wsp((char)c))
            return td_err_set(e, TD_EINVAL, "the domain '%s' has a space in it", dq);
        if (c != '.' && !is_ldh(c))
            return td_err_set(e, TD_EINVAL,
                              "the domain '%s' has a label with a character other than "
                              "letters, digits and hyphens",
                              dq);
        i++;
    }

    /* Label by label, so that a plain LDH label is never put through IDNA:
     * IDNA2008 refuses "--" in the third and fourth places, which real host
     * names such as r1---sn-abc.googlevideo.com have. */
    buf a, u;
    buf_init(&a, ADDR_INPUT_MAX * 4);
    buf_init(&u, ADDR_INPUT_MAX * 4);
    int rc = TD_OK;
    for (size_t start = 0; start < n && rc == TD_OK;) {
        const char *dot = memchr(d + start, '.', n - start);
        size_t end = dot ? (size_t)(dot - d) : n;
        const char *l = d + start;
        size_t ln = end - start;
        if (start > 0) {
            buf_putc(&a, '.');
            buf_putc(&u, '.');
        }
        if (utf8_is_ascii(l, ln) && !(ln >= 4 && strncasecmp(l, "xn--", 4) == 0)) {
            if (ln > ADDR_LABEL_MAX)
                rc = td_err_set(e, TD_EINVAL,
                                "the domain '%s' has a label longer than 63 characters", dq);
            else if (l[0] == '-' || l[ln - 1] == '-')
                rc = td_err_set(e, TD_EINVAL,
                                "the domain '%s' has a label that starts or ends with a hyphen",
                                dq);
            for (size_t i = 0; i < ln && rc == TD_OK; i++) {
                char c = ASCII_LOWER(l[i]);
                if (buf_putc(&a, c) || buf_putc(&u, c))
                    rc = td_err_set(e, TD_EINVAL, "the domain is longer than 255 characters");
            }
        } else {
            char *lab = xstrndup(l, ln), *al = NULL, *ul = NULL;
            rc = idn_label(lab, dq, &al, &ul, e);
            if (rc == TD_OK && (buf_puts(&a, al) || buf_puts(&u, ul)))
                rc = td_err_set(e, TD_EINVAL, "the domain is longer than 255 characters");
            free(lab);
            free(al);
            free(ul);
        }
        start = end + 1;
    }
    if (rc == TD_OK)
        rc = check_alabels(a.data, dq, e);
    if (rc != TD_OK) {
        buf_free(&a);
        buf_free(&u);
        return rc;
    }
    *a_out = buf_steal(&a);
    *u_out = buf_steal(&u);
    buf_free(&a);
    buf_free(&u);
    return TD_OK;
}

/* parse_domain validates the domain d[0..n), a name or an address literal,
 * and returns its A-label form and its U-label form (both the caller's). */
/* A small per-thread cache of domain names already converted: libidn2 costs
 * some 80,000 instructions per internationalised name (ten times the rest of
 * a row's import), and a list holds the same few domains over and over.
 * Direct-mapped on a hash of the input; only successes are kept, and only
 * names that fit an entry. */
#define DOMAIN_CACHE 64
#define DOMAIN_CACHE_LEN 128
struct domain_entry {
    char in[DOMAIN_CACHE_LEN], a[DOMAIN_CACHE_LEN], u[DOMAIN_CACHE_LEN * 2];
    unsigned char in_len;
};
static _Thread_local struct domain_entry domain_cache[DOMAIN_CACHE];

static struct domain_entry *domain_slot(const char *d, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)d[i]) * 16777619u;
    return &domain_cache[h % DOMAIN_CACHE];
}

static int parse_domain_uncached(const char *d, size_t n, char **a_out, char **u_out,
                                 td_error *e);

static int parse_domain(const char *d, size_t n, char **a_out, char **u_out, td_error *e)
{
    if (n == 0 || n >= DOMAIN_CACHE_LEN)
        return parse_domain_uncached(d, n, a_out, u_out, e);
    struct domain_entry *c = domain_slot(d, n);
    if (c->in_len == n && !memcmp(c->in, d, n)) {
        *a_out = xstrdup(c->a);
        *u_out = xstrdup(c->u);
        return TD_OK;
    }
    int rc = parse_domain_uncached(d, n, a_out, u_out, e);
    if (rc == TD_OK && strlen(*a_out) < sizeof c->a && strlen(*u_out) < sizeof c->u) {
        memcpy(c->in, d, n);
        c->in_len = (unsigned char)n;
        strcpy(c->a, *a_out);
        strcpy(c->u, *u_out);
    }
    return rc;
}

static int parse_domain_uncached(const char *d, size_t n, char **a_out, char **u_out,
                                 td_error *e)
{
    if (d[0] == '[') {
        int rc = parse_literal(d, n, a_out, e);
        if (rc == TD_OK)
            *u_out = xstrdup(*a_out);
        return rc;
    }
    char *dm = map_dots(d, &n);
    int rc = parse_name(dm, n, a_out, u_out, e);
    free(dm);
    return rc;
}

/* parse_trimmed does addr_parse on p[0..n), already trimmed and non-empty,
 * at offset base in the caller's input. */
static int parse_trimmed(const char *p, size_t n, size_t base, addr *out, td_error *e)
{
    if (n > ADDR_INPUT_MAX)
        return td_err_set(e, TD_EINVAL, "the address is longer than %d characters", ADDR_MAX);
    int rc = check_text(p, n, base, false, e);
    if (rc)
        return rc;

    size_t at = 0;
    if (p[0] == '"') {
        if ((rc = scan_quoted(p, n, &at, e)))
            return rc;
    } else {
        const char *sep = memchr(p, '@', n);
        if (!sep)
            return td_err_set(e, TD_EINVAL, "the address has no '@'");
        at = (size_t)(sep - p);
        if (at == 0)
            return td_err_set(e, TD_EINVAL, "the local part before '@' is missing");
        if ((rc = scan_dot_atom(p, at, e)))
            return rc;
    }
    if (at > ADDR_LOCAL_MAX)
        return td_err_set(e, TD_EINVAL, "the local part is longer than %d %s", ADDR_LOCAL_MAX,
                          utf8_is_ascii(p, at) ? "characters"
                                               : "bytes (letters outside A-Z take 2 to 4 "
                                                 "bytes each)");

    const char *d = p + at + 1;
    size_t dn = n - at - 1;
    if (dn == 0)
        return td_err_set(e, TD_EINVAL, "the domain part is missing after '@'");
    if (memchr(d, '@', dn))
        return td_err_set(e, TD_EINVAL,
                          "the address has more than one '@'; an '@' in the local part must be "
                          "inside double quotes");

    char *dom = NULL, *udom = NULL;
    if ((rc = parse_domain(d, dn, &dom, &udom, e)))
        return rc;
    if (at + 1 + strlen(dom) > ADDR_MAX) {
        free(dom);
        free(udom);
        return td_err_set(e, TD_EINVAL, "the address is longer than %d characters", ADDR_MAX);
    }
    out->local = xstrndup(p, at);
    out->domain = dom;
    out->domain_unicode = udom;
    /* Joined by hand: this runs once per imported row, and printf's
     * machinery costs more than the copy. */
    size_t dl = strlen(dom);
    out->address = xmalloc(at + 1 + dl + 1);
    memcpy(out->address, p, at);
    out->address[at] = '@';
    memcpy(out->address + at + 1, dom, dl + 1);
    out->smtputf8 = !utf8_is_ascii(p, at);
    return TD_OK;
}

int addr_parse(const char *s, size_t len, addr *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    size_t off = 0, end = s ? len : 0;
    while (off < end && is_wsp(s[off]))
        off++;
    while (end > off && is_wsp(s[end - 1]))
        end--;
    if (end == off)
        return td_err_set(e, TD_EINVAL, "the address is empty");
    int rc = parse_trimmed(s + off, end - off, off, out, e);
    if (rc)
        addr_clear(out);
    return rc;
}

void addr_clear(addr *a)
{
    if (!a)
        return;
    free(a->address);
    free(a->local);
    free(a->domain);
    free(a->domain_unicode);
    memset(a, 0, sizeof *a);
}

char *addr_normalize(const char *s, td_error *e)
{
    addr a;
    if (addr_parse(s, s ? strlen(s) : 0, &a, e))
        return NULL;
    char *r = a.address;
    a.address = NULL;
    addr_clear(&a);
    return r;
}

/* skip_quoted returns the index just past the quoted string opening at
 * p[i], or n when it is not closed. */
static size_t skip_quoted(const char *p, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n + 1;
}

/* parse_phrase turns the display-name text p[0..n) into the name a person
 * sees: quoted strings unquoted, runs of blanks outside quotes made one space.
 * *name is the caller's, NULL when the name is empty. */
static int parse_phrase(const char *p, size_t n, char **name, td_error *e)
{
    buf b;
    buf_init(&b, n);
    bool space = false;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (is_wsp(c)) {
            space = b.len > 0;
            i++;
            continue;
        }
        if (space)
            buf_putc(&b, ' ');
        space = false;
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++) {
                if (p[i] == '\\' && i + 1 < n)
                    i++;
                buf_putc(&b, p[i] == '\t' ? ' ' : p[i]);
            }
            if (i >= n) {
                buf_free(&b);
                return td_err_set(e, TD_EINVAL, "the name has a double quote with no closing one");
            }
            i++;
            continue;
        }
        if (!is_atext((unsigned char)c) && c != '.' && (unsigned char)c < 0x80) {
            buf_free(&b);
            return td_err_set(e, TD_EINVAL,
                              "the name has the character '%c'; put the name in double quotes "
                              "to use it",
                              c);
        }
        buf_putc(&b, c);
        i++;
    }
    *name = b.len ? buf_steal(&b) : NULL;
    buf_free(&b);
    return TD_OK;
}

static int parse_mailbox(const char *s, char **display_name, addr *out, td_error *e)
{
    size_t n = strnlen(s, ADDR_MAILBOX_MAX + 1);
    if (n > ADDR_MAILBOX_MAX)
        return td_err_set(e, TD_EINVAL, "the name and address are longer than %d bytes",
                          ADDR_MAILBOX_MAX);
    /* A TAB is folding white space in a header: it may separate or sit in
     * the name, where it becomes a space; the address part refuses it. */
    int rc = check_text(s, n, 0, true, e);
    if (rc)
        return rc;
    size_t off = 0;
    while (off < n && is_wsp(s[off]))
        off++;
    while (n > off && is_wsp(s[n - 1]))
        n--;
    const char *p = s + off;
    n -= off;

    /* The first '<' outside a quoted name opens the address. */
    size_t lt = 0;
    while (lt < n && p[lt] != '<')
        lt = p[lt] == '"' ? skip_quoted(p, n, lt) : lt + 1;
    if (lt > n)
        return td_err_set(e, TD_EINVAL, "the name has a double quote with no closing one");
    if (lt == n)
        return addr_parse(p, n, out, e);

    /* Its '>' is the first one after the address, skipping a quoted local
     * part, which may hold '>' itself. */
    size_t gt = lt + 1;
    while (gt < n && is_wsp(p[gt]))
        gt++;
    if (gt < n && p[gt] == '"')
        gt = skip_quoted(p, n, gt);
    while (gt < n && p[gt] != '>')
        gt++;
    if (gt >= n)
        return td_err_set(e, TD_EINVAL, "the '<' before the address has no closing '>'");
    if (gt != n - 1)
        return td_err_set(e, TD_EINVAL, "there is text after the closing '>' of the address");
    if ((rc = parse_phrase(p, lt, display_name, e)))
        return rc;
    if ((rc = addr_parse(p + lt + 1, gt - lt - 1, out, e))) {
        free(*display_name);
        *display_name = NULL;
    }
    return rc;
}

int addr_parse_mailbox(const char *s, char **display_name, addr *out, td_error *e)
{
    *display_name = NULL;
    memset(out, 0, sizeof *out);
    if (!s)
        return td_err_set(e, TD_EINVAL, "the address is empty");
    return parse_mailbox(s, display_name, out, e);
}
