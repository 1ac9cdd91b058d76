/* import: CSV import of subscribers (see import.h). */
#include "audience/import.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audience/subscriber.h"
#include "util/buf.h"
#include "util/csv.h"
#include "util/jsonstr.h"
#include "util/text.h"
#include "util/xalloc.h"

#define FIELD_CAP (1u << 20)  /* 1 MiB per cell */
#define RECORD_CAP (4u << 20) /* 4 MiB per row */
#define MAX_COLUMNS 256

enum col_kind { COL_EMAIL, COL_NAME, COL_ATTRIBUTES, COL_TZ, COL_LOCALE, COL_SUBSCRIPTION,
                COL_STATUS, COL_ATTR };

struct column {
    enum col_kind kind;
    char *name; /* as in the header */
    char *key;  /* for COL_ATTR: the JSON-quoted name followed by ':' */
};

struct importer {
    store *s;
    const import_opts *o;
    import_stats *st;
    struct column cols[MAX_COLUMNS];
    size_t ncols;
    size_t attr_order[MAX_COLUMNS]; /* COL_ATTR columns sorted by name */
    size_t nattr;
    bool has_attributes_col;
    buf attribs, name; /* per-row scratch, reused */
};

static const char *const reserved[] = {"email",  "name",         "attributes", "timezone",
                                       "locale", "subscription", "status"};

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static struct importer *sort_ctx;
static int by_name(const void *a, const void *b)
{
    return strcmp(sort_ctx->cols[*(const size_t *)a].name, sort_ctx->cols[*(const size_t *)b].name);
}

static int read_header(struct importer *im, const csv_record *rec, td_error *e)
{
    bool have_email = false;
    if (rec->nfields > MAX_COLUMNS)
        return td_err_set(e, TD_EINVAL, "line %zu: the header has %zu columns; at most %d",
                          rec->line, rec->nfields, MAX_COLUMNS);
    for (size_t i = 0; i < rec->nfields; i++) {
        const char *f = rec->fields[i];
        size_t n = rec->lens[i];
        trim(&f, &n);
        if (n == 0)
            return td_err_set(e, TD_EINVAL, "line %zu: column %zu of the header has no name",
                              rec->line, i + 1);
        if (text_check("a column name", f, n, 128, e))
            return td_err_set(e, TD_EINVAL, "line %zu: column %zu: %s", rec->line, i + 1,
                              e ? e->msg : "");
        struct column *c = &im->cols[i];
        im->ncols = i + 1;
        c->kind = COL_ATTR;
        for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
            if (strlen(reserved[k]) == n && !strncasecmp(f, reserved[k], n))
                c->kind = (enum col_kind)k;
        c->name = xstrndup(f, n);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(im->cols[j].name, c->name))
                return td_err_set(e, TD_EINVAL, "line %zu: the column '%s' appears twice",
                                  rec->line, c->name);
        have_email |= c->kind == COL_EMAIL;
        im->has_attributes_col |= c->kind == COL_ATTRIBUTES;
        if (c->kind == COL_ATTR) {
            buf k;
            buf_init(&k, BUF_NOCAP);
            jsonstr_append(&k, c->name, n);
            buf_putc(&k, ':');
            c->key = buf_steal(&k);
            buf_free(&k);
            im->attr_order[im->nattr++] = i;
        }
    }
    if (!have_email)
        return td_err_set(e, TD_EINVAL,
                          "line %zu: the header has no 'email' column (the first row must "
                          "name the columns, e.g. email,name,city)",
                          rec->line);
    sort_ctx = im;
    qsort(im->attr_order, im->nattr, sizeof im->attr_order[0], by_name);
    return TD_OK;
}

static int append_cell(buf *b, const char *f, size_t n)
{
    /* Numbers stay numbers, in canonical form (so "4.10" and the "4.1" an
     * export writes are one value); everything else (zip codes with leading
     * zeros, phone numbers with '+', integers past 64 bits) is text. */
    size_t at = b->len;
    if (jsonstr_number(b, f, n))
        return 0;
    buf_truncate(b, at);
    return jsonstr_append(b, f, n);
}

/* One member of the attributes object, for the merge with an 'attributes'
 * column. */
struct pair {
    const char *key; /* unquoted */
    char *text;      /* "key":value, owned */
};

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->key, ((const struct pair *)b)->key);
}

/* build_attribs writes the row's attributes as a canonical JSON object (keys
 * sorted, compact) into im->attribs. The common case, no 'attributes'
 * column, writes straight from the cells in the order fixed by the header. */
