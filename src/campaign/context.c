/* campaign/context: per-recipient template data and the track helper (see
 * context.h). */
#include "campaign/context.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* first_name is the name's first word: enough for "Dear {{first_name}}" in
 * Latin, Arabic and Thai names alike (all separate names with spaces). */
static json_t *first_word(const char *name)
{
    if (!name)
        return json_string("");
    while (*name == ' ')
        name++;
    size_t n = strcspn(name, " ");
    return json_stringn(name, n);
}

/* The memo: click URLs (before HTML escaping) by target, for the current
 * recipient, in one arena. A template's links are a few dozen; past the
 * caps, links are simply made anew. */
#define MEMO_MAX 64
#define MEMO_ARENA 65536

struct msg_track_memo {
    size_t n;
    struct {
        uint64_t hash;                     /* memo_hash of the URL */
        size_t url, url_len, out, out_len; /* offsets into arena */
    } e[MEMO_MAX];
    buf arena;
    /* The same for every recipient: made for the first, then shared (the
     * context's fields do not change while the memo is on; nobody changes
     * these objects). */
    json_t *list, *sender;
    buf url; /* add_url's scratch */
};

/* memo_hash: FNV-1a over the URL's length and its 8-byte words. The links
 * of one template share long prefixes (https://shop.example/p/...), so
 * comparing each stored URL from its first byte was most of a text
 * template's render. */
static uint64_t memo_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

void msg_context_memo_on(msg_context *c)
{
    c->memo = xcalloc(1, sizeof *c->memo);
    buf_init(&c->memo->arena, MEMO_ARENA);
    buf_init(&c->memo->url, BUF_NOCAP);
}

void msg_context_memo_off(msg_context *c)
{
    if (!c->memo)
        return;
    buf_free(&c->memo->arena);
    buf_free(&c->memo->url);
    json_decref(c->memo->list);
    json_decref(c->memo->sender);
    free(c->memo);
    c->memo = NULL;
}

static const char *memo_find(const struct msg_track_memo *m, uint64_t hash, const char *url,
                             size_t n, size_t *len)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (m->e[i].hash == hash && m->e[i].url_len == n &&
            !memcmp(m->arena.data + m->e[i].url, url, n)) {
            *len = m->e[i].out_len;
            return m->arena.data + m->e[i].out;
        }
    return NULL;
}

static void memo_add(struct msg_track_memo *m, uint64_t hash, const char *url, size_t n,
                     const char *out, size_t on)
{
    if (!m || m->n == MEMO_MAX)
        return;
    size_t at = m->arena.len;
    if (buf_append(&m->arena, url, n) || buf_append(&m->arena, out, on)) {
        buf_truncate(&m->arena, at);
        return;
    }
    m->e[m->n].hash = hash;
    m->e[m->n].url = at;
    m->e[m->n].url_len = n;
    m->e[m->n].out = at + n;
    m->e[m->n].out_len = on;
    m->n++;
}

static int add_url(msg_context *c, json_t *obj, const char *key, track_kind kind, td_error *e)
{
    buf own, *b = &own;
    if (c->memo) {
        b = &c->memo->url;
        buf_reset(b);
    } else {
        buf_init(b, BUF_NOCAP);
    }
    track_claims cl = {.kind = kind,
                       .campaign_id = c->campaign_id,
                       .subscriber_id = c->subscriber_id,
                       .list_id = c->list_id};
    int rc = track_url(c->key, c->base_url, &cl, b, e);
    if (!rc)
        json_object_set_new(obj, key, json_stringn(b->data, b->len));
    if (b == &own)
        buf_free(b);
    return rc;
}

/* campaign_parts gives new references to the list and sender objects: the
 * memo's when it has them, else made here (and kept in the memo when there
 * is one). The campaign object is made for each recipient: the delivery
 * worker sets its subject to the recipient's rendered subject. */
