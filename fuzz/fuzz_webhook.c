/* fuzz_webhook: any bytes as any provider's payload parse to a batch of
 * bounces and complaints (each with a key, at least one recipient, valid
 * UTF-8 strings) or TD_EINVAL, never a crash; the first byte picks the
 * provider. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbound/webhook.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    webhook_provider p = (webhook_provider)(data[0] % WEBHOOK_NPROVIDERS);
    webhook_batch b;
    td_error e = {0};
    if (webhook_parse(p, (const char *)data + 1, size - 1, &b, &e)) {
        if (b.n || b.v)
            abort();
        return 0;
    }
    for (size_t i = 0; i < b.n; i++) {
        const bounce_result *br = b.v[i].br;
        if (!b.v[i].key || !*b.v[i].key || !br->nrcpt ||
            (br->kind != BOUNCE_KIND_BOUNCE && br->kind != BOUNCE_KIND_COMPLAINT))
            abort();
        for (size_t k = 0; k < br->nrcpt; k++)
            if (!br->rcpt[k].address || !br->rcpt[k].reason || !br->rcpt[k].diagnostic ||
                !utf8_valid(br->rcpt[k].address, strlen(br->rcpt[k].address), NULL))
                abort();
    }
    webhook_batch_clear(&b);
    return 0;
}
