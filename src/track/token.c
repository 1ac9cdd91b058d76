/* track/token: signed tracking tokens (see token.h). Tokens are made with
 * HMAC-SHA-256 over OpenSSL's SHA-256 and a table base64url encoder; libsodium derives
 * the key and decodes and compares on the checking side. */
#include "track/token.h"

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP,
 * whose per-call overhead is the cost this file avoids (see mac below). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
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
 * preferences URLs). libsodium's portable SHA-256 made them a third of the
 * time of rendering and building a message (1.1 us per MAC); OpenSSL's
 * EVP_MAC, even with a keyed context kept per thread, still spent more in
 * its provider dispatch than in hashing (7% of a campaign's CPU). So HMAC
 * (RFC 2104) is done here over OpenSSL's low-level SHA-256, which uses the
 * CPU's SHA instructions: the states after the key's inner and outer pads
 * are computed once per thread and key and copied for each token, leaving
 * about four compressions per MAC. test_track checks tokens made with
 * Python's hmac module. */
struct mac_cache {
    bool keyed;
    uint8_t key[TRACK_KEY_LEN];
    SHA256_CTX inner, outer;
};

static _Thread_local struct mac_cache mac_tls;

static void mac(const uint8_t key[TRACK_KEY_LEN], const uint8_t *p, size_t n,
                uint8_t out[MAC_LEN])
{
    struct mac_cache *m = &mac_tls;
    if (!m->keyed || memcmp(m->key, key, TRACK_KEY_LEN)) {
        uint8_t pad[SHA256_CBLOCK];
        memset(pad, 0x36, sizeof pad);
        for (size_t i = 0; i < TRACK_KEY_LEN; i++)
            pad[i] ^= key[i];
        SHA256_Init(&m->inner);
        SHA256_Update(&m->inner, pad, sizeof pad);
        memset(pad, 0x5c, sizeof pad);
        for (size_t i = 0; i < TRACK_KEY_LEN; i++)
            pad[i] ^= key[i];
        SHA256_Init(&m->outer);
        SHA256_Update(&m->outer, pad, sizeof pad);
        OPENSSL_cleanse(pad, sizeof pad);
        memcpy(m->key, key, TRACK_KEY_LEN);
        m->keyed = true;
    }
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256_CTX c = m->inner;
    SHA256_Update(&c, p, n);
    SHA256_Final(h, &c);
    c = m->outer;
    SHA256_Update(&c, h, sizeof h);
    SHA256_Final(h, &c);
    OPENSSL_cleanse(&c, sizeof c);
    memcpy(out, h, MAC_LEN);
}

/* base64url without padding (RFC 4648 5). libsodium's encoder is
 * constant-time, which a token (public once sent) does not need, and took
 * as long as the MAC. */
static size_t b64url(const uint8_t *p, size_t n, char *out)
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
    return o;
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
    if (buf_append(out, b64, b64url(p, n, b64)))
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

/* ---- VERP and Message-ID tags ---------------------------------------------- */

void track_tag(const uint8_t key[TRACK_KEY_LEN], char use, int64_t campaign_id,
               int64_t delivery_id, char out[TRACK_TAG_LEN + 1])
{
    /* A label byte apart from a token's version byte (1), so no tag is ever
     * the MAC of a tracking token's payload or of the other use's. */
    uint8_t p[2 + 20];
    size_t n = 0;
    p[n++] = 0xfe;
    p[n++] = (uint8_t)use;
    n += put_varint(p + n, (uint64_t)campaign_id);
    n += put_varint(p + n, (uint64_t)delivery_id);
    uint8_t h[MAC_LEN];
    mac(key, p, n, h);
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    for (int i = 0; i < TRACK_TAG_LEN; i++)
        out[i] = b32[(v >> (64 - 5 * (i + 1))) & 31];
    out[TRACK_TAG_LEN] = '\0';
}

void track_verp_token(const uint8_t key[TRACK_KEY_LEN], int64_t campaign_id, int64_t delivery_id,
                      char out[TRACK_VERP_MAX + 1])
{
    char tag[TRACK_TAG_LEN + 1];
    track_tag(key, 'v', campaign_id, delivery_id, tag);
    snprintf(out, TRACK_VERP_MAX + 1, "d%lld-%s", (long long)delivery_id, tag);
}

int64_t track_verp_check(const uint8_t key[TRACK_KEY_LEN], int64_t campaign_id,
                         const char *token)
{
    if (!token || token[0] != 'd' || token[1] < '1' || token[1] > '9')
        return 0;
    int64_t id = 0;
    const char *p = token + 1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (id > (INT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (*p - '0');
    }
    if (*p != '-' || strlen(p + 1) != TRACK_TAG_LEN)
        return 0;
    /* A relay that changed the address's case changed no bit of the tag. */
    char got[TRACK_TAG_LEN], want[TRACK_TAG_LEN + 1];
    for (int i = 0; i < TRACK_TAG_LEN; i++) {
        char c = p[1 + i];
        got[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    track_tag(key, 'v', campaign_id, id, want);
    return CRYPTO_memcmp(want, got, TRACK_TAG_LEN) == 0 ? id : 0;
}
