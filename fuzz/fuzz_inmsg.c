/* libFuzzer target for inbound/inmsg (an inbound message's own headers and
 * text). Any bytes must give either TD_EINVAL with no result or a result
 * whose every string is valid UTF-8 and within its cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/inmsg.h"
#include "util/utf8.h"

static void fail(const char *why, const char *s)
{
    fprintf(stderr, "fuzz_inmsg: %s: %s\n", why, s ? s : "(null)");
    abort();
}

static void check_str(const char *what, const char *s, size_t cap)
{
    if (!s)
        fail("NULL string", what);
    if (!utf8_valid(s, strlen(s), NULL))
        fail("invalid UTF-8", what);
    if (strlen(s) > cap)
        fail("past its cap", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    inmsg *m = NULL;
    td_error e;
    int rc = inmsg_parse((const char *)data, size, &m, &e);
    if (rc) {
        if (rc != TD_EINVAL || m)
            fail("unexpected failure", e.msg);
        return 0;
    }
    check_str("subject", m->subject, 4 * INMSG_MAX_SUBJECT);
    check_str("body", m->body, 4 * INMSG_MAX_BODY);
    if (m->from)
        check_str("from", m->from, 1024);
    if (m->from_name)
        check_str("from name", m->from_name, 1024);
    if (m->message_id)
        check_str("message-id", m->message_id, 4096);
    if (m->nrcpts > INMSG_MAX_RCPT || m->nrefs > INMSG_MAX_REFS)
        fail("too many addresses or ids", "");
    for (size_t i = 0; i < m->nrcpts; i++)
        check_str("rcpt", m->rcpts[i], 1024);
    for (size_t i = 0; i < m->nrefs; i++)
        check_str("ref", m->refs[i], 4096);
    if (m->in_reply_to && (!m->nrefs || strcmp(m->in_reply_to, m->refs[0])))
        fail("in-reply-to is not the first ref", m->in_reply_to);
    inmsg_free(m);
    return 0;
}
