/* addr: email address validation and normalisation, the one gate every
 * address passes through (CSV import, the CLI, the MIME builder, the SMTP
 * client). It accepts what real SMTP relays accept: an RFC 5321 mailbox
 * (dot-atom or quoted local part; a domain of LDH labels or an [IPv4] /
 * [IPv6:...] literal), RFC 6531 UTF-8 local parts, and IDN domains, which it
 * converts to A-labels. It refuses control characters anywhere, so an address
 * can never smuggle an SMTP command or a header line. The contract is in
 * docs/internals/addr.md. */
#ifndef TD_MIME_ADDR_H
#define TD_MIME_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Limits from RFC 5321 section 4.5.3.1, in octets of the normalised form:
 * the reverse/forward path is 256 octets with its angle brackets. */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_LABEL_MAX 63
#define ADDR_MAX 254

/* A parsed, normalised address. A value type: it may live on the stack; every
 * field is owned by it and released by addr_clear. */
typedef struct addr {
    char *address;        /* local@domain, domain in A-labels, lower-case */
    char *local;          /* local part as given (quotes kept if quoted) */
    char *domain;         /* A-label form, lower-case ([...] for a literal) */
    char *domain_unicode; /* U-label form for display (same text if ASCII) */
    bool smtputf8;        /* the local part is non-ASCII: relay must offer SMTPUTF8 */
} addr;

/* addr_parse validates s[0..len) (surrounding spaces and tabs are ignored)
 * and fills *out. Returns 0, or TD_EINVAL with a message for a person in e
 * (which may be NULL); on failure *out is left zeroed, so addr_clear on it is
 * harmless. *out need not be initialised: it is overwritten, not freed. */
int addr_parse(const char *s, size_t len, addr *out, td_error *e);

/* addr_clear frees a's fields and zeroes it; safe on a zeroed addr. */
void addr_clear(addr *a);

/* addr_normalize returns the normalised address of the NUL-terminated s as a
 * new string the caller frees, or NULL with e filled (TD_EINVAL). */
char *addr_normalize(const char *s, td_error *e);

/* addr_parse_mailbox parses a From/To mailbox: `addr`, `<addr>`,
 * `Name <addr>` or `"Quoted, Name" <addr>`, with UTF-8 names. On success it
 * returns 0, sets *display_name to the unquoted name (a new string the caller
 * frees; NULL when there is none) and fills *out (the caller's, freed with
 * addr_clear). On failure it returns TD_EINVAL with a message in e,
 * *display_name is NULL and *out is zeroed. CR, LF and every other control
 * character are refused anywhere, including in the name. */
int addr_parse_mailbox(const char *s, char **display_name, addr *out, td_error *e);

#endif
