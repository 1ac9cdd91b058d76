/* fuzz_addr: libFuzzer target for mime/addr. Feeds the input to addr_parse
 * and addr_parse_mailbox and checks what an accepted address promises: one
 * '@' outside quotes, no control characters, the length limits, a lower-case
 * ASCII domain, and that normalising is idempotent (the normalised form and
 * the display form both parse back to the same address). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/addr.h"
#include "util/err.h"
#include "util/utf8.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static int ats_outside_quotes(const char *s)
{
    int n = 0;
    for (size_t i = 0; s[i]; i++) {
        if (i == 0 && s[0] == '"') {
            for (i = 1; s[i] && s[i] != '"'; i++)
                if (s[i] == '\\' && s[i + 1])
                    i++;
            if (!s[i])
                return -1;
            continue;
        }
        if (s[i] == '@')
            n++;
    }
    return n;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void check_accepted(const addr *a)
{
    CHECK(a->address && a->local && a->domain && a->domain_unicode);
    CHECK(ats_outside_quotes(a->address) == 1);
    CHECK(!has_ctl(a->address) && !has_ctl(a->domain_unicode));
    CHECK(strlen(a->address) <= ADDR_MAX);
    CHECK(strlen(a->local) <= ADDR_LOCAL_MAX);
    CHECK(strlen(a->domain) <= ADDR_DOMAIN_MAX);
    size_t ll = strlen(a->local);
    CHECK(strncmp(a->address, a->local, ll) == 0 && a->address[ll] == '@' &&
          strcmp(a->address + ll + 1, a->domain) == 0);
    for (const char *p = a->domain; *p; p++)
        CHECK((unsigned char)*p < 0x80 && !(*p >= 'A' && *p <= 'Z' && a->domain[0] != '['));
    CHECK(a->smtputf8 == !utf8_is_ascii(a->local, ll));
    CHECK(utf8_valid(a->address, strlen(a->address), NULL));
    CHECK(utf8_valid(a->domain_unicode, strlen(a->domain_unicode), NULL));

    /* parse(normalised) == normalised */
    addr b;
    td_error e;
    CHECK(addr_parse(a->address, strlen(a->address), &b, &e) == TD_OK);
    CHECK(strcmp(b.address, a->address) == 0);
    CHECK(strcmp(b.domain_unicode, a->domain_unicode) == 0);
    CHECK(b.smtputf8 == a->smtputf8);
    addr_clear(&b);

    /* the display form names the same mailbox */
    size_t n = ll + 1 + strlen(a->domain_unicode);
    char *disp = malloc(n + 1);
    snprintf(disp, n + 1, "%s@%s", a->local, a->domain_unicode);
    int rc = addr_parse(disp, n, &b, &e);
    if (rc != TD_OK)
        fprintf(stderr, "display form '%s' refused: %s\n", disp, e.msg);
    CHECK(rc == TD_OK);
    CHECK(strcmp(b.address, a->address) == 0);
    addr_clear(&b);
    free(disp);
}

static void check_refused(int rc, const addr *a, const td_error *e)
{
    CHECK(rc == TD_EINVAL);
    CHECK(e->msg[0] != '\0');
    CHECK(!a->address && !a->local && !a->domain && !a->domain_unicode);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    addr a;
    td_error e;
    td_err_clear(&e);
    int rc = addr_parse((const char *)data, size, &a, &e);
    if (rc == TD_OK)
        check_accepted(&a);
    else
        check_refused(rc, &a, &e);
    addr_clear(&a);

    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *name = NULL;
    td_err_clear(&e);
    rc = addr_parse_mailbox(s, &name, &a, &e);
    if (rc == TD_OK) {
        check_accepted(&a);
        if (name) {
            CHECK(name[0] != '\0' && !has_ctl(name));
            CHECK(utf8_valid(name, strlen(name), NULL));
        }
    } else {
        check_refused(rc, &a, &e);
        CHECK(name == NULL);
    }
    free(name);
    addr_clear(&a);
    free(s);
    return 0;
}
