/* export: a list's subscribers as CSV, in the format import reads back:
 * email,name,attributes,timezone,locale,subscription (RFC 4180, CRLF). */
#ifndef TD_AUDIENCE_EXPORT_H
#define TD_AUDIENCE_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* export_csv writes every member of the list to out, streaming. *rows (may
 * be NULL) gets the number written. 0, or TD_EIO when writing failed, or a
 * store error. */
int export_csv(store *s, int64_t list_id, FILE *out, uint64_t *rows, td_error *e);

#endif
