/* hdr: header field writing: folding, RFC 2047 encoded words, mailboxes
 * (see hdr.h and docs/internals/mime.md). */
#include "mime/hdr.h"

#include <stdio.h>
#include <string.h>

#include "util/utf8.h"

/* "=?UTF-8?Q?" and "?=": the cost of an encoded word around its text. */
#define EW_OVERHEAD 12
/* An encoded word is only started on a line with room for this much text;
 * a 4-byte character costs 12 in Q and 8 in B. */
#define EW_MIN_TEXT 12

/* A writer: the buffer, the column on the current line, the first error,
 * and whether the line holds nothing but the folding whitespace yet. */
typedef struct hw {
    buf *b;
    size_t col;
    int rc;
    bool fresh;
} hw;

static void put(hw *w, const char *s, size_t n)
{
    if (!w->rc)
        w->rc = buf_append(w->b, s, n);
    w->col += n;
    w->fresh = false;
}

static void fold(hw *w)
{
    if (!w->rc)
        w->rc = buf_append(w->b, "\r\n", 2);
    w->col = 0;
    w->fresh = true;
}

/* put_token writes [SP] s[0..n), folding first when the token would pass
 * HDR_FOLD and the line holds more than whitespace. */
static void put_token(hw *w, const char *s, size_t n, bool space)
{
    size_t need = (space ? 1 : 0) + n;
    if (w->col + need > HDR_FOLD && !w->fresh) {
        fold(w);
        space = true;
    }
    if (space)
        put(w, " ", 1);
    put(w, s, n);
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* utf8_len returns the length of the (valid) sequence starting with c. */
static size_t seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

int hdr_name_ok(const char *name, td_error *e)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "a header field name is empty");
    if (n > HDR_NAME_MAX)
        return td_err_set(e, TD_EINVAL, "the header field name is %zu characters; at most %d", n,
                          HDR_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 33 || c > 126 || c == ':')
            return td_err_set(e, TD_EINVAL,
                              "a header field name may hold only printable ASCII without ':' "
                              "(byte %zu is not)",
                              i + 1);
    }
    return TD_OK;
}

/* ctl_name describes control byte c for a message. */
static const char *ctl_name(unsigned char c)
{
    switch (c) {
    case '\r':
        return "a carriage return (CR)";
    case '\n':
        return "a line feed (LF)";
    case 0:
        return "a NUL byte";
    case 0x7f:
        return "a DEL character";
    default:
        return "a control character";
    }
}

/* check_value refuses what no header value may hold: over HDR_VALUE_MAX
 * bytes, control characters (C0 except TAB, DEL, C1) and invalid UTF-8.
 * `what` and `field` name the value in the message: "the value" of the
 * field "Subject" reads "the value of the Subject". */
static int check_value(const char *field, const char *what, const char *s, size_t n, td_error *e)
{
    if (n > HDR_VALUE_MAX)
        return td_err_set(e, TD_ETOOBIG,
                          "%s of the %s is %zu bytes; at most %d are allowed (receiving servers "
                          "cut longer headers)",
                          what, field, n, HDR_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return td_err_set(e, TD_EINVAL,
                              "%s of the %s holds %s at byte %zu; header values cannot hold line "
                              "breaks or control characters",
                              what, field, ctl_name(c), i + 1);
        /* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 */
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0 &&
            (unsigned char)s[i + 1] >= 0x80)
            return td_err_set(e, TD_EINVAL,
                              "%s of the %s holds a C1 control character at byte %zu; header values "
                              "cannot hold control characters",
                              what, field, i + 1);
    }
    size_t bad = 0;
    if (!utf8_valid(s, n, &bad))
        return td_err_set(e, TD_EINVAL, "%s of the %s is not valid UTF-8 (byte %zu)", what, field,
                          bad + 1);
    return TD_OK;
}

/* Characters a Q encoded word may carry as themselves, in every context
 * (RFC 2047 section 5 (3), the strictest: inside a phrase). */
static bool q_literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
           c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_cost(unsigned char c)
{
    return q_literal(c) || c == ' ' ? 1 : 3;
}

static const char hexd[] = "0123456789ABCDEF";
static const char b64d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* encode_words writes s[0..n) (valid UTF-8) as encoded words, each preceded
 * by a space (the first too when `space`), in B when that is shorter for the
 * whole value, else in Q; with keep_whole, a value that fits one word is
 * moved to a new line rather than cut. Each word holds whole characters and fits the line
 * when the line has room for one. */
