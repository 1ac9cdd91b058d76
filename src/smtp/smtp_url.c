/* smtp_url: parse and print relay URLs (see smtp_url.h). */
#include "smtp/smtp_url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define MAILDIR_PATH_MAX 4000

static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* decode percent-escapes of s[0..n) into a new string; `what` names the part. */
static int pct_decode(const char *what, const char *s, size_t n, char **out, td_error *e)
{
    char *d = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(d);
                return td_err_set(e, TD_EINVAL, "the %s has a '%%' not followed by two hex digits",
                                  what);
            }
            d[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    if (k == 0 || k > SMTP_URL_CRED_MAX || has_ctl(d, k)) {
        free(d);
        if (k == 0)
            return td_err_set(e, TD_EINVAL, "the %s is empty", what);
        if (k > SMTP_URL_CRED_MAX)
            return td_err_set(e, TD_EINVAL, "the %s is longer than %d bytes", what,
                              SMTP_URL_CRED_MAX);
        return td_err_set(e, TD_EINVAL, "the %s contains a control character", what);
    }
    *out = d;
    return TD_OK;
}

static int parse_host(const char *s, size_t n, smtp_url *u, td_error *e)
{
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "the URL has no host");
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return td_err_set(e, TD_EINVAL, "an IPv6 host must be written [address]");
        char tmp[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (n - 2 >= sizeof tmp)
            return td_err_set(e, TD_EINVAL, "'%.*s' is not an IPv6 address", (int)n, s);
        memcpy(tmp, s + 1, n - 2);
        tmp[n - 2] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return td_err_set(e, TD_EINVAL, "'%s' is not an IPv6 address", tmp);
        u->host = xstrdup(tmp);
        for (char *p = u->host; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        return TD_OK;
    }
    if (n > SMTP_URL_HOST_MAX)
        return td_err_set(e, TD_EINVAL, "the host name is longer than %d bytes", SMTP_URL_HOST_MAX);
    /* LDH labels separated by single dots; IPv4 literals fit the same shape. */
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return td_err_set(e, TD_EINVAL, "the host '%.*s' has an empty label", (int)n, s);
            label = 0;
            continue;
        }
        if (c >= 0x80)
            return td_err_set(e, TD_EINVAL,
                              "the host '%.*s' is not ASCII: write it in its xn-- form", (int)n, s);
        if (!isalnum(c) && c != '-')
            return td_err_set(e, TD_EINVAL,
                              "the host has a character '%c' not allowed in a "
                              "host name",
                              isprint(c) ? c : '?');
        if (++label > 63)
            return td_err_set(e, TD_EINVAL, "the host has a label longer than 63 bytes");
    }
    if (label == 0 && n > 1 && s[n - 1] == '.') {
        /* a trailing dot (fully qualified) is fine; drop it */
        n--;
    } else if (label == 0) {
        return td_err_set(e, TD_EINVAL, "the host '%.*s' has an empty label", (int)n, s);
    }
    u->host = xstrndup(s, n);
    for (char *p = u->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return TD_OK;
}

static int parse_port(const char *s, size_t n, unsigned *port, td_error *e)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return td_err_set(e, TD_EINVAL, "the port must be a number from 1 to 65535");
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return td_err_set(e, TD_EINVAL, "the port must be a number from 1 to 65535");
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return td_err_set(e, TD_EINVAL, "the port must be a number from 1 to 65535");
    *port = v;
    return TD_OK;
}

