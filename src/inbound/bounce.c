/* bounce: inbound message classification and failed-recipient extraction
 * (see bounce.h and docs/internals/bounce.md).
 *
 * One pass over the MIME tree (GMime) collects the pieces: the notice (text
 * parts outside any returned message), the delivery-status and
 * feedback-report parts, and the returned original. Then, in order of
 * trust: ARF complaint, Amazon SES JSON, RFC 3464 report (a real part, or
 * one pasted into the text), and last the prose of the notice. A message
 * that is none of these is an auto-reply (other), a reply, or other. */
#include "inbound/bounce.h"

#include "inbound/dsn.h"
#include "inbound/notice.h"
#include "inbound/reason.h"
#include "mime/addr.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#include <gmime/gmime.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT_CAP (256u << 10) /* bytes of notice / report text kept */
#define DIAG_CAP 2048         /* bytes of diagnostic kept per recipient */

/* ---------------------------------------------------------------- init */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_setup(void)
{
    g_mime_init();
}

int bounce_init(void)
{
    pthread_once(&gmime_once, gmime_setup);
    return reason_init();
}

/* ------------------------------------------------------- small helpers */

/* utf8_clean returns a malloc'd copy of s[0..n) that is valid UTF-8: each
 * invalid byte becomes U+FFFD and NUL bytes are dropped. */
static char *utf8_clean(const char *s, size_t n)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    while (n) {
        size_t bad = n;
        if (utf8_valid(s, n, &bad))
            bad = n;
        for (size_t i = 0; i < bad; i++)
            if (s[i] != '\0')
                buf_putc(&b, s[i]);
        if (bad == n)
            break;
        buf_puts(&b, "\xef\xbf\xbd");
        s += bad + 1;
        n -= bad + 1;
    }
    char *r = buf_steal(&b);
    buf_free(&b);
    return r;
}

char *bounce_utf8_clean(const char *s, size_t n)
{
    return utf8_clean(s, n);
}

static char *clean_str(const char *s)
{
    return utf8_clean(s ? s : "", s ? strlen(s) : 0);
}

static bool ci_has(const char *hay, const char *needle)
{
    if (!hay)
        return false;
    size_t k = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (!strncasecmp(p, needle, k))
            return true;
    return false;
}

static void append_capped(buf *b, const char *s, size_t n)
{
    if (b->len >= b->max)
        return;
    if (n > b->max - b->len)
        n = b->max - b->len;
    (void)buf_append(b, s, n);
}

/* Trims white space and one pair of <> around an address in place. */
static char *addr_trim(char *a)
{
    while (*a == ' ' || *a == '\t' || *a == '<' || *a == '"')
        a++;
    size_t n = strlen(a);
    while (n && strchr(" \t>\"\r\n;,", a[n - 1]))
        a[--n] = '\0';
    return a;
}

/* The first e-mail address in s (malloc'd), or NULL. */
static char *first_addr(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@') {
            size_t b, e;
            if (notice_addr_at(s, n, i, &b, &e))
                return xstrndup(s + b, e - b);
        }
    return NULL;
}

/* a as valid UTF-8 (a is freed; NULL stays NULL). */
static char *clean_addr(char *a)
{
    if (!a)
        return NULL;
    char *c = clean_str(a);
    free(a);
    return c;
}

/* ------------------------------------------------------------ MIME walk */

typedef struct collect {
    buf notice;       /* text/plain outside returned messages */
    buf html;         /* text/html, used when there is no text/plain */
    buf dsn;          /* message/delivery-status parts */
    buf arf;          /* message/feedback-report parts */
    buf orig_hdrs;    /* text/rfc822-headers */
    GMimeMessage *orig; /* first returned message (borrowed from the tree) */
    size_t parts;
    bool has_dsn_part, has_arf_part;
} collect;

/* Decoded (transfer-encoding removed) bytes of a leaf, appended to b. */
static void leaf_bytes(GMimePart *part, buf *b)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w)
        return;
    GMimeStream *ms = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, ms);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
    if (ba && ba->len)
        append_capped(b, (const char *)ba->data, ba->len);
    append_capped(b, "\n\n", 2);
    g_object_unref(ms);
}

/* Text of a text part converted to UTF-8 by GMime (charset aware). */
static void leaf_text(GMimeObject *obj, buf *b)
{
    if (GMIME_IS_TEXT_PART(obj)) {
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
        if (t) {
            append_capped(b, t, strlen(t));
            append_capped(b, "\n", 1);
            g_free(t);
        }
        return;
    }
    leaf_bytes(GMIME_PART(obj), b);
}

