/* libFuzzer target for the header encoder (mime/hdr). The first byte picks
 * the writer and a field name; the rest is the value. Whatever is accepted
 * must come out well formed (tests/unit/hdr_check.h: CRLF only at line ends,
 * folded lines, encoded words of at most 75 characters holding whole UTF-8
 * characters) and, for unstructured text, decode back to exactly the input.
 * Whatever is refused must leave the buffer as it was. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/hdr_check.h"
#include "mime/addr.h"
#include "mime/hdr.h"

static const char *const names[] = {"Subject", "X", "X-A-Rather-Long-Header-Name-To-Push-Over",
                                    "Comments"};

static void fail(const char *why, const buf *b)
{
    fprintf(stderr, "fuzz_hdr: %s\n%s\n", why, b->data);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] & 3;
    const char *name = names[(data[0] >> 2) & 3];
    const char *v = (const char *)data + 1;
    size_t n = size - 1;
    buf b, d;
    buf_init(&b, BUF_NOCAP);
    buf_init(&d, BUF_NOCAP);
    buf_puts(&b, "Prev: x\r\n");
    size_t base = b.len;
    td_error e;
    int rc;
    if (mode == 0) {
        rc = hdr_text(&b, name, v, n, &e);
        if (!rc) {
            const char *why = hc_unstructured(b.data + base, b.len - base, HDR_FOLD, &d);
            if (why)
                fail(why, &b);
            if (d.len != n || memcmp(d.data, v, n))
                fail("does not decode back to the input", &b);
        }
    } else if (mode == 1 || mode == 3) {
        char *s = malloc(n + 1);
        memcpy(s, v, n);
        s[n] = '\0';
        char *dn = NULL;
        addr a;
        if (addr_parse_mailbox(s, &dn, &a, &e) == 0) {
            hdr_mailbox mb[2] = {{dn, &a}, {dn, &a}};
            bool u = false;
            rc = mode == 1 ? hdr_mailboxes(&b, "To", mb, 2, &u, &e)
                           : hdr_list_id(&b, "List-Id", dn, "list.example.com", &e);
            free(dn);
            addr_clear(&a);
        } else {
            /* the same text as a display name given directly */
            addr_parse("x@example.com", 13, &a, &e);
            hdr_mailbox mb = {s, &a};
            rc = hdr_mailboxes(&b, "From", &mb, 1, NULL, &e);
            addr_clear(&a);
        }
        free(s);
        if (!rc) {
            /* lines may only pass 78 for an address that cannot fold */
            buf u;
            buf_init(&u, BUF_NOCAP);
            const char *why = hc_lines(b.data + base, b.len - base, HDR_LINE_MAX, &u);
            buf_free(&u);
            if (why)
                fail(why, &b);
        }
    } else {
        rc = hdr_raw(&b, name, v, n, &e);
        if (!rc) {
            buf u;
            buf_init(&u, BUF_NOCAP);
            const char *why = hc_lines(b.data + base, b.len - base, HDR_LINE_MAX, &u);
            buf_free(&u);
            if (why)
                fail(why, &b);
        }
    }
    if (rc && b.len != base)
        fail("a refused value left bytes behind", &b);
    buf_free(&b);
    buf_free(&d);
    return 0;
}