static bool eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int parse_query(const char *q, smtp_url *u, td_error *e)
{
    bool seen_tls = false, seen_verify = false;
    int verify = -1;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eqs = memchr(q, '=', len);
        if (!eqs)
            return td_err_set(e, TD_EINVAL, "the option '%.*s' has no '=value'", (int)len, q);
        size_t klen = (size_t)(eqs - q);
        const char *v = eqs + 1;
        size_t vlen = len - klen - 1;
        if (eq(q, klen, "tls")) {
            if (seen_tls)
                return td_err_set(e, TD_EINVAL, "the option tls is given twice");
            seen_tls = true;
            if (u->kind == SMTP_URL_SMTPS)
                return td_err_set(e, TD_EINVAL, "smtps:// is always TLS; tls= is for smtp:// URLs");
            if (eq(v, vlen, "required"))
                u->tls = SMTP_TLS_REQUIRED;
            else if (eq(v, vlen, "none"))
                u->tls = SMTP_TLS_NONE;
            else if (eq(v, vlen, "opportunistic"))
                u->tls = SMTP_TLS_OPPORTUNISTIC;
            else
                return td_err_set(e, TD_EINVAL,
                                  "tls=%.*s: use tls=required, tls=opportunistic or tls=none",
                                  (int)(vlen > 40 ? 40 : vlen), v);
        } else if (eq(q, klen, "verify")) {
            if (seen_verify)
                return td_err_set(e, TD_EINVAL, "the option verify is given twice");
            seen_verify = true;
            if (eq(v, vlen, "yes") || eq(v, vlen, "true") || eq(v, vlen, "1"))
                verify = 1;
            else if (eq(v, vlen, "no") || eq(v, vlen, "false") || eq(v, vlen, "0"))
                verify = 0;
            else
                return td_err_set(e, TD_EINVAL, "verify=%.*s: use verify=yes or verify=no",
                                  (int)(vlen > 40 ? 40 : vlen), v);
        } else {
            return td_err_set(e, TD_EINVAL, "unknown option '%.*s' (known: tls, verify)",
                              (int)(klen > 40 ? 40 : klen), q);
        }
        q += len;
        if (*q == '&')
            q++;
    }
    if (verify == 1 && u->tls == SMTP_TLS_NONE)
        return td_err_set(e, TD_EINVAL, "verify=yes makes no sense with tls=none");
    if (verify >= 0)
        u->verify = verify == 1;
    else
        u->verify = u->tls == SMTP_TLS_REQUIRED || u->tls == SMTP_TLS_IMPLICIT;
    return TD_OK;
}

static int parse_maildir(const char *path, smtp_url *u, td_error *e)
{
    size_t n = strlen(path);
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "maildir: needs a directory, as in maildir:/var/mail/out");
    if (path[0] != '/')
        return td_err_set(e, TD_EINVAL, "the maildir path must be absolute (maildir:/path)");
    if (n > MAILDIR_PATH_MAX)
        return td_err_set(e, TD_EINVAL, "the maildir path is longer than %d bytes",
                          MAILDIR_PATH_MAX);
    if (has_ctl(path, n))
        return td_err_set(e, TD_EINVAL, "the maildir path contains a control character");
    u->kind = SMTP_URL_MAILDIR;
    u->path = xstrdup(path);
    return TD_OK;
}

