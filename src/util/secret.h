/* secret: password hashing (argon2id) and random tokens, on libsodium. */
#ifndef TD_UTIL_SECRET_H
#define TD_UTIL_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* secret_init prepares libsodium; call once at start. 0 or TD_EINTERNAL. */
int secret_init(void);

/* secret_hash_password returns a new "$argon2id$..." string (caller frees),
 * or NULL with e filled (empty or over-long password, out of memory for the
 * hash's working set). */
char *secret_hash_password(const char *password, size_t len, td_error *e);

/* secret_verify_password is true when password matches hash. */
bool secret_verify_password(const char *hash, const char *password, size_t len);

/* secret_random_hex returns a new string of 2*nbytes random hex digits. */
char *secret_random_hex(size_t nbytes);

#endif
