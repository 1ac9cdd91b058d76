/* subscriber: the rules a subscriber record must meet before it is stored,
 * shared by the CLI, CSV import and (later) the API and signup forms. */
#ifndef TD_AUDIENCE_SUBSCRIBER_H
#define TD_AUDIENCE_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>

#include "store/model.h"
#include "util/err.h"

#define SUB_NAME_MAX 256
#define SUB_ATTRIBS_MAX 65536

/* subscriber_email normalises an address for storage (mime/addr rules:
 * domain lower-cased and in A-labels, local part kept). Returns a new string
 * the caller frees, or NULL with e saying why. */
char *subscriber_email(const char *s, size_t len, td_error *e);

/* subscriber_attribs checks that json (len bytes) is a JSON object of at most
 * SUB_ATTRIBS_MAX bytes and returns its canonical form (compact, keys sorted)
 * as a new string, or NULL with e saying why. Canonical text is what makes a
 * re-import that changes nothing detectable. */
char *subscriber_attribs(const char *json, size_t len, td_error *e);

/* subscriber_check validates the text fields of r that are set: name,
 * status, time zone, locale. 0 or TD_EINVAL. */
int subscriber_check(const sub_rec *r, td_error *e);

#endif
