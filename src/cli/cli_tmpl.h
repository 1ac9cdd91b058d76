/* cli_tmpl: what `tidings render` and `tidings message` share: reading a
 * file whole with a cap, loading JSON data, rendering a template file with
 * partials from a folder. Each function prints its own error (one line,
 * "tidings: ...", with the file name and, for templates and JSON, the line
 * and column) and returns -1, so a command only has to exit 1. */
#ifndef TD_CLI_CLI_TMPL_H
#define TD_CLI_CLI_TMPL_H

#include <jansson.h>
#include <stddef.h>

#include "tmpl/tmpl.h"
#include "util/buf.h"

/* cli_tmpl_read appends the whole of path ("-": standard input) to b (the
 * caller's, initialised); 0, or -1 when it cannot be read or passes max
 * bytes. */
int cli_tmpl_read(const char *path, size_t max, buf *b);

/* cli_tmpl_data loads path as JSON (NULL: an empty object; "-": standard
 * input). Returns a new reference the caller releases with json_decref, or
 * NULL after printing the error. */
json_t *cli_tmpl_data(const char *path);

/* cli_tmpl_render compiles src[0..n) (named `what` in messages) and appends
 * it rendered with data and partials from folder `partials` (may be NULL)
 * to out. Returns 0 or -1. */
int cli_tmpl_render(const char *what, const char *src, size_t n, json_t *data, const char *partials,
                    buf *out);

/* cli_tmpl_render_with is cli_tmpl_render with template helpers (tmpl.h). */
int cli_tmpl_render_with(const char *what, const char *src, size_t n, json_t *data,
                         const char *partials, const tmpl_helper *helpers, size_t nhelpers,
                         buf *out);

/* cli_tmpl_render_fn is cli_tmpl_render_with with partials from fn (see
 * tmpl.h; NULL: none) instead of a folder. */
int cli_tmpl_render_fn(const char *what, const char *src, size_t n, json_t *data,
                       tmpl_partial_fn fn, void *ud, const tmpl_helper *helpers, size_t nhelpers,
                       buf *out);

#endif
