/* html2text: text/plain from HTML on libxml2's SAX HTML parser (see
 * html2text.h for the rendering rules). */
#include "mime/html2text.h"

#include <libxml/HTMLparser.h>
#include <libxml/parserInternals.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unilbrk.h>
#include <uniwidth.h>

#include "util/utf8.h"
#include "util/xalloc.h"

#define MAX_LISTS 32 /* list levels tracked; deeper ones share the last */
#define MAX_LINKS_OPEN 16
#define MAX_QUOTE 8 /* "> " prefixes written at most */

typedef struct list_lvl {
    bool ordered;
    long n;        /* next number */
    size_t indent; /* columns before the text of this list's items */
} list_lvl;

typedef struct h2t {
    buf *out;
    buf para;     /* inline text of the current block; '\n' from <br> */
    buf scratch;  /* line-break marks */
    bool space;   /* a collapsible space is pending */
    int pending;  /* before the next block: 1 a new line, 2 a blank line */
    bool any;     /* a line was written */
    long depth;   /* element depth */
    long skip_at; /* depth of the element whose content is dropped; 0 none */
    int pre;
    int quote;
    int pend_quote; /* quote depth when the pending blank line was asked */
    int heading;
    list_lvl lists[MAX_LISTS];
    int nlists; /* may pass MAX_LISTS; the top level is then the last slot */
    char marker[24];
    size_t marker_base;
    bool marker_pending;
    struct {
        char *href;
        size_t start;
    } a[MAX_LINKS_OPEN];
    int na;
    int na_over; /* <a> open past MAX_LINKS_OPEN */
    char **urls;
    size_t nurls;
    unsigned width;
    int rc;
} h2t;

static void out_put(h2t *h, const char *s, size_t n)
{
    if (!h->rc)
        h->rc = buf_append(h->out, s, n);
}

static void para_put(h2t *h, const char *s, size_t n)
{
    if (!h->rc)
        h->rc = buf_append(&h->para, s, n);
}

static char para_last(const h2t *h)
{
    return h->para.len ? h->para.data[h->para.len - 1] : '\n';
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* add_text appends text with HTML whitespace rules: runs of blanks become
 * one space, none at the start of a line; control characters are dropped.
 * In <pre> everything but CR and controls is kept as is. */
static void add_text(h2t *h, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (h->pre) {
            size_t j = i;
            while (j < n && ((unsigned char)s[j] >= 0x20 || s[j] == '\n' || s[j] == '\t') &&
                   s[j] != 0x7f)
                j++;
            para_put(h, s + i, j - i);
            i = j < n ? j + 1 : j;
            continue;
        }
        if (is_space(c)) {
            if (para_last(h) != '\n')
                h->space = true;
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            i++;
            continue;
        }
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] < 0xA0) { /* C1 control */
            i += 2;
            continue;
        }
        size_t j = i;
        while (j < n) {
            unsigned char d = (unsigned char)s[j];
            if (d < 0x20 || d == 0x7f || d == ' ' || d == 0xC2)
                break;
            j++;
        }
        if (j == i) /* 0xC2 not starting a C1 control */
            j = i + 1;
        if (h->space) {
            if (para_last(h) != '\n' && para_last(h) != ' ')
                para_put(h, " ", 1);
            h->space = false;
        }
        para_put(h, s + i, j - i);
        i = j;
    }
}

static size_t text_indent(const h2t *h)
{
    size_t ind = 0;
    if (h->nlists > 0)
        ind = h->lists[(h->nlists < MAX_LISTS ? h->nlists : MAX_LISTS) - 1].indent;
    return ind > h->width / 2 ? h->width / 2 : ind;
}

/* emit_line writes one output line: quote marks, indent (or marker), the
 * content with no-break spaces made plain and trailing blanks dropped. */
