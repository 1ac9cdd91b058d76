/* webhook: provider event webhooks: signatures, payloads, effects (see
 * webhook.h and docs/internals/inbound.md). */
#include "inbound/webhook.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "inbound/act.h"
#include "inbound/reason.h"
#include "util/log.h"
#include "util/xalloc.h"

#define ADDR_MAX 320
#define DIAG_MAX 1000
#define KEY_MAX 200
#define CERT_CACHE 16

static const char *const names[WEBHOOK_NPROVIDERS] = {"ses", "sendgrid", "mailgun", "postmark"};

int webhook_provider_find(const char *name, size_t n)
{
    for (int i = 0; i < WEBHOOK_NPROVIDERS; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], name, n))
            return i;
    return -1;
}

const char *webhook_provider_name(webhook_provider p)
{
    return p < WEBHOOK_NPROVIDERS ? names[p] : "?";
}

/* ---- payloads ------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A copy of s without one pair of <> around it, or NULL when s is NULL,
 * empty or too long to be a Message-ID. */
static char *strip_angle(const char *s)
{
    if (!s)
        return NULL;
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
        s++;
        n -= 2;
    }
    if (!n || n > 995)
        return NULL;
    return bounce_utf8_clean(s, n);
}

static bounce_result *br_new(bounce_kind k)
{
    bounce_result *br = xcalloc(1, sizeof *br);
    br->kind = k;
    return br;
}

/* Adds a failed recipient: the provider's verdict (hard), its status code
 * when it gives one, its words. The reason comes from the words and the
 * code, as for a parsed bounce. */
static void br_add(bounce_result *br, const char *address, bool hard, const char *status,
                   int reply_code, const char *diag)
{
    if (!address || !*address || strlen(address) > ADDR_MAX || br->nrcpt >= BOUNCE_MAX_RCPT)
        return;
    br->rcpt = xrealloc(br->rcpt, (br->nrcpt + 1) * sizeof *br->rcpt);
    bounce_rcpt *r = &br->rcpt[br->nrcpt++];
    memset(r, 0, sizeof *r);
    r->address = bounce_utf8_clean(address, strlen(address));
    diag = diag ? diag : "";
    size_t dl = strnlen(diag, DIAG_MAX);
    r->diagnostic = bounce_utf8_clean(diag, dl);
    r->hard = br->kind == BOUNCE_KIND_COMPLAINT || hard;
    r->reply_code = reply_code >= 200 && reply_code <= 599 ? reply_code : 0;
    if (br->kind == BOUNCE_KIND_COMPLAINT) {
        r->reason = "feedback";
        return;
    }
    bool specific = false;
    const char *rs = reason_from_text(r->diagnostic, strlen(r->diagnostic), &specific);
    const char *rst = NULL;
    /* A status is "d.ddd.ddd"; anything else is not taken. */
    if (status && (status[0] == '4' || status[0] == '5') && status[1] == '.' &&
        strlen(status) < sizeof r->status && strspn(status, "0123456789.") == strlen(status)) {
        snprintf(r->status, sizeof r->status, "%s", status);
        rst = reason_from_status(status);
    }
    r->reason = specific && rs ? rs : rst ? rst : rs ? rs : "unknown";
    if (!r->status[0])
        reason_pseudo_status(r->reason, hard ? 5 : 4, r->status);
}

static void batch_add(webhook_batch *b, const char *provider, const char *id, bounce_result *br)
{
    if (!br->nrcpt) {
        bounce_result_free(br); /* no address to act on */
        b->ignored++;
        return;
    }
    b->v = xrealloc(b->v, (b->n + 1) * sizeof *b->v);
    size_t n = strlen(provider) + strlen(id) + 2;
    char *key = xmalloc(n);
    snprintf(key, n, "%s:%s", provider, id);
    b->v[b->n++] = (webhook_event){.key = key, .br = br};
}

void webhook_batch_clear(webhook_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].key);
        bounce_result_free(b->v[i].br);
    }
    free(b->v);
    memset(b, 0, sizeof *b);
}

static bool id_ok(const char *id)
{
    return id && *id && strlen(id) <= KEY_MAX;
}

