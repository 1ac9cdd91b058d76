/* msg: the message builder (see msg.h and docs/internals/mime.md). */
#include "mime/msg.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mime/hdr.h"
#include "mime/html2text.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#define BOUNDARY_MIX "=_td_mix"
#define BOUNDARY_ALT "=_td_alt"

struct msg_envelope {
    buf hdrs;           /* From, Reply-To, List-Id, Feedback-ID, extra headers */
    char *msgid_domain; /* right side of generated Message-IDs */
    char *from_address; /* the default MAIL FROM */
    bool smtputf8;
};

/* ---- output with a small staging area, so byte-wise encoders do not call
 * buf_append per byte ---- */

typedef struct wr {
    buf *b;
    size_t n;
    int rc;
    char tmp[4096];
} wr;

/* copy_str copies src into dst[cap], cut to fit as snprintf("%s") would
 * (without its cost: these run several times per message). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void w_flush(wr *w)
{
    if (w->n && !w->rc)
        w->rc = buf_append(w->b, w->tmp, w->n);
    w->n = 0;
}

static void w_put(wr *w, const char *s, size_t n)
{
    if (n > sizeof w->tmp - w->n) {
        w_flush(w);
        if (n >= sizeof w->tmp) {
            if (!w->rc)
                w->rc = buf_append(w->b, s, n);
            return;
        }
    }
    memcpy(w->tmp + w->n, s, n);
    w->n += n;
}

static inline void w_putc(wr *w, char c)
{
    if (w->n == sizeof w->tmp)
        w_flush(w);
    w->tmp[w->n++] = c;
}

static void w_puts(wr *w, const char *s)
{
    w_put(w, s, strlen(s));
}

/* ---- checks ---- */

static bool reserved_header(const char *name)
{
    static const char *const names[] = {"From",
                                        "To",
                                        "Cc",
                                        "Bcc",
                                        "Subject",
                                        "Date",
                                        "Message-ID",
                                        "Reply-To",
                                        "Sender",
                                        "MIME-Version",
                                        "List-Unsubscribe",
                                        "List-Unsubscribe-Post",
                                        "List-Id",
                                        "Feedback-ID",
                                        "Return-Path",
                                        "DKIM-Signature",
                                        NULL};
    for (size_t i = 0; names[i]; i++)
        if (!strcasecmp(name, names[i]))
            return true;
    return !strncasecmp(name, "Content-", 8);
}

static int extra_headers(buf *out, const msg_header *h, size_t n, td_error *e)
{
    for (size_t i = 0; i < n; i++) {
        int rc = hdr_name_ok(h[i].name, e);
        if (rc)
            return rc;
        if (reserved_header(h[i].name))
            return td_err_set(e, TD_EINVAL,
                              "the extra header %s is one the message builder writes itself",
                              h[i].name);
        const char *v = h[i].value ? h[i].value : "";
        if ((rc = hdr_text(out, h[i].name, v, strlen(v), e)))
            return rc;
    }
    return TD_OK;
}

/* mailbox parses "Name <addr>" and writes field `name` for it. */
static int mailbox_field(buf *out, const char *field, const char *what, const char *s, addr *a,
                         bool *smtputf8, td_error *e)
{
    char *dn = NULL;
    td_error ae = {0};
    if (addr_parse_mailbox(s, &dn, a, &ae))
        return td_err_set(e, TD_EINVAL, "%s: %s", what, ae.msg);
    hdr_mailbox mb = {dn, a};
    int rc = hdr_mailboxes(out, field, &mb, 1, smtputf8, e);
    free(dn);
    return rc;
}

