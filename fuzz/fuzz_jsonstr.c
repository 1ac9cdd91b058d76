/* fuzz_jsonstr: the tree-less JSON object validator must accept whatever
 * jansson accepts as an object, never crash, and jsonstr_number must write
 * only what reads back as the same number. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonstr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    /* Stored JSON is a C string: jansson's reading of a NUL inside is not
     * a question for us. */
    if (memchr(data, 0, size))
        return 0;
    bool ours = jsonstr_is_object(s, size);
    json_error_t je;
    json_t *v = json_loadb(s, size, 0, &je);
    if (json_is_object(v) && !ours)
        abort(); /* jansson reads an object we refuse */
    if (v && ours) {
        /* canonical output is itself a valid object, and stable */
        buf a, b;
        buf_init(&a, BUF_NOCAP);
        buf_init(&b, BUF_NOCAP);
        jsonstr_value(&a, v);
        if (!jsonstr_is_object(a.data, a.len))
            abort();
        json_t *w = json_loadb(a.data, a.len, 0, &je);
        if (w) {
            jsonstr_value(&b, w);
            if (a.len != b.len || memcmp(a.data, b.data, a.len))
                abort();
            json_decref(w);
        }
        buf_free(&a);
        buf_free(&b);
    }
    json_decref(v);

    buf n;
    buf_init(&n, BUF_NOCAP);
    if (jsonstr_number(&n, s, size)) {
        char tmp[64];
        memcpy(tmp, s, size < 63 ? size : 63);
        tmp[size < 63 ? size : 63] = 0;
        double want = strtod(tmp, NULL), got = strtod(n.data, NULL);
        if (!(want == got || (isnan(want) && isnan(got))))
            abort();
    }
    buf_free(&n);
    return 0;
}
