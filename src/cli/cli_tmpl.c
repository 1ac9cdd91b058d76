/* cli_tmpl: template files and JSON data for the CLI (see cli_tmpl.h). */
#include "cli/cli_tmpl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "tmpl/tmpl.h"
#include "tmpl/tmpl_dir.h"

int cli_tmpl_read(const char *path, size_t max, buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n, total = 0;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += n;
        if (total > max || buf_append(b, chunk, n)) {
            cli_error("%s is larger than %zu bytes", path, max);
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(f)) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

json_t *cli_tmpl_data(const char *path)
{
    if (!path)
        return json_object();
    json_error_t je;
    json_t *d = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_DECODE_ANY, &je)
                                       : json_load_file(path, JSON_DECODE_ANY, &je);
    if (!d)
        cli_error("%s: line %d, column %d: %s", path, je.line, je.column, je.text);
    return d;
}

int cli_tmpl_render(const char *what, const char *src, size_t n, json_t *data, const char *partials,
                    buf *out)
{
    return cli_tmpl_render_with(what, src, n, data, partials, NULL, 0, out);
}

int cli_tmpl_render_with(const char *what, const char *src, size_t n, json_t *data,
                         const char *partials, const tmpl_helper *helpers, size_t nhelpers,
                         buf *out)
{
    td_error e = {0};
    tmpl_dir *d = NULL;
    if (partials && tmpl_dir_open(partials, &d, &e)) {
        cli_error("%s", e.msg);
        return -1;
    }
    int rc = cli_tmpl_render_fn(what, src, n, data, d ? tmpl_dir_partial : NULL, d, helpers,
                                nhelpers, out);
    tmpl_dir_free(d);
    return rc;
}

int cli_tmpl_render_fn(const char *what, const char *src, size_t n, json_t *data,
                       tmpl_partial_fn fn, void *ud, const tmpl_helper *helpers, size_t nhelpers,
                       buf *out)
{
    td_error e = {0};
    tmpl *t = NULL;
    int rc = -1;
    if (tmpl_compile(src, n, &t, &e)) {
        cli_error("%s: %s", what, e.msg);
        goto out;
    }
    if (tmpl_render_with(t, data, fn, ud, helpers, nhelpers, out, &e)) {
        cli_error("%s: %s", what, e.msg);
        goto out;
    }
    rc = 0;
out:
    tmpl_free(t);
    return rc;
}