static bool is_attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$&+-.^_`|~", c));
}

/* ---- envelope ---- */

int msg_envelope_new(const msg_envelope_spec *spec, msg_envelope **out, td_error *e)
{
    *out = NULL;
    if (sodium_init() < 0)
        return td_err_set(e, TD_EINTERNAL, "libsodium could not start");
    msg_envelope *env = xcalloc(1, sizeof *env);
    buf_init(&env->hdrs, 64 * 1024);
    int rc;
    addr from = {0}, rt = {0};
    if (!spec->from) {
        rc = td_err_set(e, TD_EINVAL, "the message needs a From address");
        goto fail;
    }
    if ((rc = mailbox_field(&env->hdrs, "From", "From", spec->from, &from, &env->smtputf8, e)))
        goto fail;
    if (spec->reply_to && (rc = mailbox_field(&env->hdrs, "Reply-To", "Reply-To", spec->reply_to,
                                              &rt, &env->smtputf8, e)))
        goto fail;
    if (spec->list_id &&
        (rc = hdr_list_id(&env->hdrs, "List-Id", spec->list_name, spec->list_id, e)))
        goto fail;
    if (spec->feedback_id &&
        (rc = hdr_raw(&env->hdrs, "Feedback-ID", spec->feedback_id, strlen(spec->feedback_id), e)))
        goto fail;
    if ((rc = extra_headers(&env->hdrs, spec->headers, spec->nheaders, e)))
        goto fail;
    const char *dom = spec->msgid_domain ? spec->msgid_domain : from.domain;
    for (const char *p = dom; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("<>@\"", *p)) {
            rc = td_err_set(e, TD_EINVAL,
                            "the Message-ID domain '%s' must be ASCII without spaces or <>@",
                            spec->msgid_domain ? spec->msgid_domain : "");
            goto fail;
        }
    env->msgid_domain = xstrdup(dom);
    env->from_address = xstrdup(from.address);
    addr_clear(&from);
    addr_clear(&rt);
    *out = env;
    return TD_OK;
fail:
    addr_clear(&from);
    addr_clear(&rt);
    msg_envelope_free(env);
    return rc;
}

void msg_envelope_free(msg_envelope *env)
{
    if (!env)
        return;
    buf_free(&env->hdrs);
    free(env->msgid_domain);
    free(env->from_address);
    free(env);
}

/* ---- body encoders ---- */

/* Speed: the encoders and checks below see every byte of a campaign's
 * 20 KB HTML and its text for each recipient, and byte-at-a-time loops made
 * them most of msg_build's time. Mail text is mostly printable ASCII, so
 * plain_run skips it 16 bytes at a time with SSE2 (in every x86-64 CPU),
 * else 8 at a time with the word tests of "Bit Twiddling Hacks" (haszero,
 * hasless), exact as yes/no answers for bytes below 0x80. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

/* not_plain8 flags (the high bit of) each of s[0..8) that is not printable
 * ASCII or SP (0x20-0x7e) or is '=': the bytes the encoders below must
 * look at. 0 means none. The lowest flag is exact (a borrow or carry only
 * spreads from a flagged byte to later ones), so on a little-endian machine
 * first_flag finds the first such byte; elsewhere it says 0 and the caller
 * goes on byte by byte. */
static inline uint64_t not_plain8(const char *s)
{
    uint64_t w = load8(s), eq = w ^ (ONES * '=');
    uint64_t high = w & HIGHS;                     /* >= 0x80 */
    uint64_t ctl = (w - ONES * 0x20) & ~w & HIGHS; /* < 0x20 */
    uint64_t del = (w + ONES) & HIGHS;             /* 0x7f */
    uint64_t eqs = (eq - ONES) & ~eq & HIGHS;      /* '=' */
    return high | ctl | del | eqs;
}

static inline size_t first_flag(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(m) / 8;
#else
    (void)m;
    return 0;
#endif
}

#if defined(__SSE2__)
/* not_plain16 flags (a bit per byte, bit k for s[k]) each of s[0..16) that
 * is not printable ASCII or SP or is '=', as not_plain8 does. */
static inline unsigned not_plain16(const char *s)
{
    const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), eq = _mm_set1_epi8('=');
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    /* signed: 0x20..0x7f are above 0x1f, controls and bytes >= 0x80 not */
    __m128i ok = _mm_cmpgt_epi8(v, ctl);
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, eq));
    return (unsigned)_mm_movemask_epi8(_mm_andnot_si128(bad, ok)) ^ 0xffffu;
}
#endif

/* plain_run returns how many of s[0..n) are, from the start, printable
 * ASCII or SP but not '=' (the bytes no encoder below must look at). It can
 * stop early, at a plain byte, on a big-endian machine: callers look at the
 * byte there and go on. */
static inline size_t plain_run(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        unsigned m = not_plain16(s + i);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t m = not_plain8(s + i);
        if (m)
            return i + first_flag(m);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '=')
            return i;
    }
    return n;
}

enum { CTE_7BIT, CTE_QP, CTE_B64 };
static const char *const cte_names[] = {"7bit", "quoted-printable", "base64"};

/* What choose_cte counts: bytes >= 0x80, bytes QP must escape ('=' and
 * controls but TAB), line ends (CR, LF or CRLF), the longest line, the
 * start of the current line, and whether 7bit is ruled out for another
 * reason. */
typedef struct cte_scan {
    size_t hi, esc, lines, maxline, ls;
    bool not7;
} cte_scan;

/* cte_line_end counts the line end at p[i] and returns the index after it. */
static size_t cte_line_end(cte_scan *c, const unsigned char *p, size_t n, size_t i)
{
    if (i - c->ls > c->maxline)
        c->maxline = i - c->ls;
    if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
        i++;
    c->lines++;
    c->ls = i + 1;
    if (n - c->ls >= 5 && p[c->ls] == 'F' && !memcmp(p + c->ls, "From ", 5))
        c->not7 = true;
    return i + 1;
}

/* cte_byte counts p[i] and returns the index after what it counted. */
static size_t cte_byte(cte_scan *c, const unsigned char *p, size_t n, size_t i)
{
    unsigned char ch = p[i];
    if (ch == '\r' || ch == '\n')
        return cte_line_end(c, p, n, i);
    if (ch >= 0x80) {
        c->hi++;
    } else if (ch == '=') {
        c->esc++;
        if (i + 1 < n && p[i + 1] == '_')
            c->not7 = true;
    } else if ((ch < 0x20 || ch == 0x7f) && ch != '\t') {
        c->esc++;
        c->not7 = true;
    }
    return i + 1;
}

#if defined(__SSE2__)
/* cte_scan16 counts s[0..n) 16 bytes at a time and returns how far it got
 * (a multiple of 16); *next is the index after the last line end counted,
 * which may be past the return value when a CRLF straddles it. The counts
 * of high bytes and escapes add up in byte lanes, summed every 255 blocks
 * before a lane can overflow; only blocks holding a line end branch. A
 * 20 KB HTML part has an '=' every 20 bytes or so, and leaving plain_run at
 * each of them made this scan as slow as the encoder. */
static size_t cte_scan16(cte_scan *c, const unsigned char *p, size_t n, size_t *next)
{
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), eq = _mm_set1_epi8('='),
                  cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t'),
                  us = _mm_set1_epi8('_'), zero = _mm_setzero_si128();
    size_t i = 0;
    unsigned odd_any = 0, eq_us = 0;
    while (i + 16 <= n) {
        __m128i acc_hi = zero, acc_esc = zero;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            __m128i hi = _mm_cmplt_epi8(v, zero);
            __m128i e = _mm_cmpeq_epi8(v, eq);
            __m128i nl = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
            /* controls but TAB, CR and LF, and DEL */
            __m128i low = _mm_andnot_si128(hi, _mm_cmpgt_epi8(sp, v));
            __m128i odd = _mm_or_si128(
                _mm_andnot_si128(_mm_or_si128(nl, _mm_cmpeq_epi8(v, tab)), low),
                _mm_cmpeq_epi8(v, del));
            acc_hi = _mm_sub_epi8(acc_hi, hi);
            acc_esc = _mm_sub_epi8(acc_esc, _mm_or_si128(e, odd));
            odd_any |= (unsigned)_mm_movemask_epi8(odd);
            unsigned em = (unsigned)_mm_movemask_epi8(e);
            if (em) { /* "=_" could start a boundary */
                unsigned um = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, us));
                eq_us |= em & (um >> 1);
                if ((em & 0x8000u) && i + 16 < n && p[i + 16] == '_')
                    eq_us = 1;
            }
            unsigned lm = (unsigned)_mm_movemask_epi8(nl);
            while (lm) {
                size_t at = i + (size_t)__builtin_ctz(lm);
                lm &= lm - 1;
                if (at >= *next) /* else the LF of a CRLF already counted */
                    *next = cte_line_end(c, p, n, at);
            }
        }
        __m128i sh = _mm_sad_epu8(acc_hi, zero), se = _mm_sad_epu8(acc_esc, zero);
        c->hi += (size_t)_mm_cvtsi128_si32(sh) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sh, 8));
        c->esc += (size_t)_mm_cvtsi128_si32(se) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(se, 8));
    }
    if (odd_any || eq_us)
        c->not7 = true;
    return i;
}
#endif

/* qp_or_b64 picks, for a text that cannot go as 7bit, quoted-printable
 * when its encoded size (from the counts of c) is no more than base64's. */
static int qp_or_b64(const cte_scan *c, size_t n)
{
    size_t qp = n + 2 * (c->hi + c->esc);
    qp += qp / 73 * 3 + c->lines;
    size_t b64 = (n + c->lines + 2) / 3 * 4;
    b64 += b64 / 76 * 2;
    return qp <= b64 ? CTE_QP : CTE_B64;
}

/* choose_cte picks the transfer encoding of a text part from its content:
 * 7bit when it is ASCII without controls in lines of at most 78 octets (and
 * without "=_", so it cannot hold a boundary, nor a line starting "From "
 * that mbox tools would mangle); else quoted-printable when its size is no
 * more than base64's, else base64. */
static int choose_cte(const char *s, size_t n)
{
    cte_scan c = {.lines = 1};
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, next = 0;
#if defined(__SSE2__)
    i = cte_scan16(&c, p, n, &next);
#endif
    if (i < next)
        i = next;
    while (i < n)
        i = cte_byte(&c, p, n, i);
    if (n - c.ls > c.maxline)
        c.maxline = n - c.ls;
    if (n >= 5 && !memcmp(s, "From ", 5))
        c.not7 = true;
    if (!c.hi && !c.not7 && c.maxline <= HDR_FOLD)
        return CTE_7BIT;
    return qp_or_b64(&c, n);
}

/* seven_bit tells whether s[0..n) can go as 7bit by choose_cte's rule,
 * stopping at the first byte that rules it out: the first long line of an
 * HTML part is usually in its first few hundred bytes. It keeps choose_cte's
 * counts (cte_line_end, cte_byte) but looks at them as it goes. */
static bool seven_bit(const unsigned char *p, size_t n)
{
    cte_scan c = {.lines = 1};
    if (n >= 5 && !memcmp(p, "From ", 5))
        return false;
    size_t i = 0, next = 0; /* next: the index after the last line end seen */
#if defined(__SSE2__)
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), eq = _mm_set1_epi8('='),
                  cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t'),
                  us = _mm_set1_epi8('_'), zero = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i hi = _mm_cmplt_epi8(v, zero);
        __m128i nl = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
        __m128i low = _mm_andnot_si128(_mm_or_si128(nl, _mm_cmpeq_epi8(v, tab)),
                                       _mm_andnot_si128(hi, _mm_cmpgt_epi8(sp, v)));
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(hi, low), _mm_cmpeq_epi8(v, del))))
            return false;
        unsigned em = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, eq));
        if (em && ((em & ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, us)) >> 1)) ||
                   ((em & 0x8000u) && i + 16 < n && p[i + 16] == '_')))
            return false;
        for (unsigned lm = (unsigned)_mm_movemask_epi8(nl); lm; lm &= lm - 1) {
            size_t at = i + (size_t)__builtin_ctz(lm);
            if (at >= next) /* else the LF of a CRLF already counted */
                next = cte_line_end(&c, p, n, at);
        }
        if (c.not7 || c.maxline > HDR_FOLD || (i + 16 > c.ls && i + 16 - c.ls > HDR_FOLD))
            return false;
    }
#endif
    if (i < next)
        i = next;
    while (i < n) {
        i = cte_byte(&c, p, n, i);
        if (c.hi || c.not7 || c.maxline > HDR_FOLD)
            return false;
    }
    return n - c.ls <= HDR_FOLD;
}

/* How much of a text cte_first_look samples, and the share of bytes to
 * escape in it above which quoted-printable is unlikely to win. */
#define CTE_LOOK 4096
#define CTE_DENSE 8 /* one byte in 8 */

/* cte_first_look gives choose_cte's answer when that is cheap to know:
 * CTE_7BIT when the text can go as 7bit. Otherwise CTE_QP when few of its
 * first CTE_LOOK bytes need escaping: quoted-printable is then likely, and
 * text_part encodes at once, counting as it goes, and checks the choice
 * after (so a 20 KB HTML part is read once, not twice). Otherwise CTE_B64,
 * meaning "count it all first". */
static int cte_first_look(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (seven_bit(p, n))
        return CTE_7BIT;
    size_t look = n < CTE_LOOK ? n : CTE_LOOK, esc = 0, i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= look; i += 16) {
        /* the 16 flags counted in place (x86-64's baseline has no popcnt
         * instruction, and __builtin_popcount became a call) */
        unsigned m = not_plain16(s + i);
        m -= (m >> 1) & 0x5555u;
        m = (m & 0x3333u) + ((m >> 2) & 0x3333u);
        m = (m + (m >> 4)) & 0x0f0fu;
        esc += (m + (m >> 8)) & 0x1fu;
    }
#endif
    for (; i < look; i++)
        esc += p[i] < 0x20 || p[i] >= 0x7f || p[i] == '=';
    return esc * CTE_DENSE > look ? CTE_B64 : CTE_QP;
}

/* put_7bit copies text with every line ending made CRLF. */
static void put_7bit(wr *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n')
            j++;
        w_put(w, s + i, j - i);
        if (j < n) {
            w_put(w, "\r\n", 2);
            if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')
                j++;
            j++;
        }
        i = j;
    }
}

static const char hexd[] = "0123456789ABCDEF";

static bool qp_literal(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '=';
}

/* put_qp writes quoted-printable (RFC 2045 6.7): lines of at most 76
 * characters, blanks before a line end encoded, "From " at the start of a
 * line written =46rom, every line ending CRLF. It writes in place in the
 * output, a chunk's worst case made room for at a time, not through wr's
 * staging area: the HTML part is most of a newsletter, and that second
 * copy was a large part of the encoder's time (bench/render). */
#define QP_CHUNK 4096
static void put_qp(wr *w, const char *s, size_t n, cte_scan *count)
{
    w_flush(w);
    size_t col = 0;
    size_t i = 0;
    while (i < n && !w->rc) {
        size_t end = n - i < QP_CHUNK ? n : i + QP_CHUNK;
        /* Worst case for the chunk: 3 octets a byte and a soft break (3)
         * every 25 bytes, under 4 a byte; a plain run started before end
         * may go up to 75 bytes past it, and the 16-byte store below may
         * write 15 bytes past the output's end. */
        char *o0 = buf_room(w->b, 4 * (end - i) + 4 * 80);
        if (!o0) {
            w->rc = TD_ETOOBIG;
            return;
        }
        char *o = o0;
        while (i < end) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\r' || c == '\n') {
                if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                    i++;
                *o++ = '\r';
                *o++ = '\n';
                col = 0;
                i++;
                count->lines++;
                continue;
            }
#if defined(__SSE2__)
            /* Up to 16 plain characters: all 16 are stored (the room made
             * above has the slack) and as many as are plain and fit on the
             * line are kept, with no call and no inner loop. Blanks are
             * plain here unless a line end follows them; a TAB takes the
             * byte-wise path below. (A branch-free form that also wrote
             * each '=' as "=3D" in the same step was slower: each step then
             * waited for the last one's length before it could load.) */
            if (i + 16 <= n && col < 75 && !(col == 0 && c == 'F')) {
                unsigned m = not_plain16(s + i);
                size_t k = m ? (size_t)__builtin_ctz(m) : 16, room = 75 - col;
                if (k > room)
                    k = room;
                if (k && s[i + k - 1] == ' ' &&
                    (i + k == n || s[i + k] == '\r' || s[i + k] == '\n'))
                    k--;
                if (k) {
                    _mm_storeu_si128((__m128i *)(void *)o,
                                     _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
                    o += k;
                    col += k;
                    i += k;
                    /* the '=' that ends most runs in HTML, if it fits */
                    if (i < n && s[i] == '=' && col <= 72) {
                        memcpy(o, "=3D", 3);
                        o += 3;
                        col += 3;
                        i++;
                        count->esc++;
                        continue;
                    }
                    if (col >= 75 && i < n && s[i] != '\r' && s[i] != '\n') {
                        memcpy(o, "=\r\n", 3);
                        o += 3;
                        col = 0;
                    }
                    continue;
                }
            }
#endif
            /* a run of plain characters goes in one copy */
            if (qp_literal(c) && !(col == 0 && c == 'F')) {
                size_t j = i;
                size_t room = 75 - col;
                size_t lim = n - i < room ? n : i + room;
                /* blanks are plain too unless a line end follows them */
                while (j < lim) {
                    j += plain_run(s + j, lim - j);
                    if (j == lim)
                        break;
                    unsigned char d = (unsigned char)s[j];
                    if (qp_literal(d) || ((d == ' ' || d == '\t') && j + 1 < n &&
                                          s[j + 1] != '\r' && s[j + 1] != '\n'))
                        j++;
                    else
                        break;
                }
                /* a word skipped may end in the SP before a line end or the
                 * end of the text: that SP is encoded (s[i] is no blank, so
                 * the run stays non-empty) */
                if ((j == n || s[j] == '\r' || s[j] == '\n') && s[j - 1] == ' ')
                    j--;
                memcpy(o, s + i, j - i);
                o += j - i;
                col += j - i;
                i = j;
                if (col >= 75 && i < n && s[i] != '\r' && s[i] != '\n') {
                    memcpy(o, "=\r\n", 3);
                    o += 3;
                    col = 0;
                }
                continue;
            }
            bool eol = i + 1 == n || s[i + 1] == '\r' || s[i + 1] == '\n';
            bool lit = qp_literal(c) || ((c == ' ' || c == '\t') && !eol);
            if (col + (lit ? 1 : 3) > 75) {
                memcpy(o, "=\r\n", 3);
                o += 3;
                col = 0;
            }
            if (col == 0 && c == 'F' && n - i >= 5 && !memcmp(s + i, "From ", 5))
                lit = false;
            if (c >= 0x80)
                count->hi++;
            else if (c == '=' || (c < 0x20 && c != '\t') || c == 0x7f)
                count->esc++;
            if (lit) {
                *o++ = (char)c;
                col++;
            } else {
                *o++ = '=';
                *o++ = hexd[c >> 4];
                *o++ = hexd[c & 15];
                col += 3;
            }
            i++;
        }
        buf_added(w->b, (size_t)(o - o0));
    }
}

static const char b64d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* put_b64 writes base64 in lines of 76 characters separated by CRLF, with
 * no CRLF after the last line (the boundary delimiter brings it). */
static void put_b64(wr *w, const unsigned char *p, size_t n)
{
    char line[80];
    size_t i = 0;
    bool first = true;
    while (i < n) {
        size_t m = n - i < 57 ? n - i : 57, k = 0, l = 0;
        for (; k + 3 <= m; k += 3) {
            const unsigned char *q = p + i + k;
            line[l++] = b64d[q[0] >> 2];
            line[l++] = b64d[((q[0] & 3) << 4) | (q[1] >> 4)];
            line[l++] = b64d[((q[1] & 15) << 2) | (q[2] >> 6)];
            line[l++] = b64d[q[2] & 63];
        }
        if (m - k == 1) {
            const unsigned char *q = p + i + k;
            line[l++] = b64d[q[0] >> 2];
            line[l++] = b64d[(q[0] & 3) << 4];
            line[l++] = '=';
            line[l++] = '=';
        } else if (m - k == 2) {
            const unsigned char *q = p + i + k;
            line[l++] = b64d[q[0] >> 2];
            line[l++] = b64d[((q[0] & 3) << 4) | (q[1] >> 4)];
            line[l++] = b64d[(q[1] & 15) << 2];
            line[l++] = '=';
        }
        if (!first)
            w_put(w, "\r\n", 2);
        w_put(w, line, l);
        first = false;
        i += m;
    }
}

/* canon_crlf copies text into scratch with CRLF line ends (the canonical
 * form that base64 of a text part must encode, RFC 2045 6.8). */
static int canon_crlf(buf *scratch, const char *s, size_t n)
{
    buf_reset(scratch);
    wr w = {.b = scratch};
    put_7bit(&w, s, n);
    w_flush(&w);
    return w.rc;
}

static void part_head(wr *w, const char *subtype, int cte)
{
    w_puts(w, "Content-Type: text/");
    w_puts(w, subtype);
    w_puts(w, "; charset=utf-8\r\nContent-Transfer-Encoding: ");
    w_puts(w, cte_names[cte]);
    w_put(w, "\r\n\r\n", 4);
}

/* text_part writes a text part's headers and body; the body has no final
 * CRLF of its own unless the text ends with a line end. The encoding is
 * always choose_cte's; cte_first_look says how to get it cheaply. */
static void text_part(wr *w, const char *subtype, const char *s, size_t n, buf *scratch)
{
    cte_scan count = {.lines = 1};
    int cte = cte_first_look(s, n);
    if (cte == CTE_QP && !w->rc) {
        w_flush(w);
        size_t mark = w->b->len;
        part_head(w, subtype, CTE_QP);
        put_qp(w, s, n, &count);
        /* put_qp counted what choose_cte counts; not 7bit is known */
        if (!w->rc && qp_or_b64(&count, n) == CTE_QP)
            return;
        buf_truncate(w->b, mark);
        if (w->rc == TD_ETOOBIG) {
            /* past the output's cap: base64 of a dense rest may still fit,
             * so decide by a full count as for any other text */
            w->rc = TD_OK;
            cte = choose_cte(s, n);
            count = (cte_scan){.lines = 1};
        } else if (w->rc) {
            return;
        } else {
            cte = CTE_B64;
        }
    } else if (cte != CTE_7BIT) {
        cte = choose_cte(s, n);
    }
    part_head(w, subtype, cte);
    if (cte == CTE_7BIT) {
        put_7bit(w, s, n);
    } else if (cte == CTE_QP) {
        put_qp(w, s, n, &count);
    } else {
        int rc = canon_crlf(scratch, s, n);
        if (rc && !w->rc)
            w->rc = rc;
        put_b64(w, (const unsigned char *)scratch->data, scratch->len);
    }
}

/* put_param writes `; attr="value"` or, for non-ASCII, quotes or a long
 * value, RFC 2231 `; attr*=utf-8''%..` in continuations of at most 60
 * characters, each on its own folded line. */
static void put_param(wr *w, const char *attr, const char *v)
{
    size_t n = strlen(v);
    bool plain = n <= 60;
    for (size_t i = 0; i < n && plain; i++) {
        unsigned char c = (unsigned char)v[i];
        plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    }
    if (plain) {
        w_puts(w, ";\r\n ");
        w_puts(w, attr);
        w_puts(w, "=\"");
        w_put(w, v, n);
        w_putc(w, '"');
        return;
    }
    /* count the encoded length to know whether continuations are needed */
    size_t enc = 0;
    for (size_t i = 0; i < n; i++)
        enc += is_attr_char((unsigned char)v[i]) ? 1 : 3;
    bool cont = enc + 7 > 60;
    size_t i = 0;
    int seg = 0;
    while (i < n) {
        char head[48];
        if (cont)
            snprintf(head, sizeof head, ";\r\n %s*%d*=%s", attr, seg, seg == 0 ? "utf-8''" : "");
        else
            snprintf(head, sizeof head, ";\r\n %s*=utf-8''", attr);
        w_puts(w, head);
        size_t used = 0;
        while (i < n) {
            /* whole characters per segment, so each one decodes alone */
            unsigned char c = (unsigned char)v[i];
            size_t cl = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            size_t cost = 0;
            for (size_t k = 0; k < cl && i + k < n; k++)
                cost += is_attr_char((unsigned char)v[i + k]) ? 1 : 3;
            if (used && used + cost > 54)
                break;
            for (size_t k = 0; k < cl && i < n; k++, i++) {
                unsigned char d = (unsigned char)v[i];
                if (is_attr_char(d)) {
                    w_putc(w, (char)d);
                } else {
                    char q[3] = {'%', hexd[d >> 4], hexd[d & 15]};
                    w_put(w, q, 3);
                }
            }
            used += cost;
        }
        seg++;
    }
}

static int check_attachment(const msg_attachment *a, size_t idx, td_error *e)
{
    const char *fn = a->filename;
    size_t n = fn ? strlen(fn) : 0;
    if (n == 0 || n > MSG_FILENAME_MAX)
        return td_err_set(e, TD_EINVAL, "attachment %zu: the file name must be 1 to %d bytes",
                          idx + 1, MSG_FILENAME_MAX);
    size_t bad;
    if (!utf8_valid(fn, n, &bad))
        return td_err_set(e, TD_EINVAL, "attachment %zu: the file name is not valid UTF-8",
                          idx + 1);
    if (utf8_has_ctl(fn, n) || strchr(fn, '/') || strchr(fn, '\\'))
        return td_err_set(e, TD_EINVAL,
                          "attachment %zu: the file name may not hold '/', '\\' or control "
                          "characters",
                          idx + 1);
    if (a->content_type) {
        const char *ct = a->content_type;
        const char *slash = strchr(ct, '/');
        bool ok = slash && slash != ct && slash[1] && strlen(ct) <= 127;
        for (const char *p = ct; ok && *p; p++) {
            unsigned char c = (unsigned char)*p;
            ok = p == slash || (c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c));
        }
        if (!ok)
            return td_err_set(e, TD_EINVAL,
                              "attachment %zu: the content type '%.40s' is not type/subtype",
                              idx + 1, ct);
        if (!strncasecmp(ct, "multipart/", 10) || !strncasecmp(ct, "message/", 8))
            return td_err_set(e, TD_EINVAL,
                              "attachment %zu: multipart/ and message/ types cannot be "
                              "attached as files; use application/octet-stream",
                              idx + 1);
    }
    if (a->len && !a->data)
        return td_err_set(e, TD_EINVAL, "attachment %zu has no data", idx + 1);
    return TD_OK;
}

static void attachment_part(wr *w, const msg_attachment *a)
{
    w_puts(w, "Content-Type: ");
    w_puts(w, a->content_type ? a->content_type : "application/octet-stream");
    put_param(w, "name", a->filename);
    w_puts(w, "\r\nContent-Disposition: attachment");
    put_param(w, "filename", a->filename);
    w_puts(w, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    put_b64(w, a->data, a->len);
}

/* ---- headers of one message ---- */

/* check_body refuses a body that is not UTF-8 or holds a NUL byte. It
 * reads 16 bytes at a time to the next byte >= 0x80 or NUL; only each run
 * of bytes >= 0x80 goes to the full check. That is enough: a UTF-8
 * sequence is all bytes >= 0x80, so valid text is valid text in every such
 * run. (A greeting with an Arabic or Thai name near the top used to send
 * the whole rest of the HTML to the byte-wise check.) */
static int check_body(const char *what, const char *s, size_t n, td_error *e)
{
    size_t i = 0;
    while (i < n) {
#if defined(__SSE2__)
        const __m128i zero = _mm_setzero_si128();
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, zero), _mm_cmpeq_epi8(v, zero))))
                break;
            i += 16;
        }
#else
        while (i + 8 <= n && !(load8(s + i) & HIGHS) && !memchr(s + i, '\0', 8))
            i += 8;
#endif
        while (i < n && s[i] && !(s[i] & 0x80))
            i++;
        if (i < n && !s[i])
            return td_err_set(e, TD_EINVAL, "the %s holds a NUL byte (byte %zu)", what, i + 1);
        size_t j = i;
        while (j < n && (s[j] & 0x80))
            j++;
        size_t bad = 0;
        if (j > i && !utf8_valid(s + i, j - i, &bad))
            return td_err_set(e, TD_EINVAL, "the %s is not valid UTF-8 (byte %zu)", what,
                              i + bad + 1);
        i = j;
    }
    return TD_OK;
}

static int message_id(const msg_envelope *env, const char *given, char *out, td_error *e)
{
    if (!given) {
        unsigned char r[16];
        randombytes_buf(r, sizeof r);
        char hex[32];
        for (size_t i = 0; i < 16; i++) {
            hex[2 * i] = "0123456789abcdef"[r[i] >> 4];
            hex[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
        }
        size_t dl = strlen(env->msgid_domain);
        if (32 + 1 + dl > MSG_ID_MAX)
            return td_err_set(e, TD_EINVAL, "the Message-ID domain is too long");
        memcpy(out, hex, 32);
        out[32] = '@';
        memcpy(out + 33, env->msgid_domain, dl + 1);
        return TD_OK;
    }
    size_t n = strlen(given);
    if (n >= 2 && given[0] == '<' && given[n - 1] == '>')
        given++, n -= 2;
    const char *at = memchr(given, '@', n);
    bool ok = n > 0 && n <= MSG_ID_MAX && at && at != given && at + 1 < given + n;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)given[i];
        ok = c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"' && c != '\\' &&
             (c != '@' || given + i == at);
    }
    if (!ok)
        return td_err_set(e, TD_EINVAL,
                          "the Message-ID must be left@right in printable ASCII (at most %d "
                          "characters, no spaces or <>)",
                          MSG_ID_MAX);
    memcpy(out, given, n);
    out[n] = '\0';
    return TD_OK;
}

/* unsubscribe writes List-Unsubscribe and, for an https URL,
 * List-Unsubscribe-Post (RFC 2369, RFC 8058). */
static int unsubscribe(buf *out, const msg_spec *s, td_error *e)
{
    if (!s->unsubscribe_url && !s->unsubscribe_mailto)
        return TD_OK;
    char v[MSG_URL_MAX + ADDR_MAX * 3 + 64];
    size_t k = 0;
    if (s->unsubscribe_url) {
        const char *u = s->unsubscribe_url;
        size_t n = strlen(u);
        if (n > MSG_URL_MAX || strncasecmp(u, "https://", 8) || n == 8)
            return td_err_set(e, TD_EINVAL,
                              "the unsubscribe URL must be an https:// URL of at most %d "
                              "characters (RFC 8058 one-click needs https)",
                              MSG_URL_MAX);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)u[i];
            if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
                return td_err_set(e, TD_EINVAL,
                                  "the unsubscribe URL holds a byte a URL may not (byte %zu); "
                                  "percent-encode it",
                                  i + 1);
        }
        v[k++] = '<';
        memcpy(v + k, u, n);
        k += n;
        v[k++] = '>';
    }
    if (s->unsubscribe_mailto) {
        addr a;
        td_error ae = {0};
        if (addr_parse(s->unsubscribe_mailto, strlen(s->unsubscribe_mailto), &a, &ae))
            return td_err_set(e, TD_EINVAL, "the unsubscribe address: %s", ae.msg);
        if (a.smtputf8) {
            addr_clear(&a);
            return td_err_set(e, TD_EINVAL, "the unsubscribe address must be ASCII");
        }
        if (k) {
            memcpy(v + k, ", ", 2);
            k += 2;
        }
        memcpy(v + k, "<mailto:", 8);
        k += 8;
        for (const char *p = a.address; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("-._~!$'*+;:@", c)) {
                v[k++] = (char)c;
            } else {
                v[k++] = '%';
                v[k++] = hexd[c >> 4];
                v[k++] = hexd[c & 15];
            }
        }
        addr_clear(&a);
        memcpy(v + k, "?subject=unsubscribe>", 21);
        k += 21;
    }
    int rc = hdr_raw(out, "List-Unsubscribe", v, k, e);
    if (!rc && s->unsubscribe_url) {
        static const char post[] = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
        rc = buf_append(out, post, sizeof post - 1);
        if (rc)
            td_err_set(e, rc, "the message is over its size cap");
    }
    return rc;
}

int msg_build(const msg_envelope *env, const msg_spec *s, buf *out, msg_info *info, td_error *e)
{
    msg_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    info->smtputf8 = env->smtputf8;
    size_t len0 = out->len;
    int rc = TD_OK;
    addr to = {0};
    buf text, scratch;
    buf_init(&text, BUF_NOCAP);
    buf_init(&scratch, BUF_NOCAP);

    if (!s->html && !s->text) {
        rc = td_err_set(e, TD_EINVAL, "the message needs an HTML or a text version");
        goto out;
    }
    if (s->html && (rc = check_body("HTML", s->html, s->html_len, e)))
        goto out;
    if (s->text && (rc = check_body("text version", s->text, s->text_len, e)))
        goto out;
    if (s->nattachments > MSG_MAX_ATTACHMENTS) {
        rc = td_err_set(e, TD_EINVAL, "at most %d attachments", MSG_MAX_ATTACHMENTS);
        goto out;
    }
    for (size_t i = 0; i < s->nattachments; i++)
        if ((rc = check_attachment(&s->attachments[i], i, e)))
            goto out;

    /* the envelope sender */
    const char *rp = s->return_path ? s->return_path : env->from_address;
    {
        addr a;
        td_error ae = {0};
        if (addr_parse(rp, strlen(rp), &a, &ae)) {
            rc = td_err_set(e, TD_EINVAL, "the return path: %s", ae.msg);
            goto out;
        }
        copy_str(info->mail_from, sizeof info->mail_from, a.address);
        info->smtputf8 |= a.smtputf8;
        addr_clear(&a);
    }
    if ((rc = message_id(env, s->message_id, info->message_id, e)))
        goto out;

    /* headers */
    if ((rc = hdr_date(out, "Date", s->date ? s->date : time(NULL)))) {
        td_err_set(e, rc, "the message is over its size cap");
        goto out;
    }
    if ((rc = buf_puts(out, "Message-ID: <")) || (rc = buf_puts(out, info->message_id)) ||
        (rc = buf_append(out, ">\r\n", 3))) {
        td_err_set(e, rc, "the message is over its size cap");
        goto out;
    }
    if ((rc = buf_append(out, env->hdrs.data, env->hdrs.len))) {
        td_err_set(e, rc, "the message is over its size cap");
        goto out;
    }
    if (!s->to) {
        rc = td_err_set(e, TD_EINVAL, "the message needs a To address");
        goto out;
    }
    if ((rc = mailbox_field(out, "To", "To", s->to, &to, &info->smtputf8, e)))
        goto out;
    copy_str(info->rcpt_to, sizeof info->rcpt_to, to.address);
    if ((rc = hdr_text(out, "Subject", s->subject ? s->subject : "",
                       s->subject ? s->subject_len : 0, e)))
        goto out;
    if ((rc = unsubscribe(out, s, e)))
        goto out;
    if ((rc = extra_headers(out, s->headers, s->nheaders, e)))
        goto out;

    /* body */
    const char *tx = s->text;
    size_t txn = s->text_len;
    if (!tx) {
        if ((rc = html2text(s->html, s->html_len, 0, &text, e)))
            goto out;
        tx = text.data;
        txn = text.len;
    }
    wr wbuf;
    wr *w = &wbuf;
    w->b = out;
    w->n = 0;
    w->rc = 0;
    w_puts(w, "MIME-Version: 1.0\r\n");
    if (s->nattachments)
        w_puts(w, "Content-Type: multipart/mixed; boundary=\"" BOUNDARY_MIX "\"\r\n\r\n"
                  "--" BOUNDARY_MIX "\r\n");
    if (s->html) {
        w_puts(w, "Content-Type: multipart/alternative; boundary=\"" BOUNDARY_ALT "\"\r\n\r\n"
                  "--" BOUNDARY_ALT "\r\n");
        text_part(w, "plain", tx, txn, &scratch);
        w_puts(w, "\r\n--" BOUNDARY_ALT "\r\n");
        text_part(w, "html", s->html, s->html_len, &scratch);
        w_puts(w, "\r\n--" BOUNDARY_ALT "--");
    } else {
        text_part(w, "plain", tx, txn, &scratch);
    }
    for (size_t i = 0; i < s->nattachments; i++) {
        w_puts(w, "\r\n--" BOUNDARY_MIX "\r\n");
        attachment_part(w, &s->attachments[i]);
    }
    if (s->nattachments)
        w_puts(w, "\r\n--" BOUNDARY_MIX "--");
    w_flush(w);
    /* the message ends with a line end */
    if (!w->rc && !(out->len >= 2 && !memcmp(out->data + out->len - 2, "\r\n", 2)))
        w->rc = buf_append(out, "\r\n", 2);
    rc = w->rc;
    if (rc)
        td_err_set(e, rc, "the message is over its size cap");
out:
    addr_clear(&to);
    buf_free(&text);
    buf_free(&scratch);
    if (rc)
        buf_truncate(out, len0);
    return rc;
}

/* ---- VERP ---- */

static bool verp_part_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > MSG_VERP_PART_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

int msg_verp_build(const char *base, const char *campaign, const char *token, const char *domain,
                   char *out, td_error *e)
{
    out[0] = '\0';
    if (!base || !campaign || !token || !domain || !verp_part_ok(base) || !verp_part_ok(campaign) ||
        !verp_part_ok(token))
        return td_err_set(e, TD_EINVAL,
                          "a VERP base, campaign and token must each be 1 to %d of a-z, 0-9, "
                          "'-' and '_'",
                          MSG_VERP_PART_MAX);
    char s[512];
    size_t n = 0;
    const char *parts[] = {base, "+", campaign, ".", token, "@", domain};
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        size_t pl = strlen(parts[k]);
        if (n + pl >= sizeof s)
            return td_err_set(e, TD_EINVAL, "the VERP domain is too long");
        memcpy(s + n, parts[k], pl);
        n += pl;
    }
    s[n] = '\0';
    addr a;
    td_error ae = {0};
    if (addr_parse(s, n, &a, &ae))
        return td_err_set(e, TD_EINVAL, "the VERP address is not valid: %s", ae.msg);
    copy_str(out, ADDR_MAX + 3, a.address);
    addr_clear(&a);
    return TD_OK;
}

int msg_verp_parse(const char *address, const char *base, msg_verp *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    addr a;
    td_error ae = {0};
    if (!address || addr_parse(address, strlen(address), &a, &ae))
        return td_err_set(e, TD_EINVAL, "not an address: %s", ae.msg);
    int rc = TD_OK;
    size_t bl = strlen(base);
    char local[ADDR_LOCAL_MAX + 1];
    size_t ln = strlen(a.local);
    if (ln > ADDR_LOCAL_MAX) {
        rc = td_err_set(e, TD_EINVAL, "the local part is too long for a VERP address");
        goto out;
    }
    for (size_t i = 0; i <= ln; i++) /* relays may change case; ours is lower */
        local[i] =
            a.local[i] >= 'A' && a.local[i] <= 'Z' ? (char)(a.local[i] - 'A' + 'a') : a.local[i];
    if (ln <= bl + 1 || strncmp(local, base, bl) || local[bl] != '+') {
        rc = td_err_set(e, TD_EINVAL, "the address does not start with '%s+'", base);
        goto out;
    }
    const char *c = local + bl + 1;
    const char *dot = strchr(c, '.');
    if (!dot || (size_t)(dot - c) > MSG_VERP_PART_MAX || strlen(dot + 1) > MSG_VERP_PART_MAX) {
        rc = td_err_set(e, TD_EINVAL, "the address has no campaign.token after '%s+'", base);
        goto out;
    }
    memcpy(out->campaign, c, (size_t)(dot - c));
    out->campaign[dot - c] = '\0';
    copy_str(out->token, sizeof out->token, dot + 1);
    if (!verp_part_ok(out->campaign) || !verp_part_ok(out->token)) {
        rc = td_err_set(e, TD_EINVAL,
                        "the campaign or token holds a character VERP never "
                        "writes");
        goto out;
    }
    copy_str(out->domain, sizeof out->domain, a.domain);
out:
    if (rc)
        memset(out, 0, sizeof *out);
    addr_clear(&a);
    return rc;
}

size_t msg_text_unescape(char *s, size_t len)
{
    static const struct {
        const char *ent;
        size_t n;
        char c;
    } ents[] = {{"&amp;", 5, '&'},
                {"&lt;", 4, '<'},
                {"&gt;", 4, '>'},
                {"&quot;", 6, '"'},
                {"&#39;", 5, '\''}};
    /* From one '&' to the next in a span (memchr): a text part is a few KB
     * a recipient with few entities, and a byte-wise copy of it was most of
     * this function's time. */
    size_t r = 0, o = 0;
    while (r < len) {
        const char *amp = memchr(s + r, '&', len - r);
        size_t stop = amp ? (size_t)(amp - s) : len;
        if (o != r)
            memmove(s + o, s + r, stop - r);
        o += stop - r;
        r = stop;
        if (!amp)
            break;
        size_t k = 0;
        for (; k < sizeof ents / sizeof ents[0]; k++)
            if (len - r >= ents[k].n && !memcmp(s + r, ents[k].ent, ents[k].n))
                break;
        if (k < sizeof ents / sizeof ents[0]) {
            s[o++] = ents[k].c;
            r += ents[k].n;
        } else {
            s[o++] = s[r++];
        }
    }
    if (o < len)
        s[o] = '\0';
    return o;
}