/* SES notification (the SNS Message): "notificationType" (SNS
 * notifications) or "eventType" (event publishing) Bounce or Complaint. */
static int parse_ses(json_t *j, const char *id, webhook_batch *out, td_error *e)
{
    const char *type = jstr(j, "notificationType");
    if (!type)
        type = jstr(j, "eventType");
    if (!type)
        return td_err_set(e, TD_EINVAL, "not an SES notification (no notificationType)");
    bool bounce = !strcmp(type, "Bounce"), complaint = !strcmp(type, "Complaint");
    if (!bounce && !complaint) {
        out->ignored++;
        return TD_OK;
    }
    json_t *mail = json_object_get(j, "mail");
    json_t *what = json_object_get(j, bounce ? "bounce" : "complaint");
    if (!json_is_object(what))
        return td_err_set(e, TD_EINVAL, "an SES %s notification without its details", type);
    bounce_result *br = br_new(bounce ? BOUNCE_KIND_BOUNCE : BOUNCE_KIND_COMPLAINT);
    if (json_is_object(mail)) {
        const char *src = jstr(mail, "source");
        if (src && strlen(src) <= ADDR_MAX)
            br->orig_return_path = bounce_utf8_clean(src, strlen(src));
        br->orig_message_id = strip_angle(jstr(json_object_get(mail, "commonHeaders"), "messageId"));
        json_t *hs = json_object_get(mail, "headers"), *h;
        size_t i;
        json_array_foreach(hs, i, h) {
            const char *hn = jstr(h, "name");
            if (!br->orig_message_id && hn && !strcasecmp(hn, "Message-ID"))
                br->orig_message_id = strip_angle(jstr(h, "value"));
        }
    }
    json_t *list = json_object_get(what, bounce ? "bouncedRecipients" : "complainedRecipients");
    json_t *r;
    size_t i;
    const char *bt = jstr(what, "bounceType");
    bool hard = bt && !strcmp(bt, "Permanent");
    json_array_foreach(list, i, r) {
        br_add(br, jstr(r, "emailAddress"), hard, jstr(r, "status"), 0,
               jstr(r, "diagnosticCode"));
    }
    if (complaint) {
        const char *ft = jstr(what, "complaintFeedbackType");
        br->feedback_type = xstrdup(ft && strlen(ft) < 64 ? ft : "abuse");
    }
    batch_add(out, "ses", id, br);
    return TD_OK;
}

/* SendGrid: an array of events, each with its sg_event_id. */
static int parse_sendgrid(json_t *j, webhook_batch *out, td_error *e)
{
    if (!json_is_array(j))
        return td_err_set(e, TD_EINVAL, "a SendGrid payload is an array of events");
    if (json_array_size(j) > WEBHOOK_MAX_EVENTS)
        return td_err_set(e, TD_EINVAL, "more than %d events", WEBHOOK_MAX_EVENTS);
    size_t i;
    json_t *ev;
    json_array_foreach(j, i, ev) {
        const char *kind = jstr(ev, "event"), *id = jstr(ev, "sg_event_id");
        if (!json_is_object(ev) || !kind)
            return td_err_set(e, TD_EINVAL, "event %zu is not an object with an event", i);
        const char *reason = jstr(ev, "reason");
        bounce_kind k = BOUNCE_KIND_BOUNCE;
        bool hard = false;
        if (!strcmp(kind, "bounce")) {
            const char *type = jstr(ev, "type");
            hard = !type || strcmp(type, "blocked"); /* bounce: hard; blocked: soft */
        } else if (!strcmp(kind, "deferred")) {
            reason = jstr(ev, "response");
        } else if (!strcmp(kind, "spamreport")) {
            k = BOUNCE_KIND_COMPLAINT;
        } else if (!strcmp(kind, "dropped") && reason &&
                   (strstr(reason, "Bounced Address") || !strncmp(reason, "Invalid", 7))) {
            hard = true; /* dropped for an address known bad */
        } else if (!strcmp(kind, "dropped") && reason && strstr(reason, "Spam Reporting")) {
            k = BOUNCE_KIND_COMPLAINT;
        } else {
            out->ignored++; /* delivered, open, click, other drops, ... */
            continue;
        }
        if (!id_ok(id))
            return td_err_set(e, TD_EINVAL, "event %zu has no sg_event_id", i);
        bounce_result *br = br_new(k);
        br->orig_message_id = strip_angle(jstr(ev, "smtp-id"));
        if (k == BOUNCE_KIND_COMPLAINT)
            br->feedback_type = xstrdup("abuse");
        br_add(br, jstr(ev, "email"), hard, jstr(ev, "status"), 0, reason);
        batch_add(out, "sendgrid", id, br);
    }
    return TD_OK;
}