static void walk(GMimeObject *obj, int depth, collect *c)
{
    if (!obj || depth > BOUNCE_MAX_DEPTH || c->parts >= BOUNCE_MAX_PARTS)
        return;
    c->parts++;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        if (n == 0) {
            /* A boundary that is never used: the body is all prologue. */
            const char *pro = g_mime_multipart_get_prologue(mp);
            if (pro)
                append_capped(&c->notice, pro, strlen(pro));
        }
        for (int i = 0; i < n && c->parts < BOUNCE_MAX_PARTS; i++)
            walk(g_mime_multipart_get_part(mp, i), depth + 1, c);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        /* The returned original: keep the first, never read its text as
         * part of the notice (it may itself be a bounce). */
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (!ct || g_mime_content_type_is_type(ct, "message", "delivery-status") ||
            g_mime_content_type_is_type(ct, "message", "feedback-report"))
            return;
        if (m && !c->orig)
            c->orig = m;
        return;
    }
    if (!GMIME_IS_PART(obj) || !ct)
        return;
    GMimePart *part = GMIME_PART(obj);
    if (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
        g_mime_content_type_is_type(ct, "message", "global-delivery-status")) {
        c->has_dsn_part = true;
        leaf_bytes(part, &c->dsn);
    } else if (g_mime_content_type_is_type(ct, "message", "feedback-report")) {
        c->has_arf_part = true;
        leaf_bytes(part, &c->arf);
    } else if (g_mime_content_type_is_type(ct, "text", "rfc822-headers") ||
               g_mime_content_type_is_type(ct, "text", "rfc822-header") ||
               g_mime_content_type_is_type(ct, "message", "rfc822-headers") ||
               g_mime_content_type_is_type(ct, "message", "global-headers")) {
        if (!c->orig_hdrs.len)
            leaf_bytes(part, &c->orig_hdrs);
    } else if (g_mime_content_type_is_type(ct, "text", "plain")) {
        leaf_text(obj, &c->notice);
    } else if (g_mime_content_type_is_type(ct, "text", "html")) {
        leaf_text(obj, &c->html);
    } else if (g_mime_content_type_is_type(ct, "message", "rfc822")) {
        /* A returned message GMime did not parse as one: its headers. */
        if (!c->orig_hdrs.len)
            leaf_bytes(part, &c->orig_hdrs);
    }
}

/* Crude HTML to text: tags become line breaks or nothing, a few entities
 * are decoded. Enough for the diagnostic phrases. */
static void html_to_text(const char *h, size_t n, buf *out)
{
    bool in_tag = false, in_style = false;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (in_tag) {
            if (ch == '>')
                in_tag = false;
            continue;
        }
        if (ch == '<') {
            in_tag = true;
            if (!strncasecmp(h + i, "<style", 6) || !strncasecmp(h + i, "<script", 7))
                in_style = true;
            else if (!strncasecmp(h + i, "</style", 7) || !strncasecmp(h + i, "</script", 8))
                in_style = false;
            if (!strncasecmp(h + i, "<br", 3) || !strncasecmp(h + i, "<p", 2) || !strncasecmp(h + i, "</p", 3) ||
                !strncasecmp(h + i, "<tr", 3) || !strncasecmp(h + i, "<div", 4) || !strncasecmp(h + i, "</td", 4))
                append_capped(out, "\n", 1);
            continue;
        }
        if (in_style)
            continue;
        if (ch == '&') {
            static const struct {
                const char *ent, *txt;
            } e[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&nbsp;", " "}, {"&quot;", "\""}, {"&#39;", "'"}};
            bool done = false;
            for (size_t k = 0; k < sizeof e / sizeof e[0] && !done; k++)
                if (!strncasecmp(h + i, e[k].ent, strlen(e[k].ent))) {
                    append_capped(out, e[k].txt, strlen(e[k].txt));
                    i += strlen(e[k].ent) - 1;
                    done = true;
                }
            if (done)
                continue;
        }
        append_capped(out, &ch, 1);
    }
}

/* ---------------------------------------------------- result building */

