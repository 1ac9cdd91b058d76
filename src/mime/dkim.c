/* dkim: DKIM signing, relaxed/relaxed, rsa-sha256 and ed25519-sha256 (see
 * dkim.h and docs/internals/dkim.md).
 *
 * Why no library: libopendkim (the only C DKIM library in Debian) was
 * measured on this kind of machine at 786-898 rsa and 1,674-1,861 ed25519
 * signatures/s for a 20 KB message, under 0.3x of OpenSSL's raw signing rate
 * (/work/shared/deps.md): it copies the message through its own buffers and
 * sets up its hashing per message. Signing is only two canonicalizations
 * and two hashes around one private-key operation, so it is written here on
 * OpenSSL's EVP API: the key is parsed once, the signing contexts are
 * initialised once and reused, the body is hashed once for every signature
 * of a message, and most of the body goes to SHA-256 straight from the
 * caller's bytes. libopendkim and dkimpy stay as the test oracles.
 *
 * Ed25519 signatures are made by libsodium (already linked for tokens and
 * passwords), from the key OpenSSL parsed: measured here, its
 * crypto_sign_ed25519_detached signs about 2.2x as fast as OpenSSL 3.0's
 * EVP_DigestSign (about 55,000 against 25,000 signatures/s on one core).
 * Ed25519 is deterministic, so both give the same bytes; the RFC 8463
 * vector in tests/unit/test_dkim.c and dkimpy in the e2e tests check them.
 *
 * Line ends: only CRLF ends a line. A bare CR or LF is an ordinary byte, as
 * RFC 6376 reads it; the message builder emits CRLF, and `tidings dkim sign`
 * converts its input before signing. */
#include "mime/dkim.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mime/addr.h"
#include "store/store.h"
#include "util/xalloc.h"

/* Long enough for a 4096-bit RSA signature, the largest key accepted. */
#define SIG_MAX 512
#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 4096
#define FOLD_COL 78

/* The fields signed when present, in h= order. From is listed once more than
 * it occurs (over-signing, RFC 6376 8.15): a From added in transit then
 * breaks the signature instead of being shown above the signed one. */
static const char *const signed_fields[] = {
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "list-unsubscribe", "list-unsubscribe-post", "list-id",
};
#define N_SIGNED (sizeof signed_fields / sizeof signed_fields[0])

struct dkim_signer {
    dkim_algo algo;
    char *domain, *selector;
    EVP_PKEY *pkey;
    EVP_MD *sha256;     /* fetched once: an implicit fetch per digest costs */
    EVP_MD_CTX *md;     /* body and header hashing */
    EVP_PKEY_CTX *rsa;  /* sign_init done once; signs a SHA-256 digest */
    unsigned char ed_sk[crypto_sign_ed25519_SECRETKEYBYTES]; /* seed and public key */
    buf hdr;            /* the DKIM-Signature field being built */
    buf canon;          /* the canonical header data being hashed */
    buf hlist;          /* the h= names of the message being signed */
};