/* Mailgun: {"signature": {...}, "event-data": {...}}, one event. */
static int parse_mailgun(json_t *j, webhook_batch *out, td_error *e)
{
    json_t *ev = json_object_get(j, "event-data");
    const char *kind = jstr(ev, "event"), *id = jstr(ev, "id");
    if (!json_is_object(ev) || !kind)
        return td_err_set(e, TD_EINVAL, "a Mailgun payload has event-data with an event");
    bool failed = !strcmp(kind, "failed"), complained = !strcmp(kind, "complained");
    if (!failed && !complained) {
        out->ignored++;
        return TD_OK;
    }
    if (!id_ok(id))
        return td_err_set(e, TD_EINVAL, "the event has no id");
    bounce_result *br = br_new(failed ? BOUNCE_KIND_BOUNCE : BOUNCE_KIND_COMPLAINT);
    json_t *hdrs = json_object_get(json_object_get(ev, "message"), "headers");
    br->orig_message_id = strip_angle(jstr(hdrs, "message-id"));
    const char *sender = jstr(json_object_get(ev, "envelope"), "sender");
    if (sender && strlen(sender) <= ADDR_MAX)
        br->orig_return_path = bounce_utf8_clean(sender, strlen(sender));
    if (complained)
        br->feedback_type = xstrdup("abuse");
    const char *sev = jstr(ev, "severity");
    json_t *ds = json_object_get(ev, "delivery-status");
    const char *diag = jstr(ds, "message");
    if (!diag || !*diag)
        diag = jstr(ds, "description");
    if (!diag || !*diag)
        diag = jstr(ev, "reason");
    json_t *code = json_object_get(ds, "code");
    br_add(br, jstr(ev, "recipient"), sev && !strcmp(sev, "permanent"),
           jstr(ds, "enhanced-code"), json_is_integer(code) ? (int)json_integer_value(code) : 0,
           diag);
    batch_add(out, "mailgun", id, br);
    return TD_OK;
}

/* Postmark: one Bounce or SpamComplaint record. */
static int parse_postmark(json_t *j, webhook_batch *out, td_error *e)
{
    const char *rt = jstr(j, "RecordType");
    json_t *idv = json_object_get(j, "ID");
    if (!json_is_object(j) || !rt)
        return td_err_set(e, TD_EINVAL, "a Postmark payload has a RecordType");
    const char *type = jstr(j, "Type");
    bounce_kind k = BOUNCE_KIND_BOUNCE;
    bool hard = false;
    if (!strcmp(rt, "SpamComplaint") || (!strcmp(rt, "Bounce") && type &&
                                          !strcmp(type, "SpamComplaint"))) {
        k = BOUNCE_KIND_COMPLAINT;
    } else if (!strcmp(rt, "Bounce") && type &&
               (!strcmp(type, "HardBounce") || !strcmp(type, "BadEmailAddress"))) {
        hard = true;
    } else if (!strcmp(rt, "Bounce") && type &&
               (!strcmp(type, "SoftBounce") || !strcmp(type, "Transient") ||
                !strcmp(type, "DnsError") || !strcmp(type, "Blocked"))) {
        hard = false;
    } else {
        out->ignored++; /* deliveries, opens, auto-responders, ... */
        return TD_OK;
    }
    char id[64];
    if (json_is_integer(idv))
        snprintf(id, sizeof id, "%s:%lld", rt, (long long)json_integer_value(idv));
    else if (json_is_string(idv) && strlen(json_string_value(idv)) < 40)
        snprintf(id, sizeof id, "%s:%s", rt, json_string_value(idv));
    else
        return td_err_set(e, TD_EINVAL, "the record has no ID");
    bounce_result *br = br_new(k);
    if (k == BOUNCE_KIND_COMPLAINT)
        br->feedback_type = xstrdup("abuse");
    const char *diag = jstr(j, "Details");
    if (!diag || !*diag)
        diag = jstr(j, "Description");
    br_add(br, jstr(j, "Email"), hard, NULL, 0, diag);
    batch_add(out, "postmark", id, br);
    return TD_OK;
}