static void push_rcpt(bounce_result *r, const char *address, const char *status, int reply_code, const char *reason,
                      bool hard, const char *diag)
{
    if (r->nrcpt >= BOUNCE_MAX_RCPT)
        return;
    r->rcpt = xrealloc(r->rcpt, (r->nrcpt + 1) * sizeof *r->rcpt);
    bounce_rcpt *x = &r->rcpt[r->nrcpt++];
    /* The address as mime/addr normalises it (domain lower-case, IDN in
     * A-labels), so it compares equal to the subscriber's; what it refuses
     * (a broken address in a broken bounce) is kept as the message wrote
     * it, for a person to read. */
    x->address = clean_str(address);
    char *norm = addr_normalize(x->address, NULL);
    if (norm) {
        free(x->address);
        x->address = norm;
    }
    snprintf(x->status, sizeof x->status, "%s", status ? status : "");
    x->reply_code = reply_code;
    x->reason = reason;
    x->hard = hard;
    size_t dn = diag ? strlen(diag) : 0;
    if (dn > DIAG_CAP)
        dn = DIAG_CAP;
    /* Keep whole UTF-8 sequences when cutting. */
    while (dn && diag && dn < strlen(diag) && ((unsigned char)diag[dn] & 0xC0) == 0x80)
        dn--;
    char *d = utf8_clean(diag ? diag : "", dn);
    /* One line: the diagnostic is shown in lists. */
    for (char *p = d; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    x->diagnostic = d;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The first RFC 3463 code (class 2, 4 or 5) in s, copied into out. */
static bool find_status(const char *s, char out[16], bool allow2)
{
    if (!s)
        return false;
    for (const char *p = s; *p; p++) {
        if ((*p != '4' && *p != '5' && !(allow2 && *p == '2')) || p[1] != '.')
            continue;
        if (p > s && (is_digit(p[-1]) || p[-1] == '.'))
            continue;
        const char *q = p + 2;
        int d1 = 0, d2 = 0;
        while (is_digit(*q) && d1 < 4) {
            q++;
            d1++;
        }
        if (!d1 || d1 > 3 || *q != '.')
            continue;
        q++;
        while (is_digit(*q) && d2 < 4) {
            q++;
            d2++;
        }
        if (!d2 || d2 > 3 || *q == '.' || is_digit(*q))
            continue;
        size_t n = (size_t)(q - p);
        memcpy(out, p, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* The first SMTP reply code 4xx/5xx standing alone in s, or 0. */
static int find_reply_code(const char *s)
{
    if (!s)
        return 0;
    for (const char *p = s; *p; p++) {
        if ((*p != '4' && *p != '5') || !is_digit(p[1]) || !is_digit(p[2]))
            continue;
        if (p[1] > '5')
            continue;
        if (p > s && (is_digit(p[-1]) || p[-1] == '.' || p[-1] == '#' || p[-1] == '-' || p[-1] == '/' ||
                      p[-1] == '=' || p[-1] == '+' || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                      (p[-1] >= 'a' && p[-1] <= 'z')))
            continue;
        char f = p[3];
        if (f == '\0' || f == ' ' || f == '-' || f == ':' || f == ',' || f == ')' || f == '\n' || f == '\r' ||
            f == '\t' || f == ']')
            return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    }
    return 0;
}

/* Where in the SMTP session the failure happened, from the transcript. */
static bool at_mail_from(const char *d)
{
    return ci_has(d, "after mail from") || ci_has(d, "in reply to mail from") || ci_has(d, ">>> mail from");
}

static bool valid_status(const char *s)
{
    char tmp[16];
    return s && find_status(s, tmp, true) && !strncmp(tmp, s, strlen(tmp));
}

/* Remote hosts whose wording does not mean what it says. Japanese mobile
 * carriers answer "Unknown user" / "550 : User unknown" when the
 * subscriber's reception filter refuses the sender: the address lives. */
static const struct {
    const char *host, *text, *reason;
} rhosts[] = {
    {"docomo.ne.jp", "unknown user", "rejected"},
    {"mfsmax.", "unknown user", "rejected"},
    {"ezweb.ne.jp", "550 : user unknown", "filtered"},
    {"au.com", "550 : user unknown", "filtered"},
};

/* finish computes status, class, reason and hardness for one recipient
 * and appends it. status_field is a Status: value or NULL; action an
 * Action: value or NULL; diag the server's words; context more text that
 * may say "delayed". */
static void finish(bounce_result *r, const char *rcpt, const char *status_field, const char *action,
                   const char *diag, const char *context, const char *remote_mta)
{
    char st[16] = "";
    char from_diag[16] = "";
    bool delayed = action && (!strncasecmp(action, "delayed", 7) || !strncasecmp(action, "expired", 7));
    bool delivered = action && (!strncasecmp(action, "delivered", 9) || !strncasecmp(action, "relayed", 7) ||
                                !strncasecmp(action, "expanded", 8));
    bool have_diag_status = find_status(diag, from_diag, delivered);
    if (status_field && valid_status(status_field))
        find_status(status_field, st, true);
    int reply = find_reply_code(diag);

    /* The remote server's own code beats the reporting MTA's summary when
     * they disagree on the class, or when the summary is a bare X.0.0. */
    if (st[0] && have_diag_status && (from_diag[0] != st[0] || !strcmp(st + 1, ".0.0")))
        snprintf(st, sizeof st, "%s", from_diag);
    if (!st[0] && have_diag_status)
        snprintf(st, sizeof st, "%s", from_diag);

    int cls;
    if (st[0])
        cls = st[0] - '0';
    else if (reply)
        cls = reply / 100;
    else if (delivered)
        cls = 2;
    else if (delayed || reason_is_temporary_text(diag, diag ? strlen(diag) : 0) ||
             reason_is_temporary_text(context, context ? strlen(context) : 0))
        cls = 4;
    else
        cls = 5;

    bool specific = false;
    const char *t = reason_from_text(diag, diag ? strlen(diag) : 0, &specific);
    const char *s = st[0] ? reason_from_status(st) : NULL;
    const char *reason;
    if (cls == 2)
        reason = "delivered";
    else if (t && specific)
        reason = t;
    else if (s)
        reason = s;
    else if (t)
        reason = t;
    else if (delayed)
        reason = "expired";
    else if (diag && *diag)
        reason = "onhold";
    else
        reason = "undefined";
    /* "User unknown" under a status that says something else (5.7.1,
     * 5.2.1) is a filter's wording unless the RCPT command got it. */
    int subj = st[0] ? atoi(st + 2) : 0;
    if (!strcmp(reason, "userunknown") && subj != 0 && subj != 1 && subj != 4 && !ci_has(diag, "rcpt to") &&
        !ci_has(context, "rcpt to")) {
        const char *sr = reason_from_status(st);
        reason = sr && !reason_is_hard(sr, 5) ? sr : "filtered";
    }
    for (size_t i = 0; remote_mta && i < sizeof rhosts / sizeof rhosts[0]; i++)
        if (ci_has(remote_mta, rhosts[i].host) && ci_has(diag, rhosts[i].text))
            reason = rhosts[i].reason;
    if (at_mail_from(diag) && (!strcmp(reason, "userunknown") || !strcmp(reason, "hostunknown") ||
                               !strcmp(reason, "mailboxfull") || !strcmp(reason, "suspend")))
        reason = "rejected";
    if (!st[0])
        reason_pseudo_status(reason, cls, st);
    else if (st[0] - '0' != cls)
        st[0] = (char)('0' + cls);
    push_rcpt(r, rcpt, st, reply, reason, reason_is_hard(reason, cls), diag);
}

/* Strips "smtp;" / "rfc822;" style type prefixes. */
static const char *after_type(const char *v)
{
    if (!v)
        return NULL;
    const char *semi = strchr(v, ';');
    if (semi && semi - v < 24) {
        bool word = true;
        for (const char *p = v; p < semi; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || is_digit(*p) || *p == '-' || *p == ' '))
                word = false;
        if (word) {
            v = semi + 1;
            while (*v == ' ')
                v++;
        }
    }
    return v;
}

/* Recipients of the per-recipient groups of a DSN. Returns how many failed
 * or delayed ones were added; delivered ones are added only when there is
 * nothing else (a success notice). */
static size_t from_dsn(bounce_result *r, const dsn_doc *d, const char *notice, size_t notice_len)
{
    size_t added = 0, success = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < d->n && r->nrcpt < BOUNCE_MAX_RCPT; i++) {
            const dsn_group *g = &d->g[i];
            if (!dsn_has_recipient(g))
                continue;
            const char *action = dsn_get(g, "Action");
            bool ok = action && (!strncasecmp(action, "delivered", 9) || !strncasecmp(action, "relayed", 7) ||
                                 !strncasecmp(action, "expanded", 8));
            if (pass == 0 && ok) {
                success++;
                continue;
            }
            if (pass == 1 && !ok)
                continue;
            const char *fr = dsn_get(g, "Final-Recipient");
            if (!fr || !strchr(fr, '@'))
                fr = dsn_get(g, "Original-Recipient") ? dsn_get(g, "Original-Recipient") : fr;
            char *a = xstrdup(after_type(fr));
            char *fa = addr_trim(a);
            const char *diag = after_type(dsn_get(g, "Diagnostic-Code"));
            char *extra = NULL;
            bool specific = false;
            if (!diag || !*diag || !reason_from_text(diag, strlen(diag), &specific) || !specific) {
                /* The report says little: the notice may say more. */
                extra = notice && *fa ? notice_block_for(notice, notice_len, fa) : NULL;
                if (extra && diag && *diag) {
                    char *both = xasprintf("%s\n%s", diag, extra);
                    free(extra);
                    extra = both;
                }
            }
            const char *dtype = dsn_get(g, "Diagnostic-Code");
            finish(r, fa, dsn_get(g, "Status"), action, extra ? extra : (diag ? diag : ""), notice,
                   dsn_get(g, "Remote-MTA"));
            /* A local delivery agent failing is a mailer error. */
            if (dtype && !strncasecmp(dtype, "x-unix", 6) && r->nrcpt &&
                !strcmp(r->rcpt[r->nrcpt - 1].reason, "onhold"))
                r->rcpt[r->nrcpt - 1].reason = "mailererror";
            free(extra);
            free(a);
            added++;
        }
        if (added || !success)
            break;
    }
    return added;
}

/* ------------------------------------------------------------- headers */

static const char *hdr(GMimeObject *o, const char *name)
{
    return o ? g_mime_object_get_header(o, name) : NULL;
}

static void keep_orig_headers(bounce_result *r, const char *name, const char *value)
{
    if (!name || !value || r->norig_headers >= BOUNCE_MAX_HEADERS)
        return;
    if (strncasecmp(name, "X-", 2) && strncasecmp(name, "List-", 5) &&
        strcasecmp(name, "Feedback-ID"))
        return;
    r->orig_headers = xrealloc(r->orig_headers, (r->norig_headers + 1) * sizeof *r->orig_headers);
    r->orig_headers[r->norig_headers].name = clean_str(name);
    size_t vn = strlen(value);
    r->orig_headers[r->norig_headers].value = utf8_clean(value, vn > 1024 ? 1024 : vn);
    r->norig_headers++;
}

static void set_message_id(bounce_result *r, const char *v)
{
    if (!v || r->orig_message_id)
        return;
    char *c = xstrdup(v);
    char *t = addr_trim(c);
    if (*t)
        r->orig_message_id = clean_str(t);
    free(c);
}

/* The returned original's identity, from whichever form it came in. Also
 * gives its From and To, for exclusion and as a last-resort recipient. */
static void original_info(bounce_result *r, collect *c, const char *notice_tail, size_t tail_len, char **from,
                          char **to)
{
    *from = *to = NULL;
    if (c->orig) {
        GMimeObject *o = GMIME_OBJECT(c->orig);
        set_message_id(r, g_mime_message_get_message_id(c->orig));
        GMimeHeaderList *hl = g_mime_object_get_header_list(o);
        int n = hl ? g_mime_header_list_get_count(hl) : 0;
        for (int i = 0; i < n; i++) {
            GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
            keep_orig_headers(r, g_mime_header_get_name(h), g_mime_header_get_value(h));
        }
        *from = first_addr(hdr(o, "From"));
        *to = first_addr(hdr(o, "To"));
        if (!r->orig_return_path && hdr(o, "Return-Path"))
            r->orig_return_path = clean_addr(first_addr(hdr(o, "Return-Path")));
        if (r->orig_message_id || r->norig_headers || *from || *to)
            return;
    }
    dsn_doc d;
    if (c->orig_hdrs.len)
        dsn_parse(c->orig_hdrs.data, c->orig_hdrs.len, &d);
    else
        dsn_parse(notice_tail, tail_len > 65536 ? 65536 : tail_len, &d);
    for (size_t i = 0; i < d.n; i++) {
        const dsn_group *g = &d.g[i];
        if (!dsn_get(g, "Message-ID") && !dsn_get(g, "From") && !dsn_get(g, "To"))
            continue;
        set_message_id(r, dsn_get(g, "Message-ID"));
        if (!r->orig_return_path && dsn_get(g, "Return-Path"))
            r->orig_return_path = clean_addr(first_addr(dsn_get(g, "Return-Path")));
        for (size_t k = 0; k < g->n; k++)
            keep_orig_headers(r, g->f[k].name, g->f[k].value);
        if (!*from)
            *from = first_addr(dsn_get(g, "From"));
        if (!*to)
            *to = first_addr(dsn_get(g, "To"));
        break;
    }
    dsn_doc_free(&d);
}

/* -------------------------------------------------- kind-specific reads */

/* ARF (RFC 5965) and provider feedback loops. */
static void read_complaint(bounce_result *r, collect *c, const char *orig_to)
{
    r->kind = BOUNCE_KIND_COMPLAINT;
    dsn_doc d;
    dsn_parse(c->arf.data, c->arf.len, &d);
    for (size_t i = 0; i < d.n; i++) {
        const dsn_group *g = &d.g[i];
        const char *ft = dsn_get(g, "Feedback-Type");
        if (ft && !r->feedback_type)
            r->feedback_type = clean_str(ft);
        const char *omf = dsn_get(g, "Original-Mail-From");
        if (omf) {
            free(r->orig_return_path); /* the report's word beats a header's */
            r->orig_return_path = clean_addr(first_addr(omf));
        }
        for (size_t k = 0; k < g->n; k++)
            if (!strcasecmp(g->f[k].name, "Original-Rcpt-To") || !strcasecmp(g->f[k].name, "Removal-Recipient")) {
                char *a = xstrdup(after_type(g->f[k].value));
                push_rcpt(r, addr_trim(a), "", 0, "feedback", false, ft ? ft : "");
                free(a);
            }
    }
    dsn_doc_free(&d);
    if (!r->nrcpt && orig_to)
        push_rcpt(r, orig_to, "", 0, "feedback", false, r->feedback_type ? r->feedback_type : "");
}

/* Amazon SES notifications (bounce, complaint, delivery), also wrapped in
 * an SNS envelope. The JSON arrives hard-wrapped: line breaks are removed
 * before parsing. */
static json_t *ses_load(const char *text, size_t len)
{
    const char *brace = memchr(text, '{', len);
    if (!brace)
        return NULL;
    size_t off = (size_t)(brace - text);
    json_t *j = NULL;
    for (int attempt = 0; attempt < 2 && !j; attempt++) {
        buf b;
        buf_init(&b, TEXT_CAP);
        for (size_t i = off; i < len; i++) {
            if (text[i] == '\r')
                continue;
            if (text[i] == '\n') {
                if (i + 1 < len && text[i + 1] == '\n')
                    break; /* end of the JSON paragraph */
                if (attempt == 0 && i + 1 < len && text[i + 1] == ' ')
                    i++;
                continue;
            }
            buf_putc(&b, text[i]);
        }
        j = json_loadb(b.data, b.len, JSON_DISABLE_EOF_CHECK, NULL);
        buf_free(&b);
    }
    if (j && json_is_string(json_object_get(j, "Message"))) {
        const char *inner = json_string_value(json_object_get(j, "Message"));
        json_t *k = json_loads(inner, 0, NULL);
        json_decref(j);
        j = k;
    }
    if (j && !json_is_string(json_object_get(j, "notificationType")) &&
        !json_is_string(json_object_get(j, "eventType"))) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool read_ses(bounce_result *r, const char *text, size_t len)
{
    json_t *j = ses_load(text, len);
    if (!j)
        return false;
    const char *type = json_string_value(json_object_get(j, "notificationType"));
    if (!type)
        type = json_string_value(json_object_get(j, "eventType"));
    if (!strcasecmp(type, "Complaint")) {
        r->kind = BOUNCE_KIND_COMPLAINT;
        json_t *c = json_object_get(j, "complaint");
        const char *ft = json_string_value(json_object_get(c, "complaintFeedbackType"));
        r->feedback_type = xstrdup(ft ? ft : "abuse");
        json_t *list = json_object_get(c, "complainedRecipients");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            const char *a = json_string_value(json_object_get(e, "emailAddress"));
            if (a)
                push_rcpt(r, a, "", 0, "feedback", false, r->feedback_type);
        }
    } else if (!strcasecmp(type, "Bounce")) {
        r->kind = BOUNCE_KIND_BOUNCE;
        json_t *b = json_object_get(j, "bounce");
        const char *bt = json_string_value(json_object_get(b, "bounceType"));
        bool transient = bt && strcasecmp(bt, "Permanent");
        json_t *list = json_object_get(b, "bouncedRecipients");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            const char *a = json_string_value(json_object_get(e, "emailAddress"));
            const char *st = json_string_value(json_object_get(e, "status"));
            const char *dc = after_type(json_string_value(json_object_get(e, "diagnosticCode")));
            const char *act = json_string_value(json_object_get(e, "action"));
            if (a)
                finish(r, a, st, transient && !act ? "delayed" : act, dc ? dc : "", NULL, NULL);
        }
    } else if (!strcasecmp(type, "Delivery")) {
        r->kind = BOUNCE_KIND_OTHER;
        json_t *dl = json_object_get(j, "delivery");
        const char *resp = json_string_value(json_object_get(dl, "smtpResponse"));
        json_t *list = json_object_get(dl, "recipients");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            const char *a = json_string_value(e);
            if (a)
                finish(r, a, NULL, "delivered", resp ? resp : "", NULL, NULL);
        }
    }
    json_decref(j);
    return true;
}

