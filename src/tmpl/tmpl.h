/* tmpl: mustache templates, compiled once and rendered once per recipient.
 *
 * Implements the whole mustache spec (interpolation, sections, inverted
 * sections, comments, set delimiters, partials) and its optional inheritance
 * (parents and blocks) and dynamic-names modules; lambdas are left out. Data
 * is a jansson value. See docs/internals/tmpl.md for the compiled form, the
 * whitespace rules, the error messages and the caps.
 *
 * A compiled template is read-mostly: rendering fills its partial cache, so
 * one tmpl must not be rendered from two threads at once (compile one per
 * thread, or lock). */
#ifndef TD_TMPL_TMPL_H
#define TD_TMPL_TMPL_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

typedef struct tmpl tmpl;

/* Returns the source of partial `name` (borrowed until the callback is called
 * again), or NULL if there is none (the partial renders as empty, as the spec
 * says). The answer for a name is cached inside the template on first use, so
 * it must not change between renders; see tmpl_forget_partials. */
typedef const char *(*tmpl_partial_fn)(void *ud, const char *name, size_t *len);

/* Caps that bound one render; 0 in a field keeps the current value. */
typedef struct tmpl_limits {
    size_t max_output;   /* bytes one render may append (default 16 MiB) */
    unsigned max_depth;  /* partial/parent nesting (default 64) */
    size_t max_steps;    /* template nodes visited per render (default 20M) */
} tmpl_limits;

#define TMPL_MAX_SRC (4u << 20)  /* largest template or partial source, bytes */
#define TMPL_MAX_NEST 100        /* sections/blocks nested in one template */

/* tmpl_compile parses src[0..len) (UTF-8) into *out. Returns 0, or TD_EINVAL
 * with "line L, column C: what was wrong: what was expected" in e, or
 * TD_ETOOBIG past TMPL_MAX_SRC or the tag caps. The caller frees *out with
 * tmpl_free; src need not outlive the call. */
int tmpl_compile(const char *src, size_t len, tmpl **out, td_error *e);

/* tmpl_render appends t rendered with data (any JSON value; NULL renders as
 * an empty context) to out. Partials come from `partials` (may be NULL: every
 * partial is then empty, and nothing is cached). Returns 0; TD_ETOOBIG when
 * out's own cap or a tmpl_limits cap is reached (partial recursion, output,
 * steps); TD_EINVAL when a partial fails to compile (message names it). On
 * failure out is put back to its length at entry. Invalid UTF-8 in data
 * strings is rendered with U+FFFD in place of each bad sequence. */
int tmpl_render(tmpl *t, json_t *data, tmpl_partial_fn partials, void *ud, buf *out,
                td_error *e);

/* A helper: a section whose name is a helper's, {{#track}}...{{/track}},
 * renders its content as usual into a scratch buffer, then hands the result
 * to fn, which appends its own output to out (unescaped: fn escapes what it
 * must). This is how campaign templates wrap a link for click tracking
 * without the spec's lambdas. fn returns 0 or a TD_E* code with e set. */
typedef int (*tmpl_helper_fn)(void *ud, const char *text, size_t len, buf *out, td_error *e);
typedef struct tmpl_helper {
    const char *name; /* the section name, a single key (no dots) */
    tmpl_helper_fn fn;
    void *ud;
} tmpl_helper;

/* tmpl_render_with is tmpl_render with helpers[0..nhelpers): a section named
 * as a helper calls the helper instead of looking the name up in data. */
int tmpl_render_with(tmpl *t, json_t *data, tmpl_partial_fn partials, void *ud,
                     const tmpl_helper *helpers, size_t nhelpers, buf *out, td_error *e);

/* tmpl_set_limits changes the caps used by later renders of t. */
void tmpl_set_limits(tmpl *t, const tmpl_limits *l);

/* tmpl_forget_partials drops the compiled partials cached in t, so the next
 * render asks the callback again (after a partial file changed). */
void tmpl_forget_partials(tmpl *t);

/* tmpl_free releases t and its cached partials; tmpl_free(NULL) is a no-op. */
void tmpl_free(tmpl *t);

#endif
