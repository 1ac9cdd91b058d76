/* libFuzzer target for tmpl: compile arbitrary input and, when it compiles,
 * render it with a fixed datum and a partial callback that returns the input
 * itself, so every partial and parent recurses (the depth cap must hold). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tmpl/tmpl.h"

static const uint8_t *cur;
static size_t cur_n;

static const char *self_partial(void *ud, const char *name, size_t *len)
{
    (void)ud;
    if (strcmp(name, "none") == 0)
        return NULL;
    *len = cur_n;
    return (const char *)cur;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *datum;
    if (!datum)
        datum = json_loads("{\"a\": true, \"b\": [1, 2.5, \"x\", {\"a\": false}], \"c\": {\"d\": "
                           "\"<&>\", \"p\": \"a\"}, \"s\": \"\\u0645\\u0631\\u062d\\u0628\\u0627\","
                           " \"n\": null, \"e\": [], \"z\": 0, \"p\": \"a\"}",
                           0, NULL);
    tmpl *t = NULL;
    td_error e;
    if (tmpl_compile((const char *)data, size, &t, &e) != 0)
        return 0;
    /* small caps keep each run fast; they are what is being tested */
    tmpl_limits lim = {.max_output = 1 << 20, .max_depth = 16, .max_steps = 200000};
    tmpl_set_limits(t, &lim);
    cur = data;
    cur_n = size;
    buf out;
    buf_init(&out, BUF_NOCAP);
    for (int i = 0; i < 2; i++) { /* twice: the second render uses the cache */
        buf_reset(&out);
        tmpl_render(t, datum, self_partial, NULL, &out, &e);
    }
    tmpl_forget_partials(t);
    tmpl_render(t, datum, NULL, NULL, &out, &e);
    buf_free(&out);
    tmpl_free(t);
    return 0;
}
