/* dsn: RFC 3464 / RFC 5965 field-group parser (see dsn.h). */
#include "inbound/dsn.h"

#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A field line: a name of letters, digits and '-' (starting with a letter)
 * followed by ':'. Returns the name length, or 0 when the line is not one. */
static size_t field_name_len(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    size_t i = 1;
    while (i < n && i < 64 &&
           ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
            (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
        i++;
    if (i < n && s[i] == ':')
        return i;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\r')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

typedef struct parse_state {
    dsn_doc *doc;
    dsn_group *cur; /* group being filled, or NULL */
    dsn_field *last; /* field a continuation line extends */
} parse_state;

static void end_group(parse_state *st)
{
    st->cur = NULL;
    st->last = NULL;
}

static dsn_group *new_group(parse_state *st)
{
    dsn_doc *d = st->doc;
    if (d->n >= DSN_MAX_GROUPS)
        return NULL;
    d->g = xrealloc(d->g, (d->n + 1) * sizeof *d->g);
    d->g[d->n].f = NULL;
    d->g[d->n].n = 0;
    st->cur = &d->g[d->n++];
    st->last = NULL;
    return st->cur;
}

static void add_field(parse_state *st, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (st->cur) {
        /* A repeated field means the writer left out the blank line
         * between two groups. */
        for (size_t i = 0; i < st->cur->n; i++)
            if (strlen(st->cur->f[i].name) == nlen && !strncasecmp(st->cur->f[i].name, name, nlen)) {
                end_group(st);
                break;
            }
    }
    if (!st->cur && !new_group(st))
        return;
    dsn_group *g = st->cur;
    if (g->n >= DSN_MAX_FIELDS) {
        st->last = NULL;
        return;
    }
    if (vlen > DSN_MAX_VALUE)
        vlen = DSN_MAX_VALUE;
    g->f = xrealloc(g->f, (g->n + 1) * sizeof *g->f);
    g->f[g->n].name = xstrndup(name, nlen);
    g->f[g->n].value = xstrndup(val, vlen);
    st->last = &g->f[g->n++];
}

static void extend_field(parse_state *st, const char *val, size_t vlen)
{
    dsn_field *f = st->last;
    size_t have = strlen(f->value);
    if (have >= DSN_MAX_VALUE)
        return;
    if (vlen > DSN_MAX_VALUE - have)
        vlen = DSN_MAX_VALUE - have;
    f->value = xrealloc(f->value, have + 1 + vlen + 1);
    f->value[have] = ' ';
    memcpy(f->value + have + 1, val, vlen);
    f->value[have + 1 + vlen] = '\0';
}

void dsn_parse(const char *text, size_t len, dsn_doc *out)
{
    out->g = NULL;
    out->n = 0;
    parse_state st = {out, NULL, NULL};
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            n--;
        const char *t = line;
        size_t tn = n;
        trim(&t, &tn);
        if (tn == 0) {
            end_group(&st);
            continue;
        }
        if ((line[0] == ' ' || line[0] == '\t') && st.last) {
            extend_field(&st, t, tn);
            continue;
        }
        size_t nl_len = field_name_len(line, n);
        if (nl_len == 0) {
            /* Prose inside a pasted report: it separates groups. */
            end_group(&st);
            continue;
        }
        const char *v = line + nl_len + 1;
        size_t vn = n - nl_len - 1;
        trim(&v, &vn);
        add_field(&st, line, nl_len, v, vn);
    }
}

void dsn_doc_free(dsn_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        for (size_t j = 0; j < d->g[i].n; j++) {
            free(d->g[i].f[j].name);
            free(d->g[i].f[j].value);
        }
        free(d->g[i].f);
    }
    free(d->g);
    d->g = NULL;
    d->n = 0;
}

const char *dsn_get(const dsn_group *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcasecmp(g->f[i].name, name))
            return g->f[i].value;
    return NULL;
}

int dsn_has_recipient(const dsn_group *g)
{
    return dsn_get(g, "Final-Recipient") || dsn_get(g, "Original-Recipient");
}