struct dkim_keyset {
    size_t n;
    dkim_signer *s[2];
};

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool crlf_at(const char *p, size_t i, size_t end)
{
    return i + 1 < end && p[i] == '\r' && p[i + 1] == '\n';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---- names ---------------------------------------------------------------- */

const char *dkim_algo_name(dkim_algo a)
{
    switch (a) {
    case DKIM_RSA_SHA256: return "rsa";
    case DKIM_ED25519_SHA256: return "ed25519";
    }
    return NULL;
}

static const char *algo_tag(dkim_algo a)
{
    return a == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";
}

int dkim_algo_parse(const char *name, dkim_algo *out, td_error *e)
{
    if (name && !strcmp(name, "rsa"))
        *out = DKIM_RSA_SHA256;
    else if (name && !strcmp(name, "ed25519"))
        *out = DKIM_ED25519_SHA256;
    else
        return td_err_set(e, TD_EINVAL, "the DKIM algorithm must be rsa or ed25519");
    return TD_OK;
}

int dkim_domain_normalize(const char *domain, char **out, td_error *e)
{
    *out = NULL;
    if (!domain || !*domain)
        return td_err_set(e, TD_EINVAL, "the signing domain is empty");
    if (strlen(domain) > 1024 || strchr(domain, '@'))
        return td_err_set(e, TD_EINVAL, "the signing domain is not a domain name");
    /* addr is the one gate for domains: IDN to A-labels, LDH checks. */
    char *probe = xasprintf("postmaster@%s", domain);
    addr a;
    td_error ae = {0};
    int rc = addr_parse(probe, strlen(probe), &a, &ae);
    free(probe);
    if (rc) {
        const char *why = strstr(ae.msg, ": ");
        return td_err_set(e, TD_EINVAL, "the signing domain is not valid%s",
                          why ? why : "");
    }
    if (a.domain[0] == '[') {
        addr_clear(&a);
        return td_err_set(e, TD_EINVAL, "the signing domain must be a name, not an address");
    }
    *out = xstrdup(a.domain);
    addr_clear(&a);
    return TD_OK;
}

int dkim_selector_ok(const char *sel, td_error *e)
{
    size_t n = sel ? strlen(sel) : 0, label = 0;
    if (n == 0 || n > 200)
        return td_err_set(e, TD_EINVAL, "the selector must have 1 to 200 characters");
    for (size_t i = 0; i <= n; i++) {
        char c = sel[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || sel[i - 1] == '-' || sel[i - label] == '-')
                return td_err_set(e, TD_EINVAL,
                                  "the selector '%.200s' is not a DNS name: labels of 1 to 63 "
                                  "letters, digits or inner hyphens, separated by dots", sel);
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return td_err_set(e, TD_EINVAL,
                              "the selector may hold only ASCII letters, digits, '-' and '.'");
        }
    }
    return TD_OK;
}

/* ---- canonicalization ------------------------------------------------------ */

typedef void (*sink_fn)(void *ctx, const char *p, size_t n);

/* canon_body feeds the relaxed body (RFC 6376 3.4.4) of b[0..len) to put, in
 * spans taken straight from b wherever the canonical form equals the input:
 * only a run of two or more WSP, a tab, or WSP before a CRLF breaks a span,
 * so a typical encoded body goes to the hash in one piece. */
static void canon_body(const char *b, size_t len, sink_fn put, void *ctx)
{
    /* Drop the trailing empty lines first (with their trailing WSP), so that
     * every CRLF before `last` is emitted as met, with no deferral. A last
     * line without its CRLF is not trimmed: the CRLF is added after the WSP
     * is reduced, so its trailing WSP stays as one SP, as dkimpy and
     * libopendkim read 3.4.4 (a run before the end of b is no "end of line"
     * to them). A message sent over SMTP always ends in CRLF anyway. */
    size_t last = len;
    while (last >= 2 && b[last - 2] == '\r' && b[last - 1] == '\n') {
        last -= 2;
        while (last > 0 && is_wsp(b[last - 1]))
            last--;
    }
    size_t span = 0, i = 0;
    while (i < last) {
#if defined(__SSE2__)
        /* Sixteen bytes at a time to the next byte that changes: an HTAB,
         * or a SP before another WSP or a CR. Prose has a SP every few
         * bytes; stopping at each made this scan a fifth of a signature's
         * time beside Ed25519 (bench/render). */
        if (i + 17 <= last) {
            const __m128i sp = _mm_set1_epi8(' '), ht = _mm_set1_epi8('\t');
            const __m128i cr = _mm_set1_epi8('\r');
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
            __m128i n = _mm_loadu_si128((const __m128i *)(const void *)(b + i + 1));
            __m128i after = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(n, sp),
                                                      _mm_cmpeq_epi8(n, ht)),
                                         _mm_cmpeq_epi8(n, cr));
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, ht),
                                       _mm_and_si128(_mm_cmpeq_epi8(v, sp), after));
            unsigned m = (unsigned)_mm_movemask_epi8(hit);
            if (!m) {
                i += 16;
                continue;
            }
            i += (size_t)__builtin_ctz(m);
        }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time to the next SP or HTAB: the scan was a
         * quarter of an Ed25519 signature's time byte by byte. The lowest
         * flagged byte of the zero-byte test is exact. */
        if (i + 8 <= last) {
            uint64_t w;
            memcpy(&w, b + i, 8);
            uint64_t sp = w ^ 0x2020202020202020ull, ht = w ^ 0x0909090909090909ull;
            uint64_t hit = ((sp - 0x0101010101010101ull) & ~sp) |
                           ((ht - 0x0101010101010101ull) & ~ht);
            hit &= 0x8080808080808080ull;
            if (!hit) {
                i += 8;
                continue;
            }
            i += (size_t)__builtin_ctzll(hit) >> 3;
        }
