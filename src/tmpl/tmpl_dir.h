/* tmpl_dir: partials loaded from a folder, DIR/NAME.mustache, for tmpl_render.
 *
 * Names are checked before any file is opened: a name with '/', '\\', "..",
 * a leading '.', or a control character is refused (renders as a missing
 * partial), so a template cannot read outside the folder. */
#ifndef TD_TMPL_TMPL_DIR_H
#define TD_TMPL_TMPL_DIR_H

#include <stddef.h>

#include "util/err.h"

typedef struct tmpl_dir tmpl_dir;

/* tmpl_dir_open checks that dir is a readable folder and returns a loader in
 * *out (the caller frees it with tmpl_dir_free); TD_ENOTFOUND or TD_EIO with
 * a message otherwise. */
int tmpl_dir_open(const char *dir, tmpl_dir **out, td_error *e);

/* tmpl_dir_partial is a tmpl_partial_fn: pass it with the tmpl_dir as ud. It
 * returns the file's contents, borrowed until the next call or
 * tmpl_dir_free, or NULL when the name is refused, the file does not exist,
 * is larger than TMPL_MAX_SRC, or cannot be read (the last three are logged
 * at warn level, because a silently empty partial is hard to spot). */
const char *tmpl_dir_partial(void *ud, const char *name, size_t *len);

/* tmpl_dir_free releases d; tmpl_dir_free(NULL) is a no-op. */
void tmpl_dir_free(tmpl_dir *d);

#endif
