/* libFuzzer target for mime/html2text: any input either is refused (invalid
 * UTF-8, NUL) leaving the buffer as it was, or gives valid UTF-8 text with
 * no control characters but line feeds and tabs, ending with a line feed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mime/html2text.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned width = size ? 20 + data[0] % 80 : 0;
    buf b;
    buf_init(&b, BUF_NOCAP);
    td_error e;
    int rc = html2text((const char *)data, size, width, &b, &e);
    if (rc && b.len)
        abort();
    if (!rc) {
        if (!utf8_valid(b.data, b.len, NULL))
            abort();
        for (size_t i = 0; i < b.len; i++) {
            unsigned char c = (unsigned char)b.data[i];
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
                fprintf(stderr, "control 0x%02x at %zu\n", c, i);
                abort();
            }
        }
        if (b.len && b.data[b.len - 1] != '\n')
            abort();
    }
    buf_free(&b);
    return 0;
}