/* ------------------------------------------------------ classification */

static bool is_daemon_sender(const char *from)
{
    static const char *const w[] = {"mailer-daemon", "mailer_daemon", "maildaemon", "postmaster", "post_master",
                                    "mail delivery", "mail-daemon", "mdaemon", "delivery subsystem",
                                    "mail administrator", "system administrator"};
    for (size_t i = 0; from && i < sizeof w / sizeof w[0]; i++)
        if (ci_has(from, w[i]))
            return true;
    return false;
}

static bool reply_prefix(const char *subj)
{
    static const char *const p[] = {"re:", "re :", "aw:", "sv:", "vs:", "antw:", "rif:", "odp:", "fw:", "fwd:",
                                    "tr:", "wg:", "r:", "\xe5\x9b\x9e\xe5\xa4\x8d", "\xe7\xad\x94\xe5\xa4\x8d"};
    if (!subj)
        return false;
    while (*subj == ' ')
        subj++;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (!strncasecmp(subj, p[i], strlen(p[i])))
            return true;
    return false;
}

static bool bounce_subject(const char *s)
{
    static const char *const w[] = {
        "undeliver", "delivery status notification", "delivery failure", "delivery failed", "failed delivery",
        "failure delivery", "failure notice", "returned mail", "mail delivery", "delivery notification",
        "non-delivery", "nondelivery", "non delivery", "could not be delivered", "mail system error",
        "returning message", "delivery has failed", "delivery problem", "not delivered", "delivery report",
        "could not send", "delayed mail", "delivery delayed", "mail failure", "delivery error",
        "returned to sender", "errors from", "message status", "rejected:", "bounce",
    };
    if (!s || reply_prefix(s))
        return false;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (ci_has(s, w[i]))
            return true;
    return false;
}

