/* fuzz_smtp_reply: libFuzzer target for smtp/smtp_reply, the parser that
 * reads what any server on the network sends. The first input byte picks
 * how the rest is split into reads; every complete reply must have a code
 * from 200 to 599, an enhanced code of the same class or none, a text with
 * no control characters, and at most the capped number of lines; bytes are
 * never consumed past the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "util/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    smtp_rparser p;
    smtp_rparser_init(&p, 128, 8);
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        size_t used = 0;
        bool done = false;
        smtp_reply r;
        td_error e;
        int rc = smtp_rparser_feed(&p, s + off, k, &used, &r, &done, &e);
        CHECK(used <= k);
        if (rc) {
            CHECK((rc == TD_EINVAL || rc == TD_ETOOBIG) && e.msg[0]);
            break;
        }
        CHECK(done || used == k);
        off += used;
        if (done) {
            CHECK(r.code >= 200 && r.code <= 599);
            CHECK(r.nlines >= 1 && r.nlines <= 8);
            CHECK(!r.enh[0] || r.enh[0] == (char)('0' + r.code / 100));
            CHECK(r.text && r.lines);
            for (const char *t = r.text; *t; t++)
                CHECK((unsigned char)*t >= 0x20 && *t != 0x7f);
            CHECK(strlen(r.lines) <= 8 * 129);
            smtp_reply_clear(&r);
        }
    }
    smtp_rparser_free(&p);
    return 0;
}