static void emit_line_q(h2t *h, int quote, const char *lead, size_t leadn, const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    int q = quote > MAX_QUOTE ? MAX_QUOTE : quote;
    for (int i = 0; i < q; i++)
        out_put(h, ">", 1);
    if (q && (n || leadn))
        out_put(h, " ", 1);
    if (n)
        out_put(h, lead, leadn);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n &&
               !((unsigned char)s[j] == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0))
            j++;
        bool nb = j < n;
        out_put(h, s + i, j - i);
        if (nb) {
            out_put(h, " ", 1);
            j += 2;
        }
        i = j;
    }
    out_put(h, "\n", 1);
    h->any = true;
}

static void emit_line(h2t *h, const char *lead, size_t leadn, const char *s, size_t n)
{
    emit_line_q(h, h->quote, lead, leadn, s, n);
}

/* separate writes the blank line a block asked for; it is quoted only as
 * deep as the quote the block was in when it asked. */
static void set_pending(h2t *h, int level)
{
    if (level >= 2 && h->pending < 2)
        h->pend_quote = h->quote;
    if (level > h->pending)
        h->pending = level;
}

static void separate(h2t *h)
{
    if (h->any && h->pending >= 2)
        emit_line_q(h, h->quote < h->pend_quote ? h->quote : h->pend_quote, "", 0, "", 0);
    h->pending = 0;
}

static size_t cols(const char *s, size_t n)
{
    int w = u8_width((const uint8_t *)s, n, "UTF-8");
    return w > 0 ? (size_t)w : 0;
}

/* no_break_in_urls fills o[0..n) with line-break overrides: none inside a
 * word that is a URL (UAX #14 would break after each '/', and a mail client
 * only makes the part before the break a link). */
static void no_break_in_urls(const char *s, size_t n, char *o)
{
    memset(o, UC_BREAK_UNDEFINED, n);
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        size_t j = i;
        bool url = false;
        while (j < n && s[j] != ' ') {
            if (j + 3 <= n && !memcmp(s + j, "://", 3))
                url = true;
            j++;
        }
        if ((j - i > 4 && !strncasecmp(s + i, "www.", 4)) ||
            (j - i > 7 && !strncasecmp(s + i, "mailto:", 7)))
            url = true;
        if (url)
            memset(o + i + 1, UC_BREAK_PROHIBITED, j - i - 1);
        i = j;
    }
}

/* flush writes the current block's text, wrapped, and empties it. */
static void flush(h2t *h)
{
    const char *s = h->para.data;
    size_t n = h->para.len;
    size_t b = 0;
    while (b < n && (s[b] == '\n' || (s[b] == ' ' && !h->pre)))
        b++;
    while (n > b && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    h->space = false;
    if (n == b) {
        buf_reset(&h->para);
        return;
    }
    separate(h);
    size_t indent = text_indent(h);
    char spaces[80];
    memset(spaces, ' ', sizeof spaces);
    if (indent > sizeof spaces)
        indent = sizeof spaces;
    size_t qcols = (size_t)(h->quote > MAX_QUOTE ? MAX_QUOTE : h->quote);
    qcols += qcols ? 1 : 0;
    size_t avail = h->width > indent + qcols + 10 ? h->width - indent - qcols : 10;
    size_t maxw = 0;
    bool first = true;
    size_t i = b;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        const char *line = s + i;
        size_t ln = e - i;
        /* pieces of this hard line */
        size_t pb = 0;
        /* a line of no more bytes than columns available fits: a character
         * is never wider than its UTF-8 length */
        bool fits = ln <= avail;
        if (!h->pre && ln && !fits) {
            /* room for the marks (first half) and the overrides (second) */
            buf_reset(&h->scratch);
            if (!h->rc)
                h->rc = buf_append(&h->scratch, line, ln);
            if (!h->rc)
                h->rc = buf_append(&h->scratch, line, ln);
            if (!h->rc) {
                char *o = h->scratch.data + ln;
                no_break_in_urls(line, ln, o);
                u8_width_linebreaks((const uint8_t *)line, ln, (int)avail, 0, 0, o, "UTF-8",
                                    h->scratch.data);
            }
        }
        for (size_t k = 1; k <= ln; k++) {
            if (k < ln && (h->pre || fits || h->rc || h->scratch.data[k] != UC_BREAK_POSSIBLE))
                continue;
            size_t pe = k;
            const char *lead = spaces;
            size_t leadn = indent;
            if (first && h->marker_pending) {
                lead = h->marker;
                leadn = strlen(h->marker);
            }
            if (h->heading == 1 || h->heading == 2) {
                size_t w = cols(line + pb, pe - pb);
                if (w > maxw)
                    maxw = w;
            }
            emit_line(h, lead, leadn, line + pb, pe - pb);
            first = false;
            pb = k;
            while (pb < ln && line[pb] == ' ')
                pb++;
            k = pb;
        }
        if (ln == 0) { /* an empty line from <br><br> */
            emit_line(h, "", 0, "", 0);
            first = false;
        }
        i = e + 1;
    }
    if (h->heading == 1 || h->heading == 2) {
        char ul[80];
        size_t m = maxw > sizeof ul ? sizeof ul : maxw;
        memset(ul, h->heading == 1 ? '=' : '-', m);
        emit_line(h, spaces, indent, ul, m);
    }
    h->marker_pending = false;
    buf_reset(&h->para);
}