static int parse_json(webhook_provider p, json_t *j, const char *ses_id, webhook_batch *out,
                      td_error *e)
{
    switch (p) {
    case WEBHOOK_SES: return parse_ses(j, ses_id, out, e);
    case WEBHOOK_SENDGRID: return parse_sendgrid(j, out, e);
    case WEBHOOK_MAILGUN: return parse_mailgun(j, out, e);
    case WEBHOOK_POSTMARK: return parse_postmark(j, out, e);
    default: return td_err_set(e, TD_EINVAL, "no such provider");
    }
}

static json_t *load(const char *body, size_t len, td_error *e)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        td_err_set(e, TD_EINVAL, "malformed JSON: %s (line %d)", je.text, je.line);
    return j;
}

int webhook_parse(webhook_provider p, const char *body, size_t len, webhook_batch *out,
                  td_error *e)
{
    memset(out, 0, sizeof *out);
    json_t *j = load(body, len, e);
    if (!j)
        return TD_EINVAL;
    /* SES alone has no event id of its own in the payload: the SNS
     * MessageId names it (webhook_handle); here, its feedbackId. */
    const char *fid = NULL;
    if (p == WEBHOOK_SES) {
        fid = jstr(json_object_get(j, "bounce"), "feedbackId");
        if (!fid)
            fid = jstr(json_object_get(j, "complaint"), "feedbackId");
        if (!id_ok(fid))
            fid = "unnamed";
    }
    int rc = TD_OK;
    if (!rc)
        rc = parse_json(p, j, fid, out, e);
    json_decref(j);
    if (rc)
        webhook_batch_clear(out);
    return rc;
}

/* ---- signatures ------------------------------------------------------------ */

/* Constant time over the values' digests, so neither the content nor the
 * length of the secret shows in the time taken. */
static bool same_secret(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned char da[32], db[32];
    unsigned int l = 0;
    EVP_Digest(a, an, da, &l, EVP_sha256(), NULL);
    EVP_Digest(b, bn, db, &l, EVP_sha256(), NULL);
    return CRYPTO_memcmp(da, db, 32) == 0;
}

/* Base64 (standard alphabet; whitespace ignored) into a malloc'd buffer. */
static unsigned char *b64dec(const char *s, size_t *n)
{
    size_t sl = strlen(s);
    unsigned char *out = xmalloc(sl / 4 * 3 + 4);
    if (sodium_base642bin(out, sl / 4 * 3 + 4, s, sl, " \t\r\n", n, NULL,
                          sodium_base64_VARIANT_ORIGINAL)) {
        free(out);
        return NULL;
    }
    return out;
}

static bool verify(EVP_PKEY *k, const EVP_MD *md, const unsigned char *sig, size_t sl,
                   const void *d1, size_t n1, const void *d2, size_t n2)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, k) == 1 &&
              EVP_DigestVerifyUpdate(c, d1, n1) == 1 &&
              (!n2 || EVP_DigestVerifyUpdate(c, d2, n2) == 1) &&
              EVP_DigestVerifyFinal(c, sig, sl) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* The SendGrid key as SendGrid shows it (base64 of the DER public key) or
 * PEM; a new reference, or NULL when it does not read as EC P-256. */