static void encode_words(hw *w, const char *s, size_t n, bool space, bool keep_whole)
{
    size_t qlen = 0;
    for (size_t i = 0; i < n; i++)
        qlen += q_cost((unsigned char)s[i]);
    bool b64 = (n + 2) / 3 * 4 < qlen;
    /* a display name that fits one word on a new line is not cut in two */
    size_t whole = EW_OVERHEAD + (b64 ? (n + 2) / 3 * 4 : qlen);
    if (keep_whole && !w->fresh && whole <= HDR_EW_MAX && w->col + 1 + whole > HDR_FOLD) {
        fold(w);
        space = true;
    }
    char word[HDR_EW_MAX + 1];
    size_t i = 0;
    while (i < n) {
        size_t sep = space ? 1 : 0;
        size_t avail = w->col + sep < HDR_FOLD ? HDR_FOLD - w->col - sep : 0;
        /* on a line with little room left, a word that cannot hold the
         * rest starts a new line instead of being a short fragment */
        size_t rest = EW_OVERHEAD + (b64 ? (n - i + 2) / 3 * 4 : qlen);
        if (!w->fresh && avail < HDR_EW_MAX / 2 && rest > avail)
            avail = 0;
        if (avail < EW_OVERHEAD + EW_MIN_TEXT && !w->fresh) {
            fold(w);
            space = true;
            sep = 1;
            avail = HDR_FOLD - 1;
        }
        if (avail > HDR_EW_MAX)
            avail = HDR_EW_MAX;
        /* take whole characters while the word fits */
        size_t j = i, cost = 0;
        while (j < n) {
            size_t cl = seq_len((unsigned char)s[j]);
            size_t c2;
            if (b64) {
                c2 = (j + cl - i + 2) / 3 * 4;
            } else {
                c2 = cost;
                for (size_t k = 0; k < cl; k++)
                    c2 += q_cost((unsigned char)s[j + k]);
            }
            if (EW_OVERHEAD + c2 > avail && j > i)
                break;
            cost = c2;
            j += cl;
        }
        /* a full word ends after a space when one is in its second half:
         * decoders that wrongly keep the blank between two encoded words
         * (Python 3.11 in display names) then show a double space, not a
         * space inside a word */
        if (j < n) {
            size_t k = j;
            while (k > i + (j - i) / 2 && s[k - 1] != ' ')
                k--;
            if (k > i + (j - i) / 2)
                j = k;
        }
        size_t wl = 0;
        memcpy(word, b64 ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
        wl = 10;
        if (b64) {
            const unsigned char *p = (const unsigned char *)s + i;
            size_t m = j - i, k = 0;
            for (; k + 3 <= m; k += 3) {
                word[wl++] = b64d[p[k] >> 2];
                word[wl++] = b64d[((p[k] & 3) << 4) | (p[k + 1] >> 4)];
                word[wl++] = b64d[((p[k + 1] & 15) << 2) | (p[k + 2] >> 6)];
                word[wl++] = b64d[p[k + 2] & 63];
            }
            if (m - k == 1) {
                word[wl++] = b64d[p[k] >> 2];
                word[wl++] = b64d[(p[k] & 3) << 4];
                word[wl++] = '=';
                word[wl++] = '=';
            } else if (m - k == 2) {
                word[wl++] = b64d[p[k] >> 2];
                word[wl++] = b64d[((p[k] & 3) << 4) | (p[k + 1] >> 4)];
                word[wl++] = b64d[(p[k + 1] & 15) << 2];
                word[wl++] = '=';
            }
        } else {
            for (size_t k = i; k < j; k++) {
                unsigned char c = (unsigned char)s[k];
                if (q_literal(c)) {
                    word[wl++] = (char)c;
                } else if (c == ' ') {
                    word[wl++] = '_';
                } else {
                    word[wl++] = '=';
                    word[wl++] = hexd[c >> 4];
                    word[wl++] = hexd[c & 15];
                }
            }
        }
        if (!b64)
            for (size_t k = i; k < j; k++)
                qlen -= q_cost((unsigned char)s[k]);
        word[wl++] = '?';
        word[wl++] = '=';
        if (space)
            put(w, " ", 1);
        put(w, word, wl);
        space = true;
        i = j;
    }
}

/* plain_ok is true when unstructured s[0..n) can be written as itself:
 * ASCII, nothing a decoder could take for an encoded word, no leading or
 * trailing blanks (a parser would drop them), and every blank run plus word
 * short enough to fit on a folded line. */
static bool plain_ok(const char *s, size_t n)
{
    if (n == 0)
        return true;
    if (is_wsp(s[0]) || is_wsp(s[n - 1]))
        return false;
    size_t run = 0;
    bool in_word = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return false;
        if (c == '=' && i + 1 < n && s[i + 1] == '?')
            return false;
        if (is_wsp((char)c)) {
            if (in_word)
                run = 0;
            in_word = false;
        } else {
            in_word = true;
        }
        if (++run > HDR_FOLD - 1)
            return false;
    }
    return true;
}