static void block(h2t *h, int level)
{
    flush(h);
    set_pending(h, level);
}

static const char *attr(const xmlChar **atts, const char *name)
{
    for (size_t i = 0; atts && atts[i]; i += 2)
        if (!strcasecmp((const char *)atts[i], name))
            return atts[i + 1] ? (const char *)atts[i + 1] : "";
    return NULL;
}

/* hidden is true for an element the reader never sees: hidden, or styled
 * display:none (the preheader trick of email HTML). */
static bool hidden(const xmlChar **atts)
{
    if (attr(atts, "hidden"))
        return true;
    const char *st = attr(atts, "style");
    if (!st)
        return false;
    char tight[256];
    size_t k = 0;
    for (size_t i = 0; st[i] && k + 1 < sizeof tight; i++)
        if (!is_space((unsigned char)st[i]))
            tight[k++] = st[i];
    tight[k] = '\0';
    for (size_t i = 0; i < k; i++)
        if (tight[i] >= 'A' && tight[i] <= 'Z')
            tight[i] = (char)(tight[i] - 'A' + 'a');
    return strstr(tight, "display:none") != NULL;
}

enum {
    T_OTHER,
    T_SKIP,
    T_BR,
    T_LIST,
    T_LI,
    T_QUOTE,
    T_PRE,
    T_HR,
    T_CELL,
    T_A,
    T_IMG,
    T_INPUT,
    T_BLOCK2,
    T_BLOCK1
};

/* The elements that change the text, sorted by name for bsearch. */
static const struct tag {
    const char *name;
    int kind;
} tags[] = {
    {"a", T_A},
    {"address", T_BLOCK2},
    {"article", T_BLOCK1},
    {"aside", T_BLOCK1},
    {"blockquote", T_QUOTE},
    {"body", T_BLOCK1},
    {"br", T_BR},
    {"caption", T_BLOCK1},
    {"center", T_BLOCK1},
    {"dd", T_BLOCK1},
    {"details", T_BLOCK1},
    {"div", T_BLOCK1},
    {"dl", T_BLOCK2},
    {"dt", T_BLOCK1},
    {"fieldset", T_BLOCK1},
    {"figcaption", T_BLOCK1},
    {"figure", T_BLOCK2},
    {"footer", T_BLOCK1},
    {"form", T_BLOCK1},
    {"head", T_SKIP},
    {"header", T_BLOCK1},
    {"hr", T_HR},
    {"iframe", T_SKIP},
    {"img", T_IMG},
    {"input", T_INPUT},
    {"legend", T_BLOCK1},
    {"li", T_LI},
    {"main", T_BLOCK1},
    {"menu", T_LIST},
    {"nav", T_BLOCK1},
    {"noembed", T_SKIP},
    {"object", T_SKIP},
    {"ol", T_LIST},
    {"p", T_BLOCK2},
    {"pre", T_PRE},
    {"script", T_SKIP},
    {"section", T_BLOCK1},
    {"select", T_SKIP},
    {"style", T_SKIP},
    {"summary", T_BLOCK1},
    {"table", T_BLOCK1},
    {"tbody", T_BLOCK1},
    {"td", T_CELL},
    {"template", T_SKIP},
    {"tfoot", T_BLOCK1},
    {"th", T_CELL},
    {"thead", T_BLOCK1},
    {"title", T_SKIP},
    {"tr", T_BLOCK1},
    {"ul", T_LIST},
};