static bool bounce_body(const char *t, size_t n)
{
    static const char *const w[] = {
        "could not be delivered", "couldn't be delivered", "wasn't able to deliver", "was not able to deliver",
        "unable to deliver", "failed permanently", "permanent error", "fatal error", "following address",
        "following recipient", "did not reach", "was not delivered", "not delivered to", "undeliverable",
        "transcript of session", "does not like recipient", "delivery has failed", "delivery failed",
        "message not delivered", "delivery to the following", "error delivering", "could not deliver",
        "has been delayed", "returned to sender", "delivery status notification", "failure reasons",
        "was rejected", "not be delivered", "mail delivery system", "delivery software",
    };
    if (n > 16384)
        n = 16384;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
            size_t wl = strlen(w[k]);
            if (wl <= n - i && (t[i] | 0x20) == w[k][0] && !strncasecmp(t + i, w[k], wl))
                return true;
        }
    return false;
}

static bool is_auto_reply(GMimeObject *m)
{
    const char *as = hdr(m, "Auto-Submitted");
    if (as && strncasecmp(as, "no", 2))
        return true;
    if (hdr(m, "X-Autoreply") || hdr(m, "X-Autorespond") || hdr(m, "X-Autoresponder") || hdr(m, "X-Vacation") ||
        hdr(m, "X-Auto-Reply"))
        return true;
    const char *pr = hdr(m, "Precedence");
    if (pr && (ci_has(pr, "auto_reply") || ci_has(pr, "bulk") || ci_has(pr, "junk") || ci_has(pr, "list")))
        return true;
    const char *s = hdr(m, "Subject");
    static const char *const w[] = {"out of office", "out of the office", "auto reply", "autoreply", "auto-reply",
                                    "automatic reply", "auto response", "autoresponse", "vacation", "away from",
                                    "abwesenheit", "absence", "r\xc3\xa9ponse automatique", "automatische antwort",
                                    "respuesta autom", "risposta automatica", "on leave", "\xe8\x87\xaa\xe5\x8b\x95"};
    for (size_t i = 0; s && i < sizeof w / sizeof w[0]; i++)
        if (ci_has(s, w[i]))
            return true;
    return false;
}