#endif
        char c = b[i];
        if (c != ' ' && c != '\t') {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < last && is_wsp(b[j]))
            j++;
        /* A run reaching last (an unterminated last line) is kept as SP. */
        bool eol = crlf_at(b, j, last);
        if (c == ' ' && j == i + 1 && !eol) {
            i = j;
            continue;
        }
        if (i > span)
            put(ctx, b + span, i - span);
        if (!eol)
            put(ctx, " ", 1);
        span = i = j;
    }
    if (last > span)
        put(ctx, b + span, last - span);
    if (last > 0)
        put(ctx, "\r\n", 2);
}

/* canon_field appends the relaxed form (3.4.2) of the field f[0..len) whose
 * first colon is at f[colon] and whose name, without trailing WSP, is
 * f[0..name_len): lower-case name, colon, value unfolded with WSP runs made
 * one SP and none at either end, CRLF. Returns 0 or TD_ETOOBIG. */
static int canon_field(const char *f, size_t len, size_t colon, size_t name_len, buf *out)
{
    size_t vend = len;
    if (vend >= 2 && f[vend - 2] == '\r' && f[vend - 1] == '\n')
        vend -= 2;
    char name[64];
    int rc = 0;
    for (size_t i = 0; i < name_len; i += sizeof name) {
        size_t k = name_len - i < sizeof name ? name_len - i : sizeof name;
        for (size_t j = 0; j < k; j++)
            name[j] = lower(f[i + j]);
        rc |= buf_append(out, name, k);
    }
    rc |= buf_putc(out, ':');
    /* A CRLF inside a field is always followed by WSP (else the field would
     * have ended there), so unfolding is treating CRLF as part of a run. */
    size_t i = colon + 1;
    while (i < vend && (is_wsp(f[i]) || crlf_at(f, i, vend)))
        i += f[i] == '\r' ? 2 : 1;
    size_t span = i;
    while (i < vend) {
        char c = f[i];
        if (!is_wsp(c) && !crlf_at(f, i, vend)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < vend && (is_wsp(f[j]) || crlf_at(f, j, vend)))
            j += f[j] == '\r' ? 2 : 1;
        if (j >= vend) /* trailing WSP: dropped */
            break;
        if (c == ' ' && j == i + 1) {
            i = j;
            continue;
        }
        rc |= buf_append(out, f + span, i - span);
        rc |= buf_putc(out, ' ');
        span = i = j;
    }
    rc |= buf_append(out, f + span, i - span);
    rc |= buf_append(out, "\r\n", 2);
    return rc ? TD_ETOOBIG : TD_OK;
}

/* One header field of a message: bytes [off, off + len) including its CRLF,
 * the colon at off + colon, the name (trailing WSP trimmed) name_len long. */
typedef struct hfield {
    size_t off, len, colon, name_len;
} hfield;

typedef struct hsplit {
    hfield *f;
    size_t n, cap;
    size_t body; /* offset of the body (len when there is none) */
    hfield local[48];
} hsplit;

static void hsplit_init(hsplit *h)
{
    h->f = h->local;
    h->n = 0;
    h->cap = sizeof h->local / sizeof h->local[0];
    h->body = 0;
}

static void hsplit_free(hsplit *h)
{
    if (h->f != h->local)
        free(h->f);
}

static void hsplit_push(hsplit *h, hfield f)
{
    if (h->n == h->cap) {
        size_t cap = h->cap * 2;
        hfield *nf = xmalloc(cap * sizeof *nf);
        memcpy(nf, h->f, h->n * sizeof *nf);
        if (h->f != h->local)
            free(h->f);
        h->f = nf;
        h->cap = cap;
    }
    h->f[h->n++] = f;
}

/* find_crlf returns the offset of the first CRLF in m[from..end), or end. */
static size_t find_crlf(const char *m, size_t from, size_t end)
{
    size_t p = from;
    while (p < end) {
        const char *nl = memchr(m + p, '\n', end - p);
        if (!nl)
            return end;
        size_t k = (size_t)(nl - m);
        if (k > from && m[k - 1] == '\r')
            return k - 1;
        p = k + 1;
    }
    return end;
}

/* split finds the header fields of m[0..len) and where the body starts: after
 * the first empty line, or nowhere (an empty body) when there is none. */
