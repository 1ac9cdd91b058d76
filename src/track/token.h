/* track/token: signed tokens for the links in every message (open pixel,
 * click redirect, unsubscribe, preferences, view in browser).
 *
 * A token is base64url (no padding) of: a version byte, the kind, the
 * campaign, subscriber and list ids as varints, the kind's data (the target
 * URL of a click), then the first 16 bytes of an HMAC-SHA-256 over all of
 * that under a key derived from the installation's secret. So a token can
 * be neither forged nor edited into an open redirect, and the server needs
 * no table to resolve one. URLs are <base>/o/T, /c/T, /u/T, /p/T, /v/T and
 * /confirm/T (docs/internals/track.md, docs/internals/http.md). */
#ifndef TD_TRACK_TOKEN_H
#define TD_TRACK_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

typedef enum track_kind {
    TRACK_OPEN = 1,   /* /o/ the open pixel */
    TRACK_CLICK,      /* /c/ a tracked link; data is the target URL */
    TRACK_UNSUB,      /* /u/ unsubscribe page and RFC 8058 one-click POST */
    TRACK_PREFS,      /* /p/ the subscriber's preferences */
    TRACK_VIEW,       /* /v/ the message in a browser */
    TRACK_CONFIRM,    /* /confirm/ a double opt-in confirmation (list and subscriber) */
} track_kind;

#define TRACK_KEY_LEN 32
#define TRACK_DATA_MAX 4096 /* longest click target, bytes */

typedef struct track_claims {
    track_kind kind;
    int64_t campaign_id, subscriber_id, list_id; /* 0 for none */
    char *data;                                  /* NUL-terminated; NULL when none */
    size_t data_len;
} track_claims;

/* track_key derives the signing key from the installation's secret (the
 * 'secret' setting made by `tidings init`). */
void track_key(const char *secret, uint8_t key[TRACK_KEY_LEN]);

/* track_token appends the token for the given claims to out. Returns 0, or
 * TD_EINVAL when data is longer than TRACK_DATA_MAX or an id is negative. */
int track_token(const uint8_t key[TRACK_KEY_LEN], const track_claims *c, buf *out, td_error *e);

/* track_url appends <base>/<path>/<token> to out (the path of the kind:
 * o, c, u, p, v or confirm); base is the public base
 * URL (a trailing '/' is dropped). */
int track_url(const uint8_t key[TRACK_KEY_LEN], const char *base, const track_claims *c, buf *out,
              td_error *e);

/* track_open checks and decodes tok[0..len). Returns 0 with *c filled (the
 * caller frees with track_claims_clear), or TD_EINVAL for a token that is
 * malformed or whose signature does not match (one message for both: no
 * oracle). */
int track_open(const uint8_t key[TRACK_KEY_LEN], const char *tok, size_t len, track_claims *c,
               td_error *e);

void track_claims_clear(track_claims *c);

/* The delivery part of a VERP return path (bounces+cC.TOKEN@domain) and of
 * a Message-ID: "d<delivery id>-<tag>", the tag being 10 characters of
 * lower-case base32 (RFC 4648, 50 bits) of an HMAC over the campaign and
 * delivery ids. Mail to a VERP acts on its delivery (a bounce suppresses the
 * address, "unsubscribe" unsubscribes), so the id alone, which a recipient
 * can read in their own copy and change, must not be enough. Lower case
 * because relays may change the case of a local part. */
#define TRACK_TAG_LEN 10
#define TRACK_VERP_MAX (1 + 20 + 1 + TRACK_TAG_LEN) /* without the NUL */

/* track_tag writes the tag of (campaign_id, delivery_id) for use `use`
 * ('v' for a VERP, 'm' for a Message-ID) to out (NUL-terminated). */
void track_tag(const uint8_t key[TRACK_KEY_LEN], char use, int64_t campaign_id,
               int64_t delivery_id, char out[TRACK_TAG_LEN + 1]);

/* track_verp_token writes "d<delivery_id>-<tag>" to out. */
void track_verp_token(const uint8_t key[TRACK_KEY_LEN], int64_t campaign_id, int64_t delivery_id,
                      char out[TRACK_VERP_MAX + 1]);

/* track_verp_check returns the delivery id a VERP token names when its tag
 * is right for campaign_id, else 0 (malformed, untagged or forged alike). */
int64_t track_verp_check(const uint8_t key[TRACK_KEY_LEN], int64_t campaign_id,
                         const char *token);

#endif
