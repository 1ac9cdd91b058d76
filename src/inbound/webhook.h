/* webhook: bounces and complaints reported by sending providers over HTTP
 * (Amazon SES through SNS, SendGrid's Event Webhook, Mailgun, Postmark),
 * checked for the provider's signature and applied like a parsed bounce
 * (act_report), each event exactly once under the provider's event id.
 *
 * The HTTP server hands over the body and a way to read request headers
 * (http/webhooks.c); this module knows nothing of HTTP but the status its
 * answer should have. Configuration lives in settings (WEBHOOK_SET_*,
 * written by `tidings inbound webhook set`); a provider without it is
 * not served (404). See docs/internals/inbound.md. */
#ifndef TD_INBOUND_WEBHOOK_H
#define TD_INBOUND_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "inbound/bounce.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

typedef enum webhook_provider {
    WEBHOOK_SES = 0, /* "ses": SNS messages carrying SES notifications */
    WEBHOOK_SENDGRID,
    WEBHOOK_MAILGUN,
    WEBHOOK_POSTMARK,
    WEBHOOK_NPROVIDERS
} webhook_provider;

/* Settings. SES: WEBHOOK_SET_SES "on", optionally the one topic taken and
 * a URL prefix trusted for certificates and subscription links besides
 * https://sns.REGION.amazonaws.com/ (for tests and private endpoints). */
#define WEBHOOK_SET_SES "webhook.ses"
#define WEBHOOK_SET_SES_TOPIC "webhook.ses.topic_arn"
#define WEBHOOK_SET_SES_CERT_PREFIX "webhook.ses.cert_url_prefix"
#define WEBHOOK_SET_SENDGRID "webhook.sendgrid.key" /* ECDSA P-256 public key, base64 DER or PEM */
#define WEBHOOK_SET_MAILGUN "webhook.mailgun.key"   /* the HTTP webhook signing key */
#define WEBHOOK_SET_POSTMARK "webhook.postmark.auth" /* "user:password" of Basic auth */

#define WEBHOOK_MAX_EVENTS 10000   /* events taken from one request */
#define WEBHOOK_MAX_AGE 900        /* seconds a Mailgun signature's timestamp may be off */
#define WEBHOOK_CERT_MAX (64u << 10) /* bytes of an SNS signing certificate */

/* One event of a provider's payload that is a bounce or complaint. */
typedef struct webhook_event {
    char *key;         /* the provider's event id, prefixed as recorded */
    bounce_result *br; /* kind BOUNCE or COMPLAINT, one or more recipients */
} webhook_event;

typedef struct webhook_batch {
    webhook_event *v;
    size_t n;
    size_t ignored; /* events of other kinds (deliveries, opens, ...) */
} webhook_batch;

/* webhook_provider_find returns the provider named name[0..n) ("ses",
 * "sendgrid", "mailgun", "postmark"), or -1. */
int webhook_provider_find(const char *name, size_t n);

/* webhook_provider_name is the provider's name ("ses", ...). */
const char *webhook_provider_name(webhook_provider p);

/* webhook_parse reads the payload body[0..len) of provider p (for SES the
 * SNS message's Message string, not the SNS envelope) into *out. Returns
 * 0 (out->n may be 0: nothing to act on), or TD_EINVAL with a message for
 * a body that is not the provider's JSON. Signatures are not checked
 * here. The caller frees *out with webhook_batch_clear. */
int webhook_parse(webhook_provider p, const char *body, size_t len, webhook_batch *out,
                  td_error *e);

/* webhook_batch_clear frees what b holds and empties it. */
void webhook_batch_clear(webhook_batch *b);

/* The state kept between requests: fetched SNS certificates. */
typedef struct webhook webhook;

/* webhook_new makes the state; webhook_free frees it (NULL: no-op). */
webhook *webhook_new(void);
void webhook_free(webhook *w);

/* How the handler reads a request header (any case); NULL when absent. */
typedef const char *(*webhook_header_fn)(const void *ud, const char *name);

/* webhook_handle serves one POST of provider name[0..n): checks that it is
 * configured (else 404), its signature or credentials (401 when missing,
 * 403 when wrong or too old), parses it (400), applies each bounce or
 * complaint with act_report on s (source "webhook:PROVIDER", key the event
 * id), and for an SNS subscription confirms it by fetching its
 * SubscribeURL. Returns the HTTP status to answer: 200 only once every
 * event is stored (a replay is 200 and changes nothing), 503 when the
 * store is busy or failing (the provider tries again; what was stored
 * stays stored once), 502 when a confirmation could not be fetched. A
 * line for the answer's body is put in msg. */
int webhook_handle(webhook *w, store *s, const char *name, size_t n, const char *body,
                   size_t len, webhook_header_fn hdr, const void *hud, buf *msg);

/* webhook_check_config checks value as the setting of provider p (for
 * SendGrid, that the public key reads as an EC P-256 key; for Postmark,
 * "user:password"; for Mailgun, a key at all). Returns 0 or TD_EINVAL
 * with a message. */
int webhook_check_config(webhook_provider p, const char *value, td_error *e);

/* webhook_sns_url_ok says whether url may be fetched for SNS: https on
 * sns.REGION.amazonaws.com (or .amazonaws.com.cn), or starting with
 * prefix when prefix is not NULL or "". */
int webhook_sns_url_ok(const char *url, const char *prefix);

#endif
