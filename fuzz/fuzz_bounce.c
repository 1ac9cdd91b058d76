/* libFuzzer target for the bounce parser (inbound/bounce with dsn, notice
 * and reason under it). Any bytes must give either TD_EINVAL with no result
 * or a result whose every string is valid UTF-8, whose status and reply
 * code are well formed, with hard set only for a class-5 status, and whose
 * JSON line is one line of valid UTF-8. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/bounce.h"
#include "util/utf8.h"

static void fail(const char *why, const char *s)
{
    fprintf(stderr, "fuzz_bounce: %s: %s\n", why, s ? s : "(null)");
    abort();
}

static void check_str(const char *what, const char *s)
{
    if (!s)
        fail("NULL string", what);
    if (!utf8_valid(s, strlen(s), NULL))
        fail("invalid UTF-8", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bounce_result *r = NULL;
    td_error e;
    int rc = bounce_parse((const char *)data, size, &r, &e);
    if (rc) {
        if (rc != TD_EINVAL || r)
            fail("unexpected failure", e.msg);
        return 0;
    }
    if (r->nrcpt > BOUNCE_MAX_RCPT)
        fail("too many recipients", "");
    if (r->nrcpt && r->kind != BOUNCE_KIND_BOUNCE && r->kind != BOUNCE_KIND_COMPLAINT &&
        r->kind != BOUNCE_KIND_OTHER)
        fail("recipients on a reply", "");
    for (size_t i = 0; i < r->nrcpt; i++) {
        const bounce_rcpt *x = &r->rcpt[i];
        check_str("address", x->address);
        check_str("diagnostic", x->diagnostic);
        check_str("reason", x->reason);
        if (x->status[0] && (x->status[0] < '2' || x->status[0] > '5' || x->status[1] != '.'))
            fail("bad status", x->status);
        if (x->reply_code && (x->reply_code < 200 || x->reply_code > 599))
            fail("bad reply code", x->status);
        if (x->hard && x->status[0] != '5')
            fail("hard without class 5", x->status);
    }
    if (r->orig_message_id)
        check_str("message-id", r->orig_message_id);
    if (r->orig_return_path)
        check_str("return path", r->orig_return_path);
    char *j = bounce_result_json(r, "f");
    check_str("json", j);
    if (strchr(j, '\n'))
        fail("newline in the JSON line", j);
    free(j);
    bounce_result_free(r);
    return 0;
}