static int split(const char *m, size_t len, hsplit *h, td_error *e)
{
    size_t pos = 0, line = 0;
    h->body = len;
    while (pos < len) {
        line++;
        size_t eol = find_crlf(m, pos, len);
        size_t next = eol < len ? eol + 2 : len;
        if (eol == pos) { /* the empty line: the body follows */
            h->body = next;
            return TD_OK;
        }
        if (is_wsp(m[pos])) {
            if (h->n == 0)
                return td_err_set(e, TD_EINVAL,
                                  "the header starts with a continuation line (a space or tab)");
            h->f[h->n - 1].len = next - h->f[h->n - 1].off;
        } else {
            const char *colon = memchr(m + pos, ':', eol - pos);
            if (!colon)
                return td_err_set(e, TD_EINVAL,
                                  "line %zu of the header is not a field (it has no colon)", line);
            size_t c = (size_t)(colon - (m + pos)), nl = c;
            while (nl > 0 && is_wsp(m[pos + nl - 1]))
                nl--;
            if (nl == 0)
                return td_err_set(e, TD_EINVAL, "line %zu of the header has an empty field name",
                                  line);
            hsplit_push(h, (hfield){.off = pos, .len = next - pos, .colon = c, .name_len = nl});
        }
        pos = next;
    }
    return TD_OK;
}

static void sink_buf(void *ctx, const char *p, size_t n)
{
    buf *b = ((void **)ctx)[0];
    int *rc = ((void **)ctx)[1];
    *rc |= buf_append(b, p, n);
}

int dkim_canon_body(const char *body, size_t len, buf *out)
{
    int rc = 0;
    size_t was = out->len;
    void *ctx[2] = {out, &rc};
    canon_body(body, len, sink_buf, ctx);
    if (rc)
        buf_truncate(out, was);
    return rc ? TD_ETOOBIG : TD_OK;
}

int dkim_canon_header(const char *field, size_t len, buf *out)
{
    const char *colon = memchr(field, ':', len);
    if (!colon)
        return TD_EINVAL;
    size_t c = (size_t)(colon - field), nl = c;
    while (nl > 0 && is_wsp(field[nl - 1]))
        nl--;
    if (nl == 0)
        return TD_EINVAL;
    size_t was = out->len;
    int rc = canon_field(field, len, c, nl, out);
    if (rc)
        buf_truncate(out, was);
    return rc;
}

int dkim_canon_message(const char *msg, size_t len, buf *out, td_error *e)
{
    hsplit h;
    hsplit_init(&h);
    size_t was = out->len;
    int rc = split(msg, len, &h, e);
    for (size_t i = 0; !rc && i < h.n; i++)
        rc = canon_field(msg + h.f[i].off, h.f[i].len, h.f[i].colon, h.f[i].name_len, out);
    if (!rc)
        rc = buf_append(out, "\r\n", 2);
    if (!rc)
        rc = dkim_canon_body(msg + h.body, len - h.body, out);
    hsplit_free(&h);
    if (rc) {
        buf_truncate(out, was);
        if (rc == TD_ETOOBIG)
            td_err_set(e, rc, "the canonical message is over the buffer's cap");
    }
    return rc;
}

/* ---- signers ---------------------------------------------------------------- */

static int ossl_fail(td_error *e, const char *what)
{
    return td_err_set(e, TD_EINTERNAL, "DKIM: %s failed in OpenSSL", what);
}

/* tag_ok: d= and s= values go into the header as they are, so they must be
 * plain DNS names (no ';', WSP or control character can reach the field). */