static int tag_cmp(const void *k, const void *t)
{
    return strcmp(k, ((const struct tag *)t)->name);
}

static int tag_kind(const char *name)
{
    const struct tag *t =
        bsearch(name, tags, sizeof tags / sizeof tags[0], sizeof tags[0], tag_cmp);
    return t ? t->kind : T_OTHER;
}

static void on_start(void *ud, const xmlChar *xname, const xmlChar **atts)
{
    h2t *h = ud;
    const char *name = (const char *)xname;
    h->depth++;
    if (h->skip_at)
        return;
    int kind = tag_kind(name);
    if (kind == T_SKIP || hidden(atts)) {
        h->skip_at = h->depth;
        return;
    }
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2]) {
        block(h, 2);
        h->heading = name[1] - '0';
        if (h->heading >= 3) {
            static const char hashes[] = "###### ";
            add_text(h, hashes + 6 - h->heading, (size_t)h->heading + 1);
        }
    } else if (kind == T_BR) {
        para_put(h, "\n", 1);
        h->space = false;
    } else if (kind == T_LIST) {
        block(h, h->nlists == 0 ? 2 : 1);
        list_lvl *l = &h->lists[h->nlists < MAX_LISTS ? h->nlists : MAX_LISTS - 1];
        size_t base = text_indent(h);
        l->ordered = name[0] == 'o';
        l->n = 1;
        l->indent = base + 2;
        const char *st = attr(atts, "start");
        if (st && l->ordered) {
            long v = strtol(st, NULL, 10);
            if (v > -1000000 && v < 1000000)
                l->n = v;
        }
        h->nlists++;
    } else if (kind == T_LI) {
        block(h, 1);
        size_t base = 0;
        if (h->nlists >= 2)
            base = h->lists[(h->nlists <= MAX_LISTS ? h->nlists : MAX_LISTS) - 2].indent;
        if (base > h->width / 2)
            base = h->width / 2;
        bool ordered = false;
        long num = 0;
        if (h->nlists > 0) {
            list_lvl *l = &h->lists[(h->nlists < MAX_LISTS ? h->nlists : MAX_LISTS) - 1];
            ordered = l->ordered;
            num = l->n++;
        }
        char mk[16];
        int ml = ordered ? snprintf(mk, sizeof mk, "%ld. ", num) : snprintf(mk, sizeof mk, "* ");
        size_t bb = base > sizeof h->marker - 17 ? sizeof h->marker - 17 : base;
        memset(h->marker, ' ', bb);
        memcpy(h->marker + bb, mk, (size_t)ml + 1);
        h->marker_base = base;
        h->marker_pending = true;
        if (h->nlists > 0)
            h->lists[(h->nlists < MAX_LISTS ? h->nlists : MAX_LISTS) - 1].indent =
                base + (size_t)ml;
    } else if (kind == T_QUOTE) {
        block(h, 2);
        h->quote++;
    } else if (kind == T_PRE) {
        block(h, 2);
        h->pre++;
    } else if (kind == T_HR) {
        block(h, 2);
        separate(h);
        emit_line(h, "", 0, "------------------------------", 30);
        set_pending(h, 2);
    } else if (kind == T_CELL) {
        if (para_last(h) != '\n')
            h->space = true;
    } else if (kind == T_A) {
        if (h->na >= MAX_LINKS_OPEN) {
            h->na_over++;
            return;
        }
        const char *href = attr(atts, "href");
        char *copy = NULL;
        if (href) { /* browsers drop blanks and controls around and in URLs */
            size_t n = strlen(href), k = 0;
            copy = xmalloc(n + 1);
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)href[i] > 0x20 && href[i] != 0x7f)
                    copy[k++] = href[i];
            copy[k] = '\0';
        }
        h->a[h->na].href = copy;
        h->a[h->na].start = h->para.len;
        h->na++;
    } else if (kind == T_IMG || (kind == T_INPUT && attr(atts, "alt"))) {
        const char *alt = attr(atts, "alt");
        if (alt) {
            h->space = h->space || (para_last(h) != '\n' && para_last(h) != ' ');
            add_text(h, alt, strlen(alt));
        }
    } else if (kind == T_BLOCK2) {
        block(h, 2);
    } else if (kind == T_BLOCK1) {
        block(h, 1);
    }
}