/* put_plain writes s[0..n) (no leading/trailing blanks) folded at blanks;
 * the first word is preceded by a space. Returns TD_EINVAL when a word would
 * make a line pass HDR_LINE_MAX. */
static int put_plain(hw *w, const char *s, size_t n, td_error *e)
{
    size_t i = 0;
    bool first = true;
    while (i < n) {
        size_t ws = i;
        while (i < n && is_wsp(s[i]))
            i++;
        size_t wd = i;
        while (i < n && !is_wsp(s[i]))
            i++;
        const char *sep = first ? " " : s + ws;
        size_t seplen = first ? 1 : wd - ws;
        size_t wl = i - wd;
        if (w->col + seplen + wl > HDR_FOLD && !w->fresh) {
            fold(w);
            if (first) {
                sep = " ";
                seplen = 1;
            }
        }
        if (w->col + seplen + wl > HDR_LINE_MAX)
            return td_err_set(e, TD_EINVAL,
                              "a header value holds a %zu-byte word that cannot be folded "
                              "into a %d-byte line",
                              wl, HDR_LINE_MAX);
        put(w, sep, seplen);
        put(w, s + wd, wl);
        first = false;
    }
    return TD_OK;
}

static void start(hw *w, buf *out, const char *name)
{
    w->b = out;
    w->col = 0;
    w->rc = 0;
    w->fresh = false;
    put(w, name, strlen(name));
    put(w, ":", 1);
}

/* finish ends the field; on any failure it puts out back to len0. */
static int finish(hw *w, size_t len0, int rc, td_error *e)
{
    if (!rc) {
        if (!w->rc)
            w->rc = buf_append(w->b, "\r\n", 2);
        rc = w->rc;
        if (rc)
            td_err_set(e, rc, "the message is over its size cap");
    }
    if (rc)
        buf_truncate(w->b, len0);
    return rc;
}

int hdr_text(buf *out, const char *name, const char *value, size_t len, td_error *e)
{
    int rc = hdr_name_ok(name, e);
    if (rc)
        return rc;
    if ((rc = check_value(name, "the value", value, len, e)))
        return rc;
    size_t len0 = out->len;
    hw w;
    start(&w, out, name);
    if (plain_ok(value, len))
        rc = put_plain(&w, value, len, e);
    else
        encode_words(&w, value, len, true, false);
    return finish(&w, len0, rc, e);
}

int hdr_raw(buf *out, const char *name, const char *value, size_t len, td_error *e)
{
    int rc = hdr_name_ok(name, e);
    if (rc)
        return rc;
    if (len > HDR_VALUE_MAX)
        return td_err_set(e, TD_ETOOBIG, "the %s value is %zu bytes; at most %d", name, len,
                          HDR_VALUE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            return td_err_set(e, TD_EINVAL,
                              "the %s value holds %s at byte %zu; it may hold only printable "
                              "ASCII",
                              name, c >= 0x80 ? "a non-ASCII byte" : ctl_name(c), i + 1);
    }
    while (len && is_wsp(value[0]))
        value++, len--;
    while (len && is_wsp(value[len - 1]))
        len--;
    size_t len0 = out->len;
    hw w;
    start(&w, out, name);
    rc = put_plain(&w, value, len, e);
    return finish(&w, len0, rc, e);
}

static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* put_phrase writes display name s[0..n) (checked) as atoms, one quoted
 * string, or encoded words, whichever keeps it intact. */
static void put_phrase(hw *w, const char *s, size_t n)
{
    bool ascii = true, atoms = true, ew_like = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            ascii = false;
        else if (c == '=' && i + 1 < n && s[i + 1] == '?')
            ew_like = true;
        if (c == ' ') {
            if (i == 0 || i + 1 == n || s[i + 1] == ' ')
                atoms = false;
        } else if (!is_atext(c)) {
            atoms = false;
        }
    }
    /* a quoted string with escapes is at most 2n+2; it must fit a line */
    if (ascii && !ew_like && atoms) {
        size_t i = 0;
        bool ok = true;
        while (i < n && ok) { /* every atom must fit a folded line */
            size_t j = i;
            while (j < n && s[j] != ' ')
                j++;
            ok = j - i <= HDR_FOLD - 1;
            i = j + 1;
        }
        if (ok) {
            if (!w->fresh && n <= HDR_FOLD - 1 && w->col + 1 + n > HDR_FOLD)
                fold(w); /* keep a short name on one line */
            i = 0;
            while (i < n) {
                size_t j = i;
                while (j < n && s[j] != ' ')
                    j++;
                put_token(w, s + i, j - i, true);
                i = j + 1;
            }
            return;
        }
    }
    if (ascii && !ew_like && n * 2 + 2 <= HDR_FOLD - 1) {
        char q[HDR_FOLD + 1];
        size_t k = 0;
        q[k++] = '"';
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                q[k++] = '\\';
            q[k++] = s[i];
        }
        q[k++] = '"';
        put_token(w, q, k, true);
        return;
    }
    encode_words(w, s, n, true, true);
}

