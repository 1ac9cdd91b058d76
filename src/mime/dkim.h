/* dkim: DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463),
 * relaxed/relaxed canonicalization, keys parsed once into reusable signers.
 *
 * A signer takes a complete message (header and body, CRLF line ends) and
 * returns the DKIM-Signature field(s) to put in front of it; the message
 * itself is not changed. The contract is in docs/internals/dkim.md. */
#ifndef TD_MIME_DKIM_H
#define TD_MIME_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

struct store;

typedef enum dkim_algo {
    DKIM_RSA_SHA256 = 1, /* "rsa": a=rsa-sha256, 2048-bit keys made here */
    DKIM_ED25519_SHA256, /* "ed25519": a=ed25519-sha256 (RFC 8463) */
} dkim_algo;

/* dkim_algo_name returns "rsa" or "ed25519" (the CLI and database name), or
 * NULL for an unknown value. Static. */
const char *dkim_algo_name(dkim_algo a);

/* dkim_algo_parse sets *out from "rsa" or "ed25519"; 0 or TD_EINVAL. */
int dkim_algo_parse(const char *name, dkim_algo *out, td_error *e);

/* dkim_domain_normalize checks a signing domain (U-labels or A-labels) and
 * returns its A-label, lower-case form through addr's normalisation in *out
 * (the caller frees). TD_EINVAL for anything that is not a DNS name
 * (address literals included). */
int dkim_domain_normalize(const char *domain, char **out, td_error *e);

/* dkim_selector_ok is 0 when selector is a DNS sub-domain of LDH labels
 * (RFC 6376 3.1), else TD_EINVAL with a message. */
int dkim_selector_ok(const char *selector, td_error *e);

/* ---- signers ---------------------------------------------------------- */

typedef struct dkim_signer dkim_signer;

/* dkim_signer_new parses the PEM private key (PKCS#8 or traditional, RSA of
 * at least 1024 bits or Ed25519) once and prepares the signing contexts for
 * d=domain (an A-label name, see dkim_domain_normalize) and s=selector.
 * Returns 0 with *out the caller's (dkim_signer_free), or TD_EINVAL. A signer
 * keeps scratch state: use one from one thread at a time. */
int dkim_signer_new(const char *domain, const char *selector, const char *pem,
                    dkim_signer **out, td_error *e);

/* dkim_signer_free releases s; NULL is a no-op. */
void dkim_signer_free(dkim_signer *s);

/* dkim_signer_algo returns the signer's algorithm. */
dkim_algo dkim_signer_algo(const dkim_signer *s);

/* dkim_sign signs msg[0..len) (a complete message, CRLF line ends) with each
 * of the n signers, hashing the body once for all of them, and appends one
 * DKIM-Signature field per signer (folded, each ending in CRLF) to out, in
 * the order given. t= is now when now > 0. Signed fields: From (over-signed),
 * To, Subject, Date, Message-ID, MIME-Version, Content-Type,
 * List-Unsubscribe, List-Unsubscribe-Post and List-Id, those present.
 * Returns 0; TD_EINVAL when the header cannot be parsed or has no From (out
 * unchanged); TD_ETOOBIG when out's cap is reached; TD_EINTERNAL when
 * OpenSSL fails. */
int dkim_sign(dkim_signer *const *signers, size_t n, const char *msg, size_t len, int64_t now,
              buf *out, td_error *e);

/* ---- the keys of a sending domain -------------------------------------- */

typedef struct dkim_keyset dkim_keyset;

/* dkim_keyset_load reads the stored keys of domain (normalised here) and
 * makes a signer of the newest key of each algorithm: one or two signers,
 * so a domain with both an RSA and an Ed25519 key gets two signatures.
 * Returns 0 with *out the caller's (dkim_keyset_free); TD_ENOTFOUND when the
 * domain has no key; TD_EINVAL, TD_EDB from parsing or the store. */
int dkim_keyset_load(struct store *s, const char *domain, dkim_keyset **out, td_error *e);

/* dkim_keyset_sign is dkim_sign with every signer of k. */
int dkim_keyset_sign(dkim_keyset *k, const char *msg, size_t len, int64_t now, buf *out,
                     td_error *e);

/* dkim_keyset_count returns the number of signers in k. */
size_t dkim_keyset_count(const dkim_keyset *k);

/* dkim_keyset_free releases k; NULL is a no-op. */
void dkim_keyset_free(dkim_keyset *k);

/* ---- keys and DNS records --------------------------------------------- */

/* dkim_keygen makes a new key (RSA 2048 or Ed25519) and returns its private
 * key as unencrypted PKCS#8 PEM in *pem and its DNS TXT record value in *txt
 * (see dkim_txt_record); both the caller's. 0 or TD_EINTERNAL. */
int dkim_keygen(dkim_algo algo, char **pem, char **txt, td_error *e);

/* dkim_txt_record derives the TXT record value of a private key's public
 * half: "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or
 * "v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte key>". *txt is the
 * caller's. 0 or TD_EINVAL (key not readable). */
int dkim_txt_record(const char *pem, char **txt, td_error *e);

/* dkim_txt_zone returns value as zone-file character strings of at most 255
 * bytes each, quoted and separated by spaces ("..." "..."). Caller frees. */
char *dkim_txt_zone(const char *value);

/* ---- canonicalization (exposed for the tests and the fuzz target) ------- */

/* dkim_canon_body appends the relaxed canonical form (RFC 6376 3.4.4) of
 * body[0..len) to out. 0 or TD_ETOOBIG. */
int dkim_canon_body(const char *body, size_t len, buf *out);

/* dkim_canon_header appends the relaxed canonical form (3.4.2) of one header
 * field field[0..len) (name, colon, value with any folding; the final CRLF
 * may be there or not) to out, ending in CRLF. TD_EINVAL when there is no
 * colon or the name is empty; TD_ETOOBIG at out's cap. */
int dkim_canon_header(const char *field, size_t len, buf *out);

/* dkim_canon_message appends every header field of msg in relaxed form, a
 * CRLF, then the relaxed body. TD_EINVAL when the header cannot be split
 * into fields (a line without a colon, a continuation first), with e. */
int dkim_canon_message(const char *msg, size_t len, buf *out, td_error *e);

#endif
