/* auth: logins, sessions, CSRF and API tokens (see auth.h). */
#include "http/auth.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audience/subscriber.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/xalloc.h"

void auth_hash(const char *s, char out[AUTH_HEX + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, AUTH_HEX + 1, h, sizeof h);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* cookie_value finds AUTH_COOKIE in a Cookie header and copies a
 * well-formed value (AUTH_HEX hex digits) to out. */
static bool cookie_value(const char *hdr, char out[AUTH_HEX + 1])
{
    static const char name[] = AUTH_COOKIE "=";
    for (const char *p = hdr; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n == sizeof name - 1 + AUTH_HEX && !strncmp(p, name, sizeof name - 1) &&
            is_hex(p + sizeof name - 1, AUTH_HEX)) {
            memcpy(out, p + sizeof name - 1, AUTH_HEX);
            out[AUTH_HEX] = '\0';
            return true;
        }
        p += n;
    }
    return false;
}

static int load_user(store *s, int64_t id, auth_ctx *ctx, td_error *e)
{
    int rc = store_user_get(s, id, &ctx->user, e);
    if (rc == TD_ENOTFOUND)
        rc = td_err_set(e, TD_EDENIED, "the account is gone");
    /* The hash has no business beyond the login. */
    if (!rc && ctx->user.password_hash) {
        sodium_memzero(ctx->user.password_hash, strlen(ctx->user.password_hash));
        free(ctx->user.password_hash);
        ctx->user.password_hash = NULL;
    }
    return rc;
}

int auth_request(store *s, const http_req *req, int64_t now, auth_ctx *ctx, td_error *e)
{
    memset(ctx, 0, sizeof *ctx);
    const char *authz = http_header(req, "Authorization");
    if (authz) {
        static const char bearer[] = "Bearer ";
        size_t tl = sizeof AUTH_TOKEN_PREFIX - 1 + AUTH_HEX;
        if (strncasecmp(authz, bearer, sizeof bearer - 1))
            return td_err_set(e, TD_EDENIED, "the Authorization header must be 'Bearer TOKEN'");
        const char *t = authz + sizeof bearer - 1;
        if (strlen(t) != tl || strncmp(t, AUTH_TOKEN_PREFIX, sizeof AUTH_TOKEN_PREFIX - 1) ||
            !is_hex(t + sizeof AUTH_TOKEN_PREFIX - 1, AUTH_HEX))
            return td_err_set(e, TD_EDENIED, "the token is not valid");
        auth_hash(t, ctx->hash);
        token_rec tr = {0};
        int rc = store_token_find(s, ctx->hash, &tr, e);
        if (rc == TD_ENOTFOUND)
            return td_err_set(e, TD_EDENIED, "the token is not valid");
        if (rc)
            return rc;
        int64_t uid = tr.user_id, exp = tr.expires_at;
        token_rec_clear(&tr);
        if (exp && exp <= now)
            return td_err_set(e, TD_EDENIED, "the token has expired");
        ctx->expires_at = exp;
        return load_user(s, uid, ctx, e);
    }
    char tok[AUTH_HEX + 1];
    if (!cookie_value(http_header(req, "Cookie"), tok))
        return td_err_set(e, TD_EDENIED, "sign in first (POST /login), or send a Bearer token");
    auth_hash(tok, ctx->hash);
    sodium_memzero(tok, sizeof tok);
    session_rec sr = {0};
    int rc = store_session_get(s, ctx->hash, &sr, e);
    if (rc == TD_ENOTFOUND)
        return td_err_set(e, TD_EDENIED, "the session is not valid: sign in again");
    if (rc)
        return rc;
    int64_t uid = sr.user_id;
    ctx->expires_at = sr.expires_at;
    snprintf(ctx->csrf, sizeof ctx->csrf, "%s", sr.csrf);
    session_rec_clear(&sr);
    if (ctx->expires_at <= now)
        return td_err_set(e, TD_EDENIED, "the session has expired: sign in again");
    ctx->session = true;
    return load_user(s, uid, ctx, e);
}

bool auth_csrf_ok(const http_req *req, const auth_ctx *ctx)
{
    if (!ctx->session || !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
        return true;
    const char *t = http_header(req, "X-CSRF-Token");
    if (!t)
        t = http_form_get(req, "csrf_token");
    return t && strlen(t) == AUTH_HEX && strlen(ctx->csrf) == AUTH_HEX &&
           sodium_memcmp(t, ctx->csrf, AUTH_HEX) == 0;
}

/* A hash to verify against when the account does not exist, so that an
 * unknown address takes as long as a wrong password. */
static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    char *pw = secret_random_hex(16);
    dummy_hash = secret_hash_password(pw, strlen(pw), NULL);
    free(pw);
}

static void audit(store *s, int64_t actor_id, const char *actor, const char *action,
                  int64_t object_id, const char *detail)
{
    audit_rec a = {.actor_id = actor_id, .actor = actor, .action = action,
                   .object_type = "user", .object_id = object_id, .detail = detail};
    td_error e = {0};
    if (store_audit_add(s, &a, &e))
        log_error("auth: audit %s not written: %s", action, e.msg);
}

