/* import: CSV import of subscribers (see import.h). */
#include "audience/import.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audience/subscriber.h"
#include "util/buf.h"
#include "util/csv.h"
#include "util/text.h"
#include "util/xalloc.h"

#define FIELD_CAP (1u << 20)  /* 1 MiB per cell */
#define RECORD_CAP (4u << 20) /* 4 MiB per row */
#define MAX_COLUMNS 256

enum col_kind { COL_EMAIL, COL_NAME, COL_ATTRIBUTES, COL_TZ, COL_LOCALE, COL_SUBSCRIPTION,
                COL_ATTR };

struct column {
    enum col_kind kind;
    char *name; /* attribute name for COL_ATTR */
};

struct importer {
    store *s;
    const import_opts *o;
    import_stats *st;
    struct column cols[MAX_COLUMNS];
    size_t ncols;
};

static const char *const reserved[] = {"email", "name", "attributes", "timezone", "locale",
                                       "subscription"};

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
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
        c->kind = COL_ATTR;
        for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
            if (strlen(reserved[k]) == n && !strncasecmp(f, reserved[k], n))
                c->kind = (enum col_kind)k;
        c->name = xstrndup(f, n);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(im->cols[j].name, c->name)) {
                im->ncols = i + 1;
                return td_err_set(e, TD_EINVAL, "line %zu: the column '%s' appears twice",
                                  rec->line, c->name);
            }
        have_email |= c->kind == COL_EMAIL;
    }
    im->ncols = rec->nfields;
    if (!have_email)
        return td_err_set(e, TD_EINVAL,
                          "line %zu: the header has no 'email' column (the first row must "
                          "name the columns, e.g. email,name,city)",
                          rec->line);
    return TD_OK;
}

/* is_json_number is true for a cell that JSON reads as a number: those stay
 * numbers; everything else (zip codes with leading zeros included) is text. */
static bool is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t k = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t k = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return false;
    }
    return i == n && n <= 32;
}

/* row builds a subscriber from one record and stores it. Returns 0, TD_EINVAL
 * for a refused row (reason in e), or a store error. */
