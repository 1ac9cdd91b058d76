/* auth: who is asking. Logins with a password (argon2id, util/secret),
 * sessions held in a cookie, CSRF tokens, API tokens, and the login rate
 * limit.
 *
 * A session token and an API token are 32 random bytes the client holds;
 * the database keeps only their SHA-256, so a copy of it opens nothing.
 * A session lives AUTH_SESSION_TTL seconds. A cookie is sent by the
 * browser whoever made the request, so every state-changing request
 * authenticated by the cookie must also carry the session's CSRF token (an
 * X-CSRF-Token header, or a csrf_token form field); a Bearer token is never
 * sent on its own and needs none. Logins are limited: after
 * AUTH_FAIL_ACCOUNT failures for one account, or AUTH_FAIL_PEER from one
 * client address, within AUTH_FAIL_WINDOW seconds, further attempts are
 * refused (429) without looking at the password. */
#ifndef TD_HTTP_AUTH_H
#define TD_HTTP_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "http/server.h"
#include "store/store.h"
#include "util/err.h"

#define AUTH_COOKIE "tidings_session"
#define AUTH_SESSION_TTL (12 * 3600)
#define AUTH_FAIL_ACCOUNT 5
#define AUTH_FAIL_PEER 20
#define AUTH_FAIL_WINDOW (15 * 60)
#define AUTH_TOKEN_PREFIX "td_"
#define AUTH_HEX 64 /* hex digits of a token, a hash, a CSRF token */

/* Who a request is from. */
typedef struct auth_ctx {
    user_rec user;            /* auth_ctx_clear frees it */
    bool session;             /* by the session cookie: CSRF applies */
    char csrf[AUTH_HEX + 1];  /* the session's CSRF token ("" for a Bearer token) */
    char hash[AUTH_HEX + 1];  /* the session's or token's hash */
    int64_t expires_at;       /* the session's or token's end (0: none) */
} auth_ctx;

/* auth_hash writes the SHA-256 of s as hex into out. */
void auth_hash(const char *s, char out[AUTH_HEX + 1]);

/* auth_request finds who sent req: a Bearer token if there is an
 * Authorization header, else the session cookie. Returns 0 with *ctx
 * filled (auth_ctx_clear), TD_EDENIED with a message when there are no
 * credentials or they are unknown, malformed or expired (401), or a store
 * error. */
int auth_request(store *s, const http_req *req, int64_t now, auth_ctx *ctx, td_error *e);

/* auth_csrf_ok is true when req needs no CSRF token (GET or HEAD, or not
 * authenticated by the cookie) or carries the session's. */
bool auth_csrf_ok(const http_req *req, const auth_ctx *ctx);

/* auth_login checks email and password for a login from peer at now,
 * within the rate limit, and opens a session. Returns 0 with *ctx and
 * *token (the cookie's value; the caller frees it); TD_ETOOBIG when the
 * limit is reached (429; nothing checked); TD_EDENIED for a wrong email or
 * password (one message for both); or a store error. Every outcome is in
 * the audit log. */
int auth_login(store *s, const char *email, const char *password, const char *peer,
               int64_t now, auth_ctx *ctx, char **token, td_error *e);

/* auth_logout ends ctx's session (audited). TD_EINVAL for a Bearer token. */
int auth_logout(store *s, const auth_ctx *ctx, td_error *e);

/* auth_cookie returns the Set-Cookie value for token (NULL: the value that
 * removes the cookie), Secure when secure. The caller frees it. */
char *auth_cookie(const char *token, bool secure);

/* auth_token_create makes an API token for user_id named name (expiring
 * at expires_at; 0: never), stores its hash and returns 0 with *token
 * (shown once; the caller frees it) and *id. A store error otherwise. */
int auth_token_create(store *s, int64_t user_id, const char *name, int64_t expires_at,
                      char **token, int64_t *id, td_error *e);

/* auth_ctx_clear frees what ctx holds. */
void auth_ctx_clear(auth_ctx *ctx);

#endif