int hdr_mailboxes(buf *out, const char *name, const hdr_mailbox *mb, size_t n, bool *smtputf8,
                  td_error *e)
{
    int rc = hdr_name_ok(name, e);
    if (rc)
        return rc;
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "the %s field needs at least one address", name);
    for (size_t i = 0; i < n; i++) {
        if (!mb[i].a || !mb[i].a->address)
            return td_err_set(e, TD_EINVAL, "the %s address %zu is missing", name, i + 1);
        if (strlen(mb[i].a->address) > ADDR_MAX + 2)
            return td_err_set(e, TD_EINVAL, "the %s address %zu is too long", name, i + 1);
        if (mb[i].name &&
            (rc = check_value(name, "the display name", mb[i].name, strlen(mb[i].name), e)))
            return rc;
    }
    size_t len0 = out->len;
    hw w;
    start(&w, out, name);
    bool utf8 = false;
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(&w, ",", 1);
        const char *a = mb[i].a->address;
        utf8 |= mb[i].a->smtputf8 || !utf8_is_ascii(a, strlen(a));
        if (mb[i].name && mb[i].name[0]) {
            put_phrase(&w, mb[i].name, strlen(mb[i].name));
            char tok[ADDR_MAX + 8]; /* the address was checked above */
            size_t al = strlen(a);
            tok[0] = '<';
            memcpy(tok + 1, a, al);
            tok[al + 1] = '>';
            put_token(&w, tok, al + 2, true);
        } else {
            put_token(&w, a, strlen(a), true);
        }
    }
    rc = finish(&w, len0, 0, e);
    if (!rc && utf8 && smtputf8)
        *smtputf8 = true;
    return rc;
}

int hdr_list_id(buf *out, const char *name, const char *description, const char *id, td_error *e)
{
    int rc = hdr_name_ok(name, e);
    if (rc)
        return rc;
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 255)
        return td_err_set(e, TD_EINVAL, "the list id must be 1 to 255 characters");
    for (size_t i = 0; i < n; i++) {
        bool dot = id[i] == '.';
        if (!(dot ? i > 0 && i + 1 < n && id[i + 1] != '.' : is_atext((unsigned char)id[i])))
            return td_err_set(e, TD_EINVAL,
                              "the list id must be a dot-atom like weekly.example.com (byte %zu "
                              "is not allowed there)",
                              i + 1);
    }
    if (description &&
        (rc = check_value("list", "the description", description, strlen(description), e)))
        return rc;
    size_t len0 = out->len;
    hw w;
    start(&w, out, name);
    if (description && description[0])
        put_phrase(&w, description, strlen(description));
    char tok[264];
    int k = snprintf(tok, sizeof tok, "<%s>", id);
    put_token(&w, tok, (size_t)k, true);
    return finish(&w, len0, 0, e);
}

int hdr_date(buf *out, const char *name, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) /* only from an absurd time given */
        return buf_printf(out, "%s: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", name,
                          days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], year,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
    /* "Tue, 05 Mar 2024 09:07:02 +0000", by hand: every message has one,
     * and buf_printf cost as much as the rest of the header block */
    char d[34] = "Ddd, DD Mmm YYYY HH:MM:SS +0000\r\n";
    memcpy(d, days[tm.tm_wday % 7], 3);
    d[5] = (char)('0' + tm.tm_mday / 10 % 10), d[6] = (char)('0' + tm.tm_mday % 10);
    memcpy(d + 8, months[tm.tm_mon % 12], 3);
    for (int k = 15, y = year; k >= 12; k--, y /= 10)
        d[k] = (char)('0' + y % 10);
    int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int k = 0; k < 3; k++) {
        d[17 + 3 * k] = (char)('0' + hms[k] / 10 % 10);
        d[18 + 3 * k] = (char)('0' + hms[k] % 10);
    }
    size_t len0 = out->len; /* all or nothing, as the other fields */
    if (buf_puts(out, name) || buf_append(out, ": ", 2) || buf_append(out, d, 33)) {
        buf_truncate(out, len0);
        return TD_ETOOBIG;
    }
    return TD_OK;
}