static bool tag_ok(const char *s)
{
    if (!*s || strlen(s) > 253)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_'))
            return false;
    return true;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

int dkim_signer_new(const char *domain, const char *selector, const char *pem,
                    dkim_signer **out, td_error *e)
{
    *out = NULL;
    if (!domain || !tag_ok(domain))
        return td_err_set(e, TD_EINVAL, "DKIM: the domain must be an A-label DNS name");
    if (!selector || !tag_ok(selector))
        return td_err_set(e, TD_EINVAL, "DKIM: the selector must be a DNS name");
    EVP_PKEY *k = pem ? read_key(pem) : NULL;
    if (!k)
        return td_err_set(e, TD_EINVAL, "DKIM: the private key of %s is not a readable PEM key",
                          selector);
    dkim_signer *s = xcalloc(1, sizeof *s);
    s->pkey = k;
    s->domain = xstrdup(domain);
    s->selector = xstrdup(selector);
    buf_init(&s->hdr, BUF_NOCAP);
    buf_init(&s->canon, BUF_NOCAP);
    buf_init(&s->hlist, BUF_NOCAP);
    int rc = TD_OK;
    if (!(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(s->md = EVP_MD_CTX_new())) {
        rc = ossl_fail(e, "setting up SHA-256");
        goto out;
    }
    if (EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
            rc = td_err_set(e, TD_EINVAL, "DKIM: the RSA key of %s has %d bits; 1024 to 4096 "
                            "are accepted (2048 recommended)", selector, bits);
            goto out;
        }
        s->algo = DKIM_RSA_SHA256;
        /* Initialised once: each signature is then one EVP_PKEY_sign of the
         * header digest (PKCS#1 v1.5 with the SHA-256 DigestInfo). */
        if (!(s->rsa = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) ||
            EVP_PKEY_sign_init(s->rsa) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(s->rsa, RSA_PKCS1_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(s->rsa, s->sha256) <= 0)
            rc = ossl_fail(e, "preparing the RSA key");
    } else if (EVP_PKEY_is_a(k, "ED25519")) {
        s->algo = DKIM_ED25519_SHA256;
        /* The message signed is the 32-byte SHA-256 of the canonical
         * header data (RFC 8463 3). libsodium keeps the key as seed and
         * public key; the public key it derives must be OpenSSL's. */
        unsigned char seed[32], pk[32], want[32];
        size_t sn = sizeof seed, pn = sizeof want;
        if (sodium_init() < 0)
            rc = td_err_set(e, TD_EINTERNAL, "libsodium could not start");
        else if (EVP_PKEY_get_raw_private_key(k, seed, &sn) <= 0 || sn != sizeof seed ||
                 EVP_PKEY_get_raw_public_key(k, want, &pn) <= 0 || pn != sizeof want)
            rc = ossl_fail(e, "reading the Ed25519 key");
        else if (crypto_sign_ed25519_seed_keypair(pk, s->ed_sk, seed) != 0 ||
                 sodium_memcmp(pk, want, sizeof pk) != 0)
            rc = td_err_set(e, TD_EINVAL, "DKIM: the Ed25519 key of %s does not derive its "
                            "own public key", selector);
        sodium_memzero(seed, sizeof seed);
    } else {
        rc = td_err_set(e, TD_EINVAL, "DKIM: the key of %s is neither RSA nor Ed25519",
                        selector);
    }
out:
    if (rc) {
        dkim_signer_free(s);
        return rc;
    }
    *out = s;
    return TD_OK;
}

void dkim_signer_free(dkim_signer *s)
{
    if (!s)
        return;
    sodium_memzero(s->ed_sk, sizeof s->ed_sk);
    EVP_PKEY_CTX_free(s->rsa);
    EVP_MD_CTX_free(s->md);
    EVP_MD_free(s->sha256);
    EVP_PKEY_free(s->pkey);
    buf_free(&s->hdr);
    buf_free(&s->canon);
    buf_free(&s->hlist);
    free(s->domain);
    free(s->selector);
    free(s);
}

dkim_algo dkim_signer_algo(const dkim_signer *s)
{
    return s->algo;
}

/* The raw signature of the 32-byte digest d. */
static int sign_digest(dkim_signer *s, const unsigned char d[32], unsigned char *sig,
                       size_t *siglen, td_error *e)
{
    *siglen = SIG_MAX;
    if (s->algo == DKIM_RSA_SHA256) {
        if (EVP_PKEY_sign(s->rsa, sig, siglen, d, 32) <= 0)
            return ossl_fail(e, "RSA signing");
        return TD_OK;
    }
    unsigned long long n = 0;
    if (crypto_sign_ed25519_detached(sig, &n, d, 32, s->ed_sk) != 0)
        return td_err_set(e, TD_EINTERNAL, "DKIM: Ed25519 signing failed");
    *siglen = (size_t)n;
    return TD_OK;
}

/* Folding of the DKIM-Signature field: tokens are put on a line while it
 * stays within FOLD_COL columns; a fold is CRLF SP, in place of the token's
 * separating space (tags) or between h= names (FWS is allowed after ':'). */
typedef struct fold {
    buf *b;
    size_t col;
    int rc;
} fold;

static void fold_put(fold *f, const char *tok, size_t n, bool space, size_t need)
{
    if (f->col + (space ? 1 : 0) + need > FOLD_COL && f->col > 1) {
        f->rc |= buf_append(f->b, "\r\n ", 3);
        f->col = 1;
    } else if (space) {
        f->rc |= buf_putc(f->b, ' ');
        f->col++;
    }
    f->rc |= buf_append(f->b, tok, n);
    f->col += n;
}

/* fold_tag puts "tag=val;" (by hand: snprintf was a tenth of the work
 * around the signature). Values are DNS names, numbers and base64. */
static void fold_tag(fold *f, const char *tag, const char *val)
{
    char t[300];
    size_t tl = strlen(tag), vl = strlen(val), n = tl + vl + 2;
    if (n > sizeof t) {
        f->rc |= TD_ETOOBIG;
        return;
    }
    memcpy(t, tag, tl);
    t[tl] = '=';
    memcpy(t + tl + 1, val, vl);
    t[n - 1] = ';';
    fold_put(f, t, n, true, n);
}

static void sink_md(void *ctx, const char *p, size_t n)
{
    EVP_DigestUpdate(ctx, p, n);
}

static int b64(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    if (4 * ((n + 2) / 3) + 1 > outsz)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int dkim_sign(dkim_signer *const *signers, size_t n, const char *msg, size_t len, int64_t now,
              buf *out, td_error *e)
{
    if (n == 0)
        return TD_OK;
    dkim_signer *s0 = signers[0];
    hsplit h;
    hsplit_init(&h);
    size_t out_was = out->len;
    int rc = split(msg, len, &h, e);
    if (rc)
        goto done;

    /* The fields to sign, chosen bottom-up as a verifier does (5.4.2): each
     * name once per instance, From once more. */
    buf_reset(&s0->canon);
    buf_reset(&s0->hlist);
    bool has_from = false;
    for (size_t k = 0; k < N_SIGNED; k++) {
        const char *name = signed_fields[k];
        size_t nlen = strlen(name);
        for (size_t i = h.n; i-- > 0;) {
            const hfield *f = &h.f[i];
            if (f->name_len != nlen || strncasecmp(msg + f->off, name, nlen))
                continue;
            canon_field(msg + f->off, f->len, f->colon, f->name_len, &s0->canon);
            buf_puts(&s0->hlist, name);
            buf_putc(&s0->hlist, ':');
            if (k == 0)
                has_from = true;
        }
        if (k == 0 && has_from) {
            buf_puts(&s0->hlist, "from:");
        }
    }
    if (!has_from) {
        rc = td_err_set(e, TD_EINVAL, "DKIM: the message has no From field to sign");
        goto done;
    }
    buf_truncate(&s0->hlist, s0->hlist.len - 1); /* the last ':' */
    size_t selected = s0->canon.len;

    /* bh=: the body, hashed once for every signature. */
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char bh[64];
    if (EVP_DigestInit_ex(s0->md, s0->sha256, NULL) <= 0) {
        rc = ossl_fail(e, "hashing the body");
        goto done;
    }
    canon_body(msg + h.body, len - h.body, sink_md, s0->md);
    if (EVP_DigestFinal_ex(s0->md, dg, &dlen) <= 0 || b64(dg, dlen, bh, sizeof bh) < 0) {
        rc = ossl_fail(e, "hashing the body");
        goto done;
    }

    for (size_t i = 0; i < n; i++) {
        dkim_signer *s = signers[i];
        buf_reset(&s->hdr);
        fold f = {.b = &s->hdr, .col = 15};
        buf_puts(&s->hdr, "DKIM-Signature:");
        fold_tag(&f, "v", "1");
        fold_tag(&f, "a", algo_tag(s->algo));
        fold_tag(&f, "c", "relaxed/relaxed");
        fold_tag(&f, "d", s->domain);
        fold_tag(&f, "s", s->selector);
        if (now > 0) {
            char t[24], *d = t + sizeof t;
            *--d = '\0';
            for (uint64_t v = (uint64_t)now; v; v /= 10)
                *--d = (char)('0' + v % 10);
            fold_tag(&f, "t", d);
        }
        /* h=: one token per name, "h=" on the first, ';' on the last. */
        const char *p = s0->hlist.data, *end = p + s0->hlist.len;
        bool first = true;
        while (p < end) {
            const char *c = memchr(p, ':', (size_t)(end - p));
            size_t k = c ? (size_t)(c - p) : (size_t)(end - p);
            char tok[40]; /* "h=", a signed field's name and ':' or ';' */
            size_t tn = 0;
            if (k + 3 > sizeof tok) { /* only a longer name in signed_fields */
                rc = td_err_set(e, TD_EINTERNAL, "DKIM: a signed field name is too long");
                goto done;
            }
            if (first) {
                memcpy(tok, "h=", 2);
                tn = 2;
            }
            memcpy(tok + tn, p, k);
            tn += k;
            tok[tn++] = c ? ':' : ';';
            fold_put(&f, tok, tn, first, tn);
            first = false;
            p += k + (c ? 1 : 0);
        }
        fold_tag(&f, "bh", bh);
        /* "b=" with room for a few characters of its value on its line. */
        fold_put(&f, "b=", 2, true, 12);
        if (f.rc) {
            rc = TD_ETOOBIG;
            goto done;
        }

        /* The header hash: the selected fields, then this field with an
         * empty b= and no final CRLF (3.7). */
        buf_truncate(&s0->canon, selected);
        canon_field(s->hdr.data, s->hdr.len, 14, 14, &s0->canon);
        buf_truncate(&s0->canon, s0->canon.len - 2);
        if (EVP_DigestInit_ex(s0->md, s0->sha256, NULL) <= 0 ||
            EVP_DigestUpdate(s0->md, s0->canon.data, s0->canon.len) <= 0 ||
            EVP_DigestFinal_ex(s0->md, dg, &dlen) <= 0) {
            rc = ossl_fail(e, "hashing the header");
            goto done;
        }
        unsigned char sig[SIG_MAX];
        size_t siglen;
        char sb[4 * SIG_MAX / 3 + 8];
        if ((rc = sign_digest(s, dg, sig, &siglen, e)))
            goto done;
        int sbn = b64(sig, siglen, sb, sizeof sb);
        if (sbn < 0) {
            rc = ossl_fail(e, "encoding the signature");
            goto done;
        }
        /* b= value: its folding is not signed (the verifier deletes the
         * value with the whitespace in it), so it fills every line. */
        for (size_t at = 0; at < (size_t)sbn;) {
            if (f.col >= FOLD_COL) {
                f.rc |= buf_append(&s->hdr, "\r\n ", 3);
                f.col = 1;
            }
            size_t k = FOLD_COL - f.col;
            if (k > (size_t)sbn - at)
                k = (size_t)sbn - at;
            f.rc |= buf_append(&s->hdr, sb + at, k);
            f.col += k;
            at += k;
        }
        f.rc |= buf_append(&s->hdr, "\r\n", 2);
        if (f.rc || buf_append(out, s->hdr.data, s->hdr.len)) {
            rc = td_err_set(e, TD_ETOOBIG, "DKIM: the signed message is over its size cap");
            goto done;
        }
    }
done:
    if (rc)
        buf_truncate(out, out_was);
    hsplit_free(&h);
    return rc;
}

/* ---- keysets ----------------------------------------------------------------- */

typedef struct pick {
    dkim_key_rec best[2]; /* newest RSA, newest Ed25519 */
    bool have[2];
} pick;

static int pick_newest(void *ud, const dkim_key_rec *k)
{
    pick *p = ud;
    dkim_algo a;
    if (dkim_algo_parse(k->algo, &a, NULL))
        return 0; /* the schema allows only the two; skip anything else */
    int i = a == DKIM_RSA_SHA256 ? 0 : 1;
    dkim_key_rec *b = &p->best[i];
    if (p->have[i] &&
        (b->created_at > k->created_at || (b->created_at == k->created_at && b->id > k->id)))
        return 0;
    dkim_key_rec_clear(b);
    b->id = k->id;
    b->domain = xstrdup(k->domain);
    b->selector = xstrdup(k->selector);
    b->algo = xstrdup(k->algo);
    b->private_key = xstrdup(k->private_key);
    b->created_at = k->created_at;
    p->have[i] = true;
    return 0;
}

int dkim_keyset_load(struct store *st, const char *domain, dkim_keyset **out, td_error *e)
{
    *out = NULL;
    char *d = NULL;
    int rc = dkim_domain_normalize(domain, &d, e);
    if (rc)
        return rc;
    pick p = {0};
    rc = store_dkim_key_each(st, d, pick_newest, &p, e);
    dkim_keyset *k = xcalloc(1, sizeof *k);
    for (int i = 0; !rc && i < 2; i++)
        if (p.have[i] && !(rc = dkim_signer_new(d, p.best[i].selector, p.best[i].private_key,
                                                &k->s[k->n], e)))
            k->n++;
    if (!rc && k->n == 0)
        rc = td_err_set(e, TD_ENOTFOUND, "there is no DKIM key for %s", d);
    for (int i = 0; i < 2; i++)
        dkim_key_rec_clear(&p.best[i]);
    free(d);
    if (rc) {
        dkim_keyset_free(k);
        return rc;
    }
    *out = k;
    return TD_OK;
}

int dkim_keyset_sign(dkim_keyset *k, const char *msg, size_t len, int64_t now, buf *out,
                     td_error *e)
{
    return dkim_sign(k->s, k->n, msg, len, now, out, e);
}

size_t dkim_keyset_count(const dkim_keyset *k)
{
    return k->n;
}

void dkim_keyset_free(dkim_keyset *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        dkim_signer_free(k->s[i]);
    free(k);
}

/* ---- keys and records ---------------------------------------------------------- */

static char *pem_of(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    char *pem = NULL;
    if (PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) > 0) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0)
            pem = xstrndup(data, (size_t)n);
    }
    BIO_free(bio);
    return pem;
}

