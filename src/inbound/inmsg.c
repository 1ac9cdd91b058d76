/* inmsg: an inbound message's own headers and text (see inmsg.h). */
#include "inbound/inmsg.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inbound/bounce.h"
#include "mime/html2text.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* A clean, capped copy of s (NULL stays NULL). */
static char *clean(const char *s, size_t cap)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *r = bounce_utf8_clean(s, n > cap ? cap : n);
    /* A cut may split a character: utf8_clean made it U+FFFD, which is
     * what a person would see anyway. */
    return r;
}

/* Lower-cases an address's ASCII letters: the store keeps addresses
 * normalised that way (mime/addr.h), and VERP's parser reads any case. */
static char *lower_addr(const char *a)
{
    char *r = clean(a, 320);
    for (char *p = r; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return r;
}

static void push_rcpt(inmsg *m, const char *a)
{
    if (!a || !*a || m->nrcpts >= INMSG_MAX_RCPT || !strchr(a, '@'))
        return;
    char *l = lower_addr(a);
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!strcmp(m->rcpts[i], l)) {
            free(l);
            return;
        }
    m->rcpts = xrealloc(m->rcpts, (m->nrcpts + 1) * sizeof *m->rcpts);
    m->rcpts[m->nrcpts++] = l;
}

/* Every mailbox of an address header value, groups included. */
static void push_list(inmsg *m, InternetAddressList *l, int depth)
{
    int n = l ? internet_address_list_length(l) : 0;
    for (int i = 0; i < n && depth < 4; i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia))
            push_rcpt(m, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
        else if (INTERNET_ADDRESS_IS_GROUP(ia))
            push_list(m, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), depth + 1);
    }
}

static void push_header_addrs(inmsg *m, const char *value)
{
    if (!value)
        return;
    InternetAddressList *l = internet_address_list_parse(NULL, value);
    if (l) {
        push_list(m, l, 0);
        g_object_unref(l);
    } else {
        /* Delivered-To is a bare address; a parser that refuses it still
         * leaves us the text. */
        char *t = xstrdup(value);
        char *p = t;
        while (*p == ' ' || *p == '\t' || *p == '<')
            p++;
        size_t k = strcspn(p, "> \t\r\n");
        p[k] = '\0';
        push_rcpt(m, p);
        free(t);
    }
}

static void push_ref(inmsg *m, const char *id)
{
    if (!id || !*id || m->nrefs >= INMSG_MAX_REFS)
        return;
    for (size_t i = 0; i < m->nrefs; i++)
        if (!strcmp(m->refs[i], id))
            return;
    m->refs = xrealloc(m->refs, (m->nrefs + 1) * sizeof *m->refs);
    m->refs[m->nrefs++] = clean(id, 998);
}

/* Ids of an In-Reply-To or References value; newest first when asked
 * (References lists the oldest first, and the newest is the one answered). */
static void push_refs(inmsg *m, const char *value, bool reverse)
{
    if (!value)
        return;
    GMimeReferences *r = g_mime_references_parse(NULL, value);
    if (!r)
        return;
    int n = g_mime_references_length(r);
    for (int i = 0; i < n; i++)
        push_ref(m, g_mime_references_get_message_id(r, reverse ? n - 1 - i : i));
    g_mime_references_free(r);
}

static bool has_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (!strncasecmp(hay, needle, n))
            return true;
    return false;
}

static bool auto_reply(GMimeObject *o)
{
    const char *as = g_mime_object_get_header(o, "Auto-Submitted");
    if (as) {
        while (*as == ' ' || *as == '\t')
            as++;
        if (strncasecmp(as, "no", 2))
            return true;
    }
    static const char *const flags[] = {"X-Autoreply", "X-Autorespond", "X-Autoresponder",
                                        "X-Vacation", "X-Auto-Reply"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (g_mime_object_get_header(o, flags[i]))
            return true;
    const char *pr = g_mime_object_get_header(o, "Precedence");
    return pr && (has_ci(pr, "auto_reply") || has_ci(pr, "bulk") || has_ci(pr, "junk") ||
                  has_ci(pr, "list"));
}

typedef struct text_pick {
    buf plain, html;
    size_t parts;
} text_pick;

static void part_text(GMimeObject *obj, buf *b)
{
    char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
    if (t) {
        size_t n = strlen(t), room = b->max - b->len;
        buf_append(b, t, n > room ? room : n);
        g_free(t);
    }
}

/* The first text/plain and text/html parts that are not attachments and
 * not inside a forwarded or returned message. */
static void walk(GMimeObject *obj, int depth, text_pick *tp)
{
    if (!obj || depth > BOUNCE_MAX_DEPTH || tp->parts >= BOUNCE_MAX_PARTS)
        return;
    tp->parts++;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && tp->parts < BOUNCE_MAX_PARTS; i++)
            walk(g_mime_multipart_get_part(mp, i), depth + 1, tp);
        return;
    }
    if (!GMIME_IS_TEXT_PART(obj))
        return;
    GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
    if (cd && g_mime_content_disposition_is_attachment(cd))
        return;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (ct && g_mime_content_type_is_type(ct, "text", "plain") && !tp->plain.len)
        part_text(obj, &tp->plain);
    else if (ct && g_mime_content_type_is_type(ct, "text", "html") && !tp->html.len)
        part_text(obj, &tp->html);
}

