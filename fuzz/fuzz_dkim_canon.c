/* fuzz_dkim_canon: libFuzzer target for mime/dkim's canonicalization and
 * signing. On arbitrary message bytes: canonicalizing must not crash; what it
 * returns is canonical (canonicalizing it again changes nothing beyond the
 * final CRLF a canonical body always has: canon(canon(x)) = canon(x CRLF),
 * and = canon(x) when x ends in CRLF); the body alone obeys the same law; and
 * signing either succeeds with fields within the fold width or refuses with
 * a message, exactly when there is no From field or the header is broken. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/dkim.h"
#include "util/buf.h"
#include "util/err.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* An Ed25519 key made once (signing is deterministic and fast). */
static const char key[] = "-----BEGIN PRIVATE KEY-----\n"
                          "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                          "-----END PRIVATE KEY-----\n";
static dkim_signer *signer;

static int ends_crlf(const char *p, size_t n)
{
    return n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *m = (const char *)data;
    buf once, twice, plus, x;
    buf_init(&once, BUF_NOCAP);
    buf_init(&twice, BUF_NOCAP);
    buf_init(&plus, BUF_NOCAP);
    buf_init(&x, BUF_NOCAP);
    td_error e = {0};

    int rc = dkim_canon_message(m, size, &once, &e);
    CHECK(rc == TD_OK || rc == TD_EINVAL);
    if (rc == TD_OK) {
        CHECK(ends_crlf(once.data, once.len));
        CHECK(dkim_canon_message(once.data, once.len, &twice, &e) == TD_OK);
        buf_append(&x, m, size);
        buf_puts(&x, "\r\n");
        CHECK(dkim_canon_message(x.data, x.len, &plus, &e) == TD_OK);
        CHECK(twice.len == plus.len && !memcmp(twice.data, plus.data, twice.len));
        if (ends_crlf(m, size))
            CHECK(once.len == twice.len && !memcmp(once.data, twice.data, once.len));
    } else {
        CHECK(e.msg[0] != '\0');
    }

    /* the body law on the whole input as a body */
    buf_reset(&once);
    buf_reset(&twice);
    buf_reset(&plus);
    CHECK(dkim_canon_body(m, size, &once) == TD_OK);
    CHECK(once.len == 0 || ends_crlf(once.data, once.len));
    CHECK(dkim_canon_body(once.data, once.len, &twice) == TD_OK);
    buf_reset(&x);
    buf_append(&x, m, size);
    buf_puts(&x, "\r\n");
    CHECK(dkim_canon_body(x.data, x.len, &plus) == TD_OK);
    CHECK(twice.len == plus.len && !memcmp(twice.data, plus.data, twice.len));

    if (!signer && dkim_signer_new("example.com", "fuzz", key, &signer, &e))
        abort();
    buf_reset(&once);
    int src = dkim_sign(&signer, 1, m, size, 1, &once, &e);
    CHECK(src == TD_OK || src == TD_EINVAL);
    if (rc == TD_EINVAL)
        CHECK(src == TD_EINVAL);
    if (src == TD_OK) {
        for (const char *p = once.data; p < once.data + once.len;) {
            const char *eol = strstr(p, "\r\n");
            CHECK(eol && eol - p <= 78);
            p = eol + 2;
        }
    } else {
        CHECK(once.len == 0 && e.msg[0] != '\0');
    }

    buf_free(&once);
    buf_free(&twice);
    buf_free(&plus);
    buf_free(&x);
    return 0;
}