/* link_ref returns the number of url in the Links list, adding it; 0 when
 * the list is full. */
static size_t link_ref(h2t *h, const char *url)
{
    for (size_t i = 0; i < h->nurls; i++)
        if (!strcmp(h->urls[i], url))
            return i + 1;
    if (h->nurls >= HTML2TEXT_MAX_LINKS)
        return 0;
    if (h->nurls == 0)
        h->urls = xcalloc(HTML2TEXT_MAX_LINKS, sizeof *h->urls);
    h->urls[h->nurls++] = xstrdup(url);
    return h->nurls;
}

static void end_link(h2t *h)
{
    h->na--;
    char *href = h->a[h->na].href;
    size_t start = h->a[h->na].start;
    if (!href || !href[0] || href[0] == '#' || !strncasecmp(href, "javascript:", 11)) {
        free(href);
        return;
    }
    if (start > h->para.len)
        start = 0;
    const char *t = h->para.data + start;
    size_t tn = h->para.len - start;
    while (tn && (*t == ' ' || *t == '\n'))
        t++, tn--;
    while (tn && (t[tn - 1] == ' ' || t[tn - 1] == '\n'))
        tn--;
    const char *cmp = href;
    if (!strncasecmp(cmp, "mailto:", 7))
        cmp += 7;
    if (!(tn == strlen(cmp) && !memcmp(t, cmp, tn))) {
        size_t ref = link_ref(h, href);
        if (ref) {
            char r[32];
            int rn = snprintf(r, sizeof r, "[%zu]", ref);
            if (tn)
                h->space = true;
            add_text(h, r, (size_t)rn);
        }
    }
    free(href);
}

static void on_end(void *ud, const xmlChar *xname)
{
    h2t *h = ud;
    const char *name = (const char *)xname;
    if (h->skip_at) {
        if (h->depth == h->skip_at)
            h->skip_at = 0;
        h->depth--;
        return;
    }
    h->depth--;
    int kind = tag_kind(name);
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2]) {
        flush(h);
        h->heading = 0;
        set_pending(h, 2);
    } else if (kind == T_LIST) {
        flush(h);
        if (h->nlists > 0)
            h->nlists--;
        set_pending(h, h->nlists == 0 ? 2 : 1);
    } else if (kind == T_LI) {
        flush(h);
        h->marker_pending = false;
        set_pending(h, 1);
    } else if (kind == T_QUOTE) {
        flush(h);
        if (h->quote > 0)
            h->quote--;
        set_pending(h, 2);
    } else if (kind == T_PRE) {
        flush(h);
        if (h->pre > 0)
            h->pre--;
        set_pending(h, 2);
    } else if (kind == T_CELL) {
        if (para_last(h) != '\n')
            h->space = true;
    } else if (kind == T_A) {
        if (h->na_over)
            h->na_over--;
        else if (h->na > 0)
            end_link(h);
    } else if (kind == T_BLOCK2) {
        block(h, 2);
    } else if (kind == T_BLOCK1) {
        block(h, 1);
    }
}