static int record_of(EVP_PKEY *k, char **txt, td_error *e)
{
    unsigned char raw[32], *der = NULL;
    const unsigned char *pub;
    size_t n;
    const char *kt;
    int dn = 0;
    if (EVP_PKEY_is_a(k, "ED25519")) {
        n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(k, raw, &n) <= 0)
            return ossl_fail(e, "reading the Ed25519 public key");
        pub = raw;
        kt = "ed25519";
    } else if (EVP_PKEY_is_a(k, "RSA")) {
        /* SubjectPublicKeyInfo, as opendkim-genkey publishes and every
         * verifier reads. */
        if ((dn = i2d_PUBKEY(k, &der)) <= 0)
            return ossl_fail(e, "encoding the RSA public key");
        pub = der;
        n = (size_t)dn;
        kt = "rsa";
    } else {
        return td_err_set(e, TD_EINVAL, "DKIM: the key is neither RSA nor Ed25519");
    }
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *p64 = xmalloc(cap);
    b64(pub, n, p64, cap);
    OPENSSL_free(der);
    *txt = xasprintf("v=DKIM1; k=%s; p=%s", kt, p64);
    free(p64);
    return TD_OK;
}

int dkim_keygen(dkim_algo algo, char **pem, char **txt, td_error *e)
{
    *pem = *txt = NULL;
    EVP_PKEY *k = algo == DKIM_RSA_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                  : algo == DKIM_ED25519_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                                : NULL;
    if (!k)
        return ossl_fail(e, "generating the key");
    int rc = TD_OK;
    if (!(*pem = pem_of(k)))
        rc = ossl_fail(e, "writing the key as PEM");
    else if ((rc = record_of(k, txt, e))) {
        free(*pem);
        *pem = NULL;
    }
    EVP_PKEY_free(k);
    return rc;
}

int dkim_txt_record(const char *pem, char **txt, td_error *e)
{
    *txt = NULL;
    EVP_PKEY *k = pem ? read_key(pem) : NULL;
    if (!k)
        return td_err_set(e, TD_EINVAL, "DKIM: the private key is not a readable PEM key");
    int rc = record_of(k, txt, e);
    EVP_PKEY_free(k);
    return rc;
}

char *dkim_txt_zone(const char *value)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    size_t n = strlen(value);
    for (size_t at = 0; at < n || at == 0; at += 255) {
        size_t k = n - at < 255 ? n - at : 255;
        if (at)
            buf_putc(&b, ' ');
        buf_putc(&b, '"');
        for (size_t i = 0; i < k; i++) {
            if (value[at + i] == '"' || value[at + i] == '\\')
                buf_putc(&b, '\\');
            buf_putc(&b, value[at + i]);
        }
        buf_putc(&b, '"');
        if (n == 0)
            break;
    }
    char *z = buf_steal(&b);
    buf_free(&b); /* buf_steal leaves b allocated and usable */
    return z;
}
