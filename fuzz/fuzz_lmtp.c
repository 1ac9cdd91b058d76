/* libFuzzer target for inbound/lmtp's protocol side: any bytes, cut into
 * lines as the server cuts them, fed to one session. Every reply must be
 * whole CRLF-ended lines of a three-digit code, and the session must hold
 * no more recipients or data than its caps. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/lmtp.h"

static int deliver(void *ud, const char *data, size_t len, const char *from, const char *rcpt,
                   char *text, size_t cap)
{
    (void)ud;
    (void)from;
    if (len > 4096 || strlen(rcpt) > LMTP_ADDR_MAX || (len && !data))
        abort();
    snprintf(text, cap, "2.0.0 %s", rcpt);
    return len % 2 ? 250 : 451;
}

static void check(const buf *out)
{
    const char *p = out->data, *end = out->data + out->len;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl == p || nl[-1] != '\r' || nl - p < 5)
            abort();
        for (int i = 0; i < 3; i++)
            if (p[i] < '0' || p[i] > '9')
                abort();
        if (p[3] != ' ' && p[3] != '-')
            abort();
        for (const char *q = p; q < nl - 1; q++)
            if (*q == '\r')
                abort(); /* a bare CR would split a reply */
        p = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmtp_session s;
    lmtp_session_init(&s, 4096, deliver, NULL);
    buf out;
    buf_init(&out, BUF_NOCAP);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - start;
        if (n && data[start + n - 1] == '\r')
            n--;
        bool more = lmtp_line(&s, (const char *)data + start, n, &out);
        check(&out);
        buf_reset(&out);
        if (s.nrcpt > LMTP_RCPT_MAX || s.data.len > s.max_size)
            abort();
        start = i + 1;
        if (!more)
            break;
    }
    buf_free(&out);
    lmtp_session_clear(&s);
    return 0;
}