static int build_attribs(struct importer *im, const csv_record *rec, const char *json,
                         size_t json_len, td_error *e)
{
    buf *b = &im->attribs;
    buf_reset(b);
    buf_putc(b, '{');
    if (!json_len) {
        bool first = true;
        for (size_t k = 0; k < im->nattr; k++) {
            size_t i = im->attr_order[k];
            if (!rec->lens[i])
                continue;
            if (!first)
                buf_putc(b, ',');
            first = false;
            buf_puts(b, im->cols[i].key);
            if (append_cell(b, rec->fields[i], rec->lens[i]))
                return td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes",
                                  SUB_ATTRIBS_MAX);
        }
        if (buf_putc(b, '}'))
            return td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes",
                              SUB_ATTRIBS_MAX);
        return TD_OK;
    }
    char *canon = subscriber_attribs(json, json_len, e);
    if (!canon)
        return TD_EINVAL;
    json_t *obj = json_loads(canon, 0, NULL);
    free(canon);
    size_t cap = json_object_size(obj) + im->nattr, np = 0;
    struct pair *pairs = xcalloc(cap ? cap : 1, sizeof *pairs);
    buf t;
    buf_init(&t, BUF_NOCAP);
    for (size_t k = 0; k < im->nattr; k++) {
        size_t i = im->attr_order[k];
        if (!rec->lens[i])
            continue;
        buf_reset(&t);
        buf_puts(&t, im->cols[i].key);
        append_cell(&t, rec->fields[i], rec->lens[i]);
        pairs[np].key = im->cols[i].name;
        pairs[np++].text = buf_steal(&t);
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool overridden = false;
        for (size_t p = 0; p < np && !overridden; p++)
            overridden = !strcmp(pairs[p].key, key);
        if (overridden)
            continue; /* a column of the same name wins */
        buf_reset(&t);
        jsonstr_append(&t, key, strlen(key));
        buf_putc(&t, ':');
        jsonstr_value(&t, v);
        pairs[np].key = key;
        pairs[np++].text = buf_steal(&t);
    }
    qsort(pairs, np, sizeof *pairs, by_key);
    int rc = TD_OK;
    for (size_t p = 0; p < np; p++) {
        if (!rc && ((p && buf_putc(b, ',')) || buf_puts(b, pairs[p].text)))
            rc = td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes",
                            SUB_ATTRIBS_MAX);
        free(pairs[p].text);
    }
    if (!rc && buf_putc(b, '}'))
        rc = td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes", SUB_ATTRIBS_MAX);
    buf_free(&t);
    free(pairs);
    json_decref(obj);
    return rc;
}

/* row checks one record and stages it. Returns 0, TD_EINVAL for a refused
 * row (reason in e), or a store error. */
static int row(struct importer *im, const csv_record *rec, td_error *e)
{
    if (rec->nfields != im->ncols)
        return td_err_set(e, TD_EINVAL, "has %zu columns; the header has %zu", rec->nfields,
                          im->ncols);
    sub_rec r = {0};
    const char *subscription = NULL, *json = NULL;
    size_t json_len = 0;
    char *email = NULL;
    int rc = TD_OK;
    buf_reset(&im->name);
    for (size_t i = 0; i < rec->nfields && !rc; i++) {
        const char *f = rec->fields[i];
        size_t n = rec->lens[i];
        switch (im->cols[i].kind) {
        case COL_EMAIL:
            trim(&f, &n);
            if (!n)
                rc = td_err_set(e, TD_EINVAL, "the email is empty");
            else if (!(email = subscriber_email(f, n, e)))
                rc = TD_EINVAL;
            break;
        case COL_NAME:
            trim(&f, &n);
            buf_append(&im->name, f, n);
            break;
        case COL_ATTRIBUTES:
            trim(&f, &n);
            json = f;
            json_len = n;
            break;
        case COL_TZ:
            trim(&f, &n);
            r.timezone = n ? (char *)f : NULL; /* cells are NUL-terminated */
            if (n && n != strlen(f))
                rc = td_err_set(e, TD_EINVAL, "the time zone has spaces around it");
            break;
        case COL_LOCALE:
            trim(&f, &n);
            r.locale = n ? (char *)f : NULL;
            if (n && n != strlen(f))
                rc = td_err_set(e, TD_EINVAL, "the locale has spaces around it");
            break;
        case COL_SUBSCRIPTION:
            trim(&f, &n);
            if (n) {
                subscription = f;
                if (n != strlen(f) || !model_member_status_ok(f))
                    rc = td_err_set(e, TD_EINVAL,
                                    "subscription must be confirmed, unconfirmed or "
                                    "unsubscribed");
            }
            break;
        case COL_STATUS:
            /* 'blocklisted' blocklists; 'enabled' (or empty) changes
             * nothing: an import never lifts a blocklisting. */
            trim(&f, &n);
            if (n) {
                if (n != strlen(f) || !model_sub_status_ok(f))
                    rc = td_err_set(e, TD_EINVAL, "status must be enabled or blocklisted");
                else if (!strcmp(f, "blocklisted"))
                    r.status = (char *)f;
            }
            break;
        case COL_ATTR:
            break;
        }
    }
    if (!rc && !email)
        rc = td_err_set(e, TD_EINVAL, "the email is empty");
    if (!rc)
        rc = build_attribs(im, rec, json, json_len, e);
    if (!rc) {
        r.email = email;
        r.name = im->name.data;
        r.attribs = im->attribs.data;
        rc = subscriber_check(&r, e);
    }
    if (!rc) {
        rc = store_bulk_add(im->s, &r, subscription, e);
        if (rc == TD_EINVAL || rc == TD_EEXISTS)
            rc = TD_EDB; /* the row passed our checks: a refusal now is not the row's fault */
    }
    free(email);
    return rc;
}