static EVP_PKEY *sendgrid_key(const char *key)
{
    char *k64 = xstrdup(key);
    char *p = strstr(k64, "-----BEGIN PUBLIC KEY-----");
    if (p) {
        p += 26;
        char *end = strstr(p, "-----END");
        if (end)
            *end = '\0';
        memmove(k64, p, strlen(p) + 1);
    }
    size_t kl = 0;
    unsigned char *der = b64dec(k64, &kl);
    free(k64);
    const unsigned char *dp = der;
    EVP_PKEY *pk = der ? d2i_PUBKEY(NULL, &dp, (long)kl) : NULL;
    free(der);
    char group[64] = "";
    size_t gl = 0;
    if (pk && (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
               !EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &gl) ||
               strcmp(group, "prime256v1"))) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

int webhook_check_config(webhook_provider p, const char *value, td_error *e)
{
    if (!value || !*value)
        return td_err_set(e, TD_EINVAL, "the %s setting is empty", webhook_provider_name(p));
    if (p == WEBHOOK_SENDGRID) {
        EVP_PKEY *k = sendgrid_key(value);
        EVP_PKEY_free(k);
        if (!k)
            return td_err_set(e, TD_EINVAL, "the SendGrid key is not an ECDSA P-256 public key "
                                            "(base64 as SendGrid shows it, or PEM)");
    }
    if (p == WEBHOOK_POSTMARK && !strchr(value, ':'))
        return td_err_set(e, TD_EINVAL, "the Postmark credentials are \"user:password\"");
    return TD_OK;
}

/* SendGrid: ECDSA P-256 over timestamp || body. */
static int check_sendgrid(const char *key, const char *body, size_t len, webhook_header_fn hdr,
                          const void *hud, buf *msg)
{
    const char *sig64 = hdr(hud, "X-Twilio-Email-Event-Webhook-Signature");
    const char *ts = hdr(hud, "X-Twilio-Email-Event-Webhook-Timestamp");
    if (!sig64 || !ts) {
        buf_puts(msg, "no signature\n");
        return 401;
    }
    size_t sl = 0;
    unsigned char *sig = b64dec(sig64, &sl);
    EVP_PKEY *pk = sendgrid_key(key);
    bool ok = pk && sig && verify(pk, EVP_sha256(), sig, sl, ts, strlen(ts), body, len);
    if (!pk)
        log_error("webhook: the SendGrid public key in %s does not read", WEBHOOK_SET_SENDGRID);
    EVP_PKEY_free(pk);
    free(sig);
    if (!ok) {
        buf_puts(msg, "bad signature\n");
        return 403;
    }
    return 200;
}

/* Mailgun: HMAC-SHA256 of timestamp || token with the signing key, in hex,
 * and a timestamp near now (a captured request is not good for long). */
static int check_mailgun(const char *key, json_t *j, buf *msg)
{
    json_t *sg = json_object_get(j, "signature");
    const char *ts = jstr(sg, "timestamp"), *tok = jstr(sg, "token"), *sig = jstr(sg, "signature");
    if (!ts || !tok || !sig) {
        buf_puts(msg, "no signature\n");
        return 401;
    }
    char *end;
    long long t = strtoll(ts, &end, 10);
    long long now = (long long)time(NULL);
    if (*end || end == ts || t < now - WEBHOOK_MAX_AGE || t > now + WEBHOOK_MAX_AGE) {
        buf_puts(msg, "signature timestamp too old or not a time\n");
        return 403;
    }
    size_t tl = strlen(ts), kl = strlen(tok);
    if (tl + kl > 4096) {
        buf_puts(msg, "bad signature\n");
        return 403;
    }
    char data[4100];
    memcpy(data, ts, tl);
    memcpy(data + tl, tok, kl);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)data, tl + kl, mac, &ml);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    char given[65] = {0};
    size_t gl = strlen(sig);
    for (size_t i = 0; i < gl && i < 64; i++)
        given[i] = (char)((sig[i] >= 'A' && sig[i] <= 'F') ? sig[i] - 'A' + 'a' : sig[i]);
    if (gl != 64 || CRYPTO_memcmp(hex, given, 64)) {
        buf_puts(msg, "bad signature\n");
        return 403;
    }
    return 200;
}