static void campaign_parts(msg_context *c, json_t **list, json_t **camp, json_t **snd)
{
    struct msg_track_memo *m = c->memo;
    *camp = json_object();
    json_object_set_new(*camp, "id", json_integer(c->campaign_id));
    json_object_set_new(*camp, "name", json_string(c->campaign_name ? c->campaign_name : ""));
    json_object_set_new(*camp, "subject", json_string(c->subject ? c->subject : ""));
    if (m && m->list) {
        *list = json_incref(m->list);
        *snd = json_incref(m->sender);
        return;
    }
    *list = json_object();
    json_object_set_new(*list, "id", json_integer(c->list_id));
    json_object_set_new(*list, "name", json_string(c->list_name ? c->list_name : ""));
    *snd = json_object();
    json_object_set_new(*snd, "name", json_string(c->sender_name ? c->sender_name : ""));
    json_object_set_new(*snd, "first_name", first_word(c->sender_name));
    json_object_set_new(*snd, "email", json_string(c->sender_email ? c->sender_email : ""));
    if (m) {
        m->list = json_incref(*list);
        m->sender = json_incref(*snd);
    }
}

json_t *msg_context_data(msg_context *c, const sub_rec *s, td_error *e)
{
    c->subscriber_id = s->id;
    if (c->memo) {
        c->memo->n = 0;
        buf_reset(&c->memo->arena);
    }
    json_error_t je;
    json_t *attrs = json_loads(s->attribs && *s->attribs ? s->attribs : "{}", 0, &je);
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        td_err_set(e, TD_EINVAL, "the attributes of %s are not a JSON object", s->email);
        return NULL;
    }
    json_t *sub = json_object();
    json_object_set_new(sub, "id", json_integer(s->id));
    json_object_set_new(sub, "email", json_string(s->email ? s->email : ""));
    json_object_set_new(sub, "name", json_string(s->name ? s->name : ""));
    json_object_set_new(sub, "first_name", first_word(s->name));
    json_object_set_new(sub, "attributes", attrs);
    json_object_set_new(sub, "timezone", str_or_null(s->timezone));
    json_object_set_new(sub, "locale", str_or_null(s->locale));

    json_t *d = json_object();
    json_object_set_new(d, "subscriber", sub);
    json_t *list, *camp, *snd;
    campaign_parts(c, &list, &camp, &snd);
    json_object_set_new(d, "list", list);
    json_object_set_new(d, "campaign", camp);
    json_object_set_new(d, "sender", snd);
    if (add_url(c, d, "unsubscribe_url", TRACK_UNSUB, e) ||
        add_url(c, d, "preferences_url", TRACK_PREFS, e) ||
        add_url(c, d, "view_url", TRACK_VIEW, e) || add_url(c, d, "open_url", TRACK_OPEN, e)) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* decode_entities turns the HTML character references mustache escaping
 * (and hand-written attribute values) use back into characters, writing
 * at most cap bytes to out. Returns the length, or cap + 1 when the result
 * does not fit. */
static size_t decode_entities(const char *s, size_t n, char *out, size_t cap)
{
    static const struct {
        const char *name;
        size_t len;
        char c;
    } named[] = {{"amp;", 4, '&'}, {"lt;", 3, '<'}, {"gt;", 3, '>'}, {"quot;", 5, '"'},
                 {"apos;", 5, '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        /* The text between references goes in one copy. */
        const char *amp = memchr(s + i, '&', n - i);
        size_t run = amp ? (size_t)(amp - (s + i)) : n - i;
        if (run > cap - o)
            return cap + 1;
        memcpy(out + o, s + i, run);
        o += run;
        i += run;
        if (i == n)
            break;
        if (o == cap)
            return cap + 1;
        bool done = false;
        for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++) {
            size_t l = named[k].len;
            if (n - i - 1 >= l && !memcmp(s + i + 1, named[k].name, l)) {
                out[o++] = named[k].c;
                i += l;
                done = true;
            }
        }
        if (!done && i + 2 < n && s[i + 1] == '#') {
            size_t j = i + 2;
            unsigned long v = 0;
            bool hex = j < n && (s[j] == 'x' || s[j] == 'X');
            if (hex)
                j++;
            size_t digits = 0;
            while (j < n && digits < 6) {
                char ch = s[j];
                int dv = ch >= '0' && ch <= '9'                ? ch - '0'
                         : hex && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                         : hex && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                         : -1;
                if (dv < 0)
                    break;
                v = v * (hex ? 16 : 10) + (unsigned long)dv;
                j++;
                digits++;
            }
            /* Only ASCII references: a URL's other characters are
             * percent-encoded, and anything else is left as written. */
            if (digits && j < n && s[j] == ';' && v > 0x20 && v < 0x7f) {
                out[o++] = (char)v;
                i = j;
                done = true;
            }
        }
        if (!done)
            out[o++] = '&';
    }
    return o;
}

