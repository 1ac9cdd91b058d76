/* secret: argon2id passwords and random tokens (see secret.h). */
#include "util/secret.h"

#include <sodium.h>

#include "util/xalloc.h"

int secret_init(void)
{
    return sodium_init() < 0 ? TD_EINTERNAL : TD_OK;
}

char *secret_hash_password(const char *password, size_t len, td_error *e)
{
    if (len == 0) {
        td_err_set(e, TD_EINVAL, "the password is empty");
        return NULL;
    }
    if (len > 1024) {
        td_err_set(e, TD_EINVAL, "the password is longer than 1024 bytes");
        return NULL;
    }
    char *out = xmalloc(crypto_pwhash_STRBYTES);
    /* Interactive limits: about 0.1 s and 64 MiB here (deps.md). */
    if (crypto_pwhash_str_alg(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13)) {
        free(out);
        td_err_set(e, TD_EINTERNAL, "not enough memory to hash the password");
        return NULL;
    }
    return out;
}

bool secret_verify_password(const char *hash, const char *password, size_t len)
{
    return hash && crypto_pwhash_str_verify(hash, password, len) == 0;
}

char *secret_random_hex(size_t nbytes)
{
    unsigned char *raw = xmalloc(nbytes);
    randombytes_buf(raw, nbytes);
    char *hex = xmalloc(nbytes * 2 + 1);
    sodium_bin2hex(hex, nbytes * 2 + 1, raw, nbytes);
    sodium_memzero(raw, nbytes);
    free(raw);
    return hex;
}
