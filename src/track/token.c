/* track/token: signed tracking tokens (see token.h). Tokens are made with
 * OpenSSL's HMAC-SHA-256 and a table base64url encoder; libsodium derives
 * the key and decodes and compares on the checking side. */
#include "track/token.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define TOKEN_VERSION 1
#define MAC_LEN 16
/* version + kind + 3 varints of at most 10 bytes + data + MAC */
#define PAYLOAD_MAX (2 + 30 + TRACK_DATA_MAX + MAC_LEN)

void track_key(const char *secret, uint8_t key[TRACK_KEY_LEN])
{
    if (sodium_init() < 0)
        abort(); /* no usable libsodium: nothing can be signed */
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    static const char label[] = "tidings track key v1";
    crypto_hash_sha256_update(&st, (const unsigned char *)label, sizeof label - 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)secret, strlen(secret));
    crypto_hash_sha256_final(&st, key);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static bool get_varint(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*at >= len)
            return false;
        uint8_t b = p[(*at)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Speed: a campaign message holds about 45 tokens (every tracked link in
 * the HTML and again in the text, plus the open, view, unsubscribe and
 * preferences URLs), and libsodium's portable SHA-256 made them a third of
 * the time of rendering and building a message (1.1 us per MAC). OpenSSL
 * uses the CPU's SHA instructions; a keyed HMAC context kept per thread
 * and re-initialised with the same key (EVP_MAC_init with a NULL key keeps
 * it) saves fetching HMAC and SHA-256 and hashing the key pads each time:
 * about 0.25 us. The context is freed when its thread ends. */
struct mac_cache {
    EVP_MAC_CTX *ctx;
    bool keyed;
    uint8_t key[TRACK_KEY_LEN];
};

static pthread_key_t mac_tls;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;

static void mac_cache_free(void *p)
{
    struct mac_cache *m = p;
    EVP_MAC_CTX_free(m->ctx);
    free(m);
}

static void mac_init_once(void)
{
    if (pthread_key_create(&mac_tls, mac_cache_free) != 0 ||
        !(hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        abort(); /* no HMAC in OpenSSL: nothing can be signed */
}

static void mac(const uint8_t key[TRACK_KEY_LEN], const uint8_t *p, size_t n,
                uint8_t out[MAC_LEN])
{
    pthread_once(&mac_once, mac_init_once);
    struct mac_cache *m = pthread_getspecific(mac_tls);
    if (!m) {
        m = xcalloc(1, sizeof *m);
        if (!(m->ctx = EVP_MAC_CTX_new(hmac_alg)) || pthread_setspecific(mac_tls, m) != 0)
            abort();
    }
    const uint8_t *k = NULL; /* NULL: the key the context holds already */
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_end(), OSSL_PARAM_construct_end()};
    if (!m->keyed || memcmp(m->key, key, TRACK_KEY_LEN)) {
        k = key;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
        memcpy(m->key, key, TRACK_KEY_LEN);
        m->keyed = true;
    }
    uint8_t full[32];
    size_t len = 0;
    if (!EVP_MAC_init(m->ctx, k, k ? TRACK_KEY_LEN : 0, params) ||
        !EVP_MAC_update(m->ctx, p, n) || !EVP_MAC_final(m->ctx, full, &len, sizeof full) ||
        len != sizeof full)
        abort(); /* cannot fail with a fetched HMAC and a 32-byte key */
    memcpy(out, full, MAC_LEN);
}

/* base64url without padding (RFC 4648 5). libsodium's encoder is
 * constant-time, which a token (public once sent) does not need, and took
 * as long as the MAC. */
static void b64url(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = d[v >> 18];
        out[o++] = d[(v >> 12) & 63];
        out[o++] = d[(v >> 6) & 63];
        out[o++] = d[v & 63];
    }
    if (n - i == 1) {
        out[o++] = d[p[i] >> 2];
        out[o++] = d[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = d[v >> 10];
        out[o++] = d[(v >> 4) & 63];
        out[o++] = d[(v & 15) << 2];
    }
    out[o] = '\0';
}

int track_token(const uint8_t key[TRACK_KEY_LEN], const track_claims *c, buf *out, td_error *e)
{
    if (c->data_len > TRACK_DATA_MAX)
        return td_err_set(e, TD_EINVAL, "a tracked link is longer than %d bytes", TRACK_DATA_MAX);
    if (c->campaign_id < 0 || c->subscriber_id < 0 || c->list_id < 0)
        return td_err_set(e, TD_EINVAL, "a tracking token cannot hold a negative id");
    uint8_t p[PAYLOAD_MAX];
    size_t n = 0;
    p[n++] = TOKEN_VERSION;
    p[n++] = (uint8_t)c->kind;
    n += put_varint(p + n, (uint64_t)c->campaign_id);
    n += put_varint(p + n, (uint64_t)c->subscriber_id);
    n += put_varint(p + n, (uint64_t)c->list_id);
    if (c->data_len) {
        memcpy(p + n, c->data, c->data_len);
        n += c->data_len;
    }
    mac(key, p, n, p + n);
    n += MAC_LEN;
    char b64[sodium_base64_ENCODED_LEN(PAYLOAD_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    b64url(p, n, b64);
    if (buf_puts(out, b64))
        return td_err_set(e, TD_ETOOBIG, "no room for a tracking token");
    return TD_OK;
}

static const char *const paths[] = {[TRACK_OPEN] = "o",  [TRACK_CLICK] = "c", [TRACK_UNSUB] = "u",
                                    [TRACK_PREFS] = "p", [TRACK_VIEW] = "v",
                                    [TRACK_CONFIRM] = "confirm"};

int track_url(const uint8_t key[TRACK_KEY_LEN], const char *base, const track_claims *c, buf *out,
              td_error *e)
{
    if (c->kind < TRACK_OPEN || c->kind > TRACK_CONFIRM)
        return td_err_set(e, TD_EINVAL, "unknown tracking link kind %d", (int)c->kind);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    size_t start = out->len;
    if (buf_append(out, base, bl) || buf_putc(out, '/') || buf_puts(out, paths[c->kind]) ||
        buf_putc(out, '/')) {
        buf_truncate(out, start);
        return td_err_set(e, TD_ETOOBIG, "no room for a tracking URL");
    }
    int rc = track_token(key, c, out, e);
    if (rc)
        buf_truncate(out, start);
    return rc;
}

int track_open(const uint8_t key[TRACK_KEY_LEN], const char *tok, size_t len, track_claims *c,
               td_error *e)
{
    memset(c, 0, sizeof *c);
    uint8_t p[PAYLOAD_MAX];
    size_t n = 0;
    if (len == 0 || len > sodium_base64_ENCODED_LEN(PAYLOAD_MAX,
                                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        sodium_base642bin(p, sizeof p, tok, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n < 2 + 3 + MAC_LEN)
        goto bad;
    uint8_t want[MAC_LEN];
    mac(key, p, n - MAC_LEN, want);
    if (sodium_memcmp(want, p + n - MAC_LEN, MAC_LEN) != 0)
        goto bad;
    n -= MAC_LEN;
    if (p[0] != TOKEN_VERSION || p[1] < TRACK_OPEN || p[1] > TRACK_CONFIRM)
        goto bad;
    size_t at = 2;
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        if (!get_varint(p, n, &at, &ids[i]) || ids[i] > INT64_MAX)
            goto bad;
    c->kind = (track_kind)p[1];
    c->campaign_id = (int64_t)ids[0];
    c->subscriber_id = (int64_t)ids[1];
    c->list_id = (int64_t)ids[2];
    if (at < n) {
        c->data_len = n - at;
        c->data = xstrndup((const char *)p + at, c->data_len);
        if (strlen(c->data) != c->data_len) { /* a NUL inside: never made by us */
            track_claims_clear(c);
            goto bad;
        }
    }
    return TD_OK;
bad:
    return td_err_set(e, TD_EINVAL, "the link is not valid (damaged or not made by this server)");
}

void track_claims_clear(track_claims *c)
{
    free(c->data);
    c->data = NULL;
    c->data_len = 0;
}