int auth_login(store *s, const char *email, const char *password, const char *peer,
               int64_t now, auth_ctx *ctx, char **token, td_error *e)
{
    memset(ctx, 0, sizeof *ctx);
    *token = NULL;
    char akey[400], pkey[100], who[120];
    /* The account key is the normalised address, lower-cased, so spellings
     * of one address share one limit; an address that does not parse is
     * its own. */
    char *norm = subscriber_email(email, strlen(email), NULL);
    snprintf(akey, sizeof akey, "acct:%.300s", norm ? norm : email);
    /* Case apart, it is one account to an attacker guessing passwords. */
    for (char *p = akey; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(pkey, sizeof pkey, "peer:%s", peer);
    snprintf(who, sizeof who, "peer:%s", peer);
    int64_t since = now - AUTH_FAIL_WINDOW, na = 0, np = 0;
    int rc = store_login_fail_count(s, akey, since, &na, e);
    if (!rc)
        rc = store_login_fail_count(s, pkey, since, &np, e);
    if (rc)
        goto out;
    user_rec u = {0};
    bool known = norm && store_user_find(s, norm, &u, NULL) == TD_OK;
    if (na >= AUTH_FAIL_ACCOUNT || np >= AUTH_FAIL_PEER) {
        audit(s, 0, who, "auth.login_limited", known ? u.id : 0,
              na >= AUTH_FAIL_ACCOUNT ? "account" : "address");
        user_rec_clear(&u);
        rc = td_err_set(e, TD_ETOOBIG, "too many failed sign-ins: try again in %d minutes",
                        AUTH_FAIL_WINDOW / 60);
        goto out;
    }
    bool ok;
    if (known && u.password_hash) {
        ok = secret_verify_password(u.password_hash, password, strlen(password));
    } else {
        pthread_once(&dummy_once, make_dummy);
        secret_verify_password(dummy_hash, password, strlen(password));
        ok = false;
    }
    if (!ok) {
        if ((rc = store_login_fail_add(s, akey, now, since, e)) ||
            (rc = store_login_fail_add(s, pkey, now, since, e))) {
            user_rec_clear(&u);
            goto out;
        }
        audit(s, 0, who, "auth.login_failed", known ? u.id : 0, known ? "password" : "unknown");
        user_rec_clear(&u);
        rc = td_err_set(e, TD_EDENIED, "the email or the password is wrong");
        goto out;
    }
    store_login_fail_clear(s, akey, NULL);
    char *tok = secret_random_hex(32), *csrf = secret_random_hex(32);
    session_rec sr = {.user_id = u.id, .csrf = csrf, .peer = (char *)peer,
                      .expires_at = now + AUTH_SESSION_TTL};
    auth_hash(tok, ctx->hash);
    sr.token_hash = ctx->hash;
    rc = store_session_add(s, &sr, NULL, e);
    if (!rc) {
        snprintf(ctx->csrf, sizeof ctx->csrf, "%s", csrf);
        ctx->session = true;
        ctx->expires_at = sr.expires_at;
        audit(s, u.id, u.email, "auth.login", u.id, peer);
        int64_t uid = u.id;
        user_rec_clear(&u);
        rc = load_user(s, uid, ctx, e);
    } else {
        user_rec_clear(&u);
    }
    free(csrf);
    if (rc) {
        free(tok);
        auth_ctx_clear(ctx);
    } else {
        *token = tok;
    }
out:
    free(norm);
    return rc;
}

int auth_logout(store *s, const auth_ctx *ctx, td_error *e)
{
    if (!ctx->session)
        return td_err_set(e, TD_EINVAL, "a token has no session to end: revoke the token instead");
    int rc = store_session_delete(s, ctx->hash, e);
    if (rc == TD_ENOTFOUND)
        rc = TD_OK; /* ended meanwhile: the outcome is the same */
    if (!rc)
        audit(s, ctx->user.id, ctx->user.email, "auth.logout", ctx->user.id, NULL);
    return rc;
}

char *auth_cookie(const char *token, bool secure)
{
    if (!token)
        return xasprintf(AUTH_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
                         secure ? "; Secure" : "");
    return xasprintf(AUTH_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s", token,
                     AUTH_SESSION_TTL, secure ? "; Secure" : "");
}

int auth_token_create(store *s, int64_t user_id, const char *name, int64_t expires_at,
                      char **token, int64_t *id, td_error *e)
{
    *token = NULL;
    char *raw = secret_random_hex(32);
    char *tok = xasprintf(AUTH_TOKEN_PREFIX "%s", raw);
    sodium_memzero(raw, strlen(raw));
    free(raw);
    char hash[AUTH_HEX + 1];
    auth_hash(tok, hash);
    token_rec tr = {.token_hash = hash, .user_id = user_id, .name = (char *)name,
                    .expires_at = expires_at};
    int rc = store_token_add(s, &tr, id, e);
    if (rc) {
        free(tok);
        return rc;
    }
    *token = tok;
    return TD_OK;
}

void auth_ctx_clear(auth_ctx *ctx)
{
    user_rec_clear(&ctx->user);
    sodium_memzero(ctx, sizeof *ctx);
}
