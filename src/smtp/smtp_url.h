/* smtp_url: relay URLs, the one way a relay is named (`tidings relay add`,
 * the relay table, the delivery workers).
 *
 *   smtp://host[:port][?tls=opportunistic|required|none][&verify=yes|no]
 *   smtp://user:pass@host[:port]...      (user and pass percent-decoded)
 *   smtps://[user:pass@]host[:port][?verify=yes|no]   (implicit TLS)
 *   maildir:/absolute/path              (one file per finished message)
 *
 * Defaults: port 25 for smtp, 465 for smtps; STARTTLS opportunistic; the
 * certificate is verified for tls=required and smtps, not for opportunistic
 * (as MTAs do: an unverified TLS session is still better than plain text).
 * `verify=` overrides either default. Hosts are DNS names, IPv4 literals or
 * bracketed IPv6 literals. Anything else is refused with a message that says
 * what is wrong. The contract is in docs/internals/smtp.md. */
#ifndef TD_SMTP_SMTP_URL_H
#define TD_SMTP_SMTP_URL_H

#include <stdbool.h>

#include "util/err.h"

/* Caps on the parts of a URL (octets). */
#define SMTP_URL_MAX 2048
#define SMTP_URL_HOST_MAX 255
#define SMTP_URL_CRED_MAX 255 /* user or password, decoded */

enum smtp_url_kind { SMTP_URL_SMTP, SMTP_URL_SMTPS, SMTP_URL_MAILDIR };

enum smtp_tls_mode {
    SMTP_TLS_OPPORTUNISTIC, /* STARTTLS when offered, plain text otherwise */
    SMTP_TLS_REQUIRED,      /* STARTTLS or fail */
    SMTP_TLS_NONE,          /* never */
    SMTP_TLS_IMPLICIT,      /* smtps: TLS from the first byte */
};

/* A parsed relay URL; a value type whose strings it owns (smtp_url_clear). */
typedef struct smtp_url {
    int kind;   /* enum smtp_url_kind */
    char *host; /* smtp/smtps: name or address, IPv6 without brackets */
    unsigned port;
    char *user;  /* decoded; NULL when the URL has no credentials */
    char *pass;  /* decoded; NULL when the URL has no credentials */
    int tls;     /* enum smtp_tls_mode */
    bool verify; /* verify the server certificate and host name */
    char *path;  /* maildir: the directory */
} smtp_url;

/* smtp_url_parse parses the NUL-terminated s into *out (overwritten, not
 * freed). Returns 0, or TD_EINVAL with a message in e; on failure *out is
 * zeroed so smtp_url_clear on it is harmless. */
int smtp_url_parse(const char *s, smtp_url *out, td_error *e);

/* smtp_url_clear frees u's strings and zeroes it (the password is wiped). */
void smtp_url_clear(smtp_url *u);

/* smtp_url_format returns the URL in its canonical form (scheme and host
 * lower-case, explicit port, non-default options only), with the password
 * shown as "****" when mask_password is true. A new string the caller frees.
 * Parsing the unmasked form gives back the same URL. */
char *smtp_url_format(const smtp_url *u, bool mask_password);

#endif
