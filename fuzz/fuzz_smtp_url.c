/* fuzz_smtp_url: libFuzzer target for smtp/smtp_url. Feeds the input to
 * smtp_url_parse and checks what an accepted URL promises: a known kind, a
 * port in range, credentials both present or both absent and free of
 * control characters, and that the canonical form parses back to the same
 * URL and prints the same; the masked form has
 * "****" in place of the password. A
 * refused URL leaves a message and a zeroed struct. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_url.h"
#include "util/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int has_ctl(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    smtp_url u;
    td_error e;
    td_err_clear(&e);
    int rc = smtp_url_parse(s, &u, &e);
    if (rc != TD_OK) {
        CHECK(rc == TD_EINVAL && e.msg[0]);
        CHECK(!u.host && !u.user && !u.pass && !u.path);
        free(s);
        return 0;
    }
    CHECK(u.kind == SMTP_URL_SMTP || u.kind == SMTP_URL_SMTPS || u.kind == SMTP_URL_MAILDIR);
    if (u.kind == SMTP_URL_MAILDIR) {
        CHECK(u.path && u.path[0] == '/' && !u.host && !has_ctl(u.path));
    } else {
        CHECK(u.host && u.host[0] && !has_ctl(u.host));
        CHECK(u.port >= 1 && u.port <= 65535);
        CHECK(!u.user == !u.pass);
        CHECK(!has_ctl(u.user) && !has_ctl(u.pass));
        CHECK(u.kind != SMTP_URL_SMTPS || u.tls == SMTP_TLS_IMPLICIT);
        CHECK(u.tls != SMTP_TLS_NONE || !u.verify);
    }
    char *canon = smtp_url_format(&u, false);
    smtp_url v;
    rc = smtp_url_parse(canon, &v, &e);
    if (rc)
        fprintf(stderr, "canonical '%s' refused: %s\n", canon, e.msg);
    CHECK(rc == TD_OK);
    CHECK(v.kind == u.kind && v.port == u.port && v.tls == u.tls && v.verify == u.verify);
    CHECK(same(v.host, u.host) && same(v.user, u.user) && same(v.pass, u.pass) &&
          same(v.path, u.path));
    char *again = smtp_url_format(&v, false);
    CHECK(strcmp(again, canon) == 0);
    /* the masked form is the same URL with "****" for the password */
    char *masked = smtp_url_format(&u, true);
    smtp_url m;
    CHECK(smtp_url_parse(masked, &m, &e) == TD_OK);
    CHECK(same(m.host, u.host) && same(m.user, u.user) && m.port == u.port);
    CHECK(u.pass ? same(m.pass, "****") : !m.pass);
    smtp_url_clear(&m);
    free(masked);
    free(again);
    free(canon);
    smtp_url_clear(&v);
    smtp_url_clear(&u);
    free(s);
    return 0;
}