/* Postmark: HTTP Basic credentials, "user:password" as configured. */
static int check_postmark(const char *cred, webhook_header_fn hdr, const void *hud, buf *msg)
{
    const char *a = hdr(hud, "Authorization");
    if (!a || strncasecmp(a, "Basic ", 6)) {
        buf_puts(msg, "credentials required\n");
        return 401;
    }
    a += 6;
    while (*a == ' ')
        a++;
    size_t n = 0;
    unsigned char *got = b64dec(a, &n);
    bool ok = got && same_secret((const char *)got, n, cred, strlen(cred));
    free(got);
    if (!ok) {
        buf_puts(msg, "bad credentials\n");
        return 401;
    }
    return 200;
}

/* ---- SNS --------------------------------------------------------------------- */

struct cert {
    char *url;
    EVP_PKEY *key;
};

struct webhook {
    pthread_mutex_t mu;
    struct cert certs[CERT_CACHE];
    size_t next; /* the slot replaced next when the cache is full */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

webhook *webhook_new(void)
{
    webhook *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_once(&curl_once, curl_setup);
    return w;
}

void webhook_free(webhook *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < CERT_CACHE; i++) {
        free(w->certs[i].url);
        EVP_PKEY_free(w->certs[i].key);
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static bool region_host(const char *h)
{
    if (strncmp(h, "sns.", 4))
        return false;
    h += 4;
    size_t r = strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-");
    return r > 0 && (!strcmp(h + r, ".amazonaws.com") || !strcmp(h + r, ".amazonaws.com.cn"));
}

int webhook_sns_url_ok(const char *url, const char *prefix)
{
    if (!url || strlen(url) > 2048)
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    if (prefix && *prefix && !strncmp(url, prefix, strlen(prefix)))
        return 1;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
    int ok = u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
             !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
             !curl_url_get(u, CURLUPART_HOST, &host, 0) && !strcmp(scheme, "https") &&
             region_host(host) && curl_url_get(u, CURLUPART_PORT, &port, 0) &&
             curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return ok;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) ? 0 : size * n;
}

/* GETs url (checked by the caller) into out (capped); 0 on a 2xx. */
static int fetch(const char *url, bool http_ok, buf *out, td_error *e)
{
    CURL *c = curl_easy_init();
    if (!c)
        return td_err_set(e, TD_EINTERNAL, "libcurl did not start");
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, http_ok ? "http,https" : "https");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (cc)
        return td_err_set(e, TD_ETEMP, "fetching %s: %s", url, err[0] ? err : curl_easy_strerror(cc));
    if (status < 200 || status > 299)
        return td_err_set(e, TD_ETEMP, "fetching %s: status %ld", url, status);
    return TD_OK;
}

/* The public key of the certificate at url, from the cache or fetched;
 * a new reference the caller frees, or NULL. */