static int row(struct importer *im, const csv_record *rec, td_error *e)
{
    if (rec->nfields != im->ncols)
        return td_err_set(e, TD_EINVAL, "has %zu columns; the header has %zu", rec->nfields,
                          im->ncols);
    sub_rec r = {.status = im->o->mode == SUB_MODE_BLOCKLIST ? "blocklisted" : "enabled",
                 .owner_id = im->o->owner_id,
                 .team_id = im->o->team_id};
    const char *subscription = NULL;
    char *email = NULL, *attribs = NULL, *name = NULL;
    json_t *obj = NULL;
    int rc = TD_OK;
    for (size_t i = 0; i < rec->nfields && !rc; i++) {
        const char *f = rec->fields[i];
        size_t n = rec->lens[i];
        const struct column *c = &im->cols[i];
        switch (c->kind) {
        case COL_EMAIL:
            trim(&f, &n);
            if (!(email = subscriber_email(f, n, e)))
                rc = TD_EINVAL;
            break;
        case COL_NAME:
            trim(&f, &n);
            name = xstrndup(f, n);
            r.name = name;
            break;
        case COL_ATTRIBUTES:
            trim(&f, &n);
            if (n) {
                char *canon = subscriber_attribs(f, n, e);
                if (!canon) {
                    rc = TD_EINVAL;
                    break;
                }
                json_t *a = json_loads(canon, 0, NULL);
                free(canon);
                if (!obj)
                    obj = json_object();
                json_object_update(obj, a);
                json_decref(a);
            }
            break;
        case COL_TZ:
            trim(&f, &n);
            r.timezone = n ? (char *)f : NULL;
            break;
        case COL_LOCALE:
            trim(&f, &n);
            r.locale = n ? (char *)f : NULL;
            break;
        case COL_SUBSCRIPTION:
            trim(&f, &n);
            if (n) {
                subscription = f;
                if (!model_member_status_ok(f) || strlen(f) != n)
                    rc = td_err_set(e, TD_EINVAL,
                                    "subscription must be confirmed, unconfirmed or "
                                    "unsubscribed");
            }
            break;
        case COL_ATTR:
            if (n == 0)
                break;
            if (!obj)
                obj = json_object();
            json_t *v = is_json_number(f, n) ? json_loadb(f, n, JSON_DECODE_ANY, NULL)
                                             : json_stringn(f, n);
            if (!v)
                rc = td_err_set(e, TD_EINVAL, "column '%s' is not valid UTF-8", c->name);
            else
                json_object_set_new(obj, c->name, v);
            break;
        }
    }
    if (!rc && !email)
        rc = td_err_set(e, TD_EINVAL, "the email is empty");
    if (!rc && obj) {
        attribs = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (strlen(attribs) > SUB_ATTRIBS_MAX)
            rc = td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes",
                            SUB_ATTRIBS_MAX);
        r.attribs = attribs;
    }
    /* The row's strings are NUL-terminated inside the record, so the
     * timezone and locale checks can read them directly. */
    if (!rc)
        rc = subscriber_check(&r, e);
    if (!rc) {
        r.email = email;
        int64_t id = 0;
        sub_outcome out;
        rc = store_sub_upsert(im->s, &r, im->o->mode, &id, &out, e);
        if (!rc) {
            if (out == SUB_CREATED)
                im->st->created++;
            else if (out == SUB_UPDATED)
                im->st->updated++;
            else
                im->st->unchanged++;
            const char *status = subscription;
            if (im->o->mode == SUB_MODE_BLOCKLIST)
                status = "unsubscribed";
            else if (!status)
                status = strcmp(im->o->list_optin, "double") ? "confirmed" : "unconfirmed";
            /* An unsubscribe is always honoured; anything else only creates
             * a membership that does not exist yet. */
            bool keep = strcmp(status, "unsubscribed") != 0;
            sub_outcome mo;
            rc = store_member_set(im->s, im->o->list_id, id, status, keep, &mo, e);
            if (!rc && mo == SUB_CREATED)
                im->st->memberships++;
            if (rc == TD_EINVAL) /* a refused value must not look like a bad row */
                rc = TD_EDB;
        } else if (rc == TD_EINVAL || rc == TD_EEXISTS) {
            rc = TD_EDB; /* the row passed our checks: a schema refusal is a bug */
        }
    }
    json_decref(obj);
    free(attribs);
    free(name);
    free(email);
    return rc;
}

int import_csv(store *s, FILE *in, const import_opts *o, import_stats *st, td_error *e)
{
    memset(st, 0, sizeof *st);
    struct importer im = {.s = s, .o = o, .st = st};
    csv_reader *r = csv_reader_new(in, FIELD_CAP, RECORD_CAP);
    unsigned batch = o->batch ? o->batch : 5000;
    unsigned in_tx = 0;
    bool header = false;
    int rc = TD_OK;
    csv_record rec;
    td_error re = {0};

    for (;;) {
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
        if (c == TD_EINVAL) { /* the reader names the line */
            st->invalid++;
            if (o->reject)
                o->reject(o->ud, rec.line, re.msg);
            continue;
        }
        if (!in_tx) {
            if ((rc = store_begin(s, e)))
                break;
        }
        in_tx++;
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
            break;
        }
        if (in_tx >= batch) {
            if ((rc = store_commit(s, e)))
                break;
            in_tx = 0;
        }
        if (o->progress && (st->rows & 8191) == 0) {
            st->bytes = csv_reader_bytes(r);
            o->progress(o->ud, st);
        }
    }
    if (in_tx) {
        if (rc)
            store_rollback(s);
        else
            rc = store_commit(s, e);
    }
    if (!rc && !header)
        rc = td_err_set(e, TD_EINVAL,
                        "the file is empty: the first row must name the columns, e.g. email,name");
    st->bytes = csv_reader_bytes(r);
    if (o->progress)
        o->progress(o->ud, st);
    for (size_t i = 0; i < im.ncols; i++)
        free(im.cols[i].name);
    csv_reader_free(r);
    return rc;
}
