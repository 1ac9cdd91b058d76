/* inmsg: what acting on an inbound message needs of the message itself,
 * beside what bounce_parse makes of it: the sender, subject, its own
 * Message-ID and the ids it answers (In-Reply-To, References), the addresses
 * it was delivered to (Delivered-To, X-Original-To, Envelope-To, To, Cc: a
 * VERP return path shows up there), its date, whether it says it is
 * automatic (RFC 3834), and its text for a person to read.
 *
 * Parsed with GMime under the same bounds as bounce.h: the first
 * BOUNCE_MAX_INPUT bytes, BOUNCE_MAX_PARTS parts, BOUNCE_MAX_DEPTH levels.
 * Every string is valid UTF-8 and capped. A value type: the struct is public
 * and read-only for the caller; build it with inmsg_parse, free it with
 * inmsg_free. */
#ifndef TD_INBOUND_INMSG_H
#define TD_INBOUND_INMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define INMSG_MAX_BODY (256u << 10) /* bytes of text kept */
#define INMSG_MAX_SUBJECT 1024      /* bytes of subject kept */
#define INMSG_MAX_RCPT 16           /* delivered-to addresses kept */
#define INMSG_MAX_REFS 32           /* ids of In-Reply-To and References kept */

typedef struct inmsg {
    char *from;        /* the From address (lower-case), or NULL */
    char *from_name;   /* its display name, or NULL */
    char *subject;     /* decoded; "" when none */
    char *message_id;  /* without <>, or NULL */
    char *in_reply_to; /* the first id of In-Reply-To, or NULL */
    char **refs;       /* In-Reply-To's ids, then References' from the newest */
    size_t nrefs;
    char **rcpts;      /* addresses it was delivered to, most specific first */
    size_t nrcpts;
    char *body;        /* text: text/plain, else the HTML as text; "" when none */
    int64_t date;      /* its Date as unix time; 0 when none or unreadable */
    bool auto_reply;   /* Auto-Submitted other than "no", X-Autoreply and kin,
                        * Precedence bulk/junk/list/auto_reply */
} inmsg;

/* inmsg_parse reads data[0..len) and stores a new inmsg in *out. Returns 0,
 * or TD_EINVAL with a message in e when no header block can be read (*out
 * is then NULL). The caller frees *out with inmsg_free. */
int inmsg_parse(const char *data, size_t len, inmsg **out, td_error *e);

/* inmsg_free releases m; NULL is a no-op. */
void inmsg_free(inmsg *m);

#endif