static EVP_PKEY *sns_key(webhook *w, const char *url, bool http_ok, td_error *e)
{
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < CERT_CACHE && !k; i++)
        if (w->certs[i].url && !strcmp(w->certs[i].url, url) && EVP_PKEY_up_ref(w->certs[i].key))
            k = w->certs[i].key;
    pthread_mutex_unlock(&w->mu);
    if (k)
        return k;
    buf b;
    buf_init(&b, WEBHOOK_CERT_MAX);
    if (fetch(url, http_ok, &b, e)) {
        buf_free(&b);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    buf_free(&b);
    k = x ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    if (!k) {
        td_err_set(e, TD_EINVAL, "%s is not a PEM certificate", url);
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    struct cert *c = &w->certs[w->next];
    w->next = (w->next + 1) % CERT_CACHE;
    free(c->url);
    EVP_PKEY_free(c->key);
    c->url = xstrdup(url);
    c->key = k;
    EVP_PKEY_up_ref(k); /* one for the cache, one for the caller */
    pthread_mutex_unlock(&w->mu);
    return k;
}

/* The string SNS signs: the fields of the message type, each as
 * "Name\nValue\n", in this order; Subject only when present. */
static bool sns_canonical(json_t *j, const char *type, buf *out)
{
    static const char *const notif[] = {"Message", "MessageId", "Subject", "Timestamp",
                                        "TopicArn", "Type", NULL};
    static const char *const sub[] = {"Message", "MessageId", "SubscribeURL", "Timestamp",
                                      "Token", "TopicArn", "Type", NULL};
    const char *const *f = !strcmp(type, "Notification") ? notif : sub;
    for (size_t i = 0; f[i]; i++) {
        const char *v = jstr(j, f[i]);
        if (!v && !strcmp(f[i], "Subject"))
            continue;
        if (!v)
            return false;
        buf_printf(out, "%s\n%s\n", f[i], v);
    }
    return true;
}

static char *setting(store *s, const char *k)
{
    char *v = NULL;
    if (store_setting_get(s, k, &v, NULL) || !v || !*v) {
        free(v);
        return NULL;
    }
    return v;
}

/* Checks an SNS message and hands back the SES notification it carries
 * (*inner, borrowed from j), or confirms a subscription. */
static int check_sns(webhook *w, store *s, json_t *j, const char **inner, buf *msg)
{
    *inner = NULL;
    const char *type = jstr(j, "Type"), *ver = jstr(j, "SignatureVersion");
    const char *sig64 = jstr(j, "Signature"), *cert = jstr(j, "SigningCertURL");
    if (!type || !jstr(j, "MessageId") || !jstr(j, "Message")) {
        buf_puts(msg, "not an SNS message\n");
        return 400;
    }
    if (!sig64 || !cert || !ver) {
        buf_puts(msg, "no signature\n");
        return 401;
    }
    const EVP_MD *md = !strcmp(ver, "1") ? EVP_sha1() : !strcmp(ver, "2") ? EVP_sha256() : NULL;
    char *prefix = setting(s, WEBHOOK_SET_SES_CERT_PREFIX);
    char *topic = setting(s, WEBHOOK_SET_SES_TOPIC);
    int status = 200;
    buf canon;
    buf_init(&canon, 1u << 20);
    bool http_ok = prefix && !strncmp(cert, prefix, strlen(prefix));
    if (!md || !webhook_sns_url_ok(cert, prefix)) {
        buf_puts(msg, !md ? "unknown SignatureVersion\n" : "certificate URL not trusted\n");
        status = 403;
        goto out;
    }
    if (!sns_canonical(j, type, &canon)) {
        buf_puts(msg, "an SNS message without the fields it signs\n");
        status = 400;
        goto out;
    }
    td_error e = {0};
    EVP_PKEY *k = sns_key(w, cert, http_ok, &e);
    if (!k) {
        log_warn("webhook: ses: %s", e.msg);
        buf_puts(msg, "the signing certificate could not be had\n");
        status = 403; /* SNS tries again later */
        goto out;
    }
    size_t sl = 0;
    unsigned char *sig = b64dec(sig64, &sl);
    bool ok = sig && verify(k, md, sig, sl, canon.data, canon.len, NULL, 0);
    free(sig);
    EVP_PKEY_free(k);
    if (!ok) {
        buf_puts(msg, "bad signature\n");
        status = 403;
        goto out;
    }
    if (topic && strcmp(topic, jstr(j, "TopicArn") ? jstr(j, "TopicArn") : "")) {
        buf_puts(msg, "not the configured topic\n");
        status = 403;
        goto out;
    }
    if (!strcmp(type, "Notification")) {
        *inner = jstr(j, "Message");
    } else if (!strcmp(type, "SubscriptionConfirmation")) {
        const char *u = jstr(j, "SubscribeURL");
        buf ans;
        buf_init(&ans, 64u << 10);
        if (!u || !webhook_sns_url_ok(u, prefix)) {
            buf_puts(msg, "SubscribeURL not trusted\n");
            status = 403;
        } else if (fetch(u, prefix && !strncmp(u, prefix, strlen(prefix)), &ans, &e)) {
            log_warn("webhook: ses: confirming the subscription: %s", e.msg);
            buf_puts(msg, "the subscription could not be confirmed\n");
            status = 502;
        } else {
            log_info("webhook: ses: subscription to %s confirmed", jstr(j, "TopicArn"));
            buf_puts(msg, "subscription confirmed\n");
            status = 201; /* told apart from a notification by the caller */
        }
        buf_free(&ans);
    } else {
        buf_puts(msg, "nothing to do\n"); /* UnsubscribeConfirmation */
        status = 201;
    }
out:
    buf_free(&canon);
    free(prefix);
    free(topic);
    return status;
}

/* ---- serving ------------------------------------------------------------------- */

static const char *const config_key[WEBHOOK_NPROVIDERS] = {
    WEBHOOK_SET_SES, WEBHOOK_SET_SENDGRID, WEBHOOK_SET_MAILGUN, WEBHOOK_SET_POSTMARK};

int webhook_handle(webhook *w, store *s, const char *name, size_t n, const char *body,
                   size_t len, webhook_header_fn hdr, const void *hud, buf *msg)
{
    int p = webhook_provider_find(name, n);
    if (p < 0) {
        buf_puts(msg, "not found\n");
        return 404;
    }
    char *cfg = setting(s, config_key[p]);
    if (!cfg) {
        buf_puts(msg, "not found\n");
        return 404;
    }
    td_error e = {0};
    int status = 200;
    json_t *j = NULL;
    webhook_batch b = {0};
    /* SendGrid and Postmark sign the raw request: checked before the body
     * is even parsed. */
    if (p == WEBHOOK_SENDGRID && (status = check_sendgrid(cfg, body, len, hdr, hud, msg)) != 200)
        goto out;
    if (p == WEBHOOK_POSTMARK && (status = check_postmark(cfg, hdr, hud, msg)) != 200)
        goto out;
    if (!(j = load(body, len, &e))) {
        buf_printf(msg, "%s\n", e.msg);
        status = 400;
        goto out;
    }
    const char *ses_id = NULL;
    json_t *payload = j, *inner = NULL;
    if (p == WEBHOOK_MAILGUN && (status = check_mailgun(cfg, j, msg)) != 200)
        goto out;
    if (p == WEBHOOK_SES) {
        const char *m = NULL;
        status = check_sns(w, s, j, &m, msg);
        if (status == 201)
            status = 200; /* a subscription confirmed: nothing to store */
        if (status != 200 || !m)
            goto out;
        if (!(inner = load(m, strlen(m), &e))) {
            buf_printf(msg, "the SNS Message is not JSON: %s\n", e.msg);
            status = 400;
            goto out;
        }
        payload = inner;
        ses_id = jstr(j, "MessageId");
        if (!id_ok(ses_id)) {
            json_decref(inner);
            buf_puts(msg, "bad MessageId\n");
            status = 400;
            goto out;
        }
    }
    int rc = parse_json((webhook_provider)p, payload, ses_id, &b, &e);
    json_decref(inner);
    if (rc) {
        buf_printf(msg, "%s\n", e.msg);
        status = 400;
        goto out;
    }
    char source[32];
    snprintf(source, sizeof source, "webhook:%s", names[p]);
    size_t taken = 0, dup = 0;
    for (size_t i = 0; i < b.n; i++) {
        act_source src = {.source = source, .key = b.v[i].key};
        act_result r;
        if ((rc = act_report(s, b.v[i].br, &src, len, &r, &e))) {
            log_warn("webhook: %s: %s", names[p], e.msg);
            buf_puts(msg, "not stored; try again\n");
            status = rc == TD_EINVAL ? 500 : 503;
            goto out;
        }
        r.duplicate ? dup++ : taken++;
        log_info("webhook provider=%s kind=%s duplicate=%d matched_by=%s campaign=%lld "
                 "subscriber=%lld suppressed=%d",
                 names[p], r.kind, r.duplicate, r.matched_by ? r.matched_by : "-",
                 (long long)r.campaign_id, (long long)r.subscriber_id, r.suppressed);
    }
    buf_printf(msg, "ok taken=%zu duplicate=%zu ignored=%zu\n", taken, dup, b.ignored);
out:
    webhook_batch_clear(&b);
    json_decref(j);
    free(cfg);
    return status;
}