static int flush(struct importer *im, td_error *e)
{
    bulk_stats bs = {0};
    int rc = store_bulk_flush(im->s, &bs, e);
    im->st->created += bs.created;
    im->st->updated += bs.updated;
    im->st->unchanged += bs.unchanged;
    im->st->memberships += bs.memberships;
    return rc;
}

int import_csv(store *s, FILE *in, const import_opts *o, import_stats *st, td_error *e)
{
    memset(st, 0, sizeof *st);
    struct importer im = {.s = s, .o = o, .st = st};
    buf_init(&im.attribs, SUB_ATTRIBS_MAX);
    buf_init(&im.name, BUF_NOCAP);
    csv_reader *r = csv_reader_new(in, FIELD_CAP, RECORD_CAP);
    unsigned batch = o->batch ? o->batch : 50000;
    unsigned staged = 0;
    bool header = false;
    csv_record rec;
    td_error re = {0};
    bulk_opts bo = {.list_id = o->list_id,
                    .mode = o->mode,
                    .default_status = o->mode == SUB_MODE_BLOCKLIST ? "unsubscribed"
                                      : strcmp(o->list_optin, "double") ? "confirmed"
                                                                        : "unconfirmed",
                    .owner_id = o->owner_id,
                    .team_id = o->team_id,
                    /* parse and check the next batch while one is written */
                    .background = true};
    int rc = store_bulk_begin(s, &bo, e);

    while (!rc) {
        int c = csv_next(r, &rec, &re);
        if (c == TD_ENOTFOUND)
            break;
        if (c == TD_EIO) {
            rc = td_err_set(e, TD_EIO, "%s", re.msg);
            break;
        }
        if (!header) {
            if (c) {
                rc = td_err_set(e, TD_EINVAL, "the header row is not valid: %s", re.msg);
                break;
            }
            if ((rc = read_header(&im, &rec, e)))
                break;
            header = true;
            continue;
        }
        st->rows++;
        if (c == TD_EINVAL) { /* the reader's message names the line */
            st->invalid++;
            if (o->reject)
                o->reject(o->ud, rec.line, re.msg);
            continue;
        }
        int r2 = row(&im, &rec, &re);
        if (r2 == TD_EINVAL) {
            st->invalid++;
            if (o->reject) {
                char msg[600];
                snprintf(msg, sizeof msg, "line %zu: %s", rec.line, re.msg);
                o->reject(o->ud, rec.line, msg);
            }
        } else if (r2) {
            rc = td_err_set(e, r2, "line %zu: %s", rec.line, re.msg);
        } else if (++staged >= batch) {
            rc = flush(&im, e);
            staged = 0;
        }
        if (o->progress && (st->rows & 8191) == 0) {
            st->bytes = csv_reader_bytes(r);
            o->progress(o->ud, st);
        }
    }
    if (!rc && staged)
        rc = flush(&im, e);
    if (!rc) {
        bulk_stats bs = {0};
        rc = store_bulk_wait(s, &bs, e);
        st->created += bs.created;
        st->updated += bs.updated;
        st->unchanged += bs.unchanged;
        st->memberships += bs.memberships;
    }
    store_bulk_end(s);
    if (!rc && !header)
        rc = td_err_set(e, TD_EINVAL,
                        "the file is empty: the first row must name the columns, e.g. email,name");
    st->bytes = csv_reader_bytes(r);
    if (o->progress)
        o->progress(o->ud, st);
    for (size_t i = 0; i < im.ncols; i++) {
        free(im.cols[i].name);
        free(im.cols[i].key);
    }
    buf_free(&im.attribs);
    buf_free(&im.name);
    csv_reader_free(r);
    return rc;
}