/* Counts lines that begin with Content-Type: and cuts the input at the
 * one past the part cap, so GMime's own (recursive) parser never sees more
 * nesting than we would follow. */
static size_t part_guard(const char *d, size_t n)
{
    size_t seen = 0;
    for (size_t i = 0; i + 13 < n; i++) {
        if ((i == 0 || d[i - 1] == '\n') && (d[i] == 'C' || d[i] == 'c') && !strncasecmp(d + i, "content-type:", 13))
            if (++seen > BOUNCE_MAX_PARTS)
                return i;
    }
    return n;
}

size_t bounce_part_guard(const char *d, size_t n)
{
    return part_guard(d, n);
}

/* Addresses in a header value, for the exclusion list. */
static size_t header_addrs(const char *v, char **out, size_t max)
{
    size_t k = 0;
    if (!v)
        return 0;
    size_t n = strlen(v);
    for (size_t i = 0; i < n && k < max; i++)
        if (v[i] == '@') {
            size_t b, e;
            if (notice_addr_at(v, n, i, &b, &e)) {
                out[k++] = xstrndup(v + b, e - b);
                i = e;
            }
        }
    return k;
}

int bounce_parse(const char *data, size_t len, bounce_result **out, td_error *err)
{
    *out = NULL;
    if (bounce_init() != 0)
        return td_err_set(err, TD_EINTERNAL, "bounce rules failed to compile");
    if (!data)
        return td_err_set(err, TD_EINVAL, "no message");
    if (len > BOUNCE_MAX_INPUT)
        len = BOUNCE_MAX_INPUT;
    /* NUL bytes have no place in mail and would cut the C strings the
     * report is read into ("nul\0@example.com" read as "nul"): they go.
     * GMime copies the input anyway, so one copy more costs little. */
    char *clean = NULL;
    if (memchr(data, '\0', len)) {
        clean = xmalloc(len ? len : 1);
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (data[i] != '\0')
                clean[k++] = data[i];
        data = clean;
        len = k;
    }
    len = part_guard(data, len);

    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    free(clean);
    if (!msg)
        return td_err_set(err, TD_EINVAL, "not a mail message (no header block could be parsed)");

    bounce_result *r = xcalloc(1, sizeof *r);
    GMimeObject *top = GMIME_OBJECT(msg);
    collect c = {0};
    buf_init(&c.notice, TEXT_CAP);
    buf_init(&c.html, TEXT_CAP);
    buf_init(&c.dsn, TEXT_CAP);
    buf_init(&c.arf, TEXT_CAP);
    buf_init(&c.orig_hdrs, TEXT_CAP);
    walk(g_mime_message_get_mime_part(msg), 0, &c);
    if (!c.notice.len && c.html.len)
        html_to_text(c.html.data, c.html.len, &c.notice);

    GMimeContentType *ct = g_mime_object_get_content_type(g_mime_message_get_mime_part(msg) ?
                                                             g_mime_message_get_mime_part(msg) : top);
    const char *rtype = ct ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;
    const char *from = hdr(top, "From");
    const char *subject = hdr(top, "Subject");
    const char *xfailed = hdr(top, "X-Failed-Recipients");

    size_t cut = notice_cut(c.notice.data, c.notice.len);
    const char *tail = c.notice.data + cut;
    char *ofrom = NULL, *oto = NULL;
    original_info(r, &c, tail, c.notice.len - cut, &ofrom, &oto);

    /* Addresses that are the sender's side, never a failed recipient. */
    char *ex[16];
    size_t nex = 0;
    nex += header_addrs(hdr(top, "To"), ex + nex, 8 - nex);
    if (ofrom && nex < 16)
        ex[nex++] = xstrdup(ofrom);
    nex += header_addrs(hdr(top, "Return-Path"), ex + nex, 16 - nex);

    bool arf = c.has_arf_part || (rtype && !strcasecmp(rtype, "feedback-report")) ||
               (c.orig && hdr(GMIME_OBJECT(c.orig), "X-HmXmrOriginalRecipient")) ||
               hdr(top, "X-HmXmrOriginalRecipient");
    bool done = false;
    if (arf) {
        const char *hm = c.orig ? hdr(GMIME_OBJECT(c.orig), "X-HmXmrOriginalRecipient") : NULL;
        if (!hm)
            hm = hdr(top, "X-HmXmrOriginalRecipient");
        char *hma = hm ? first_addr(hm) : NULL;
        read_complaint(r, &c, hma ? hma : oto);
        if (!r->feedback_type)
            r->feedback_type = xstrdup("abuse");
        free(hma);
        done = true;
    }
    if (!done && c.notice.len && memchr(c.notice.data, '{', c.notice.len > 64 ? 64 : c.notice.len) &&
        ci_has(c.notice.data, "\"notificationType\"")) {
        done = read_ses(r, c.notice.data, c.notice.len);
    }
    if (!done && c.has_dsn_part) {
        dsn_doc d;
        dsn_parse(c.dsn.data, c.dsn.len, &d);
        size_t n = from_dsn(r, &d, c.notice.data, cut);
        dsn_doc_free(&d);
        if (n)
            r->kind = BOUNCE_KIND_BOUNCE;
        else if (r->nrcpt)
            r->kind = BOUNCE_KIND_OTHER; /* a success notice */
        done = r->nrcpt > 0;
    }
    if (!done && (ci_has(c.notice.data, "\nFinal-Recipient:") || ci_has(c.notice.data, "\nOriginal-Recipient:"))) {
        /* A report pasted into the text part. */
        dsn_doc d;
        dsn_parse(c.notice.data, cut, &d);
        if (!from_dsn(r, &d, c.notice.data, cut)) {
            /* A whole report quoted after the cut (a text-only resend). */
            dsn_doc_free(&d);
            dsn_parse(c.notice.data, c.notice.len, &d);
            from_dsn(r, &d, c.notice.data, c.notice.len);
        }
        if (r->nrcpt)
            r->kind = BOUNCE_KIND_BOUNCE;
        dsn_doc_free(&d);
        done = r->nrcpt > 0;
    }
    if (!done) {
        bool daemon = is_daemon_sender(from);
        bool subj = bounce_subject(subject);
        bool body = bounce_body(c.notice.data, cut);
        const char *rp = hdr(top, "Return-Path");
        bool null_rp = rp && (!strcmp(rp, "<>") || !strcmp(rp, "") || !strcmp(rp, "< >"));
        bool report = c.has_dsn_part || (rtype && !strcasecmp(rtype, "delivery-status"));
        bool auto_sub = hdr(top, "Auto-Submitted") && strncasecmp(hdr(top, "Auto-Submitted"), "no", 2);
        bool returned = c.orig || c.orig_hdrs.len || cut < c.notice.len;
        bool evidence = xfailed || report || (daemon && (subj || body)) ||
                        (body && (subj || null_rp || auto_sub || returned));
        if (!evidence && daemon && find_reply_code(c.notice.data) >= 400)
            evidence = true;
        if (evidence) {
            notice_list nl = {0};
            if (xfailed) {
                char *copy = xstrdup(xfailed);
                char *save = NULL;
                /* Stop at the recipient cap: each one looks its block up in
                 * the notice, and a header can name 100000 addresses. */
                for (char *tok = strtok_r(copy, ",", &save); tok && r->nrcpt < BOUNCE_MAX_RCPT;
                     tok = strtok_r(NULL, ",", &save)) {
                    char *a = addr_trim(tok);
                    if (!*a)
                        continue;
                    char *blk = notice_block_for(c.notice.data, cut, a);
                    finish(r, a, NULL, NULL, blk ? blk : c.notice.data, c.notice.data, NULL);
                    free(blk);
                }
                free(copy);
            } else {
                notice_scan(c.notice.data, cut, (const char *const *)ex, nex, &nl);
                if (!nl.n) /* a bounce to oneself: keep only the daemon filter */
                    notice_scan(c.notice.data, cut, NULL, 0, &nl);
                for (size_t i = 0; i < nl.n; i++) {
                    /* A lone recipient's reason may be anywhere in the notice. */
                    bool specific = false;
                    const char *dg = nl.v[i].diag;
                    if (nl.n == 1 && (!reason_from_text(dg, strlen(dg), &specific) || !specific) &&
                        !find_reply_code(dg))
                        dg = c.notice.data;
                    finish(r, nl.v[i].address, NULL, NULL, dg, c.notice.data, NULL);
                }
                notice_list_free(&nl);
            }
            if (!r->nrcpt && oto && (report || (daemon && subj)))
                finish(r, oto, NULL, NULL, c.notice.data, c.notice.data, NULL);
            if (r->nrcpt)
                r->kind = BOUNCE_KIND_BOUNCE;
            done = r->nrcpt > 0;
        }
    }
    if (!done) {
        if (is_auto_reply(top))
            r->kind = BOUNCE_KIND_OTHER;
        else if (hdr(top, "In-Reply-To") || hdr(top, "References") || reply_prefix(subject))
            r->kind = BOUNCE_KIND_REPLY;
        else
            r->kind = BOUNCE_KIND_OTHER;
    }

    for (size_t i = 0; i < nex; i++)
        free(ex[i]);
    free(ofrom);
    free(oto);
    buf_free(&c.notice);
    buf_free(&c.html);
    buf_free(&c.dsn);
    buf_free(&c.arf);
    buf_free(&c.orig_hdrs);
    g_object_unref(msg);
    *out = r;
    return 0;
}