static int parse(const char *s, smtp_url *u, td_error *e)
{
    size_t n = strlen(s);
    if (n == 0)
        return td_err_set(e, TD_EINVAL, "the relay URL is empty");
    if (n > SMTP_URL_MAX)
        return td_err_set(e, TD_EINVAL, "the relay URL is longer than %d bytes", SMTP_URL_MAX);
    if (has_ctl(s, n))
        return td_err_set(e, TD_EINVAL, "the relay URL contains a control character");
    if (strncasecmp(s, "maildir:", 8) == 0)
        return parse_maildir(s + 8, u, e);

    const char *rest;
    if (strncasecmp(s, "smtp://", 7) == 0) {
        u->kind = SMTP_URL_SMTP;
        u->port = 25;
        u->tls = SMTP_TLS_OPPORTUNISTIC;
        rest = s + 7;
    } else if (strncasecmp(s, "smtps://", 8) == 0) {
        u->kind = SMTP_URL_SMTPS;
        u->port = 465;
        u->tls = SMTP_TLS_IMPLICIT;
        rest = s + 8;
    } else {
        return td_err_set(e, TD_EINVAL,
                          "'%.40s%s' is not a relay URL: use smtp://host:port, "
                          "smtps://host:port or maildir:/path",
                          s, n > 40 ? "..." : "");
    }
    if (strchr(rest, '#'))
        return td_err_set(e, TD_EINVAL,
                          "a relay URL has no #fragment (write '#' in a "
                          "password as %%23)");

    /* The authority ends at the first '/' or '?'. Credentials end at its last
     * '@', so an unencoded '@' in a password still works. */
    size_t alen = strcspn(rest, "/?");
    const char *auth = rest;
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hp = auth;
    if (at) {
        size_t ulen = (size_t)(at - auth);
        const char *colon = memchr(auth, ':', ulen);
        if (!colon)
            return td_err_set(e, TD_EINVAL,
                              "credentials must be user:password@ (the "
                              "password is missing)");
        int rc = pct_decode("user name", auth, (size_t)(colon - auth), &u->user, e);
        if (rc)
            return rc;
        rc = pct_decode("password", colon + 1, ulen - (size_t)(colon - auth) - 1, &u->pass, e);
        if (rc)
            return rc;
        if (strchr(u->user, ':'))
            return td_err_set(e, TD_EINVAL, "the user name cannot contain ':'");
        hp = at + 1;
    }
    size_t hplen = alen - (size_t)(hp - auth);
    size_t hostlen = hplen;
    const char *portp = NULL;
    if (hplen > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', hplen);
        if (!close)
            return td_err_set(e, TD_EINVAL, "an IPv6 host must be written [address]");
        hostlen = (size_t)(close - hp) + 1;
        if (hostlen < hplen) {
            if (hp[hostlen] != ':')
                return td_err_set(e, TD_EINVAL, "unexpected text after the IPv6 host");
            portp = hp + hostlen + 1;
        }
    } else {
        const char *colon = memchr(hp, ':', hplen);
        if (colon) {
            hostlen = (size_t)(colon - hp);
            portp = colon + 1;
        }
    }
    int rc = parse_host(hp, hostlen, u, e);
    if (rc)
        return rc;
    if (portp) {
        rc = parse_port(portp, (size_t)(auth + alen - portp), &u->port, e);
        if (rc)
            return rc;
    }
    const char *p = auth + alen;
    if (*p == '/')
        p++;
    if (*p && *p != '?')
        return td_err_set(e, TD_EINVAL, "a relay URL has no path: '%.40s' is not expected", p);
    if (*p == '?')
        return parse_query(p + 1, u, e);
    u->verify = u->tls == SMTP_TLS_REQUIRED || u->tls == SMTP_TLS_IMPLICIT;
    return TD_OK;
}

int smtp_url_parse(const char *s, smtp_url *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = parse(s, out, e);
    if (rc)
        smtp_url_clear(out);
    return rc;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = '\0';
    free(s);
}

void smtp_url_clear(smtp_url *u)
{
    free(u->host);
    free(u->user);
    wipe_free(u->pass);
    free(u->path);
    memset(u, 0, sizeof *u);
}

static void put_encoded(buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            buf_putc(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

char *smtp_url_format(const smtp_url *u, bool mask_password)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    if (u->kind == SMTP_URL_MAILDIR) {
        buf_puts(&b, "maildir:");
        buf_puts(&b, u->path ? u->path : "");
        char *out = buf_steal(&b);
        buf_free(&b);
        return out;
    }
    buf_puts(&b, u->kind == SMTP_URL_SMTPS ? "smtps://" : "smtp://");
    if (u->user) {
        put_encoded(&b, u->user);
        buf_putc(&b, ':');
        if (mask_password)
            buf_puts(&b, "****");
        else
            put_encoded(&b, u->pass ? u->pass : "");
        buf_putc(&b, '@');
    }
    if (u->host && strchr(u->host, ':'))
        buf_printf(&b, "[%s]", u->host);
    else
        buf_puts(&b, u->host ? u->host : "");
    buf_printf(&b, ":%u", u->port);
    const char *sep = "?";
    if (u->tls == SMTP_TLS_REQUIRED || u->tls == SMTP_TLS_NONE) {
        buf_printf(&b, "%stls=%s", sep, u->tls == SMTP_TLS_REQUIRED ? "required" : "none");
        sep = "&";
    }
    bool def = u->tls == SMTP_TLS_REQUIRED || u->tls == SMTP_TLS_IMPLICIT;
    if (u->tls != SMTP_TLS_NONE && u->verify != def)
        buf_printf(&b, "%sverify=%s", sep, u->verify ? "yes" : "no");
    char *out = buf_steal(&b);
    buf_free(&b);
    return out;
}
