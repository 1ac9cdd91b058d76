/* export: CSV export of a list (see export.h). */
#include "audience/export.h"

#include <string.h>

#include "util/csv.h"

/* The columns import reads back: email, name, attributes, timezone,
 * locale, subscription (the list membership), status (the subscriber). */
#define NCOLS 7

struct exporter {
    FILE *out;
    uint64_t rows;
};

static int write_row(void *ud, const member_rec *m)
{
    struct exporter *x = ud;
    const char *f[NCOLS] = {m->sub.email,
                            m->sub.name ? m->sub.name : "",
                            m->sub.attribs ? m->sub.attribs : "{}",
                            m->sub.timezone ? m->sub.timezone : "",
                            m->sub.locale ? m->sub.locale : "",
                            m->status,
                            m->sub.status ? m->sub.status : "enabled"};
    size_t n[NCOLS];
    for (int i = 0; i < NCOLS; i++)
        n[i] = strlen(f[i]);
    if (csv_write_record(x->out, f, n, NCOLS))
        return TD_EIO;
    x->rows++;
    return 0;
}

int export_csv(store *s, int64_t list_id, FILE *out, uint64_t *rows, td_error *e)
{
    static const char *const head[NCOLS] = {"email",  "name",         "attributes", "timezone",
                                            "locale", "subscription", "status"};
    size_t n[NCOLS];
    for (int i = 0; i < NCOLS; i++)
        n[i] = strlen(head[i]);
    struct exporter x = {.out = out};
    if (csv_write_record(out, head, n, NCOLS))
        return td_err_set(e, TD_EIO, "writing the export failed");
    int rc = store_member_each(s, list_id, write_row, &x, e);
    if (rc == TD_EIO)
        td_err_set(e, TD_EIO, "writing the export failed");
    if (!rc && fflush(out))
        rc = td_err_set(e, TD_EIO, "writing the export failed");
    if (rows)
        *rows = x.rows;
    return rc;
}