void bounce_result_free(bounce_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrcpt; i++) {
        free(r->rcpt[i].address);
        free(r->rcpt[i].diagnostic);
    }
    free(r->rcpt);
    for (size_t i = 0; i < r->norig_headers; i++) {
        free(r->orig_headers[i].name);
        free(r->orig_headers[i].value);
    }
    free(r->orig_headers);
    free(r->orig_message_id);
    free(r->feedback_type);
    free(r->orig_return_path);
    free(r);
}

const char *bounce_kind_name(bounce_kind k)
{
    switch (k) {
    case BOUNCE_KIND_BOUNCE: return "bounce";
    case BOUNCE_KIND_COMPLAINT: return "complaint";
    case BOUNCE_KIND_REPLY: return "reply";
    default: return "other";
    }
}

/* Appends s as a JSON string; s is valid UTF-8 (every string of a result
 * is, see utf8_clean) so jsonstr_append cannot refuse it for that, and the
 * buffer has no cap. */
static void json_str(buf *b, const char *s)
{
    if (jsonstr_append(b, s, strlen(s)) != 0)
        abort();
}

char *bounce_result_json(const bounce_result *r, const char *file)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_puts(&b, "{\"file\":");
    if (file) {
        char *f = clean_str(file);
        json_str(&b, f);
        free(f);
    } else {
        buf_puts(&b, "null");
    }
    buf_puts(&b, ",\"kind\":");
    json_str(&b, bounce_kind_name(r ? r->kind : BOUNCE_KIND_OTHER));
    buf_puts(&b, ",\"recipients\":[");
    for (size_t i = 0; r && i < r->nrcpt; i++) {
        const bounce_rcpt *x = &r->rcpt[i];
        buf_puts(&b, i ? ",{\"address\":" : "{\"address\":");
        json_str(&b, x->address);
        /* A complaint has no status and a prose bounce may have no reply
         * code: null says "not given", which "" or 0 would blur. */
        buf_puts(&b, ",\"status\":");
        if (x->status[0])
            json_str(&b, x->status);
        else
            buf_puts(&b, "null");
        if (x->reply_code)
            buf_printf(&b, ",\"reply_code\":%d", x->reply_code);
        else
            buf_puts(&b, ",\"reply_code\":null");
        buf_printf(&b, ",\"hard\":%s,\"reason\":", x->hard ? "true" : "false");
        json_str(&b, x->reason ? x->reason : "undefined");
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    char *s = buf_steal(&b);
    buf_free(&b);
    return s;
}