int inmsg_parse(const char *data, size_t len, inmsg **out, td_error *e)
{
    *out = NULL;
    if (bounce_init() != 0)
        return td_err_set(e, TD_EINTERNAL, "bounce rules failed to compile");
    if (!data)
        return td_err_set(e, TD_EINVAL, "no message");
    if (len > BOUNCE_MAX_INPUT)
        len = BOUNCE_MAX_INPUT;
    char *copy = NULL;
    if (memchr(data, '\0', len)) {
        copy = xmalloc(len ? len : 1);
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (data[i])
                copy[k++] = data[i];
        data = copy;
        len = k;
    }
    len = bounce_part_guard(data, len);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    free(copy);
    if (!msg)
        return td_err_set(e, TD_EINVAL, "not a mail message (no header block could be parsed)");

    inmsg *m = xcalloc(1, sizeof *m);
    GMimeObject *top = GMIME_OBJECT(msg);

    InternetAddressList *from = g_mime_message_get_from(msg);
    for (int i = 0; from && i < internet_address_list_length(from); i++) {
        InternetAddress *ia = internet_address_list_get_address(from, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            m->from = lower_addr(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
            const char *nm = internet_address_get_name(ia);
            if (nm && *nm)
                m->from_name = clean(nm, 256);
            break;
        }
    }
    const char *subj = g_mime_message_get_subject(msg);
    m->subject = clean(subj ? subj : "", INMSG_MAX_SUBJECT);
    const char *mid = g_mime_message_get_message_id(msg);
    if (mid && *mid)
        m->message_id = clean(mid, 998);

    push_refs(m, g_mime_object_get_header(top, "In-Reply-To"), false);
    if (m->nrefs)
        m->in_reply_to = xstrdup(m->refs[0]);
    push_refs(m, g_mime_object_get_header(top, "References"), true);

    /* Where it was delivered, most specific first: what the receiving
     * server wrote from the envelope, then what the sender wrote. */
    static const char *const env[] = {"Delivered-To", "X-Original-To", "Envelope-To",
                                      "X-Envelope-To", "X-Original-Recipient"};
    GMimeHeaderList *hl = g_mime_object_get_header_list(top);
    int nh = hl ? g_mime_header_list_get_count(hl) : 0;
    for (size_t k = 0; k < sizeof env / sizeof env[0]; k++)
        for (int i = 0; i < nh && i < 1000; i++) {
            GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
            if (!strcasecmp(g_mime_header_get_name(h), env[k]))
                push_header_addrs(m, g_mime_header_get_value(h));
        }
    push_header_addrs(m, g_mime_object_get_header(top, "To"));
    push_header_addrs(m, g_mime_object_get_header(top, "Cc"));

    GDateTime *dt = g_mime_message_get_date(msg);
    if (dt)
        m->date = g_date_time_to_unix(dt);
    m->auto_reply = auto_reply(top);

    text_pick tp = {0};
    buf_init(&tp.plain, INMSG_MAX_BODY);
    buf_init(&tp.html, INMSG_MAX_BODY);
    walk(g_mime_message_get_mime_part(msg), 0, &tp);
    if (tp.plain.len) {
        m->body = bounce_utf8_clean(tp.plain.data, tp.plain.len);
    } else if (tp.html.len) {
        char *h = bounce_utf8_clean(tp.html.data, tp.html.len);
        buf t;
        buf_init(&t, INMSG_MAX_BODY);
        if (html2text(h, strlen(h), 0, &t, NULL) == 0)
            m->body = bounce_utf8_clean(t.data, t.len);
        else
            m->body = xstrdup(h);
        buf_free(&t);
        free(h);
    } else {
        m->body = xstrdup("");
    }
    buf_free(&tp.plain);
    buf_free(&tp.html);
    g_object_unref(msg);
    *out = m;
    return TD_OK;
}

void inmsg_free(inmsg *m)
{
    if (!m)
        return;
    free(m->from);
    free(m->from_name);
    free(m->subject);
    free(m->message_id);
    free(m->in_reply_to);
    for (size_t i = 0; i < m->nrefs; i++)
        free(m->refs[i]);
    free(m->refs);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->body);
    free(m);
}