static void on_text(void *ud, const xmlChar *ch, int len)
{
    h2t *h = ud;
    if (!h->skip_at && len > 0)
        add_text(h, (const char *)ch, (size_t)len);
}

static void on_cdata(void *ud, const xmlChar *ch, int len)
{
    (void)ud, (void)ch, (void)len; /* script and style bodies: never text */
}

static void silent(void *ud, const char *msg, ...)
{
    (void)ud, (void)msg;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

int html2text(const char *html, size_t len, unsigned width, buf *out, td_error *e)
{
    if (len > HTML2TEXT_MAX_INPUT)
        return td_err_set(e, TD_ETOOBIG, "the HTML is %zu bytes; at most %u", len,
                          HTML2TEXT_MAX_INPUT);
    size_t bad = 0;
    if (!utf8_valid(html, len, &bad))
        return td_err_set(e, TD_EINVAL, "the HTML is not valid UTF-8 (byte %zu)", bad + 1);
    const char *nul = memchr(html, '\0', len);
    if (nul)
        return td_err_set(e, TD_EINVAL, "the HTML holds a NUL byte (byte %zu)",
                          (size_t)(nul - html) + 1);
    if (width == 0)
        width = HTML2TEXT_WIDTH;
    if (width < 20)
        width = 20;
    pthread_once(&xml_once, xml_init);

    h2t h;
    memset(&h, 0, sizeof h);
    h.out = out;
    h.width = width;
    buf_init(&h.para, 2 * len + 1024);
    buf_init(&h.scratch, BUF_NOCAP);
    size_t len0 = out->len;

    htmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.startElement = on_start;
    sax.endElement = on_end;
    sax.characters = on_text;
    sax.ignorableWhitespace = on_text;
    sax.cdataBlock = on_cdata;
    sax.warning = silent;
    sax.error = silent;

    int rc = TD_OK;
    if (len) {
        htmlParserCtxtPtr ctxt = htmlCreateMemoryParserCtxt(len ? html : "", (int)len);
        if (!ctxt) {
            rc = td_err_set(e, TD_EINTERNAL, "the HTML parser could not start");
            goto out;
        }
        memcpy(ctxt->sax, &sax, sizeof sax);
        ctxt->userData = &h;
        htmlCtxtUseOptions(ctxt, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                     HTML_PARSE_IGNORE_ENC);
        xmlSwitchEncoding(ctxt, XML_CHAR_ENCODING_UTF8);
        htmlParseDocument(ctxt);
        htmlFreeParserCtxt(ctxt);
    }
    flush(&h);
    while (h.na > 0)
        free(h.a[--h.na].href);
    if (h.nurls) {
        if (h.any)
            out_put(&h, "\n", 1);
        out_put(&h, "Links:\n", 7);
        for (size_t i = 0; i < h.nurls; i++) {
            char r[32];
            int rn = snprintf(r, sizeof r, "[%zu] ", i + 1);
            out_put(&h, r, (size_t)rn);
            out_put(&h, h.urls[i], strlen(h.urls[i]));
            out_put(&h, "\n", 1);
        }
    }
    if (h.rc)
        rc = td_err_set(e, h.rc, "the text version is over its size cap");
out:
    for (size_t i = 0; i < h.nurls; i++)
        free(h.urls[i]);
    free(h.urls);
    buf_free(&h.para);
    buf_free(&h.scratch);
    if (rc)
        buf_truncate(out, len0);
    return rc;
}