static bool url_ok(const char *u, size_t n)
{
    if (!((n > 7 && !strncasecmp(u, "http://", 7)) || (n > 8 && !strncasecmp(u, "https://", 8))))
        return false;
    /* no control, SP or DEL, 8 bytes at a time with hasless and haszero
     * of "Bit Twiddling Hacks" (exact as yes/no answers); bytes >= 0x80
     * (UTF-8) are allowed */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, del;
        memcpy(&w, u + i, 8);
        del = w ^ (ones * 0x7f);
        if (((w - ones * 0x21) & ~w & highs) || ((del - ones) & ~del & highs))
            return false;
    }
    for (; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
            return false;
    return true;
}

/* html_escape_tail HTML-escapes out[from..) in place (a click URL is
 * base URL and base64url: only an odd base URL holds such a character). */
static int html_escape_tail(buf *out, size_t from)
{
    size_t n = out->len - from;
    if (strcspn(out->data + from, "&\"<>'") == n)
        return TD_OK;
    char *copy = xmalloc(n);
    memcpy(copy, out->data + from, n);
    buf_truncate(out, from);
    int rc = TD_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        switch (copy[i]) {
        case '&': rc = buf_puts(out, "&amp;"); break;
        case '"': rc = buf_puts(out, "&quot;"); break;
        case '<': rc = buf_puts(out, "&lt;"); break;
        case '>': rc = buf_puts(out, "&gt;"); break;
        case '\'': rc = buf_puts(out, "&#39;"); break;
        default: rc = buf_putc(out, copy[i]);
        }
    }
    free(copy);
    return rc;
}

/* Speed: a campaign message calls this for every tracked link twice (HTML
 * and text), so it works on a stack copy of the target and appends the URL
 * straight to the output, with no buffer allocated per link and no byte
 * appended one by one. */
static int track_fn(void *ud, const char *text, size_t len, buf *out, td_error *e)
{
    struct msg_track_helper *h = ud;
    char url[TRACK_DATA_MAX + 1];
    /* Spaces and line breaks around the URL come from template layout. */
    while (len && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t'))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                   text[len - 1] == '\t'))
        len--;
    size_t n = h->html ? decode_entities(text, len, url, TRACK_DATA_MAX) : len;
    if (n > TRACK_DATA_MAX)
        return td_err_set(e, TD_EINVAL, "a tracked link is longer than %d bytes", TRACK_DATA_MAX);
    if (!h->html)
        memcpy(url, text, n);
    url[n] = '\0';
    track_claims cl = {.kind = TRACK_CLICK,
                       .campaign_id = h->c->campaign_id,
                       .subscriber_id = h->c->subscriber_id,
                       .list_id = h->c->list_id,
                       .data = url,
                       .data_len = n};
    size_t start = out->len, made;
    uint64_t hash = h->c->memo ? memo_hash(url, n) : 0;
    const char *memo = memo_find(h->c->memo, hash, url, n, &made);
    int rc;
    if (memo) { /* checked when it was made */
        rc = buf_append(out, memo, made) ? td_err_set(e, TD_ETOOBIG, "no room for a tracking URL")
                                         : TD_OK;
    } else if (!url_ok(url, n)) {
        return td_err_set(e, TD_EINVAL,
                          "{{#track}} wraps '%.80s', which is not an http or https URL without "
                          "spaces",
                          url);
    } else if (!(rc = track_url(h->c->key, h->c->base_url, &cl, out, e))) {
        memo_add(h->c->memo, hash, url, n, out->data + start, out->len - start);
    }
    if (!rc && h->html && (rc = html_escape_tail(out, start))) {
        buf_truncate(out, start);
        td_err_set(e, rc, "no room for a tracking URL");
    }
    return rc;
}

tmpl_helper msg_context_helper(msg_context *c, bool html)
{
    /* The helper's state lives in the context, so nothing is allocated. */
    struct msg_track_helper *h = &c->helper[html ? 1 : 0];
    h->c = c;
    h->html = html;
    return (tmpl_helper){.name = "track", .fn = track_fn, .ud = h};
}
